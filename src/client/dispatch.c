/*
 * Request routing in the client's loop: choosing a server (fewest in flight, then lowest latency,
 * preferring servers a request has not tried), sending, matching replies by id, and moving a
 * request to another server when its connection dies, its try times out, or the server answers
 * with an error another server may not have (unknown key, internal, rate limit, upstream down).
 * All KWP operations are idempotent, so a retry is always safe. Below it are the connections
 * (kwc_conn.h) it queues frames on; above it health.c, which hands it the replies.
 */
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_reader.h"
#include "kw_writer.h"
#include "kwc_balance.h"
#include "kwc_dispatch.h"

static uint64_t server_bit(const kwc_server_t *s)
{
    return (uint64_t)1 << (s->index % 64);
}

static int usable(const kwc_server_t *s)
{
    return s->up;
}

static int pick(kwc_route_t *rt, const kw_request_t *r)
{
    kw_lb_cand_t cand[KW_SRV_MAX];
    size_t n = rt->n_servers < KW_SRV_MAX ? rt->n_servers : KW_SRV_MAX;
    for (size_t i = 0; i < n; i++) {
        const kwc_server_t *s = &rt->servers[i];
        cand[i].usable = (uint8_t)usable(s);
        cand[i].tried = (uint8_t)((r->tried_mask & server_bit(s)) != 0);
        cand[i].inflight = (uint32_t)s->sent.n;
        cand[i].ewma_us = s->ewma_us;
    }
    return kw_lb_pick(cand, n, rt->rr++);
}

static int has_untried_usable(const kwc_route_t *rt, const kw_request_t *r)
{
    for (size_t i = 0; i < rt->n_servers; i++) {
        const kwc_server_t *s = &rt->servers[i];
        if (usable(s) && (r->tried_mask & server_bit(s)) == 0)
            return 1;
    }
    return 0;
}

static int any_usable(const kwc_route_t *rt)
{
    for (size_t i = 0; i < rt->n_servers; i++) {
        if (usable(&rt->servers[i]))
            return 1;
    }
    return 0;
}

/* A server this deep in backoff has refused or failed every attempt for about 1.5 s. */
#define KWC_OUTAGE_BACKOFF_MS 800u
/* During an outage, requests make a server be tried again at most this often. */
#define KWC_PROBE_GAP_US 200000u

/* Every server has failed its last several connection attempts: an outage (or nothing listens at
 * all), not a restart in progress. Requests then fail at once instead of waiting for their
 * deadline. */
static int outage(const kwc_route_t *rt)
{
    for (size_t i = 0; i < rt->n_servers; i++) {
        const kwc_server_t *s = &rt->servers[i];
        if (s->conn.state != KWC_CONN_IDLE || s->backoff_ms < KWC_OUTAGE_BACKOFF_MS)
            return 0;
    }
    return rt->n_servers > 0;
}

/* A request during an outage brings the next connection attempts forward (rate-limited), so a
 * server that is back is found by the next request rather than after the backoff. */
static void probe_soon(kwc_route_t *rt)
{
    for (size_t i = 0; i < rt->n_servers; i++) {
        kwc_server_t *s = &rt->servers[i];
        uint64_t earliest = s->failed_us + KWC_PROBE_GAP_US;
        if (s->conn.state == KWC_CONN_IDLE && s->retry_us > earliest)
            s->retry_us = earliest > rt->now_us ? earliest : rt->now_us;
    }
}

/* Takes r off its server and out of the id map. */
static void detach(kw_request_t *r)
{
    kwc_server_t *s = r->server;
    kw_reqmap_remove(&s->route->map, r->id);
    kw_list_remove(&s->sent, &r->link);
    if (r->internal)
        s->ping_out = 0;
    else
        s->inflight--;
    r->server = NULL;
    r->id = 0;
}

/* Puts r in flight on s. Returns 0 or a KW_E* code (r untouched). */
static int send_to(kwc_server_t *s, kw_request_t *r)
{
    kwc_route_t *rt = s->route;
    uint32_t id;
    int rc = kw_reqmap_add(&rt->map, r, &id);
    if (rc != 0)
        return rc;
    rc = kwc_conn_queue(&s->conn, r->frame, r->frame_len, id);
    if (rc != 0) {
        kw_reqmap_remove(&rt->map, id);
        return rc;
    }
    if (s->sent.n == 0)
        s->progress_us = rt->now_us;
    kw_list_push_back(&s->sent, &r->link);
    r->server = s;
    r->id = id;
    r->tries++;
    r->tried_mask |= server_bit(s);
    r->sent_us = rt->now_us;
    r->try_deadline_us = rt->now_us + (uint64_t)rt->try_ms * 1000u;
    if (r->try_deadline_us > r->deadline_us)
        r->try_deadline_us = r->deadline_us;
    if (r->internal)
        s->ping_out = 1;
    else
        s->inflight++;
    return 0;
}

/* Sends r to the best usable server, or parks it until one is usable. */
static void send_or_park(kwc_route_t *rt, kw_request_t *r)
{
    int i = pick(rt, r);
    if (i < 0) {
        if (outage(rt))
            probe_soon(rt); /* r waits for that attempt only */
        kw_list_push_back(&rt->pending, &r->link);
        return;
    }
    int rc = send_to(&rt->servers[i], r);
    if (rc != 0)
        kwc_request_complete(r, rc, 0, NULL, 0);
}

/* r failed on a server: try again (elsewhere when possible) or give up with its last error. */
static void retry_or_fail(kwc_route_t *rt, kw_request_t *r)
{
    if (kwc_request_is_cancelled(r))
        kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
    else if (r->tries >= rt->max_tries || rt->now_us >= r->deadline_us)
        kwc_request_complete(r, r->last_err != 0 ? r->last_err : KW_ETIMEDOUT, 0, NULL, 0);
    else
        send_or_park(rt, r);
}

void kwc_dispatch_new(kwc_route_t *rt, kw_request_t *r)
{
    if (kwc_request_is_cancelled(r)) {
        kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
        return;
    }
    r->deadline_us = rt->now_us + (uint64_t)rt->timeout_ms * 1000u;
    send_or_park(rt, r);
}

void kwc_dispatch_pending(kwc_route_t *rt)
{
    if (rt->pending.n == 0 || !any_usable(rt))
        return;
    kw_list_t batch = {NULL, NULL, 0};
    kw_list_splice(&batch, &rt->pending);
    for (kw_link_t *k = kw_list_pop_front(&batch); k != NULL; k = kw_list_pop_front(&batch)) {
        kw_request_t *r = kwc_req_of(k);
        if (kwc_request_is_cancelled(r))
            kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
        else
            send_or_park(rt, r);
    }
}

static int retryable_remote(uint8_t err)
{
    return err == KW_ERR_KEY_NOT_FOUND || err == KW_ERR_INTERNAL || err == KW_ERR_RATE_LIMITED ||
           err == KW_ERR_UPSTREAM_UNAVAILABLE;
}

/* A caller's reply. */
static void on_reply(kwc_route_t *rt, kw_request_t *r, const kw_msg_t *msg)
{
    if (msg->opcode == KW_OP_RESPONSE || msg->opcode == KW_OP_PONG) {
        kwc_request_complete(r, 0, 0, msg->payload.ptr, msg->payload.len);
        return;
    }
    if (msg->opcode != KW_OP_ERROR) {
        kwc_request_complete(r, KW_EFORMAT, 0, NULL, 0);
        return;
    }
    kw_reader_t rd;
    uint8_t code = KW_ERR_INTERNAL; /* an error reply without its code */
    kw_reader_init(&rd, msg->payload.ptr, msg->payload.len);
    if (kw_reader_u8(&rd, &code) != 0)
        code = KW_ERR_INTERNAL;
    if (retryable_remote(code) && r->tries < rt->max_tries && has_untried_usable(rt, r) &&
        !kwc_request_is_cancelled(r)) {
        send_or_park(rt, r);
        return;
    }
    kwc_request_complete(r, KW_EREMOTE, code, NULL, 0);
}

kwc_reply_t kwc_dispatch_reply(kwc_server_t *s, uint32_t id, const uint8_t *body, size_t len,
                               uint8_t *opcode)
{
    kwc_route_t *rt = s->route;
    kw_msg_t msg;
    kw_request_t *r = kw_reqmap_get(&rt->map, id);
    if (r == NULL || r->server != s)
        return KWC_REPLY_DONE; /* a late reply to a try given up on */
    if (kw_msg_decode(body, len, id, &msg) != 0 || !msg.has_opcode)
        return KWC_REPLY_MALFORMED;
    detach(r);
    s->last_rx_us = rt->now_us;
    s->progress_us = rt->now_us;
    s->ewma_us = kw_lb_ewma(s->ewma_us, (double)(rt->now_us - r->sent_us));
    if (r->internal) {
        kwc_request_complete(r, 0, 0, NULL, 0); /* internal: frees it */
        *opcode = msg.opcode;
        return msg.opcode == KW_OP_PONG ? KWC_REPLY_PONG : KWC_REPLY_BAD_PONG;
    }
    s->completed++;
    on_reply(rt, r, &msg);
    return KWC_REPLY_DONE;
}

void kwc_dispatch_conn_lost(kwc_server_t *s, int err)
{
    kwc_route_t *rt = s->route;
    for (kw_request_t *r = kwc_req_of(s->sent.head); r != NULL; r = kwc_req_of(s->sent.head)) {
        detach(r);
        if (r->internal) {
            kwc_request_complete(r, err, 0, NULL, 0);
            continue;
        }
        r->last_err = err;
        retry_or_fail(rt, r);
    }
}

/* Pending requests past their deadline, and cancelled ones. */
static void expire_pending(kwc_route_t *rt)
{
    kw_request_t *next;
    for (kw_request_t *r = kwc_req_of(rt->pending.head); r != NULL; r = next) {
        next = kwc_req_of(r->link.next);
        if (kwc_request_is_cancelled(r)) {
            kw_list_remove(&rt->pending, &r->link);
            kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
        } else if (rt->now_us >= r->deadline_us) {
            kw_list_remove(&rt->pending, &r->link);
            kwc_request_complete(r, r->last_err != 0 ? r->last_err : KW_ETIMEDOUT, 0, NULL, 0);
        }
    }
}

/* In-flight requests of s past their deadline, or past their try deadline while another
 * server could take them. */
static void expire_inflight(kwc_route_t *rt, kwc_server_t *s)
{
    kw_request_t *next;
    for (kw_request_t *r = kwc_req_of(s->sent.head); r != NULL; r = next) {
        next = kwc_req_of(r->link.next);
        if (r->internal)
            continue; /* health pings: the connection's stall check covers them */
        if (rt->now_us >= r->deadline_us) {
            detach(r);
            kwc_request_complete(r, KW_ETIMEDOUT, 0, NULL, 0);
        } else if (rt->now_us >= r->try_deadline_us && r->tries < rt->max_tries &&
                   has_untried_usable(rt, r)) {
            detach(r);
            r->last_err = KW_ETIMEDOUT;
            send_or_park(rt, r);
        }
    }
}

void kwc_dispatch_timeouts(kwc_route_t *rt)
{
    expire_pending(rt);
    for (size_t i = 0; i < rt->n_servers; i++)
        expire_inflight(rt, &rt->servers[i]);
}

void kwc_dispatch_connect_failed(kwc_route_t *rt, int err)
{
    /* Once some server has worked, a refused connection is a restart in progress: requests wait
     * for it, until their deadline or until every server has failed long enough to call it an
     * outage (then they fail at once). Before that (a wrong address, a server not running) and
     * for TLS failures (certificates), each failed attempt uses up a try, so errors come fast.
     * An outage fails requests at once whether or not a server ever answered: with nothing
     * listening, each request costs one connection attempt, not the wait for the next one of an
     * ever longer backoff. */
    if (any_usable(rt))
        return;
    int down = err != KW_ETLS && outage(rt);
    if (rt->ever_up && err != KW_ETLS && !down)
        return;
    kw_request_t *next;
    for (kw_request_t *r = kwc_req_of(rt->pending.head); r != NULL; r = next) {
        next = kwc_req_of(r->link.next);
        r->last_err = err;
        r->tries++;
        if (down || r->tries >= rt->max_tries) {
            kw_list_remove(&rt->pending, &r->link);
            kwc_request_complete(r, err, 0, NULL, 0);
        }
    }
}

void kwc_dispatch_fail_all(kwc_route_t *rt, int err)
{
    for (kw_link_t *k = kw_list_pop_front(&rt->pending); k != NULL;
         k = kw_list_pop_front(&rt->pending))
        kwc_request_complete(kwc_req_of(k), err, 0, NULL, 0);
    for (size_t i = 0; i < rt->n_servers; i++) {
        kwc_server_t *s = &rt->servers[i];
        for (kw_request_t *r = kwc_req_of(s->sent.head); r != NULL; r = kwc_req_of(s->sent.head)) {
            detach(r);
            kwc_request_complete(r, err, 0, NULL, 0);
        }
    }
}

void kwc_dispatch_abort(kwc_route_t *rt, kw_request_t *r, int err)
{
    if (r->server != NULL)
        detach(r);
    else if (kw_list_linked(&rt->pending, &r->link))
        kw_list_remove(&rt->pending, &r->link);
    else
        return; /* on no list of ours: someone else completes it */
    kwc_request_complete(r, err, 0, NULL, 0);
}

int kwc_send_ping(kwc_server_t *s, uint32_t timeout_ms)
{
    kwc_route_t *rt = s->route;
    kw_msg_t msg;
    uint8_t stamp[8];
    kw_writer_t w;
    uint64_t now = rt->now_us;
    kw_writer_init(&w, stamp, sizeof(stamp));
    if (kw_writer_u32(&w, (uint32_t)(now >> 32)) != 0 || kw_writer_u32(&w, (uint32_t)now) != 0)
        return KW_EINVAL;
    kw_request_t *r = kwc_request_new(NULL, 1, NULL);
    if (r == NULL)
        return KW_ENOMEM;
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_PING;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(stamp, sizeof(stamp));
    size_t pad = rt->pad_to;
    size_t cap = (pad > 64 ? pad : 64) + KW_ITEM_HDR_LEN;
    r->frame = malloc(cap);
    int rc = r->frame != NULL ? kw_msg_encode(&msg, pad, r->frame, cap, &r->frame_len) : KW_ENOMEM;
    r->deadline_us = now + (uint64_t)timeout_ms * 1000u;
    if (rc == 0)
        rc = send_to(s, r);
    if (rc != 0)
        kwc_request_complete(r, rc, 0, NULL, 0);
    return rc;
}
