/*
 * One client connection of the key server: TCP handle, TLS through two memory BIOs, the frame
 * reassembly buffer, the plaintext reply buffer flushed once per loop iteration, timeouts and
 * back-pressure (reading stops while too many requests are in flight or too many bytes wait to
 * be written). Reference counted: the handles, each job in flight, each queued write and the
 * dirty list hold references, so a worker finishing after the close is safe.
 */
#ifndef KW_CONN_H
#define KW_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "kw_list.h"
#include "net/admit.h"
#include "net/state.h"
#include "peer/peer.h"

/* Reading pauses while this many reply bytes wait for the socket. */
#define KW_CONN_MAX_BACKLOG (256 * 1024)

typedef struct kw_ks_conn_s {
    kw_ks_peer_t p; /* what dispatch sees (peer.h): replies, edge, rate bucket, jobs in flight */
    uv_tcp_t tcp;
    uv_timer_t timer;
    kw_ks_server_t *server;
    SSL *ssl; /* owns rbio and wbio */
    BIO *rbio;
    BIO *wbio;
    unsigned refs;
    uint64_t id;
    char peer[64];
    unsigned handshake_done : 1;
    unsigned closing : 1;   /* handles are being closed */
    unsigned finishing : 1; /* close once in-flight replies are written */
    unsigned reading : 1;
    unsigned dirty : 1;
    kw_ks_job_src_t jobs; /* this connection's job queue in the worker pool (fair turns) */
    uint64_t last_active;
    uint64_t frame_start; /* uv_now when the unfinished frame's first byte came; 0: none */
    size_t write_bytes;   /* bytes handed to uv_write and not yet written */
    uint8_t *in;          /* plaintext frames being reassembled */
    size_t in_len;
    size_t in_cap;
    uint8_t *out; /* encoded replies not yet given to TLS */
    size_t out_len;
    size_t out_cap;
    kw_ks_admit_entry_t adm; /* the peer's address and its place in the budgets (admit.h) */
    kw_link_t link;          /* server->conns */
    struct kw_ks_conn_s *next_dirty;
    kw_link_t held_link; /* server->held: connections holding buffers (conn_idle.c) */
    char *refused_cert;  /* why the handshake refused the client's certificate (its subject,
                            issuer and the verify reason) for the log; malloc'ed, or NULL */
} kw_ks_conn_t;

/* Accepts one pending connection from the listener. */
void kw_ks_conn_accept(kw_ks_server_t *s);

kw_ks_conn_t *kw_ks_conn_ref(kw_ks_conn_t *c);
void kw_ks_conn_unref(kw_ks_conn_t *c);

/* Closes now (idempotent). */
void kw_ks_conn_close(kw_ks_conn_t *c);

/* Closes after the replies already produced are written (a protocol error, or the peer's EOF). */
void kw_ks_conn_finish(kw_ks_conn_t *c);

/* Appends a reply / an error reply to the output. Returns 0 or a negative KW_E*. */
int kw_ks_conn_reply(kw_ks_conn_t *c, uint32_t id, uint8_t opcode, const uint8_t *payload,
                     size_t len);
int kw_ks_conn_error(kw_ks_conn_t *c, uint32_t id, uint8_t err);

/* Queues c for a flush in this loop iteration's check phase (idempotent; not when closing). */
void kw_ks_conn_schedule(kw_ks_conn_t *c);

/* The peer interface of a connection (conn_peer.c): c->p.type. */
extern const kw_ks_peer_type_t kw_ks_conn_peer_type;

/* Writes pending output to the socket (from the server's check phase). */
void kw_ks_conn_flush(kw_ks_conn_t *c);

#endif /* KW_CONN_H */
