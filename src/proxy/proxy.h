/*
 * keyward-proxy internals: the proxy (configuration, TLS contexts, addresses, counters shared by
 * all threads), its workers (one libuv loop, listener and connection list per thread) and
 * connections (client TCP + TLS via memory BIOs, backend TCP, async key-operation callbacks).
 *
 * Ownership: kw_proxy_t owns its workers; a worker owns its connections; a connection owns its
 * handles, SSL and pending writes, and frees itself once every handle has closed.
 */
#ifndef KW_PROXY_H
#define KW_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include <uv.h>

#include "kw_heartbeat.h"
#include "kw_list.h"
#include "proxy_config.h"
#include "proxy_tickets.h"
#include "proxy_tls.h"

#define KW_PROXY_READ_BUF   (64 * 1024)  /* one read from either side */
#define KW_PROXY_RECORD     (16 * 1024)  /* plaintext per SSL_write: one full TLS record */
#define KW_PROXY_HIGH_WATER (256 * 1024) /* stop reading the other side above this */
#define KW_PROXY_LOW_WATER  (64 * 1024)  /* resume below this */
/* TLS messages without application data (KeyUpdate, refused renegotiation) a client may cause
 * per window before it is closed (proxy_guard.c). */
#define KW_PROXY_CTL_MAX       32
#define KW_PROXY_CTL_WINDOW_MS 10000
/* OpenSSL's per-thread pool of ASYNC jobs (one per paused handshake, each with a 32 KiB fibre
 * stack) never shrinks by itself: after a burst of more than this many paused handshakes, the
 * pool is emptied once none is paused (proxy_conn.c). */
#define KW_PROXY_ASYNC_KEEP 64

enum { KW_PX_RUN = 0, KW_PX_DRAIN = 1, KW_PX_STOP = 2 };

typedef struct kw_proxy_s kw_proxy_t;
typedef struct kw_px_worker_s kw_px_worker_t;
typedef struct kw_px_conn_s kw_px_conn_t;

/* Counters for the log line at exit and for tests. */
typedef struct kw_proxy_stats_s {
    atomic_ulong accepted;
    atomic_ulong refused; /* over --max-connections */
    atomic_ulong handshakes;
    atomic_ulong resumed;
    atomic_ulong handshake_failures;
    atomic_ulong timeouts;
    atomic_ulong backend_failures;
    atomic_ulong async_waits;    /* handshakes that parked on a key-server reply */
    atomic_ulong floods;         /* clients closed for too many TLS messages without data */
    atomic_ulong cut_handshakes; /* connections before their tunnel was up, closed by a stop */
    atomic_ulong cut_tunnels;    /* established tunnels closed by a stop (or the drain timeout) */
} kw_proxy_stats_t;

struct kw_proxy_s {
    const kw_proxy_config_t *cfg;
    kw_proxy_tls_t tls;
    struct sockaddr_storage listen_addr;
    socklen_t listen_len;
    struct sockaddr_storage backend_addr;
    socklen_t backend_len;
    atomic_uint nconns;
    kw_proxy_stats_t stats;
    kw_px_worker_t *workers;
    unsigned nworkers;
    /* --cert-from-keyserver refresh (proxy_refresh.c), on worker 0's loop */
    uv_timer_t refresh_timer;
    uv_work_t refresh_work;
    kw_proxy_site_t *refresh_new; /* per site: the refetched site while a refresh runs */
    int refresh_on, refresh_busy;
    kw_px_tickets_t *tickets; /* --tickets-from-keyserver / --session-context; NULL: neither */
    struct kw_px_metrics_s *metrics; /* --metrics (proxy_metrics.c), or NULL */
    struct kw_px_reload_s *reload;   /* SIGHUP reloads (proxy_reload.c), or NULL */
    struct kw_px_ready_s *ready;     /* /ready's probe (proxy_ready.c), or NULL */
};

struct kw_px_worker_s {
    kw_proxy_t *proxy;
    unsigned index;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wakeup;        /* asks the loop to drain or stop (stop_mode says which) */
    atomic_int stop_mode;     /* KW_PX_RUN, KW_PX_DRAIN (SIGQUIT) or KW_PX_STOP; only goes up */
    uv_timer_t drain_timer;   /* --drain-timeout-ms after a drain began: stop */
    uv_timer_t beat;          /* stamps heartbeat every KW_HEARTBEAT_MS (unreferenced) */
    kw_heartbeat_t heartbeat; /* /health and /ready read it from the metrics thread */
    int draining;
    /* Handshakes whose key operation completed (kw_px_conn_async_ready, any thread), resumed on
     * this loop when ready_fd (an eventfd, written when the list stops being empty) is readable;
     * `ready` keeps the loop alive only while async_refs > 0. Not uv_async_t: its loop thread
     * busy-waits while another thread is inside uv_async_send (docs/keyserver.md). */
    uv_poll_t ready;
    int ready_fd;
    pthread_mutex_t ready_lock; /* guards ready_list, ready_open, every conn's ready_queued */
    kw_px_conn_t *ready_list;
    int ready_open;
    unsigned async_refs; /* connections whose handshake is paused on a key operation */
    unsigned async_peak; /* most async_refs since this thread's job pool was last emptied */
    uv_signal_t sigint, sigterm, sigquit;
    uv_thread_t thread;
    int stopping;
    kw_list_t conns;                 /* live connections (kw_px_conn_t link), newest first */
    uint64_t hs_warn_ms;             /* uv_now of the last "handshake failed" line (proxy_conn.c) */
    unsigned long hs_unlogged;       /* failed handshakes since then, not logged */
    int hs_warned;                   /* hs_warn_ms is set */
    char readbuf[KW_PROXY_READ_BUF]; /* every read on this loop; consumed synchronously */
};

/* What the data path (proxy_splice.c) asks of the connection it runs in: it reports through the
 * callback the connection gave it at kw_px_splice_start and never calls up into proxy_conn.c. */
typedef enum kw_px_event {
    KW_PX_CLOSE,         /* end now, dropping pending data (kw_px_conn_close) */
    KW_PX_FINISH,        /* end gracefully (kw_px_conn_finish) */
    KW_PX_ABORT,         /* the backend failed (kw_px_conn_abort) */
    KW_PX_FLUSH_TLS,     /* SSL has output for the client */
    KW_PX_ACTIVE,        /* data moved: restart the idle clock */
    KW_PX_TUNNEL_UP,     /* the tunnel is up: the timer now measures idleness */
    KW_PX_PAUSE_CLIENT,  /* stop reading the client */
    KW_PX_RESUME_CLIENT, /* read the client again */
    KW_PX_BACKEND_READY, /* the backend is connected */
} kw_px_event_t;

typedef void (*kw_px_event_cb)(kw_px_conn_t *c, kw_px_event_t ev);

struct kw_px_conn_s {
    kw_px_worker_t *worker;
    kw_px_event_cb on_event; /* the data path's reports (set by kw_px_splice_start) */
    kw_link_t link;          /* in worker->conns */
    uv_tcp_t client;
    uv_tcp_t backend;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_shutdown_t client_shut, backend_shut;
    kw_px_conn_t *ready_next; /* in worker->ready_list (under ready_lock) */
    int ready_queued;         /* under ready_lock */
    int async_ref;            /* holds one of handles while the handshake is paused */
    SSL *ssl;
    BIO *rbio; /* ciphertext from the client, read by SSL */
    BIO *wbio; /* ciphertext from SSL, for the client */
    struct sockaddr_storage peer, local;
    uint64_t last_active;
    uint64_t keyop_us;  /* proxy_metrics.c: when the pending key operation began (0: none) */
    uint64_t ctl_since; /* proxy_guard.c: start of the current window, and its count */
    unsigned ctl_count;
    int handles; /* open libuv handles; the connection is freed at 0 */
    /* backend_conn: the backend is connected; backend_up: and the tunnel is up (handshake done) */
    unsigned hs_done : 1, async_wait : 1, backend_init : 1, backend_conn : 1, backend_up : 1,
        client_eof : 1, backend_eof : 1, client_paused : 1, backend_paused : 1, closing : 1,
        zombie : 1, client_shut_sent : 1, backend_shut_sent : 1, client_shut_done : 1,
        backend_shut_done : 1, flooded : 1;
};

/* proxy.c */
int kw_proxy_new(const kw_proxy_config_t *cfg, kw_proxy_t **out, char *err, size_t errlen);
/* Runs every worker until SIGINT/SIGTERM (fast stop) or SIGQUIT (graceful: stop accepting, let
 * open connections finish within --drain-timeout-ms); worker 0 on the calling thread. */
int kw_proxy_run(kw_proxy_t *proxy);
void kw_proxy_free(kw_proxy_t *proxy);

/* proxy_ready.c: /ready and /health of --metrics (any thread). kw_px_ready_new makes the key
 * servers' probe (a client of its own, as the key server's /ready has for its upstreams); 0 or a
 * KW_E* code with err. The checks: 1 when ready / alive, else 0 with the reason in why. */
int kw_px_ready_new(kw_proxy_t *p, char *err, size_t errlen);
void kw_px_ready_free(kw_proxy_t *p);
int kw_px_ready_check(kw_proxy_t *p, char *why, size_t len);
int kw_px_health_check(kw_proxy_t *p, char *why, size_t len);

/* proxy_check.c: --check-config; prints what would run or why not to out. Returns 0 or 1. */
int kw_proxy_check_config(const kw_proxy_config_t *cfg, FILE *out);

/* proxy_reload.c: SIGHUP reloads the configuration (argv again) and the TLS state, keeping open
 * connections; a failed reload keeps the running state and logs why. Start after kw_proxy_new;
 * free after the workers are closed (kw_proxy_free does). */
int kw_px_reload_start(kw_proxy_t *p, int argc, char **argv);
void kw_px_reload_free(kw_proxy_t *p);

/* proxy_refresh.c: refetches --cert-from-keyserver chains before they expire */
int kw_px_refresh_start(kw_proxy_t *p); /* after the workers are set up */
void kw_px_refresh_stop(kw_proxy_t *p); /* on worker 0's loop */

/* proxy_worker.c */
int kw_px_worker_init(kw_px_worker_t *w, kw_proxy_t *proxy, unsigned index, char *err,
                      size_t errlen);
void kw_px_worker_run(kw_px_worker_t *w);
void kw_px_worker_stop(kw_px_worker_t *w);  /* from any thread: close everything now */
void kw_px_worker_drain(kw_px_worker_t *w); /* from any thread: stop accepting, let finish */
void kw_px_worker_close(kw_px_worker_t *w);

/* proxy_conn.c: handshake, async key operations, timeouts, closing */
void kw_px_conn_accept(kw_px_worker_t *w, uv_stream_t *listener);
/* The SSL_CTX async callback (SSL_CTX_set_async_callback, arg: the connection): a paused
 * handshake's key operation completed. Any thread; queues the connection for its loop. */
int kw_px_conn_async_ready(SSL *ssl, void *arg);
void kw_px_conn_on_ready(uv_poll_t *h, int status, int events); /* resumes the queued ones */
/* Sets up this thread's pool of ASYNC jobs: at most max (one per connection). */
int kw_px_async_pool_init(unsigned max);
void kw_px_conn_close(kw_px_conn_t *c);  /* immediate: drops pending data */
void kw_px_conn_finish(kw_px_conn_t *c); /* graceful: close_notify, flush, then close */
/* The backend failed: flush what the client is owed, then FIN *without* close_notify, so the
 * client can tell the stream was cut (a clean end would hide the truncation). */
void kw_px_conn_abort(kw_px_conn_t *c);
void kw_px_conn_flush_tls(kw_px_conn_t *c);  /* queues SSL's output for the client */
void kw_px_conn_touch(kw_px_conn_t *c);      /* activity: restarts the idle clock */
void kw_px_conn_idle_timer(kw_px_conn_t *c); /* tunnel up: the timer now measures idleness */
void kw_px_conn_pause_client(kw_px_conn_t *c);
void kw_px_conn_resume_client(kw_px_conn_t *c);

/* proxy_guard.c: counts the client's TLS messages without application data (after the
 * handshake); over the limit, sets c->flooded and drops the buffered input. */
void kw_px_guard_start(kw_px_conn_t *c);

/* proxy_splice.c: backend connect and the data path; reports to the connection through
 * on_event. At accept: connects the backend; 0 or a uv error. */
int kw_px_splice_start(kw_px_conn_t *c, kw_px_event_cb on_event);
void kw_px_splice_tunnel(kw_px_conn_t *c);      /* handshake done and backend connected */
void kw_px_splice_client_data(kw_px_conn_t *c); /* plaintext waiting in SSL goes to the backend */
void kw_px_splice_client_eof(kw_px_conn_t *c);  /* client closed its sending side */
int kw_px_splice_send(kw_px_conn_t *c, uv_stream_t *to, const char *data, size_t len);
void kw_px_splice_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

#endif /* KW_PROXY_H */
