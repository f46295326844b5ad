/*
 * keyward-proxy metrics (--metrics HOST:PORT): counters the connection code bumps through the
 * hooks below, and the Prometheus text of /metrics plus /health and /ready (proxy_ready.c), served
 * by src/httpd from its own thread (a scraper never touches an event loop). Without --metrics
 * every hook is a no-op.
 */
#ifndef KW_PROXY_METRICS_H
#define KW_PROXY_METRICS_H

#include <stddef.h>

#include <openssl/ssl.h>

typedef struct kw_proxy_s kw_proxy_t;
typedef struct kw_px_conn_s kw_px_conn_t;
typedef struct kw_px_metrics_s kw_px_metrics_t;

typedef enum kw_px_hs_result {
    KW_PX_HS_OK = 0,
    KW_PX_HS_FAILED = 1,
    KW_PX_HS_TIMEOUT = 2,
} kw_px_hs_result_t;

/* Starts serving on listen (HOST:PORT); sets p->metrics. With token_file (may be NULL), /metrics
 * requires its bearer token (kw_bearer.h). Returns 0 or a KW_E* code with a sentence in err. */
int kw_px_metrics_start(kw_proxy_t *p, const char *listen, const char *token_file, char *err,
                        size_t errlen);
void kw_px_metrics_stop(kw_proxy_t *p);

/* A handshake ended: its result, TLS version, the key type of the certificate it used, and
 * whether it resumed a session. */
void kw_px_metrics_handshake(kw_proxy_t *p, SSL *ssl, kw_px_hs_result_t result);

/* Around SSL_do_handshake: was_waiting (the handshake resumes after a key operation: its latency
 * is observed) and waits (it paused on a new one: its clock starts). */
void kw_px_metrics_keyop(kw_px_conn_t *c, int was_waiting, int waits);

/* A handshake started (+1) or stopped (-1) waiting on a key server. */
void kw_px_metrics_waiting(kw_proxy_t *p, int delta);

/* A SIGHUP reload succeeded (ok 1) or failed and kept the running state (ok 0). */
void kw_px_metrics_reload(kw_proxy_t *p, int ok);

/* The Prometheus text (malloc'ed, NUL-terminated) into *out. Returns 0 or KW_ENOMEM. */
int kw_px_metrics_render(kw_proxy_t *p, char **out, size_t *len);

#endif /* KW_PROXY_METRICS_H */
