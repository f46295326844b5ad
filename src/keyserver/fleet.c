/*
 * Fleet hooks of request dispatch (fleet.h): setting up and tearing down the authorisation
 * rules, the audit log and the upstream client, and the per-request checks request.c calls.
 */
#include <string.h>

#include "conn.h"
#include "fleet.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "keyward/log.h"

int kw_ks_fleet_init(kw_ks_fleet_t *f, uv_loop_t *loop, const kw_ks_config_t *cfg, char *err,
                     size_t errlen)
{
    memset(f, 0, sizeof(*f));
    int rc = kw_ks_authz_new(cfg, &f->authz, err, errlen);
    if (rc == KW_ENOMEM)
        snprintf(err, errlen, "out of memory compiling the allow rules");
    if (rc == 0 && f->authz != NULL)
        kw_info("authorisation: %zu allow rule(s); edges not named by a rule are refused",
                kw_ks_authz_count(f->authz));
    if (rc == 0 && cfg->audit_log != NULL)
        rc = kw_ks_audit_open(cfg->audit_log, cfg->audit_fsync, &f->audit, err, errlen);
    if (rc == 0 && f->audit != NULL)
        kw_info("audit log %s: each line is written%s before its reply is sent", cfg->audit_log,
                cfg->audit_fsync ? " and fsync'ed" : "");
    if (rc == 0)
        rc = kw_ks_upstream_new(loop, cfg, f->audit, &f->upstream, err, errlen);
    return rc;
}

void kw_ks_fleet_stop(kw_ks_fleet_t *f)
{
    kw_ks_upstream_stop(f->upstream);
}

void kw_ks_fleet_destroy(kw_ks_fleet_t *f)
{
    kw_ks_upstream_free(f->upstream);
    kw_ks_audit_close(f->audit);
    kw_ks_authz_free(f->authz);
    memset(f, 0, sizeof(*f));
}

void kw_ks_fleet_begin(kw_ks_conn_t *c, const kw_msg_t *msg, kw_ks_audit_rec_t *rec)
{
    if (c->server->fleet.audit != NULL)
        kw_ks_audit_rec_init(rec, msg);
    else
        memset(rec, 0, sizeof(*rec));
}

static const char *edge_cn(const kw_ks_conn_t *c)
{
    return c->edge != NULL ? c->edge->cn : "";
}

void kw_ks_fleet_audit(kw_ks_conn_t *c, const kw_ks_audit_rec_t *rec, uint8_t result)
{
    kw_ks_audit_log(c->server->fleet.audit, rec, edge_cn(c), result);
}

/* One log line per connection for its first denial (the audit log has every one). */
static void log_denial(kw_ks_conn_t *c, const char *what)
{
    if (c->edge == NULL || c->edge->denied_logged)
        return;
    c->edge->denied_logged = 1;
    kw_warn("connection %llu from %s: edge '%s' is not authorised for %s (further denials on "
            "this connection are only in the audit log)",
            (unsigned long long)c->id, c->peer, edge_cn(c), what);
}

int kw_ks_fleet_may_use(kw_ks_conn_t *c, const kw_ks_key_t *key)
{
    kw_ks_server_t *s = c->server;
    return kw_ks_authz_key_allowed(s->fleet.authz, c->edge, s->store, key);
}

int kw_ks_fleet_key(kw_ks_conn_t *c, const kw_ks_key_t *key, kw_ks_audit_rec_t *rec)
{
    kw_ks_audit_rec_key(rec, key->digest);
    if (kw_ks_fleet_may_use(c, key))
        return 1;
    char what[2 * KW_DIGEST_LEN + 32];
    char hex[2 * KW_DIGEST_LEN + 1];
    kw_hex_encode(key->digest, KW_DIGEST_LEN, hex);
    snprintf(what, sizeof(what), "key sha256:%s", hex);
    log_denial(c, what);
    return 0;
}

int kw_ks_fleet_forward(kw_ks_conn_t *c, const kw_msg_t *msg, const kw_ks_audit_rec_t *rec,
                        uint8_t not_found, int sni_ok)
{
    const kw_ks_fleet_t *f = &c->server->fleet;
    if (f->upstream == NULL)
        return not_found;
    if (!kw_ks_authz_remote_allowed(f->authz, c->edge, msg, sni_ok)) {
        log_denial(c, "a key held upstream");
        return KW_ERR_NOT_AUTHORISED;
    }
    uint8_t err = kw_ks_upstream_forward(f->upstream, c, msg, rec);
    return err == 0 ? KW_KS_PENDING : err;
}
