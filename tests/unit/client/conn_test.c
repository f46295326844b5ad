/*
 * The client's connection layer (src/client/conn.c) alone, without the core: a kwc_conn_t is
 * given a poller and three callbacks and talks to a real TLS server on loopback (a thread of this
 * test). Each case runs twice, watched by the core's epoll poller and by a host's poll(2) loop
 * (what the poller interface is for): open is reported once the handshake is done; frames queued
 * in a batch come back through the frame callback with their ids and bodies, also a 60 KB frame
 * read in pieces; the server's close_notify is lost with peer_closed set; a frame of protocol 2.x
 * is lost as KW_EVERSION; a certificate for another address is lost as KW_ETLS naming the
 * certificate; kwc_conn_queue refuses a frame shorter than a header and takes one before the
 * connection has buffers (it looped forever there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "keyward/error.h"
#include "kwc_conn.h"
#include "kwc_poller.h"
#include "kwc_servers.h"

/* ---- the server: a thread with blocking OpenSSL ---- */

typedef enum { SRV_ECHO, SRV_BAD_VERSION } srv_mode_t;

typedef struct srv_s {
    int lfd;
    uint16_t port;
    srv_mode_t mode;
    int frames; /* SRV_ECHO: echo this many frames, all in one write, then close_notify */
    SSL_CTX *ctx;
    pthread_t thread;
} srv_t;

static EVP_PKEY *g_key;
static X509 *g_cert; /* self-signed, IP SAN 127.0.0.1 */

static int read_full(SSL *ssl, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int r = SSL_read(ssl, p + got, (int)(n - got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *srv_run(void *arg)
{
    srv_t *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        if (s->mode == SRV_BAD_VERSION) {
            static const uint8_t v2[] = {2, 0, 0, 1, 0, 0, 0, 9, 0x42};
            SSL_write(ssl, v2, sizeof(v2));
            uint8_t b;
            (void)SSL_read(ssl, &b, 1); /* until the client closes */
        } else {
            size_t cap = (size_t)s->frames * (8 + 65535);
            uint8_t *all = malloc(cap);
            size_t len = 0;
            int ok = all != NULL;
            for (int i = 0; ok && i < s->frames; i++) {
                ok = read_full(ssl, all + len, 8) == 0;
                size_t body = (size_t)all[len + 2] << 8 | all[len + 3];
                ok = ok && read_full(ssl, all + len + 8, body) == 0;
                len += 8 + body;
            }
            if (ok)
                SSL_write(ssl, all, (int)len); /* one write: several frames in one read */
            free(all);
            SSL_shutdown(ssl);
        }
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static void srv_start(srv_t *s, srv_mode_t mode, int frames)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->frames = frames;
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, g_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, g_key), 1);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_run, s), 0);
}

static void srv_stop(srv_t *s)
{
    shutdown(s->lfd, SHUT_RDWR); /* wakes an accept that never got a client */
    pthread_join(s->thread, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
}

static int make_cert(void **state)
{
    (void)state;
    g_key = EVP_EC_gen("P-256");
    g_cert = X509_new();
    assert_non_null(g_key);
    assert_non_null(g_cert);
    ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(g_cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(g_cert), 3600);
    X509_NAME *name = X509_get_subject_name(g_cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ks", -1, -1, 0);
    X509_set_issuer_name(g_cert, name);
    X509_set_pubkey(g_cert, g_key);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, g_cert, g_cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    assert_non_null(ext);
    X509_add_ext(g_cert, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(g_cert, g_key, EVP_sha256()) > 0);
    return 0;
}

static int free_cert(void **state)
{
    (void)state;
    X509_free(g_cert);
    EVP_PKEY_free(g_key);
    return 0;
}

/* ---- two pollers: the core's epoll, and a host's poll(2) loop ---- */

#define HOST_MAX 4

typedef struct host_poller_s {
    kwc_poller_t base;
    kwc_io_t *ios[HOST_MAX];
    int forgets;
} host_poller_t;

static int hp_watch(kwc_poller_t *p, kwc_io_t *io, uint32_t events)
{
    host_poller_t *hp = (host_poller_t *)p;
    if (!io->added) {
        int i = 0;
        while (i < HOST_MAX && hp->ios[i] != NULL)
            i++;
        if (i == HOST_MAX)
            return -1;
        hp->ios[i] = io;
    }
    io->added = 1;
    io->events = events;
    return 0;
}

static void hp_forget(kwc_poller_t *p, kwc_io_t *io)
{
    host_poller_t *hp = (host_poller_t *)p;
    for (int i = 0; i < HOST_MAX; i++) {
        if (hp->ios[i] == io)
            hp->ios[i] = NULL;
    }
    hp->forgets++;
    io->added = 0;
}

static const kwc_poller_ops_t hp_ops = {hp_watch, hp_forget};

/* One turn of the host's loop: poll every watched fd, then call back. */
static void hp_turn(host_poller_t *hp, int timeout_ms)
{
    struct pollfd pfd[HOST_MAX];
    kwc_io_t *io[HOST_MAX];
    nfds_t n = 0;
    for (int i = 0; i < HOST_MAX; i++) {
        if (hp->ios[i] == NULL)
            continue;
        io[n] = hp->ios[i];
        pfd[n].fd = io[n]->fd;
        pfd[n].events = (short)(((io[n]->events & KWC_IO_READ) != 0 ? POLLIN : 0) |
                                ((io[n]->events & KWC_IO_WRITE) != 0 ? POLLOUT : 0));
        pfd[n].revents = 0;
        n++;
    }
    if (poll(pfd, n, timeout_ms) <= 0)
        return;
    for (nfds_t i = 0; i < n; i++) {
        uint32_t ev = ((pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0 ? KWC_IO_READ : 0u) |
                      ((pfd[i].revents & POLLOUT) != 0 ? KWC_IO_WRITE : 0u);
        if (ev != 0 && io[i]->added)
            io[i]->cb(io[i], ev);
    }
}

typedef struct loop_s {
    int use_epoll;
    kwc_epoll_t ep;
    host_poller_t hp;
} loop_t;

static kwc_poller_t *loop_init(loop_t *l, int use_epoll)
{
    memset(l, 0, sizeof(*l));
    l->use_epoll = use_epoll;
    if (use_epoll) {
        assert_int_equal(kwc_epoll_init(&l->ep), 0);
        return &l->ep.base;
    }
    l->hp.base.ops = &hp_ops;
    return &l->hp.base;
}

static void loop_turn(loop_t *l)
{
    if (l->use_epoll) {
        kwc_epoll_events_t evs;
        assert_true(kwc_epoll_wait(&l->ep, &evs, 50) >= 0);
        kwc_epoll_dispatch(&evs);
    } else {
        hp_turn(&l->hp, 50);
    }
}

static void loop_close(loop_t *l)
{
    if (l->use_epoll)
        kwc_epoll_close(&l->ep);
}

/* ---- the owner: records what the connection reports ---- */

typedef struct owner_s {
    int opened;
    int frames;
    uint32_t ids[8];
    size_t lens[8];
    uint8_t first[8];
    int lost;
    int err;
    int peer_closed;
    char why[512];
} owner_t;

static void on_open(kwc_conn_t *conn)
{
    ((owner_t *)conn->data)->opened++;
}

static void on_frame(kwc_conn_t *conn, uint32_t id, const uint8_t *body, size_t len)
{
    owner_t *o = conn->data;
    if (o->frames < 8) {
        o->ids[o->frames] = id;
        o->lens[o->frames] = len;
        o->first[o->frames] = len > 0 ? body[0] : 0;
        for (size_t i = 0; i < len; i++) {
            if (body[i] != (uint8_t)(body[0] + i))
                o->first[o->frames] = 0xEE; /* a body changed on the way */
        }
    }
    o->frames++;
}

static void on_lost(kwc_conn_t *conn, int err, int peer_closed, const char *why)
{
    owner_t *o = conn->data;
    o->lost++;
    o->err = err;
    o->peer_closed = peer_closed;
    snprintf(o->why, sizeof(o->why), "%s", why);
}

static const kwc_conn_cbs_t cbs = {on_open, on_frame, on_lost};

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), g_cert), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void addr_of(kw_srv_addr_t *a, uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    memset(a, 0, sizeof(*a));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->len = sizeof(*sin);
    snprintf(a->host, sizeof(a->host), "127.0.0.1");
    a->host_is_ip = 1;
    snprintf(a->label, sizeof(a->label), "127.0.0.1:%u", port);
}

/* Turns the loop until cond or 10 s (200 turns of at most 50 ms). */
#define RUN_UNTIL(l, cond)                                                                         \
    do {                                                                                           \
        for (int turn_ = 0; turn_ < 200 && !(cond); turn_++)                                       \
            loop_turn(l);                                                                          \
    } while (0)

/* ---- one case: a server thread, a loop, and a connection to the server ---- */

typedef struct fixture_s {
    loop_t l;
    owner_t o;
    srv_t s;
    kw_srv_addr_t a;
    kwc_conn_t conn;
    SSL_CTX *ctx;
} fixture_t;

/* A server in mode (echoing frames), and a connection to it watched by the core's epoll poller or
 * the host's loop, started; host (when not NULL) is the name the server's certificate must bear. */
static void fx_start(fixture_t *f, int use_epoll, srv_mode_t mode, int frames, const char *host)
{
    memset(&f->o, 0, sizeof(f->o));
    srv_start(&f->s, mode, frames);
    addr_of(&f->a, f->s.port);
    if (host != NULL)
        snprintf(f->a.host, sizeof(f->a.host), "%s", host);
    f->ctx = client_ctx();
    kwc_conn_init(&f->conn, loop_init(&f->l, use_epoll), f->ctx, &cbs, &f->o);
    kwc_conn_start(&f->conn, &f->a);
}

static void fx_stop(fixture_t *f)
{
    kwc_conn_destroy(&f->conn);
    loop_close(&f->l);
    srv_stop(&f->s);
    SSL_CTX_free(f->ctx);
}

/* The owner heard of the loss once, with err, peer_closed and a reason holding why. */
static void assert_lost(const owner_t *o, int err, int peer_closed, const char *why)
{
    assert_int_equal(o->lost, 1);
    assert_int_equal(o->err, err);
    assert_int_equal(o->peer_closed, peer_closed);
    assert_non_null(strstr(o->why, why));
}

/* The cases that run with both pollers take use_epoll as their state (see BOTH_POLLERS). */
static int g_epoll = 1;
static int g_host_poller = 0;
#define USE_EPOLL(state) (*(const int *)*(state))
#define BOTH_POLLERS(test)                                                                         \
    ON_POLLER(test, "_epoll", &g_epoll), ON_POLLER(test, "_host_poller", &g_host_poller)
#define ON_POLLER(test, suffix, use)                                                               \
    {                                                                                              \
        .name = #test suffix, .test_func = test, .initial_state = use                              \
    }

static void test_frames(void **state)
{
    fixture_t f;
    fx_start(&f, USE_EPOLL(state), SRV_ECHO, 3, NULL);
    RUN_UNTIL(&f.l, f.o.opened || f.o.lost);
    assert_int_equal(f.o.lost, 0);
    assert_int_equal(f.o.opened, 1);
    assert_int_equal(f.conn.state, KWC_CONN_OPEN);
    /* three frames in one batch: 10 bytes, 60,000 bytes (read in pieces), 0 bytes */
    static uint8_t big[8 + 60000];
    const size_t lens[3] = {10, 60000, 0};
    const uint32_t ids[3] = {7, 0xDEADBEEF, 1};
    for (int i = 0; i < 3; i++) {
        memset(big, 0, 8);
        big[0] = 1; /* major 1 minor 0; length and id are written by kwc_conn_queue */
        for (size_t j = 0; j < lens[i]; j++)
            big[8 + j] = (uint8_t)(0x10 * (i + 1) + j);
        assert_int_equal(kwc_conn_queue(&f.conn, big, 8 + lens[i], ids[i]), 0);
    }
    assert_int_equal(f.conn.dirty, 1);
    kwc_conn_flush(&f.conn);
    RUN_UNTIL(&f.l, f.o.lost);
    assert_int_equal(f.o.frames, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f.o.ids[i], ids[i]);
        assert_int_equal(f.o.lens[i], lens[i]);
        if (lens[i] > 0)
            assert_int_equal(f.o.first[i], (uint8_t)(0x10 * (i + 1)));
    }
    /* then the server's close_notify: lost, as the peer's doing */
    assert_lost(&f.o, KW_ECONN, 1, "closed");
    assert_int_equal(f.conn.state, KWC_CONN_IDLE);
    assert_int_equal(f.conn.io.fd, -1);
    assert_int_equal(f.conn.io.added, 0); /* forgotten by the poller before the close */
    fx_stop(&f);
}

static void test_bad_version(void **state)
{
    fixture_t f;
    fx_start(&f, USE_EPOLL(state), SRV_BAD_VERSION, 0, NULL);
    RUN_UNTIL(&f.l, f.o.lost);
    assert_int_equal(f.o.opened, 1);
    assert_int_equal(f.o.frames, 0);
    assert_lost(&f.o, KW_EVERSION, 0, "version 2.0");
    fx_stop(&f);
}

/* The server's certificate names 127.0.0.1; the connection expects 127.0.0.2. */
static void test_wrong_name(void **state)
{
    (void)state;
    fixture_t f;
    fx_start(&f, 0, SRV_ECHO, 1, "127.0.0.2");
    RUN_UNTIL(&f.l, f.o.lost);
    assert_int_equal(f.o.opened, 0);
    assert_lost(&f.o, KW_ETLS, 0, "certificate was not accepted");
    assert_int_equal(f.l.hp.forgets, 1);
    fx_stop(&f);
}

static void test_queue_refuses(void **state)
{
    (void)state;
    loop_t l;
    owner_t o;
    kwc_conn_t conn;
    uint8_t hdr[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    memset(&o, 0, sizeof(o));
    alarm(10); /* a queue that never grows its buffer would loop forever */
    kwc_conn_init(&conn, loop_init(&l, 0), NULL, &cbs, &o);
    assert_int_equal(kwc_conn_queue(&conn, hdr, 7, 1), KW_EINVAL);
    /* before the first start (no buffer yet): kept, sent after the handshake */
    assert_int_equal(kwc_conn_queue(&conn, hdr, 8, 1), 0);
    kwc_conn_flush(&conn); /* not open: nothing written */
    assert_int_equal(conn.wlen, 8);
    assert_int_equal(o.lost, 0);
    kwc_conn_destroy(&conn);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH_POLLERS(test_frames),
        BOTH_POLLERS(test_bad_version),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_queue_refuses),
    };
    return cmocka_run_group_tests(tests, make_cert, free_cert);
}
