/*
 * Key server metrics: counters and gauges updated lock-free (C11 atomics) from the loop thread and
 * the worker threads, and their rendering in the Prometheus text exposition format. The HTTP side
 * (GET /metrics) is metrics_http.c. Every update function accepts a NULL metrics object and then
 * does nothing, so call sites need no checks when metrics are off.
 */
#ifndef KW_METRICS_H
#define KW_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct kw_ks_metrics_s kw_ks_metrics_t;

/* A key's certificate expiry, for kw_ks_metrics_set_keys. */
typedef struct kw_ks_metrics_cert_s {
    const char *key;   /* key name (label value) */
    int64_t not_after; /* Unix time */
} kw_ks_metrics_cert_t;

/* Upper bounds (seconds) of the latency histogram buckets; +Inf is implicit. */
#define KW_METRICS_BUCKETS 15

/* A new metrics object for a server with `workers` worker threads; NULL when out of memory. */
kw_ks_metrics_t *kw_ks_metrics_new(unsigned workers);
void kw_ks_metrics_free(kw_ks_metrics_t *m);

/* One request answered: its opcode, 0 or the kw_remote_error_t sent, and the time from reading
 * the request to queuing its reply. Any thread. */
void kw_ks_metrics_request(kw_ks_metrics_t *m, uint8_t opcode, uint8_t result,
                           uint64_t duration_ns);

/* Gauges: requests queued or running on workers; open connections. Any thread. */
void kw_ks_metrics_inflight_add(kw_ks_metrics_t *m, int64_t delta);
void kw_ks_metrics_connections_add(kw_ks_metrics_t *m, int64_t delta);

/* Time a worker spent on one job. Worker threads. */
void kw_ks_metrics_worker_busy(kw_ks_metrics_t *m, uint64_t ns);

/* The key store changed (start or reload): number of keys and the certificate expiries (copied).
 * Returns 0 or KW_ENOMEM (the previous list is then kept). */
int kw_ks_metrics_set_keys(kw_ks_metrics_t *m, size_t keys, const kw_ks_metrics_cert_t *certs,
                           size_t n_certs);

/* The key gauge (keys held now), for /ready. */
uint64_t kw_ks_metrics_keys(kw_ks_metrics_t *m);

/* A reload finished (ok = 1) or was refused (ok = 0). */
void kw_ks_metrics_reload(kw_ks_metrics_t *m, int ok);

/* notAfter of the first certificate of a DER chain (leaf first) as Unix time; -1 when unreadable.
 */
int64_t kw_ks_metrics_cert_not_after(const uint8_t *der, size_t len);

/* Renders every metric (Prometheus text format 0.0.4) into a NUL-terminated malloc'ed string.
 * Returns 0 or KW_ENOMEM. Any thread. */
int kw_ks_metrics_render(kw_ks_metrics_t *m, char **out, size_t *len);

/* The HTTP endpoint (metrics_http.c: this server's pages; src/httpd serves them): m at /metrics,
 * /health and /ready, on listen ("HOST:PORT" or "[V6]:PORT") from its own thread; with token_file
 * (may be NULL), /metrics only to requests that carry "Authorization: Bearer" and the file's
 * first line. Returns 0 and a handle, or a negative KW_E* with a message in err. */
typedef struct kw_ks_metrics_http_s kw_ks_metrics_http_t;
int kw_ks_metrics_http_start(kw_ks_metrics_t *m, const char *listen, const char *token_file,
                             kw_ks_metrics_http_t **out, char *err, size_t errlen);
void kw_ks_metrics_http_stop(kw_ks_metrics_http_t *h);
/* /ready answers with this probe (obs/ready.h; not owned; NULL: /ready says 503). */
struct kw_ks_ready_s;
void kw_ks_metrics_http_set_ready(kw_ks_metrics_http_t *h, struct kw_ks_ready_s *ready);
/* /health watches this heartbeat of the loop thread (kw_heartbeat.h; not owned; NULL: not). */
struct kw_heartbeat_s;
void kw_ks_metrics_http_set_heartbeat(kw_ks_metrics_http_t *h, struct kw_heartbeat_s *hb);

#endif /* KW_METRICS_H */
