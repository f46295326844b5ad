/*
 * SIGHUP reload: the command line and its --config file are read again, and the new key store,
 * TLS context and allow rules are built in libuv's thread pool (so a slow token login or a large
 * key directory never stalls the event loop), then swapped in by the after-work callback on the
 * loop thread through the server's one swap function (kw_ks_server_swap), the only code that
 * writes s->eng.store, s->ssl_ctx and s->eng.fleet.authz. Existing SSL objects hold their own
 * reference to the context they were made with, and jobs to their store, so nothing in use is
 * freed by the swap; open connections are matched against the new rules at once. Settings that
 * need a restart (listen address, workers, ...) keep their running values.
 *
 * Three parts apply independently: the keys with the TLS identity, the allow rules with the
 * enabled operations, and the ticket secret (--ticket-secret, read again with the checks of the
 * start; a secret that fails them keeps the running one). A broken key file keeps the running keys
 * but not the running rules (the change may have narrowed them); rules that go from some to none
 * are refused unless the new configuration says allow_all: true. A configuration that cannot be
 * read changes nothing. The log names what changed and what failed. After the swap the freed
 * store's pages go back to the system (malloc_trim), so RSS after a reload returns near its figure
 * before.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "config/config_load.h"
#include "fleet/authz.h"
#include "keyward/error.h"
#include "kw_log.h"
#include "keystore/hygiene.h"
#include "keystore/ticket_keys.h"
#include "net/reload.h"
#include "obs/audit.h"

typedef struct reload_s {
    uv_work_t req;
    kw_ks_server_t *server;
    kw_keystore_t *store;     /* result with ssl_ctx, or NULL (keys_err says why) */
    SSL_CTX *ssl_ctx;         /* result with store, or NULL */
    kw_ks_authz_t *authz;     /* result, or NULL (authz_err says why) */
    kw_ks_tickets_t *tickets; /* the ticket secret read again, or NULL (none, or tickets_err) */
    char restart_only[256];   /* settings that changed but need a restart, or "" */
    int rc;                   /* the configuration could not be read: nothing applies */
    char err[1024];
    char keys_err[768];
    char authz_err[768];
    char tickets_err[768]; /* "" unless the ticket secret was refused */
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
    snprintf(a, sizeof(a), "%u%s", run->workers, run->loop_signs ? " (loop signs)" : "");
    snprintf(b, sizeof(b), "%u%s", cfg->workers, cfg->loop_signs ? " (loop signs)" : "");
    note_change(list, cap, "workers", a, b);
    note_change(list, cap, "metrics", run->metrics, cfg->metrics);
    note_change(list, cap, "audit_log", run->audit_log, cfg->audit_log);
    note_change(list, cap, "user", run->user, cfg->user);
    int upstreams_differ = run->n_upstreams != cfg->n_upstreams;
    for (size_t i = 0; !upstreams_differ && i < run->n_upstreams; i++)
        upstreams_differ = strcmp(run->upstreams[i], cfg->upstreams[i]) != 0;
    note_change(list, cap, "upstream", upstreams_differ ? "old" : NULL, NULL);
    /* Adding or removing the secret changes which operations are enabled: a restart. */
    note_change(list, cap, "ticket_secret (added or removed)", run->ticket_secret ? "" : NULL,
                cfg->ticket_secret ? "" : NULL);
}

/* Reads the ticket secret of cfg again (its file may have been replaced) when the server runs
 * with one; a file that fails the start's checks leaves r->tickets NULL and says why. */
static void load_tickets(reload_t *r, const kw_ks_config_t *cfg)
{
    if (cfg->ticket_secret == NULL || r->server->cfg->ticket_secret == NULL)
        return;
    if (kw_ks_tickets_load(cfg->ticket_secret, cfg->ticket_rotation_s, &r->tickets, r->tickets_err,
                           sizeof(r->tickets_err)) != 0) {
        r->tickets = NULL;
        if (r->tickets_err[0] == '\0')
            snprintf(r->tickets_err, sizeof(r->tickets_err), "cannot read the ticket secret %s",
                     cfg->ticket_secret);
    }
}

/* Builds store, TLS context and rules from cfg. The key store and TLS identity are one part (both
 * or neither); the allow rules and enabled operations another, built whatever the keys do, so a
 * broken key file never keeps rules that were meant to narrow access. */
static void build(reload_t *r, const kw_ks_config_t *cfg)
{
    size_t skipped = 0;
    int rc = kw_ks_store_from_config(cfg, r->server->p11, &r->store, &skipped, r->keys_err,
                                     sizeof(r->keys_err));
    (void)kw_ks_hygiene_secure_report(r->store != NULL ? kw_keystore_count(r->store) : 0);
    if (rc == 0 && skipped > 0) {
        /* A broken file means the change is wrong: keep every key that works now. */
        snprintf(r->keys_err, sizeof(r->keys_err),
                 "%zu key file(s) refused (see the lines above); fix or "
                 "remove them and send SIGHUP again",
                 skipped);
        rc = KW_ECONFIG;
    }
    if (rc == 0) {
        r->ssl_ctx = kw_ks_server_tls_ctx(cfg, r->keys_err, sizeof(r->keys_err));
        if (r->ssl_ctx == NULL)
            rc = KW_ETLS;
    }
    if (rc != 0) {
        kw_keystore_unref(r->store);
        r->store = NULL;
    }
    if (kw_ks_authz_new(cfg, &r->authz, r->authz_err, sizeof(r->authz_err)) != 0)
        r->authz = NULL;
    load_tickets(r, cfg);
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
    if (r->rc == 0)
        r->rc = kw_ks_authz_validate(&cfg, why, sizeof(why));
    if (r->rc != 0)
        snprintf(r->err, sizeof(r->err), "configuration: %s", why);
    else {
        restart_only(s->cfg, &cfg, r->restart_only, sizeof(r->restart_only));
        build(r, &cfg);
    }
    kw_ks_config_free(&cfg); /* the results hold copies of what they need */
}

/* Appends "SEP text" to out (cap bytes), cut to fit. */
static void add_text(char *out, size_t cap, const char *sep, const char *text)
{
    size_t len = strlen(out);
    if (len + 1 < cap)
        snprintf(out + len, cap - len, "%s%s", len > 0 ? sep : "", text);
}

/* "keys: N, was M; added: a, b; removed: c" into out. */
static void describe_keys(const kw_keystore_t *old, const kw_keystore_t *cur, char *out, size_t cap)
{
    char added[512] = "";
    char removed[512] = "";
    for (size_t i = 0; i < kw_keystore_count(cur); i++) {
        const kw_ks_key_t *k = kw_keystore_get(cur, i);
        if (old == NULL || kw_keystore_find_digest(old, k->digest) == NULL)
            add_text(added, sizeof(added), ", ", k->name);
    }
    for (size_t i = 0; old != NULL && i < kw_keystore_count(old); i++) {
        const kw_ks_key_t *k = kw_keystore_get(old, i);
        if (kw_keystore_find_digest(cur, k->digest) == NULL)
            add_text(removed, sizeof(removed), ", ", k->name);
    }
    snprintf(out, cap, "keys: %zu, was %zu%s%s%s%s", kw_keystore_count(cur),
             old != NULL ? kw_keystore_count(old) : 0, added[0] ? "; added: " : "", added,
             removed[0] ? "; removed: " : "", removed);
}

static int has_rule(const kw_ks_authz_t *a, const char *text)
{
    for (size_t i = 0; i < kw_ks_authz_count(a); i++)
        if (strcmp(kw_ks_authz_rule_text(a, i), text) == 0)
            return 1;
    return 0;
}

/* "allow rules: N rule(s), was M; removed: R; added: A; operations enabled: X, was Y" into out,
 * or "" when nothing changed. */
static void describe_rules(const kw_ks_authz_t *old, const kw_ks_authz_t *cur, char *out,
                           size_t cap)
{
    char removed[1024] = "";
    char added[1024] = "";
    for (size_t i = 0; i < kw_ks_authz_count(old); i++)
        if (!has_rule(cur, kw_ks_authz_rule_text(old, i)))
            add_text(removed, sizeof(removed), " | ", kw_ks_authz_rule_text(old, i));
    for (size_t i = 0; i < kw_ks_authz_count(cur); i++)
        if (!has_rule(old, kw_ks_authz_rule_text(cur, i)))
            add_text(added, sizeof(added), " | ", kw_ks_authz_rule_text(cur, i));
    out[0] = '\0';
    if (removed[0] != '\0' || added[0] != '\0' || kw_ks_authz_count(old) != kw_ks_authz_count(cur))
        snprintf(out, cap, "allow rules: %zu rule(s), was %zu%s%s%s%s", kw_ks_authz_count(cur),
                 kw_ks_authz_count(old), removed[0] ? "; removed: " : "", removed,
                 added[0] ? "; added: " : "", added);
    if (kw_ks_authz_allow_all(old) != kw_ks_authz_allow_all(cur))
        add_text(out, cap, "; ", kw_ks_authz_allow_all(cur) ? "allow_all: on" : "allow_all: off");
    const kw_ks_opset_t *a = kw_ks_authz_enabled(old);
    const kw_ks_opset_t *b = kw_ks_authz_enabled(cur);
    if (a != NULL && b != NULL && !kw_ks_opset_equal(a, b)) {
        char was[256], now[256], line[600];
        snprintf(line, sizeof(line), "operations enabled: %s, was %s",
                 kw_ks_opset_describe(b, now, sizeof(now)),
                 kw_ks_opset_describe(a, was, sizeof(was)));
        add_text(out, cap, "; ", line);
    }
}

/* Whether the new rules may replace the running ones; the reason in r->authz_err when not. */
static int rules_acceptable(const kw_ks_server_t *s, reload_t *r)
{
    if (r->authz == NULL)
        return 0;
    size_t before = kw_ks_authz_count(s->eng.fleet.authz);
    if (before > 0 && kw_ks_authz_count(r->authz) == 0 && !kw_ks_authz_allow_all(r->authz)) {
        snprintf(r->authz_err, sizeof(r->authz_err),
                 "the new configuration has no allow rules, which would let every edge use every "
                 "key; write allow_all: true (or --allow-all) to mean that");
        return 0;
    }
    return 1;
}

/* What a ticket secret read again changes against the running one (NULL: none running). */
typedef struct tickets_change_s {
    int secret;   /* other bytes: other keys */
    int rotation; /* another --ticket-rotation-s (rotation_was: the running one) */
    unsigned rotation_was;
} tickets_change_t;

static tickets_change_t tickets_compare(const kw_ks_tickets_t *run, const kw_ks_tickets_t *cur)
{
    tickets_change_t c = {0, 0, 0};
    if (cur == NULL)
        return c;
    c.secret = run == NULL || !kw_ks_tickets_same_secret(run, cur);
    c.rotation_was = run != NULL ? kw_ks_tickets_rotation(run) : 0;
    c.rotation = run != NULL && c.rotation_was != kw_ks_tickets_rotation(cur);
    return c;
}

/* Applies what was built: keys and TLS identity when both loaded, rules when acceptable. */
/* The audit log's lines of a reload, one per part (tickets NULL: no ticket secret here). */
static void audit_parts(kw_ks_audit_t *audit, int keys_ok, const char *rules, const char *tickets,
                        int rotation)
{
    kw_ks_audit_reload(audit, "keys", keys_ok ? "applied" : "failed");
    kw_ks_audit_reload(audit, "allow_rules", rules);
    if (tickets != NULL)
        kw_ks_audit_reload(audit, "ticket_secret", tickets);
    if (rotation)
        kw_ks_audit_reload(audit, "ticket_rotation", "changed");
}

static void swap_in(kw_ks_server_t *s, reload_t *r)
{
    size_t before = kw_keystore_count(s->eng.store);
    size_t rules_before = kw_ks_authz_count(s->eng.fleet.authz);
    char keys[1200] = "";
    char rules[2600] = "";
    int keys_ok = r->store != NULL && r->ssl_ctx != NULL;
    int rules_ok = rules_acceptable(s, r);
    int tickets_ok = r->tickets_err[0] == '\0';
    tickets_change_t tc = tickets_compare(s->eng.fleet.tickets, r->tickets);
    kw_ks_swap_t w = {.ssl_ctx = NULL};
    if (tc.secret || tc.rotation) {
        w.tickets = r->tickets;
        r->tickets = NULL;
    }
    if (keys_ok) {
        describe_keys(s->eng.store, r->store, keys, sizeof(keys));
        w.ssl_ctx = r->ssl_ctx;
        r->ssl_ctx = NULL;
        w.store = r->store;
    }
    if (rules_ok) {
        describe_rules(s->eng.fleet.authz, r->authz, rules, sizeof(rules));
        w.authz = r->authz;
        w.set_authz = 1;
        r->authz = NULL;
    }
    kw_ks_server_swap(s, &w);
    if (keys_ok)
        kw_ks_store_metrics(s->eng.metrics, s->eng.store);
    if (keys_ok)
        kw_info("reloaded: %zu keys (was %zu), %zu allow rule(s), TLS identity%s",
                kw_keystore_count(s->eng.store), before, kw_ks_authz_count(s->eng.fleet.authz),
                s->argv != NULL ? " and settings from the command line and config file" : "");
    else
        kw_warn("reload failed, keeping the old keys and certificates: %s", r->keys_err);
    if (!rules_ok)
        kw_warn("reload failed for the allow rules, keeping the running %zu rule(s) and "
                "enabled operations: %s",
                rules_before, r->authz_err);
    else if (!keys_ok)
        kw_info("reload: allow rules applied although the keys were not reloaded: %zu rule(s)",
                kw_ks_authz_count(s->eng.fleet.authz));
    if (keys[0] != '\0')
        kw_info("reload: %s", keys);
    if (rules[0] != '\0')
        kw_info("reload: %s", rules);
    else if (rules_ok)
        kw_info("reload: allow rules and enabled operations unchanged");
    if (r->restart_only[0] != '\0')
        kw_warn("reload: changed but only applied at a restart, running values kept: %s",
                r->restart_only);
    if (tc.secret)
        kw_info("reload: the ticket secret changed: 0xA4 now serves keys derived from the new "
                "one; edges take them at their next fetch");
    if (tc.rotation)
        kw_info("reload: a ticket key now encrypts for %u s (--ticket-rotation-s), was %u s",
                kw_ks_tickets_rotation(s->eng.fleet.tickets), tc.rotation_was);
    if (!tickets_ok)
        kw_error("reload failed for the ticket secret, keeping the running one: %s",
                 r->tickets_err);
    else if (s->eng.fleet.tickets != NULL && !tc.secret && !tc.rotation)
        kw_info("reload: ticket secret unchanged");
    const char *tickets_word = NULL; /* no ticket secret configured: no line */
    if (!tickets_ok)
        tickets_word = "failed";
    else if (s->eng.fleet.tickets != NULL)
        tickets_word = tc.secret ? "changed" : "unchanged";
    audit_parts(s->eng.fleet.audit, keys_ok,
                rules_ok ? (rules[0] != '\0' ? "changed" : "unchanged") : "failed", tickets_word,
                tc.rotation);
    kw_ks_metrics_reload(s->eng.metrics, keys_ok && rules_ok && tickets_ok);
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
        kw_warn("reload failed, keeping the old keys, certificates and allow rules: %s", r->err);
        kw_ks_audit_reload(s->eng.fleet.audit, "config", "failed");
        kw_ks_metrics_reload(s->eng.metrics, 0);
    } else {
        swap_in(s, r);
    }
    kw_keystore_unref(r->store);
    SSL_CTX_free(r->ssl_ctx);
    kw_ks_authz_free(r->authz);
    kw_ks_tickets_free(r->tickets);
    free(r);
    /* The new store was built in a pool thread's malloc arena; the old one (or the refused new
     * one) has just been freed into another, where glibc keeps the pages: give them back, or RSS
     * after a reload stays near twice the store's (38.8 -> 65.8 MiB with 10,000 keys). */
    (void)malloc_trim(0);
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
    kw_info("SIGHUP: reloading the configuration, keys, certificates, allow rules and ticket "
            "secret");
    int rc = uv_queue_work(s->loop, &r->req, reload_work, reload_done);
    if (rc != 0) {
        kw_error("reload: cannot queue the work: %s", uv_strerror(rc));
        free(r);
        return;
    }
    s->reloading = 1;
}
