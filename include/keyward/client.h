/*
 * libkeyward client: a thread-safe, fork-safe pool of mutually authenticated TLS connections to
 * one or more key servers. Requests are multiplexed (many in flight per connection, matched by
 * id), time out, and are retried on another server when one fails. Completion is either blocking
 * (kw_client_call, kw_request_wait) or signalled on a file descriptor that becomes readable
 * (kw_request_fd), for OpenSSL ASYNC jobs and event loops.
 *
 * Ownership: the caller owns a kw_client_t (kw_client_free) and each kw_request_t it submitted
 * (kw_request_free, also valid before completion: the reply is then dropped). The client
 * owns its connections and its I/O thread, which it starts only for asynchronous callers
 * (kw_request_fd, kw_request_notify, kw_request_notify_fn): a blocking caller does its own I/O,
 * so a process that may not create threads works. After fork() the child's first call starts
 * fresh connections from the credentials read at kw_client_new; it never touches the parent's
 * TLS state and opens no file.
 */
#ifndef KEYWARD_CLIENT_H
#define KEYWARD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kw_client_s kw_client_t;
typedef struct kw_request_s kw_request_t;

typedef struct kw_client_config_s {
    const char *servers;         /* "host:port[,host:port...]" (commas or spaces); a name that
                                    resolves to several addresses counts as several servers */
    const char *cert_file;       /* the edge's own certificate (PEM), for mutual TLS */
    const char *key_file;        /* its private key (PEM) */
    const char *ca_file;         /* CA that signed the key servers' certificates */
    unsigned timeout_ms;         /* per request, all tries included; 0 = 5000 */
    unsigned connect_timeout_ms; /* TCP + TLS handshake; 0 = 2000 */
    unsigned max_tries;          /* servers tried per request; 0 = 3 */
    unsigned pad_to;             /* pad request frames to this size (0 = none) */
    /* Addition: the same credentials as PEM bytes in memory; each one given replaces its *_file
     * (which then only names it in messages). kw_client_new copies them (the key is cleansed
     * when the client is freed). */
    const char *cert_pem;
    size_t cert_pem_len;
    const char *key_pem;
    size_t key_pem_len;
    const char *ca_pem;
    size_t ca_pem_len;
} kw_client_config_t;

/*
 * Files: kw_client_new reads cert_file, key_file and ca_file once, into memory, and never opens
 * them again: a process may make them unreadable (drop privileges) or fork afterwards, and a
 * forked child rebuilds its TLS state from that memory. A file it cannot read fails
 * kw_client_new with KW_EIO and "cannot read the client key PATH: Permission denied".
 */

/* Creates a client. Connections are made lazily on first use. On failure returns a KW_E* code
 * and writes a sentence into err (KW_EIO: a file could not be read; KW_ETLS: its contents are
 * not a usable certificate, key or CA). */
int kw_client_new(const kw_client_config_t *cfg, kw_client_t **out, char *err, size_t errlen);

/* Stops the I/O thread, closes connections, fails pending requests with KW_ECLOSED. No other
 * thread may be inside a call on this client or in kw_request_wait for one of its requests
 * (a waiting caller may be reading a connection itself); afterwards the requests stay valid. */
void kw_client_free(kw_client_t *client);

/*
 * Submits msg (its id is ignored; the client assigns one). The client copies what it needs, so
 * msg and the buffers it points to may be reused at once. Never blocks on the network.
 */
int kw_client_submit(kw_client_t *client, const kw_msg_t *msg, kw_request_t **out);

/* A file descriptor that becomes readable once the request completed (success or failure).
 * Starts the client's I/O thread if needed; when it cannot start, req completes at once with
 * KW_ETHREAD (the fd is then readable). */
int kw_request_fd(const kw_request_t *req);

/* 1 when complete, 0 otherwise. Never blocks. */
int kw_request_done(const kw_request_t *req);

/*
 * Asks that fd (an eventfd the caller owns, e.g. one per OpenSSL ASYNC_WAIT_CTX, kept for its
 * lifetime so the application never sees fd numbers come and go) be signalled, by writing 1 to
 * it, when req completes. Returns 1 when that signal will come (exactly once: consume it), 0 when
 * req is already complete or completing (no signal; kw_request_wait returns at once or within
 * moments), KW_EINVAL for bad arguments or a second call while req
 * is pending, KW_ETHREAD when the client's I/O thread (needed to complete req without a waiting
 * caller) cannot start: req is then untouched, and kw_request_wait still completes it. After
 * kw_request_free returns, fd is never written for req, so the caller may then close it.
 */
int kw_request_notify(kw_request_t *req, int fd);

/*
 * Like kw_request_notify, but calls fn(arg) once when req completes, on the thread that completes
 * it (the client's I/O thread, or a thread inside kw_request_wait), right after the result is
 * published: fn must be quick, must not block and must be thread-safe (e.g. queue work for an
 * event loop and wake it). For OpenSSL ASYNC jobs whose application asked for a callback
 * (SSL_CTX_set_async_callback). Returns 1 when fn will be called, 0 when req is already complete
 * (fn is not called), KW_EINVAL for bad arguments or when a notification was already asked for,
 * KW_ETHREAD as for kw_request_notify.
 * After kw_request_free returns, fn is not running and never called for req.
 */
int kw_request_notify_fn(kw_request_t *req, void (*fn)(void *arg), void *arg);

/* Blocks until complete. Returns 0. */
int kw_request_wait(kw_request_t *req);

/*
 * Result of a completed request: 0 with *payload and *len set to the reply's payload (owned by
 * req, valid until kw_request_free); KW_EREMOTE with *remote_err set to the key server's error
 * code; or a transport error (KW_ETIMEDOUT, KW_ECONN, KW_ETLS, ...). remote_err may be NULL.
 */
int kw_request_result(const kw_request_t *req, const uint8_t **payload, size_t *len,
                      uint8_t *remote_err);

/* Frees req, cancelling it when still pending. Secrets in the reply are cleansed. */
void kw_request_free(kw_request_t *req);

/*
 * Blocking call: submit, wait, copy the reply payload into out (cap bytes). Returns as
 * kw_request_result, or KW_ETOOBIG when the payload does not fit.
 */
int kw_client_call(kw_client_t *client, const kw_msg_t *msg, uint8_t *out, size_t cap,
                   size_t *out_len, uint8_t *remote_err);

/*
 * Additions (keep additive): diagnostics for users and tests.
 *
 * kw_client_last_error: the most recent connection-level failure as a sentence naming the server,
 * e.g. "127.0.0.1:2407: connect: Connection refused" or "...: TLS handshake: certificate verify
 * failed". Writes "" when there was none. Returns 0.
 */
int kw_client_last_error(kw_client_t *client, char *buf, size_t len);

/* Per-server counters, one entry per resolved address (in the order of cfg->servers). */
typedef struct kw_server_stats_s {
    char address[64];   /* "127.0.0.1:2407", "[::1]:2407" */
    int up;             /* 1 when connected, probed and taking requests */
    unsigned inflight;  /* requests sent and not yet answered */
    uint64_t completed; /* replies received (caller requests, not health pings) */
    uint64_t failures;  /* failed connections, stalls and probe failures */
    double ewma_us;     /* smoothed round-trip time, 0 when unknown */
} kw_server_stats_t;

/* Fills up to max entries and returns the number of servers (which may exceed max). */
size_t kw_client_stats(kw_client_t *client, kw_server_stats_t *out, size_t max);

/*
 * Addition: the fleet's session-ticket keys (0xA4; protocol.h kw_ticket_keys_t), blocking. The
 * key server answers only edges an allow rule grants `tickets`. Returns 0 with *out filled (the
 * caller cleanses it when done), KW_EREMOTE with *remote_err (0x40: not authorised or no
 * --ticket-secret on the key server), KW_EFORMAT for a reply that is not a valid key set, or a
 * transport error as kw_client_call. remote_err may be NULL. Asynchronous callers submit a
 * message with opcode KW_OP_TICKET_KEYS themselves and decode with kw_ticket_keys_decode.
 */
int kw_ticket_keys(kw_client_t *client, kw_ticket_keys_t *out, uint8_t *remote_err);

/*
 * Addition: one blocking ping (0xF1) whose payload must come back unchanged: is a key server of
 * the pool answering? Returns 0, or as kw_client_call (KW_EFORMAT for an echo that differs). When
 * why is not NULL, a failure is written there as one line: kw_strerror's text, the key server's
 * error name for KW_EREMOTE, and kw_client_last_error's sentence when there is one ("" on
 * success). remote_err may be NULL.
 */
int kw_client_ping(kw_client_t *client, uint8_t *remote_err, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARD_CLIENT_H */
