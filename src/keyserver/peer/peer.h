/*
 * The peer a request came from, as request dispatch, the fleet hooks and upstream forwarding see
 * it (the shape of redis's connection.h): a small reply interface (a table of functions the
 * transport fills in) and the per-peer request state. net/conn.c implements it for a mutual-TLS
 * connection; the dispatch fuzzer implements it over a buffer. Nothing below the network knows a
 * connection: replies, closes and "a request of yours finished" all go through this table, and
 * the transport decides when to write and when to read again (it never re-enters dispatch from
 * here). Loop thread only.
 */
#ifndef KW_KS_PEER_H
#define KW_KS_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"

typedef struct kw_ks_peer_s kw_ks_peer_t;

/* What a transport provides. */
typedef struct kw_ks_peer_type_s {
    /* Appends a reply. Returns 0 or a negative KW_E* (KW_ECLOSED once the peer is closing). */
    int (*reply)(kw_ks_peer_t *p, uint32_t id, uint8_t opcode, const uint8_t *payload, size_t len);
    /* Closes now (idempotent). */
    void (*close)(kw_ks_peer_t *p);
    /* Reference counting: a queued job or a forwarded request holds the peer. */
    void (*hold)(kw_ks_peer_t *p);
    void (*release)(kw_ks_peer_t *p);
    /* One request counted in p->inflight finished (its reply, if any, was appended): the
     * transport schedules the peer (more requests may be read, a finishing peer may close). */
    void (*done)(kw_ks_peer_t *p);
} kw_ks_peer_type_t;

struct kw_ks_edge_s;
struct kw_ks_rate_bucket_s;
struct kw_ks_job_src_s;

struct kw_ks_peer_s {
    const kw_ks_peer_type_t *type;
    uint64_t id;                      /* for log lines ("connection N") */
    const char *name;                 /* the peer's address as text, for log lines */
    struct kw_ks_edge_s *edge;        /* the client's identity (fleet/authz.h); owned by the
                                         transport, NULL before its handshake */
    struct kw_ks_rate_bucket_s *rate; /* its rate-limit bucket (engine/rate.h); NULL: no limit */
    int rate_logged;                  /* a rate-limit refusal was logged (once per peer) */
    unsigned inflight;                /* jobs queued or running, requests forwarded */
    struct kw_ks_job_src_s *jobs;     /* its queue in the worker pool (engine/job.h) */
};

static inline int kw_ks_peer_reply(kw_ks_peer_t *p, uint32_t id, uint8_t opcode,
                                   const uint8_t *payload, size_t len)
{
    return p->type->reply(p, id, opcode, payload, len);
}

static inline int kw_ks_peer_error(kw_ks_peer_t *p, uint32_t id, uint8_t err)
{
    return p->type->reply(p, id, KW_OP_ERROR, &err, 1);
}

static inline void kw_ks_peer_close(kw_ks_peer_t *p)
{
    p->type->close(p);
}

static inline kw_ks_peer_t *kw_ks_peer_hold(kw_ks_peer_t *p)
{
    p->type->hold(p);
    return p;
}

static inline void kw_ks_peer_release(kw_ks_peer_t *p)
{
    p->type->release(p);
}

/* A request of p finished: p->inflight drops by one and the transport schedules p. */
static inline void kw_ks_peer_done(kw_ks_peer_t *p)
{
    p->inflight--;
    p->type->done(p);
}

#endif /* KW_KS_PEER_H */
