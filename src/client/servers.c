/*
 * Key server lists (kwc_servers.h): parsing the user's list of servers and resolving it into
 * addresses.
 */
#include "kwc_servers.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "keyward/protocol.h"

static int is_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

/* Parses a port number of 1-65535 from [s, s+len). Returns 0 or -1. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
    unsigned long v = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Splits one entry [s, s+len) into host and port. Returns 0 or -1 with a reason in *why. */
static int parse_entry(const char *s, size_t len, kw_srv_spec_t *spec, const char **why)
{
    const char *host = s;
    size_t hlen = len;
    const char *port = NULL;
    size_t plen = 0;
    spec->port = KW_DEFAULT_PORT;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL) {
            *why = "an IPv6 address in brackets needs the closing ']'";
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t rest = len - (size_t)(close + 1 - s);
        if (rest > 0) {
            if (close[1] != ':') {
                *why = "after ']' only ':PORT' may follow";
                return -1;
            }
            port = close + 2;
            plen = rest - 1;
        }
    } else {
        const char *colon = NULL;
        size_t colons = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] == ':') {
                colons++;
                colon = s + i;
            }
        }
        if (colons == 1) { /* host:port; more colons = a bare IPv6 address */
            hlen = (size_t)(colon - s);
            port = colon + 1;
            plen = len - hlen - 1;
        }
    }
    if (hlen == 0) {
        *why = "the host name is empty";
        return -1;
    }
    if (hlen >= KW_SRV_HOST_MAX) {
        *why = "the host name is too long";
        return -1;
    }
    if (port != NULL && parse_port(port, plen, &spec->port) != 0) {
        *why = "the port must be a number from 1 to 65535";
        return -1;
    }
    memcpy(spec->host, host, hlen);
    spec->host[hlen] = '\0';
    return 0;
}

int kw_srvlist_parse(const char *list, kw_srv_spec_t *out, size_t max, size_t *n, char *err,
                     size_t errlen)
{
    *n = 0;
    const char *p = list != NULL ? list : "";
    while (*p != '\0') {
        while (*p != '\0' && is_sep(*p))
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        while (*p != '\0' && !is_sep(*p))
            p++;
        size_t len = (size_t)(p - start);
        const char *why = NULL;
        if (*n >= max) {
            snprintf(err, errlen, "too many key servers (at most %zu)", max);
            return KW_ECONFIG;
        }
        if (parse_entry(start, len, &out[*n], &why) != 0) {
            snprintf(err, errlen, "bad key server address '%.*s': %s (write HOST:PORT)", (int)len,
                     start, why);
            return KW_ECONFIG;
        }
        (*n)++;
    }
    if (*n == 0) {
        snprintf(err, errlen, "no key server given: set at least one HOST:PORT");
        return KW_ECONFIG;
    }
    return 0;
}

int kw_srv_host_is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

void kw_srv_label(const struct sockaddr *sa, char *label, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(label, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(label, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
}

static int already_have(const kw_srv_addr_t *list, size_t n, const struct addrinfo *ai)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].len == ai->ai_addrlen && memcmp(&list[i].ss, ai->ai_addr, ai->ai_addrlen) == 0)
            return 1;
    }
    return 0;
}

/* Appends the addresses of one spec. Returns 0, or a getaddrinfo error code. */
static int resolve_one(const kw_srv_spec_t *spec, kw_srv_addr_t *list, size_t *n)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)spec->port);
    int rc = getaddrinfo(spec->host, port, &hints, &res);
    if (rc != 0)
        return rc;
    for (const struct addrinfo *ai = res; ai != NULL && *n < KW_SRV_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(struct sockaddr_storage) || already_have(list, *n, ai))
            continue;
        kw_srv_addr_t *a = &list[*n];
        memset(a, 0, sizeof(*a));
        memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
        a->len = (socklen_t)ai->ai_addrlen;
        snprintf(a->host, sizeof(a->host), "%s", spec->host);
        a->host_is_ip = kw_srv_host_is_ip(spec->host);
        kw_srv_label(ai->ai_addr, a->label, sizeof(a->label));
        (*n)++;
    }
    freeaddrinfo(res);
    return 0;
}

int kw_srvlist_resolve(const kw_srv_spec_t *specs, size_t n, kw_srv_addr_t **out, size_t *nout,
                       char *err, size_t errlen)
{
    kw_srv_addr_t *list = calloc(KW_SRV_MAX, sizeof(*list));
    size_t count = 0;
    *out = NULL;
    *nout = 0;
    if (list == NULL)
        return KW_ENOMEM;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int rc = resolve_one(&specs[i], list, &count);
        if (rc != 0) {
            snprintf(err, errlen, "cannot resolve key server host '%s': %s", specs[i].host,
                     gai_strerror(rc));
        }
    }
    if (count > 0 && err != NULL && err[0] != '\0')
        kw_warn("%s; using the other key servers", err);
    if (count == 0) {
        free(list);
        if (err != NULL && errlen > 0 && err[0] == '\0')
            snprintf(err, errlen, "no key server address to connect to");
        return KW_ECONFIG;
    }
    *out = list;
    *nout = count;
    return 0;
}
