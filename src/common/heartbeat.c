/*
 * Event-loop heartbeats (kw_heartbeat.h): a monotonic stamp in an atomic, and its age.
 */
#include "kw_heartbeat.h"

#include <stdio.h>

#include "kw_clock.h"

void kw_heartbeat_beat(kw_heartbeat_t *hb)
{
    atomic_store_explicit(&hb->ns, kw_clock_ns(), memory_order_relaxed);
}

void kw_heartbeat_stop(kw_heartbeat_t *hb)
{
    atomic_store_explicit(&hb->ns, 0, memory_order_relaxed);
}

int kw_heartbeat_started(const kw_heartbeat_t *hb)
{
    return atomic_load_explicit(&hb->ns, memory_order_relaxed) != 0;
}

int kw_heartbeat_alive(const kw_heartbeat_t *hb, char *why, size_t len)
{
    uint64_t last = atomic_load_explicit(&hb->ns, memory_order_relaxed);
    uint64_t now = kw_clock_ns();
    if (last == 0 || now <= last)
        return 1;
    uint64_t ms = (now - last) / 1000000u;
    if (ms <= KW_HEARTBEAT_STALL_MS)
        return 1;
    snprintf(why, len, "event loop stalled for %llu ms", (unsigned long long)ms);
    return 0;
}
