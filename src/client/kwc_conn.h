/*
 * One mutual-TLS connection to a key server, the client's transport layer: non-blocking TCP
 * connect, TLS handshake verifying the server's certificate against the CA and the server's name
 * or IP, frames written in batches (one SSL_write run per flush for everything queued), and
 * complete frames read and handed on. It knows no server, request or core: it is watched through
 * the poller it is given (kwc_poller.h) and reports what happens through the callbacks it is
 * given (kwc_conn_cbs_t), like a libuv watcher; its owner decides what a frame or a loss means.
 */
#ifndef KWC_CONN_H
#define KWC_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "keyward/protocol.h"
#include "kwc_poller.h"
#include "kwc_servers.h"

#define KWC_RBUF_SIZE (2u * KW_MAX_FRAME)

typedef struct kwc_conn_s kwc_conn_t;

typedef enum kwc_conn_state {
    KWC_CONN_IDLE = 0, /* no socket */
    KWC_CONN_TCP,      /* TCP connect in progress */
    KWC_CONN_TLS,      /* TLS handshake in progress */
    KWC_CONN_OPEN,     /* TLS up: frames go both ways */
} kwc_conn_state_t;

typedef struct kwc_conn_cbs_s {
    /* The TLS handshake is done: frames may be queued. */
    void (*open)(kwc_conn_t *conn);
    /* One complete frame (body valid during the call only). It may close conn. */
    void (*frame)(kwc_conn_t *conn, uint32_t id, const uint8_t *body, size_t len);
    /* The connection closed (its socket is gone, state IDLE): err is the KW_E* code, why a phrase
     * naming the cause; peer_closed says the server closed an open connection (close_notify or a
     * bare EOF) rather than a failure of ours or of the network. */
    void (*lost)(kwc_conn_t *conn, int err, int peer_closed, const char *why);
} kwc_conn_cbs_t;

struct kwc_conn_s {
    kwc_io_t io; /* first: the poller hands it back */
    kwc_conn_state_t state;
    const kwc_conn_cbs_t *cbs;
    void *data; /* the owner's */
    kwc_poller_t *poller;
    SSL_CTX *ssl_ctx;
    const kw_srv_addr_t *addr;
    SSL *ssl;
    uint8_t *rbuf; /* decrypted bytes not yet parsed (cleansed after use) */
    size_t rlen;
    uint8_t *wbuf; /* frames not yet written, from woff */
    size_t wlen;
    size_t woff;
    size_t wcap;
    int dirty;    /* frames queued since the last flush */
    unsigned gen; /* incremented when its socket is closed */
};

void kwc_conn_init(kwc_conn_t *conn, kwc_poller_t *poller, SSL_CTX *ssl_ctx,
                   const kwc_conn_cbs_t *cbs, void *data);
/* Starts connecting to addr (kept, not copied). A failure is reported through lost. */
void kwc_conn_start(kwc_conn_t *conn, const kw_srv_addr_t *addr);
/* Handles the socket's events (KWC_IO_*); the poller's callback, also called by a caller that
 * reads the socket itself. */
void kwc_conn_event(kwc_conn_t *conn, uint32_t events);
/* Appends a frame, with id written into its header, to the write buffer (sent at the next
 * flush). 0 or KW_ENOMEM. */
int kwc_conn_queue(kwc_conn_t *conn, const uint8_t *frame, size_t len, uint32_t id);
/* Writes what was queued, as far as the socket takes it (the rest on KWC_IO_WRITE). */
void kwc_conn_flush(kwc_conn_t *conn);
/* Closes the connection as failed and reports it through lost (err, the formatted phrase). */
void kwc_conn_fail(kwc_conn_t *conn, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Closes without a report (the owner's decision: shutdown); sends close_notify when open. */
void kwc_conn_close(kwc_conn_t *conn);
/* Closes and frees the buffers. */
void kwc_conn_destroy(kwc_conn_t *conn);
/* In a forked child: closes the socket only, touching no TLS state. */
void kwc_conn_abandon(kwc_conn_t *conn);

#endif /* KWC_CONN_H */
