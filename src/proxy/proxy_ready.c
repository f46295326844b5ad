/*
 * /health and /ready of keyward-proxy's metrics endpoint (proxy.h), answered on the metrics
 * thread. /health: 503 "event loop N stalled for M ms" when a worker's heartbeat is older than
 * KW_HEARTBEAT_STALL_MS (kw_heartbeat.h), else 200. /ready: 200 only when every worker's loop
 * runs (its listener open) and none is stalled, draining or stopping, the TLS contexts hold a
 * certificate and, with --keyserver, a key server answers a ping now; else 503 and why. The ping
 * goes through a client of the proxy's own (same servers and identity, 1 s): the provider's
 * client is driven only by key operations, so without traffic its state would say nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "proxy.h"

#define KW_PX_READY_PING_MS 1000

struct kw_px_ready_s {
    kw_client_t *client; /* NULL without --keyserver */
    char servers[512];
};

int kw_px_ready_new(kw_proxy_t *p, char *err, size_t errlen)
{
    const kw_proxy_config_t *cfg = p->cfg;
    struct kw_px_ready_s *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    for (size_t i = 0; i < cfg->keyservers.n; i++) {
        size_t used = strlen(r->servers);
        snprintf(r->servers + used, sizeof(r->servers) - used, "%s%s", i > 0 ? "," : "",
                 cfg->keyservers.v[i]);
    }
    if (cfg->keyservers.n > 0) {
        kw_client_config_t cc;
        memset(&cc, 0, sizeof(cc));
        cc.servers = r->servers;
        cc.cert_file = cfg->client_cert;
        cc.key_file = cfg->client_key;
        cc.ca_file = cfg->ca;
        cc.timeout_ms = KW_PX_READY_PING_MS;
        cc.connect_timeout_ms = KW_PX_READY_PING_MS;
        char why[512] = "";
        int rc = kw_client_new(&cc, &r->client, why, sizeof(why));
        if (rc != 0) {
            snprintf(err, errlen, "/ready: %s", why);
            free(r);
            return rc;
        }
    }
    p->ready = r;
    return 0;
}

void kw_px_ready_free(kw_proxy_t *p)
{
    if (p->ready == NULL) {
        return;
    }
    kw_client_free(p->ready->client);
    free(p->ready);
    p->ready = NULL;
}

int kw_px_health_check(kw_proxy_t *p, char *why, size_t len)
{
    for (unsigned i = 0; i < p->nworkers; i++) {
        char stalled[128];
        if (!kw_heartbeat_alive(&p->workers[i].heartbeat, stalled, sizeof(stalled))) {
            snprintf(why, len, "%s (thread %u)", stalled, i);
            return 0;
        }
    }
    snprintf(why, len, "ok");
    return 1;
}

/* Every loop runs, beats and takes connections; else 0 with why. */
static int loops_ready(kw_proxy_t *p, char *why, size_t len)
{
    for (unsigned i = 0; i < p->nworkers; i++) {
        kw_px_worker_t *w = &p->workers[i];
        int mode = atomic_load(&w->stop_mode);
        if (mode != KW_PX_RUN) {
            snprintf(why, len, "%s", mode == KW_PX_DRAIN ? "draining (SIGQUIT)" : "stopping");
            return 0;
        }
        if (!kw_heartbeat_started(&w->heartbeat)) {
            snprintf(why, len, "starting");
            return 0;
        }
    }
    return kw_px_health_check(p, why, len);
}

/* A key server answers a ping through the probe's client; else 0 with why. */
static int keyserver_ready(struct kw_px_ready_s *r, char *why, size_t len)
{
    char failed[384];
    if (kw_client_ping(r->client, NULL, failed, sizeof(failed)) == 0) {
        return 1;
    }
    snprintf(why, len, "no key server answers (%s): %s", r->servers, failed);
    return 0;
}

int kw_px_ready_check(kw_proxy_t *p, char *why, size_t len)
{
    if (!loops_ready(p, why, len)) {
        return 0;
    }
    pthread_rwlock_rdlock(&p->tls.lock);
    size_t sites = p->tls.nsites;
    pthread_rwlock_unlock(&p->tls.lock);
    if (sites == 0) {
        snprintf(why, len, "no certificate loaded");
        return 0;
    }
    struct kw_px_ready_s *r = p->ready;
    if (r != NULL && r->client != NULL && !keyserver_ready(r, why, len)) {
        return 0;
    }
    snprintf(why, len, "ready: %zu certificate%s, %u thread%s%s%s", sites, sites == 1 ? "" : "s",
             p->nworkers, p->nworkers == 1 ? "" : "s",
             r != NULL && r->client != NULL ? ", key server answers: " : "",
             r != NULL && r->client != NULL ? r->servers : "");
    return 1;
}
