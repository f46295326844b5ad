/*
 * kw_hard_flood: abusive but protocol-conforming mTLS clients for the key server hardening tests
 * (tests/integration/test_hardening_edge.sh). Each mode measures the key server's resident memory
 * (--rss-pid) at the moments that matter and prints one line per fact:
 *   --inflight N     one connection; write N ECDSA sign requests without reading for --stall-ms
 *                    (the server must stop reading), then read every reply (all N must come back);
 *                    --pad BYTES pads each request (gokeyless clients pad to 1024);
 *   --hold N         open N connections and hold them idle for --hold-ms (optionally each with a
 *                    partial frame: --partial-frame BYTES of a 65,535-byte body); then report how
 *                    many the server closed;
 *   --noread         one connection writes big pings (--payload BYTES, echoed by the server) and
 *                    never reads a reply, for --hold-ms; reports how much it could write.
 * Exit status: 0 done, 1 usage/setup, 2 the server misbehaved (missing/unexpected replies).
 */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "keyward/keyid.h"
#include "keyward/protocol.h"
#include "kw_tool.h"

typedef struct opts_s {
    kw_tool_opts_t t; /* --server --cert --key --ca --key-cert */
    long inflight, pad, hold, stall_ms, hold_ms, partial, payload, rss_pid, timeout_ms;
    int noread;
} opts_t;

typedef struct conn_s {
    int fd;
    SSL *ssl;
} conn_t;

static long now_ms(void)
{
    return (long)(kw_tool_now() * 1000);
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kib(long pid)
{
    char path[64], line[256];
    long kib = -1;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Connects and completes the handshake (blocking), then makes the socket non-blocking. */
static int conn_open(SSL_CTX *ctx, const opts_t *o, conn_t *c)
{
    c->fd = kw_tool_connect(o->t.server, 1);
    c->ssl = kw_tool_handshake(ctx, c->fd, NULL);
    if (c->ssl == NULL) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
        kw_tool_die("fcntl");
    return 0;
}

/* Writes what the socket takes of buf[*off..len) (same arguments on retry, as TLS requires).
 * Returns -1 on a closed connection. */
static int pump_write(conn_t *c, const uint8_t *buf, size_t len, size_t *off, size_t *chunk)
{
    while (*off < len) {
        if (*chunk == 0)
            *chunk = len - *off < 16384 ? len - *off : 16384;
        int n = SSL_write(c->ssl, buf + *off, (int)*chunk);
        if (n > 0) {
            *off += (size_t)n;
            *chunk = 0;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    return 0;
}

static void wait_fd(int fd, short events, int ms)
{
    struct pollfd p = {fd, events, 0};
    (void)poll(&p, 1, ms);
}

/* Frames of n ECDSA-P256 sign requests, ids 1..n. */
static uint8_t *sign_frames(const opts_t *o, long n, size_t *len)
{
    uint8_t digest[KW_DIGEST_LEN], hash[32];
    EVP_PKEY *pub = kw_tool_cert_key(o->t.key_cert, digest);
    if (pub == NULL)
        kw_tool_die("cannot read --key-cert");
    EVP_PKEY_free(pub);
    memset(hash, 0x5a, sizeof(hash));
    kw_msg_t m = {0};
    m.has_opcode = 1;
    m.opcode = KW_OP_ECDSA_SIGN_SHA256;
    m.digest = kw_bytes(digest, sizeof(digest));
    m.payload = kw_bytes(hash, sizeof(hash));
    size_t one = kw_msg_encoded_len(&m);
    if ((size_t)o->pad > one)
        one = (size_t)o->pad;
    uint8_t *buf = malloc(one * (size_t)n);
    if (buf == NULL)
        kw_tool_die("out of memory");
    for (long i = 0; i < n; i++) {
        size_t w = 0;
        m.id = (uint32_t)(i + 1);
        if (kw_msg_encode(&m, (size_t)o->pad, buf + (size_t)i * one, one, &w) != 0 || w != one)
            kw_tool_die("encode");
    }
    *len = one * (size_t)n;
    return buf;
}

/* Reads replies into the reassembly buffer; counts complete frames, marks ids seen. */
typedef struct replies_s {
    uint8_t buf[2 * KW_MAX_FRAME];
    size_t len;
    long count, bad;
    uint8_t *seen; /* by id */
    long max_id;
} replies_t;

static int pump_read(conn_t *c, replies_t *r)
{
    for (;;) {
        int n = SSL_read(c->ssl, r->buf + r->len, (int)(sizeof(r->buf) - r->len));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            ERR_clear_error();
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        r->len += (size_t)n;
        size_t pos = 0;
        kw_header_t h;
        while (kw_header_parse(r->buf + pos, r->len - pos, &h) == 0 &&
               r->len - pos >= KW_HEADER_LEN + (size_t)h.body_len) {
            kw_msg_t m;
            int ok = kw_msg_decode(r->buf + pos + KW_HEADER_LEN, h.body_len, h.id, &m) == 0 &&
                     m.has_opcode && m.opcode == KW_OP_RESPONSE && h.id >= 1 &&
                     (long)h.id <= r->max_id && !r->seen[h.id];
            if (ok)
                r->seen[h.id] = 1;
            else
                r->bad++;
            r->count++;
            pos += KW_HEADER_LEN + h.body_len;
        }
        memmove(r->buf, r->buf + pos, r->len - pos);
        r->len -= pos;
    }
}

static int run_inflight(SSL_CTX *ctx, const opts_t *o)
{
    conn_t c;
    size_t len = 0, off = 0, chunk = 0;
    uint8_t *frames = sign_frames(o, o->inflight, &len);
    long rss0 = rss_kib(o->rss_pid);
    if (conn_open(ctx, o, &c) != 0)
        return 1;
    long t0 = now_ms(), max_rss = rss0;
    while (off < len && now_ms() - t0 < o->stall_ms) { /* phase 1: never read */
        if (pump_write(&c, frames, len, &off, &chunk) != 0)
            kw_tool_die("connection closed while writing");
        long rss = rss_kib(o->rss_pid);
        max_rss = rss > max_rss ? rss : max_rss;
        if (off < len)
            wait_fd(c.fd, POLLOUT, 20);
    }
    printf("stalled %ld ms without reading: wrote %zu of %zu request bytes (%ld of %ld "
           "requests)\n",
           now_ms() - t0, off, len, (long)(off / (len / (size_t)o->inflight)), o->inflight);
    replies_t *r = calloc(1, sizeof(*r));
    r->seen = calloc((size_t)o->inflight + 1, 1);
    r->max_id = o->inflight;
    long t1 = now_ms();
    while (r->count < o->inflight && now_ms() - t1 < o->timeout_ms) { /* phase 2: both */
        if (pump_write(&c, frames, len, &off, &chunk) != 0 || pump_read(&c, r) != 0)
            break;
        long rss = rss_kib(o->rss_pid);
        max_rss = rss > max_rss ? rss : max_rss;
        wait_fd(c.fd, off < len ? POLLIN | POLLOUT : POLLIN, 20);
    }
    printf("replies %ld of %ld, %ld unexpected, in %ld ms\n", r->count, o->inflight, r->bad,
           now_ms() - t1);
    printf("key server rss KiB: before %ld, peak %ld, growth %ld\n", rss0, max_rss, max_rss - rss0);
    return r->count == o->inflight && r->bad == 0 ? 0 : 2;
}

/* Sends the header of a 65,535-byte body and `bytes` of it. */
static void send_partial(conn_t *c, long bytes)
{
    static uint8_t buf[KW_MAX_FRAME];
    size_t len = KW_HEADER_LEN + (size_t)bytes, off = 0, chunk = 0;
    kw_header_write(buf, 0xffff, 1);
    long t0 = now_ms();
    while (off < len && now_ms() - t0 < 5000) {
        if (pump_write(c, buf, len, &off, &chunk) != 0)
            return;
        if (off < len)
            wait_fd(c->fd, POLLOUT, 20);
    }
}

static int run_hold(SSL_CTX *ctx, const opts_t *o)
{
    conn_t *cs = calloc((size_t)o->hold, sizeof(*cs));
    long rss0 = rss_kib(o->rss_pid), opened = 0;
    long t0 = now_ms();
    for (long i = 0; i < o->hold; i++) {
        if (conn_open(ctx, o, &cs[i]) != 0)
            break;
        if (o->partial > 0)
            send_partial(&cs[i], o->partial);
        opened++;
    }
    long rss1 = rss_kib(o->rss_pid);
    printf("opened %ld connections in %ld ms\n", opened, now_ms() - t0);
    printf("key server rss KiB: before %ld, holding %ld, per connection %.1f\n", rss0, rss1,
           opened > 0 ? (double)(rss1 - rss0) / (double)opened : 0.0);
    fflush(stdout);
    usleep((useconds_t)o->hold_ms * 1000);
    long closed = 0;
    for (long i = 0; i < opened; i++) {
        uint8_t b[256];
        int n = SSL_read(cs[i].ssl, b, sizeof(b));
        int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(cs[i].ssl, n);
        ERR_clear_error();
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_NONE)
            closed++;
        SSL_free(cs[i].ssl);
        close(cs[i].fd);
    }
    printf("after %ld ms: %ld of %ld closed by the server; rss KiB %ld\n", o->hold_ms, closed,
           opened, rss_kib(o->rss_pid));
    free(cs);
    return opened == o->hold ? 0 : 2;
}

static int run_noread(SSL_CTX *ctx, const opts_t *o)
{
    conn_t c;
    static uint8_t frame[KW_MAX_FRAME];
    static uint8_t payload[KW_MAX_BODY];
    kw_msg_t m = {0};
    m.has_opcode = 1;
    m.opcode = KW_OP_PING;
    m.payload = kw_bytes(payload, (size_t)o->payload);
    size_t len = 0, off = 0, chunk = 0, total = 0;
    if (kw_msg_encode(&m, 0, frame, sizeof(frame), &len) != 0)
        kw_tool_die("--payload too big");
    long rss0 = rss_kib(o->rss_pid), max_rss = rss0;
    if (conn_open(ctx, o, &c) != 0)
        return 1;
    long t0 = now_ms();
    while (now_ms() - t0 < o->hold_ms) {
        size_t before = off;
        if (pump_write(&c, frame, len, &off, &chunk) != 0) {
            printf("server closed the connection after %ld ms\n", now_ms() - t0);
            break;
        }
        total += off - before;
        if (off == len)
            off = 0;
        long rss = rss_kib(o->rss_pid);
        max_rss = rss > max_rss ? rss : max_rss;
        wait_fd(c.fd, POLLOUT, 50);
    }
    printf("never reading for %ld ms: wrote %zu bytes (%zu pings of %ld bytes)\n", now_ms() - t0,
           total, total / len, o->payload);
    printf("key server rss KiB: before %ld, peak %ld, growth %ld\n", rss0, max_rss, max_rss - rss0);
    SSL_free(c.ssl);
    close(c.fd);
    return 0;
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option lo[] = {KW_TOOL_OPTIONS,
                                       {"inflight", 1, 0, 'i'},
                                       {"hold", 1, 0, 'H'},
                                       {"noread", 0, 0, 'n'},
                                       {"stall-ms", 1, 0, 'S'},
                                       {"hold-ms", 1, 0, 'h'},
                                       {"partial-frame", 1, 0, 'p'},
                                       {"payload", 1, 0, 'P'},
                                       {"rss-pid", 1, 0, 'r'},
                                       {"pad", 1, 0, 'A'},
                                       {"timeout-ms", 1, 0, 't'},
                                       {0, 0, 0, 0}};
    memset(o, 0, sizeof(*o));
    o->stall_ms = 2000;
    o->hold_ms = 2000;
    o->payload = 60000;
    o->timeout_ms = 60000;
    for (;;) {
        int ch = kw_tool_getopt(argc, argv, "", lo, &o->t);
        if (ch == -1)
            break;
        long v = optarg != NULL ? strtol(optarg, NULL, 0) : 0;
        switch (ch) {
        case 'i':
            o->inflight = v;
            break;
        case 'H':
            o->hold = v;
            break;
        case 'n':
            o->noread = 1;
            break;
        case 'S':
            o->stall_ms = v;
            break;
        case 'h':
            o->hold_ms = v;
            break;
        case 'p':
            o->partial = v;
            break;
        case 'P':
            o->payload = v;
            break;
        case 'r':
            o->rss_pid = v;
            break;
        case 't':
            o->timeout_ms = v;
            break;
        case 'A':
            o->pad = v;
            break;
        default:
            kw_tool_die("see the comment at the top of kw_hard_flood.c for the options");
        }
    }
    if (o->t.server == NULL || o->t.ca == NULL || (o->inflight > 0 && o->t.key_cert == NULL))
        kw_tool_die("need --server, --ca (and --key-cert with --inflight)");
    if (o->partial < 0 || o->partial > (long)KW_MAX_BODY - 1 || o->payload < 0 ||
        o->payload > (long)KW_MAX_BODY - 16 || o->pad < 0 || o->pad > 4096)
        kw_tool_die("--partial-frame / --payload out of range");
}

int main(int argc, char **argv)
{
    opts_t o;
    parse_args(argc, argv, &o);
    SSL_CTX *ctx = kw_tool_client_ctx(&o.t);
    int rc = 1;
    if (o.inflight > 0)
        rc = run_inflight(ctx, &o);
    else if (o.hold > 0)
        rc = run_hold(ctx, &o);
    else if (o.noread)
        rc = run_noread(ctx, &o);
    else
        kw_tool_die("choose --inflight N, --hold N or --noread");
    SSL_CTX_free(ctx);
    return rc;
}
