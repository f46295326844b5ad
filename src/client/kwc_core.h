/*
 * The client's core: the loop that owns every connection of a client, and who runs it. Without
 * an I/O thread (the start, and for good when only blocking callers use the client) a submitting
 * caller sends its request itself and a waiting caller runs the loop until its request completes
 * (drive.c); an I/O thread starts when an asynchronous caller needs one and then takes over
 * (core.c). One turn of the loop, whoever runs it, is loop.c. Below the core: health.c and
 * dispatch.c on the routing state (kwc_route.h), the connections, and the poller (epoll).
 *
 * Threads: any number of caller threads submit; whoever runs the loop (the I/O thread, or
 * without it one blocking caller at a time) holds io_lock and owns the routing state, every
 * connection and the request fields marked "loop".
 *
 * Fork: client.c's pthread_atfork handler takes io_lock (which the loop's runner holds whenever it
 * is not waiting for events) before fork(); in the child the core's descriptors are closed
 * without touching any SSL object (kwc_core_abandon) and the core is leaked.
 */
#ifndef KWC_CORE_H
#define KWC_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kwc_poller.h"
#include "kwc_route.h"

#define KWC_TICK_MS      20u
#define KWC_IDLE_WAIT_MS 1000u
#define KWC_WARM_US      1000000u /* after a submission, sleep at most a tick */
#define KWC_EFD_POOL     256u

typedef struct kwc_core_s {
    kwc_route_t route; /* under io_lock */
    kwc_epoll_t poller;
    kwc_io_t wake; /* eventfd: submissions queued, the I/O thread starting, stop */
    kw_efd_pool_t *pool;
    unsigned fork_gen;
    pthread_mutex_t io_lock; /* held by the loop's runner except while it waits for events; a
                                caller holding it may send directly */
    pthread_t thread;
    atomic_int thread_started; /* set once, under io_lock: the I/O thread runs (async callers) */
    int thread_err;            /* under io_lock: the last pthread_create failure */
    uint64_t thread_failed_us; /* under io_lock: when it failed (retried a second later) */
    /* Without the I/O thread, blocking callers run the loop themselves, one at a time (drive.c):
     * under io_lock, the driver's flag and the number of callers waiting for that role; the
     * hand-off eventfd tells them it is free, drive_cv tells a starting I/O thread. */
    int driving;
    int waiters;
    uint64_t idle_since_us; /* under io_lock: nobody has read the sockets since (0: someone does) */
    int handoff_fd;
    pthread_cond_t drive_cv;
    int sleep_ms;            /* under io_lock: the I/O thread's current epoll_wait timeout */
    uint64_t last_submit_us; /* under io_lock */
    int stop_seen;           /* under io_lock: the loop took the queue after stop was asked */
    /* submission queue, under q_lock */
    pthread_mutex_t q_lock;
    kw_list_t queue;
    int wake_armed;
    int stopping;
} kwc_core_t;

/* core.c */
int kwc_core_start(const kwc_settings_t *set, kwc_core_t **out, char *err, size_t errlen);
void kwc_core_stop(kwc_core_t *core);
/* Hands r to the loop (takes over its loop reference). KW_ECLOSED when stopping. */
int kwc_core_enqueue(kwc_core_t *core, kw_request_t *r);
/* Starts the I/O thread unless it runs: an asynchronous caller (kw_request_fd, _notify) needs
 * it. Returns 0, or KW_ETHREAD with the reason (errno) as the client's last error. */
int kwc_core_need_thread(kwc_core_t *core);
/* In a forked child: closes the core's descriptors, touches no TLS state, leaks the rest. */
void kwc_core_abandon(kwc_core_t *core);
void kwc_core_stats(kwc_core_t *core, kw_server_stats_t *out, size_t max);
void kwc_core_last_error(kwc_core_t *core, char *buf, size_t len);

/* drive.c */
/* Without an I/O thread: sends r on the caller's thread. 1 when done, 0 when the thread runs. */
int kwc_core_submit_here(kwc_core_t *core, kw_request_t *r);
/*
 * Blocking wait for r on the caller's thread. Without an I/O thread, the caller runs the client's
 * loop itself (connects, handshakes, sends, reads, retries and times out, within r's deadline)
 * until r completes, or waits while another caller does; with one, kwc_core_lead. Returns when
 * r is complete or the caller should wait on r's eventfd.
 */
void kwc_core_wait(kwc_core_t *core, kw_request_t *r);
/* Completes r with err unless it is complete (kw_request_fd when no I/O thread can start). */
void kwc_core_abort(kwc_core_t *core, kw_request_t *r, int err);
/*
 * Blocking wait for r on the caller's thread while the I/O thread runs: when io_lock is free and
 * r is in flight on an up connection no other caller reads, masks it in the poller and reads it
 * (under io_lock, sleeping in poll without it) until r completes, the connection closes or r's
 * try deadline passes; then the I/O thread has it again. Returns 1 when it led, 0 when not.
 */
int kwc_core_lead(kwc_core_t *core, kw_request_t *r);

#endif /* KWC_CORE_H */
