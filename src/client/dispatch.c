/*
 * Request routing in the I/O thread: choosing a server (fewest in flight, then lowest latency,
 * preferring servers a request has not tried), sending, matching replies by id, and moving a
 * request to another server when its connection dies, its try times out, or the server answers
 * with an error another server may not have (unknown key, internal, rate limit, upstream down).
 * All KWP operations are idempotent, so a retry is always safe.
 */
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kwc_balance.h"
#include "kwc_internal.h"

static uint64_t server_bit(const kwc_server_t *s)
{
    return (uint64_t)1 << (s->index % 64);
}

static int usable(const kwc_server_t *s)
{
    return s->conn.state == KWC_CONN_UP;
}

static int pick(kwc_core_t *core, const kw_request_t *r)
{
    kw_lb_cand_t cand[KW_SRV_MAX];
    size_t n = core->n_servers < KW_SRV_MAX ? core->n_servers : KW_SRV_MAX;
    for (size_t i = 0; i < n; i++) {
        const kwc_server_t *s = &core->servers[i];
        cand[i].usable = (uint8_t)usable(s);
        cand[i].tried = (uint8_t)((r->tried_mask & server_bit(s)) != 0);
        cand[i].inflight = (uint32_t)s->conn.inflight.n;
        cand[i].ewma_us = s->ewma_us;
    }
    return kw_lb_pick(cand, n, core->rr++);
}

static int has_untried_usable(const kwc_core_t *core, const kw_request_t *r)
{
    for (size_t i = 0; i < core->n_servers; i++) {
        const kwc_server_t *s = &core->servers[i];
        if (usable(s) && (r->tried_mask & server_bit(s)) == 0)
            return 1;
    }
    return 0;
}

static int any_usable(const kwc_core_t *core)
{
    for (size_t i = 0; i < core->n_servers; i++) {
        if (usable(&core->servers[i]))
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
static int outage(const kwc_core_t *core)
{
    for (size_t i = 0; i < core->n_servers; i++) {
        const kwc_server_t *s = &core->servers[i];
        if (s->conn.state != KWC_CONN_IDLE || s->backoff_ms < KWC_OUTAGE_BACKOFF_MS)
            return 0;
    }
    return core->n_servers > 0;
}

/* A request during an outage brings the next connection attempts forward (rate-limited), so a
 * server that is back is found by the next request rather than after the backoff. */
static void probe_soon(kwc_core_t *core)
{
    for (size_t i = 0; i < core->n_servers; i++) {
        kwc_server_t *s = &core->servers[i];
        uint64_t earliest = s->failed_us + KWC_PROBE_GAP_US;
        if (s->conn.state == KWC_CONN_IDLE && s->retry_us > earliest)
            s->retry_us = earliest > core->now_us ? earliest : core->now_us;
    }
}

/* Takes r off its connection and out of the id map. */
static void detach(kw_request_t *r)
{
    kwc_conn_t *conn = r->conn;
    kwc_server_t *s = conn->server;
    kw_reqmap_remove(&s->core->map, r->id);
    kwc_rlist_remove(&conn->inflight, r);
    if (r->internal)
        conn->ping_out = 0;
    else
        s->inflight--;
    r->conn = NULL;
    r->id = 0;
}

/* Puts r in flight on conn. Returns 0 or a KW_E* code (r untouched). */
static int send_to(kwc_conn_t *conn, kw_request_t *r)
{
    kwc_server_t *s = conn->server;
    kwc_core_t *core = s->core;
    uint32_t id;
    int rc = kw_reqmap_add(&core->map, r, &id);
    if (rc != 0)
        return rc;
    rc = kwc_conn_queue(conn, r->frame, r->frame_len, id);
    if (rc != 0) {
        kw_reqmap_remove(&core->map, id);
        return rc;
    }
    if (conn->inflight.n == 0)
        conn->progress_us = core->now_us;
    kwc_rlist_push(&conn->inflight, r);
    r->conn = conn;
    r->id = id;
    r->tries++;
    r->tried_mask |= server_bit(s);
    r->sent_us = core->now_us;
    r->try_deadline_us = core->now_us + (uint64_t)core->try_ms * 1000u;
    if (r->try_deadline_us > r->deadline_us)
        r->try_deadline_us = r->deadline_us;
    if (r->internal)
        conn->ping_out = 1;
    else
        s->inflight++;
    return 0;
}

/* Sends r to the best usable server, or parks it until one is usable. */
static void send_or_park(kwc_core_t *core, kw_request_t *r)
{
    int i = pick(core, r);
    if (i < 0) {
        if (outage(core))
            probe_soon(core); /* r waits for that attempt only */
        kwc_rlist_push(&core->pending, r);
        return;
    }
    int rc = send_to(&core->servers[i].conn, r);
    if (rc != 0)
        kwc_request_complete(r, rc, 0, NULL, 0);
}

/* r failed on a server: try again (elsewhere when possible) or give up with its last error. */
static void retry_or_fail(kwc_core_t *core, kw_request_t *r)
{
    if (kwc_request_is_cancelled(r))
        kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
    else if (r->tries >= core->max_tries || core->now_us >= r->deadline_us)
        kwc_request_complete(r, r->last_err != 0 ? r->last_err : KW_ETIMEDOUT, 0, NULL, 0);
    else
        send_or_park(core, r);
}

void kwc_dispatch_new(kwc_core_t *core, kw_request_t *r)
{
    if (kwc_request_is_cancelled(r)) {
        kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
        return;
    }
    r->deadline_us = core->now_us + (uint64_t)core->timeout_ms * 1000u;
    send_or_park(core, r);
}

void kwc_dispatch_pending(kwc_core_t *core)
{
    if (core->pending.n == 0 || !any_usable(core))
        return;
    kwc_rlist_t batch = {NULL, NULL, 0};
    kwc_rlist_splice(&batch, &core->pending);
    kw_request_t *r;
    for (r = kwc_rlist_pop(&batch); r != NULL; r = kwc_rlist_pop(&batch)) {
        if (kwc_request_is_cancelled(r))
            kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
        else
            send_or_park(core, r);
    }
}

static int retryable_remote(uint8_t err)
{
    return err == KW_ERR_KEY_NOT_FOUND || err == KW_ERR_INTERNAL || err == KW_ERR_RATE_LIMITED ||
           err == KW_ERR_UPSTREAM_UNAVAILABLE;
}

/* A health ping's reply. */
static void on_pong(kwc_conn_t *conn, kw_request_t *r, const kw_msg_t *msg)
{
    kwc_request_complete(r, 0, 0, NULL, 0); /* internal: frees it */
    if (msg->opcode != KW_OP_PONG) {
        kwc_conn_fail(conn, KW_EFORMAT, "health ping answered with opcode 0x%02x, not a pong",
                      msg->opcode);
        return;
    }
    if (conn->state == KWC_CONN_PROBE)
        kwc_conn_up(conn);
}

/* A caller's reply. */
static void on_reply(kwc_core_t *core, kw_request_t *r, const kw_msg_t *msg)
{
    if (msg->opcode == KW_OP_RESPONSE || msg->opcode == KW_OP_PONG) {
        kwc_request_complete(r, 0, 0, msg->payload.ptr, msg->payload.len);
        return;
    }
    if (msg->opcode != KW_OP_ERROR) {
        kwc_request_complete(r, KW_EFORMAT, 0, NULL, 0);
        return;
    }
    uint8_t code = msg->payload.len >= 1 ? msg->payload.ptr[0] : KW_ERR_INTERNAL;
    if (retryable_remote(code) && r->tries < core->max_tries && has_untried_usable(core, r) &&
        !kwc_request_is_cancelled(r)) {
        send_or_park(core, r);
        return;
    }
    kwc_request_complete(r, KW_EREMOTE, code, NULL, 0);
}

void kwc_dispatch_reply(kwc_conn_t *conn, uint32_t id, const uint8_t *body, size_t len)
{
    kwc_server_t *s = conn->server;
    kwc_core_t *core = s->core;
    kw_msg_t msg;
    kw_request_t *r = kw_reqmap_get(&core->map, id);
    if (r == NULL || r->conn != conn)
        return; /* a late reply to a try given up on */
    if (kw_msg_decode(body, len, id, &msg) != 0 || !msg.has_opcode) {
        kwc_conn_fail(conn, KW_EFORMAT, "malformed reply from the key server");
        return;
    }
    detach(r);
    s->last_rx_us = core->now_us;
    conn->progress_us = core->now_us;
    s->ewma_us = kw_lb_ewma(s->ewma_us, (double)(core->now_us - r->sent_us));
    if (r->internal) {
        on_pong(conn, r, &msg);
        return;
    }
    s->completed++;
    on_reply(core, r, &msg);
}

void kwc_dispatch_conn_lost(kwc_conn_t *conn, int err)
{
    kwc_core_t *core = conn->server->core;
    kw_request_t *r;
    for (r = conn->inflight.head; r != NULL; r = conn->inflight.head) {
        detach(r);
        if (r->internal) {
            kwc_request_complete(r, err, 0, NULL, 0);
            continue;
        }
        r->last_err = err;
        retry_or_fail(core, r);
    }
}

/* Pending requests past their deadline, and cancelled ones. */
static void expire_pending(kwc_core_t *core)
{
    kw_request_t *next;
    for (kw_request_t *r = core->pending.head; r != NULL; r = next) {
        next = r->next;
        if (kwc_request_is_cancelled(r)) {
            kwc_rlist_remove(&core->pending, r);
            kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
        } else if (core->now_us >= r->deadline_us) {
            kwc_rlist_remove(&core->pending, r);
            kwc_request_complete(r, r->last_err != 0 ? r->last_err : KW_ETIMEDOUT, 0, NULL, 0);
        }
    }
}

/* In-flight requests of conn past their deadline, or past their try deadline while another
 * server could take them. */
static void expire_inflight(kwc_core_t *core, kwc_conn_t *conn)
{
    kw_request_t *next;
    for (kw_request_t *r = conn->inflight.head; r != NULL; r = next) {
        next = r->next;
        if (r->internal)
            continue; /* health pings: the connection's stall check covers them */
        if (core->now_us >= r->deadline_us) {
            detach(r);
            kwc_request_complete(r, KW_ETIMEDOUT, 0, NULL, 0);
        } else if (core->now_us >= r->try_deadline_us && r->tries < core->max_tries &&
                   has_untried_usable(core, r)) {
            detach(r);
            r->last_err = KW_ETIMEDOUT;
            send_or_park(core, r);
        }
    }
}

void kwc_dispatch_timeouts(kwc_core_t *core)
{
    expire_pending(core);
    for (size_t i = 0; i < core->n_servers; i++)
        expire_inflight(core, &core->servers[i].conn);
}

void kwc_dispatch_connect_failed(kwc_core_t *core, int err)
{
    /* Once some server has worked, a refused connection is a restart in progress: requests wait
     * for it, until their deadline or until every server has failed long enough to call it an
     * outage (then they fail at once). Before that (a wrong address, a server not running) and
     * for TLS failures (certificates), each failed attempt uses up a try, so errors come fast.
     * An outage fails requests at once whether or not a server ever answered: with nothing
     * listening, each request costs one connection attempt, not the wait for the next one of an
     * ever longer backoff. */
    if (any_usable(core))
        return;
    int down = err != KW_ETLS && outage(core);
    if (core->ever_up && err != KW_ETLS && !down)
        return;
    kw_request_t *next;
    for (kw_request_t *r = core->pending.head; r != NULL; r = next) {
        next = r->next;
        r->last_err = err;
        r->tries++;
        if (down || r->tries >= core->max_tries) {
            kwc_rlist_remove(&core->pending, r);
            kwc_request_complete(r, err, 0, NULL, 0);
        }
    }
}

void kwc_dispatch_fail_all(kwc_core_t *core, int err)
{
    kw_request_t *r;
    for (r = kwc_rlist_pop(&core->pending); r != NULL; r = kwc_rlist_pop(&core->pending))
        kwc_request_complete(r, err, 0, NULL, 0);
    for (size_t i = 0; i < core->n_servers; i++) {
        kwc_conn_t *conn = &core->servers[i].conn;
        for (r = conn->inflight.head; r != NULL; r = conn->inflight.head) {
            detach(r);
            kwc_request_complete(r, err, 0, NULL, 0);
        }
    }
}

void kwc_dispatch_abort(kwc_core_t *core, kw_request_t *r, int err)
{
    if (r->conn != NULL)
        detach(r);
    else if (r->prev != NULL || core->pending.head == r)
        kwc_rlist_remove(&core->pending, r);
    else
        return; /* on no list of ours: someone else completes it */
    kwc_request_complete(r, err, 0, NULL, 0);
}

int kwc_send_ping(kwc_conn_t *conn, uint32_t timeout_ms)
{
    kwc_core_t *core = conn->server->core;
    kw_msg_t msg;
    uint8_t stamp[8];
    uint64_t now = core->now_us;
    for (int i = 0; i < 8; i++)
        stamp[i] = (uint8_t)(now >> (56 - 8 * i));
    kw_request_t *r = kwc_request_new(NULL, 1, NULL);
    if (r == NULL)
        return KW_ENOMEM;
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_PING;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(stamp, sizeof(stamp));
    size_t pad = core->client->pad_to;
    size_t cap = (pad > 64 ? pad : 64) + KW_ITEM_HDR_LEN;
    r->frame = malloc(cap);
    int rc = r->frame != NULL ? kw_msg_encode(&msg, pad, r->frame, cap, &r->frame_len) : KW_ENOMEM;
    r->deadline_us = now + (uint64_t)timeout_ms * 1000u;
    if (rc == 0)
        rc = send_to(conn, r);
    if (rc != 0)
        kwc_request_complete(r, rc, 0, NULL, 0);
    return rc;
}
