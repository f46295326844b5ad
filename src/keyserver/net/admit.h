/*
 * Connection admission (issue 20, finding 6): connections still in their TLS handshake are
 * unauthenticated, so they have their own budget (--max-handshakes, and --max-handshakes-per-ip
 * per source address) apart from --max-connections, which counts authenticated edges only. When a
 * budget is full, the oldest handshaking connection (of that address, or of all) gives way to the
 * new one: silent sockets cannot lock edges out, and a real handshake, which takes milliseconds,
 * gets through an attacker's churn. Loop thread only.
 */
#ifndef KW_KS_ADMIT_H
#define KW_KS_ADMIT_H

struct kw_ks_conn_s;

/* A connection was accepted (its peer address is known): enters the handshake budget, closing
 * the oldest handshaking connections that are over it. */
void kw_ks_admit_handshake(struct kw_ks_conn_s *c);

/* c finished its handshake. Returns 0 when it is admitted as an edge, -1 when --max-connections
 * edges are already connected (the caller closes it). */
int kw_ks_admit_edge(struct kw_ks_conn_s *c);

/* c is closing: leaves whichever budget it is in. */
void kw_ks_admit_leave(struct kw_ks_conn_s *c);

#endif /* KW_KS_ADMIT_H */
