/*
 * Chaining: forwarding requests this key server cannot serve (a key it does not hold, a
 * certificate chain it does not have) to upstream key servers (--upstream HOST:PORT, repeatable)
 * through libkeyward's client, which keeps the mTLS connections, spreads the load and fails over
 * between upstreams. The answer (payload or error code) is relayed to the edge under the edge's
 * request id.
 *
 * Never blocks the loop: each forwarded request is submitted with kw_client_submit and its
 * completion eventfd is watched by a uv_poll_t on the loop thread. Loops between key servers are
 * cut by a hop limit carried in the request (KW_TAG_HOPS): a request without one starts with
 * KW_DEFAULT_MAX_HOPS, each forward decrements it, and a request that arrives with 0 hops left
 * and would need forwarding is answered 0x42 (upstream unavailable), as is a request whose
 * upstream fails or times out.
 */
#ifndef KW_KS_UPSTREAM_H
#define KW_KS_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "obs/audit.h"
#include "config/config.h"
#include "keyward/protocol.h"
#include "obs/metrics.h"
#include "peer/peer.h"

/* Largest payload of a reply: the body minus the opcode item and the payload item header. */
#define KW_MAX_REPLY_PAYLOAD (KW_MAX_BODY - 2 * KW_ITEM_HDR_LEN - 1)

/* Largest hop count honoured from a request (larger values are lowered to this). */
#define KW_KS_MAX_HOPS 16

/* Default time for a forwarded request, all upstream tries included (--upstream-timeout-ms). */
#define KW_KS_UPSTREAM_TIMEOUT_MS 3000

struct kw_ks_authz_s;
typedef struct kw_ks_upstream_s kw_ks_upstream_t;

/*
 * Sets up forwarding to cfg->upstreams (connections are made on first use) with the identity
 * cfg->upstream_cert/key (default cfg->cert/key) and CA cfg->upstream_ca (default cfg->ca).
 * audit (may be NULL; not owned) receives the line of every forwarded request, metrics (may be
 * NULL) counts them; *authz (not owned) holds the allow rules in force when an answer comes (a
 * reload swaps them). Returns 0 with *out NULL when no upstream is configured, 0 with a new
 * object, or a negative KW_E* with the reason in err.
 */
int kw_ks_upstream_new(uv_loop_t *loop, const kw_ks_config_t *cfg, kw_ks_audit_t *audit,
                       kw_ks_metrics_t *metrics, struct kw_ks_authz_s *const *authz,
                       kw_ks_upstream_t **out, char *err, size_t errlen);

/*
 * Forwards msg (a request received from p, decoded from p's buffer) upstream. Returns 0 when it
 * was sent: p->inflight counts it and p is held until the reply has been relayed and audited
 * (rec is copied). Otherwise returns the error to answer at once: KW_ERR_KEY_NOT_FOUND when
 * u is NULL (no upstream), KW_ERR_UPSTREAM_UNAVAILABLE when the hop limit is reached or the
 * request cannot be submitted. Loop thread.
 */
uint8_t kw_ks_upstream_forward(kw_ks_upstream_t *u, kw_ks_peer_t *p, const kw_msg_t *msg,
                               const kw_ks_audit_rec_t *rec);

/*
 * 0xA3 on a server with upstreams: forwards msg and, when the upstream answers, replies with the
 * local ids (len bytes at local, taken over: freed by the forward) followed by the upstream's ids
 * the edge may use (kw_ks_authz_check_remote) that are not local ones; with the local ids alone
 * when the upstream fails. Returns 0 when forwarded (p->inflight counts it), non-zero when not
 * (the caller still owns local and answers with it). Loop thread.
 */
int kw_ks_upstream_list_keys(kw_ks_upstream_t *u, kw_ks_peer_t *p, const kw_msg_t *msg,
                             const kw_ks_audit_rec_t *rec, uint8_t *local, size_t len);

/* Number of forwarded requests waiting for their upstream. */
size_t kw_ks_upstream_pending(const kw_ks_upstream_t *u);

/* Cancels every forwarded request (their connections are closing) and closes the poll handles.
 * Loop thread; the loop must run afterwards for the closes to complete. NULL is ignored. */
void kw_ks_upstream_stop(kw_ks_upstream_t *u);

/* Frees u and its client (joins the client's I/O thread). After the loop has ended. */
void kw_ks_upstream_free(kw_ks_upstream_t *u);

#endif /* KW_KS_UPSTREAM_H */
