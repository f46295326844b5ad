/*
 * keyward-proxy as a whole: resolves the listen and backend addresses, builds the TLS contexts
 * (which loads every key, so a key the key server lacks fails at start), opens one listener
 * per worker, runs the workers on their threads and reports counters when stopped.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "proxy.h"
#include "kw_addr.h"
#include "proxy_fetch.h"
#include "proxy_metrics.h"

static void log_start(const kw_proxy_t *p)
{
    char addr[64];
    char backend[64];
    kw_addr_format((const struct sockaddr *)&p->listen_addr, addr, sizeof(addr));
    kw_addr_format((const struct sockaddr *)&p->backend_addr, backend, sizeof(backend));
    kw_info("listening on %s with %u thread%s, backend %s%s", addr, p->nworkers,
            p->nworkers == 1 ? "" : "s", backend,
            p->cfg->proxy_protocol ? " (PROXY protocol v2)" : "");
    if (p->tls.libctx != NULL) {
        kw_info("TLS 1.2 RSA key exchange: %s", p->cfg->no_master_secret
                                                    ? "pre-master secret from the key server (0xA0)"
                                                    : "master-secret mode (0xA1)");
    }
    for (size_t i = 0; i < p->tls.nsites; i++) {
        char name[256] = "?";
        X509_NAME_oneline(X509_get_subject_name(p->tls.sites[i].leaf), name, sizeof(name));
        kw_info("certificate %zu%s: %s, key %s%s%s", i + 1, i == 0 ? " (default)" : "", name,
                p->tls.sites[i].key_desc,
                p->tls.sites[i].fetch_name != NULL ? ", fetched from the key server for " : "",
                p->tls.sites[i].fetch_name != NULL ? p->tls.sites[i].fetch_name : "");
        if (p->tls.sites[i].alt_desc != NULL) {
            kw_info("certificate %zu also has %s: for the same names with another key type, "
                    "chosen by the client's signature algorithms",
                    i + 1, p->tls.sites[i].alt_desc);
        }
    }
}

int kw_proxy_new(const kw_proxy_config_t *cfg, kw_proxy_t **out, char *err, size_t errlen)
{
    kw_proxy_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    p->cfg = cfg;
    int rc = kw_addr_resolve(cfg->listen != NULL ? cfg->listen : KW_PROXY_DEFAULT_LISTEN, 1,
                             &p->listen_addr, &p->listen_len, err, errlen);
    if (rc == 0) {
        rc = kw_addr_resolve(cfg->backend, 0, &p->backend_addr, &p->backend_len, err, errlen);
    }
    if (rc == 0) {
        rc = kw_proxy_tls_init(&p->tls, cfg, kw_px_conn_async_ready, err, errlen);
    }
    if (rc == 0) {
        rc = kw_proxy_fetch_sites(&p->tls, cfg, err, errlen);
    }
    if (rc == 0) {
        rc = kw_px_tickets_new(cfg, &p->tickets, err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < p->tls.nsites; i++) {
        rc = kw_px_tickets_setup_ctx(p->tickets, p->tls.sites[i].ctx, p->tls.sites[i].leaf);
        if (rc != 0) {
            snprintf(err, errlen, "cannot set the session tickets of certificate %zu", i + 1);
        }
    }
    p->nworkers = cfg->threads != 0 ? cfg->threads : uv_available_parallelism();
    p->workers = rc == 0 ? calloc(p->nworkers, sizeof(*p->workers)) : NULL;
    if (rc == 0 && p->workers == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = KW_ENOMEM;
    }
    for (unsigned i = 0; rc == 0 && i < p->nworkers; i++) {
        rc = kw_px_worker_init(&p->workers[i], p, i, err, errlen);
    }
    if (rc == 0 && cfg->metrics != NULL) {
        rc = kw_px_ready_new(p, err, errlen); /* before the endpoint that uses it */
    }
    if (rc == 0 && cfg->metrics != NULL) {
        rc = kw_px_metrics_start(p, cfg->metrics, cfg->metrics_token_file, err, errlen);
    }
    if (rc == 0 && kw_px_refresh_start(p) != 0) {
        snprintf(err, errlen, "cannot start the certificate refresh timer");
        rc = KW_EIO;
    }
    if (rc == 0 && kw_px_tickets_start(p->tickets, &p->workers[0].loop) != 0) {
        snprintf(err, errlen, "cannot start the session-ticket key timer");
        rc = KW_EIO;
    }
    if (rc != 0) {
        kw_proxy_free(p);
        return rc;
    }
    log_start(p);
    *out = p;
    return 0;
}

static void worker_thread(void *arg)
{
    kw_px_worker_run(arg);
    OPENSSL_thread_stop();
}

int kw_proxy_run(kw_proxy_t *p)
{
    unsigned started = 1;
    for (unsigned i = 1; i < p->nworkers; i++) {
        if (uv_thread_create(&p->workers[i].thread, worker_thread, &p->workers[i]) != 0) {
            kw_error("cannot start worker thread %u; stopping", i);
            break;
        }
        started++;
    }
    if (started < p->nworkers) {
        for (unsigned i = 0; i < started; i++) {
            kw_px_worker_stop(&p->workers[i]);
        }
    }
    kw_px_worker_run(&p->workers[0]);
    for (unsigned i = 1; i < started; i++) {
        uv_thread_join(&p->workers[i].thread);
    }
    kw_proxy_stats_t *s = &p->stats;
    kw_info(
        "stopped: %lu connections, %lu handshakes (%lu resumed, %lu waited on a key server), "
        "%lu failed, %lu timed out, %lu refused, %lu backend failures, %lu flooding; cut by the "
        "stop: %lu handshakes, %lu tunnels",
        atomic_load(&s->accepted), atomic_load(&s->handshakes), atomic_load(&s->resumed),
        atomic_load(&s->async_waits), atomic_load(&s->handshake_failures),
        atomic_load(&s->timeouts), atomic_load(&s->refused), atomic_load(&s->backend_failures),
        atomic_load(&s->floods), atomic_load(&s->cut_handshakes), atomic_load(&s->cut_tunnels));
    return started == p->nworkers ? 0 : KW_EIO;
}

void kw_proxy_free(kw_proxy_t *p)
{
    if (p == NULL) {
        return;
    }
    kw_px_metrics_stop(p);
    kw_px_ready_free(p); /* after the endpoint that uses it */
    for (unsigned i = 0; p->workers != NULL && i < p->nworkers; i++) {
        if (p->workers[i].proxy != NULL) {
            kw_px_worker_close(&p->workers[i]);
        }
    }
    free(p->workers);
    kw_px_reload_free(p);
    free(p->refresh_new);
    kw_proxy_tls_cleanup(&p->tls);
    kw_px_tickets_free(p->tickets);
    free(p);
}
