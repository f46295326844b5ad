/*
 * SIGHUP reload: the command line and its --config file are read again, and the new key store,
 * TLS context and allow rules are built in libuv's thread pool (so a slow token login or a large
 * key directory never stalls the event loop), then swapped in by the after-work callback on the
 * loop thread, the only thread that reads s->store, s->ssl_ctx and s->fleet.authz. Existing SSL
 * objects hold their own reference to the context they were made with, and jobs to their store,
 * so nothing in use is freed by the swap; open connections are matched against the new rules at
 * once. Settings that need a restart (listen address, workers, ...) keep their running values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "keyward/error.h"
#include "keyward/log.h"
#include "reload.h"

typedef struct reload_s {
    uv_work_t req;
    kw_ks_server_t *server;
    kw_keystore_t *store;   /* result */
    SSL_CTX *ssl_ctx;       /* result */
    kw_ks_authz_t *authz;   /* result (NULL: no rules) */
    char restart_only[256]; /* settings that changed but need a restart, or "" */
    int rc;
    char err[1024];
} reload_t;

int kw_ks_store_from_config(const kw_ks_config_t *cfg, kw_ks_p11_ctx_t *p11, kw_keystore_t **out,
                            size_t *skipped, char *err, size_t errlen)
{
    kw_ks_p11_spec_t *specs = NULL;
    if (cfg->n_pkcs11 > 0) {
        specs = calloc(cfg->n_pkcs11, sizeof(*specs));
        if (specs == NULL)
            return KW_ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_pkcs11; i++) {
        specs[i].uri = cfg->pkcs11[i].uri;
        specs[i].module = cfg->pkcs11[i].module;
        specs[i].token = cfg->pkcs11[i].token;
        specs[i].pin_file = cfg->pkcs11[i].pin_file;
    }
    kw_keystore_src_t src = {cfg->keys_dirs, cfg->n_keys_dirs, specs, cfg->n_pkcs11, p11};
    int rc = kw_keystore_load_src(&src, out, skipped, err, errlen);
    free(specs);
    return rc;
}

void kw_ks_store_metrics(kw_ks_metrics_t *m, const kw_keystore_t *store)
{
    if (m == NULL)
        return;
    size_t n = kw_keystore_count(store);
    kw_ks_metrics_cert_t *certs = calloc(n + 1, sizeof(*certs));
    size_t n_certs = 0;
    for (size_t i = 0; certs != NULL && i < n; i++) {
        const kw_ks_key_t *key = kw_keystore_get(store, i);
        int64_t t = kw_ks_metrics_cert_not_after(key->chain_der, key->chain_der_len);
        if (t < 0)
            continue;
        certs[n_certs].key = key->name;
        certs[n_certs].not_after = t;
        n_certs++;
    }
    if (certs == NULL || kw_ks_metrics_set_keys(m, n, certs, n_certs) != 0)
        kw_warn("metrics: out of memory publishing the key list");
    free(certs);
}

/* Appends name to list (", "-separated) when a and b differ (NULL equals NULL). */
static void note_change(char *list, size_t cap, const char *name, const char *a, const char *b)
{
    int same = a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
    if (same)
        return;
    size_t len = strlen(list);
    snprintf(list + len, cap - len, "%s%s", len > 0 ? ", " : "", name);
}

/* The settings read once at start: a changed value is reported, not applied. */
static void restart_only(const kw_ks_config_t *run, const kw_ks_config_t *cfg, char *list,
                         size_t cap)
{
    char a[32], b[32];
    note_change(list, cap, "listen", run->listen, cfg->listen);
    snprintf(a, sizeof(a), "%u", run->workers);
    snprintf(b, sizeof(b), "%u", cfg->workers);
    note_change(list, cap, "workers", a, b);
    note_change(list, cap, "metrics", run->metrics, cfg->metrics);
    note_change(list, cap, "audit_log", run->audit_log, cfg->audit_log);
    note_change(list, cap, "user", run->user, cfg->user);
    int upstreams_differ = run->n_upstreams != cfg->n_upstreams;
    for (size_t i = 0; !upstreams_differ && i < run->n_upstreams; i++)
        upstreams_differ = strcmp(run->upstreams[i], cfg->upstreams[i]) != 0;
    note_change(list, cap, "upstream", upstreams_differ ? "old" : NULL, NULL);
}

/* Builds store, TLS context and rules from cfg. */
static void build(reload_t *r, const kw_ks_config_t *cfg)
{
    size_t skipped = 0;
    r->rc =
        kw_ks_store_from_config(cfg, r->server->p11, &r->store, &skipped, r->err, sizeof(r->err));
    if (r->rc == 0 && skipped > 0) {
        /* A broken file means the change is wrong: keep every key that works now. */
        snprintf(r->err, sizeof(r->err),
                 "%zu key file(s) refused (see the lines above); fix or "
                 "remove them and send SIGHUP again",
                 skipped);
        r->rc = KW_ECONFIG;
    }
    if (r->rc == 0) {
        r->ssl_ctx = kw_ks_server_tls_ctx(cfg, r->err, sizeof(r->err));
        if (r->ssl_ctx == NULL)
            r->rc = KW_ETLS;
    }
    if (r->rc == 0)
        r->rc = kw_ks_authz_new(cfg, &r->authz, r->err, sizeof(r->err));
}

/* Thread pool: everything that reads files or talks to tokens. */
static void reload_work(uv_work_t *req)
{
    reload_t *r = req->data;
    kw_ks_server_t *s = r->server;
    if (s->argv == NULL) { /* embedded use: the configuration given at start */
        build(r, s->cfg);
        return;
    }
    kw_ks_config_t cfg;
    char why[768] = "";
    kw_ks_config_defaults(&cfg);
    r->rc = kw_ks_config_load(&cfg, s->argc, s->argv, why, sizeof(why));
    if (r->rc == 0)
        r->rc = kw_ks_config_validate(&cfg, why, sizeof(why));
    if (r->rc != 0)
        snprintf(r->err, sizeof(r->err), "configuration: %s", why);
    else {
        restart_only(s->cfg, &cfg, r->restart_only, sizeof(r->restart_only));
        build(r, &cfg);
    }
    kw_ks_config_free(&cfg); /* the results hold copies of what they need */
}

/* Swaps the allow rules and matches every open connection's edge against them at once, so a
 * removed rule ends that edge's access on connections already open. */
static void swap_authz(kw_ks_server_t *s, kw_ks_authz_t *authz)
{
    kw_ks_authz_t *old = s->fleet.authz;
    s->fleet.authz = authz;
    for (kw_ks_conn_t *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->edge != NULL && kw_ks_edge_rematch(c->edge, authz) != 0 && authz != NULL) {
            kw_warn("connection %llu: out of memory matching the new allow rules; closing",
                    (unsigned long long)c->id);
            kw_ks_conn_close(c);
        }
    }
    kw_ks_authz_free(old);
}

static void swap_in(kw_ks_server_t *s, reload_t *r)
{
    size_t before = kw_keystore_count(s->store);
    SSL_CTX_free(s->ssl_ctx); /* connections keep their own reference */
    s->ssl_ctx = r->ssl_ctx;
    r->ssl_ctx = NULL;
    kw_ks_server_set_store(s, r->store);
    swap_authz(s, r->authz);
    r->authz = NULL;
    kw_info("reloaded: %zu keys (was %zu), %zu allow rule(s), TLS identity%s",
            kw_keystore_count(s->store), before, kw_ks_authz_count(s->fleet.authz),
            s->argv != NULL ? " and settings from the command line and config file" : "");
    if (r->restart_only[0] != '\0')
        kw_warn("reload: changed but only applied at a restart, running values kept: %s",
                r->restart_only);
    kw_ks_store_metrics(s->metrics, s->store);
    kw_ks_metrics_reload(s->metrics, 1);
}

/* Loop thread: swap in the result, or keep everything and say why. */
static void reload_done(uv_work_t *req, int status)
{
    reload_t *r = req->data;
    kw_ks_server_t *s = r->server;
    s->reloading = 0;
    if (status != 0 || s->stopping) {
        if (status != 0)
            kw_warn("reload cancelled: %s", uv_strerror(status));
    } else if (r->rc != 0) {
        kw_warn("reload failed, keeping the old keys and certificates: %s", r->err);
        kw_ks_metrics_reload(s->metrics, 0);
    } else {
        swap_in(s, r);
    }
    kw_keystore_unref(r->store);
    SSL_CTX_free(r->ssl_ctx);
    kw_ks_authz_free(r->authz);
    free(r);
    if (s->reload_pending && !s->stopping) {
        s->reload_pending = 0;
        kw_ks_reload_start(s);
    }
}

void kw_ks_reload_start(kw_ks_server_t *s)
{
    if (s->stopping)
        return;
    if (s->reloading) {
        s->reload_pending = 1;
        kw_info("SIGHUP: a reload is running; another follows it");
        return;
    }
    reload_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        kw_error("reload: out of memory");
        return;
    }
    r->server = s;
    r->req.data = r;
    kw_info("SIGHUP: reloading the configuration, keys, certificates and allow rules");
    int rc = uv_queue_work(s->loop, &r->req, reload_work, reload_done);
    if (rc != 0) {
        kw_error("reload: cannot queue the work: %s", uv_strerror(rc));
        free(r);
        return;
    }
    s->reloading = 1;
}
