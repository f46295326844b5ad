/*
 * Key server lists (kwc_servers.h): splitting the user's list of servers into entries (each one
 * parsed by kw_addr_split) and resolving them into addresses.
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
#include "kw_addr.h"

static int is_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
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
        if (kw_addr_split(start, len, KW_ADDR_PORT_OPTIONAL, KW_DEFAULT_PORT, &out[*n], &why) !=
            0) {
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
        kw_addr_format(ai->ai_addr, a->label, sizeof(a->label));
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
