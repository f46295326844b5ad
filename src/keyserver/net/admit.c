/*
 * Connection admission (admit.h): the list of connections in their handshake, oldest first, with
 * the count per source address found by walking it (the list is bounded by --max-handshakes), and
 * the count of authenticated edges against --max-connections. Warnings are rate limited to one a
 * second, so an attack does not flood the log.
 */
#include <string.h>

#include "kw_log.h"
#include "net/admit.h"

static int may_log(kw_ks_admit_t *a, uint64_t now)
{
    if (a->logged_at != 0 && now - a->logged_at < 1000)
        return 0;
    a->logged_at = now;
    return 1;
}

static void hs_remove(kw_ks_admit_t *a, kw_ks_admit_entry_t *e)
{
    if (kw_list_linked(&a->handshaking, &e->link))
        kw_list_remove(&a->handshaking, &e->link);
}

static int same_addr(const kw_ks_admit_entry_t *x, const kw_ks_admit_entry_t *y)
{
    return x->addr_len == y->addr_len && memcmp(x->addr, y->addr, x->addr_len) == 0;
}

/* Takes victim (the oldest in a full budget) out of the budget to make room; the caller closes
 * it. */
static void evict(kw_ks_admit_t *a, uint64_t now, kw_ks_admit_entry_t *victim, const char *budget,
                  unsigned limit)
{
    a->evicted++;
    if (may_log(a, now))
        kw_warn("handshake budget: %s %u full, closing the oldest unauthenticated connection "
                "(%llu from %s; %llu closed so far): too many connections that do not finish TLS",
                budget, limit, (unsigned long long)victim->id, victim->name,
                (unsigned long long)a->evicted);
    hs_remove(a, victim);
}

size_t kw_ks_admit_handshake(kw_ks_admit_t *a, const kw_ks_config_t *cfg, uint64_t now,
                             kw_ks_admit_entry_t *e, kw_ks_admit_entry_t **victims)
{
    size_t n_victims = 0;
    if (cfg->max_handshakes_per_ip > 0 && e->addr_len > 0) {
        kw_ks_admit_entry_t *oldest = NULL;
        unsigned n = 0;
        for (kw_link_t *k = a->handshaking.head; k != NULL; k = k->next) {
            kw_ks_admit_entry_t *o = KW_LIST_ENTRY(k, kw_ks_admit_entry_t, link);
            if (same_addr(o, e)) {
                oldest = oldest != NULL ? oldest : o;
                n++;
            }
        }
        if (n >= cfg->max_handshakes_per_ip) {
            evict(a, now, oldest, "--max-handshakes-per-ip", cfg->max_handshakes_per_ip);
            victims[n_victims++] = oldest;
        }
    }
    if (cfg->max_handshakes > 0 && a->handshaking.n >= cfg->max_handshakes &&
        a->handshaking.head != NULL) {
        kw_ks_admit_entry_t *oldest = KW_LIST_ENTRY(a->handshaking.head, kw_ks_admit_entry_t, link);
        evict(a, now, oldest, "--max-handshakes", cfg->max_handshakes);
        victims[n_victims++] = oldest;
    }
    kw_list_push_back(&a->handshaking, &e->link);
    return n_victims;
}

int kw_ks_admit_edge(kw_ks_admit_t *a, const kw_ks_config_t *cfg, uint64_t now,
                     kw_ks_admit_entry_t *e)
{
    unsigned max = cfg->max_connections;
    hs_remove(a, e);
    if (max > 0 && a->n_edges >= max) {
        if (may_log(a, now))
            kw_warn("connection %llu from %s refused: --max-connections %u reached (edges "
                    "connected)",
                    (unsigned long long)e->id, e->name, max);
        return -1;
    }
    e->is_edge = 1;
    a->n_edges++;
    return 0;
}

void kw_ks_admit_leave(kw_ks_admit_t *a, kw_ks_admit_entry_t *e)
{
    hs_remove(a, e);
    if (e->is_edge) {
        e->is_edge = 0;
        a->n_edges--;
    }
}
