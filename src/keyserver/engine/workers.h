/*
 * The worker pool: N threads that run private-key jobs off the loop thread. The loop submits
 * batches of jobs; finished jobs are collected on a done list and handed back to the loop thread
 * in batches through one eventfd watched by a uv_poll_t, so the loop never blocks on a
 * private-key operation. (Not uv_async_t: libuv 1.44's loop thread busy-waits while a worker is
 * inside uv_async_send, which cost 8% of the server's CPU at 256 requests in flight.)
 */
#ifndef KW_WORKERS_H
#define KW_WORKERS_H

#include <pthread.h>
#include <stddef.h>

#include <uv.h>

#include "engine/job.h"

typedef struct kw_ks_workers_s kw_ks_workers_t;

/* A thread that runs jobs (a worker, or the loop thread for a held job) and its context cache. */
typedef struct kw_ks_worker_s {
    kw_ks_workers_t *pool;
    kw_ks_op_cache_t *cache;
} kw_ks_worker_t;

/* Called on the loop thread with a list (linked by next) of finished or cancelled jobs. */
typedef void (*kw_ks_workers_done_cb)(kw_ks_workers_t *w, kw_ks_job_t *jobs);

struct kw_ks_workers_s {
    void *data; /* for the owner */
    uv_loop_t *loop;
    uv_poll_t poll; /* readable when wake_fd was written */
    int wake_fd;    /* eventfd */
    kw_ks_workers_done_cb done_cb;
    pthread_mutex_t lock; /* guards the ring, the sources' queues, queued, idle, stop */
    pthread_cond_t cond;
    kw_ks_job_src_t *ring_head; /* sources with queued jobs, served in turn */
    kw_ks_job_src_t *ring_tail;
    size_t queued;        /* jobs queued for the workers */
    kw_ks_job_src_t solo; /* the source of jobs that name none */
    unsigned idle;
    int stop;
    pthread_mutex_t done_lock; /* guards the done list */
    kw_ks_job_t *done_head;
    kw_ks_job_t *done_tail;
    pthread_t *threads;
    kw_ks_worker_t *workers;
    kw_ks_worker_t loop_worker; /* the loop thread's cache, for held jobs */
    kw_ks_job_src_t *held_head; /* sources with jobs held for the end of the loop iteration, */
    kw_ks_job_src_t *held_tail; /* run in turn like the workers' ring */
    size_t n_held;
    unsigned n;
    unsigned started;
    struct kw_ks_metrics_s *metrics; /* worker busy time; NULL: off. Set before start */
    uint64_t timeout_ns;       /* a job queued longer is answered KW_ERR_INTERNAL unrun; 0: never */
    int run_inline;            /* hold jobs for the loop thread (set before start) */
    uint64_t inline_budget_ns; /* 0: KW_KS_INLINE_BUDGET_NS (set before start) */
    int loop_only;  /* one CPU: the loop signs every job for a key in memory, never hands it to a
                       worker on its own CPU; jobs past the budget wait for the next iteration
                       (set before start) */
    uv_idle_t more; /* active while jobs are held across iterations: the poll does not block */
    int more_init;
};

/* Starts n threads, each with a context cache of cache_slots (data, metrics and timeout_ns, set
 * by the caller before, are kept). Returns 0 or a negative KW_E*. */
int kw_ks_workers_start(kw_ks_workers_t *w, uv_loop_t *loop, unsigned n, unsigned cache_slots,
                        kw_ks_workers_done_cb done_cb);

/* How long the loop thread may spend on held jobs per iteration before it hands the rest to the
 * workers: a few RSA-2048 signatures, dozens of ECDSA ones. */
#define KW_KS_INLINE_BUDGET_NS 1000000u

/*
 * Queues a list of count jobs (head..tail linked by next), each on its source's queue (job->src).
 * Loop thread. With run_inline and nothing queued for the workers, jobs for keys in memory are
 * held for kw_ks_workers_run_held instead (token keys are queued at once). Workers serve the
 * sources in turn: one job from each source with jobs, then again.
 */
void kw_ks_workers_submit(kw_ks_workers_t *w, kw_ks_job_t *head, kw_ks_job_t *tail, size_t count);

/*
 * Runs the held jobs on the calling (loop) thread, one from each source in turn (in order within
 * a source), and hands them to done_cb. Called
 * once per loop iteration after all reads (check phase). While the workers keep up (nothing
 * queued), the loop signs the requests it read itself, which saves two thread wake-ups per
 * request (worker and loop, about 30 µs each on a VM: more than an ECDSA signature costs).
 * Once the loop has spent inline_budget_ns, the jobs left go to the workers; the queue they
 * form stops further holding until the workers have caught up, so under load the loop only
 * does I/O and I/O never waits more than the budget plus one key operation. With loop_only the
 * jobs left stay held for the next iteration instead (the loop reads its connections between
 * batches; kw_ks_workers_iteration_end keeps that poll from blocking). Returns 1 when jobs are
 * left held (loop_only, budget spent), else 0.
 */
int kw_ks_workers_run_held(kw_ks_workers_t *w);

/* End of the loop thread's check phase: while jobs are held (loop_only), the next poll must not
 * block. */
void kw_ks_workers_iteration_end(kw_ks_workers_t *w);

/*
 * Stops the threads after their current job and joins them; jobs still queued come back through
 * done_cb with cancelled set, then the poll handle is closed (close_cb may be NULL).
 * Loop thread; the loop must run afterwards for the close to complete.
 */
void kw_ks_workers_stop(kw_ks_workers_t *w, uv_close_cb close_cb);

#endif /* KW_WORKERS_H */
