/*
 * The client's I/O core: an epoll loop that owns every connection of a client, run either by
 * blocking callers themselves or by an I/O thread. Without the thread (the start, and for good
 * when only blocking callers use the client: nginx and Apache workers, HAProxy's workers which
 * may not create threads), a submitting caller sends its request itself and a waiting caller runs
 * the loop ("drives": connects, handshakes, reads, retries, timers) until its request completes;
 * one caller drives at a time, the others wait for their reply or for the role (a hand-off
 * eventfd). The thread starts when an asynchronous caller needs one (kw_request_fd, _notify) and
 * then takes over the loop; a thread that cannot start is reported as such (KW_ETHREAD) and
 * blocking callers go on driving.
 *
 * With the thread: callers hand requests over through a mutex-protected queue and an eventfd
 * ("wake"), written only when the queue goes from idle to busy, so a burst of submissions costs one
 * wakeup. Fast path: when the I/O thread is asleep in epoll_wait (io_lock free) and nothing is
 * queued, the caller takes io_lock and sends its request itself, which saves a thread wakeup per
 * request. Likewise a caller blocking on its reply (kw_request_wait) may read that connection
 * itself (kwc_core_lead: it sleeps in poll without io_lock and reads only under it, with the socket
 * masked in epoll), so the reply wakes only the thread that waits for it. Each loop turn: wait for
 * events (io_lock released), handle them, run the timers (tick), then write every connection's
 * batched frames in one go. Signals are blocked in the thread.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/err.h>

#include "keyward/error.h"
#include "kw_eventfd.h"
#include "kw_log.h"
#include "kwc_balance.h"
#include "kwc_internal.h"

#define KWC_MAX_EVENTS 64

void kwc_core_set_error(kwc_core_t *core, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&core->err_lock);
    va_start(ap, fmt);
    vsnprintf(core->last_err, sizeof(core->last_err), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&core->err_lock);
}

int kwc_core_watch(kwc_core_t *core, kwc_conn_t *conn, uint32_t events)
{
    struct epoll_event ev;
    if (conn->events == events)
        return 0;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = conn;
    int op = conn->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(core->epfd, op, conn->fd, &ev) != 0)
        return KW_EIO;
    conn->events = events;
    return 0;
}

static void flush_dirty(kwc_core_t *core);
static int drain_queue(kwc_core_t *core);
static void tick(kwc_core_t *core);
static int wait_ms(kwc_core_t *core);

/* The caller's OpenSSL errors, set aside while the client does I/O on its thread (SSL_get_error
 * needs an empty queue, and the caller's errors must come back unchanged, none of ours added). */
#define KWC_ERRQ_MAX 16
typedef struct kwc_errq_s {
    size_t n;
    struct {
        unsigned long code;
        char file[128]; /* copies: OpenSSL 3.0 frees its own at ERR_clear_error */
        char func[64];
        int line;
        int has_data;
        char data[256];
    } e[KWC_ERRQ_MAX];
} kwc_errq_t;

static void errq_save(kwc_errq_t *q)
{
    const char *file = NULL;
    const char *func = NULL;
    const char *data = NULL;
    int line = 0;
    int flags = 0;
    unsigned long code;
    q->n = 0;
    if (ERR_peek_error() == 0)
        return;
    while ((code = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        if (q->n == KWC_ERRQ_MAX)
            continue;
        q->e[q->n].code = code;
        snprintf(q->e[q->n].file, sizeof(q->e[q->n].file), "%s", file != NULL ? file : "");
        snprintf(q->e[q->n].func, sizeof(q->e[q->n].func), "%s", func != NULL ? func : "");
        q->e[q->n].line = line;
        q->e[q->n].has_data = (flags & ERR_TXT_STRING) != 0 && data != NULL;
        snprintf(q->e[q->n].data, sizeof(q->e[q->n].data), "%s", q->e[q->n].has_data ? data : "");
        q->n++;
    }
}

static void errq_restore(const kwc_errq_t *q)
{
    ERR_clear_error();
    for (size_t i = 0; i < q->n; i++) {
        ERR_new();
        ERR_set_debug(q->e[i].file, q->e[i].line, q->e[i].func);
        if (q->e[i].has_data)
            ERR_set_error(ERR_GET_LIB(q->e[i].code), ERR_GET_REASON(q->e[i].code), "%s",
                          q->e[i].data);
        else
            ERR_set_error(ERR_GET_LIB(q->e[i].code), ERR_GET_REASON(q->e[i].code), NULL);
    }
}

/* Without the I/O thread nobody reads the sockets between two drivers, so the stall and connect
 * clocks stop meanwhile: a pong left unread must not make a healthy server look stalled to the
 * next caller. Both under io_lock, with core->now_us current. */
static void clocks_resume(kwc_core_t *core)
{
    if (core->idle_since_us == 0)
        return;
    uint64_t gap = core->now_us - core->idle_since_us;
    core->idle_since_us = 0;
    for (size_t i = 0; i < core->n_servers; i++) {
        kwc_conn_t *conn = &core->servers[i].conn;
        if (conn->inflight.n > 0)
            conn->progress_us += gap;
        if (conn->state == KWC_CONN_TCP || conn->state == KWC_CONN_TLS ||
            conn->state == KWC_CONN_PROBE)
            conn->deadline_us += gap;
    }
}

/* After this long without anyone reading, a submitting caller first reads what came meanwhile. */
#define KWC_IDLE_CHECK_US 1000000u

/* Handles the events already there, without waiting (io_lock held). */
static void poll_now(kwc_core_t *core)
{
    struct epoll_event evs[KWC_MAX_EVENTS];
    int n = epoll_wait(core->epfd, evs, KWC_MAX_EVENTS, 0);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL)
            (void)drain_queue(core);
        else
            kwc_conn_event(evs[i].data.ptr, evs[i].events);
    }
}

static void clocks_pause(kwc_core_t *core)
{
    if (!core->driving && !atomic_load(&core->thread_started) && core->idle_since_us == 0)
        core->idle_since_us = core->now_us;
}

/* Without an I/O thread: sends r on the caller's thread, first running the timers (which also
 * start the connections on first use). Returns 1 when done, 0 when the thread runs now. */
static int submit_unthreaded(kwc_core_t *core, kw_request_t *r)
{
    kwc_errq_t q;
    pthread_mutex_lock(&core->io_lock);
    if (atomic_load(&core->thread_started)) {
        pthread_mutex_unlock(&core->io_lock);
        return 0;
    }
    errq_save(&q);
    core->now_us = kwc_now_us();
    core->last_submit_us = core->now_us;
    if (core->idle_since_us != 0 && core->now_us - core->idle_since_us >= KWC_IDLE_CHECK_US)
        poll_now(core); /* a connection the key server closed meanwhile: reconnect first */
    clocks_resume(core);
    tick(core);
    kwc_dispatch_new(core, r);
    flush_dirty(core);
    clocks_pause(core);
    errq_restore(&q);
    pthread_mutex_unlock(&core->io_lock);
    return 1;
}

/* Runs the loop on the caller's thread (io_lock held, released while waiting for events) until
 * r completes or the I/O thread starts. */
static void drive(kwc_core_t *core, kw_request_t *r)
{
    struct epoll_event evs[KWC_MAX_EVENTS];
    kwc_errq_t q;
    uint64_t next_tick = 0;
    errq_save(&q);
    core->now_us = kwc_now_us();
    clocks_resume(core);
    while (!kw_request_done(r) && !atomic_load(&core->thread_started)) {
        core->now_us = kwc_now_us();
        if (core->now_us >= next_tick) {
            tick(core);
            next_tick = core->now_us + (uint64_t)KWC_TICK_MS * 1000u;
        }
        flush_dirty(core);
        if (kw_request_done(r))
            break;
        int timeout = core->dirty != NULL ? 0 : wait_ms(core);
        pthread_mutex_unlock(&core->io_lock);
        int n = epoll_wait(core->epfd, evs, KWC_MAX_EVENTS, timeout);
        pthread_mutex_lock(&core->io_lock);
        core->now_us = kwc_now_us();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                (void)drain_queue(core); /* a wake-up: the I/O thread starting, or stop */
            else
                kwc_conn_event(evs[i].data.ptr, evs[i].events);
        }
        flush_dirty(core);
    }
    errq_restore(&q);
}

void kwc_core_wait(kwc_core_t *core, kw_request_t *r)
{
    if (atomic_load(&core->thread_started)) {
        (void)kwc_core_lead(core, r);
        return;
    }
    pthread_mutex_lock(&core->io_lock);
    while (!kw_request_done(r) && !atomic_load(&core->thread_started)) {
        if (!core->driving) {
            core->driving = 1;
            drive(core, r);
            core->driving = 0;
            clocks_pause(core);
            pthread_cond_broadcast(&core->drive_cv);
            if (core->waiters > 0)
                kw_eventfd_signal(core->handoff_fd); /* the role is free: a waiter takes it */
            continue;
        }
        /* Another caller drives: its loop completes r too, or hands the role over. */
        core->waiters++;
        kwc_request_watch(r);
        pthread_mutex_unlock(&core->io_lock);
        struct pollfd p[2] = {{.fd = r->efd, .events = POLLIN, .revents = 0},
                              {.fd = core->handoff_fd, .events = POLLIN, .revents = 0}};
        int n = poll(p, 2, (int)KWC_IDLE_WAIT_MS);
        pthread_mutex_lock(&core->io_lock);
        core->waiters--;
        if (n > 0 && (p[1].revents & POLLIN) != 0)
            kw_eventfd_drain(core->handoff_fd);
    }
    pthread_mutex_unlock(&core->io_lock);
}

void kwc_core_abort(kwc_core_t *core, kw_request_t *r, int err)
{
    pthread_mutex_lock(&core->io_lock);
    if (!kw_request_done(r) && !atomic_load(&core->thread_started))
        kwc_dispatch_abort(core, r, err);
    pthread_mutex_unlock(&core->io_lock);
}

/* The fast path: sends r on the caller's thread while the I/O thread sleeps. Returns 1 when r was
 * taken (sent, parked or completed), 0 when the caller must queue it. Taken only when the caller's
 * OpenSSL error queue is empty, and left empty, so our SSL_write neither clears nor adds to the
 * errors of the handshake that made this request (SSL_get_error also needs a clean queue). */
static int submit_direct(kwc_core_t *core, kw_request_t *r)
{
    if (ERR_peek_error() != 0 || pthread_mutex_trylock(&core->io_lock) != 0)
        return 0;
    pthread_mutex_lock(&core->q_lock);
    int ok = !core->stopping && core->queue.n == 0 && !core->wake_armed;
    /* The I/O thread sleeps long when idle: wake it so it keeps the new request's deadline. */
    int wake = ok && core->sleep_ms > (int)KWC_TICK_MS;
    if (wake)
        core->wake_armed = 1;
    pthread_mutex_unlock(&core->q_lock);
    if (ok) {
        core->now_us = kwc_now_us();
        core->last_submit_us = core->now_us;
        kwc_dispatch_new(core, r);
        flush_dirty(core);
        ERR_clear_error();
    }
    pthread_mutex_unlock(&core->io_lock);
    if (wake)
        kw_eventfd_signal(core->wake_fd);
    return ok;
}

int kwc_core_enqueue(kwc_core_t *core, kw_request_t *r)
{
    int wake = 0;
    if (!atomic_load(&core->thread_started) && submit_unthreaded(core, r))
        return 0;
    if (submit_direct(core, r))
        return 0;
    pthread_mutex_lock(&core->q_lock);
    if (core->stopping) {
        pthread_mutex_unlock(&core->q_lock);
        return KW_ECLOSED;
    }
    kwc_rlist_push(&core->queue, r);
    if (!core->wake_armed) {
        core->wake_armed = 1;
        wake = 1;
    }
    pthread_mutex_unlock(&core->q_lock);
    if (wake)
        kw_eventfd_signal(core->wake_fd);
    return 0;
}

/* Sets conn's epoll interest to events (conn->events itself is left alone). */
static int set_epoll(kwc_core_t *core, kwc_conn_t *conn, uint32_t events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = conn;
    return epoll_ctl(core->epfd, EPOLL_CTL_MOD, conn->fd, &ev);
}

/* Waits (io_lock released) until conn's socket is readable, r completes, or limit_us; then reads
 * conn if it is still the same connection. Returns 0 to go on, -1 to stop leading. */
static int lead_once(kwc_core_t *core, kwc_conn_t *conn, unsigned gen, kw_request_t *r,
                     uint64_t limit_us)
{
    uint64_t now = kwc_now_us();
    if (now >= limit_us)
        return -1;
    struct pollfd p[2] = {{.fd = conn->fd, .events = POLLIN, .revents = 0},
                          {.fd = r->efd, .events = POLLIN, .revents = 0}};
    pthread_mutex_unlock(&core->io_lock);
    int n = poll(p, 2, (int)((limit_us - now + 999u) / 1000u));
    pthread_mutex_lock(&core->io_lock);
    if (n < 0 && errno != EINTR)
        return -1;
    core->now_us = kwc_now_us();
    if (conn->gen != gen || conn->state != KWC_CONN_UP)
        return -1; /* closed meanwhile (the I/O thread retries or fails r) */
    if (n > 0 && (p[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        kwc_conn_event(conn, EPOLLIN);
        flush_dirty(core);
    }
    return 0;
}

int kwc_core_lead(kwc_core_t *core, kw_request_t *r)
{
    if (ERR_peek_error() != 0 || pthread_mutex_trylock(&core->io_lock) != 0)
        return 0;
    kwc_conn_t *conn = r->conn; /* I/O-thread fields: ours while we hold io_lock */
    int lead = !kw_request_done(r) && r->efd >= 0 && conn != NULL && conn->state == KWC_CONN_UP &&
               !conn->led && conn->events != 0;
    /* The I/O thread must not be woken for this socket meanwhile: it would only race us for it.
     * EPOLL_CTL_MOD with no events keeps the registration. */
    if (lead)
        lead = set_epoll(core, conn, 0) == 0;
    if (lead) {
        unsigned gen = conn->gen;
        uint64_t limit = r->try_deadline_us;
        conn->led = 1;
        kwc_request_watch(r); /* the I/O thread may complete it meanwhile (a retry elsewhere) */
        while (!kw_request_done(r) && lead_once(core, conn, gen, r, limit) == 0)
            ;
        if (conn->gen == gen) {
            conn->led = 0;
            if (conn->fd >= 0 && conn->events != 0 && set_epoll(core, conn, conn->events) != 0)
                kwc_conn_fail(conn, KW_EIO, "epoll: %s", strerror(errno));
        }
        ERR_clear_error();
    }
    pthread_mutex_unlock(&core->io_lock);
    return lead;
}

/* Takes the submission queue; returns 1 when the core is stopping. */
static int drain_queue(kwc_core_t *core)
{
    uint64_t v;
    kwc_rlist_t batch = {NULL, NULL, 0};
    core->last_submit_us = core->now_us;
    if (read(core->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
        kw_warn("keyward client: reading the wakeup eventfd failed: %s", strerror(errno));
    pthread_mutex_lock(&core->q_lock);
    kwc_rlist_splice(&batch, &core->queue);
    core->wake_armed = 0;
    int stopping = core->stopping;
    pthread_mutex_unlock(&core->q_lock);
    kw_request_t *r;
    for (r = kwc_rlist_pop(&batch); r != NULL; r = kwc_rlist_pop(&batch))
        kwc_dispatch_new(core, r);
    return stopping;
}

/* Deadlines, reconnects and health checks. */
static void tick(kwc_core_t *core)
{
    for (size_t i = 0; i < core->n_servers; i++)
        kwc_server_tick(&core->servers[i]);
    kwc_dispatch_timeouts(core);
    kwc_dispatch_pending(core);
}

/* How long epoll may sleep: short while anything waits on a deadline, else until the next
 * reconnect or idle ping. */
static int wait_ms(kwc_core_t *core)
{
    uint64_t next = core->now_us + (uint64_t)KWC_IDLE_WAIT_MS * 1000u;
    /* Recently busy counts as busy: the short sleep lets callers send directly (submit_direct)
     * without waking this thread to watch their deadlines. */
    int busy = core->pending.n > 0 || core->now_us - core->last_submit_us < KWC_WARM_US;
    for (size_t i = 0; i < core->n_servers; i++) {
        const kwc_server_t *s = &core->servers[i];
        if (s->conn.state != KWC_CONN_IDLE && s->conn.state != KWC_CONN_UP)
            busy = 1;
        if (s->conn.inflight.n > 0)
            busy = 1;
        if (s->conn.state == KWC_CONN_IDLE && s->retry_us < next)
            next = s->retry_us;
    }
    if (busy)
        return KWC_TICK_MS;
    if (next <= core->now_us)
        return 0;
    return (int)((next - core->now_us + 999u) / 1000u);
}

static void flush_dirty(kwc_core_t *core)
{
    while (core->dirty != NULL) {
        kwc_conn_t *conn = core->dirty;
        core->dirty = conn->next_dirty;
        conn->next_dirty = NULL;
        conn->dirty = 0;
        kwc_conn_flush(conn);
    }
}

static void shutdown_core(kwc_core_t *core)
{
    kwc_dispatch_fail_all(core, KW_ECLOSED);
    for (size_t i = 0; i < core->n_servers; i++)
        kwc_conn_close(&core->servers[i].conn);
    /* Requests submitted after the last drain. */
    pthread_mutex_lock(&core->q_lock);
    kwc_rlist_t rest = core->queue;
    memset(&core->queue, 0, sizeof(core->queue));
    pthread_mutex_unlock(&core->q_lock);
    kw_request_t *r;
    for (r = kwc_rlist_pop(&rest); r != NULL; r = kwc_rlist_pop(&rest))
        kwc_request_complete(r, KW_ECLOSED, 0, NULL, 0);
}

static void *io_main(void *arg)
{
    kwc_core_t *core = arg;
    struct epoll_event evs[KWC_MAX_EVENTS];
    uint64_t next_tick = 0;
    int stopping = 0;
    pthread_mutex_lock(&core->io_lock);
    while (core->driving) /* a blocking caller runs the loop: it stops for us (wake_fd) */
        pthread_cond_wait(&core->drive_cv, &core->io_lock);
    if (core->waiters > 0)
        kw_eventfd_signal(core->handoff_fd); /* waiting callers: wait on their requests now */
    core->now_us = kwc_now_us();
    clocks_resume(core);
    while (!stopping) {
        int timeout = core->dirty != NULL ? 0 : wait_ms(core);
        core->sleep_ms = timeout;
        pthread_mutex_unlock(&core->io_lock);
        int n = epoll_wait(core->epfd, evs, KWC_MAX_EVENTS, timeout);
        pthread_mutex_lock(&core->io_lock);
        core->sleep_ms = 0;
        core->now_us = kwc_now_us();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                stopping |= drain_queue(core);
            else
                kwc_conn_event(evs[i].data.ptr, evs[i].events);
        }
        if (core->now_us >= next_tick) {
            tick(core);
            next_tick = core->now_us + (uint64_t)KWC_TICK_MS * 1000u;
        }
        flush_dirty(core);
    }
    shutdown_core(core);
    pthread_mutex_unlock(&core->io_lock);
    return NULL;
}

/* Under io_lock. */
static int start_thread(kwc_core_t *core)
{
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&core->thread, NULL, io_main, core);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return rc;
    pthread_setname_np(core->thread, "keyward-client");
    atomic_store(&core->thread_started, 1);
    return 0;
}

/* A refused thread is tried again at most this often. */
#define KWC_THREAD_RETRY_US 1000000u

int kwc_core_need_thread(kwc_core_t *core)
{
    int rc = 0;
    if (atomic_load(&core->thread_started))
        return 0;
    pthread_mutex_lock(&core->io_lock);
    uint64_t now = kwc_now_us();
    if (!atomic_load(&core->thread_started)) {
        if (core->thread_err != 0 && now - core->thread_failed_us < KWC_THREAD_RETRY_US) {
            rc = KW_ETHREAD;
        } else if ((core->thread_err = start_thread(core)) != 0) {
            core->thread_failed_us = now;
            kwc_core_set_error(core, "cannot start the key-server I/O thread: %s%s",
                               strerror(core->thread_err),
                               core->thread_err == EAGAIN ? " (RLIMIT_NPROC?)" : "");
            kw_warn("keyward client: cannot start the key-server I/O thread: %s%s; asynchronous "
                    "requests fail, blocking ones still work",
                    strerror(core->thread_err),
                    core->thread_err == EAGAIN ? " (RLIMIT_NPROC?)" : "");
            rc = KW_ETHREAD;
        }
    }
    pthread_mutex_unlock(&core->io_lock);
    if (rc == 0)
        kw_eventfd_signal(core->wake_fd); /* a driving caller stops and lets the thread run */
    return rc;
}

static void core_free(kwc_core_t *core)
{
    for (size_t i = 0; i < core->n_servers; i++)
        kwc_conn_destroy(&core->servers[i].conn);
    free(core->servers);
    kw_reqmap_destroy(&core->map);
    if (core->wake_fd >= 0)
        close(core->wake_fd);
    if (core->handoff_fd >= 0)
        close(core->handoff_fd);
    if (core->epfd >= 0)
        close(core->epfd);
    kw_efd_pool_unref(core->pool);
    pthread_cond_destroy(&core->drive_cv);
    pthread_mutex_destroy(&core->io_lock);
    pthread_mutex_destroy(&core->q_lock);
    pthread_mutex_destroy(&core->err_lock);
    free(core);
}

static int core_init(kwc_core_t *core, kw_client_t *c)
{
    core->client = c;
    core->ssl_ctx = c->ssl_ctx;
    core->fork_gen = atomic_load(&kwc_fork_gen);
    core->timeout_ms = c->timeout_ms;
    core->connect_ms = c->connect_ms;
    core->max_tries = c->max_tries;
    core->try_ms = kw_lb_try_timeout_ms(c->timeout_ms, c->max_tries);
    core->rnd = (uint32_t)kwc_now_us() ^ (uint32_t)getpid();
    core->epfd = epoll_create1(EPOLL_CLOEXEC);
    core->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    core->handoff_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    core->pool = kw_efd_pool_new(KWC_EFD_POOL);
    core->servers = calloc(c->n_addrs, sizeof(*core->servers));
    if (core->epfd < 0 || core->wake_fd < 0 || core->handoff_fd < 0)
        return KW_EIO;
    if (core->pool == NULL || core->servers == NULL || kw_reqmap_init(&core->map, 256) != 0)
        return KW_ENOMEM;
    core->n_servers = c->n_addrs;
    for (size_t i = 0; i < c->n_addrs; i++) {
        kwc_server_t *s = &core->servers[i];
        s->core = core;
        s->index = i;
        s->addr = &c->addrs[i];
        kwc_conn_init(&s->conn, s);
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(core->epfd, EPOLL_CTL_ADD, core->wake_fd, &ev) != 0)
        return KW_EIO;
    return 0;
}

int kwc_core_start(kw_client_t *c, kwc_core_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (c->ssl_ctx == NULL) { /* a forked child: a fresh TLS context */
        int rc = kwc_client_tls_init(c, err, errlen);
        if (rc != 0)
            return rc;
    }
    kwc_core_t *core = calloc(1, sizeof(*core));
    if (core == NULL)
        return KW_ENOMEM;
    core->epfd = -1;
    core->wake_fd = -1;
    core->handoff_fd = -1;
    atomic_init(&core->thread_started, 0);
    pthread_cond_init(&core->drive_cv, NULL);
    pthread_mutex_init(&core->io_lock, NULL);
    pthread_mutex_init(&core->q_lock, NULL);
    pthread_mutex_init(&core->err_lock, NULL);
    int rc = core_init(core, c); /* no thread yet: see kwc_core_need_thread */
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the key server client: %s", kw_strerror(rc));
        core_free(core);
        return rc;
    }
    *out = core;
    return 0;
}

void kwc_core_stop(kwc_core_t *core)
{
    pthread_mutex_lock(&core->q_lock);
    core->stopping = 1;
    pthread_mutex_unlock(&core->q_lock);
    kw_eventfd_signal(core->wake_fd);
    if (atomic_load(&core->thread_started)) {
        pthread_join(core->thread, NULL);
    } else { /* no caller is inside the client (kw_client_free's contract) */
        pthread_mutex_lock(&core->io_lock);
        core->now_us = kwc_now_us();
        shutdown_core(core);
        pthread_mutex_unlock(&core->io_lock);
    }
    core_free(core);
}

void kwc_core_abandon(kwc_core_t *core)
{
    for (size_t i = 0; i < core->n_servers; i++) {
        if (core->servers[i].conn.fd >= 0)
            close(core->servers[i].conn.fd);
    }
    close(core->wake_fd);
    close(core->handoff_fd);
    close(core->epfd);
    kw_efd_pool_abandon(core->pool);
}

void kwc_core_stats(kwc_core_t *core, kw_server_stats_t *out, size_t max)
{
    pthread_mutex_lock(&core->io_lock);
    for (size_t i = 0; i < core->n_servers && i < max; i++) {
        const kwc_server_t *s = &core->servers[i];
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].address, sizeof(out[i].address), "%s", s->addr->label);
        out[i].up = s->conn.state == KWC_CONN_UP;
        out[i].inflight = s->inflight;
        out[i].completed = s->completed;
        out[i].failures = s->failures;
        out[i].ewma_us = s->ewma_us;
    }
    pthread_mutex_unlock(&core->io_lock);
}
