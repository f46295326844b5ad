/*
 * The key server's pages of its HTTP endpoint (--metrics), which src/httpd serves (kw_httpd.h).
 * Its /metrics is the Prometheus text (obs/metrics.c), /health 200 "ok" while the loop thread
 * beats (liveness; 503 "event loop stalled for N ms" when its heartbeat is older than 2 s:
 * kw_heartbeat.h), /ready 200 or 503 with the reason (readiness: "starting" until the listener
 * is bound, "stopping", a stalled loop, then obs/ready.h). At most KW_METRICS_CONNS connections
 * at once (the per-address and idle limits are kw_httpd.h's).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "keyward/error.h"
#include "kw_heartbeat.h"
#include "kw_httpd.h"
#include "obs/metrics.h"
#include "obs/ready.h"

#define KW_METRICS_CONNS 64 /* connections at once */

struct kw_ks_metrics_http_s {
    kw_httpd_t *httpd;
    kw_ks_metrics_t *metrics;
    struct kw_ks_ready_s *_Atomic ready; /* set after the start (main.c) */
    kw_heartbeat_t *_Atomic heartbeat;   /* the loop's (main.c); NULL: not watched */
};

/* Liveness: "ok", or 0 and why when the loop's heartbeat is stale (kw_heartbeat.h). */
static int health_now(void *ctx, char *why, size_t len)
{
    kw_ks_metrics_http_t *h = ctx;
    const kw_heartbeat_t *hb = atomic_load(&h->heartbeat);
    return hb == NULL || kw_heartbeat_alive(hb, why, len);
}

/* /ready: "starting" until the listener is bound, "stopping" once the loop stops taking
 * connections, the stall while the loop is stuck (as /health), else ready.c's check. */
static int ready_now(void *ctx, char *why, size_t len)
{
    kw_ks_metrics_http_t *h = ctx;
    struct kw_ks_ready_s *r = atomic_load(&h->ready);
    const kw_heartbeat_t *hb = atomic_load(&h->heartbeat);
    if (r == NULL) {
        snprintf(why, len, "starting");
        return 0;
    }
    if (hb != NULL && !kw_heartbeat_started(hb)) {
        snprintf(why, len, "stopping");
        return 0;
    }
    if (hb != NULL && !kw_heartbeat_alive(hb, why, len)) {
        return 0;
    }
    return kw_ks_ready_check(r, why, len);
}

static int metrics_now(void *ctx, char **body, size_t *len)
{
    kw_ks_metrics_http_t *h = ctx;
    return kw_ks_metrics_render(h->metrics, body, len);
}

int kw_ks_metrics_http_start(kw_ks_metrics_t *m, const char *listen, const char *token_file,
                             kw_ks_metrics_http_t **out, char *err, size_t errlen)
{
    kw_ks_metrics_http_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    h->metrics = m;
    const kw_httpd_pages_t pages = {
        .ctx = h, .health = health_now, .ready = ready_now, .metrics = metrics_now};
    int rc = kw_httpd_start(listen, token_file, KW_METRICS_CONNS, &pages, &h->httpd, err, errlen);
    if (rc != 0) {
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void kw_ks_metrics_http_stop(kw_ks_metrics_http_t *h)
{
    if (h == NULL) {
        return;
    }
    kw_httpd_stop(h->httpd);
    free(h);
}

void kw_ks_metrics_http_set_heartbeat(kw_ks_metrics_http_t *h, kw_heartbeat_t *hb)
{
    if (h != NULL) {
        atomic_store(&h->heartbeat, hb);
    }
}

void kw_ks_metrics_http_set_ready(kw_ks_metrics_http_t *h, struct kw_ks_ready_s *ready)
{
    if (h != NULL) {
        atomic_store(&h->ready, ready);
    }
}
