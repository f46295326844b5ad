/*
 * Worker threads for private-key jobs: a FIFO under one mutex and condition variable (signalled
 * only when a worker is idle), a done list under its own mutex, and an eventfd that wakes the
 * loop when the done list goes from empty to non-empty, so one wake-up carries many results.
 * While the workers have nothing queued, jobs for keys in memory are held and run on the loop
 * thread at the end of the iteration instead, up to a time budget: see kw_ks_workers_run_held.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "keyward/error.h"
#include "kw_eventfd.h"
#include "keyward/log.h"
#include "metrics.h"
#include "ops.h"
#include "workers.h"

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
    uint64_t t0 = w->metrics != NULL || w->timeout_ns != 0 ? kw_ks_metrics_now_ns() : 0;
    if (w->timeout_ns != 0 && t0 - job->t_start > w->timeout_ns) {
        job->result = KW_ERR_INTERNAL; /* the client has given up on it by now: shed the load */
        job->out_len = 0;
        return;
    }
    job->result = kw_ks_op_run(self->cache, job->key, job->opcode, job->in, job->in_len,
                               job->tls_version, job->out, &job->out_len);
    if (w->metrics != NULL)
        kw_ks_metrics_worker_busy(w->metrics, kw_ks_metrics_now_ns() - t0);
}

/* Queues a list under the lock and wakes as many idle workers as it needs. */
static void enqueue(kw_ks_workers_t *w, kw_ks_job_t *head, kw_ks_job_t *tail, size_t count)
{
    tail->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->queue_tail == NULL)
        w->queue_head = head;
    else
        w->queue_tail->next = head;
    w->queue_tail = tail;
    unsigned idle = w->idle;
    if (idle > 0) {
        if (count > 1 && idle > 1)
            pthread_cond_broadcast(&w->cond);
        else
            pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    kw_ks_worker_t *self = arg;
    kw_ks_workers_t *w = self->pool;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->stop && w->queue_head == NULL) {
            w->idle++;
            pthread_cond_wait(&w->cond, &w->lock);
            w->idle--;
        }
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        kw_ks_job_t *job = w->queue_head;
        w->queue_head = job->next;
        if (w->queue_head == NULL)
            w->queue_tail = NULL;
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

/* A job the loop may run itself: a key in memory (a token's latency is not the loop's to wait
 * out). */
static int may_hold(const kw_ks_job_t *job)
{
    return job->key != NULL && job->key->p11 == NULL;
}

void kw_ks_workers_submit(kw_ks_workers_t *w, kw_ks_job_t *head, kw_ks_job_t *tail, size_t count)
{
    if (head == NULL)
        return;
    int hold = w->run_inline;
    if (hold) { /* a queue means the workers are behind: the loop stays free for I/O */
        pthread_mutex_lock(&w->lock);
        hold = w->queue_head == NULL;
        pthread_mutex_unlock(&w->lock);
    }
    if (!hold) {
        enqueue(w, head, tail, count);
        return;
    }
    kw_ks_job_t *q_head = NULL, *q_tail = NULL;
    size_t q_count = 0;
    for (kw_ks_job_t *j = head, *next; j != NULL; j = next) {
        next = j->next;
        if (may_hold(j)) {
            append(&w->held, &w->held_tail, j);
        } else {
            append(&q_head, &q_tail, j);
            q_count++;
        }
    }
    if (q_head != NULL)
        enqueue(w, q_head, q_tail, q_count);
}

void kw_ks_workers_run_held(kw_ks_workers_t *w)
{
    kw_ks_job_t *jobs = w->held;
    if (jobs == NULL)
        return;
    w->held = NULL;
    w->held_tail = NULL;
    uint64_t budget = w->inline_budget_ns != 0 ? w->inline_budget_ns : KW_KS_INLINE_BUDGET_NS;
    uint64_t t0 = kw_ks_metrics_now_ns();
    kw_ks_job_t *last = jobs;
    for (;;) {
        run_job(&w->loop_worker, last);
        if (last->next == NULL)
            break;
        if (kw_ks_metrics_now_ns() - t0 >= budget) { /* the loop falls behind: spill the rest */
            kw_ks_job_t *rest = last->next, *rest_tail = rest;
            size_t n = 1;
            for (; rest_tail->next != NULL; rest_tail = rest_tail->next)
                n++;
            last->next = NULL;
            enqueue(w, rest, rest_tail, n);
            break;
        }
        last = last->next;
    }
    w->done_cb(w, jobs);
}

void kw_ks_workers_stop(kw_ks_workers_t *w, uv_close_cb close_cb)
{
    if (w->held != NULL) { /* not run yet: cancelled like the queue */
        kw_ks_job_t *held = w->held;
        w->held = NULL;
        w->held_tail = NULL;
        for (kw_ks_job_t *j = held; j != NULL; j = j->next)
            j->cancelled = 1;
        w->done_cb(w, held);
    }
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_broadcast(&w->cond);
    kw_ks_job_t *left = w->queue_head;
    w->queue_head = NULL;
    w->queue_tail = NULL;
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
    if (w->wake_fd >= 0)
        close(w->wake_fd); /* libuv does not close a polled fd; no callbacks can come now */
    w->wake_fd = -1;
}
