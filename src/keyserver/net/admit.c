/*
 * Connection admission (admit.h): the list of connections in their handshake, oldest first, with
 * the count per source address found by walking it (the list is bounded by --max-handshakes), and
 * the count of authenticated edges against --max-connections. Warnings are rate limited to one a
 * second, so an attack does not flood the log.
 */
#include <string.h>

#include "net/admit.h"
#include "net/conn.h"
#include "keyward/log.h"

static int may_log(kw_ks_server_t *s)
{
    uint64_t now = uv_now(s->loop);
    if (s->admit_logged_at != 0 && now - s->admit_logged_at < 1000)
        return 0;
    s->admit_logged_at = now;
    return 1;
}

static void hs_remove(kw_ks_conn_t *c)
{
    kw_ks_server_t *s = c->server;
    if (!c->in_handshake)
        return;
    c->in_handshake = 0;
    if (c->hs_prev != NULL)
        c->hs_prev->hs_next = c->hs_next;
    else
        s->hs_head = c->hs_next;
    if (c->hs_next != NULL)
        c->hs_next->hs_prev = c->hs_prev;
    else
        s->hs_tail = c->hs_prev;
    c->hs_prev = NULL;
    c->hs_next = NULL;
    s->n_handshaking--;
}

static int same_addr(const kw_ks_conn_t *a, const kw_ks_conn_t *b)
{
    return a->addr_len == b->addr_len && memcmp(a->addr, b->addr, a->addr_len) == 0;
}

/* Closes victim (the oldest in a full budget) to make room. */
static void evict(kw_ks_conn_t *victim, const char *budget, unsigned limit)
{
    kw_ks_server_t *s = victim->server;
    s->admit_evicted++;
    if (may_log(s))
        kw_warn("handshake budget: %s %u full, closing the oldest unauthenticated connection "
                "(%llu from %s; %llu closed so far): too many connections that do not finish TLS",
                budget, limit, (unsigned long long)victim->id, victim->peer,
                (unsigned long long)s->admit_evicted);
    kw_ks_conn_close(victim); /* calls kw_ks_admit_leave */
}

void kw_ks_admit_handshake(kw_ks_conn_t *c)
{
    kw_ks_server_t *s = c->server;
    const kw_ks_config_t *cfg = s->cfg;
    if (cfg->max_handshakes_per_ip > 0 && c->addr_len > 0) {
        kw_ks_conn_t *oldest = NULL;
        unsigned n = 0;
        for (kw_ks_conn_t *o = s->hs_head; o != NULL; o = o->hs_next) {
            if (same_addr(o, c)) {
                oldest = oldest != NULL ? oldest : o;
                n++;
            }
        }
        if (n >= cfg->max_handshakes_per_ip)
            evict(oldest, "--max-handshakes-per-ip", cfg->max_handshakes_per_ip);
    }
    if (cfg->max_handshakes > 0 && s->n_handshaking >= cfg->max_handshakes && s->hs_head != NULL)
        evict(s->hs_head, "--max-handshakes", cfg->max_handshakes);
    c->in_handshake = 1;
    c->hs_prev = s->hs_tail;
    c->hs_next = NULL;
    if (s->hs_tail != NULL)
        s->hs_tail->hs_next = c;
    else
        s->hs_head = c;
    s->hs_tail = c;
    s->n_handshaking++;
}

int kw_ks_admit_edge(kw_ks_conn_t *c)
{
    kw_ks_server_t *s = c->server;
    unsigned max = s->cfg->max_connections;
    hs_remove(c);
    if (max > 0 && s->n_edges >= max) {
        if (may_log(s))
            kw_warn("connection %llu from %s refused: --max-connections %u reached (edges "
                    "connected)",
                    (unsigned long long)c->id, c->peer, max);
        return -1;
    }
    c->is_edge = 1;
    s->n_edges++;
    return 0;
}

void kw_ks_admit_leave(kw_ks_conn_t *c)
{
    hs_remove(c);
    if (c->is_edge) {
        c->is_edge = 0;
        c->server->n_edges--;
    }
}
