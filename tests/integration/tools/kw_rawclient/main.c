/*
 * kw_rawclient: a small mutual-TLS KWP client for tests and benchmarks. It sends hand-made frames
 * (or arbitrary bytes, with or without TLS) to a key server and prints what comes back, so tests
 * can drive every opcode and every malformed input. --bench keeps N requests in flight on each of
 * M connections for S seconds and prints the throughput.
 *
 * Exit status: 0 success (or the expected error / close), 1 usage or setup, 3 unexpected error
 * reply, 4 connection closed or failed, 5 handshake refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "keyward/keyid.h"
#include "keyward/protocol.h"
#include "kw_tls.h"
#include "kw_tool.h"
#include "kw_hex.h"
#include "rawclient.h"

static uint8_t *hex_arg(const char *hex, size_t *len)
{
    uint8_t *out = kw_tool_unhex(hex, len);
    if (out == NULL)
        kw_tool_die("bad hex argument");
    return out;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        kw_tool_die("cannot open payload file");
    uint8_t *buf = malloc(KW_MAX_FRAME);
    *len = fread(buf, 1, KW_MAX_FRAME, f);
    fclose(f);
    return buf;
}

static void digest_of_cert(const char *path, opts_t *o)
{
    EVP_PKEY *pub = kw_tool_cert_key(path, o->digest);
    if (pub == NULL)
        kw_tool_die("cannot read --key-cert certificate");
    EVP_PKEY_free(pub);
    o->has_digest = 1;
}

static uint8_t parse_opcode(const char *s)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 0);
    if (*end == '\0' && v <= 255)
        return (uint8_t)v;
    for (unsigned i = 0; i < 256; i++)
        if (strcmp(kw_opcode_name((uint8_t)i), s) == 0)
            return (uint8_t)i;
    kw_tool_die("unknown --op (a number like 0x05 or a name like rsa-sign-sha256)");
    return 0;
}

static void usage(void)
{
    printf("usage: kw_rawclient --server HOST:PORT [--cert F --key F] --ca F [options]\n"
           "  --op OPCODE            number (0x05) or name; default ping\n"
           "  --key-digest HEX | --ski HEX | --sni NAME | --key-cert CERT   key id items\n"
           "  --payload-file F | --payload-hex HEX   payload item; --extra-hex HEX extra item\n"
           "  --pad N                pad frames to N bytes (gokeyless clients use 1024)\n"
           "  --id N                 request id (default 1)\n"
           "  --hops N               hop-limit item (0xC4); --client-ip IP: item 0x03\n"
           "  --raw-hex HEX          send these bytes instead of a frame\n"
           "  --plain                no TLS (with --raw-hex: send bytes over bare TCP)\n"
           "  --silent               connect and send nothing; report when the server closes\n"
           "  --expect-close         success when the server closes (a reply before is printed)\n"
           "  --no-wait              send, then close at once without reading replies\n"
           "  --expect-error CODE    success only when the reply is this error code\n"
           "  --count N --inflight N send N requests, keeping M in flight\n"
           "  --out FILE             write the reply payload to FILE (else print hex)\n"
           "  --timeout-ms MS        reply timeout (default 5000)\n"
           "  --bench --connections M --inflight N --seconds S   throughput run\n");
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option lo[] = {KW_TOOL_OPTIONS,
                                       {"op", 1, 0, 'o'},
                                       {"key-digest", 1, 0, 'd'},
                                       {"ski", 1, 0, 'S'},
                                       {"sni", 1, 0, 'n'},
                                       {"payload-file", 1, 0, 'p'},
                                       {"payload-hex", 1, 0, 'P'},
                                       {"extra-hex", 1, 0, 'e'},
                                       {"pad", 1, 0, 'D'},
                                       {"id", 1, 0, 'i'},
                                       {"raw-hex", 1, 0, 'r'},
                                       {"plain", 0, 0, 'L'},
                                       {"silent", 0, 0, 'Q'},
                                       {"expect-close", 0, 0, 'C'},
                                       {"expect-error", 1, 0, 'E'},
                                       {"count", 1, 0, 'N'},
                                       {"inflight", 1, 0, 'I'},
                                       {"out", 1, 0, 'O'},
                                       {"timeout-ms", 1, 0, 'T'},
                                       {"bench", 0, 0, 'B'},
                                       {"connections", 1, 0, 'M'},
                                       {"seconds", 1, 0, 'U'},
                                       {"help", 0, 0, 'h'},
                                       {"no-wait", 0, 0, 'W'},
                                       {"hops", 1, 0, 'H'},
                                       {"client-ip", 1, 0, 'A'},
                                       {0, 0, 0, 0}};
    size_t len;
    o->opcode = KW_OP_PING;
    o->count = 1;
    o->inflight = 1;
    o->connections = 1;
    o->timeout_ms = 5000;
    o->expect_error = -1;
    o->seconds = 3;
    o->id = 1;
    o->hops = -1;
    for (;;) {
        int c = kw_tool_getopt(argc, argv, "h", lo, &o->t);
        if (c == -1)
            break;
        switch (c) {
        case 'o':
            o->opcode = parse_opcode(optarg);
            break;
        case 'd':
            if (strlen(optarg) != 64 || kw_hex_decode(optarg, o->digest, KW_DIGEST_LEN) != 0)
                kw_tool_die("--key-digest needs 64 hex digits");
            o->has_digest = 1;
            break;
        case 'S':
            if (strlen(optarg) != 40 || kw_hex_decode(optarg, o->ski, KW_SKI_LEN) != 0)
                kw_tool_die("--ski needs 40 hex digits");
            o->has_ski = 1;
            break;
        case 'n':
            o->sni = optarg;
            break;
        case 'p':
            o->payload = read_file(optarg, &o->payload_len);
            o->has_payload = 1;
            break;
        case 'P':
            o->payload = hex_arg(optarg, &o->payload_len);
            o->has_payload = 1;
            break;
        case 'e':
            o->extra = hex_arg(optarg, &o->extra_len);
            o->has_extra = 1;
            break;
        case 'D':
            o->pad = strtoul(optarg, NULL, 0);
            break;
        case 'i':
            o->id = (uint32_t)strtoul(optarg, NULL, 0);
            break;
        case 'r':
            o->raw = hex_arg(optarg, &len);
            o->raw_len = len;
            break;
        case 'L':
            o->plain = 1;
            break;
        case 'Q':
            o->silent = 1;
            break;
        case 'C':
            o->expect_close = 1;
            break;
        case 'E':
            o->expect_error = strtol(optarg, NULL, 0);
            break;
        case 'N':
            o->count = strtol(optarg, NULL, 0);
            break;
        case 'I':
            o->inflight = strtol(optarg, NULL, 0);
            break;
        case 'O':
            o->out_file = optarg;
            break;
        case 'T':
            o->timeout_ms = strtol(optarg, NULL, 0);
            break;
        case 'B':
            o->bench = 1;
            break;
        case 'W':
            o->no_wait = 1;
            break;
        case 'M':
            o->connections = strtol(optarg, NULL, 0);
            break;
        case 'U':
            o->seconds = strtod(optarg, NULL);
            break;
        case 'H':
            o->hops = (int)strtol(optarg, NULL, 0);
            break;
        case 'A':
            if (inet_pton(AF_INET, optarg, o->ip) == 1)
                o->ip_len = 4;
            else if (inet_pton(AF_INET6, optarg, o->ip) == 1)
                o->ip_len = 16;
            else
                kw_tool_die("bad --client-ip");
            break;
        case 'h':
            usage();
            exit(0);
        default:
            usage();
            exit(1);
        }
    }
    if (o->t.key_cert != NULL)
        digest_of_cert(o->t.key_cert, o);
    if (o->t.server == NULL || (!o->plain && o->t.ca == NULL))
        kw_tool_die("--server and --ca are required (see --help)");
    if (o->count < 1 || o->inflight < 1 || o->connections < 1)
        kw_tool_die("--count, --inflight and --connections must be positive");
}

/* ---- connection ---- */

static int tls_failed;
static char tls_err[512];

/* A TCP connection to --server (exit 4 when refused), without Nagle's delay. */
static int tcp_connect(const char *server)
{
    int fd = kw_tool_connect(server, 4);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void set_timeout(int fd, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

int conn_open(const opts_t *o, SSL_CTX *ctx, conn_t *c)
{
    c->fd = tcp_connect(o->t.server);
    c->ssl = NULL;
    set_timeout(c->fd, o->timeout_ms);
    if (o->plain)
        return 0;
    c->ssl = kw_tool_handshake(ctx, c->fd, NULL);
    if (c->ssl == NULL) {
        char err[512];
        kw_tls_error("TLS handshake refused", err, sizeof(err));
        fprintf(stderr, "kw_rawclient: %s\n", err);
        return -1;
    }
    return 0;
}

void conn_close(conn_t *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
}

int conn_write(conn_t *c, const uint8_t *buf, size_t len)
{
    if (c->ssl == NULL)
        return write(c->fd, buf, len) == (ssize_t)len ? 0 : -1;
    return SSL_write(c->ssl, buf, (int)len) == (int)len ? 0 : -1;
}

/* Reads up to cap bytes. >0 bytes, 0 closed, -1 error/timeout. */
int conn_read(conn_t *c, uint8_t *buf, size_t cap)
{
    if (c->ssl == NULL) {
        ssize_t n = read(c->fd, buf, cap);
        return n < 0 ? -1 : (int)n;
    }
    errno = 0;
    int n = SSL_read(c->ssl, buf, (int)cap);
    if (n > 0)
        return n;
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_SSL) {
        tls_failed = 1;
        kw_tls_error("TLS error", tls_err, sizeof(tls_err));
    }
    ERR_clear_error();
    if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
        return -1;
    return 0;
}

/* Reads one whole frame into buf (KW_MAX_FRAME). Returns its length, 0 closed, -1 timeout. */
static int read_frame(conn_t *c, uint8_t *buf, size_t *have)
{
    for (;;) {
        if (*have >= KW_HEADER_LEN) {
            size_t need = KW_HEADER_LEN + ((size_t)buf[2] << 8 | buf[3]);
            if (*have >= need)
                return (int)need;
        }
        int n = conn_read(c, buf + *have, KW_MAX_FRAME - *have);
        if (n <= 0)
            return n;
        *have += (size_t)n;
    }
}

size_t build_frame(const opts_t *o, uint32_t id, uint8_t *out)
{
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    m.id = id;
    m.opcode = o->opcode;
    m.has_opcode = 1;
    if (o->has_digest)
        m.digest = kw_bytes(o->digest, KW_DIGEST_LEN);
    if (o->has_ski)
        m.ski = kw_bytes(o->ski, KW_SKI_LEN);
    if (o->sni != NULL)
        m.sni = kw_bytes(o->sni, strlen(o->sni));
    if (o->has_payload)
        m.payload = kw_bytes(o->payload, o->payload_len);
    if (o->has_extra)
        m.extra = kw_bytes(o->extra, o->extra_len);
    if (o->hops >= 0) {
        m.hops = (uint8_t)o->hops;
        m.has_hops = 1;
    }
    if (o->ip_len > 0)
        m.client_ip = kw_bytes(o->ip, o->ip_len);
    size_t len = 0;
    if (kw_msg_encode(&m, o->pad, out, KW_MAX_FRAME, &len) != 0)
        kw_tool_die("cannot encode the request (too big?)");
    return len;
}

/* ---- single requests ---- */

/* Prints a reply; returns 0 when it is what the options expect, 3 otherwise. */
static int handle_reply(const opts_t *o, const uint8_t *frame, size_t len, int quiet)
{
    kw_header_t h;
    kw_msg_t m;
    if (kw_header_parse(frame, len, &h) != 0 ||
        kw_msg_decode(frame + KW_HEADER_LEN, h.body_len, h.id, &m) != 0 || !m.has_opcode) {
        fprintf(stderr, "kw_rawclient: malformed reply\n");
        return 3;
    }
    if (m.opcode == KW_OP_ERROR) {
        int code = m.payload.len == 1 ? m.payload.ptr[0] : -1;
        if (!quiet)
            printf("id=%u error=0x%02x (%s)\n", h.id, code, kw_remote_error_name((uint8_t)code));
        return code == o->expect_error ? 0 : 3;
    }
    if (!quiet && o->out_file != NULL) {
        FILE *f = fopen(o->out_file, "wb");
        if (f == NULL || fwrite(m.payload.ptr, 1, m.payload.len, f) != m.payload.len)
            kw_tool_die("cannot write --out file");
        fclose(f);
        printf("id=%u opcode=0x%02x len=%u\n", h.id, m.opcode, m.payload.len);
    } else if (!quiet) {
        char *hex = kw_tool_hex(m.payload.ptr, m.payload.len);
        printf("id=%u opcode=0x%02x len=%u payload=%s\n", h.id, m.opcode, m.payload.len, hex);
        free(hex);
    }
    return o->expect_error >= 0 ? 3 : 0;
}

/* After a failed read: 5 when TLS refused us, else 4 (closed / timed out). */
static int closed_status(int n, const char *what)
{
    if (tls_failed) {
        printf("refused: %s\n", tls_err);
        return 5;
    }
    printf("%s: %s\n", what, n == 0 ? "connection closed" : "timed out");
    return 4;
}

/* Reads until the server closes; frames that arrive first are printed. */
static int wait_close(const opts_t *o, conn_t *c, uint8_t *buf)
{
    size_t have = 0;
    double start = kw_tool_now();
    for (;;) {
        int n = read_frame(c, buf, &have);
        if (n > 0) {
            handle_reply(o, buf, (size_t)n, 0);
            memmove(buf, buf + n, have - (size_t)n);
            have -= (size_t)n;
            continue;
        }
        if (n < 0) {
            printf("server did not close within %ld ms\n", o->timeout_ms);
            return 4;
        }
        printf("closed by server after %.0f ms%s%s\n", (kw_tool_now() - start) * 1000,
               tls_failed ? ": " : "", tls_failed ? tls_err : "");
        return 0;
    }
}

static int run_raw(const opts_t *o, conn_t *c, uint8_t *buf)
{
    if (o->raw_len > 0 && conn_write(c, o->raw, o->raw_len) != 0)
        return closed_status(0, "write");
    if (o->no_wait) {
        printf("sent %zu bytes\n", o->raw_len);
        return 0;
    }
    if (o->expect_close || o->silent)
        return wait_close(o, c, buf);
    size_t have = 0;
    int n = read_frame(c, buf, &have);
    if (n <= 0)
        return closed_status(n, "no reply");
    return handle_reply(o, buf, (size_t)n, 0);
}

/* count requests with up to inflight outstanding. */
static int run_requests(const opts_t *o, conn_t *c, uint8_t *buf)
{
    uint8_t *frame = malloc(KW_MAX_FRAME);
    long sent = 0, got = 0, bad = 0;
    size_t have = 0;
    if (o->no_wait) { /* send everything, leave before the replies */
        for (; sent < o->count; sent++) {
            size_t len = build_frame(o, o->id + (uint32_t)sent, frame);
            if (conn_write(c, frame, len) != 0)
                break;
        }
        printf("sent %ld requests\n", sent);
        free(frame);
        return 0;
    }
    while (got < o->count) {
        while (sent < o->count && sent - got < o->inflight) {
            size_t len = build_frame(o, o->id + (uint32_t)sent, frame);
            if (conn_write(c, frame, len) != 0) {
                free(frame);
                return closed_status(0, "write");
            }
            sent++;
        }
        int n = read_frame(c, buf, &have);
        if (n <= 0) {
            free(frame);
            return closed_status(n, "no reply");
        }
        if (handle_reply(o, buf, (size_t)n, o->count > 1) != 0)
            bad++;
        memmove(buf, buf + n, have - (size_t)n);
        have -= (size_t)n;
        got++;
    }
    free(frame);
    if (o->count > 1)
        printf("%ld replies, %ld unexpected\n", got, bad);
    if (o->expect_close)
        return wait_close(o, c, buf);
    return bad == 0 ? 0 : 3;
}

int main(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof(o));
    parse_args(argc, argv, &o);
    SSL_CTX *ctx = o.plain ? NULL : kw_tool_client_ctx(&o.t);
    int rc;
    if (o.bench) {
        rc = run_bench(&o, ctx);
    } else {
        conn_t c;
        uint8_t *buf = malloc(KW_MAX_FRAME);
        if (o.silent) {
            c.fd = tcp_connect(o.t.server);
            c.ssl = NULL;
            set_timeout(c.fd, o.timeout_ms);
            rc = wait_close(&o, &c, buf);
        } else if (conn_open(&o, ctx, &c) != 0) {
            printf("refused: %s\n", tls_err[0] ? tls_err : "TLS handshake failed");
            free(buf);
            SSL_CTX_free(ctx);
            return 5;
        } else if (o.raw != NULL) {
            rc = run_raw(&o, &c, buf);
        } else {
            rc = run_requests(&o, &c, buf);
        }
        if (!o.silent || c.fd >= 0)
            conn_close(&c);
        free(buf);
    }
    SSL_CTX_free(ctx);
    free(o.payload);
    free(o.extra);
    free(o.raw);
    return rc;
}
