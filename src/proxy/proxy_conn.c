/*
 * keyward-proxy connections, up to the established tunnel: accept, TLS through memory BIOs, the
 * asynchronous handshake (a key operation on the key server pauses the handshake's ASYNC job;
 * the provider calls kw_px_conn_async_ready when the reply is in, which queues the connection
 * for this loop, and the handshake resumes there),
 * the handshake/idle timer, and closing (a connection whose key operation is still in flight
 * lingers, without sockets, until the job finishes: OpenSSL cannot free a paused job).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <malloc.h>

#include <openssl/async.h>
#include <openssl/err.h>

#include "kw_log.h"
#include "kw_eventfd.h"
#include "proxy.h"
#include "kw_addr.h"
#include "proxy_metrics.h"

#define KW_PROXY_LINGER_MS 5000 /* graceful close: flush at most this long */
#define KW_PROXY_HS_BUFFER (64 * 1024)

static void conn_handshake(kw_px_conn_t *c);

static void conn_free(kw_px_conn_t *c)
{
    kw_px_worker_t *w = c->worker;
    kw_list_remove(&w->conns, &c->link);
    SSL_free(c->ssl); /* also frees both BIOs */
    atomic_fetch_sub(&w->proxy->nconns, 1);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    kw_px_conn_t *c = h->data;
    if (--c->handles == 0) {
        conn_free(c);
    }
}

int kw_px_async_pool_init(unsigned max)
{
    return ASYNC_init_thread(max, 0) == 1 ? 0 : -1;
}

/* No handshake of this thread is paused: if a burst grew the job pool past what steady load
 * needs, free it (its jobs and their fibre stacks) and start an empty one, so memory does not
 * stay at the burst's peak. Only safe with no job in use on this thread. */
static void async_pool_shrink(kw_px_worker_t *w)
{
    if (w->async_peak <= KW_PROXY_ASYNC_KEEP) {
        return;
    }
    kw_debug("worker %u: releasing the ASYNC job pool after %u paused handshakes", w->index,
             w->async_peak);
    w->async_peak = 0;
    ASYNC_cleanup_thread();
    if (kw_px_async_pool_init(w->proxy->cfg->max_connections) != 0) {
        kw_warn("worker %u: cannot set up the ASYNC job pool again", w->index);
    }
#ifdef __GLIBC__
    (void)malloc_trim(0); /* the stacks came from the heap: give the pages back */
#endif
}

/* Holds a handle reference while the handshake is paused on a key operation (so a closed
 * connection lingers until the job can finish) and drops it once it is not; may free c. */
static void async_ref_update(kw_px_conn_t *c)
{
    kw_px_worker_t *w = c->worker;
    if (c->async_wait && !c->async_ref) {
        c->async_ref = 1;
        c->handles++;
        kw_px_metrics_waiting(w->proxy, 1);
        if (w->async_refs++ == 0) {
            uv_ref((uv_handle_t *)&w->ready); /* a completion is due: keep the loop running */
        }
        if (w->async_refs > w->async_peak) {
            w->async_peak = w->async_refs;
        }
    } else if (!c->async_wait && c->async_ref) {
        c->async_ref = 0;
        kw_px_metrics_waiting(w->proxy, -1);
        if (--w->async_refs == 0) {
            uv_unref((uv_handle_t *)&w->ready);
            async_pool_shrink(w); /* after ASYNC_start_job returned: no job in use */
        }
        if (--c->handles == 0) {
            conn_free(c);
        }
    }
}

int kw_px_conn_async_ready(SSL *ssl, void *arg)
{
    (void)ssl;
    kw_px_conn_t *c = arg;
    kw_px_worker_t *w = c->worker;
    pthread_mutex_lock(&w->ready_lock);
    if (w->ready_open && !c->ready_queued) {
        int was_empty = w->ready_list == NULL;
        c->ready_queued = 1;
        c->ready_next = w->ready_list;
        w->ready_list = c;
        if (was_empty) {
            kw_eventfd_signal(w->ready_fd); /* under the lock: the fd cannot be closed meanwhile */
        }
    }
    pthread_mutex_unlock(&w->ready_lock);
    return 1;
}

void kw_px_conn_on_ready(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    kw_px_worker_t *w = h->data;
    kw_px_conn_t *list = NULL;
    kw_eventfd_drain(w->ready_fd); /* before taking the list: no lost wake-up */
    pthread_mutex_lock(&w->ready_lock);
    while (w->ready_list != NULL) { /* reversed: first completed, first resumed */
        kw_px_conn_t *c = w->ready_list;
        w->ready_list = c->ready_next;
        c->ready_queued = 0;
        c->ready_next = list;
        list = c;
    }
    pthread_mutex_unlock(&w->ready_lock);
    while (list != NULL) {
        kw_px_conn_t *c = list;
        list = c->ready_next;
        if (c->async_wait) {
            conn_handshake(c); /* may free c */
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    kw_px_conn_t *c = t->data;
    const kw_proxy_config_t *cfg = c->worker->proxy->cfg;
    if (c->closing) {
        return;
    }
    if (!c->backend_up) {
        atomic_fetch_add(&c->worker->proxy->stats.timeouts, 1);
        if (!c->hs_done) {
            kw_px_metrics_handshake(c->worker->proxy, c->ssl, KW_PX_HS_TIMEOUT);
        }
        kw_debug("connection %s: handshake timeout", c->hs_done ? "backend" : "TLS");
        kw_px_conn_close(c);
        return;
    }
    uint64_t idle = uv_now(&c->worker->loop) - c->last_active;
    if (idle >= cfg->idle_timeout_ms) {
        kw_px_conn_finish(c);
        return;
    }
    uv_timer_start(t, on_timer, cfg->idle_timeout_ms - idle, 0);
}

void kw_px_conn_touch(kw_px_conn_t *c)
{
    c->last_active = uv_now(&c->worker->loop);
}

void kw_px_conn_idle_timer(kw_px_conn_t *c)
{
    kw_px_conn_touch(c);
    uv_timer_start(&c->timer, on_timer, c->worker->proxy->cfg->idle_timeout_ms, 0);
}

void kw_px_conn_flush_tls(kw_px_conn_t *c)
{
    char *data = NULL;
    long n = BIO_get_mem_data(c->wbio, &data);
    if (n <= 0) {
        return;
    }
    if (!c->closing && kw_px_splice_send(c, (uv_stream_t *)&c->client, data, (size_t)n) != 0) {
        (void)BIO_reset(c->wbio);
        kw_px_conn_close(c);
        return;
    }
    (void)BIO_reset(c->wbio);
}

void kw_px_conn_pause_client(kw_px_conn_t *c)
{
    if (!c->client_paused && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->client);
        c->client_paused = 1;
    }
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

void kw_px_conn_resume_client(kw_px_conn_t *c)
{
    if (c->client_paused && !c->closing && !c->client_eof) {
        c->client_paused = 0;
        if (uv_read_start((uv_stream_t *)&c->client, kw_px_splice_alloc, on_client_read) != 0) {
            kw_px_conn_close(c);
        }
    }
}

static void handshake_done(kw_px_conn_t *c)
{
    kw_proxy_t *p = c->worker->proxy;
    c->hs_done = 1;
    c->async_wait = 0;
    SSL_clear_mode(c->ssl, SSL_MODE_ASYNC); /* reads and writes need no jobs */
    atomic_fetch_add(&p->stats.handshakes, 1);
    kw_debug("connection: %s handshake done", SSL_get_version(c->ssl));
    if (SSL_session_reused(c->ssl)) {
        atomic_fetch_add(&p->stats.resumed, 1);
    }
    kw_px_metrics_handshake(p, c->ssl, KW_PX_HS_OK);
    kw_px_guard_start(c);
    if (c->backend_conn) {
        kw_px_splice_tunnel(c);
    } /* else when the backend connect completes */
}

/* The first error queued is the cause (the provider's sentence when a key server failed); the
 * ones after it are OpenSSL's layers reporting it upwards. */
static void first_error(char *out, size_t outlen)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
    if (e == 0) {
        snprintf(out, outlen, "connection closed during the handshake");
        return;
    }
    char reason[256];
    ERR_error_string_n(e, reason, sizeof(reason));
    snprintf(out, outlen, "%s%s%s", reason, (flags & ERR_TXT_STRING) && data[0] ? ": " : "",
             (flags & ERR_TXT_STRING) ? data : "");
}

/* A failed client handshake at WARN, at most one line per second per thread so that a scan cannot
 * flood the log; the next line counts the ones left out (the exit line counts them all). */
static void warn_handshake_failed(kw_px_worker_t *w, const char *peer, const char *reason)
{
    uint64_t now = uv_now(&w->loop);
    if (w->hs_warned && now - w->hs_warn_ms < 1000) {
        w->hs_unlogged++;
        return;
    }
    if (w->hs_unlogged > 0) {
        kw_warn("handshake with %s failed: %s (and %lu more failed handshakes not logged since "
                "the last such line)",
                peer, reason, w->hs_unlogged);
    } else {
        kw_warn("handshake with %s failed: %s", peer, reason);
    }
    w->hs_warned = 1;
    w->hs_warn_ms = now;
    w->hs_unlogged = 0;
}

static void handshake_failed(kw_px_conn_t *c)
{
    char peer[64];
    char reason[512];
    atomic_fetch_add(&c->worker->proxy->stats.handshake_failures, 1);
    kw_px_metrics_handshake(c->worker->proxy, c->ssl, KW_PX_HS_FAILED);
    kw_addr_format((struct sockaddr *)&c->peer, peer, sizeof(peer));
    first_error(reason, sizeof(reason));
    warn_handshake_failed(c->worker, peer, reason);
    ERR_clear_error();
    kw_px_conn_finish(c); /* the alert is already queued */
}

/* Acts on SSL_do_handshake's outcome err: flush what it wrote, then go on, wait or fail. */
static void handshake_step(kw_px_conn_t *c, int err)
{
    kw_px_conn_flush_tls(c);
    if (c->closing) {
        return;
    }
    if (err == SSL_ERROR_NONE) {
        handshake_done(c);
    } else if (err == SSL_ERROR_WANT_READ) {
        kw_px_conn_resume_client(c);
    } else if (err == SSL_ERROR_WANT_ASYNC) {
        atomic_fetch_add(&c->worker->proxy->stats.async_waits, 1);
    } else if (err == SSL_ERROR_WANT_ASYNC_JOB) {
        /* The thread's job pool is at its bound (--max-connections paused handshakes). */
        atomic_fetch_add(&c->worker->proxy->stats.handshake_failures, 1);
        kw_px_metrics_handshake(c->worker->proxy, c->ssl, KW_PX_HS_FAILED);
        kw_info("handshake refused: no ASYNC job left on this thread");
        kw_px_conn_close(c);
    } else {
        handshake_failed(c);
    }
}

/* Runs the handshake as far as it goes now. In a lingering (zombie) connection it only lets a
 * paused key operation finish so the SSL can be freed. May free c. */
static void conn_handshake(kw_px_conn_t *c)
{
    ERR_clear_error();
    int was_waiting = c->async_wait;
    int rc = SSL_do_handshake(c->ssl);
    int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
    c->async_wait = err == SSL_ERROR_WANT_ASYNC;
    kw_px_metrics_keyop(c, was_waiting, c->async_wait);
    if (!c->zombie) {
        handshake_step(c, err);
    }
    async_ref_update(c);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    kw_px_conn_t *c = s->data;
    if (n == 0 || c->closing) {
        return;
    }
    if (n < 0) {
        if (n == UV_EOF && c->hs_done) {
            kw_px_splice_client_eof(c);
        } else {
            kw_px_conn_close(c);
        }
        return;
    }
    kw_px_conn_touch(c);
    if (BIO_write(c->rbio, buf->base, (int)n) != (int)n) {
        kw_px_conn_close(c);
        return;
    }
    if (c->hs_done) {
        kw_px_splice_client_data(c);
    } else if (!c->async_wait && c->backend_conn) {
        conn_handshake(c);
    } else if (BIO_ctrl_pending(c->rbio) > KW_PROXY_HS_BUFFER) {
        kw_px_conn_pause_client(c); /* resumed when the handshake wants to read again */
    }
}

static int conn_setup_tls(kw_px_conn_t *c)
{
    c->ssl = kw_proxy_tls_new_ssl(&c->worker->proxy->tls);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        return -1;
    }
    BIO_set_mem_eof_return(c->rbio, -1); /* empty means "want more", not EOF */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_app_data(c->ssl, c);
    SSL_set_async_callback_arg(c->ssl, c); /* kw_px_conn_async_ready */
    return 0;
}

/* The backend is connected: starts the handshake held for it, or the tunnel. */
static void backend_ready(kw_px_conn_t *c)
{
    if (c->hs_done) {
        kw_px_splice_tunnel(c);
    } else if (!c->async_wait && BIO_ctrl_pending(c->rbio) > 0) {
        conn_handshake(c); /* the client's first bytes waited for the backend */
    } else if (c->client_paused && !c->async_wait) {
        kw_px_conn_resume_client(c);
    }
}

/* The data path's reports (kw_px_splice_start). */
static void on_splice_event(kw_px_conn_t *c, kw_px_event_t ev)
{
    switch (ev) {
    case KW_PX_CLOSE:
        kw_px_conn_close(c);
        break;
    case KW_PX_FINISH:
        kw_px_conn_finish(c);
        break;
    case KW_PX_ABORT:
        kw_px_conn_abort(c);
        break;
    case KW_PX_FLUSH_TLS:
        kw_px_conn_flush_tls(c);
        break;
    case KW_PX_ACTIVE:
        kw_px_conn_touch(c);
        break;
    case KW_PX_TUNNEL_UP:
        kw_px_conn_idle_timer(c);
        break;
    case KW_PX_PAUSE_CLIENT:
        kw_px_conn_pause_client(c);
        break;
    case KW_PX_RESUME_CLIENT:
        kw_px_conn_resume_client(c);
        break;
    case KW_PX_BACKEND_READY:
        backend_ready(c);
        break;
    }
}

static int conn_start(kw_px_conn_t *c)
{
    int len = sizeof(c->peer);
    kw_proxy_t *p = c->worker->proxy;
    if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&c->peer, &len) != 0) {
        return -1;
    }
    len = sizeof(c->local);
    if (uv_tcp_getsockname(&c->client, (struct sockaddr *)&c->local, &len) != 0) {
        return -1;
    }
    (void)uv_tcp_nodelay(&c->client, 1);
    if (conn_setup_tls(c) != 0) {
        kw_warn("cannot create TLS state for a connection (out of memory?)");
        return -1;
    }
    if (uv_timer_start(&c->timer, on_timer, p->cfg->handshake_timeout_ms, 0) != 0) {
        return -1;
    }
    /* The backend first: the handshake (and so any key operation) waits until it is connected,
     * so a client whose backend is down costs the key server nothing. */
    if (kw_px_splice_start(c, on_splice_event) != 0) {
        return -1;
    }
    return uv_read_start((uv_stream_t *)&c->client, kw_px_splice_alloc, on_client_read);
}

void kw_px_conn_accept(kw_px_worker_t *w, uv_stream_t *listener)
{
    kw_proxy_t *p = w->proxy;
    kw_px_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        kw_error("out of memory accepting a connection");
        return;
    }
    c->worker = w;
    atomic_fetch_add(&p->nconns, 1);
    kw_list_push_front(&w->conns, &c->link);
    (void)uv_tcp_init(&w->loop, &c->client);
    (void)uv_timer_init(&w->loop, &c->timer);
    c->client.data = c;
    c->timer.data = c;
    c->handles = 2;
    if (uv_accept(listener, (uv_stream_t *)&c->client) != 0) {
        kw_px_conn_close(c);
        return;
    }
    atomic_fetch_add(&p->stats.accepted, 1);
    if (atomic_load(&p->nconns) > p->cfg->max_connections) {
        atomic_fetch_add(&p->stats.refused, 1);
        kw_px_conn_close(c);
        return;
    }
    if (conn_start(c) != 0) {
        kw_px_conn_close(c);
    }
}

void kw_px_conn_close(kw_px_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    kw_debug("connection: closed%s", c->async_wait ? " (key operation still in flight)" : "");
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->client, on_handle_closed); /* cancels pending writes */
    if (c->backend_init) {
        uv_close((uv_handle_t *)&c->backend, on_handle_closed);
    }
    if (c->async_wait) {
        c->zombie = 1; /* async_ref keeps it until the key operation completes */
    }
}

static void on_linger_timeout(uv_timer_t *t)
{
    kw_px_conn_close(t->data);
}

static void on_finish_shutdown(uv_shutdown_t *req, int status)
{
    kw_px_conn_close(req->data);
}

/* Ends the connection after what is queued for the client is written: with close_notify
 * (notify) when the stream ended as it should, without when it was cut. */
static void conn_end(kw_px_conn_t *c, int notify)
{
    if (c->closing) {
        return;
    }
    if (c->async_wait || c->client_shut_sent) {
        kw_px_conn_close(c);
        return;
    }
    if (c->hs_done && notify) {
        (void)SSL_shutdown(c->ssl); /* close_notify */
        ERR_clear_error();
    }
    kw_px_conn_flush_tls(c);
    if (c->closing) {
        return;
    }
    uv_read_stop((uv_stream_t *)&c->client);
    if (c->backend_init) {
        uv_read_stop((uv_stream_t *)&c->backend);
    }
    c->client_shut_sent = 1;
    c->client_shut.data = c;
    if (uv_shutdown(&c->client_shut, (uv_stream_t *)&c->client, on_finish_shutdown) != 0) {
        kw_px_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_linger_timeout, KW_PROXY_LINGER_MS, 0);
}

void kw_px_conn_finish(kw_px_conn_t *c)
{
    conn_end(c, 1);
}

void kw_px_conn_abort(kw_px_conn_t *c)
{
    conn_end(c, 0);
}
