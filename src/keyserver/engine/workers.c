/*
 * Worker threads for private-key jobs: one queue per source (connection) and a ring of the
 * sources with queued jobs under one mutex and condition variable (signalled only when a worker
 * is idle); a worker takes one job from the first source of the ring and moves that source to the
 * back, so sources are served in turn and a flood on one connection delays another's job by at
 * most a few operations. A done list under its own mutex, and an eventfd that wakes the loop when
 * the done list goes from empty to non-empty, so one wake-up carries many results. While the
 * workers have nothing queued, jobs for keys in memory are held (per source, in the same turn
 * order) and run on the loop thread at the end of the iteration instead, up to a time budget:
 * see kw_ks_workers_run_held. With loop_only (one CPU) the loop signs every job for a key in
 * memory, a budget's worth per iteration, and the rest wait for the next iteration (whose poll
 * does not block, and reads the other connections first).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "keyward/error.h"
#include "kw_clock.h"
#include "kw_eventfd.h"
#include "kw_log.h"
#include "obs/metrics.h"
#include "ops/ops.h"
#include "engine/workers.h"

static void push_done(kw_ks_workers_t *w, kw_ks_job_t *job)
{
    job->next = NULL;
    pthread_mutex_lock(&w->done_lock);
    int was_empty = w->done_head == NULL;
    if (was_empty)
        w->done_head = job;
    else
        w->done_tail->next = job;
    w->done_tail = job;
    pthread_mutex_unlock(&w->done_lock);
    if (was_empty)
        kw_eventfd_signal(w->wake_fd);
}

static void run_job(kw_ks_worker_t *self, kw_ks_job_t *job)
{
    kw_ks_workers_t *w = self->pool;
    uint64_t t0 = w->metrics != NULL || w->timeout_ns != 0 ? kw_clock_ns() : 0;
    if (w->timeout_ns != 0 && t0 - job->t_start > w->timeout_ns) {
        job->result = KW_ERR_INTERNAL; /* the client has given up on it by now: shed the load */
        job->out_len = 0;
        return;
    }
    job->result = kw_ks_op_run(self->cache, job->key, job->opcode, job->in, job->in_len,
                               job->tls_version, job->out, &job->out_len);
    if (w->metrics != NULL)
        kw_ks_metrics_worker_busy(w->metrics, kw_clock_ns() - t0);
}

static kw_ks_job_src_t *src_of(kw_ks_workers_t *w, const kw_ks_job_t *job)
{
    return job->src != NULL ? job->src : &w->solo;
}

/* Appends job to its source's queue, and the source to the ring. Under w->lock. */
static void queue_job(kw_ks_workers_t *w, kw_ks_job_t *job)
{
    kw_ks_job_src_t *src = src_of(w, job);
    job->next = NULL;
    if (src->tail == NULL)
        src->head = job;
    else
        src->tail->next = job;
    src->tail = job;
    w->queued++;
    if (src->queued)
        return;
    src->queued = 1;
    src->next = NULL;
    if (w->ring_tail == NULL)
        w->ring_head = src;
    else
        w->ring_tail->next = src;
    w->ring_tail = src;
}

/* One job of the first source of the ring, which goes to the back when it has more (NULL: none).
 * Under w->lock. */
static kw_ks_job_t *take_job(kw_ks_workers_t *w)
{
    kw_ks_job_src_t *src = w->ring_head;
    if (src == NULL)
        return NULL;
    kw_ks_job_t *job = src->head;
    src->head = job->next;
    if (src->head == NULL)
        src->tail = NULL;
    w->ring_head = src->next;
    if (w->ring_head == NULL)
        w->ring_tail = NULL;
    src->next = NULL;
    if (src->head == NULL) {
        src->queued = 0;
    } else if (w->ring_tail == NULL) {
        w->ring_head = src;
        w->ring_tail = src;
    } else {
        w->ring_tail->next = src;
        w->ring_tail = src;
    }
    w->queued--;
    job->next = NULL;
    return job;
}

/* Wakes as many idle workers as count jobs need. Under w->lock. */
static void wake_workers(kw_ks_workers_t *w, size_t count)
{
    if (w->idle == 0)
        return;
    if (count > 1 && w->idle > 1)
        pthread_cond_broadcast(&w->cond);
    else
        pthread_cond_signal(&w->cond);
}

/* Queues a list (each job on its source's queue) and wakes as many idle workers as it needs. */
static void enqueue(kw_ks_workers_t *w, kw_ks_job_t *head, size_t count)
{
    pthread_mutex_lock(&w->lock);
    for (kw_ks_job_t *j = head, *next; j != NULL; j = next) {
        next = j->next;
        queue_job(w, j);
    }
    wake_workers(w, count);
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    kw_ks_worker_t *self = arg;
    kw_ks_workers_t *w = self->pool;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->stop && w->ring_head == NULL) {
            w->idle++;
            pthread_cond_wait(&w->cond, &w->lock);
            w->idle--;
        }
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        kw_ks_job_t *job = take_job(w);
        pthread_mutex_unlock(&w->lock);
        run_job(self, job);
        push_done(w, job);
    }
    return NULL;
}

/* Takes the done list (after clearing the eventfd, so no wake-up is lost). */
static void drain_done(kw_ks_workers_t *w)
{
    kw_eventfd_drain(w->wake_fd); /* nothing signalled: the list may still hold jobs */
    pthread_mutex_lock(&w->done_lock);
    kw_ks_job_t *jobs = w->done_head;
    w->done_head = NULL;
    w->done_tail = NULL;
    pthread_mutex_unlock(&w->done_lock);
    if (jobs != NULL)
        w->done_cb(w, jobs);
}

static void on_wake(uv_poll_t *handle, int status, int events)
{
    (void)status;
    (void)events;
    drain_done(handle->data);
}

int kw_ks_workers_start(kw_ks_workers_t *w, uv_loop_t *loop, unsigned n, unsigned cache_slots,
                        kw_ks_workers_done_cb done_cb)
{
    void *data = w->data;
    struct kw_ks_metrics_s *metrics = w->metrics;
    uint64_t timeout_ns = w->timeout_ns;
    int run_inline = w->run_inline;
    uint64_t inline_budget_ns = w->inline_budget_ns;
    int loop_only = w->loop_only;
    memset(w, 0, sizeof(*w));
    w->data = data;
    w->metrics = metrics;
    w->timeout_ns = timeout_ns;
    w->loop = loop;
    w->done_cb = done_cb;
    w->n = n;
    w->wake_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_mutex_init(&w->done_lock, NULL);
    w->run_inline = run_inline;
    w->inline_budget_ns = inline_budget_ns;
    w->loop_only = loop_only;
    w->loop_worker.pool = w;
    w->loop_worker.cache = kw_ks_op_cache_new(cache_slots);
    w->threads = calloc(n, sizeof(*w->threads));
    w->workers = calloc(n, sizeof(*w->workers));
    if (w->threads == NULL || w->workers == NULL || w->loop_worker.cache == NULL)
        return KW_ENOMEM;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        return KW_EIO;
    if (uv_poll_init(loop, &w->poll, w->wake_fd) != 0 ||
        uv_poll_start(&w->poll, UV_READABLE, on_wake) != 0)
        return KW_EIO;
    w->poll.data = w;
    if (uv_idle_init(loop, &w->more) != 0)
        return KW_EIO;
    w->more_init = 1;
    for (unsigned i = 0; i < n; i++) {
        w->workers[i].pool = w;
        w->workers[i].cache = kw_ks_op_cache_new(cache_slots);
        if (w->workers[i].cache == NULL)
            return KW_ENOMEM;
        if (pthread_create(&w->threads[i], NULL, worker_main, &w->workers[i]) != 0) {
            kw_error("cannot start worker thread %u", i);
            return KW_ENOMEM;
        }
        w->started++;
    }
    return 0;
}

static void append(kw_ks_job_t **head, kw_ks_job_t **tail, kw_ks_job_t *job)
{
    job->next = NULL;
    if (*tail == NULL)
        *head = job;
    else
        (*tail)->next = job;
    *tail = job;
}

/* Holds job for the loop thread: on its source's held list, the source in the held ring. */
static void hold_job(kw_ks_workers_t *w, kw_ks_job_t *job)
{
    kw_ks_job_src_t *src = src_of(w, job);
    append(&src->held_head, &src->held_tail, job);
    w->n_held++;
    if (src->in_held)
        return;
    src->in_held = 1;
    src->next_held = NULL;
    if (w->held_tail == NULL)
        w->held_head = src;
    else
        w->held_tail->next_held = src;
    w->held_tail = src;
}

/* The next held job in turn (like take_job), or NULL. */
static kw_ks_job_t *take_held(kw_ks_workers_t *w)
{
    kw_ks_job_src_t *src = w->held_head;
    if (src == NULL)
        return NULL;
    kw_ks_job_t *job = src->held_head;
    src->held_head = job->next;
    if (src->held_head == NULL)
        src->held_tail = NULL;
    w->held_head = src->next_held;
    if (w->held_head == NULL)
        w->held_tail = NULL;
    src->next_held = NULL;
    if (src->held_head == NULL) {
        src->in_held = 0;
    } else if (w->held_tail == NULL) {
        w->held_head = src;
        w->held_tail = src;
    } else {
        w->held_tail->next_held = src;
        w->held_tail = src;
    }
    w->n_held--;
    job->next = NULL;
    return job;
}

/* A job the loop may run itself: a key in memory (a token's latency is not the loop's to wait
 * out). */
static int may_hold(const kw_ks_job_t *job)
{
    return job->key != NULL && job->key->backend->local;
}

void kw_ks_workers_submit(kw_ks_workers_t *w, kw_ks_job_t *head, kw_ks_job_t *tail, size_t count)
{
    (void)tail;
    if (head == NULL)
        return;
    int hold = w->run_inline || w->loop_only;
    if (hold && !w->loop_only) { /* a queue means the workers are behind: the loop stays free */
        pthread_mutex_lock(&w->lock);
        hold = w->queued == 0;
        pthread_mutex_unlock(&w->lock);
    }
    if (!hold) {
        enqueue(w, head, count);
        return;
    }
    kw_ks_job_t *q_head = NULL, *q_tail = NULL;
    size_t q_count = 0;
    for (kw_ks_job_t *j = head, *next; j != NULL; j = next) {
        next = j->next;
        if (may_hold(j)) {
            hold_job(w, j);
        } else {
            append(&q_head, &q_tail, j);
            q_count++;
        }
    }
    if (q_head != NULL)
        enqueue(w, q_head, q_count);
}

/* The held jobs not run in this iteration go to the workers' queues. */
static void spill_held(kw_ks_workers_t *w)
{
    size_t n = w->n_held;
    pthread_mutex_lock(&w->lock);
    for (kw_ks_job_t *j = take_held(w); j != NULL; j = take_held(w))
        queue_job(w, j);
    wake_workers(w, n);
    pthread_mutex_unlock(&w->lock);
}

static void on_more(uv_idle_t *h)
{
    (void)h; /* only keeps the loop's poll from blocking while jobs are held */
}

int kw_ks_workers_run_held(kw_ks_workers_t *w)
{
    if (w->n_held == 0)
        return 0;
    uint64_t budget = w->inline_budget_ns != 0 ? w->inline_budget_ns : KW_KS_INLINE_BUDGET_NS;
    uint64_t t0 = kw_clock_ns();
    kw_ks_job_t *done = NULL, *done_tail = NULL;
    for (kw_ks_job_t *job = take_held(w); job != NULL; job = take_held(w)) {
        run_job(&w->loop_worker, job);
        append(&done, &done_tail, job);
        if (w->n_held > 0 && kw_clock_ns() - t0 >= budget) {
            if (!w->loop_only)
                spill_held(w); /* the loop falls behind: the rest go to the workers */
            break;
        }
    }
    w->done_cb(w, done);
    return w->n_held > 0;
}

void kw_ks_workers_iteration_end(kw_ks_workers_t *w)
{
    if (!w->more_init)
        return;
    if (w->n_held > 0)
        (void)uv_idle_start(&w->more, on_more);
    else
        (void)uv_idle_stop(&w->more);
}

void kw_ks_workers_stop(kw_ks_workers_t *w, uv_close_cb close_cb)
{
    if (w->n_held > 0) { /* not run yet: cancelled like the queue */
        kw_ks_job_t *held = NULL, *held_tail = NULL;
        for (kw_ks_job_t *j = take_held(w); j != NULL; j = take_held(w)) {
            j->cancelled = 1;
            append(&held, &held_tail, j);
        }
        w->done_cb(w, held);
    }
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_broadcast(&w->cond);
    kw_ks_job_t *left = NULL, *left_tail = NULL;
    for (kw_ks_job_t *j = take_job(w); j != NULL; j = take_job(w))
        append(&left, &left_tail, j);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->started; i++)
        pthread_join(w->threads[i], NULL);
    for (kw_ks_job_t *j = left; j != NULL; j = j->next)
        j->cancelled = 1;
    if (left != NULL)
        w->done_cb(w, left);
    if (w->wake_fd >= 0)
        drain_done(w); /* results that finished while stopping */
    for (unsigned i = 0; i < w->n && w->workers != NULL; i++)
        kw_ks_op_cache_free(w->workers[i].cache);
    kw_ks_op_cache_free(w->loop_worker.cache);
    w->loop_worker.cache = NULL;
    free(w->workers);
    free(w->threads);
    w->workers = NULL;
    w->threads = NULL;
    w->started = 0;
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->done_lock);
    if (w->poll.data != NULL)
        uv_close((uv_handle_t *)&w->poll, close_cb);
    if (w->more_init) /* closed after the poll handle, so it is finished before close_cb runs */
        uv_close((uv_handle_t *)&w->more, NULL);
    w->more_init = 0;
    if (w->wake_fd >= 0)
        close(w->wake_fd); /* libuv does not close a polled fd; no callbacks can come now */
    w->wake_fd = -1;
}
