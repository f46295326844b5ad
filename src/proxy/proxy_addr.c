/*
 * HOST:PORT parsing and name resolution (getaddrinfo, once at start: the proxy never resolves
 * names on its event loops), and the reverse for log lines.
 */
#include "proxy_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "keyward/error.h"

static int split_hostport(const char *hostport, char *host, size_t hostlen, const char **port)
{
    const char *colon;
    size_t len;
    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (close == NULL || close[1] != ':') {
            return KW_ECONFIG;
        }
        len = (size_t)(close - hostport - 1);
        memcpy(host, hostport + 1, len < hostlen ? len : 0);
        colon = close + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL) {
            return KW_ECONFIG;
        }
        len = (size_t)(colon - hostport);
        memcpy(host, hostport, len < hostlen ? len : 0);
    }
    if (len >= hostlen || colon[1] == '\0') {
        return KW_ECONFIG;
    }
    host[len] = '\0';
    *port = colon + 1;
    return 0;
}

int kw_proxy_resolve(const char *hostport, int passive, struct sockaddr_storage *out,
                     socklen_t *outlen, char *err, size_t errlen)
{
    char host[256];
    const char *port = NULL;
    if (hostport == NULL || split_hostport(hostport, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "\"%s\" is not HOST:PORT (IPv6 as [ADDR]:PORT)",
                 hostport != NULL ? hostport : "");
        return KW_ECONFIG;
    }
    int any = host[0] == '\0' || strcmp(host, "*") == 0;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cannot resolve %s: %s", hostport, gai_strerror(rc));
        return KW_ECONFIG;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *outlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void kw_proxy_addr_str(const struct sockaddr *sa, char *buf, size_t buflen)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, buflen, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, buflen, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, buflen, "?");
    }
}
