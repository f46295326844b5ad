/*
 * Key server lists: parsing "host:port[,host:port ...]" (commas and/or spaces; "[v6]:port";
 * a missing port means 2407) into specs, and resolving specs into addresses. Every address a
 * name resolves to becomes a server of its own (DNS as the discovery mechanism), and keeps the
 * name it came from for certificate verification. Parsing is pure (unit tested).
 */
#ifndef KWC_SERVERS_H
#define KWC_SERVERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kw_addr.h"

#define KW_SRV_MAX      64 /* addresses per client (a request's tried-set is a 64-bit mask) */
#define KW_SRV_HOST_MAX KW_ADDR_HOST_MAX

/* One entry of the list: host (without brackets) and port. */
typedef kw_hostport_t kw_srv_spec_t;

typedef struct kw_srv_addr_s {
    struct sockaddr_storage ss;
    socklen_t len;
    char host[KW_SRV_HOST_MAX]; /* name to verify the certificate against */
    int host_is_ip;             /* verify an IP SAN instead of a DNS name, send no SNI */
    char label[KW_ADDR_STRLEN]; /* "127.0.0.1:2407" or "[::1]:2407", for messages and stats */
} kw_srv_addr_t;

/* Parses list into out (capacity max), sets *n. Returns 0, or KW_ECONFIG with a sentence in err
 * (empty list, bad port, bad brackets, host too long, too many entries). */
int kw_srvlist_parse(const char *list, kw_srv_spec_t *out, size_t max, size_t *n, char *err,
                     size_t errlen);

/* 1 when host is a literal IPv4 or IPv6 address. */
int kw_srv_host_is_ip(const char *host);

/* Resolves every spec (getaddrinfo, TCP) into *out (malloc'd, caller frees), duplicates
 * removed, at most KW_SRV_MAX. Names that do not resolve are skipped; fails with KW_ECONFIG and a
 * sentence in err only when no address at all is left. */
int kw_srvlist_resolve(const kw_srv_spec_t *specs, size_t n, kw_srv_addr_t **out, size_t *nout,
                       char *err, size_t errlen);

#endif /* KWC_SERVERS_H */
