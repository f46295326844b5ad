/*
 * Request dispatch: turns one decoded KWP frame into an immediate reply (ping, certificate chain,
 * key list, errors) or a job for the worker pool, and turns finished jobs into replies.
 */
#ifndef KW_REQUEST_H
#define KW_REQUEST_H

#include <stddef.h>

#include "engine/engine.h"
#include "engine/job.h"
#include "keyward/protocol.h"
#include "peer/peer.h"

/* Jobs made while handling one read, submitted to the workers together. */
typedef struct kw_ks_job_batch_s {
    kw_ks_job_t *head;
    kw_ks_job_t *tail;
    size_t count;
} kw_ks_job_batch_t;

/*
 * Handles the frame hdr + body (hdr->body_len bytes) received from p, with e's keys and rules.
 * Returns 0, or KW_EFORMAT when the frame is malformed (an error reply has been queued; the
 * caller closes after flushing).
 */
int kw_ks_request_handle(kw_ks_engine_t *e, kw_ks_peer_t *p, const kw_header_t *hdr,
                         const uint8_t *body, kw_ks_job_batch_t *batch);

/* Worker pool completion callback (w->data is the engine): replies for every finished job to its
 * peer, frees the jobs and tells each peer its job is done (kw_ks_peer_done: the peer schedules
 * itself; nothing here reads more requests). */
void kw_ks_request_done(kw_ks_workers_t *w, kw_ks_job_t *jobs);

#endif /* KW_REQUEST_H */
