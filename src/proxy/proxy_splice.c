/*
 * keyward-proxy data path: the backend connect (started at accept, beside the handshake), then,
 * once both are done, the tunnel (a PROXY v2 header first when configured) moves plaintext both
 * ways. Writes go out at once when the
 * socket takes them and are queued otherwise; a side whose peer's queue passes the high-water
 * mark stops being read until that queue drains, so a slow reader never makes us buffer without
 * bound. Half-closes travel through (client close_notify or FIN -> backend FIN; backend FIN ->
 * close_notify and FIN), and the connection closes when both directions are done. A backend
 * error (reset, failed write) ends the client's side without close_notify, so it can tell.
 * The data path never calls up into proxy_conn.c: it reports through c->on_event (the
 * kw_px_event_cb its connection gave kw_px_splice_start).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "kw_log.h"
#include "proxy.h"
#include "kw_addr.h"
#include "proxy_ppv2.h"

typedef struct write_req {
    uv_write_t req;
    kw_px_conn_t *conn;
    char data[];
} write_req_t;

static void on_backend_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

void kw_px_splice_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    kw_px_conn_t *c = h->data;
    buf->base = c->worker->readbuf;
    buf->len = sizeof(c->worker->readbuf);
}

static size_t queued(const void *stream)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)stream);
}

static void pause_backend(kw_px_conn_t *c)
{
    if (!c->backend_paused && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->backend);
        c->backend_paused = 1;
    }
}

static void resume_backend(kw_px_conn_t *c)
{
    if (c->backend_paused && !c->closing && !c->backend_eof) {
        c->backend_paused = 0;
        if (uv_read_start((uv_stream_t *)&c->backend, kw_px_splice_alloc, on_backend_read) != 0) {
            c->on_event(c, KW_PX_CLOSE);
        }
    }
}

/* A queue fell: let the side that feeds it go on. The client is read again only when both
 * queues are low: its records fill the backend's queue, and its TLS messages (a KeyUpdate
 * answered) its own. */
static void drained(kw_px_conn_t *c, uv_stream_t *to)
{
    if (to == (uv_stream_t *)&c->client && queued(&c->client) < KW_PROXY_LOW_WATER) {
        resume_backend(c);
    }
    if (c->client_paused && c->backend_up && queued(&c->backend) < KW_PROXY_LOW_WATER &&
        queued(&c->client) < KW_PROXY_LOW_WATER) {
        c->on_event(c, KW_PX_RESUME_CLIENT);
        kw_px_splice_client_data(c); /* plaintext may wait inside SSL */
    }
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *wr = (write_req_t *)req;
    kw_px_conn_t *c = wr->conn;
    uv_stream_t *to = req->handle;
    free(wr);
    if (c->closing) {
        return;
    }
    if (status < 0) {
        kw_debug("write to %s failed: %s", to == (uv_stream_t *)&c->client ? "client" : "backend",
                 uv_strerror(status));
        if (to == (uv_stream_t *)&c->client) {
            c->on_event(c, KW_PX_CLOSE);
        } else {
            c->on_event(c, KW_PX_ABORT); /* the client's data did not all arrive */
        }
        return;
    }
    drained(c, to);
}

int kw_px_splice_send(kw_px_conn_t *c, uv_stream_t *to, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (queued(to) == 0) {
        int n = uv_try_write(to, &b, 1);
        if (n >= 0 && (size_t)n == len) {
            return 0;
        }
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            return n;
        }
    }
    write_req_t *wr = malloc(sizeof(*wr) + len);
    if (wr == NULL) {
        return UV_ENOMEM;
    }
    memcpy(wr->data, data, len);
    wr->conn = c;
    b = uv_buf_init(wr->data, (unsigned)len);
    int rc = uv_write(&wr->req, to, &b, 1, on_write);
    if (rc != 0) {
        free(wr);
    }
    return rc;
}

/* Both directions finished and flushed: close. */
static void maybe_done(kw_px_conn_t *c)
{
    if (c->client_eof && c->backend_eof && c->client_shut_done && c->backend_shut_done) {
        c->on_event(c, KW_PX_CLOSE);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    kw_px_conn_t *c = req->data;
    if (c->closing) {
        return;
    }
    if (status < 0) {
        c->on_event(c, KW_PX_CLOSE);
        return;
    }
    if (req == &c->client_shut) {
        c->client_shut_done = 1;
    } else {
        c->backend_shut_done = 1;
    }
    maybe_done(c);
}

/* Passes the client's end of sending on: FIN to the backend once its queue is written. */
static void shut_backend(kw_px_conn_t *c)
{
    if (c->backend_shut_sent || c->closing) {
        return;
    }
    c->backend_shut_sent = 1;
    c->backend_shut.data = c;
    if (uv_shutdown(&c->backend_shut, (uv_stream_t *)&c->backend, on_shutdown) != 0) {
        c->on_event(c, KW_PX_CLOSE);
    }
}

void kw_px_splice_client_eof(kw_px_conn_t *c)
{
    if (c->client_eof || c->closing) {
        return;
    }
    c->client_eof = 1;
    kw_debug("connection: client closed its side%s", c->backend_up ? "" : " (backend pending)");
    uv_read_stop((uv_stream_t *)&c->client);
    if (c->backend_up) {
        kw_px_splice_client_data(c); /* what SSL still holds goes first */
        shut_backend(c);
    } /* else on_connect sends what is buffered, then the FIN */
}

static void backend_eof(kw_px_conn_t *c)
{
    kw_debug("connection: backend closed its side");
    c->backend_eof = 1;
    (void)SSL_shutdown(c->ssl); /* close_notify */
    ERR_clear_error();
    c->on_event(c, KW_PX_FLUSH_TLS);
    if (c->closing) {
        return;
    }
    c->client_shut_sent = 1;
    c->client_shut.data = c;
    if (uv_shutdown(&c->client_shut, (uv_stream_t *)&c->client, on_shutdown) != 0) {
        c->on_event(c, KW_PX_CLOSE);
    }
}

/* 1 when the socket holds an error (a reset) that libuv reported as EOF: when the last data and
 * an RST arrive together, it reads the data and takes the hang-up for an end of stream. */
static int reset_pending(uv_tcp_t *tcp)
{
    uv_os_fd_t fd;
    int err = 0;
    socklen_t len = sizeof(err);
    return uv_fileno((uv_handle_t *)tcp, &fd) == 0 &&
           getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0;
}

static void on_backend_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    kw_px_conn_t *c = s->data;
    if (n == 0 || c->closing) {
        return;
    }
    if (n < 0) {
        if (n == UV_EOF && !reset_pending(&c->backend)) {
            backend_eof(c);
        } else {
            kw_debug("backend read failed: %s", uv_strerror((int)n));
            c->on_event(c, KW_PX_ABORT); /* a reset is not an end: no close_notify */
        }
        return;
    }
    c->on_event(c, KW_PX_ACTIVE);
    for (ssize_t off = 0; off < n; off += KW_PROXY_RECORD) {
        int chunk = (int)(n - off < KW_PROXY_RECORD ? n - off : KW_PROXY_RECORD);
        if (SSL_write(c->ssl, buf->base + off, chunk) != chunk) {
            ERR_clear_error();
            c->on_event(c, KW_PX_CLOSE);
            return;
        }
    }
    c->on_event(c, KW_PX_FLUSH_TLS);
    if (!c->closing && queued(&c->client) > KW_PROXY_HIGH_WATER) {
        pause_backend(c);
    }
}

/* Reads up to a buffer of plaintext; returns the SSL_get_error of the last read. */
static int read_plaintext(kw_px_conn_t *c, char *buf, size_t cap, size_t *filled)
{
    *filled = 0;
    while (*filled < cap) {
        int n = SSL_read(c->ssl, buf + *filled, (int)(cap - *filled));
        if (n <= 0) {
            return SSL_get_error(c->ssl, n);
        }
        *filled += (size_t)n;
    }
    return SSL_ERROR_NONE;
}

void kw_px_splice_client_data(kw_px_conn_t *c)
{
    if (c->closing) {
        return;
    }
    if (!c->backend_up) {
        if (BIO_ctrl_pending(c->rbio) > KW_PROXY_HIGH_WATER) {
            c->on_event(c, KW_PX_PAUSE_CLIENT); /* resumed once the backend is connected */
        }
        return;
    }
    int err = SSL_ERROR_NONE;
    while (err == SSL_ERROR_NONE && !c->closing && !c->flooded) {
        size_t n = 0;
        err = read_plaintext(c, c->worker->readbuf, sizeof(c->worker->readbuf), &n);
        if (n > 0 && kw_px_splice_send(c, (uv_stream_t *)&c->backend, c->worker->readbuf, n) != 0) {
            c->on_event(c, KW_PX_ABORT);
            return;
        }
    }
    if (c->flooded) {
        char peer[64];
        atomic_fetch_add(&c->worker->proxy->stats.floods, 1);
        kw_addr_format((struct sockaddr *)&c->peer, peer, sizeof(peer));
        kw_info("closing %s: more than %d TLS messages without application data in %d s", peer,
                KW_PROXY_CTL_MAX, KW_PROXY_CTL_WINDOW_MS / 1000);
        c->on_event(c, KW_PX_CLOSE);
        return;
    }
    c->on_event(c, KW_PX_FLUSH_TLS); /* a read may answer a key update or queue an alert */
    if (c->closing) {
        return;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
        kw_px_splice_client_eof(c); /* close_notify */
    } else if (err != SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        c->on_event(c, KW_PX_CLOSE);
    } else if (queued(&c->backend) > KW_PROXY_HIGH_WATER ||
               queued(&c->client) > KW_PROXY_HIGH_WATER) {
        c->on_event(c, KW_PX_PAUSE_CLIENT); /* resumed by drained() */
    }
}

static void send_proxy_header(kw_px_conn_t *c)
{
    uint8_t hdr[KW_PPV2_MAX_LEN];
    size_t len = 0;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    kw_ppv2_info_t info = {
        .src = (struct sockaddr *)&c->peer,
        .dst = (struct sockaddr *)&c->local,
        .alpn = alpn,
        .alpn_len = alpn_len,
        .authority = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name),
        .tls_version = SSL_get_version(c->ssl),
        .cipher = SSL_get_cipher_name(c->ssl),
    };
    if (kw_ppv2_encode(&info, hdr, sizeof(hdr), &len) != 0 ||
        kw_px_splice_send(c, (uv_stream_t *)&c->backend, (const char *)hdr, len) != 0) {
        c->on_event(c, KW_PX_ABORT);
    }
}

void kw_px_splice_tunnel(kw_px_conn_t *c)
{
    c->backend_up = 1;
    kw_debug("connection: tunnel up");
    c->on_event(c, KW_PX_TUNNEL_UP);
    if (c->worker->proxy->cfg->proxy_protocol) {
        send_proxy_header(c);
    }
    if (c->closing ||
        uv_read_start((uv_stream_t *)&c->backend, kw_px_splice_alloc, on_backend_read) != 0) {
        c->on_event(c, KW_PX_CLOSE);
        return;
    }
    kw_px_splice_client_data(c);
    if (c->client_eof) {
        shut_backend(c);
    } else if (!c->closing && queued(&c->backend) < KW_PROXY_HIGH_WATER) {
        c->on_event(c, KW_PX_RESUME_CLIENT);
    }
}

/* The backend is connected at accept, beside the handshake; a client whose backend cannot be
 * reached is closed before its handshake makes a key operation (KW_PX_BACKEND_READY). */
static void on_connect(uv_connect_t *req, int status)
{
    kw_px_conn_t *c = req->data;
    if (c->closing) {
        return;
    }
    if (status < 0) {
        char addr[64];
        atomic_fetch_add(&c->worker->proxy->stats.backend_failures, 1);
        kw_addr_format((struct sockaddr *)&c->worker->proxy->backend_addr, addr, sizeof(addr));
        kw_warn("cannot connect to backend %s: %s", addr, uv_strerror(status));
        c->on_event(
            c, KW_PX_FINISH); /* before the handshake: only a FIN; after it: close_notify too */
        return;
    }
    c->backend_conn = 1;
    kw_debug("connection: backend connected");
    c->on_event(c, KW_PX_BACKEND_READY);
}

int kw_px_splice_start(kw_px_conn_t *c, kw_px_event_cb on_event)
{
    c->on_event = on_event;
    kw_proxy_t *p = c->worker->proxy;
    (void)uv_tcp_init(&c->worker->loop, &c->backend);
    c->backend.data = c;
    c->backend_init = 1;
    c->handles++;
    (void)uv_tcp_nodelay(&c->backend, 1);
    c->connect_req.data = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->backend, (struct sockaddr *)&p->backend_addr,
                            on_connect);
    if (rc != 0) {
        atomic_fetch_add(&p->stats.backend_failures, 1);
        kw_warn("cannot connect to the backend: %s", uv_strerror(rc));
    }
    return rc;
}
