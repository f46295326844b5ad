/*
 * The servers of a client and the life of each one's connection (kwc_health.h). A connection
 * takes requests only after a health ping over it was answered; TCP connect with the TLS
 * handshake, and then that ping, each have connect_ms. A failure puts the server into exponential
 * backoff (with jitter) and hands its requests to dispatch; a close by the key server of a
 * connection with nothing in flight (its idle timeout) is not a failure: it reconnects at once.
 * Idle connections are pinged; a server that answers nothing for a try while another is up is
 * stalled and closed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "kw_clock.h"
#include "kwc_balance.h"
#include "kwc_dispatch.h"
#include "kwc_health.h"

#define KWC_IDLE_PING_MS 5000u

static kwc_server_t *server_of(const kwc_conn_t *conn)
{
    return conn->data;
}

void kwc_health_set_error(kwc_route_t *rt, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&rt->err_lock);
    va_start(ap, fmt);
    vsnprintf(rt->last_err, sizeof(rt->last_err), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&rt->err_lock);
}

void kwc_health_last_error(kwc_route_t *rt, char *buf, size_t len)
{
    pthread_mutex_lock(&rt->err_lock);
    snprintf(buf, len, "%s", rt->last_err);
    pthread_mutex_unlock(&rt->err_lock);
}

/* TLS is up: the probe ping gets its own connect_ms (with a far server, a 1.8 s round trip, the
 * TLS handshake and the probe each fit, their sum would not). */
static void on_open(kwc_conn_t *conn)
{
    kwc_server_t *s = server_of(conn);
    kwc_route_t *rt = s->route;
    s->deadline_us = rt->now_us + (uint64_t)rt->connect_ms * 1000u;
    (void)kwc_send_ping(s, rt->connect_ms);
}

/* The probe ping was answered: the server takes requests again. */
static void server_up(kwc_server_t *s)
{
    kwc_route_t *rt = s->route;
    if (s->failures > 0 && s->backoff_ms > 0)
        kw_info("keyward client: key server %s is back", s->addr->label);
    s->up = 1;
    rt->ever_up = 1;
    s->backoff_ms = 0;
    s->ewma_us = 0; /* unknown again: the server gets a share of the load at once */
    s->last_rx_us = rt->now_us;
    kwc_dispatch_pending(rt);
}

static void on_frame(kwc_conn_t *conn, uint32_t id, const uint8_t *body, size_t len)
{
    kwc_server_t *s = server_of(conn);
    uint8_t opcode = 0;
    switch (kwc_dispatch_reply(s, id, body, len, &opcode)) {
    case KWC_REPLY_MALFORMED:
        kwc_conn_fail(conn, KW_EFORMAT, "malformed reply from the key server");
        break;
    case KWC_REPLY_BAD_PONG:
        kwc_conn_fail(conn, KW_EFORMAT, "health ping answered with opcode 0x%02x, not a pong",
                      opcode);
        break;
    case KWC_REPLY_PONG:
        if (!s->up && conn->state == KWC_CONN_OPEN)
            server_up(s);
        break;
    case KWC_REPLY_DONE:
        break;
    }
}

static void on_lost(kwc_conn_t *conn, int err, int peer_closed, const char *why)
{
    kwc_server_t *s = server_of(conn);
    kwc_route_t *rt = s->route;
    int was_up = s->up;
    s->up = 0;
    if (peer_closed && was_up && s->sent.n == 0) {
        /* Its idle timeout (without the I/O thread nobody pings idle connections): reconnect at
         * once, without backoff. */
        s->retry_us = rt->now_us;
        kw_debug("keyward client: key server %s closed an idle connection; reconnecting",
                 s->addr->label);
        return;
    }
    s->failures++;
    s->backoff_ms = kw_lb_backoff_next(s->backoff_ms);
    rt->rnd = rt->rnd * 1103515245u + 12345u;
    uint32_t delay = kw_lb_jitter(s->backoff_ms, rt->rnd >> 8);
    s->retry_us = rt->now_us + (uint64_t)delay * 1000u;
    s->failed_us = rt->now_us;
    kwc_health_set_error(rt, "%s: %s", s->addr->label, why);
    if (was_up)
        kw_warn("keyward client: key server %s: %s; retrying in %u ms", s->addr->label, why, delay);
    else
        kw_debug("keyward client: key server %s: %s; retrying in %u ms", s->addr->label, why,
                 delay);
    kwc_dispatch_conn_lost(s, err);
    kwc_dispatch_connect_failed(rt, err);
}

static const kwc_conn_cbs_t health_cbs = {on_open, on_frame, on_lost};

/* 1 when a server other than s is up (could take s's requests). */
static int other_usable(const kwc_route_t *rt, const kwc_server_t *s)
{
    for (size_t i = 0; i < rt->n_servers; i++) {
        if (&rt->servers[i] != s && rt->servers[i].up)
            return 1;
    }
    return 0;
}

static void server_tick(kwc_server_t *s)
{
    kwc_conn_t *conn = &s->conn;
    kwc_route_t *rt = s->route;
    uint64_t now = rt->now_us;
    if (conn->state == KWC_CONN_IDLE) {
        if (now >= s->retry_us) {
            s->deadline_us = now + (uint64_t)rt->connect_ms * 1000u;
            kwc_conn_start(conn, s->addr);
        }
        return;
    }
    if (!s->up) {
        if (now >= s->deadline_us)
            kwc_conn_fail(conn, KW_ETIMEDOUT, "%s timed out after %u ms",
                          conn->state == KWC_CONN_TCP   ? "TCP connect"
                          : conn->state == KWC_CONN_TLS ? "TLS handshake"
                                                        : "health ping",
                          rt->connect_ms);
        return;
    }
    /* A server silent for a try is given up on only when another can take its requests; the
     * only one is waited for up to the whole timeout (it may just be far away). */
    uint32_t stall_ms = other_usable(rt, s) ? rt->try_ms : rt->timeout_ms;
    if (s->sent.n > 0 && now - s->progress_us > (uint64_t)stall_ms * 1000u) {
        kwc_conn_fail(conn, KW_ETIMEDOUT, "no reply for %u ms: the server seems stalled", stall_ms);
        return;
    }
    if (s->sent.n == 0 && !s->ping_out && now - s->last_rx_us >= (uint64_t)KWC_IDLE_PING_MS * 1000u)
        (void)kwc_send_ping(s, rt->try_ms);
}

void kwc_health_tick(kwc_route_t *rt)
{
    for (size_t i = 0; i < rt->n_servers; i++)
        server_tick(&rt->servers[i]);
}

void kwc_health_close_all(kwc_route_t *rt)
{
    for (size_t i = 0; i < rt->n_servers; i++) {
        kwc_conn_close(&rt->servers[i].conn);
        rt->servers[i].up = 0;
    }
}

void kwc_health_abandon(kwc_route_t *rt)
{
    for (size_t i = 0; i < rt->n_servers; i++)
        kwc_conn_abandon(&rt->servers[i].conn);
}

int kwc_health_init(kwc_route_t *rt, const kwc_settings_t *set, kwc_poller_t *poller)
{
    pthread_mutex_init(&rt->err_lock, NULL);
    rt->timeout_ms = set->timeout_ms;
    rt->connect_ms = set->connect_ms;
    rt->max_tries = set->max_tries;
    rt->try_ms = kw_lb_try_timeout_ms(set->timeout_ms, set->max_tries);
    rt->pad_to = set->pad_to;
    rt->rnd = (uint32_t)kw_clock_us() ^ (uint32_t)getpid();
    rt->servers = calloc(set->n_addrs, sizeof(*rt->servers));
    if (rt->servers == NULL || kw_reqmap_init(&rt->map, 256) != 0)
        return KW_ENOMEM;
    rt->n_servers = set->n_addrs;
    for (size_t i = 0; i < set->n_addrs; i++) {
        kwc_server_t *s = &rt->servers[i];
        s->route = rt;
        s->index = i;
        s->addr = &set->addrs[i];
        kwc_conn_init(&s->conn, poller, set->ssl_ctx, &health_cbs, s);
    }
    return 0;
}

void kwc_health_destroy(kwc_route_t *rt)
{
    for (size_t i = 0; i < rt->n_servers; i++)
        kwc_conn_destroy(&rt->servers[i].conn);
    free(rt->servers);
    rt->servers = NULL;
    rt->n_servers = 0;
    kw_reqmap_destroy(&rt->map);
    pthread_mutex_destroy(&rt->err_lock);
}

void kwc_health_stats(const kwc_route_t *rt, kw_server_stats_t *out, size_t max)
{
    for (size_t i = 0; i < rt->n_servers && i < max; i++) {
        const kwc_server_t *s = &rt->servers[i];
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].address, sizeof(out[i].address), "%s", s->addr->label);
        out[i].up = s->up;
        out[i].inflight = s->inflight;
        out[i].completed = s->completed;
        out[i].failures = s->failures;
        out[i].ewma_us = s->ewma_us;
    }
}
