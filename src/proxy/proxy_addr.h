/*
 * HOST:PORT strings to socket addresses, and addresses back to text, for the proxy's listener,
 * backend and log lines. "[v6]:port" brackets IPv6; "*:port" or ":port" is any address.
 */
#ifndef KW_PROXY_ADDR_H
#define KW_PROXY_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Resolves hostport (first result; passive: for bind()). Returns 0 or KW_ECONFIG with a
 * sentence in err. */
int kw_proxy_resolve(const char *hostport, int passive, struct sockaddr_storage *out,
                     socklen_t *outlen, char *err, size_t errlen);

/* "1.2.3.4:5" or "[::1]:5" into buf (at least 64 bytes); "?" for other families. */
void kw_proxy_addr_str(const struct sockaddr *sa, char *buf, size_t buflen);

#endif /* KW_PROXY_ADDR_H */
