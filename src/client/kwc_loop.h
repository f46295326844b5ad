/*
 * One turn of the client's loop, whoever runs it (the I/O thread in core.c, a blocking caller in
 * drive.c): timers, writing what was queued, how long to sleep, the clocks that stop while nobody
 * reads, and the submission queue. All under the core's io_lock, with route.now_us current.
 */
#ifndef KWC_LOOP_H
#define KWC_LOOP_H

#include "kwc_core.h"

/* Deadlines, reconnects and health checks. */
void kwc_loop_tick(kwc_core_t *core);
/* Writes every connection's queued frames. */
void kwc_loop_flush(kwc_core_t *core);
/* 1 when a connection has frames queued (the next wait must not sleep). */
int kwc_loop_dirty(const kwc_core_t *core);
/* How long the next wait for events may sleep, in ms. */
int kwc_loop_wait_ms(const kwc_core_t *core);
/* Waits up to timeout_ms with io_lock released, then handles the events under it. */
void kwc_loop_wait(kwc_core_t *core, int timeout_ms);
/* Handles the events already there, without waiting. */
void kwc_loop_poll_now(kwc_core_t *core);
/* Without the I/O thread nobody reads the sockets between two drivers, so the stall and connect
 * clocks stop meanwhile (a pong left unread must not make a healthy server look stalled). */
void kwc_loop_clocks_resume(kwc_core_t *core);
void kwc_loop_clocks_pause(kwc_core_t *core);
/* The wake eventfd's callback: takes the submission queue; sets stop_seen when stopping. */
void kwc_loop_on_wake(kwc_io_t *io, uint32_t events);

#endif /* KWC_LOOP_H */
