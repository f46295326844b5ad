/*
 * The key server's loop-thread machinery: listening socket, accept, signal-driven shutdown, the
 * check-phase flush of every connection with output, and the hand-off of finished jobs.
 */
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "net/conn.h"
#include "net/conn_idle.h"
#include "keyward/error.h"
#include "kw_log.h"
#include "kw_tls.h"
#include "kw_addr.h"
#include "kw_heartbeat.h"
#include "keystore/ticket_keys.h"
#include "engine/request.h"
#include "net/server.h"

#define KW_JOB_FREE_MAX 4096

/* Check phase: runs after the poll phase of every loop iteration, so every reply produced by
 * this iteration's reads and finished jobs goes out in one TLS write per connection. The requests
 * held for the loop are signed here (kw_ks_workers_run_held); a flush can resume reading buffered
 * requests and hold more, so this repeats until nothing is held and nothing is dirty: work never
 * waits for the next poll. On one CPU (loop_only) a spent budget ends the signing for this
 * iteration instead, and the jobs left wait for the next one (after a poll that does not block):
 * the other connections are read between batches. Audit lines are written before the replies
 * they belong to. */
static void on_check(uv_check_t *h)
{
    kw_ks_server_t *s = h->data;
    int spent = 0;
    for (;;) {
        if (!s->stopping && !spent)
            spent = kw_ks_workers_run_held(&s->eng.workers);
        if (s->dirty == NULL)
            break;
        kw_ks_audit_sync(s->eng.fleet.audit); /* the lines of these replies reach the file first */
        kw_ks_conn_t *list = s->dirty;
        s->dirty = NULL;
        while (list != NULL) {
            kw_ks_conn_t *c = list;
            list = c->next_dirty;
            c->dirty = 0;
            c->next_dirty = NULL;
            kw_ks_conn_flush(c);
            kw_ks_conn_unref(c);
        }
    }
    if (!s->stopping)
        kw_ks_workers_iteration_end(&s->eng.workers);
}

static void on_connection(uv_stream_t *listener, int status)
{
    kw_ks_server_t *s = listener->data;
    if (status < 0) {
        kw_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    kw_ks_conn_accept(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    kw_ks_server_t *s = h->data;
    kw_info("signal %d: shutting down", signum);
    kw_ks_server_stop(s);
}

static void on_hup(uv_signal_t *h, int signum)
{
    kw_ks_server_t *s = h->data;
    (void)signum;
    kw_ks_audit_reopen(s->eng.fleet.audit); /* after log rotation */
    if (s->on_hup != NULL)
        s->on_hup(s);
}

SSL_CTX *kw_ks_server_tls_ctx(const kw_ks_config_t *cfg, char *err, size_t errlen)
{
    return kw_tls_server_ctx(NULL, cfg->cert, cfg->key, cfg->ca, err, errlen);
}

/* The loop thread is alive: /health reads this stamp from the metrics thread. */
static void on_beat(uv_timer_t *t)
{
    kw_ks_server_t *s = t->data;
    kw_heartbeat_beat(s->heartbeat);
}

int kw_ks_server_init(kw_ks_server_t *s, uv_loop_t *loop, const kw_ks_config_t *cfg,
                      kw_keystore_t *store, char *err, size_t errlen)
{
    kw_ks_metrics_t *metrics = s->eng.metrics;
    kw_ks_p11_ctx_t *p11 = s->p11;
    void (*hup)(kw_ks_server_t *) = s->on_hup;
    kw_heartbeat_t *hb = s->heartbeat;
    int argc = s->argc;
    char **argv = s->argv;
    memset(s, 0, offsetof(kw_ks_server_t, read_buf));
    s->eng.metrics = metrics;
    s->p11 = p11;
    s->on_hup = hup;
    s->heartbeat = hb;
    s->argc = argc;
    s->argv = argv;
    s->ssl_ctx = kw_ks_server_tls_ctx(cfg, err, errlen);
    if (s->ssl_ctx == NULL)
        return KW_ETLS; /* before any handle exists: s->loop stays NULL for kw_ks_server_stop */
    s->loop = loop;
    s->cfg = cfg;
    s->eng.store = kw_keystore_ref(store);
    kw_ks_job_pool_init(&s->eng.jobs, KW_JOB_FREE_MAX);
    uv_check_init(loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, on_check);
    kw_ks_conn_idle_start(s);
    uv_timer_init(loop, &s->beat);
    s->beat.data = s;
    if (s->heartbeat != NULL) {
        kw_heartbeat_beat(s->heartbeat);
        uv_timer_start(&s->beat, on_beat, KW_HEARTBEAT_MS, KW_HEARTBEAT_MS);
        uv_unref((uv_handle_t *)&s->beat); /* never what keeps the loop running */
    }
    uv_signal_init(loop, &s->sig_term);
    uv_signal_init(loop, &s->sig_int);
    s->sig_term.data = s;
    s->sig_int.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &s->sig_hup);
    s->sig_hup.data = s;
    uv_signal_start(&s->sig_hup, on_hup, SIGHUP);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->eng.workers.data = &s->eng;
    s->eng.workers.metrics = s->eng.metrics;
    s->eng.workers.timeout_ns = cfg->request_timeout_ms * 1000000u;
    s->eng.workers.run_inline = 1;
    s->eng.workers.loop_only = cfg->loop_signs;
    int failed = 0;
    s->eng.rate = kw_ks_rate_new(cfg->rate_limit, cfg->rate_burst, &failed);
    if (failed) {
        snprintf(err, errlen, "out of memory setting up --rate-limit");
        return KW_ENOMEM;
    }
    if (s->eng.rate != NULL)
        kw_info("rate limit: %u operations per second per edge, bursts of %u (error 0x41 beyond)",
                kw_ks_rate_per_second(s->eng.rate), kw_ks_rate_burst(s->eng.rate));
    int rc = kw_ks_workers_start(&s->eng.workers, loop, cfg->workers, cfg->ctx_cache_slots,
                                 kw_ks_request_done);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %u worker threads", cfg->workers);
        return rc;
    }
    return kw_ks_fleet_init(&s->eng.fleet, loop, cfg, s->eng.metrics, err, errlen);
}

int kw_ks_server_listen(kw_ks_server_t *s, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    char why[256];
    const char *listen = s->cfg->listen != NULL ? s->cfg->listen : "127.0.0.1:2407";
    if (kw_addr_resolve(listen, 1, &addr, &addrlen, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--listen %s: expected HOST:PORT or [IPV6]:PORT", listen);
        return KW_ECONFIG;
    }
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, uv_strerror(rc));
        return KW_EIO;
    }
    s->listening = 1;
    if (s->cfg->loop_signs)
        kw_info("listening on %s, one CPU: the loop thread signs (one worker for PKCS#11 tokens), "
                "%zu keys",
                listen, kw_keystore_count(s->eng.store));
    else
        kw_info("listening on %s with %u workers, %zu keys", listen, s->cfg->workers,
                kw_keystore_count(s->eng.store));
    return 0;
}

void kw_ks_server_stop(kw_ks_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    if (s->loop == NULL)
        return; /* kw_ks_server_init failed before creating any handle */
    uv_close((uv_handle_t *)&s->listener, NULL);
    while (s->conns.head != NULL)
        kw_ks_conn_close(KW_LIST_ENTRY(s->conns.head, kw_ks_conn_t, link));
    kw_ks_fleet_stop(&s->eng.fleet);
    kw_ks_workers_stop(&s->eng.workers, NULL);
    on_check(&s->flush_check); /* drop dirty references */
    uv_close((uv_handle_t *)&s->flush_check, NULL);
    kw_ks_conn_idle_stop(s);
    uv_close((uv_handle_t *)&s->beat, NULL);
    if (s->heartbeat != NULL)
        kw_heartbeat_stop(s->heartbeat); /* stopping: the loop only finishes what is open */
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
}

void kw_ks_server_destroy(kw_ks_server_t *s)
{
    kw_ks_fleet_destroy(&s->eng.fleet);
    kw_ks_job_pool_destroy(&s->eng.jobs);
    kw_ks_rate_free(s->eng.rate);
    s->eng.rate = NULL;
    kw_keystore_unref(s->eng.store);
    s->eng.store = NULL;
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = NULL;
}

void kw_ks_server_swap(kw_ks_server_t *s, kw_ks_swap_t *w)
{
    if (w->ssl_ctx != NULL) {
        SSL_CTX_free(s->ssl_ctx); /* connections keep their own reference */
        s->ssl_ctx = w->ssl_ctx;
        w->ssl_ctx = NULL;
    }
    if (w->store != NULL)
        kw_ks_engine_set_store(&s->eng, w->store);
    if (w->tickets != NULL) {
        kw_ks_tickets_free(s->eng.fleet.tickets); /* OPENSSL_clear_free of the old secret */
        s->eng.fleet.tickets = w->tickets;
        w->tickets = NULL;
    }
    if (!w->set_authz)
        return;
    kw_ks_authz_t *old = s->eng.fleet.authz;
    s->eng.fleet.authz = w->authz;
    w->authz = NULL;
    for (kw_link_t *k = s->conns.head, *next; k != NULL; k = next) {
        next = k->next;
        kw_ks_conn_t *c = KW_LIST_ENTRY(k, kw_ks_conn_t, link);
        if (c->p.edge != NULL && kw_ks_edge_rematch(c->p.edge, s->eng.fleet.authz) != 0 &&
            s->eng.fleet.authz != NULL) {
            kw_warn("connection %llu: out of memory matching the new allow rules; closing",
                    (unsigned long long)c->id);
            kw_ks_conn_close(c);
        }
    }
    kw_ks_authz_free(old);
}
