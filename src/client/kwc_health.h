/*
 * The servers of a client and the life of each one's connection (health.c): the connection's
 * callbacks (open: send the probe ping; frame: hand it to dispatch; lost: backoff, the error,
 * requests moved), reconnects with backoff, connect and probe deadlines, idle pings, stalled
 * servers. Above dispatch and the connections, below the core that runs the loop.
 */
#ifndef KWC_HEALTH_H
#define KWC_HEALTH_H

#include "kwc_route.h"

/* Sets up rt and one idle server per address, their connections watched through poller.
 * 0 or KW_ENOMEM. */
int kwc_health_init(kwc_route_t *rt, const kwc_settings_t *set, kwc_poller_t *poller);
/* Frees rt's servers (connections destroyed) and tables. */
void kwc_health_destroy(kwc_route_t *rt);
/* Periodic work for every server: reconnect after backoff, deadlines, idle pings, stalls. */
void kwc_health_tick(kwc_route_t *rt);
/* Closes every connection (client shutdown; not a failure). */
void kwc_health_close_all(kwc_route_t *rt);
/* In a forked child: closes the sockets only. */
void kwc_health_abandon(kwc_route_t *rt);
/* Records the last connection-level error (any thread may read it: kwc_health_last_error). */
void kwc_health_set_error(kwc_route_t *rt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kwc_health_last_error(kwc_route_t *rt, char *buf, size_t len);
/* Fills up to max entries (the caller holds io_lock). */
void kwc_health_stats(const kwc_route_t *rt, kw_server_stats_t *out, size_t max);

#endif /* KWC_HEALTH_H */
