/*
 * Connection admission (issue 20, finding 6): connections still in their TLS handshake are
 * unauthenticated, so they have their own budget (--max-handshakes, and --max-handshakes-per-ip
 * per source address) apart from --max-connections, which counts authenticated edges only. When a
 * budget is full, the oldest handshaking connection (of that address, or of all) gives way to the
 * new one: silent sockets cannot lock edges out, and a real handshake, which takes milliseconds,
 * gets through an attacker's churn. Admission keeps its own list entries (one embedded in each
 * connection) and knows nothing else of a connection: it names the ones to close. Loop thread.
 */
#ifndef KW_KS_ADMIT_H
#define KW_KS_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "kw_list.h"

/* A connection as admission sees it (embedded in the connection, zeroed with it). */
typedef struct kw_ks_admit_entry_s {
    uint64_t id;      /* the connection's number, for log lines */
    const char *name; /* its peer address as text, for log lines */
    uint8_t addr[16]; /* the peer's IP address (per-address handshake budget) */
    uint8_t addr_len; /* 4, 16, or 0 when unknown */
    uint8_t is_edge;  /* authenticated, counted in n_edges */
    kw_link_t link;   /* on the handshake list while in the handshake */
} kw_ks_admit_entry_t;

/* The budgets (embedded in the server, zeroed with it). */
typedef struct kw_ks_admit_s {
    kw_list_t handshaking; /* entries of connections in their TLS handshake, oldest first */
    unsigned n_edges;      /* authenticated connections (--max-connections) */
    uint64_t evicted;      /* handshaking connections closed to make room */
    uint64_t logged_at;    /* loop time (ms) of the last admission warning */
} kw_ks_admit_t;

#define KW_KS_ADMIT_MAX_EVICT 2

/* A connection was accepted (e's address is known; now: loop time in ms): e enters the handshake
 * budget. The oldest handshaking connections over the budget leave it and are returned in
 * victims (at most KW_KS_ADMIT_MAX_EVICT, never e): the caller closes them. Returns their
 * number. */
size_t kw_ks_admit_handshake(kw_ks_admit_t *a, const kw_ks_config_t *cfg, uint64_t now,
                             kw_ks_admit_entry_t *e, kw_ks_admit_entry_t **victims);

/* e finished its handshake. Returns 0 when it is admitted as an edge, -1 when --max-connections
 * edges are already connected (the caller closes it). */
int kw_ks_admit_edge(kw_ks_admit_t *a, const kw_ks_config_t *cfg, uint64_t now,
                     kw_ks_admit_entry_t *e);

/* e is closing: leaves whichever budget it is in. */
void kw_ks_admit_leave(kw_ks_admit_t *a, kw_ks_admit_entry_t *e);

#endif /* KW_KS_ADMIT_H */
