/*
 * The client's core (kwc_core.h): starting and stopping it, the I/O thread for asynchronous
 * callers, and handing requests to the loop. The thread starts when an asynchronous caller needs
 * one (kw_request_fd, _notify) and then runs the loop; a thread that cannot start is reported as
 * such (KW_ETHREAD) and blocking callers go on driving (drive.c).
 *
 * With the thread: callers hand requests over through a mutex-protected queue and an eventfd
 * ("wake"), written only when the queue goes from idle to busy, so a burst of submissions costs one
 * wakeup. Fast path: when the I/O thread is asleep in epoll_wait (io_lock free) and nothing is
 * queued, the caller takes io_lock and sends its request itself, which saves a thread wakeup per
 * request. Signals are blocked in the thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/err.h>

#include "keyward/error.h"
#include "kw_guard.h"
#include "kw_log.h"
#include "kw_clock.h"
#include "kw_eventfd.h"
#include "kwc_dispatch.h"
#include "kwc_health.h"
#include "kwc_loop.h"

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
        core->route.now_us = kw_clock_us();
        core->last_submit_us = core->route.now_us;
        kwc_dispatch_new(&core->route, r);
        kwc_loop_flush(core);
        ERR_clear_error();
    }
    pthread_mutex_unlock(&core->io_lock);
    if (wake)
        kw_eventfd_signal(core->wake.fd);
    return ok;
}

int kwc_core_enqueue(kwc_core_t *core, kw_request_t *r)
{
    int wake = 0;
    if (!atomic_load(&core->thread_started) && kwc_core_submit_here(core, r))
        return 0;
    if (submit_direct(core, r))
        return 0;
    pthread_mutex_lock(&core->q_lock);
    if (core->stopping) {
        pthread_mutex_unlock(&core->q_lock);
        return KW_ECLOSED;
    }
    kw_list_push_back(&core->queue, &r->link);
    if (!core->wake_armed) {
        core->wake_armed = 1;
        wake = 1;
    }
    pthread_mutex_unlock(&core->q_lock);
    if (wake)
        kw_eventfd_signal(core->wake.fd);
    return 0;
}

static void shutdown_core(kwc_core_t *core)
{
    kwc_dispatch_fail_all(&core->route, KW_ECLOSED);
    kwc_health_close_all(&core->route);
    /* Requests submitted after the last drain. */
    pthread_mutex_lock(&core->q_lock);
    kw_list_t rest = core->queue;
    memset(&core->queue, 0, sizeof(core->queue));
    pthread_mutex_unlock(&core->q_lock);
    for (kw_link_t *k = kw_list_pop_front(&rest); k != NULL; k = kw_list_pop_front(&rest))
        kwc_request_complete(kwc_req_of(k), KW_ECLOSED, 0, NULL, 0);
}

static void *io_main(void *arg)
{
    kwc_core_t *core = arg;
    uint64_t next_tick = 0;
    pthread_mutex_lock(&core->io_lock);
    while (core->driving) /* a blocking caller runs the loop: it stops for us (wake) */
        pthread_cond_wait(&core->drive_cv, &core->io_lock);
    if (core->waiters > 0)
        kw_eventfd_signal(core->handoff_fd); /* waiting callers: wait on their requests now */
    core->route.now_us = kw_clock_us();
    kwc_loop_clocks_resume(core);
    while (!core->stop_seen) {
        int timeout = kwc_loop_dirty(core) ? 0 : kwc_loop_wait_ms(core);
        core->sleep_ms = timeout;
        kwc_loop_wait(core, timeout);
        core->sleep_ms = 0;
        if (core->route.now_us >= next_tick) {
            kwc_loop_tick(core);
            next_tick = core->route.now_us + (uint64_t)KWC_TICK_MS * 1000u;
        }
        kwc_loop_flush(core);
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
    uint64_t now = kw_clock_us();
    if (!atomic_load(&core->thread_started)) {
        if (core->thread_err != 0 && now - core->thread_failed_us < KWC_THREAD_RETRY_US) {
            rc = KW_ETHREAD;
        } else {
            core->thread_err = start_thread(core);
        }
        if (rc == 0 && core->thread_err != 0) {
            core->thread_failed_us = now;
            kwc_health_set_error(&core->route, "cannot start the key-server I/O thread: %s%s",
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
        kw_eventfd_signal(core->wake.fd); /* a driving caller stops and lets the thread run */
    return rc;
}

static void core_free(kwc_core_t *core)
{
    kwc_health_destroy(&core->route);
    if (core->wake.fd >= 0)
        close(core->wake.fd);
    if (core->handoff_fd >= 0)
        close(core->handoff_fd);
    kwc_epoll_close(&core->poller);
    kw_efd_pool_unref(core->pool);
    pthread_cond_destroy(&core->drive_cv);
    pthread_mutex_destroy(&core->io_lock);
    pthread_mutex_destroy(&core->q_lock);
    free(core);
}

static int core_init(kwc_core_t *core, const kwc_settings_t *set)
{
    core->fork_gen = atomic_load(&kwc_fork_gen);
    KW_GUARD(kwc_health_init(&core->route, set, &core->poller.base));
    KW_ENSURE(kwc_epoll_init(&core->poller) == 0, KW_EIO);
    kwc_io_init(&core->wake, kwc_loop_on_wake, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    core->handoff_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    KW_ENSURE(core->wake.fd >= 0 && core->handoff_fd >= 0, KW_EIO);
    core->pool = kw_efd_pool_new(KWC_EFD_POOL);
    KW_ENSURE(core->pool != NULL, KW_ENOMEM);
    KW_ENSURE(kwc_poller_watch(&core->poller.base, &core->wake, KWC_IO_READ) == 0, KW_EIO);
    return 0;
}

int kwc_core_start(const kwc_settings_t *set, kwc_core_t **out, char *err, size_t errlen)
{
    *out = NULL;
    kwc_core_t *core = calloc(1, sizeof(*core));
    if (core == NULL)
        return KW_ENOMEM;
    core->poller.epfd = -1;
    core->wake.fd = -1;
    core->handoff_fd = -1;
    atomic_init(&core->thread_started, 0);
    pthread_cond_init(&core->drive_cv, NULL);
    pthread_mutex_init(&core->io_lock, NULL);
    pthread_mutex_init(&core->q_lock, NULL);
    int rc = core_init(core, set); /* no thread yet: see kwc_core_need_thread */
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
    kw_eventfd_signal(core->wake.fd);
    if (atomic_load(&core->thread_started)) {
        pthread_join(core->thread, NULL);
    } else { /* no caller is inside the client (kw_client_free's contract) */
        pthread_mutex_lock(&core->io_lock);
        core->route.now_us = kw_clock_us();
        shutdown_core(core);
        pthread_mutex_unlock(&core->io_lock);
    }
    core_free(core);
}

void kwc_core_abandon(kwc_core_t *core)
{
    kwc_health_abandon(&core->route);
    close(core->wake.fd);
    close(core->handoff_fd);
    kwc_epoll_close(&core->poller);
    kw_efd_pool_abandon(core->pool);
}

void kwc_core_stats(kwc_core_t *core, kw_server_stats_t *out, size_t max)
{
    pthread_mutex_lock(&core->io_lock);
    kwc_health_stats(&core->route, out, max);
    pthread_mutex_unlock(&core->io_lock);
}

void kwc_core_last_error(kwc_core_t *core, char *buf, size_t len)
{
    kwc_health_last_error(&core->route, buf, len);
}
