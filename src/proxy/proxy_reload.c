/*
 * keyward-proxy SIGHUP: reloads the configuration (the same command line again, so the --config
 * file is read anew and the flags still override it) and everything TLS is built from: the
 * certificates and their keys, --cert-from-keyserver, the key servers, this edge's identity, the
 * CA, ALPN, master-secret mode and the key-server timeout. The new state is built on libuv's
 * thread pool (loading keys asks the key server), then put in place on worker 0's loop for new
 * handshakes; open connections keep the SSL_CTX they started with and are not touched. A reload
 * that fails (a missing file, a bad value, a key the key server lacks) changes nothing and logs
 * why. Settings the running listener and workers were made from (listen, backend, threads,
 * timeouts, max_connections, proxy_protocol, metrics and its token, log_level, and the key servers
 * /ready pings) take effect at the next start;
 * a reload that changes them says so.
 *
 * Replaced states are kept until exit (an SSL made from them may still run, and their library
 * context and provider must outlive it): each reload keeps one more, which is small.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "proxy.h"
#include "proxy_fetch.h"
#include "proxy_metrics.h"

#define KW_PX_RELOAD_RETRY_MS 50 /* a certificate refresh is running: try again after this */

typedef struct kw_px_retired_s {
    kw_proxy_config_t *cfg; /* NULL for the first state: its configuration is main()'s */
    kw_proxy_tls_t *tls;
    struct kw_px_retired_s *next;
} kw_px_retired_t;

typedef struct kw_px_reload_s {
    kw_proxy_t *proxy;
    int argc;
    char **argv;
    uv_signal_t sighup;
    uv_timer_t retry;
    uv_work_t work;
    int busy;  /* a reload is being built or waits to be put in place */
    int again; /* SIGHUP while busy: reload once more afterwards */
    /* the reload in progress */
    kw_proxy_config_t *cfg;
    kw_proxy_tls_t *tls;
    int rc;
    char err[1024];
    /* the configuration of the state in use (NULL: main()'s), and the replaced states */
    kw_proxy_config_t *cur_cfg;
    kw_px_retired_t *retired;
} kw_px_reload_t;

static void free_state(kw_proxy_config_t *cfg, kw_proxy_tls_t *tls)
{
    if (tls != NULL) {
        kw_proxy_tls_cleanup(tls);
        free(tls);
    }
    if (cfg != NULL) {
        kw_proxy_config_free(cfg);
        free(cfg);
    }
}

/* Thread pool: parse and check the configuration, build the TLS state. Touches nothing live. */
static void build(uv_work_t *req)
{
    kw_px_reload_t *r = req->data;
    int help = 0;
    r->rc = KW_ENOMEM;
    snprintf(r->err, sizeof(r->err), "out of memory");
    r->cfg = calloc(1, sizeof(*r->cfg));
    r->tls = calloc(1, sizeof(*r->tls));
    if (r->cfg == NULL || r->tls == NULL) {
        return;
    }
    kw_proxy_config_init(r->cfg);
    r->rc = kw_proxy_config_from_args(r->cfg, r->argc, r->argv, &help, r->err, sizeof(r->err));
    if (r->rc == 0) {
        r->rc = kw_proxy_config_check(r->cfg, r->err, sizeof(r->err));
    }
    if (r->rc == 0) {
        r->tls->home = &r->proxy->tls;
        r->rc = kw_proxy_tls_init(r->tls, r->cfg, kw_px_conn_async_ready, r->err, sizeof(r->err));
    }
    if (r->rc == 0) {
        r->rc = kw_proxy_fetch_sites(r->tls, r->cfg, r->err, sizeof(r->err));
    }
}

static int str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* 1 when both lists hold the same strings in the same order. */
static int same_list(const kw_strlist_t *a, const kw_strlist_t *b)
{
    if (a->n != b->n) {
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i], b->v[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Names the settings that changed but apply only at the next start. */
static void warn_restart_only(const kw_proxy_config_t *old, const kw_proxy_config_t *n)
{
    char list[512] = "";
    struct {
        const char *name;
        int changed;
    } s[] = {
        {"listen", str_differs(old->listen, n->listen)},
        {"backend", str_differs(old->backend, n->backend)},
        {"metrics", str_differs(old->metrics, n->metrics)},
        {"metrics_token_file", str_differs(old->metrics_token_file, n->metrics_token_file)},
        {"keyservers (for /ready's probe; handshakes use the new ones)",
         old->metrics != NULL && !same_list(&old->keyservers, &n->keyservers)},
        {"threads", old->threads != n->threads},
        {"proxy_protocol", old->proxy_protocol != n->proxy_protocol},
        {"handshake_timeout_ms", old->handshake_timeout_ms != n->handshake_timeout_ms},
        {"idle_timeout_ms", old->idle_timeout_ms != n->idle_timeout_ms},
        {"drain_timeout_ms", old->drain_timeout_ms != n->drain_timeout_ms},
        {"max_connections", old->max_connections != n->max_connections},
        {"cert_recheck_s", old->cert_recheck_s != n->cert_recheck_s},
        {"log_level", old->log_level != n->log_level},
    };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        if (s[i].changed) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%s%s", len > 0 ? ", " : "", s[i].name);
        }
    }
    if (list[0] != '\0') {
        kw_warn("reload: %s changed; that takes effect only when keyward-proxy is restarted", list);
    }
}

/* Copies every byte of src into dst but the lock: each state keeps its own (the live one is
 * write-locked by the caller while its contents change). */
static void copy_but_lock(kw_proxy_tls_t *dst, const kw_proxy_tls_t *src)
{
    size_t at = offsetof(kw_proxy_tls_t, lock);
    size_t after = at + sizeof(dst->lock);
    memcpy(dst, src, at);
    memcpy((char *)dst + after, (const char *)src + after, sizeof(*dst) - after);
}

/* Moves the built state into p->tls (the old one into r->tls, to be retired). Session tickets
 * issued before still resume: the new contexts take over the old ticket keys. */
static void put_in_place(kw_px_reload_t *r)
{
    kw_proxy_t *p = r->proxy;
    unsigned char keys[80];
    if (p->tls.nsites > 0 &&
        SSL_CTX_get_tlsext_ticket_keys(p->tls.sites[0].ctx, keys, sizeof(keys)) == 1) {
        for (size_t i = 0; i < r->tls->nsites; i++) {
            (void)SSL_CTX_set_tlsext_ticket_keys(r->tls->sites[i].ctx, keys, sizeof(keys));
        }
        OPENSSL_cleanse(keys, sizeof(keys));
    }
    for (size_t i = 0; i < r->tls->nsites; i++) { /* fleet tickets, session-id context */
        if (kw_px_tickets_setup_ctx(p->tickets, r->tls->sites[i].ctx, r->tls->sites[i].leaf) != 0)
            kw_warn("reload: cannot set up the session tickets of certificate %zu", i + 1);
    }
    kw_proxy_tls_t old;
    pthread_rwlock_wrlock(&p->tls.lock);
    copy_but_lock(&old, &p->tls);
    copy_but_lock(&p->tls, r->tls);
    copy_but_lock(r->tls, &old);
    pthread_rwlock_unlock(&p->tls.lock);
}

static int start_build(kw_px_reload_t *r);

static void on_retry(uv_timer_t *t);

static void apply(kw_px_reload_t *r)
{
    kw_proxy_t *p = r->proxy;
    if (p->refresh_busy) { /* it reads p->tls from the thread pool: wait for it */
        uv_timer_start(&r->retry, on_retry, KW_PX_RELOAD_RETRY_MS, 0);
        return;
    }
    kw_px_retired_t *old = calloc(1, sizeof(*old));
    kw_proxy_site_t *refresh = calloc(r->tls->nsites > 0 ? r->tls->nsites : 1, sizeof(*refresh));
    if (old == NULL || refresh == NULL) {
        free(old);
        free(refresh);
        kw_error("reload failed, still serving the previous configuration: out of memory");
        kw_px_metrics_reload(p, 0);
        free_state(r->cfg, r->tls);
    } else {
        warn_restart_only(r->cur_cfg != NULL ? r->cur_cfg : p->cfg, r->cfg);
        put_in_place(r);
        free(p->refresh_new); /* the refresh works on the sites in use: size it to them */
        p->refresh_new = refresh;
        old->cfg = r->cur_cfg;
        old->tls = r->tls;
        old->next = r->retired;
        r->retired = old;
        r->cur_cfg = r->cfg;
        int fetched = 0;
        for (size_t i = 0; i < p->tls.nsites; i++) {
            fetched = fetched || p->tls.sites[i].fetch_name != NULL;
        }
        if (fetched && !p->refresh_on && kw_px_refresh_start(p) != 0) {
            kw_warn("reload: cannot start the certificate refresh timer");
        }
        kw_info("reloaded: %zu certificate%s for new handshakes; open connections go on",
                p->tls.nsites, p->tls.nsites == 1 ? "" : "s");
        for (size_t i = 0; i < p->tls.nsites; i++) {
            char name[256] = "?";
            X509_NAME_oneline(X509_get_subject_name(p->tls.sites[i].leaf), name, sizeof(name));
            kw_info("certificate %zu%s: %s, key %s", i + 1, i == 0 ? " (default)" : "", name,
                    p->tls.sites[i].key_desc);
        }
        kw_px_metrics_reload(p, 1);
    }
    r->cfg = NULL;
    r->tls = NULL;
    r->busy = 0;
    if (r->again) {
        r->again = 0;
        start_build(r);
    }
}

static void on_retry(uv_timer_t *t)
{
    apply(t->data);
}

static void built(uv_work_t *req, int status)
{
    kw_px_reload_t *r = req->data;
    kw_proxy_t *p = r->proxy;
    if (status != 0 || r->rc != 0 || p->workers[0].stopping || p->workers[0].draining) {
        if (status == 0 && r->rc != 0) {
            kw_error("reload failed, still serving the previous configuration: %s", r->err);
            kw_px_metrics_reload(p, 0);
        }
        free_state(r->cfg, r->tls);
        r->cfg = NULL;
        r->tls = NULL;
        r->busy = 0;
        if (r->again && status == 0 && !p->workers[0].stopping && !p->workers[0].draining) {
            r->again = 0;
            start_build(r);
        }
        return;
    }
    apply(r);
}

static int start_build(kw_px_reload_t *r)
{
    r->work.data = r;
    if (uv_queue_work(r->sighup.loop, &r->work, build, built) != 0) {
        kw_error("reload failed: cannot queue it on the thread pool");
        return KW_EIO;
    }
    r->busy = 1;
    return 0;
}

static void on_sighup(uv_signal_t *s, int signum)
{
    kw_px_reload_t *r = s->data;
    (void)signum;
    if (r->busy) {
        r->again = 1; /* the file may have changed again since this reload read it */
        return;
    }
    kw_info("SIGHUP: reloading the configuration and certificates");
    start_build(r);
}

int kw_px_reload_start(kw_proxy_t *p, int argc, char **argv)
{
    kw_px_reload_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return KW_ENOMEM;
    }
    r->proxy = p;
    r->argc = argc;
    r->argv = argv;
    r->sighup.data = r;
    r->retry.data = r;
    uv_loop_t *loop = &p->workers[0].loop;
    if (uv_signal_init(loop, &r->sighup) != 0 || uv_timer_init(loop, &r->retry) != 0 ||
        uv_signal_start(&r->sighup, on_sighup, SIGHUP) != 0) {
        free(r);
        return KW_EIO;
    }
    /* Neither keeps the loop running: a stop ends it, and kw_px_worker_close closes them. */
    uv_unref((uv_handle_t *)&r->sighup);
    uv_unref((uv_handle_t *)&r->retry);
    p->reload = r;
    return 0;
}

void kw_px_reload_free(kw_proxy_t *p)
{
    kw_px_reload_t *r = p->reload;
    if (r == NULL) {
        return;
    }
    while (r->retired != NULL) {
        kw_px_retired_t *next = r->retired->next;
        free_state(r->retired->cfg, r->retired->tls);
        free(r->retired);
        r->retired = next;
    }
    free_state(r->cfg, r->tls);
    /* The configuration of the state in use: p->tls (cleaned up after this) no longer reads it. */
    free_state(r->cur_cfg, NULL);
    p->reload = NULL;
    free(r);
}
