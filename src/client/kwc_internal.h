/*
 * Internals of the libkeyward client (include/keyward/client.h), shared by its files:
 *   client.c    public client API, lazy start of the I/O core, fork handling (pthread_atfork);
 *   request.c   public request API, reference counting between caller and I/O thread;
 *   core.c      the I/O loop (run by blocking callers, or by the I/O thread once an asynchronous
 *               caller needs it): epoll, submission queue, timers, health checks;
 *   dispatch.c  choosing a server, sending, retrying elsewhere, failing requests;
 *   conn.c      one mutual-TLS connection: connect, handshake, batched writes, frame reads;
 *   sock_bio.c  the connection's socket BIO (send with MSG_NOSIGNAL: never SIGPIPE the host);
 *   servers.c, reqmap.c, balance.c, efd_pool.c: pure helpers (see their headers).
 *
 * Threads: any number of caller threads submit; whoever runs the loop (the I/O thread, or without
 * it one blocking caller at a time) holds io_lock and owns every connection, the id map and all
 * request fields marked "I/O thread". A caller and the loop share a request through a reference
 * count; the result fields are published by a store of `state` and read after an acquire load.
 *
 * Fork: a pthread_atfork handler quiesces every core before fork() (it takes io_lock, which the
 * loop's runner holds whenever it is not waiting in epoll_wait); in the child it closes the old
 * core's file descriptors without touching any SSL object, and leaks the old core and TLS context.
 * The child's first submit starts a fresh core with a fresh library context and a TLS context
 * built from the credentials kw_client_new read into memory (no file is opened in the child).
 */
#ifndef KWC_INTERNAL_H
#define KWC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "keyward/client.h"
#include "kwc_efd.h"
#include "kwc_reqmap.h"
#include "kwc_servers.h"

#define KWC_DEFAULT_TIMEOUT_MS 5000u
#define KWC_DEFAULT_CONNECT_MS 2000u
#define KWC_DEFAULT_TRIES      3u
#define KWC_IDLE_PING_MS       5000u
#define KWC_TICK_MS            20u
#define KWC_IDLE_WAIT_MS       1000u
#define KWC_WARM_US            1000000u /* after a submission, sleep at most a tick */
#define KWC_EFD_POOL           256u
#define KWC_RBUF_SIZE          (2u * KW_MAX_FRAME)
#define KWC_ERR_MAX            640u /* a connection error: server, step, OpenSSL's reasons */

enum kwc_req_state { KWC_REQ_PENDING = 0, KWC_REQ_DONE = 1 };
/* The request's own eventfd is written only when someone watches it (kw_request_fd, a waiter in
 * poll): not watched and not done, watched, done without a signal, signalled. */
enum { KWC_SIG_NONE = 0, KWC_SIG_WATCHED = 1, KWC_SIG_DONE = 2, KWC_SIG_SENT = 3 };
/* kw_request_notify states besides a fd: none asked, taken by the completer, refused by free, a
 * function (kw_request_notify_fn) to call. */
enum { KWC_NOTIFY_NONE = -1, KWC_NOTIFY_TAKEN = -2, KWC_NOTIFY_OFF = -3, KWC_NOTIFY_FN = -4 };

typedef struct kwc_conn_s kwc_conn_t;
typedef struct kwc_core_s kwc_core_t;

/* A credential held in memory: PEM bytes (OPENSSL_malloc'd) and a name for messages. */
typedef struct kwc_pem_s {
    char *name;
    uint8_t *data;
    size_t len;
} kwc_pem_t;

struct kw_request_s {
    /* shared */
    atomic_int refs;              /* caller + I/O thread */
    atomic_int state;             /* kwc_req_state; DONE published with release */
    atomic_int cancelled;         /* the caller freed it while pending */
    atomic_int notify;            /* kw_request_notify's fd, or a KWC_NOTIFY_* state */
    atomic_int notified;          /* the completer has finished writing to the notify fd */
    atomic_int sig;               /* KWC_SIG_*: whether efd is watched and signalled */
    void (*notify_fn)(void *arg); /* with KWC_NOTIFY_FN; set before it is published */
    void *notify_arg;
    int efd;             /* -1 for internal requests */
    unsigned fork_gen;   /* kwc_fork_gen at creation */
    kw_efd_pool_t *pool; /* reference held while efd is ours */
    kwc_core_t *core;    /* the core it was submitted to (kwc_core_lead) */
    /* result: written by the I/O thread before state becomes DONE */
    int status;
    uint8_t remote_err;
    uint8_t *reply; /* cleansed on free */
    size_t reply_len;
    /* request frame, encoded at submit; the id bytes are rewritten for each try */
    uint8_t *frame;
    size_t frame_len;
    /* I/O thread */
    kw_request_t *prev;
    kw_request_t *next;
    kwc_conn_t *conn; /* where it is in flight, or NULL */
    uint32_t id;      /* 0 when not in the id map */
    uint8_t internal; /* a health ping of the client itself (no caller) */
    uint8_t opcode;
    unsigned tries;
    int last_err;
    uint64_t tried_mask;
    uint64_t deadline_us;     /* whole request */
    uint64_t try_deadline_us; /* this try; then another server may be tried */
    uint64_t sent_us;
};

/* Intrusive doubly linked list of requests (a request is on at most one list). */
typedef struct kwc_rlist_s {
    kw_request_t *head;
    kw_request_t *tail;
    size_t n;
} kwc_rlist_t;

void kwc_rlist_push(kwc_rlist_t *l, kw_request_t *r);
void kwc_rlist_remove(kwc_rlist_t *l, kw_request_t *r);
kw_request_t *kwc_rlist_pop(kwc_rlist_t *l);
/* Moves every request of src to the end of dst. */
void kwc_rlist_splice(kwc_rlist_t *dst, kwc_rlist_t *src);

typedef enum kwc_conn_state {
    KWC_CONN_IDLE = 0, /* no socket: never connected, or failed (server in backoff) */
    KWC_CONN_TCP,      /* TCP connect in progress */
    KWC_CONN_TLS,      /* TLS handshake in progress */
    KWC_CONN_PROBE,    /* TLS up, health ping sent, not yet used for requests */
    KWC_CONN_UP,       /* taking requests */
} kwc_conn_state_t;

typedef struct kwc_server_s kwc_server_t;

struct kwc_conn_s {
    kwc_server_t *server;
    kwc_conn_state_t state;
    int fd;
    SSL *ssl;
    uint32_t events; /* current epoll interest */
    uint8_t *rbuf;   /* decrypted bytes not yet parsed (cleansed after use) */
    size_t rlen;
    uint8_t *wbuf; /* frames not yet written, from woff */
    size_t wlen;
    size_t woff;
    size_t wcap;
    int dirty; /* on the core's flush list */
    kwc_conn_t *next_dirty;
    kwc_rlist_t inflight; /* in send order */
    uint64_t deadline_us; /* connect + handshake + probe must finish before this */
    uint64_t progress_us; /* last reply, or when inflight became non-empty */
    int ping_out;         /* a health ping is in flight */
    int led;              /* a caller is reading it (kwc_core_lead); its epoll events are masked */
    unsigned gen;         /* incremented when its socket is closed */
};

struct kwc_server_s {
    kwc_core_t *core;
    size_t index;
    const kw_srv_addr_t *addr; /* owned by the client */
    kwc_conn_t conn;
    uint32_t backoff_ms; /* 0 after a success */
    uint64_t retry_us;   /* next connection attempt when idle */
    uint64_t failed_us;  /* last connection failure */
    uint64_t last_rx_us; /* last reply of any kind */
    double ewma_us;
    unsigned inflight; /* caller requests in flight (not pings) */
    uint64_t completed;
    uint64_t failures;
};

struct kwc_core_s {
    kw_client_t *client;
    SSL_CTX *ssl_ctx; /* the client's */
    int epfd;
    int wake_fd;
    pthread_t thread;
    atomic_int thread_started; /* set once, under io_lock: the I/O thread runs (async callers) */
    int thread_err;            /* under io_lock: the last pthread_create failure */
    uint64_t thread_failed_us; /* under io_lock: when it failed (retried a second later) */
    /* Without the I/O thread, blocking callers run the loop themselves, one at a time (core.c):
     * under io_lock, the driver's flag and the number of callers waiting for that role; the
     * eventfd tells them it is free, drive_cv tells a starting I/O thread. */
    int driving;
    int waiters;
    uint64_t idle_since_us; /* under io_lock: nobody has read the sockets since (0: someone does) */
    int handoff_fd;
    pthread_cond_t drive_cv;
    unsigned fork_gen;
    pthread_mutex_t io_lock; /* held by the I/O thread except while it waits for events; a caller
                                holding it may send directly (core.c) */
    int sleep_ms;            /* under io_lock: the I/O thread's current epoll_wait timeout */
    uint64_t last_submit_us; /* under io_lock */
    /* submission queue, under q_lock */
    pthread_mutex_t q_lock;
    kwc_rlist_t queue;
    int wake_armed;
    int stopping;
    /* I/O thread */
    kwc_server_t *servers;
    size_t n_servers;
    kw_reqmap_t map;
    kwc_rlist_t pending; /* waiting for a usable server */
    kwc_conn_t *dirty;   /* connections with frames to write */
    uint64_t now_us;
    uint32_t rr;
    uint32_t rnd;
    int ever_up; /* some server answered a probe since the core started */
    kw_efd_pool_t *pool;
    uint32_t timeout_ms;
    uint32_t connect_ms;
    uint32_t try_ms;
    uint32_t max_tries;
    /* last connection-level error, under err_lock */
    pthread_mutex_t err_lock;
    char last_err[KWC_ERR_MAX];
};

struct kw_client_s {
    /* settings, immutable after kw_client_new; the credentials are read (or copied) there, so a
     * forked child rebuilds its TLS context from memory and never opens a file (DESIGN.md §6) */
    kwc_pem_t cert; /* data NULL: no client certificate */
    kwc_pem_t key;  /* cleansed when the client is freed */
    kwc_pem_t ca;
    uint32_t timeout_ms;
    uint32_t connect_ms;
    uint32_t max_tries;
    size_t pad_to;
    kw_srv_addr_t *addrs;
    size_t n_addrs;
    /* TLS: NULL in a forked child until its first core starts */
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov;
    SSL_CTX *ssl_ctx;
    pthread_mutex_t lock; /* creating or replacing the core */
    _Atomic(kwc_core_t *) core;
    char last_err[KWC_ERR_MAX]; /* copy kept across core replacement, under lock */
    kw_client_t *reg_prev;
    kw_client_t *reg_next;
};

/* Incremented in every forked child (client.c). */
extern atomic_uint kwc_fork_gen;

/* Monotonic clock in microseconds. */
uint64_t kwc_now_us(void);

/* client.c: builds the private TLS context of a client (libctx with the default provider). */
int kwc_client_tls_init(kw_client_t *c, char *err, size_t errlen);

/* request.c */
kw_request_t *kwc_request_new(kw_efd_pool_t *pool, int internal);

/* sock_bio.c: a socket BIO on fd (not closed with it) that never raises SIGPIPE, or NULL. */
BIO *kwc_sock_bio_new(int fd);
/* Records the result, signals the caller and drops the I/O thread's reference. */
void kwc_request_complete(kw_request_t *r, int status, uint8_t remote_err, const uint8_t *payload,
                          size_t len);
int kwc_request_is_cancelled(const kw_request_t *r);

/* core.c */
int kwc_core_start(kw_client_t *c, kwc_core_t **out, char *err, size_t errlen);
void kwc_core_stop(kwc_core_t *core);
/* Enqueues r for the I/O thread (takes over its I/O reference). KW_ECLOSED when stopping. */
int kwc_core_enqueue(kwc_core_t *core, kw_request_t *r);
/*
 * Blocking wait for r on the caller's thread. Without an I/O thread, the caller runs the client's
 * loop itself (connects, handshakes, sends, reads, retries and times out, within r's deadline)
 * until r completes, or waits while another caller does; with one, kwc_core_lead. Returns when
 * r is complete or the caller should wait on r's eventfd.
 */
void kwc_core_wait(kwc_core_t *core, kw_request_t *r);
/* Starts the I/O thread unless it runs: an asynchronous caller (kw_request_fd, _notify) needs
 * it. Returns 0, or KW_ETHREAD with the reason (errno) as the client's last error. */
int kwc_core_need_thread(kwc_core_t *core);
/* Completes r with err unless it is complete (kw_request_fd when no I/O thread can start). */
void kwc_core_abort(kwc_core_t *core, kw_request_t *r, int err);
/* r's eventfd will be signalled at completion (signalled now if r is already complete). */
void kwc_request_watch(kw_request_t *r);
/*
 * Blocking wait for r on the caller's thread: when io_lock is free and r is in flight on an up
 * connection no other caller reads, masks it in epoll and reads it (under io_lock, sleeping in
 * poll without it) until r completes, the connection closes or r's try deadline passes; then the
 * I/O thread has it again (retries, timeouts). Returns 1 when it led, 0 when it did not.
 */
int kwc_core_lead(kwc_core_t *core, kw_request_t *r);
/* In a forked child: closes the core's descriptors, touches no TLS state, leaks the rest. */
void kwc_core_abandon(kwc_core_t *core);
void kwc_core_set_error(kwc_core_t *core, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kwc_core_stats(kwc_core_t *core, kw_server_stats_t *out, size_t max);
int kwc_core_watch(kwc_core_t *core, kwc_conn_t *conn, uint32_t events);

/* dispatch.c */
void kwc_dispatch_new(kwc_core_t *core, kw_request_t *r);
void kwc_dispatch_pending(kwc_core_t *core);
void kwc_dispatch_reply(kwc_conn_t *conn, uint32_t id, const uint8_t *body, size_t len);
/* A connection died: its requests are retried elsewhere or failed with err. */
void kwc_dispatch_conn_lost(kwc_conn_t *conn, int err);
void kwc_dispatch_timeouts(kwc_core_t *core);
/* No server is usable and a connection attempt failed: counts a try for every pending request. */
void kwc_dispatch_connect_failed(kwc_core_t *core, int err);
void kwc_dispatch_fail_all(kwc_core_t *core, int err);
/* Takes r (not complete) off its connection or the pending list and completes it with err. */
void kwc_dispatch_abort(kwc_core_t *core, kw_request_t *r, int err);
int kwc_send_ping(kwc_conn_t *conn, uint32_t timeout_ms);

/* conn.c */
void kwc_conn_init(kwc_conn_t *conn, kwc_server_t *server);
void kwc_conn_start(kwc_conn_t *conn);
void kwc_conn_event(kwc_conn_t *conn, uint32_t events);
/* Appends a frame (with its id) to the write buffer; written at the end of the loop turn. */
int kwc_conn_queue(kwc_conn_t *conn, const uint8_t *frame, size_t len, uint32_t id);
void kwc_conn_flush(kwc_conn_t *conn);
/* Closes the connection as failed: the server goes into backoff. */
void kwc_conn_fail(kwc_conn_t *conn, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Closes without counting a failure (client shutdown). */
void kwc_conn_close(kwc_conn_t *conn);
void kwc_conn_destroy(kwc_conn_t *conn);
/* The probe ping was answered: the server takes requests again. */
void kwc_conn_up(kwc_conn_t *conn);
/* Periodic work for a server: reconnect after backoff, deadlines, idle pings, stalls. */
void kwc_server_tick(kwc_server_t *s);

#endif /* KWC_INTERNAL_H */
