/*
 * Request dispatch on the loop thread. Cheap requests are answered here: ping (payload echoed),
 * 0xA2 certificate chain, 0xA3 key list, 0xA4 ticket keys (fleet.h) and every error. Private-key
 * requests are checked against their key (so errors need no worker) and become jobs; finished jobs
 * come back here as replies. Every answered request is counted in the metrics with its opcode,
 * result and latency. A request is first resolved to the one key all its key ids name (resolve.h;
 * ids that disagree are 0x07); that key is authorised for the operation and used. Authorisation,
 * forwarding of keys not held here and the audit line go through fleet.h.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/request.h"
#include "kw_clock.h"
#include "fleet/authz.h"
#include "fleet/fleet.h"
#include "keyward/error.h"
#include "kw_log.h"
#include "kw_payload.h"
#include "obs/metrics.h"
#include "ops/ops.h"
#include "ops/ops_master.h"

/* Result of a handler that queued a job: counted when the job completes. */
#define RESULT_QUEUED 0xFFu

static void batch_add(kw_ks_job_batch_t *b, kw_ks_job_t *job)
{
    job->next = NULL;
    if (b->tail == NULL)
        b->head = job;
    else
        b->tail->next = job;
    b->tail = job;
    b->count++;
}

static void reply_error(kw_ks_peer_t *p, uint32_t id, uint8_t err)
{
    if (kw_ks_peer_error(p, id, err) != 0)
        kw_ks_peer_close(p);
}

static void reply(kw_ks_peer_t *p, uint32_t id, uint8_t opcode, const uint8_t *payload, size_t len)
{
    if (kw_ks_peer_reply(p, id, opcode, payload, len) != 0)
        kw_ks_peer_close(p);
}

/* Replies with err and returns it (for the metrics). */
static uint8_t answer_error(kw_ks_peer_t *p, uint32_t id, uint8_t err)
{
    reply_error(p, id, err);
    return err;
}

/* A key (or chain) this server does not hold: forwarded upstream (fleet.h), or an error. */
static uint8_t not_held(kw_ks_engine_t *e, kw_ks_peer_t *p, const kw_msg_t *msg,
                        const kw_ks_audit_rec_t *rec, const kw_ks_resolved_t *res,
                        uint8_t not_found, int sni_is_id)
{
    int r = kw_ks_fleet_forward(&e->fleet, p, msg, rec, res, not_found, sni_is_id);
    if (r == KW_KS_PENDING)
        return RESULT_QUEUED;
    return answer_error(p, msg->id, (uint8_t)r);
}

/* 0xA2: by digest, SKI or SNI (all that are given must name the key). */
static uint8_t get_cert_chain(kw_ks_engine_t *e, kw_ks_peer_t *p, const kw_msg_t *msg,
                              kw_ks_audit_rec_t *rec)
{
    kw_ks_resolved_t res;
    if (!kw_ks_fleet_op_enabled(&e->fleet, p, msg->opcode))
        return answer_error(p, msg->id, KW_ERR_NOT_AUTHORISED);
    uint8_t err = kw_ks_resolve(e->store, msg, 1, &res);
    if (err != 0)
        return answer_error(p, msg->id, err);
    const kw_ks_key_t *key = res.key;
    if (key == NULL && res.n_ids == 0)
        return answer_error(p, msg->id, KW_ERR_FORMAT);
    if (key == NULL)
        return not_held(e, p, msg, rec, &res, KW_ERR_CERT_NOT_FOUND, 1);
    if (!kw_ks_fleet_key(&e->fleet, p, key, msg->opcode, rec))
        return answer_error(p, msg->id, KW_ERR_NOT_AUTHORISED);
    if (key->chain_der == NULL || key->chain_der_len > KW_MAX_REPLY_PAYLOAD)
        return answer_error(p, msg->id, KW_ERR_CERT_NOT_FOUND);
    reply(p, msg->id, KW_OP_RESPONSE, key->chain_der, key->chain_der_len);
    return 0;
}

/* 0xA3: the ids of the keys this edge may use, as many as fit one reply. With upstreams, the
 * upstreams' lists are added (upstream.c merges them when they answer), so an edge that checks a
 * key at load time finds the keys this server serves by forwarding too. */
static uint8_t list_keys(kw_ks_engine_t *e, kw_ks_peer_t *p, const kw_msg_t *msg,
                         const kw_ks_audit_rec_t *rec)
{
    const kw_keystore_t *store = e->store;
    size_t n = kw_keystore_count(store);
    size_t max = KW_MAX_REPLY_PAYLOAD / KW_DIGEST_LEN;
    if (n > max) {
        kw_warn("list keys: %zu keys, only the first %zu fit a reply", n, max);
        n = max;
    }
    uint8_t *buf = malloc(n > 0 ? n * KW_DIGEST_LEN : 1);
    if (buf == NULL)
        return answer_error(p, msg->id, KW_ERR_INTERNAL);
    size_t k = 0; /* only the keys this edge may use */
    for (size_t i = 0; i < kw_keystore_count(store) && k < n; i++) {
        const kw_ks_key_t *key = kw_keystore_get(store, i);
        if (kw_ks_fleet_may_use(&e->fleet, p, key, KW_OP_LIST_KEYS))
            memcpy(buf + k++ * KW_DIGEST_LEN, key->digest, KW_DIGEST_LEN);
    }
    kw_ks_upstream_t *up = e->fleet.upstream;
    if (up != NULL && kw_ks_upstream_list_keys(up, p, msg, rec, buf, k * KW_DIGEST_LEN) == 0)
        return RESULT_QUEUED; /* buf is the forward's now */
    reply(p, msg->id, KW_OP_RESPONSE, buf, k * KW_DIGEST_LEN);
    free(buf);
    return 0;
}

static uint8_t key_op(kw_ks_engine_t *e, kw_ks_peer_t *p, const kw_msg_t *msg, uint64_t t0,
                      kw_ks_audit_rec_t *rec, kw_ks_job_batch_t *batch)
{
    kw_ks_resolved_t res;
    if (!kw_ks_fleet_op_enabled(&e->fleet, p, msg->opcode))
        return answer_error(p, msg->id, KW_ERR_NOT_AUTHORISED);
    uint8_t err = kw_ks_resolve(e->store, msg, 0, &res);
    if (err != 0)
        return answer_error(p, msg->id, err);
    const kw_ks_key_t *key = res.key;
    if (key == NULL)
        return not_held(e, p, msg, rec, &res, KW_ERR_KEY_NOT_FOUND, 0);
    if (!kw_ks_fleet_key(&e->fleet, p, key, msg->opcode, rec))
        return answer_error(p, msg->id, KW_ERR_NOT_AUTHORISED);
    err = kw_ks_op_check(key, msg->opcode, &msg->payload, &msg->extra);
    if (err != 0)
        return answer_error(p, msg->id, err);
    int master = msg->opcode == KW_OP_TLS12_MASTER;
    if (master && kw_ks_master_check(msg) != 0)
        return answer_error(p, msg->id, KW_ERR_FORMAT);
    uint16_t tls_version = 0; /* checked by kw_ks_op_check for 0xA0 and 0xA1 */
    if ((msg->opcode == KW_OP_TLS_RSA_DECRYPT || master) &&
        kw_item_tls_version(&msg->extra, &tls_version) != 0)
        return answer_error(p, msg->id, KW_ERR_FORMAT);
    kw_ks_job_t *job =
        kw_ks_job_alloc(&e->jobs, master ? kw_ks_master_in_len(msg) : msg->payload.len);
    if (job == NULL)
        return answer_error(p, msg->id, KW_ERR_INTERNAL);
    if (master)
        kw_ks_master_pack(msg, job->in); /* randoms / session hash, PRF digest, encrypted PMS */
    else
        memcpy(job->in, msg->payload.ptr, msg->payload.len);
    job->peer = kw_ks_peer_hold(p);
    job->src = p->jobs;
    job->store = kw_keystore_ref(e->store);
    job->key = key;
    job->id = msg->id;
    job->opcode = msg->opcode;
    job->tls_version = tls_version;
    job->t_start = t0;
    if (e->fleet.audit != NULL)
        job->audit = *rec;
    p->inflight++;
    kw_ks_metrics_inflight_add(e->metrics, 1);
    batch_add(batch, job);
    return RESULT_QUEUED;
}

/* 1 when the edge's rate limit lets one more operation through (rate.h); logs the first refusal
 * of a connection. */
static int rate_ok(kw_ks_engine_t *e, kw_ks_peer_t *p, uint64_t now)
{
    if (kw_ks_rate_take(p->rate, now))
        return 1;
    if (!p->rate_logged) {
        p->rate_logged = 1;
        kw_warn("connection %llu from %s: edge '%s' is over its rate limit (%u/s, bursts of %u): "
                "answering 0x41 (further refusals are only in the metrics and the audit log)",
                (unsigned long long)p->id, p->name, p->edge != NULL ? p->edge->cn : "",
                kw_ks_rate_per_second(e->rate), kw_ks_rate_burst(e->rate));
    }
    return 0;
}

/* Answers msg or queues its job; returns the result sent, or RESULT_QUEUED. */
static uint8_t dispatch(kw_ks_engine_t *e, kw_ks_peer_t *p, const kw_msg_t *msg, uint64_t t0,
                        kw_ks_audit_rec_t *rec, kw_ks_job_batch_t *batch)
{
    if (!msg->has_opcode)
        return answer_error(p, msg->id, KW_ERR_FORMAT);
    if (msg->opcode != KW_OP_PING && !rate_ok(e, p, t0))
        return answer_error(p, msg->id, KW_ERR_RATE_LIMITED);
    switch (msg->opcode) {
    case KW_OP_PING:
        reply(p, msg->id, KW_OP_PONG, msg->payload.ptr, msg->payload.len);
        return 0;
    case KW_OP_GET_CERT_CHAIN:
        return get_cert_chain(e, p, msg, rec);
    case KW_OP_LIST_KEYS:
        if (!kw_ks_fleet_op_enabled(&e->fleet, p, msg->opcode))
            return answer_error(p, msg->id, KW_ERR_NOT_AUTHORISED);
        return list_keys(e, p, msg, rec);
    case KW_OP_TICKET_KEYS: {
        int r = kw_ks_fleet_ticket_keys(&e->fleet, p, msg, rec);
        if (r == KW_KS_PENDING)
            return RESULT_QUEUED;
        return r == 0 ? 0 : answer_error(p, msg->id, (uint8_t)r);
    }
    default:
        break;
    }
    if (!kw_ks_op_is_key_op(msg->opcode))
        return answer_error(p, msg->id, KW_ERR_BAD_OPCODE);
    return key_op(e, p, msg, t0, rec, batch);
}

int kw_ks_request_handle(kw_ks_engine_t *e, kw_ks_peer_t *p, const kw_header_t *hdr,
                         const uint8_t *body, kw_ks_job_batch_t *batch)
{
    kw_msg_t msg;
    kw_ks_metrics_t *m = e->metrics;
    uint64_t t0 = kw_clock_ns();
    if (kw_msg_decode(body, hdr->body_len, hdr->id, &msg) != 0) {
        reply_error(p, hdr->id, KW_ERR_FORMAT);
        kw_ks_metrics_request(m, 0, KW_ERR_FORMAT, kw_clock_ns() - t0);
        return KW_EFORMAT;
    }
    kw_ks_audit_rec_t rec;
    kw_ks_fleet_begin(&e->fleet, &msg, &rec);
    uint8_t result = dispatch(e, p, &msg, t0, &rec, batch);
    if (result != RESULT_QUEUED) {
        kw_ks_metrics_request(m, msg.has_opcode ? msg.opcode : 0, result, kw_clock_ns() - t0);
        if (msg.has_opcode && msg.opcode != KW_OP_PING)
            kw_ks_fleet_audit(&e->fleet, p, &rec, result); /* one audit line per operation */
    }
    return 0;
}

void kw_ks_request_done(kw_ks_workers_t *w, kw_ks_job_t *jobs)
{
    kw_ks_engine_t *e = w->data;
    while (jobs != NULL) {
        kw_ks_job_t *job = jobs;
        jobs = job->next;
        kw_ks_peer_t *p = job->peer;
        if (!job->cancelled) { /* a closing peer refuses the reply (KW_ECLOSED) */
            if (job->result == 0)
                reply(p, job->id, KW_OP_RESPONSE, job->out, job->out_len);
            else
                reply_error(p, job->id, job->result);
            kw_ks_metrics_request(e->metrics, job->opcode, job->result,
                                  kw_clock_ns() - job->t_start);
            kw_ks_fleet_audit(&e->fleet, p, &job->audit, job->result);
        }
        kw_ks_metrics_inflight_add(e->metrics, -1);
        kw_keystore_unref(job->store);
        kw_ks_job_free(&e->jobs, job);
        kw_ks_peer_done(p); /* the peer schedules itself: no dispatch from here */
        kw_ks_peer_release(p);
    }
}
