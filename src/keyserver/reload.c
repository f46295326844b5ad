/*
 * SIGHUP reload: the new key store and TLS context are built in libuv's thread pool (so a slow
 * token login or a large key directory never stalls the event loop), then swapped in by the
 * after-work callback on the loop thread, the only thread that reads s->store and s->ssl_ctx.
 * Existing SSL objects hold their own reference to the context they were made with, and jobs to
 * their store, so nothing in use is freed by the swap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "keyward/error.h"
#include "keyward/log.h"
#include "reload.h"

typedef struct reload_s {
    uv_work_t req;
    kw_ks_server_t *server;
    kw_keystore_t *store; /* result */
    SSL_CTX *ssl_ctx;     /* result */
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

/* Thread pool: everything that reads files or talks to tokens. */
static void reload_work(uv_work_t *req)
{
    reload_t *r = req->data;
    const kw_ks_config_t *cfg = r->server->cfg;
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
}

static void swap_in(kw_ks_server_t *s, reload_t *r)
{
    size_t before = kw_keystore_count(s->store);
    SSL_CTX_free(s->ssl_ctx); /* connections keep their own reference */
    s->ssl_ctx = r->ssl_ctx;
    r->ssl_ctx = NULL;
    kw_ks_server_set_store(s, r->store);
    kw_info("reloaded: %zu keys (was %zu), TLS identity from %s", kw_keystore_count(s->store),
            before, s->cfg->cert);
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
    kw_info("SIGHUP: reloading keys and certificates");
    int rc = uv_queue_work(s->loop, &r->req, reload_work, reload_done);
    if (rc != 0) {
        kw_error("reload: cannot queue the work: %s", uv_strerror(rc));
        free(r);
        return;
    }
    s->reloading = 1;
}
