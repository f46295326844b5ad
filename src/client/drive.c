/*
 * A blocking caller doing the client's I/O on its own thread, so a key operation wakes no other
 * thread of the edge. Without the I/O thread (nginx, Apache and HAProxy workers) a submitting
 * caller sends its request itself and a waiting caller runs the loop ("drives": connects,
 * handshakes, reads, retries, timers) until its request completes: one write, one wait and one
 * read per operation; one caller drives at a time, the others wait for their reply or for the role
 * (a hand-off eventfd). With the I/O thread running, a waiting caller may still read its own
 * connection (kwc_core_lead), its socket masked in the poller meanwhile.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include <openssl/err.h>

#include "keyward/error.h"
#include "kw_clock.h"
#include "kw_eventfd.h"
#include "kwc_dispatch.h"
#include "kwc_errq.h"
#include "kwc_loop.h"

/* After this long without anyone reading, a submitting caller first reads what came meanwhile. */
#define KWC_IDLE_CHECK_US 1000000u

int kwc_core_submit_here(kwc_core_t *core, kw_request_t *r)
{
    kwc_errq_t q;
    pthread_mutex_lock(&core->io_lock);
    if (atomic_load(&core->thread_started)) {
        pthread_mutex_unlock(&core->io_lock);
        return 0;
    }
    kwc_errq_save(&q);
    core->route.now_us = kw_clock_us();
    core->last_submit_us = core->route.now_us;
    if (core->idle_since_us != 0 && core->route.now_us - core->idle_since_us >= KWC_IDLE_CHECK_US)
        kwc_loop_poll_now(core); /* a connection the key server closed meanwhile: reconnect first */
    kwc_loop_clocks_resume(core);
    kwc_loop_tick(core); /* also starts the connections on first use */
    kwc_dispatch_new(&core->route, r);
    kwc_loop_flush(core);
    kwc_loop_clocks_pause(core);
    kwc_errq_restore(&q);
    pthread_mutex_unlock(&core->io_lock);
    return 1;
}

/* Runs the loop on the caller's thread (io_lock held, released while waiting for events) until
 * r completes or the I/O thread starts. */
static void drive(kwc_core_t *core, kw_request_t *r)
{
    kwc_errq_t q;
    uint64_t next_tick = 0;
    kwc_errq_save(&q);
    core->route.now_us = kw_clock_us();
    kwc_loop_clocks_resume(core);
    while (!kw_request_done(r) && !atomic_load(&core->thread_started)) {
        core->route.now_us = kw_clock_us();
        if (core->route.now_us >= next_tick) {
            kwc_loop_tick(core);
            next_tick = core->route.now_us + (uint64_t)KWC_TICK_MS * 1000u;
        }
        kwc_loop_flush(core);
        if (kw_request_done(r))
            break;
        /* A wake-up event here is the I/O thread starting, or stop. */
        kwc_loop_wait(core, kwc_loop_dirty(core) ? 0 : kwc_loop_wait_ms(core));
        kwc_loop_flush(core);
    }
    kwc_errq_restore(&q);
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
            kwc_loop_clocks_pause(core);
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
        kwc_dispatch_abort(&core->route, r, err);
    pthread_mutex_unlock(&core->io_lock);
}

/* Waits (io_lock released) until s's socket is readable, r completes, or limit_us; then reads
 * it if it is still the same connection. Returns 0 to go on, -1 to stop leading. */
static int lead_once(kwc_core_t *core, kwc_server_t *s, unsigned gen, kw_request_t *r,
                     uint64_t limit_us)
{
    uint64_t now = kw_clock_us();
    if (now >= limit_us)
        return -1;
    struct pollfd p[2] = {{.fd = s->conn.io.fd, .events = POLLIN, .revents = 0},
                          {.fd = r->efd, .events = POLLIN, .revents = 0}};
    pthread_mutex_unlock(&core->io_lock);
    int n = poll(p, 2, (int)((limit_us - now + 999u) / 1000u));
    pthread_mutex_lock(&core->io_lock);
    if (n < 0 && errno != EINTR)
        return -1;
    core->route.now_us = kw_clock_us();
    if (s->conn.gen != gen || !s->up)
        return -1; /* closed meanwhile (the I/O thread retries or fails r) */
    if (n > 0 && (p[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        kwc_conn_event(&s->conn, KWC_IO_READ);
        kwc_loop_flush(core);
    }
    return 0;
}

int kwc_core_lead(kwc_core_t *core, kw_request_t *r)
{
    if (ERR_peek_error() != 0 || pthread_mutex_trylock(&core->io_lock) != 0)
        return 0;
    kwc_server_t *s = r->server; /* loop fields: ours while we hold io_lock */
    int lead = !kw_request_done(r) && r->efd >= 0 && s != NULL && s->up && !s->led &&
               s->conn.io.added && s->conn.io.events != 0;
    /* The I/O thread must not be woken for this socket meanwhile: it would only race us for it. */
    if (lead)
        lead = kwc_epoll_mask(&core->poller, &s->conn.io, 1) == 0;
    if (lead) {
        unsigned gen = s->conn.gen;
        uint64_t limit = r->try_deadline_us;
        s->led = 1;
        kwc_request_watch(r); /* the I/O thread may complete it meanwhile (a retry elsewhere) */
        while (!kw_request_done(r) && lead_once(core, s, gen, r, limit) == 0)
            ;
        s->led = 0;
        if (s->conn.gen == gen && s->conn.io.fd >= 0 &&
            kwc_epoll_mask(&core->poller, &s->conn.io, 0) != 0)
            kwc_conn_fail(&s->conn, KW_EIO, "epoll: %s", strerror(errno));
        ERR_clear_error();
    }
    pthread_mutex_unlock(&core->io_lock);
    return lead;
}
