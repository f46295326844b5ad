/*
 * Fleet hooks of request dispatch (fleet.h): setting up and tearing down the authorisation
 * rules, the audit log and the upstream client, and the per-request checks request.c calls.
 */
#include <string.h>

#include "fleet/fleet.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_log.h"
#include "keystore/ticket_keys.h"
#include "kw_hex.h"

int kw_ks_fleet_init(kw_ks_fleet_t *f, uv_loop_t *loop, const kw_ks_config_t *cfg,
                     kw_ks_metrics_t *metrics, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    int rc = kw_ks_authz_new(cfg, &f->authz, err, errlen);
    if (rc == KW_ENOMEM)
        snprintf(err, errlen, "out of memory compiling the allow rules");
    if (rc == 0)
        kw_ks_fleet_log_authz(f->authz);
    if (rc == 0 && cfg->audit_log != NULL)
        rc = kw_ks_audit_open(cfg->audit_log, cfg->audit_fsync, &f->audit, err, errlen);
    if (rc == 0 && f->audit != NULL)
        kw_info("audit log %s: each line is written%s before its reply is sent", cfg->audit_log,
                cfg->audit_fsync ? " and fsync'ed" : "");
    if (rc == 0)
        rc = kw_ks_upstream_new(loop, cfg, f->audit, metrics, &f->authz, &f->upstream, err, errlen);
    if (rc == 0 && cfg->ticket_secret != NULL)
        rc = kw_ks_tickets_load(cfg->ticket_secret, cfg->ticket_rotation_s, &f->tickets, err,
                                errlen);
    if (rc == 0 && f->tickets != NULL)
        kw_info("session-ticket keys: derived from %s, a new key every %u s; served (0xA4) to "
                "edges whose allow rule names 'tickets'",
                cfg->ticket_secret, cfg->ticket_rotation_s);
    return rc;
}

void kw_ks_fleet_stop(kw_ks_fleet_t *f)
{
    kw_ks_upstream_stop(f->upstream);
}

void kw_ks_fleet_destroy(kw_ks_fleet_t *f)
{
    kw_ks_upstream_free(f->upstream);
    kw_ks_tickets_free(f->tickets);
    kw_ks_audit_close(f->audit);
    kw_ks_authz_free(f->authz);
    memset(f, 0, sizeof(*f));
}

void kw_ks_fleet_begin(const kw_ks_fleet_t *f, const kw_msg_t *msg, kw_ks_audit_rec_t *rec)
{
    if (f->audit != NULL)
        kw_ks_audit_rec_init(rec, msg);
    else
        memset(rec, 0, sizeof(*rec));
}

static const char *edge_cn(const kw_ks_peer_t *p)
{
    return p->edge != NULL ? p->edge->cn : "";
}

void kw_ks_fleet_audit(kw_ks_fleet_t *f, const kw_ks_peer_t *p, const kw_ks_audit_rec_t *rec,
                       uint8_t result)
{
    kw_ks_audit_log(f->audit, rec, edge_cn(p), result);
}

void kw_ks_fleet_log_authz(const kw_ks_authz_t *a)
{
    char ops[512];
    kw_info("operations enabled: %s",
            kw_ks_opset_describe(kw_ks_authz_enabled(a), ops, sizeof(ops)));
    if (kw_ks_authz_count(a) > 0)
        kw_info("authorisation: %zu allow rule(s); edges not named by a rule are refused",
                kw_ks_authz_count(a));
    else if (kw_ks_authz_allow_all(a))
        kw_info("authorisation: allow_all: every edge the CA vouches for may use every key");
    else
        kw_warn("authorisation: no allow rules, so every edge the CA vouches for may use every "
                "key (write allow rules, or allow_all: true / --allow-all to say so on purpose)");
}

/* One log line per connection for its first denial (the audit log has every one). */
static void log_denial(kw_ks_peer_t *p, const char *what)
{
    if (p->edge == NULL || p->edge->denied_logged)
        return;
    p->edge->denied_logged = 1;
    kw_warn("connection %llu from %s: edge '%s' is not authorised for %s (further denials on "
            "this connection are only in the audit log)",
            (unsigned long long)p->id, p->name, edge_cn(p), what);
}

/* Logs (once per connection) why opcode with the key (or "a key held upstream") was refused. */
static void log_verdict(const kw_ks_fleet_t *f, kw_ks_peer_t *p, kw_ks_verdict_t v, uint8_t opcode,
                        const char *key)
{
    char what[256];
    if (v == KW_KS_DENIED_OP && !kw_ks_authz_op_enabled(f->authz, opcode))
        snprintf(what, sizeof(what),
                 "operation %s: it is not enabled on this key server (--enable-op %s)",
                 kw_opcode_name(opcode), kw_opcode_name(opcode));
    else if (v == KW_KS_DENIED_OP)
        snprintf(what, sizeof(what), "operation %s with %s (its rule does not grant it: ops)",
                 kw_opcode_name(opcode), key);
    else
        snprintf(what, sizeof(what), "%s", key);
    log_denial(p, what);
}

int kw_ks_fleet_op_enabled(const kw_ks_fleet_t *f, kw_ks_peer_t *p, uint8_t opcode)
{
    if (kw_ks_authz_op_enabled(f->authz, opcode))
        return 1;
    log_verdict(f, p, KW_KS_DENIED_OP, opcode, "");
    return 0;
}

int kw_ks_fleet_may_use(const kw_ks_fleet_t *f, const kw_ks_peer_t *p, const kw_ks_key_t *key,
                        uint8_t opcode)
{
    return kw_ks_authz_check(f->authz, p->edge, key, opcode) == KW_KS_ALLOWED;
}

int kw_ks_fleet_key(const kw_ks_fleet_t *f, kw_ks_peer_t *p, const kw_ks_key_t *key, uint8_t opcode,
                    kw_ks_audit_rec_t *rec)
{
    kw_ks_audit_rec_key(rec, key->digest);
    kw_ks_verdict_t v = kw_ks_authz_check(f->authz, p->edge, key, opcode);
    if (v == KW_KS_ALLOWED)
        return 1;
    char what[2 * KW_DIGEST_LEN + 32];
    char hex[2 * KW_DIGEST_LEN + 1];
    kw_hex_encode(key->digest, KW_DIGEST_LEN, hex);
    snprintf(what, sizeof(what), "key sha256:%s", hex);
    log_verdict(f, p, v, opcode, what);
    return 0;
}

int kw_ks_fleet_forward(const kw_ks_fleet_t *f, kw_ks_peer_t *p, const kw_msg_t *msg,
                        const kw_ks_audit_rec_t *rec, const kw_ks_resolved_t *r, uint8_t not_found,
                        int sni_is_id)
{
    if (f->upstream == NULL || r->n_ids == 0)
        return not_found;
    if (r->n_ids > 1) {
        kw_debug("connection %llu: request %u names a key not held here by %zu ids; refused "
                 "(0x07): a forwarded request must name its key by one id",
                 (unsigned long long)p->id, msg->id, r->n_ids);
        return KW_ERR_FORMAT;
    }
    kw_ks_verdict_t v = kw_ks_authz_check_remote(f->authz, p->edge, &r->id, msg->opcode);
    if (v != KW_KS_ALLOWED) {
        log_verdict(f, p, v, msg->opcode, "a key held upstream");
        return KW_ERR_NOT_AUTHORISED;
    }
    kw_msg_t copy = kw_ks_resolve_forward_msg(msg, &r->id, sni_is_id);
    uint8_t err = kw_ks_upstream_forward(f->upstream, p, &copy, rec);
    return err == 0 ? KW_KS_PENDING : err;
}
