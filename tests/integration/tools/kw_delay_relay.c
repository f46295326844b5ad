/*
 * kw_delay_relay: a TCP relay that delays every chunk coming back from the upstream, to make a
 * slow key server out of a fast one without touching it (TLS passes through untouched).
 *   kw_delay_relay --listen HOST:PORT --upstream HOST:PORT [--delay-ms 50] [--usr1-delay-ms N]
 * SIGUSR1 changes the delay to --usr1-delay-ms (default: unchanged), for a key server that
 * becomes slow while connections to it are up.
 * Bytes towards the upstream go at once; each chunk read from the upstream is written to the
 * client delay-ms later (chunks keep their order: equal timeouts fire in start order).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

typedef struct pair {
    uv_tcp_t client;
    uv_tcp_t upstream;
    uv_connect_t connect;
    int refs; /* handles open + chunks pending */
    int closing;
} pair_t;

typedef struct chunk {
    uv_timer_t timer;
    uv_write_t write;
    pair_t *pair;
    size_t len;
    char data[];
} chunk_t;

static struct sockaddr_in g_upstream;
static unsigned g_delay_ms = 50;
static unsigned g_usr1_delay_ms = 50;
static int g_have_usr1;

static void on_usr1(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (g_have_usr1) {
        g_delay_ms = g_usr1_delay_ms;
        fprintf(stderr, "kw_delay_relay: SIGUSR1: delaying replies by %u ms\n", g_delay_ms);
    }
}

static void pair_unref(pair_t *p)
{
    if (--p->refs == 0) {
        free(p);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    pair_unref(h->data);
}

static void pair_close(pair_t *p)
{
    if (p->closing) {
        return;
    }
    p->closing = 1;
    uv_close((uv_handle_t *)&p->client, on_handle_closed);
    uv_close((uv_handle_t *)&p->upstream, on_handle_closed);
}

static void on_chunk_closed(uv_handle_t *h)
{
    chunk_t *c = h->data;
    pair_t *p = c->pair;
    free(c);
    pair_unref(p);
}

static void on_chunk_written(uv_write_t *req, int status)
{
    chunk_t *c = req->data;
    if (status < 0) {
        pair_close(c->pair);
    }
    uv_close((uv_handle_t *)&c->timer, on_chunk_closed);
}

static void on_chunk_due(uv_timer_t *t)
{
    chunk_t *c = t->data;
    uv_buf_t b = uv_buf_init(c->data, (unsigned)c->len);
    c->write.data = c;
    if (c->pair->closing ||
        uv_write(&c->write, (uv_stream_t *)&c->pair->client, &b, 1, on_chunk_written) != 0) {
        uv_close((uv_handle_t *)&c->timer, on_chunk_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[65536];
    buf->base = rbuf;
    buf->len = sizeof(rbuf);
}

static void on_upstream_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    pair_t *p = s->data;
    if (n < 0) {
        pair_close(p); /* delayed chunks still pending are dropped */
        return;
    }
    if (n == 0) {
        return;
    }
    chunk_t *c = malloc(sizeof(*c) + (size_t)n);
    if (c == NULL) {
        pair_close(p);
        return;
    }
    memcpy(c->data, buf->base, (size_t)n);
    c->len = (size_t)n;
    c->pair = p;
    p->refs++;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_chunk_due, g_delay_ms, 0);
}

static void on_forwarded(uv_write_t *req, int status)
{
    free(req);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    pair_t *p = s->data;
    if (n < 0) {
        pair_close(p);
        return;
    }
    if (n == 0) {
        return;
    }
    uv_write_t *req = malloc(sizeof(*req) + (size_t)n);
    if (req == NULL) {
        pair_close(p);
        return;
    }
    memcpy(req + 1, buf->base, (size_t)n);
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)n);
    if (uv_write(req, (uv_stream_t *)&p->upstream, &b, 1, on_forwarded) != 0) {
        free(req);
        pair_close(p);
    }
}

static void on_connected(uv_connect_t *req, int status)
{
    pair_t *p = req->data;
    if (p->closing) {
        return;
    }
    if (status < 0 || uv_read_start((uv_stream_t *)&p->client, on_alloc, on_client_read) != 0 ||
        uv_read_start((uv_stream_t *)&p->upstream, on_alloc, on_upstream_read) != 0) {
        pair_close(p);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        return;
    }
    pair_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return;
    }
    uv_tcp_init(server->loop, &p->client);
    uv_tcp_init(server->loop, &p->upstream);
    p->client.data = p;
    p->upstream.data = p;
    p->connect.data = p;
    p->refs = 2;
    if (uv_accept(server, (uv_stream_t *)&p->client) != 0 ||
        uv_tcp_connect(&p->connect, &p->upstream, (struct sockaddr *)&g_upstream, on_connected) !=
            0) {
        pair_close(p);
    }
}

static int parse_addr(const char *hostport, struct sockaddr_in *out)
{
    char host[128];
    unsigned port = 0;
    if (sscanf(hostport, "%127[^:]:%u", host, &port) != 2) {
        return -1;
    }
    return uv_ip4_addr(host, (int)port, out);
}

int main(int argc, char **argv)
{
    struct sockaddr_in listen_addr;
    int have_listen = 0, have_upstream = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0) {
            have_listen = parse_addr(argv[i + 1], &listen_addr) == 0;
        } else if (strcmp(argv[i], "--upstream") == 0) {
            have_upstream = parse_addr(argv[i + 1], &g_upstream) == 0;
        } else if (strcmp(argv[i], "--delay-ms") == 0) {
            g_delay_ms = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--usr1-delay-ms") == 0) {
            g_usr1_delay_ms = (unsigned)strtoul(argv[i + 1], NULL, 10);
            g_have_usr1 = 1;
        }
    }
    if (!have_listen || !have_upstream) {
        fprintf(stderr, "usage: kw_delay_relay --listen IP:PORT --upstream IP:PORT "
                        "[--delay-ms N] [--usr1-delay-ms N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error code, not death */
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (struct sockaddr *)&listen_addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 1024, on_connection) != 0) {
        fprintf(stderr, "kw_delay_relay: cannot listen\n");
        return 1;
    }
    uv_signal_t usr1;
    uv_signal_init(loop, &usr1);
    uv_signal_start(&usr1, on_usr1, SIGUSR1);
    uv_unref((uv_handle_t *)&usr1);
    fprintf(stderr, "kw_delay_relay: delaying replies by %u ms\n", g_delay_ms);
    return uv_run(loop, UV_RUN_DEFAULT);
}
