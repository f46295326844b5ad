/*
 * keyward-proxy workers: each thread runs its own libuv loop with its own listening socket on
 * the same address (SO_REUSEPORT lets the kernel spread connections over them), and owns the
 * connections it accepted. Stopping (SIGINT/SIGTERM) closes the listener and every connection;
 * draining (SIGQUIT) closes the listener only and lets the connections finish, within
 * --drain-timeout-ms. The loop ends once the last connection has closed. A timer stamps the
 * worker's heartbeat (kw_heartbeat.h) for /health and /ready.
 */
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/crypto.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "proxy.h"
#include "kw_addr.h"
#include "kw_guard.h"

#define KW_PROXY_BACKLOG 4096

static void on_connection(uv_stream_t *server, int status)
{
    kw_px_worker_t *w = server->data;
    if (status < 0) {
        kw_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    kw_px_conn_accept(w, server);
}

/* The threads' listeners share the address through SO_REUSEPORT, which would also let them join
 * another process listening there (the kernel then spreads clients over both). Unless
 * --reuse-port asks for that, the first thread first binds without SO_REUSEPORT: that fails
 * while anything listens on the address. Returns 0, or KW_EIO with err set. */
static int check_address_free(kw_proxy_t *p, const char *addr, char *err, size_t errlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)&p->listen_addr;
    int one = 1;
    in_port_t port = sa->sa_family == AF_INET6
                         ? ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port
                         : ((const struct sockaddr_in *)(const void *)sa)->sin_port;
    if (p->cfg->reuse_port || port == 0) { /* port 0: the kernel picks a free one */
        return 0;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
        return KW_EIO;
    }
    int rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0
                 ? bind(fd, sa, p->listen_len)
                 : -1;
    int e = errno;
    close(fd);
    if (rc == 0) {
        return 0;
    }
    if (e == EADDRINUSE) {
        snprintf(err, errlen,
                 "cannot listen on %s: address already in use by another process (another "
                 "keyward-proxy?); stop it or choose another --listen, or pass --reuse-port to "
                 "share the address with it on purpose",
                 addr);
    } else {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
    }
    return KW_EIO;
}

static int bind_socket(kw_proxy_t *p, int first, int *out, char *err, size_t errlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)&p->listen_addr;
    char addr[64];
    int one = 1;
    kw_addr_format(sa, addr, sizeof(addr));
    if (first && check_address_free(p, addr, err, errlen) != 0) {
        return KW_EIO;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
        return KW_EIO;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, sa, p->listen_len) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        close(fd);
        return KW_EIO;
    }
    /* Port 0: every other thread binds the port the kernel chose for the first. */
    socklen_t len = sizeof(p->listen_addr);
    if (getsockname(fd, (struct sockaddr *)&p->listen_addr, &len) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        close(fd);
        return KW_EIO;
    }
    *out = fd;
    return 0;
}

static int open_listener(kw_px_worker_t *w, char *err, size_t errlen)
{
    int fd = -1;
    KW_GUARD(bind_socket(w->proxy, w->index == 0, &fd, err, errlen));
    (void)uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    int rc = uv_tcp_open(&w->listener, fd);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&w->listener, KW_PROXY_BACKLOG, on_connection);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen: %s", uv_strerror(rc));
        return KW_EIO;
    }
    return 0;
}

/* Closes every connection now (a lingering key operation still finishes), counting what the
 * stop cut, and every handle that would keep the loop running. */
static void stop_now(kw_px_worker_t *w)
{
    kw_proxy_stats_t *st = &w->proxy->stats;
    if (w->stopping) {
        return;
    }
    w->stopping = 1;
    if (!w->draining) {
        uv_close((uv_handle_t *)&w->listener, NULL);
    }
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    if (w->index == 0) {
        uv_close((uv_handle_t *)&w->sigint, NULL);
        uv_close((uv_handle_t *)&w->sigterm, NULL);
        uv_close((uv_handle_t *)&w->sigquit, NULL);
        kw_px_refresh_stop(w->proxy);
        kw_px_tickets_stop(w->proxy->tickets);
    }
    for (kw_link_t *k = w->conns.head, *next; k != NULL; k = next) {
        next = k->next;
        kw_px_conn_t *c = KW_LIST_ENTRY(k, kw_px_conn_t, link);
        if (!c->closing) {
            atomic_fetch_add(c->backend_up ? &st->cut_tunnels : &st->cut_handshakes, 1);
        }
        kw_px_conn_close(c);
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    kw_px_worker_t *w = t->data;
    unsigned n = 0;
    for (kw_link_t *k = w->conns.head; k != NULL; k = k->next) {
        n += !KW_LIST_ENTRY(k, kw_px_conn_t, link)->closing;
    }
    if (n > 0) {
        kw_info("worker %u: drain timeout: cutting %u connection%s", w->index, n,
                n == 1 ? "" : "s");
    }
    stop_now(w);
}

/* Stops accepting; open connections (handshakes too) go on. Nothing else keeps the loop running,
 * so it ends when the last connection has closed, or the drain timer stops the rest. */
static void drain(kw_px_worker_t *w)
{
    if (w->draining || w->stopping) {
        return;
    }
    w->draining = 1;
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_unref((uv_handle_t *)&w->wakeup); /* still there for a stop during the drain */
    if (w->index == 0) {
        uv_unref((uv_handle_t *)&w->sigint);
        uv_unref((uv_handle_t *)&w->sigterm);
        uv_unref((uv_handle_t *)&w->sigquit);
        kw_px_refresh_stop(w->proxy);
        kw_px_tickets_stop(w->proxy->tickets);
    }
    if (uv_timer_start(&w->drain_timer, on_drain_timeout, w->proxy->cfg->drain_timeout_ms, 0) ==
        0) {
        uv_unref((uv_handle_t *)&w->drain_timer);
    }
}

static void on_wakeup(uv_async_t *a)
{
    kw_px_worker_t *w = a->data;
    if (atomic_load(&w->stop_mode) == KW_PX_STOP) {
        stop_now(w);
    } else {
        drain(w);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    kw_px_worker_t *w = s->data;
    kw_proxy_t *p = w->proxy;
    if (signum == SIGQUIT) {
        kw_info("signal %d: draining: no new connections, open ones may finish within %u ms",
                signum, p->cfg->drain_timeout_ms);
    } else {
        kw_info("signal %d: stopping", signum);
    }
    for (unsigned i = 0; i < p->nworkers; i++) {
        if (signum == SIGQUIT) {
            kw_px_worker_drain(&p->workers[i]);
        } else {
            kw_px_worker_stop(&p->workers[i]);
        }
    }
}

static int watch_signals(kw_px_worker_t *w)
{
    w->sigint.data = w;
    w->sigterm.data = w;
    w->sigquit.data = w;
    if (uv_signal_init(&w->loop, &w->sigint) != 0 || uv_signal_init(&w->loop, &w->sigterm) != 0 ||
        uv_signal_init(&w->loop, &w->sigquit) != 0 ||
        uv_signal_start(&w->sigint, on_signal, SIGINT) != 0 ||
        uv_signal_start(&w->sigterm, on_signal, SIGTERM) != 0 ||
        uv_signal_start(&w->sigquit, on_signal, SIGQUIT) != 0) {
        return KW_EIO;
    }
    return 0;
}

/* This loop turns: /health and /ready read the stamp from the metrics thread. */
static void on_beat(uv_timer_t *t)
{
    kw_px_worker_t *w = t->data;
    kw_heartbeat_beat(&w->heartbeat);
}

int kw_px_worker_init(kw_px_worker_t *w, kw_proxy_t *proxy, unsigned index, char *err,
                      size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->index = index;
    if (uv_loop_init(&w->loop) != 0) {
        snprintf(err, errlen, "cannot create an event loop");
        return KW_EIO;
    }
    w->proxy = proxy; /* from here on kw_px_worker_close must run */
    w->wakeup.data = w;
    w->ready.data = w;
    pthread_mutex_init(&w->ready_lock, NULL);
    w->ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->drain_timer.data = w;
    w->beat.data = w;
    int rc = uv_async_init(&w->loop, &w->wakeup, on_wakeup) == 0 &&
                     uv_timer_init(&w->loop, &w->drain_timer) == 0 &&
                     uv_timer_init(&w->loop, &w->beat) == 0 &&
                     uv_timer_start(&w->beat, on_beat, KW_HEARTBEAT_MS, KW_HEARTBEAT_MS) == 0
                 ? 0
                 : KW_EIO;
    if (rc == 0) {
        uv_unref((uv_handle_t *)&w->beat); /* never what keeps the loop running */
    }
    if (rc == 0) {
        rc = w->ready_fd >= 0 && uv_poll_init(&w->loop, &w->ready, w->ready_fd) == 0 &&
                     uv_poll_start(&w->ready, UV_READABLE, kw_px_conn_on_ready) == 0
                 ? 0
                 : KW_EIO;
    }
    if (rc == 0) {
        uv_unref((uv_handle_t *)&w->ready); /* alive only while a handshake waits */
        w->ready_open = 1;
    }
    if (rc == 0 && index == 0) {
        rc = watch_signals(w);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot set up the event loop");
        return rc;
    }
    return open_listener(w, err, errlen);
}

void kw_px_worker_run(kw_px_worker_t *w)
{
    /* One job per paused handshake, so the connection limit bounds the pool. */
    if (kw_px_async_pool_init(w->proxy->cfg->max_connections) != 0) {
        kw_warn("worker %u: cannot bound the ASYNC job pool", w->index);
    }
    kw_heartbeat_beat(&w->heartbeat); /* running: /ready may say so */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    kw_heartbeat_stop(&w->heartbeat); /* ended on purpose: not a stalled loop */
    ASYNC_cleanup_thread();           /* this thread's pool of paused-handshake jobs */
}

void kw_px_worker_stop(kw_px_worker_t *w)
{
    atomic_store(&w->stop_mode, KW_PX_STOP);
    uv_async_send(&w->wakeup);
}

void kw_px_worker_drain(kw_px_worker_t *w)
{
    int run = KW_PX_RUN;
    (void)atomic_compare_exchange_strong(&w->stop_mode, &run, KW_PX_DRAIN); /* never down */
    uv_async_send(&w->wakeup);
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

void kw_px_worker_close(kw_px_worker_t *w)
{
    /* After a run (nothing left) or a failed start: close what is open, then the loop. No
     * completion callback may touch `ready` once it closes. */
    pthread_mutex_lock(&w->ready_lock);
    w->ready_open = 0;
    pthread_mutex_unlock(&w->ready_lock);
    uv_walk(&w->loop, close_any, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0) {
        kw_warn("worker %u: event loop still busy at exit", w->index);
    }
    pthread_mutex_destroy(&w->ready_lock);
    if (w->ready_fd >= 0) {
        close(w->ready_fd); /* libuv does not close a polled fd */
    }
}
