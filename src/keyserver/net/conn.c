/*
 * A key server connection: TLS over libuv through memory BIOs (socket bytes go into rbio, TLS
 * output is taken from wbio), frame reassembly, reply coalescing (replies collect in a plaintext
 * buffer and are written to TLS and the socket once per loop iteration), back-pressure, timeouts.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "engine/request.h"
#include "kw_clock.h"
#include "fleet/authz.h"
#include "net/conn_idle.h"
#include "net/conn_tls.h"
#include "keyward/error.h"
#include "kw_log.h"
#include "kw_addr.h"
#include "kw_frame.h"
#include "net/admit.h"
#include "net/conn.h"

#define KW_IN_INITIAL 16384

typedef struct write_req_s {
    uv_write_t req;
    kw_ks_conn_t *conn;
    size_t len;
    uint8_t data[];
} write_req_t;

static void conn_process(kw_ks_conn_t *c);

/* Queues c for a flush in this loop iteration's check phase (server.c walks the list). */
void kw_ks_conn_schedule(kw_ks_conn_t *c)
{
    kw_ks_server_t *s = c->server;
    if (c->dirty || c->closing)
        return;
    c->dirty = 1;
    c->next_dirty = s->dirty;
    s->dirty = kw_ks_conn_ref(c);
}

kw_ks_conn_t *kw_ks_conn_ref(kw_ks_conn_t *c)
{
    c->refs++;
    return c;
}

void kw_ks_conn_unref(kw_ks_conn_t *c)
{
    if (--c->refs > 0)
        return;
    kw_ks_rate_put(c->p.rate, kw_clock_ns());
    kw_ks_edge_free(c->p.edge);
    SSL_free(c->ssl);
    free(c->refused_cert);
    free(c->in);
    if (c->out != NULL)
        OPENSSL_cleanse(c->out, c->out_cap); /* may hold decrypted secrets */
    free(c->out);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    kw_ks_conn_unref(h->data);
}

void kw_ks_conn_close(kw_ks_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    kw_ks_server_t *s = c->server;
    kw_list_remove(&s->conns, &c->link);
    kw_ks_conn_idle_forget(c);
    kw_ks_admit_leave(&s->admit, &c->adm);
    kw_ks_metrics_connections_add(s->eng.metrics, -1);
    kw_debug("connection %llu from %s closed", (unsigned long long)c->id, c->peer);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* Closes a finishing connection once nothing is left to send. */
static void maybe_finish(kw_ks_conn_t *c)
{
    if (c->finishing && !c->closing && c->p.inflight == 0 && c->out_len == 0 &&
        c->write_bytes == 0 && BIO_ctrl_pending(c->wbio) == 0)
        kw_ks_conn_close(c);
}

void kw_ks_conn_finish(kw_ks_conn_t *c)
{
    if (c->closing)
        return;
    c->finishing = 1;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    kw_ks_conn_schedule(c);
}

static int out_reserve(kw_ks_conn_t *c, size_t extra)
{
    if (c->out_cap - c->out_len >= extra)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap - c->out_len < extra)
        cap *= 2;
    uint8_t *grown = malloc(cap);
    if (grown == NULL)
        return KW_ENOMEM;
    if (c->out != NULL) {
        memcpy(grown, c->out, c->out_len);
        OPENSSL_cleanse(c->out, c->out_cap);
        free(c->out);
    }
    c->out = grown;
    c->out_cap = cap;
    return 0;
}

int kw_ks_conn_reply(kw_ks_conn_t *c, uint32_t id, uint8_t opcode, const uint8_t *payload,
                     size_t len)
{
    size_t need = KW_HEADER_LEN + 2 * KW_ITEM_HDR_LEN + 1 + len;
    size_t wrote = 0;
    if (c->closing)
        return KW_ECLOSED;
    int rc = out_reserve(c, need);
    if (rc == 0)
        rc = kw_reply_encode(id, opcode, payload, len, c->out + c->out_len, need, &wrote);
    if (rc != 0)
        return rc;
    c->out_len += wrote;
    kw_ks_conn_schedule(c);
    return 0;
}

int kw_ks_conn_error(kw_ks_conn_t *c, uint32_t id, uint8_t err)
{
    return kw_ks_conn_reply(c, id, KW_OP_ERROR, &err, 1);
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    kw_ks_conn_t *c = w->conn;
    c->write_bytes -= w->len;
    c->last_active = uv_now(c->server->loop);
    free(w);
    if (status < 0 && !c->closing) {
        kw_debug("connection %llu: write failed: %s", (unsigned long long)c->id,
                 uv_strerror(status));
        kw_ks_conn_close(c);
    } else if (!c->closing) {
        if (!c->reading)
            conn_process(c); /* resumes reading if the backlog was the brake */
        maybe_finish(c);
    }
    kw_ks_conn_unref(c);
}

/* Queues bytes (head: already read from wbio, then the rest of wbio) for a uv_write: the only
 * allocation of a flush, made when the socket did not take everything at once. */
static int queue_write(kw_ks_conn_t *c, const uint8_t *head, size_t head_len)
{
    size_t rest = BIO_ctrl_pending(c->wbio);
    size_t len = head_len + rest;
    write_req_t *w = malloc(sizeof(*w) + len);
    if (w == NULL)
        return KW_ENOMEM;
    if (head_len > 0)
        memcpy(w->data, head, head_len);
    if (rest > 0 && BIO_read(c->wbio, w->data + head_len, (int)rest) != (int)rest) {
        free(w);
        return KW_EIO;
    }
    w->conn = kw_ks_conn_ref(c);
    w->len = len;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        kw_ks_conn_unref(c);
        free(w);
        return KW_ECONN;
    }
    c->write_bytes += len;
    return 0;
}

/* Moves everything TLS produced to the socket: direct writes from the server's scratch buffer
 * (no allocation while the socket keeps up), the rest queued. The scratch is the read buffer,
 * free here: a read is consumed by the rbio before its callback returns, and flushes run in the
 * check phase. */
static int drain_wbio(kw_ks_conn_t *c)
{
    uint8_t *scratch = c->server->read_buf;
    while (BIO_ctrl_pending(c->wbio) > 0) {
        if (c->write_bytes > 0) /* earlier bytes still queued: keep the order */
            return queue_write(c, NULL, 0);
        size_t pending = BIO_ctrl_pending(c->wbio);
        int n = BIO_read(c->wbio, scratch,
                         (int)(pending < KW_READ_BUF_LEN ? pending : KW_READ_BUF_LEN));
        if (n <= 0)
            return KW_EIO;
        uv_buf_t b = uv_buf_init((char *)scratch, (unsigned)n);
        int wr = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (wr == UV_EAGAIN || wr == UV_ENOSYS)
            wr = 0;
        else if (wr < 0)
            return KW_ECONN;
        if (wr < n)
            return queue_write(c, scratch + wr, (size_t)(n - wr));
    }
    return 0;
}

void kw_ks_conn_flush(kw_ks_conn_t *c)
{
    if (c->closing)
        return;
    if (c->out_len > 0 && c->handshake_done) {
        int n = SSL_write(c->ssl, c->out, (int)c->out_len);
        OPENSSL_cleanse(c->out, c->out_len);
        if (n != (int)c->out_len) {
            kw_warn("connection %llu: TLS write failed", (unsigned long long)c->id);
            ERR_clear_error();
            kw_ks_conn_close(c);
            return;
        }
        c->out_len = 0;
    }
    if (drain_wbio(c) != 0) {
        kw_ks_conn_close(c);
        return;
    }
    c->last_active = uv_now(c->server->loop);
    if (!c->closing) {
        if (!c->reading)
            conn_process(c); /* a drained backlog may let reading resume */
        maybe_finish(c);
    }
}

/* ---- reading ---- */

static int over_limit(const kw_ks_conn_t *c)
{
    return c->p.inflight >= c->server->cfg->max_inflight || c->write_bytes > KW_CONN_MAX_BACKLOG ||
           c->out_len > KW_CONN_MAX_BACKLOG;
}

/* Makes room for a whole frame (header already seen: `need` bytes) or a default chunk. */
static int in_reserve(kw_ks_conn_t *c, size_t need)
{
    if (need < KW_IN_INITIAL)
        need = KW_IN_INITIAL;
    if (c->in_cap >= need)
        return 0;
    uint8_t *grown = realloc(c->in, need);
    if (grown == NULL)
        return KW_ENOMEM;
    c->in = grown;
    c->in_cap = need;
    return 0;
}

/* Handles the complete frames in c->in. Returns bytes consumed. */
static size_t handle_frames(kw_ks_conn_t *c, kw_ks_job_batch_t *batch)
{
    size_t pos = 0;
    while (!c->finishing && !c->closing && !over_limit(c) && c->in_len - pos >= KW_HEADER_LEN) {
        kw_header_t h;
        int rc = kw_header_parse(c->in + pos, c->in_len - pos, &h);
        if (rc == KW_EVERSION) {
            kw_warn("connection %llu: protocol version %u.%u refused", (unsigned long long)c->id,
                    h.major, h.minor);
            (void)kw_ks_conn_error(c, h.id, KW_ERR_VERSION_MISMATCH);
            kw_ks_conn_finish(c);
            break;
        }
        size_t frame = KW_HEADER_LEN + (size_t)h.body_len;
        if (rc != 0 || c->in_len - pos < frame)
            break;
        rc = kw_ks_request_handle(&c->server->eng, &c->p, &h, c->in + pos + KW_HEADER_LEN, batch);
        pos += frame;
        if (rc != 0) {
            kw_warn("connection %llu: malformed frame (id %u), closing", (unsigned long long)c->id,
                    h.id);
            kw_ks_conn_finish(c);
        }
    }
    return pos;
}

/* Frame bytes still needed to complete the frame at the start of c->in (0: unknown). */
static size_t frame_need(const kw_ks_conn_t *c)
{
    return kw_frame_need(c->in, c->in_len);
}

/* Pulls plaintext from TLS. Returns 1 when bytes were read, 0 when TLS needs more, <0 to stop. */
static int read_tls(kw_ks_conn_t *c)
{
    if (in_reserve(c, frame_need(c)) != 0)
        return KW_ENOMEM;
    int n = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
    if (n > 0) {
        c->in_len += (size_t)n;
        return 1;
    }
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_READ)
        return 0;
    if (err == SSL_ERROR_ZERO_RETURN) {
        kw_debug("connection %llu: peer closed TLS", (unsigned long long)c->id);
        kw_ks_conn_finish(c);
        return KW_ECLOSED;
    }
    kw_warn("connection %llu from %s: TLS error %d, closing", (unsigned long long)c->id, c->peer,
            err);
    ERR_clear_error();
    kw_ks_conn_close(c);
    return KW_ETLS;
}

static void update_reading(kw_ks_conn_t *c);
static void on_timer(uv_timer_t *t);

/* Slowloris: a frame must complete within --frame-timeout-ms of its first byte. A frame is under
 * way while plaintext waits in c->in or TLS holds part of a record; its clock starts when the
 * previous frame was consumed (or the first byte came), and stops while reading is paused (the
 * server is then the slow side). The connection's timer is brought forward to the deadline. */
static void track_frame(kw_ks_conn_t *c, int consumed)
{
    int partial = c->in_len > 0 || BIO_ctrl_pending(c->rbio) > 0 || SSL_has_pending(c->ssl);
    if (!partial || !c->reading || c->closing || c->finishing) {
        c->frame_start = 0;
        return;
    }
    if (c->frame_start != 0 && !consumed)
        return;
    uint64_t limit = c->server->cfg->frame_timeout_ms;
    c->frame_start = uv_now(c->server->loop);
    if (limit > 0 && uv_timer_get_due_in(&c->timer) > limit)
        uv_timer_start(&c->timer, on_timer, limit, 0);
}

static void conn_process(kw_ks_conn_t *c)
{
    kw_ks_job_batch_t batch = {NULL, NULL, 0};
    int consumed = 0;
    if (!c->handshake_done)
        return;
    for (;;) {
        size_t used = handle_frames(c, &batch);
        if (used > 0) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            consumed = 1;
        }
        if (c->closing || c->finishing || over_limit(c))
            break;
        if (c->in_len >= frame_need(c))
            continue;
        if (read_tls(c) <= 0)
            break;
    }
    kw_ks_workers_submit(&c->server->eng.workers, batch.head, batch.tail, batch.count);
    if (!c->closing && BIO_ctrl_pending(c->wbio) > 0)
        kw_ks_conn_schedule(c); /* TLS may have produced output (key update) */
    update_reading(c);
    track_frame(c, consumed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    kw_ks_conn_t *c = h->data;
    (void)suggested;
    buf->base = (char *)c->server->read_buf;
    buf->len = sizeof(c->server->read_buf);
}

static void handshake(kw_ks_conn_t *c);

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    kw_ks_conn_t *c = st->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            kw_debug("connection %llu: read error: %s", (unsigned long long)c->id,
                     uv_strerror((int)nread));
        if (nread == UV_EOF && c->handshake_done)
            kw_ks_conn_finish(c); /* answer what is in flight, then close */
        else
            kw_ks_conn_close(c);
        return;
    }
    c->last_active = uv_now(c->server->loop);
    kw_ks_conn_idle_note(c); /* buffers are (re)allocated from here on */
    if (BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
        kw_ks_conn_close(c);
        return;
    }
    if (c->handshake_done)
        conn_process(c);
    else
        handshake(c);
}

static void update_reading(kw_ks_conn_t *c)
{
    int want = !c->closing && !c->finishing && !over_limit(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ---- handshake and timers ---- */

static void on_timer(uv_timer_t *t)
{
    kw_ks_conn_t *c = t->data;
    const kw_ks_config_t *cfg = c->server->cfg;
    if (c->closing)
        return;
    if (!c->handshake_done) {
        kw_warn("connection %llu from %s: no TLS handshake within %llu ms, closing",
                (unsigned long long)c->id, c->peer, (unsigned long long)cfg->handshake_timeout_ms);
        kw_ks_conn_close(c);
        return;
    }
    uint64_t now = uv_now(c->server->loop);
    if (c->p.inflight > 0)
        c->last_active = now; /* the server is the slow side: not idle */
    /* A client that stops reading makes no progress on its writes (on_write refreshes
     * last_active), so it is cut like any idle client. */
    uint64_t idle = now - c->last_active;
    if (idle >= cfg->idle_timeout_ms) {
        kw_debug("connection %llu from %s: idle for %llu ms, closing", (unsigned long long)c->id,
                 c->peer, (unsigned long long)idle);
        kw_ks_conn_close(c);
        return;
    }
    uint64_t next = cfg->idle_timeout_ms - idle;
    if (c->frame_start != 0 && cfg->frame_timeout_ms > 0) {
        uint64_t age = now - c->frame_start;
        if (age >= cfg->frame_timeout_ms) {
            kw_warn("connection %llu from %s: frame not complete within %llu ms of its first "
                    "byte (a slow or stalled client), closing",
                    (unsigned long long)c->id, c->peer, (unsigned long long)cfg->frame_timeout_ms);
            kw_ks_conn_close(c);
            return;
        }
        if (cfg->frame_timeout_ms - age < next)
            next = cfg->frame_timeout_ms - age;
    }
    uv_timer_start(&c->timer, on_timer, next, 0);
}

static void log_peer(kw_ks_conn_t *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    char subject[256] = "?";
    if (peer != NULL)
        X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
    kw_debug("connection %llu from %s: %s, client %s", (unsigned long long)c->id, c->peer,
             SSL_get_version(c->ssl), subject);
}

static void handshake(kw_ks_conn_t *c)
{
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->handshake_done = 1;
        log_peer(c);
        kw_ks_server_t *s = c->server;
        if (kw_ks_admit_edge(&s->admit, s->cfg, uv_now(s->loop), &c->adm) != 0) {
            kw_ks_conn_close(c);
            return;
        }
        c->p.edge = kw_ks_edge_new(s->eng.fleet.authz, c->ssl);
        if (c->p.edge == NULL) {
            kw_ks_conn_close(c);
            return;
        }
        c->p.rate = kw_ks_rate_get(s->eng.rate, c->p.edge->spki, kw_clock_ns());
        uv_timer_start(&c->timer, on_timer, c->server->cfg->idle_timeout_ms, 0);
        kw_ks_conn_schedule(c);
        conn_process(c);
        return;
    }
    int err = SSL_get_error(c->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (BIO_ctrl_pending(c->wbio) > 0)
            kw_ks_conn_schedule(c);
        return;
    }
    char reason[256];
    unsigned long e = ERR_peek_last_error();
    ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    kw_warn("connection %llu from %s: TLS handshake failed: %s", (unsigned long long)c->id, c->peer,
            c->refused_cert != NULL ? c->refused_cert
            : e != 0                ? reason
                                    : "peer closed");
    kw_ks_conn_finish(c); /* send the alert, then close */
}

/* Accepts and closes at once (too many connections, or out of memory). */
static void refuse(kw_ks_server_t *s)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t == NULL || uv_tcp_init(s->loop, t) != 0) {
        free(t);
        return;
    }
    (void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

void kw_ks_conn_accept(kw_ks_server_t *s)
{
    kw_ks_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        refuse(s);
        return;
    }
    c->server = s;
    c->refs = 1; /* the tcp handle */
    c->tcp.data = c;
    c->id = ++s->next_conn_id;
    c->p.type = &kw_ks_conn_peer_type;
    c->p.id = c->id;
    c->p.name = c->peer;
    c->p.jobs = &c->jobs;
    c->adm.id = c->id;
    c->adm.name = c->peer;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->refs++; /* the timer handle */
    kw_list_push_front(&s->conns, &c->link);
    kw_ks_metrics_connections_add(s->eng.metrics, 1);
    kw_ks_conn_describe_peer(c);
    kw_debug("connection %llu from %s opened", (unsigned long long)c->id, c->peer);
    kw_ks_admit_entry_t *victims[KW_KS_ADMIT_MAX_EVICT];
    size_t n_victims = kw_ks_admit_handshake(&s->admit, s->cfg, uv_now(s->loop), &c->adm, victims);
    for (size_t i = 0; i < n_victims; i++) /* older handshaking connections, never this one */
        kw_ks_conn_close(KW_CONTAINER_OF(victims[i], kw_ks_conn_t, adm));
    uv_tcp_nodelay(&c->tcp, 1);
    if (kw_ks_conn_setup_tls(c) != 0) {
        kw_ks_conn_close(c);
        return;
    }
    c->last_active = uv_now(s->loop);
    uv_timer_start(&c->timer, on_timer, s->cfg->handshake_timeout_ms, 0);
    update_reading(c);
}
