/*
 * kw_hsload: many concurrent TLS client handshakes (non-blocking OpenSSL over poll()), for the
 * proxy's async test and benchmark.
 *   kw_hsload --connect HOST:PORT [--ca FILE] [--servername NAME] [--conns C] [--count N |
 *             --seconds S] [--tls 1.2|1.3] [--path /P] [--timeout-ms MS] [--max-fail F]
 * Keeps C connections in flight until N handshakes (or S seconds). With --path each connection
 * also sends "GET P HTTP/1.0" and reads the reply to the end (bytes are counted: MB/s).
 * Prints one line: ok, failed, seconds, handshakes/s, MB/s, max latency. Exits 1 when more than
 * F (default 0) failed.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kw_addr.h"
#include "kw_tool.h"

#define USAGE                                                                                      \
    "kw_hsload --connect HOST:PORT [--ca FILE] [--servername NAME] [--conns C] [--count N | "      \
    "--seconds S] [--tls 1.2|1.3] [--path /P] [--timeout-ms MS] [--max-fail F]"

enum { ST_FREE, ST_HANDSHAKE, ST_REQUEST, ST_READ };

typedef struct client {
    int fd;
    SSL *ssl;
    int state;
    short events;
    double start;
    size_t got;
    int status_ok;
} client_t;

typedef struct opts {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *ca, *servername, *path;
    int conns, count, max_fail, tls;
    double seconds, timeout;
} opts_t;

typedef struct totals {
    long started, ok, failed;
    double bytes, max_latency, sum_latency;
} totals_t;

static void client_reset(client_t *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static void client_end(client_t *c, int ok, totals_t *t)
{
    double lat = kw_tool_now() - c->start;
    if (ok) {
        t->ok++;
        t->sum_latency += lat;
        if (lat > t->max_latency) {
            t->max_latency = lat;
        }
    } else {
        t->failed++;
        if (t->failed <= 3) {
            unsigned long e = ERR_peek_last_error();
            fprintf(stderr, "kw_hsload: connection failed (state %d): %s\n", c->state,
                    e != 0 ? ERR_reason_error_string(e) : strerror(errno));
        }
    }
    ERR_clear_error();
    client_reset(c);
}

static int client_start(client_t *c, SSL_CTX *ctx, const opts_t *o)
{
    c->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&o->addr, o->addrlen) != 0 &&
        errno != EINPROGRESS) {
        return -1;
    }
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        return -1;
    }
    if (o->servername != NULL) {
        SSL_set_tlsext_host_name(c->ssl, o->servername);
    }
    SSL_set_connect_state(c->ssl);
    c->state = ST_HANDSHAKE;
    c->events = POLLOUT;
    c->start = kw_tool_now();
    return 0;
}

/* Returns 1 when the connection finished well, -1 on failure, 0 to go on. */
static int want(client_t *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->events = POLLIN;
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->events = POLLOUT;
        return 0;
    }
    if (c->state == ST_READ && (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)) {
        return c->status_ok ? 1 : -1; /* end of the reply */
    }
    return -1;
}

static int client_step(client_t *c, const opts_t *o, totals_t *t)
{
    char buf[16384];
    int r;
    if (c->state == ST_HANDSHAKE) {
        r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            return want(c, r);
        }
        if (o->path == NULL) {
            return 1;
        }
        c->state = ST_REQUEST;
    }
    if (c->state == ST_REQUEST) {
        int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", o->path);
        r = SSL_write(c->ssl, buf, n);
        if (r <= 0) {
            return want(c, r);
        }
        c->state = ST_READ;
    }
    for (;;) {
        r = SSL_read(c->ssl, buf, sizeof(buf));
        if (r <= 0) {
            return want(c, r);
        }
        if (c->got == 0 && r >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0) {
            c->status_ok = 1;
        }
        c->got += (size_t)r;
        t->bytes += r;
    }
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    const char *connect_to = NULL, *tls = NULL;
    unsigned conns = 100, count = 1000, max_fail = 0;
    double timeout_ms = 30000;
    char err[300];
    kw_tool_opts_t common = {0};
    memset(o, 0, sizeof(*o));
    const kw_tool_arg_t args[] = {
        {"connect", .s = &connect_to},
        {"servername", .s = &o->servername},
        {"path", .s = &o->path},
        {"conns", .u = &conns},
        {"count", .u = &count},
        {"seconds", .d = &o->seconds},
        {"max-fail", .u = &max_fail},
        {"timeout-ms", .d = &timeout_ms},
        {"tls", .s = &tls},
        {.name = NULL},
    };
    kw_tool_parse(argc, argv, args, &common, USAGE);
    o->ca = common.ca;
    o->conns = (int)conns;
    o->count = (int)count;
    o->max_fail = (int)max_fail;
    o->timeout = timeout_ms / 1000.0;
    o->tls = tls == NULL ? 0 : strcmp(tls, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    if (connect_to == NULL || conns == 0 || conns > INT_MAX || count > INT_MAX ||
        max_fail > INT_MAX ||
        kw_addr_resolve(connect_to, 0, &o->addr, &o->addrlen, err, sizeof(err)) != 0) {
        return -1;
    }
    return 0;
}

static SSL_CTX *make_ctx(const opts_t *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* every handshake is full */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (o->tls != 0) {
        SSL_CTX_set_min_proto_version(ctx, o->tls);
        SSL_CTX_set_max_proto_version(ctx, o->tls);
    }
    if (o->ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

static int more_to_start(const opts_t *o, const totals_t *t, double t0)
{
    if (o->seconds > 0) {
        return kw_tool_now() - t0 < o->seconds;
    }
    return t->started < o->count;
}

static void run(const opts_t *o, SSL_CTX *ctx, client_t *cl, struct pollfd *pfd, totals_t *t)
{
    double t0 = kw_tool_now();
    int active = 0;
    do {
        for (int i = 0; i < o->conns; i++) {
            if (cl[i].state == ST_FREE && more_to_start(o, t, t0)) {
                t->started++;
                if (client_start(&cl[i], ctx, o) != 0) {
                    client_end(&cl[i], 0, t);
                }
            }
        }
        active = 0;
        for (int i = 0; i < o->conns; i++) {
            pfd[i].fd = cl[i].state != ST_FREE ? cl[i].fd : -1;
            pfd[i].events = cl[i].events;
            pfd[i].revents = 0;
            active += cl[i].state != ST_FREE;
        }
        if (active == 0) {
            break;
        }
        poll(pfd, (nfds_t)o->conns, 100);
        double tnow = kw_tool_now();
        for (int i = 0; i < o->conns; i++) {
            if (cl[i].state == ST_FREE) {
                continue;
            }
            int r = 0;
            if (pfd[i].revents != 0) {
                r = client_step(&cl[i], o, t);
            } else if (tnow - cl[i].start > o->timeout) {
                r = -1;
            }
            if (r != 0) {
                client_end(&cl[i], r > 0, t);
            }
        }
    } while (1);
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error code, not death */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    SSL_CTX *ctx = make_ctx(&o);
    client_t *cl = calloc((size_t)o.conns, sizeof(*cl));
    struct pollfd *pfd = calloc((size_t)o.conns, sizeof(*pfd));
    if (ctx == NULL || cl == NULL || pfd == NULL) {
        fprintf(stderr, "kw_hsload: setup failed (CA file?)\n");
        return 2;
    }
    for (int i = 0; i < o.conns; i++) {
        cl[i].fd = -1;
    }
    totals_t t = {0};
    double t0 = kw_tool_now();
    run(&o, ctx, cl, pfd, &t);
    double secs = kw_tool_now() - t0;
    printf("hsload: %ld ok, %ld failed in %.3f s: %.1f handshakes/s, %.1f MB/s, latency avg %.1f "
           "ms max %.1f ms\n",
           t.ok, t.failed, secs, (double)t.ok / secs, t.bytes / secs / 1e6,
           t.ok > 0 ? t.sum_latency / (double)t.ok * 1000 : 0.0, t.max_latency * 1000);
    free(cl);
    free(pfd);
    SSL_CTX_free(ctx);
    return t.failed > o.max_fail ? 1 : 0;
}
