/*
 * One connection from the client to a key server: non-blocking TCP connect, TLS handshake
 * verifying the server's certificate against the CA and the server's name or IP, a health ping
 * before the connection takes requests, frames written in batches (one SSL_write run per loop
 * turn for everything queued), and replies read and matched as they arrive. A failure closes the
 * socket, puts the server into exponential backoff, and hands its requests back to dispatch.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "kw_tls.h"
#include "kwc_balance.h"
#include "kwc_internal.h"

static kwc_core_t *core_of(const kwc_conn_t *conn)
{
    return conn->server->core;
}

void kwc_conn_init(kwc_conn_t *conn, kwc_server_t *server)
{
    memset(conn, 0, sizeof(*conn));
    conn->server = server;
    conn->fd = -1;
    conn->state = KWC_CONN_IDLE;
}

/* Closes socket and TLS state; keeps buffers (emptied, plaintext cleansed). */
static void close_socket(kwc_conn_t *conn, int graceful)
{
    if (conn->ssl != NULL) {
        if (graceful && conn->state >= KWC_CONN_PROBE)
            SSL_shutdown(conn->ssl); /* best effort close_notify; never waits */
        SSL_free(conn->ssl);
        conn->ssl = NULL;
    }
    if (conn->fd >= 0) {
        /* Remove explicitly: a child between fork() and exec() may still share the socket. */
        if (conn->events != 0)
            epoll_ctl(core_of(conn)->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
        close(conn->fd);
        conn->fd = -1;
    }
    conn->events = 0;
    conn->led = 0;
    conn->gen++;
    if (conn->rbuf != NULL)
        OPENSSL_cleanse(conn->rbuf, conn->rlen);
    conn->rlen = 0;
    conn->wlen = 0;
    conn->woff = 0;
    conn->state = KWC_CONN_IDLE;
}

void kwc_conn_close(kwc_conn_t *conn)
{
    close_socket(conn, 1);
}

void kwc_conn_destroy(kwc_conn_t *conn)
{
    close_socket(conn, 0);
    if (conn->rbuf != NULL)
        OPENSSL_cleanse(conn->rbuf, KWC_RBUF_SIZE);
    free(conn->rbuf);
    free(conn->wbuf);
    conn->rbuf = NULL;
    conn->wbuf = NULL;
    conn->wcap = 0;
}

void kwc_conn_fail(kwc_conn_t *conn, int err, const char *fmt, ...)
{
    kwc_server_t *s = conn->server;
    kwc_core_t *core = s->core;
    char why[KWC_ERR_MAX - 80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    int was_up = conn->state == KWC_CONN_UP;
    close_socket(conn, 0);
    s->failures++;
    s->backoff_ms = kw_lb_backoff_next(s->backoff_ms);
    core->rnd = core->rnd * 1103515245u + 12345u;
    uint32_t delay = kw_lb_jitter(s->backoff_ms, core->rnd >> 8);
    s->retry_us = core->now_us + (uint64_t)delay * 1000u;
    s->failed_us = core->now_us;
    kwc_core_set_error(core, "%s: %s", s->addr->label, why);
    if (was_up)
        kw_warn("keyward client: key server %s: %s; retrying in %u ms", s->addr->label, why, delay);
    else
        kw_debug("keyward client: key server %s: %s; retrying in %u ms", s->addr->label, why,
                 delay);
    kwc_dispatch_conn_lost(conn, err);
    kwc_dispatch_connect_failed(core, err);
}

void kwc_conn_up(kwc_conn_t *conn)
{
    kwc_server_t *s = conn->server;
    kwc_core_t *core = s->core;
    if (s->failures > 0 && s->backoff_ms > 0)
        kw_info("keyward client: key server %s is back", s->addr->label);
    conn->state = KWC_CONN_UP;
    core->ever_up = 1;
    s->backoff_ms = 0;
    s->ewma_us = 0; /* unknown again: the server gets a share of the load at once */
    s->last_rx_us = core->now_us;
    kwc_dispatch_pending(core);
}

static int buffers_ready(kwc_conn_t *conn)
{
    if (conn->rbuf == NULL)
        conn->rbuf = malloc(KWC_RBUF_SIZE);
    if (conn->wbuf == NULL) {
        conn->wcap = 16384;
        conn->wbuf = malloc(conn->wcap);
    }
    return conn->rbuf != NULL && conn->wbuf != NULL;
}

void kwc_conn_start(kwc_conn_t *conn)
{
    kwc_core_t *core = core_of(conn);
    const kw_srv_addr_t *a = conn->server->addr;
    conn->deadline_us = core->now_us + (uint64_t)core->connect_ms * 1000u;
    if (!buffers_ready(conn)) {
        kwc_conn_fail(conn, KW_ENOMEM, "out of memory");
        return;
    }
    conn->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (conn->fd < 0) {
        kwc_conn_fail(conn, KW_ECONN, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(conn->fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
        kwc_conn_fail(conn, KW_ECONN, "connect: %s", strerror(errno));
        return;
    }
    conn->state = KWC_CONN_TCP;
    if (kwc_core_watch(core, conn, EPOLLOUT) != 0)
        kwc_conn_fail(conn, KW_EIO, "epoll: %s", strerror(errno));
}

static void watch(kwc_conn_t *conn, uint32_t events)
{
    if (kwc_core_watch(core_of(conn), conn, events) != 0)
        kwc_conn_fail(conn, KW_EIO, "epoll: %s", strerror(errno));
}

/* An alert the key server sent us (OpenSSL reports a received alert as reason 1000 + its code). */
static int peer_alert(unsigned long e)
{
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET;
}

/* Why a TLS call failed, as a phrase naming the side that refused (drains the error queue). */
static void tls_reason(kwc_conn_t *conn, int ssl_err, char *buf, size_t len)
{
    long verify = SSL_get_verify_result(conn->ssl);
    unsigned long e = ERR_peek_error();
    if (verify != X509_V_OK) {
        ERR_clear_error();
        snprintf(buf, len,
                 "the key server's certificate was not accepted: %s (check the CA file and the "
                 "server's name)",
                 X509_verify_cert_error_string(verify));
    } else if (ssl_err == SSL_ERROR_SYSCALL && e == 0) {
        snprintf(buf, len, "%s", errno != 0 ? strerror(errno) : "connection closed by the peer");
    } else if (peer_alert(e)) {
        const char *r = ERR_reason_error_string(e);
        ERR_clear_error();
        snprintf(buf, len,
                 "the key server refused us (TLS alert: %s): check this edge's certificate and "
                 "key, and that the CA the key server trusts signed them",
                 r != NULL ? r : "unknown");
    } else {
        kw_tls_error("", buf, len);
    }
}

static void handshake(kwc_conn_t *conn)
{
    char why[KWC_ERR_MAX - 160];
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(conn->ssl);
    if (r == 1) {
        conn->state = KWC_CONN_PROBE;
        /* The probe gets its own connect_ms: with a far server (a 1.8 s round trip) the TLS
         * handshake and the probe each fit, their sum would not. */
        conn->deadline_us = core_of(conn)->now_us + (uint64_t)core_of(conn)->connect_ms * 1000u;
        watch(conn, EPOLLIN);
        if (conn->state == KWC_CONN_PROBE)
            kwc_send_ping(conn, core_of(conn)->connect_ms);
        return;
    }
    int e = SSL_get_error(conn->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        watch(conn, EPOLLIN);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        watch(conn, EPOLLIN | EPOLLOUT);
    } else {
        tls_reason(conn, e, why, sizeof(why));
        kwc_conn_fail(conn, KW_ETLS, "TLS handshake: %s", why);
    }
}

/* The TCP connection is established (or failed): start TLS. */
static void connected(kwc_conn_t *conn)
{
    const kw_srv_addr_t *a = conn->server->addr;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr != 0) {
        kwc_conn_fail(conn, KW_ECONN, "connect: %s", strerror(soerr));
        return;
    }
    conn->ssl = SSL_new(core_of(conn)->ssl_ctx);
    BIO *bio = conn->ssl != NULL ? kwc_sock_bio_new(conn->fd) : NULL;
    if (bio == NULL) {
        kwc_conn_fail(conn, KW_ETLS, "cannot create a TLS connection");
        return;
    }
    SSL_set_bio(conn->ssl, bio, bio); /* one reference, for reading and writing */
    int ok;
    if (a->host_is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), a->host) == 1;
    } else {
        ok = SSL_set1_host(conn->ssl, a->host) == 1 &&
             SSL_set_tlsext_host_name(conn->ssl, a->host) == 1;
    }
    if (!ok) {
        kwc_conn_fail(conn, KW_ETLS, "cannot set the name to verify (%s)", a->host);
        return;
    }
    SSL_set_connect_state(conn->ssl);
    conn->state = KWC_CONN_TLS;
    handshake(conn);
}

/* Drops the first n bytes of the read buffer, cleansing what held replies. */
static void consume(kwc_conn_t *conn, size_t n)
{
    if (n == 0)
        return;
    size_t rest = conn->rlen - n;
    memmove(conn->rbuf, conn->rbuf + n, rest);
    OPENSSL_cleanse(conn->rbuf + rest, n);
    conn->rlen = rest;
}

/* Handles every complete frame in the read buffer. Returns -1 when the connection failed. */
static int parse_frames(kwc_conn_t *conn)
{
    size_t off = 0;
    while (conn->rlen - off >= KW_HEADER_LEN) {
        kw_header_t h;
        if (kw_header_parse(conn->rbuf + off, conn->rlen - off, &h) != 0) {
            kwc_conn_fail(conn, KW_EVERSION, "reply with protocol version %u.%u, not 1.x", h.major,
                          h.minor);
            return -1;
        }
        size_t need = KW_HEADER_LEN + (size_t)h.body_len;
        if (conn->rlen - off < need)
            break;
        kwc_dispatch_reply(conn, h.id, conn->rbuf + off + KW_HEADER_LEN, h.body_len);
        if (conn->state < KWC_CONN_PROBE)
            return -1;
        off += need;
    }
    consume(conn, off);
    return 0;
}

/* SSL_read's error for a peer that closed: close_notify, a bare EOF (OpenSSL 3: "unexpected eof
 * while reading"), or EOF with nothing else said. */
static int peer_closed(int ssl_err)
{
    unsigned long e = ERR_peek_error();
    return ssl_err == SSL_ERROR_ZERO_RETURN || (ssl_err == SSL_ERROR_SYSCALL && e == 0) ||
           (ssl_err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

/* The key server closed a connection with nothing in flight (its idle timeout: without the I/O
 * thread nobody pings idle connections). Not a failure: reconnect at once, without backoff. */
static void idle_closed(kwc_conn_t *conn)
{
    kwc_server_t *s = conn->server;
    ERR_clear_error();
    close_socket(conn, 0);
    s->retry_us = s->core->now_us;
    kw_debug("keyward client: key server %s closed an idle connection; reconnecting",
             s->addr->label);
}

static void do_read(kwc_conn_t *conn)
{
    char why[KWC_ERR_MAX - 160];
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(conn->ssl, conn->rbuf + conn->rlen, (int)(KWC_RBUF_SIZE - conn->rlen));
        if (n > 0) {
            conn->rlen += (size_t)n;
            if (parse_frames(conn) != 0)
                return;
            if (!SSL_has_pending(conn->ssl))
                return; /* all read (read-ahead): the next read() would only say EAGAIN */
            continue;
        }
        int e = SSL_get_error(conn->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_WANT_WRITE) {
            watch(conn, EPOLLIN | EPOLLOUT);
            return;
        }
        if (peer_closed(e) && conn->state == KWC_CONN_UP && conn->inflight.n == 0) {
            idle_closed(conn);
            return;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            kwc_conn_fail(conn, KW_ECONN, "the key server closed the connection");
            return;
        }
        tls_reason(conn, e, why, sizeof(why));
        kwc_conn_fail(conn, e == SSL_ERROR_SSL ? KW_ETLS : KW_ECONN, "%s", why);
        return;
    }
}

int kwc_conn_queue(kwc_conn_t *conn, const uint8_t *frame, size_t len, uint32_t id)
{
    kwc_core_t *core = core_of(conn);
    if (conn->woff == conn->wlen) {
        conn->woff = 0;
        conn->wlen = 0;
    }
    if (conn->wlen + len > conn->wcap) {
        size_t cap = conn->wcap * 2;
        while (cap < conn->wlen + len)
            cap *= 2;
        uint8_t *b = realloc(conn->wbuf, cap);
        if (b == NULL)
            return KW_ENOMEM;
        conn->wbuf = b;
        conn->wcap = cap;
    }
    uint8_t *dst = conn->wbuf + conn->wlen;
    memcpy(dst, frame, len);
    dst[4] = (uint8_t)(id >> 24);
    dst[5] = (uint8_t)(id >> 16);
    dst[6] = (uint8_t)(id >> 8);
    dst[7] = (uint8_t)id;
    conn->wlen += len;
    if (!conn->dirty) {
        conn->dirty = 1;
        conn->next_dirty = core->dirty;
        core->dirty = conn;
    }
    return 0;
}

void kwc_conn_flush(kwc_conn_t *conn)
{
    char why[KWC_ERR_MAX - 160];
    if (conn->state < KWC_CONN_PROBE || conn->ssl == NULL)
        return;
    while (conn->woff < conn->wlen) {
        size_t left = conn->wlen - conn->woff;
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(conn->ssl, conn->wbuf + conn->woff, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0) {
            conn->woff += (size_t)n;
            continue;
        }
        int e = SSL_get_error(conn->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE) {
            watch(conn, EPOLLIN | EPOLLOUT);
            return;
        }
        if (e == SSL_ERROR_WANT_READ)
            return;
        tls_reason(conn, e, why, sizeof(why));
        kwc_conn_fail(conn, e == SSL_ERROR_SSL ? KW_ETLS : KW_ECONN, "write: %s", why);
        return;
    }
    conn->woff = 0;
    conn->wlen = 0;
    watch(conn, EPOLLIN);
}

void kwc_conn_event(kwc_conn_t *conn, uint32_t events)
{
    switch (conn->state) {
    case KWC_CONN_IDLE:
        return; /* stale event of a closed socket */
    case KWC_CONN_TCP:
        connected(conn);
        return;
    case KWC_CONN_TLS:
        handshake(conn);
        return;
    case KWC_CONN_PROBE:
    case KWC_CONN_UP:
        do_read(conn); /* also on EPOLLOUT: a read may have been waiting to write */
        if (conn->state >= KWC_CONN_PROBE && (events & EPOLLOUT))
            kwc_conn_flush(conn);
        return;
    }
}

/* 1 when a server other than s is up (could take s's requests). */
static int other_usable(const kwc_core_t *core, const kwc_server_t *s)
{
    for (size_t i = 0; i < core->n_servers; i++) {
        if (&core->servers[i] != s && core->servers[i].conn.state == KWC_CONN_UP)
            return 1;
    }
    return 0;
}

void kwc_server_tick(kwc_server_t *s)
{
    kwc_conn_t *conn = &s->conn;
    kwc_core_t *core = s->core;
    uint64_t now = core->now_us;
    switch (conn->state) {
    case KWC_CONN_IDLE:
        if (now >= s->retry_us)
            kwc_conn_start(conn);
        return;
    case KWC_CONN_TCP:
    case KWC_CONN_TLS:
    case KWC_CONN_PROBE:
        if (now >= conn->deadline_us)
            kwc_conn_fail(conn, KW_ETIMEDOUT, "%s timed out after %u ms",
                          conn->state == KWC_CONN_TCP   ? "TCP connect"
                          : conn->state == KWC_CONN_TLS ? "TLS handshake"
                                                        : "health ping",
                          core->connect_ms);
        return;
    case KWC_CONN_UP: {
        /* A server silent for a try is given up on only when another can take its requests;
         * the only one is waited for up to the whole timeout (it may just be far away). */
        uint32_t stall_ms = other_usable(core, s) ? core->try_ms : core->timeout_ms;
        if (conn->inflight.n > 0 && now - conn->progress_us > (uint64_t)stall_ms * 1000u) {
            kwc_conn_fail(conn, KW_ETIMEDOUT, "no reply for %u ms: the server seems stalled",
                          stall_ms);
            return;
        }
        if (conn->inflight.n == 0 && !conn->ping_out &&
            now - s->last_rx_us >= (uint64_t)KWC_IDLE_PING_MS * 1000u)
            kwc_send_ping(conn, core->try_ms);
        return;
    }
    }
}
