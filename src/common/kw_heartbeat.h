/*
 * Event-loop heartbeats (/health of both daemons): the loop thread stamps its heartbeat every
 * KW_HEARTBEAT_MS from a timer of its own loop; the metrics endpoint, served from another thread,
 * reads it and calls the loop stalled when the stamp is older than KW_HEARTBEAT_STALL_MS (a loop
 * stuck in a call, a deadlock, a CPU-bound bug: the process is up but serves nobody).
 */
#ifndef KW_HEARTBEAT_H
#define KW_HEARTBEAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define KW_HEARTBEAT_MS       200  /* the loop's timer period */
#define KW_HEARTBEAT_STALL_MS 2000 /* older than this: stalled */

typedef struct kw_heartbeat_s {
    _Atomic uint64_t ns; /* kw_clock_ns of the last beat; 0: the loop is not running (yet) */
} kw_heartbeat_t;

/* Stamps now. The loop thread, from its timer. */
void kw_heartbeat_beat(kw_heartbeat_t *hb);

/* The loop is ending on purpose (a stop): no verdict any more. The loop thread. */
void kw_heartbeat_stop(kw_heartbeat_t *hb);

/* 1 when the loop has beaten at least once. Any thread. */
int kw_heartbeat_started(const kw_heartbeat_t *hb);

/* 1 when the loop beat within KW_HEARTBEAT_STALL_MS (or has not started: no verdict yet), else 0
 * with "event loop stalled for N ms" in why. Any thread. */
int kw_heartbeat_alive(const kw_heartbeat_t *hb, char *why, size_t len);

#endif /* KW_HEARTBEAT_H */
