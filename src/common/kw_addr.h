/*
 * Addresses as users write them and as logs print them, one parser and one formatter for every
 * binary: "HOST:PORT", "[IPv6]:PORT", and (where a caller allows it) a bare host or a bare IPv6
 * address with a default port; a socket address back to "1.2.3.4:5" or "[::1]:5".
 */
#ifndef KW_ADDR_H
#define KW_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kw_guard.h"

#define KW_ADDR_HOST_MAX 256 /* host names up to 255 characters */
#define KW_ADDR_STRLEN   64  /* "[" INET6_ADDRSTRLEN "]:65535" and the NUL */

/* kw_addr_split flags. */
#define KW_ADDR_PORT_OPTIONAL                                                                      \
    0x1                           /* "HOST" alone is allowed (port = default_port); a text with    \
                                     more than one ':' and no brackets is a bare IPv6 address */
#define KW_ADDR_HOST_OPTIONAL 0x2 /* ":PORT" and "*:PORT" are allowed (host "": any address) */

typedef struct kw_hostport_s {
    char host[KW_ADDR_HOST_MAX]; /* without brackets; "" for any address */
    uint16_t port;
} kw_hostport_t;

/*
 * Splits len bytes of text into host and port (1-65535). Returns 0, or KW_EINVAL with a reason
 * (a static string) in *why. default_port is used with KW_ADDR_PORT_OPTIONAL when none is given.
 */
KW_WARN_UNUSED int kw_addr_split(const char *text, size_t len, unsigned flags,
                                 uint16_t default_port, kw_hostport_t *out, const char **why);

/*
 * Resolves "HOST:PORT" ("[v6]:port"; "*:port" or ":port" for any address) to its first address
 * (passive: for bind()). Returns 0, or KW_ECONFIG with a sentence in err.
 */
KW_WARN_UNUSED int kw_addr_resolve(const char *hostport, int passive, struct sockaddr_storage *out,
                                   socklen_t *outlen, char *err, size_t errlen);

/* "1.2.3.4:5" or "[::1]:5" into buf (KW_ADDR_STRLEN bytes suffice); "?" for other families. */
void kw_addr_format(const struct sockaddr *sa, char *buf, size_t buflen);

/* The IP address of sa without the port into buf (INET6_ADDRSTRLEN bytes); "?" for others. */
void kw_addr_ip(const struct sockaddr *sa, char *buf, size_t buflen);

#endif /* KW_ADDR_H */
