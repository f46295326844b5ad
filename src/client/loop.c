/*
 * One turn of the client's loop (kwc_loop.h), shared by its two runners: the I/O thread
 * (core.c) and a blocking caller driving it (drive.c). Each turn: wait for events (io_lock
 * released), handle them, run the timers, then write every connection's batched frames in one go.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "kw_log.h"
#include "kw_clock.h"
#include "kwc_dispatch.h"
#include "kwc_health.h"
#include "kwc_loop.h"

void kwc_loop_tick(kwc_core_t *core)
{
    kwc_health_tick(&core->route);
    kwc_dispatch_timeouts(&core->route);
    kwc_dispatch_pending(&core->route);
}

void kwc_loop_flush(kwc_core_t *core)
{
    for (size_t i = 0; i < core->route.n_servers; i++) {
        kwc_conn_t *conn = &core->route.servers[i].conn;
        if (conn->dirty)
            kwc_conn_flush(conn);
    }
}

int kwc_loop_dirty(const kwc_core_t *core)
{
    for (size_t i = 0; i < core->route.n_servers; i++) {
        if (core->route.servers[i].conn.dirty)
            return 1;
    }
    return 0;
}

/* Short while anything waits on a deadline, else until the next reconnect or idle ping. */
int kwc_loop_wait_ms(const kwc_core_t *core)
{
    const kwc_route_t *rt = &core->route;
    uint64_t next = rt->now_us + (uint64_t)KWC_IDLE_WAIT_MS * 1000u;
    /* Recently busy counts as busy: the short sleep lets callers send directly (submit_direct)
     * without waking the I/O thread to watch their deadlines. */
    int busy = rt->pending.n > 0 || rt->now_us - core->last_submit_us < KWC_WARM_US;
    for (size_t i = 0; i < rt->n_servers; i++) {
        const kwc_server_t *s = &rt->servers[i];
        if (s->conn.state != KWC_CONN_IDLE && !s->up)
            busy = 1; /* connecting or probing */
        if (s->sent.n > 0)
            busy = 1;
        if (s->conn.state == KWC_CONN_IDLE && s->retry_us < next)
            next = s->retry_us;
    }
    if (busy)
        return KWC_TICK_MS;
    if (next <= rt->now_us)
        return 0;
    return (int)((next - rt->now_us + 999u) / 1000u);
}

void kwc_loop_wait(kwc_core_t *core, int timeout_ms)
{
    kwc_epoll_events_t evs;
    pthread_mutex_unlock(&core->io_lock);
    (void)kwc_epoll_wait(&core->poller, &evs, timeout_ms); /* an error is a turn without events */
    pthread_mutex_lock(&core->io_lock);
    core->route.now_us = kw_clock_us();
    kwc_epoll_dispatch(&evs);
}

void kwc_loop_poll_now(kwc_core_t *core)
{
    kwc_epoll_events_t evs;
    if (kwc_epoll_wait(&core->poller, &evs, 0) > 0)
        kwc_epoll_dispatch(&evs);
}

void kwc_loop_clocks_resume(kwc_core_t *core)
{
    kwc_route_t *rt = &core->route;
    if (core->idle_since_us == 0)
        return;
    uint64_t gap = rt->now_us - core->idle_since_us;
    core->idle_since_us = 0;
    for (size_t i = 0; i < rt->n_servers; i++) {
        kwc_server_t *s = &rt->servers[i];
        if (s->sent.n > 0)
            s->progress_us += gap;
        if (s->conn.state != KWC_CONN_IDLE && !s->up)
            s->deadline_us += gap;
    }
}

void kwc_loop_clocks_pause(kwc_core_t *core)
{
    if (!core->driving && !atomic_load(&core->thread_started) && core->idle_since_us == 0)
        core->idle_since_us = core->route.now_us;
}

void kwc_loop_on_wake(kwc_io_t *io, uint32_t events)
{
    kwc_core_t *core = KW_CONTAINER_OF(io, kwc_core_t, wake);
    uint64_t v;
    kw_list_t batch = {NULL, NULL, 0};
    (void)events;
    core->last_submit_us = core->route.now_us;
    if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
        kw_warn("keyward client: reading the wakeup eventfd failed: %s", strerror(errno));
    pthread_mutex_lock(&core->q_lock);
    kw_list_splice(&batch, &core->queue);
    core->wake_armed = 0;
    if (core->stopping)
        core->stop_seen = 1;
    pthread_mutex_unlock(&core->q_lock);
    for (kw_link_t *k = kw_list_pop_front(&batch); k != NULL; k = kw_list_pop_front(&batch))
        kwc_dispatch_new(&core->route, kwc_req_of(k));
}
