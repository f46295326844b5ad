/*
 * What request dispatch works with, apart from the peer a request came from (peer/peer.h): the
 * key store in use, the fleet hooks (authorisation, audit, upstreams), the job free list, the
 * worker pool, the metrics and the rate limits. One lives in the server (net/server.h); the
 * dispatch fuzzer makes its own. A reload swaps the store here (kw_ks_engine_set_store) and the
 * rules in fleet; loop thread only.
 */
#ifndef KW_KS_ENGINE_H
#define KW_KS_ENGINE_H

#include "engine/job.h"
#include "engine/rate.h"
#include "engine/workers.h"
#include "fleet/fleet.h"
#include "keystore/keystore.h"
#include "obs/metrics.h"

typedef struct kw_ks_engine_s {
    kw_keystore_t *store;     /* owned reference; see kw_ks_engine_set_store */
    kw_ks_fleet_t fleet;      /* authorisation, audit log, upstreams (fleet.h) */
    kw_ks_job_pool_t jobs;    /* free list of jobs */
    kw_ks_workers_t workers;  /* data: this engine (kw_ks_request_done) */
    kw_ks_metrics_t *metrics; /* not owned; NULL: off */
    kw_ks_rate_t *rate;       /* per-edge rate limits (rate.h); NULL: none */
} kw_ks_engine_t;

/* Swaps in a new key store (takes a reference; drops the old one). Jobs in flight keep theirs. */
static inline void kw_ks_engine_set_store(kw_ks_engine_t *e, kw_keystore_t *store)
{
    kw_keystore_t *old = e->store;
    e->store = kw_keystore_ref(store);
    kw_keystore_unref(old);
}

#endif /* KW_KS_ENGINE_H */
