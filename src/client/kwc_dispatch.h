/*
 * Request routing (dispatch.c): choosing a server, sending, matching replies, retrying elsewhere,
 * failing requests. Works on the routing state (kwc_route.h) under the core's io_lock; it never
 * closes a connection itself: what a reply says about the server is returned to its caller.
 */
#ifndef KWC_DISPATCH_H
#define KWC_DISPATCH_H

#include "kwc_route.h"

/* What a reply said about its server (kwc_dispatch_reply). */
typedef enum kwc_reply {
    KWC_REPLY_DONE = 0,  /* a caller's reply, or a late one to a try given up on */
    KWC_REPLY_PONG,      /* the server answered a health ping */
    KWC_REPLY_BAD_PONG,  /* a health ping answered with another opcode (in *opcode) */
    KWC_REPLY_MALFORMED, /* not a KWP message: the connection cannot be trusted */
} kwc_reply_t;

/* A new request (its deadline starts now): sent, parked until a server is up, or completed. */
void kwc_dispatch_new(kwc_route_t *rt, kw_request_t *r);
/* Sends the parked requests once a server is up. */
void kwc_dispatch_pending(kwc_route_t *rt);
kwc_reply_t kwc_dispatch_reply(kwc_server_t *s, uint32_t id, const uint8_t *body, size_t len,
                               uint8_t *opcode);
/* s's connection died: its requests are retried elsewhere or failed with err. */
void kwc_dispatch_conn_lost(kwc_server_t *s, int err);
void kwc_dispatch_timeouts(kwc_route_t *rt);
/* No server is usable and a connection attempt failed: counts a try for every pending request. */
void kwc_dispatch_connect_failed(kwc_route_t *rt, int err);
void kwc_dispatch_fail_all(kwc_route_t *rt, int err);
/* Takes r (not complete) off its server or the pending list and completes it with err. */
void kwc_dispatch_abort(kwc_route_t *rt, kw_request_t *r, int err);
/* A health ping on s (an internal request), answered within timeout_ms. 0 or a KW_E* code. */
int kwc_send_ping(kwc_server_t *s, uint32_t timeout_ms);

#endif /* KWC_DISPATCH_H */
