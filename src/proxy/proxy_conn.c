/*
 * keyward-proxy connections, up to the established tunnel: accept, TLS through memory BIOs, the
 * asynchronous handshake (a key operation on the key server pauses the handshake's ASYNC job;
 * the job's wait fds are polled on this loop and the handshake resumes when one is readable),
 * the handshake/idle timer, and closing (a connection whose key operation is still in flight
 * lingers, without sockets, until the job finishes: OpenSSL cannot free a paused job).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "keyward/log.h"
#include "proxy.h"
#include "proxy_addr.h"

#define KW_PROXY_LINGER_MS 5000 /* graceful close: flush at most this long */
#define KW_PROXY_HS_BUFFER (64 * 1024)

static void conn_handshake(kw_px_conn_t *c);

static void conn_free(kw_px_conn_t *c)
{
    kw_px_worker_t *w = c->worker;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (w->conns == c) {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
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

static void on_poll_closed(uv_handle_t *h)
{
    kw_px_conn_poll_t *p = h->data;
    kw_px_conn_t *c = p->conn;
    free(p);
    if (--c->handles == 0) {
        conn_free(c);
    }
}

static void poll_remove(kw_px_conn_t *c, int fd)
{
    for (size_t i = 0; i < KW_PROXY_MAX_POLLS; i++) {
        kw_px_conn_poll_t *p = c->polls[i];
        if (p != NULL && (fd < 0 || p->fd == fd)) {
            uv_poll_stop(&p->handle); /* before the provider closes or reuses the fd */
            uv_close((uv_handle_t *)&p->handle, on_poll_closed);
            c->polls[i] = NULL;
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    kw_px_conn_poll_t *p = h->data;
    kw_px_conn_t *c = p->conn;
    if (!c->async_wait) {
        uv_poll_stop(h); /* the job is done; its fd will be reported deleted */
        return;
    }
    conn_handshake(c);
}

static int poll_add(kw_px_conn_t *c, int fd)
{
    size_t slot = KW_PROXY_MAX_POLLS;
    for (size_t i = 0; i < KW_PROXY_MAX_POLLS; i++) {
        if (c->polls[i] != NULL && c->polls[i]->fd == fd) {
            return 0;
        }
        if (c->polls[i] == NULL && slot == KW_PROXY_MAX_POLLS) {
            slot = i;
        }
    }
    kw_px_conn_poll_t *p = slot < KW_PROXY_MAX_POLLS ? calloc(1, sizeof(*p)) : NULL;
    if (p == NULL) {
        return -1;
    }
    if (uv_poll_init(&c->worker->loop, &p->handle, fd) != 0) {
        kw_warn("cannot poll async fd %d", fd);
        free(p);
        return -1;
    }
    p->handle.data = p;
    p->conn = c;
    p->fd = fd;
    c->polls[slot] = p;
    c->handles++;
    return uv_poll_start(&p->handle, UV_READABLE, on_poll) == 0 ? 0 : -1;
}

/* Applies the fds the provider added and deleted since the job last resumed: deletions first,
 * since a new fd may reuse a deleted one's number. */
static int sync_async_fds(kw_px_conn_t *c)
{
    OSSL_ASYNC_FD add[KW_PROXY_MAX_POLLS];
    OSSL_ASYNC_FD del[16];
    size_t nadd = 0;
    size_t ndel = 0;
    if (!SSL_get_changed_async_fds(c->ssl, NULL, &nadd, NULL, &ndel)) {
        return -1;
    }
    if (nadd == 0 && ndel == 0) {
        return 0;
    }
    if (nadd > KW_PROXY_MAX_POLLS || ndel > 16 ||
        !SSL_get_changed_async_fds(c->ssl, add, &nadd, del, &ndel)) {
        return -1;
    }
    for (size_t i = 0; i < ndel; i++) {
        poll_remove(c, del[i]);
    }
    for (size_t i = 0; i < nadd; i++) {
        if (poll_add(c, add[i]) != 0) {
            return -1;
        }
    }
    return 0;
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
    if (!c->closing && kw_px_conn_send(c, (uv_stream_t *)&c->client, data, (size_t)n) != 0) {
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
    poll_remove(c, -1);
    atomic_fetch_add(&p->stats.handshakes, 1);
    kw_debug("connection: %s handshake done", SSL_get_version(c->ssl));
    if (SSL_session_reused(c->ssl)) {
        atomic_fetch_add(&p->stats.resumed, 1);
    }
    kw_px_splice_start(c);
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

static void handshake_failed(kw_px_conn_t *c)
{
    char peer[64];
    char reason[512];
    atomic_fetch_add(&c->worker->proxy->stats.handshake_failures, 1);
    kw_proxy_addr_str((struct sockaddr *)&c->peer, peer, sizeof(peer));
    first_error(reason, sizeof(reason));
    kw_info("handshake with %s failed: %s", peer, reason);
    ERR_clear_error();
    kw_px_conn_finish(c); /* the alert is already queued */
}

/* Runs the handshake as far as it goes now. In a lingering (zombie) connection it only lets a
 * paused key operation finish so the SSL can be freed. */
static void conn_handshake(kw_px_conn_t *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
    int fds_ok = sync_async_fds(c) == 0;
    c->async_wait = err == SSL_ERROR_WANT_ASYNC;
    if (c->zombie) {
        if (!c->async_wait) {
            poll_remove(c, -1);
        }
        return;
    }
    kw_px_conn_flush_tls(c);
    if (c->closing) {
        return;
    }
    if (!fds_ok) {
        kw_warn("cannot watch the key operation's file descriptors; closing the connection");
        kw_px_conn_close(c);
        return;
    }
    if (err == SSL_ERROR_NONE) {
        handshake_done(c);
    } else if (err == SSL_ERROR_WANT_READ) {
        kw_px_conn_resume_client(c);
    } else if (err == SSL_ERROR_WANT_ASYNC) {
        atomic_fetch_add(&c->worker->proxy->stats.async_waits, 1);
    } else {
        handshake_failed(c);
    }
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
    } else if (!c->async_wait) {
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
    return 0;
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
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
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
        c->zombie = 1; /* the polls stay until the key operation completes */
    } else {
        poll_remove(c, -1);
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

void kw_px_conn_finish(kw_px_conn_t *c)
{
    if (c->closing) {
        return;
    }
    if (c->async_wait || c->client_shut_sent) {
        kw_px_conn_close(c);
        return;
    }
    if (c->hs_done) {
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
