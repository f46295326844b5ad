/*
 * 0xA4 session-ticket keys as request dispatch sees them (fleet.h kw_ks_fleet_ticket_keys): the
 * edge must be granted the key spec `tickets`; the set for the current epoch is derived here from
 * the ticket secret (keystore/ticket_keys.h) or, without one, the request goes upstream like any
 * other. The derived keys live on the stack for one reply and are cleansed.
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "fleet/fleet.h"
#include "keystore/ticket_keys.h"
#include "kw_log.h"

/* Logs (once per connection, like other denials) why the edge may not have the ticket keys. */
static void log_denied(kw_ks_peer_t *p, kw_ks_verdict_t v, int enabled)
{
    if (p->edge == NULL || p->edge->denied_logged)
        return;
    p->edge->denied_logged = 1;
    kw_warn("connection %llu from %s: edge '%s' is not authorised for the session-ticket keys "
            "(%s; further denials on this connection are only in the audit log)",
            (unsigned long long)p->id, p->name, p->edge->cn,
            !enabled               ? "this key server has no --ticket-secret and no --upstream"
            : v == KW_KS_DENIED_OP ? "its rule names 'tickets' but its ops do not grant ticket-keys"
                                   : "no allow rule for it names the key spec 'tickets'");
}

static int reply_set(kw_ks_peer_t *p, const kw_msg_t *msg, const kw_ks_tickets_t *t)
{
    kw_ticket_keys_t set;
    uint8_t buf[KW_TICKET_KEYS_LEN];
    size_t len = 0;
    int rc = kw_ks_tickets_set(t, (uint64_t)time(NULL), &set);
    if (rc == 0)
        rc = kw_ticket_keys_encode(&set, buf, sizeof(buf), &len);
    OPENSSL_cleanse(&set, sizeof(set));
    if (rc != 0) {
        kw_error("session-ticket keys: derivation failed (%d)", rc);
        return KW_ERR_INTERNAL;
    }
    if (kw_ks_peer_reply(p, msg->id, KW_OP_RESPONSE, buf, len) != 0)
        kw_ks_peer_close(p);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

int kw_ks_fleet_ticket_keys(const kw_ks_fleet_t *f, kw_ks_peer_t *p, const kw_msg_t *msg,
                            const kw_ks_audit_rec_t *rec)
{
    kw_ks_verdict_t v = kw_ks_authz_check_tickets(f->authz, p->edge);
    if (v != KW_KS_ALLOWED) {
        log_denied(p, v, kw_ks_authz_op_enabled(f->authz, KW_OP_TICKET_KEYS));
        return KW_ERR_NOT_AUTHORISED;
    }
    if (f->tickets != NULL)
        return reply_set(p, msg, f->tickets);
    if (f->upstream == NULL)
        return KW_ERR_NOT_AUTHORISED; /* 0xA4 is enabled only with a secret or an upstream */
    kw_msg_t copy;
    memset(&copy, 0, sizeof(copy));
    copy.id = msg->id;
    copy.opcode = KW_OP_TICKET_KEYS;
    copy.has_opcode = 1;
    copy.hops = msg->hops;
    copy.has_hops = msg->has_hops;
    uint8_t err = kw_ks_upstream_forward(f->upstream, p, &copy, rec);
    return err == 0 ? KW_KS_PENDING : err;
}
