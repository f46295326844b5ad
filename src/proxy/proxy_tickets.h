/*
 * keyward-proxy fleet session tickets (issue 19; docs/proxy.md "Session tickets"):
 * --tickets-from-keyserver fetches the fleet's ticket keys (0xA4) at start and after each
 * rotation (a timer on worker 0's loop; the blocking fetch runs on libuv's thread pool) and
 * encrypts TLS 1.2 and 1.3 tickets with the current epoch's key, decrypting with all three, in
 * nginx's format (AES-256-CBC + HMAC-SHA256, 80-byte keys), so a session resumes at any edge of
 * the fleet without a key operation. When the key servers cannot be reached the last good set
 * is kept (with a WARN) until its last key ends; then a local random key is used.
 * --session-context nginx|haproxy|TEXT sets the session-id context OpenSSL requires to match on
 * resumption: nginx derives it from its certificates, HAProxy uses "haproxy".
 *
 * Ownership: kw_proxy_t owns its kw_px_tickets_t (kw_px_tickets_free after the workers closed).
 */
#ifndef KW_PROXY_TICKETS_H
#define KW_PROXY_TICKETS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "keyward/client.h"
#include "keyward/protocol.h"
#include "proxy_config.h"

typedef struct kw_px_tickets_s kw_px_tickets_t;

/* Creates the tickets state for cfg (NULL in *out when neither option is given). With
 * --tickets-from-keyserver, fetches the first set now (a failure is a WARN: local keys until a
 * fetch succeeds). Returns 0 or a KW_E* code with a sentence in err. */
int kw_px_tickets_new(const kw_proxy_config_t *cfg, kw_px_tickets_t **out, char *err,
                      size_t errlen);

/* Sets ctx's session-id context (from --session-context; for "nginx" from its certificates,
 * leaf being the first configured) and, with fleet keys, its ticket key callback. t may be NULL
 * (nothing to do). Returns 0 or KW_ETLS. */
int kw_px_tickets_setup_ctx(kw_px_tickets_t *t, SSL_CTX *ctx, X509 *leaf);

/* Starts the refetch timer on loop (after the workers are set up); stops it (on that loop). */
int kw_px_tickets_start(kw_px_tickets_t *t, uv_loop_t *loop);
void kw_px_tickets_stop(kw_px_tickets_t *t);

void kw_px_tickets_free(kw_px_tickets_t *t);

/* What /metrics shows of the fleet keys (proxy_metrics.c); any thread. */
typedef struct kw_px_tickets_stats_s {
    int fleet;           /* --tickets-from-keyserver */
    int have_set;        /* fleet keys in use (0: the local random key) */
    int64_t last_fetch;  /* Unix time of the last successful fetch; 0: none yet */
    uint64_t fetches_ok; /* fetches (the first one included) by result */
    uint64_t fetches_failed;
} kw_px_tickets_stats_t;

/* t may be NULL (all zero). */
void kw_px_tickets_stats(kw_px_tickets_t *t, kw_px_tickets_stats_t *out);

/* nginx 1.22's session-id context for a server block whose ssl_certificate directives name
 * certs[0..n) in that order and which verifies no client certificates:
 * SHA-1("HTTP" || SHA-1(DER of certs[n-1]) || ... || SHA-1(DER of certs[0])) (nginx links its
 * certificates newest first). out gets 20 bytes. Returns 0 or KW_ECRYPTO. */
int kw_px_nginx_sid_ctx(X509 *const *certs, size_t n, uint8_t out[20]);

#endif /* KW_PROXY_TICKETS_H */
