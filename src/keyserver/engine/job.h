/*
 * A job: one private-key request travelling from the loop thread to a worker and back. Jobs are
 * allocated and freed on the loop thread only, from a free list (no malloc on the hot path); the
 * request payload is copied once into the job (inline when small).
 */
#ifndef KW_JOB_H
#define KW_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "obs/audit.h"
#include "keystore/keystore.h"
#include "ops/ops.h"

#define KW_JOB_INLINE 528 /* an RSA-4096 ciphertext fits inline */

struct kw_ks_peer_s;
struct kw_ks_job_s;

/*
 * Where jobs come from (one per connection). The worker pool keeps a queue per source and takes
 * one job from each source with jobs in turn (round robin), on the worker threads and for the
 * jobs the loop thread runs itself, so a source with hundreds of jobs delays another source's job
 * by at most a few operations. Zeroed by its owner, who keeps it alive while any of its jobs is
 * (a connection embeds it; each job holds a reference to its peer). Fields are the pool's:
 * the queue ones under its lock, the held ones on the loop thread (separate bytes on purpose).
 */
typedef struct kw_ks_job_src_s {
    struct kw_ks_job_s *head; /* queued for the workers */
    struct kw_ks_job_s *tail;
    struct kw_ks_job_src_s *next;  /* ring of sources with queued jobs */
    uint8_t queued;                /* in that ring */
    uint8_t in_held;               /* in the ring of sources with held jobs */
    struct kw_ks_job_s *held_head; /* held for the loop thread */
    struct kw_ks_job_s *held_tail;
    struct kw_ks_job_src_s *next_held;
} kw_ks_job_src_t;

typedef struct kw_ks_job_s {
    struct kw_ks_job_s *next;  /* queue / free list link */
    kw_ks_job_src_t *src;      /* its connection's queue (NULL: the pool's own) */
    struct kw_ks_peer_s *peer; /* holds a reference (kw_ks_peer_hold) */
    kw_keystore_t *store;      /* holds a reference; key lives in it */
    const kw_ks_key_t *key;
    uint32_t id;
    uint8_t opcode;
    uint8_t result;    /* 0 or a kw_remote_error_t, set by the worker */
    uint8_t cancelled; /* set when the pool stopped before running it */
    unsigned tls_version;
    uint64_t t_start; /* monotonic ns when the request was read (metrics, request timeout) */
    uint8_t *in;      /* in_inline or heap */
    size_t in_len;
    size_t out_len;
    uint8_t out[KW_OP_OUT_MAX];
    kw_ks_audit_rec_t audit; /* the request's audit record; set only with an audit log */
    uint8_t in_inline[KW_JOB_INLINE];
} kw_ks_job_t;

/* Free list of jobs; loop thread only. */
typedef struct kw_ks_job_pool_s {
    kw_ks_job_t *free;
    size_t n_free;
    size_t max_free;
} kw_ks_job_pool_t;

void kw_ks_job_pool_init(kw_ks_job_pool_t *pool, size_t max_free);
void kw_ks_job_pool_destroy(kw_ks_job_pool_t *pool);

/* A job with room for in_len payload bytes (copied by the caller into job->in), or NULL. */
kw_ks_job_t *kw_ks_job_alloc(kw_ks_job_pool_t *pool, size_t in_len);

/* Cleanses the result, returns the job to the pool. Does not touch conn / store references. */
void kw_ks_job_free(kw_ks_job_pool_t *pool, kw_ks_job_t *job);

#endif /* KW_JOB_H */
