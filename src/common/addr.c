/*
 * HOST:PORT parsing, resolution and formatting (see kw_addr.h).
 */
#include "kw_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "keyward/error.h"

/* A port of 1-65535 from len digits at s. Returns 0 or KW_EINVAL. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
    unsigned long v = 0;
    KW_ENSURE(len > 0 && len <= 5, KW_EINVAL);
    for (size_t i = 0; i < len; i++) {
        KW_ENSURE(s[i] >= '0' && s[i] <= '9', KW_EINVAL);
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    KW_ENSURE(v > 0 && v <= 65535, KW_EINVAL);
    *port = (uint16_t)v;
    return 0;
}

/* Where host and port stand in text: [host, host+hlen) and [port, port+plen), port NULL when
 * none is written. Returns 0 or KW_EINVAL with *why. */
static int locate(const char *s, size_t len, unsigned flags, const char **host, size_t *hlen,
                  const char **port, size_t *plen, const char **why)
{
    *host = s;
    *hlen = len;
    *port = NULL;
    *plen = 0;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL) {
            *why = "an IPv6 address in brackets needs the closing ']'";
            return KW_EINVAL;
        }
        *host = s + 1;
        *hlen = (size_t)(close - *host);
        size_t rest = len - (size_t)(close + 1 - s);
        if (rest > 0 && close[1] != ':') {
            *why = "after ']' only ':PORT' may follow";
            return KW_EINVAL;
        }
        if (rest > 0) {
            *port = close + 2;
            *plen = rest - 1;
        }
        return 0;
    }
    const char *colon = NULL;
    size_t colons = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':') {
            colons++;
            colon = s + i;
        }
    }
    /* with an optional port, more colons are a bare IPv6 address */
    if (colon != NULL && (colons == 1 || !(flags & KW_ADDR_PORT_OPTIONAL))) {
        *hlen = (size_t)(colon - s);
        *port = colon + 1;
        *plen = len - *hlen - 1;
    }
    return 0;
}

int kw_addr_split(const char *text, size_t len, unsigned flags, uint16_t default_port,
                  kw_hostport_t *out, const char **why)
{
    const char *host;
    const char *port;
    size_t hlen;
    size_t plen;
    KW_ENSURE(text != NULL && out != NULL && why != NULL, KW_EINVAL);
    KW_GUARD(locate(text, len, flags, &host, &hlen, &port, &plen, why));
    if (port == NULL && !(flags & KW_ADDR_PORT_OPTIONAL)) {
        *why = "the port is missing";
        return KW_EINVAL;
    }
    if (flags & KW_ADDR_HOST_OPTIONAL && hlen == 1 && host[0] == '*')
        hlen = 0;
    if (hlen == 0 && !(flags & KW_ADDR_HOST_OPTIONAL)) {
        *why = "the host name is empty";
        return KW_EINVAL;
    }
    if (hlen >= sizeof(out->host) || memchr(host, '\0', hlen) != NULL) {
        *why = "the host name is too long";
        return KW_EINVAL;
    }
    out->port = default_port;
    if (port != NULL && parse_port(port, plen, &out->port) != 0) {
        *why = "the port must be a number from 1 to 65535";
        return KW_EINVAL;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    return 0;
}

int kw_addr_resolve(const char *hostport, int passive, struct sockaddr_storage *out,
                    socklen_t *outlen, char *err, size_t errlen)
{
    kw_hostport_t hp;
    const char *why = NULL;
    if (hostport == NULL ||
        kw_addr_split(hostport, strlen(hostport), KW_ADDR_HOST_OPTIONAL, 0, &hp, &why) != 0) {
        snprintf(err, errlen, "\"%s\" is not HOST:PORT (IPv6 as [ADDR]:PORT)",
                 hostport != NULL ? hostport : "");
        return KW_ECONFIG;
    }
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)hp.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hp.host[0] == '\0' ? NULL : hp.host, port, &hints, &res);
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

void kw_addr_ip(const struct sockaddr *sa, char *buf, size_t buflen)
{
    const void *ip = NULL;
    if (sa->sa_family == AF_INET)
        ip = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        ip = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (ip == NULL || inet_ntop(sa->sa_family, ip, buf, (socklen_t)buflen) == NULL)
        snprintf(buf, buflen, "?");
}

void kw_addr_format(const struct sockaddr *sa, char *buf, size_t buflen)
{
    char ip[INET6_ADDRSTRLEN];
    kw_addr_ip(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET)
        snprintf(buf, buflen, "%s:%u", ip, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    else if (sa->sa_family == AF_INET6)
        snprintf(buf, buflen, "[%s]:%u", ip, ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    else
        snprintf(buf, buflen, "?");
}
