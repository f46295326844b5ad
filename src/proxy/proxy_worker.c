/*
 * keyward-proxy workers: each thread runs its own libuv loop with its own listening socket on
 * the same address (SO_REUSEPORT lets the kernel spread connections over them), and owns the
 * connections it accepted. Stopping closes the listener and every connection, then the loop
 * ends once the last handle is closed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/crypto.h>

#include "keyward/error.h"
#include "keyward/log.h"
#include "proxy.h"
#include "proxy_addr.h"

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

static int bind_socket(kw_proxy_t *p, int *out, char *err, size_t errlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)&p->listen_addr;
    char addr[64];
    int one = 1;
    kw_proxy_addr_str(sa, addr, sizeof(addr));
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
    int rc = bind_socket(w->proxy, &fd, err, errlen);
    if (rc != 0) {
        return rc;
    }
    (void)uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    rc = uv_tcp_open(&w->listener, fd);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&w->listener, KW_PROXY_BACKLOG, on_connection);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen: %s", uv_strerror(rc));
        return KW_EIO;
    }
    return 0;
}

static void on_stop(uv_async_t *a)
{
    kw_px_worker_t *w = a->data;
    if (w->stopping) {
        return;
    }
    w->stopping = 1;
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    if (w->index == 0) {
        uv_close((uv_handle_t *)&w->sigint, NULL);
        uv_close((uv_handle_t *)&w->sigterm, NULL);
        kw_px_refresh_stop(w->proxy);
    }
    for (kw_px_conn_t *c = w->conns; c != NULL; c = c->next) {
        kw_px_conn_close(c); /* a lingering key operation still finishes */
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    kw_px_worker_t *w = s->data;
    kw_info("signal %d: stopping", signum);
    for (unsigned i = 0; i < w->proxy->nworkers; i++) {
        kw_px_worker_stop(&w->proxy->workers[i]);
    }
}

static int watch_signals(kw_px_worker_t *w)
{
    w->sigint.data = w;
    w->sigterm.data = w;
    if (uv_signal_init(&w->loop, &w->sigint) != 0 || uv_signal_init(&w->loop, &w->sigterm) != 0 ||
        uv_signal_start(&w->sigint, on_signal, SIGINT) != 0 ||
        uv_signal_start(&w->sigterm, on_signal, SIGTERM) != 0) {
        return KW_EIO;
    }
    return 0;
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
    int rc = uv_async_init(&w->loop, &w->wakeup, on_stop) == 0 ? 0 : KW_EIO;
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
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASYNC_cleanup_thread(); /* this thread's pool of paused-handshake jobs */
}

void kw_px_worker_stop(kw_px_worker_t *w)
{
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
