/*
 * kw_backend: a tiny plaintext backend for keyward-proxy tests (libuv, one thread).
 *   kw_backend --listen HOST:PORT [--name NAME] [--echo] [--header-hex]
 * HTTP mode (default): reads one request; an optional PROXY v2 header before it is parsed and
 * reported. GET /bytes/N answers N bytes of 'x' (streamed, for throughput and backpressure);
 * GET /reset/N the same, then resets the connection (RST) instead of closing it;
 * any other path answers one line:
 *   kw_backend NAME path=/p proxy=v2 src=IP:PORT dst=IP:PORT authority=SNI alpn=P tls=VER
 * (proxy=none without a header), with --header-hex followed by " hdr=HEX", the whole PROXY
 * header as received (for byte-exact checks). Then it closes.
 * Echo mode: sends back every byte (after any PROXY header) and half-closes after the peer's EOF.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define MAX_HEAD 16384
#define CHUNK    65536

typedef struct conn {
    uv_tcp_t tcp;
    char head[MAX_HEAD];
    size_t len;
    int responded;
    int echoing;   /* echo mode, past any PROXY header */
    uint64_t left; /* /bytes/N still to send */
    int inflight;
    int reset; /* /reset/N: RST once the bytes are written */
} conn_t;

static const char *g_name = "backend";
static int g_echo;
static int g_header_hex;
static char g_chunk[CHUNK];

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void finish(conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
}

static void on_write_free(uv_write_t *req, int status)
{
    free(req);
}

static void send_copy(conn_t *c, const char *data, size_t len)
{
    uv_write_t *req = malloc(sizeof(*req) + len);
    if (req == NULL) {
        finish(c);
        return;
    }
    memcpy(req + 1, data, len);
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)len);
    if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write_free) != 0) {
        free(req);
        finish(c);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    free(req);
    finish(c);
}

static void close_after_writes(conn_t *c)
{
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL) {
        finish(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        finish(c);
    }
}

static void pump_bytes(conn_t *c);

static void on_chunk_written(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    free(req);
    c->inflight--;
    if (status < 0) {
        finish(c);
        return;
    }
    pump_bytes(c);
}

static void pump_bytes(conn_t *c)
{
    while (c->left > 0 && c->inflight < 4) {
        size_t n = c->left < CHUNK ? (size_t)c->left : CHUNK;
        uv_write_t *req = malloc(sizeof(*req));
        uv_buf_t b = uv_buf_init(g_chunk, (unsigned)n);
        if (req == NULL) {
            finish(c);
            return;
        }
        req->data = c;
        if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_chunk_written) != 0) {
            free(req);
            finish(c);
            return;
        }
        c->left -= n;
        c->inflight++;
    }
    if (c->left == 0 && c->inflight == 0) {
        if (c->reset && !uv_is_closing((uv_handle_t *)&c->tcp)) {
            uv_tcp_close_reset(&c->tcp, on_closed);
        } else {
            close_after_writes(c);
        }
    }
}

static void fmt_addr(int fam, const uint8_t *ip, const uint8_t *port, char *out, size_t outlen)
{
    char buf[INET6_ADDRSTRLEN] = "?";
    inet_ntop(fam, ip, buf, sizeof(buf));
    snprintf(out, outlen, fam == AF_INET6 ? "[%s]:%u" : "%s:%u", buf,
             (unsigned)(port[0] << 8 | port[1]));
}

static void tlv_str(const uint8_t *v, size_t n, char *out, size_t outlen)
{
    size_t m = n < outlen - 1 ? n : outlen - 1;
    memcpy(out, v, m);
    out[m] = '\0';
}

/* Parses a PROXY v2 header at the start of c->head. Returns its length, 0 when there is none,
 * -1 when more bytes are needed, -2 when malformed. Writes a description into desc. */
static long parse_ppv2(const conn_t *c, char *desc, size_t desclen)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    const uint8_t *p = (const uint8_t *)c->head;
    size_t cmp = c->len < 12 ? c->len : 12;
    if (memcmp(p, sig, cmp) != 0) {
        snprintf(desc, desclen, "proxy=none");
        return 0;
    }
    if (c->len < 16) {
        return -1;
    }
    size_t body = (size_t)(p[14] << 8 | p[15]);
    if (c->len < 16 + body) {
        return -1;
    }
    if (p[12] != 0x21) {
        return -2;
    }
    char src[64] = "-", dst[64] = "-", auth[256] = "-", alpn[256] = "-", tls[64] = "-";
    size_t off = 16;
    if (p[13] == 0x11 && body >= 12) {
        fmt_addr(AF_INET, p + 16, p + 24, src, sizeof(src));
        fmt_addr(AF_INET, p + 20, p + 26, dst, sizeof(dst));
        off += 12;
    } else if (p[13] == 0x21 && body >= 36) {
        fmt_addr(AF_INET6, p + 16, p + 48, src, sizeof(src));
        fmt_addr(AF_INET6, p + 32, p + 50, dst, sizeof(dst));
        off += 36;
    }
    while (off + 3 <= 16 + body) {
        uint8_t type = p[off];
        size_t n = (size_t)(p[off + 1] << 8 | p[off + 2]);
        const uint8_t *v = p + off + 3;
        if (off + 3 + n > 16 + body) {
            return -2;
        }
        if (type == 0x01) {
            tlv_str(v, n, alpn, sizeof(alpn));
        } else if (type == 0x02) {
            tlv_str(v, n, auth, sizeof(auth));
        } else if (type == 0x20 && n >= 8 && v[5] == 0x21) {
            size_t vn = (size_t)(v[6] << 8 | v[7]);
            if (8 + vn <= n) {
                tlv_str(v + 8, vn, tls, sizeof(tls));
            }
        }
        off += 3 + n;
    }
    int w = snprintf(desc, desclen, "proxy=v2 src=%s dst=%s authority=%s alpn=%s tls=%s", src, dst,
                     auth, alpn, tls);
    if (g_header_hex && w > 0 && (size_t)w + 5 + 2 * (16 + body) < desclen) {
        char *h = desc + w;
        h += sprintf(h, " hdr=");
        for (size_t i = 0; i < 16 + body; i++) {
            h += sprintf(h, "%02x", p[i]);
        }
    }
    return (long)(16 + body);
}

static void respond(conn_t *c, const char *req, const char *desc)
{
    char path[256] = "/";
    char line[2048];
    char hdr[256];
    unsigned long long nbytes = 0;
    sscanf(req, "%*s %255s", path);
    c->responded = 1;
    c->reset = sscanf(path, "/reset/%llu", &nbytes) == 1;
    if (c->reset || sscanf(path, "/bytes/%llu", &nbytes) == 1) {
        int n = snprintf(hdr, sizeof(hdr),
                         "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\nConnection: close\r\n\r\n",
                         nbytes);
        send_copy(c, hdr, (size_t)n);
        c->left = nbytes;
        pump_bytes(c);
        return;
    }
    int body = snprintf(line, sizeof(line), "kw_backend %s path=%s %s\n", g_name, path, desc);
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n",
                     body);
    send_copy(c, hdr, (size_t)n);
    send_copy(c, line, (size_t)body);
    close_after_writes(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (n < 0) {
        if (g_echo && n == UV_EOF) {
            close_after_writes(c);
        } else if (!c->responded || n != UV_EOF) {
            finish(c);
        }
        return;
    }
    if (n == 0 || c->responded) {
        return;
    }
    if (c->echoing) {
        send_copy(c, buf->base, (size_t)n);
        return;
    }
    size_t take = (size_t)n;
    if (c->len + take > MAX_HEAD - 1) {
        if (!g_echo) {
            finish(c);
            return;
        }
        take = MAX_HEAD - 1 - c->len;
    }
    memcpy(c->head + c->len, buf->base, take);
    c->len += take;
    c->head[c->len] = '\0';
    char desc[1024];
    long hl = parse_ppv2(c, desc, sizeof(desc));
    if (hl == -2) {
        fprintf(stderr, "kw_backend: malformed PROXY header\n");
        finish(c);
        return;
    }
    if (hl == -1) {
        return;
    }
    if (g_echo) {
        fprintf(stderr, "kw_backend: echo %s\n", desc);
        c->echoing = 1;
        if (c->len > (size_t)hl) {
            send_copy(c, c->head + hl, c->len - (size_t)hl);
        }
        if ((size_t)n > take) {
            send_copy(c, buf->base + take, (size_t)n - take);
        }
        return;
    }
    if (strstr(c->head + hl, "\r\n\r\n") != NULL) {
        fprintf(stderr, "kw_backend: %s\n", desc);
        respond(c, c->head + hl, desc);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[65536];
    buf->base = rbuf;
    buf->len = sizeof(rbuf);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        return;
    }
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        finish(c);
    }
}

int main(int argc, char **argv)
{
    const char *listen = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            g_name = argv[++i];
        } else if (strcmp(argv[i], "--echo") == 0) {
            g_echo = 1;
        } else if (strcmp(argv[i], "--header-hex") == 0) {
            g_header_hex = 1;
        } else {
            fprintf(stderr,
                    "usage: kw_backend --listen HOST:PORT [--name NAME] [--echo] [--header-hex]\n");
            return 2;
        }
    }
    char host[128];
    unsigned port = 0;
    if (listen == NULL || sscanf(listen, "%127[^:]:%u", host, &port) != 2) {
        fprintf(stderr, "kw_backend: --listen HOST:PORT is required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error code, not death */
    memset(g_chunk, 'x', sizeof(g_chunk));
    struct sockaddr_in addr;
    uv_tcp_t server;
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_init(loop, &server);
    if (uv_ip4_addr(host, (int)port, &addr) != 0 ||
        uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 1024, on_connection) != 0) {
        fprintf(stderr, "kw_backend: cannot listen on %s\n", listen);
        return 1;
    }
    fprintf(stderr, "kw_backend: listening on %s\n", listen);
    return uv_run(loop, UV_RUN_DEFAULT);
}
