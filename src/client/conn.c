/*
 * One connection from the client to a key server (kwc_conn.h): non-blocking TCP connect, TLS
 * handshake verifying the server's certificate against the CA and the server's name or IP, frames
 * written in batches (one SSL_write run per flush for everything queued), and replies read and
 * handed on frame by frame. Reports open, frame and lost through its owner's callbacks.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "kw_tls.h"
#include "kw_frame.h"
#include "kwc_conn.h"
#include "kwc_sock_bio.h"

/* A failure's phrase, and the part of it that comes from TLS. */
#define KWC_WHY_MAX    560
#define KWC_REASON_MAX 480

static void on_io(kwc_io_t *io, uint32_t events)
{
    kwc_conn_event((kwc_conn_t *)io, events); /* io is the first member */
}

void kwc_conn_init(kwc_conn_t *conn, kwc_poller_t *poller, SSL_CTX *ssl_ctx,
                   const kwc_conn_cbs_t *cbs, void *data)
{
    memset(conn, 0, sizeof(*conn));
    kwc_io_init(&conn->io, on_io, -1);
    conn->state = KWC_CONN_IDLE;
    conn->poller = poller;
    conn->ssl_ctx = ssl_ctx;
    conn->cbs = cbs;
    conn->data = data;
}

/* Closes socket and TLS state; keeps buffers (emptied, plaintext cleansed). */
static void close_socket(kwc_conn_t *conn, int graceful)
{
    if (conn->ssl != NULL) {
        if (graceful && conn->state == KWC_CONN_OPEN)
            SSL_shutdown(conn->ssl); /* best effort close_notify; never waits */
        SSL_free(conn->ssl);
        conn->ssl = NULL;
    }
    if (conn->io.fd >= 0) {
        kwc_poller_forget(conn->poller, &conn->io);
        close(conn->io.fd);
        conn->io.fd = -1;
    }
    conn->gen++;
    if (conn->rbuf != NULL)
        OPENSSL_cleanse(conn->rbuf, conn->rlen);
    conn->rlen = 0;
    conn->wlen = 0;
    conn->woff = 0;
    conn->dirty = 0;
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
    char why[KWC_WHY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    close_socket(conn, 0);
    conn->cbs->lost(conn, err, 0, why);
}

void kwc_conn_abandon(kwc_conn_t *conn)
{
    if (conn->io.fd >= 0)
        close(conn->io.fd);
    conn->io.fd = -1;
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

void kwc_conn_start(kwc_conn_t *conn, const kw_srv_addr_t *addr)
{
    conn->addr = addr;
    if (!buffers_ready(conn)) {
        kwc_conn_fail(conn, KW_ENOMEM, "out of memory");
        return;
    }
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        kwc_conn_fail(conn, KW_ECONN, "socket: %s", strerror(errno));
        return;
    }
    conn->io.fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0 && errno != EINPROGRESS) {
        kwc_conn_fail(conn, KW_ECONN, "connect: %s", strerror(errno));
        return;
    }
    conn->state = KWC_CONN_TCP;
    if (kwc_poller_watch(conn->poller, &conn->io, KWC_IO_WRITE) != 0)
        kwc_conn_fail(conn, KW_EIO, "epoll: %s", strerror(errno));
}

static void watch(kwc_conn_t *conn, uint32_t events)
{
    if (kwc_poller_watch(conn->poller, &conn->io, events) != 0)
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
    char why[KWC_REASON_MAX];
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(conn->ssl);
    if (r == 1) {
        conn->state = KWC_CONN_OPEN;
        watch(conn, KWC_IO_READ);
        if (conn->state == KWC_CONN_OPEN)
            conn->cbs->open(conn);
        return;
    }
    int e = SSL_get_error(conn->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        watch(conn, KWC_IO_READ);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        watch(conn, KWC_IO_READ | KWC_IO_WRITE);
    } else {
        tls_reason(conn, e, why, sizeof(why));
        kwc_conn_fail(conn, KW_ETLS, "TLS handshake: %s", why);
    }
}

/* The TCP connection is established (or failed): start TLS. */
static void connected(kwc_conn_t *conn)
{
    const kw_srv_addr_t *a = conn->addr;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(conn->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr != 0) {
        kwc_conn_fail(conn, KW_ECONN, "connect: %s", strerror(soerr));
        return;
    }
    conn->ssl = SSL_new(conn->ssl_ctx);
    BIO *bio = conn->ssl != NULL ? kwc_sock_bio_new(conn->io.fd) : NULL;
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

/* Handles every complete frame in the read buffer (kw_frame), then drops them, cleansing what
 * held replies. Returns -1 when the connection closed. */
static int parse_frames(kwc_conn_t *conn)
{
    kw_reader_t r;
    kw_header_t h;
    const uint8_t *body = NULL;
    unsigned gen = conn->gen;
    int rc;
    kw_reader_init(&r, conn->rbuf, conn->rlen);
    for (;;) {
        rc = kw_frame_next(&r, &h, &body);
        if (rc != 1)
            break;
        conn->cbs->frame(conn, h.id, body, h.body_len);
        if (conn->gen != gen)
            return -1; /* closed by the owner */
    }
    if (rc != 0) {
        kwc_conn_fail(conn, KW_EVERSION, "reply with protocol version %u.%u, not 1.x", h.major,
                      h.minor);
        return -1;
    }
    kw_frame_consume(conn->rbuf, &conn->rlen, kw_reader_offset(&r));
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

/* The peer closed an open connection: reported as such, the owner decides whether that was a
 * failure (its idle timeout is not). */
static void closed_by_peer(kwc_conn_t *conn, int ssl_err)
{
    char why[KWC_REASON_MAX];
    int err = KW_ECONN;
    if (ssl_err == SSL_ERROR_ZERO_RETURN) {
        snprintf(why, sizeof(why), "the key server closed the connection");
    } else {
        tls_reason(conn, ssl_err, why, sizeof(why));
        if (ssl_err == SSL_ERROR_SSL)
            err = KW_ETLS;
    }
    ERR_clear_error();
    close_socket(conn, 0);
    conn->cbs->lost(conn, err, 1, why);
}

static void do_read(kwc_conn_t *conn)
{
    char why[KWC_REASON_MAX];
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
            watch(conn, KWC_IO_READ | KWC_IO_WRITE);
            return;
        }
        if (peer_closed(e)) {
            closed_by_peer(conn, e);
            return;
        }
        tls_reason(conn, e, why, sizeof(why));
        kwc_conn_fail(conn, e == SSL_ERROR_SSL ? KW_ETLS : KW_ECONN, "%s", why);
        return;
    }
}

int kwc_conn_queue(kwc_conn_t *conn, const uint8_t *frame, size_t len, uint32_t id)
{
    if (len < KW_HEADER_LEN || len - KW_HEADER_LEN > UINT16_MAX)
        return KW_EINVAL;
    if (conn->woff == conn->wlen) {
        conn->woff = 0;
        conn->wlen = 0;
    }
    if (conn->wlen + len > conn->wcap) {
        size_t cap = conn->wcap > 0 ? conn->wcap * 2 : 16384; /* no buffer before the start */
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
    kw_header_write(dst, (uint16_t)(len - KW_HEADER_LEN), id); /* the same header, this try's id */
    conn->wlen += len;
    conn->dirty = 1;
    return 0;
}

void kwc_conn_flush(kwc_conn_t *conn)
{
    char why[KWC_REASON_MAX];
    conn->dirty = 0;
    if (conn->state != KWC_CONN_OPEN || conn->ssl == NULL)
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
            watch(conn, KWC_IO_READ | KWC_IO_WRITE);
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
    watch(conn, KWC_IO_READ);
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
    case KWC_CONN_OPEN:
        do_read(conn); /* also on KWC_IO_WRITE: a read may have been waiting to write */
        if (conn->state == KWC_CONN_OPEN && (events & KWC_IO_WRITE) != 0)
            kwc_conn_flush(conn);
        return;
    }
}
