/*
 * The client's routing state, shared by the two layers above the connections: health.c (each
 * server's connection: connect, health ping, backoff, stalls) and dispatch.c (which server a
 * request goes to, replies, retries). Both run under the core's io_lock; neither knows the core
 * (its threads, locks and poller) above them. A server owns one connection (kwc_conn.h) and the
 * requests in flight on it.
 */
#ifndef KWC_ROUTE_H
#define KWC_ROUTE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "kwc_conn.h"
#include "kwc_reqmap.h"
#include "kwc_request.h"
#include "kwc_servers.h"

#define KWC_ERR_MAX 640u /* a connection error: server, step, OpenSSL's reasons */

typedef struct kwc_route_s kwc_route_t;

typedef struct kwc_server_s {
    kwc_route_t *route;
    size_t index;
    const kw_srv_addr_t *addr; /* owned by the client */
    kwc_conn_t conn;
    int up;               /* probed: takes requests */
    int led;              /* a caller reads its connection itself (kwc_core_lead) */
    uint64_t deadline_us; /* connect + handshake, then the probe, must finish before this */
    kw_list_t sent;       /* in flight on conn, in send order (pings included) */
    uint64_t progress_us; /* last reply, or when sent became non-empty */
    int ping_out;         /* a health ping is in flight */
    uint32_t backoff_ms;  /* 0 after a success */
    uint64_t retry_us;    /* next connection attempt when idle */
    uint64_t failed_us;   /* last connection failure */
    uint64_t last_rx_us;  /* last reply of any kind */
    double ewma_us;
    unsigned inflight; /* caller requests in flight (not pings) */
    uint64_t completed;
    uint64_t failures;
} kwc_server_t;

/* What a client's core is started with (the client keeps owning it all). */
typedef struct kwc_settings_s {
    SSL_CTX *ssl_ctx;
    const kw_srv_addr_t *addrs;
    size_t n_addrs;
    uint32_t timeout_ms;
    uint32_t connect_ms;
    uint32_t max_tries;
    size_t pad_to;
} kwc_settings_t;

struct kwc_route_s {
    kwc_server_t *servers;
    size_t n_servers;
    kw_reqmap_t map;
    kw_list_t pending; /* waiting for a usable server */
    uint64_t now_us;   /* the loop's clock, set by its runner */
    uint32_t rr;
    uint32_t rnd;
    int ever_up; /* some server answered a probe since the core started */
    uint32_t timeout_ms;
    uint32_t connect_ms;
    uint32_t try_ms;
    uint32_t max_tries;
    size_t pad_to;
    /* last connection-level error, under err_lock (read by any thread) */
    pthread_mutex_t err_lock;
    char last_err[KWC_ERR_MAX];
};

#endif /* KWC_ROUTE_H */
