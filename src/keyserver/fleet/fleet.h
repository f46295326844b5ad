/*
 * The key server's fleet features as request dispatch (request.c) sees them: authorisation of
 * the edge for a key (authz.h), the audit line of every operation (audit.h) and forwarding of
 * what this server does not hold to its upstreams (upstream.h). One kw_ks_fleet_t lives in the
 * server; each part is NULL when not configured, and every hook is then (nearly) free.
 */
#ifndef KW_KS_FLEET_H
#define KW_KS_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "obs/audit.h"
#include "fleet/authz.h"
#include "config/config.h"
#include "keystore/keystore.h"
#include "engine/resolve.h"
#include "fleet/upstream.h"
#include "obs/metrics.h"
#include "peer/peer.h"

/* A request's result when its answer comes later (a job was queued, or it was forwarded). */
#define KW_KS_PENDING 0x100

typedef struct kw_ks_fleet_s {
    kw_ks_authz_t *authz;       /* NULL: no rules, every edge may use every key */
    kw_ks_audit_t *audit;       /* NULL: no audit log */
    kw_ks_upstream_t *upstream; /* NULL: no upstream */
} kw_ks_fleet_t;

/* Sets up the parts cfg asks for (metrics, may be NULL, counts forwarded requests). Returns 0 or
 * a negative KW_E* with the reason in err (what was set up is released by
 * kw_ks_fleet_stop/kw_ks_fleet_destroy as usual). */
int kw_ks_fleet_init(kw_ks_fleet_t *f, uv_loop_t *loop, const kw_ks_config_t *cfg,
                     kw_ks_metrics_t *metrics, char *err, size_t errlen);

/* At server stop, after the connections were closed: cancels forwarded requests. */
void kw_ks_fleet_stop(kw_ks_fleet_t *f);

/* After the loop ended: writes the rest of the audit log and frees everything. */
void kw_ks_fleet_destroy(kw_ks_fleet_t *f);

/* Captures what the audit line of msg needs (only when an audit log is configured; else rec is
 * zeroed). */
void kw_ks_fleet_begin(const kw_ks_fleet_t *f, const kw_msg_t *msg, kw_ks_audit_rec_t *rec);

/* Writes the audit line of a finished request (result 0 or the error answered). */
void kw_ks_fleet_audit(kw_ks_fleet_t *f, const kw_ks_peer_t *p, const kw_ks_audit_rec_t *rec,
                       uint8_t result);

/* Logs the enabled operations and the rules of a (at start and after a reload). */
void kw_ks_fleet_log_authz(const kw_ks_authz_t *a);

/* 1 when the key server performs opcode at all (0: answer KW_ERR_NOT_AUTHORISED; logged once
 * per connection). */
int kw_ks_fleet_op_enabled(const kw_ks_fleet_t *f, kw_ks_peer_t *p, uint8_t opcode);

/* Records key in rec and returns 1 when p's edge may perform opcode with it (0: answer
 * KW_ERR_NOT_AUTHORISED; logged once per connection). */
int kw_ks_fleet_key(const kw_ks_fleet_t *f, kw_ks_peer_t *p, const kw_ks_key_t *key, uint8_t opcode,
                    kw_ks_audit_rec_t *rec);

/* 1 when p's edge may perform opcode with key (for listing keys). */
int kw_ks_fleet_may_use(const kw_ks_fleet_t *f, const kw_ks_peer_t *p, const kw_ks_key_t *key,
                        uint8_t opcode);

/*
 * A request whose key this server does not hold (r from kw_ks_resolve: no key, r->n_ids ids):
 * forwards it upstream when one is configured, the request names the key by exactly one id and
 * the edge is allowed that id and the operation; the copy sent carries that id alone
 * (kw_ks_resolve_forward_msg; sni_is_id for 0xA2). Returns KW_KS_PENDING when forwarded, else the
 * error to answer: not_found without an upstream or without any id, KW_ERR_FORMAT for several
 * ids (they cannot be checked to name one key here), KW_ERR_NOT_AUTHORISED, or
 * KW_ERR_UPSTREAM_UNAVAILABLE (hop limit, submit failure).
 */
int kw_ks_fleet_forward(const kw_ks_fleet_t *f, kw_ks_peer_t *p, const kw_msg_t *msg,
                        const kw_ks_audit_rec_t *rec, const kw_ks_resolved_t *r, uint8_t not_found,
                        int sni_is_id);

#endif /* KW_KS_FLEET_H */
