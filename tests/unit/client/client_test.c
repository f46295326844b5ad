/*
 * libkeyward client tests that need no key server (the client's parts have their own files
 * beside this one: servers, reqmap, balance, efd_pool, conn, poller): client creation errors,
 * writes to a closed peer without SIGPIPE, a connection watched by a poller of the test's own,
 * and the client against loopback sockets that refuse, or accept and never speak TLS (fast
 * failure with a sentence naming the server, handshake timeout, cancelling and freeing pending
 * requests, freeing a client with requests in flight).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "kw_eventfd.h"
#include "kwc_conn.h"
#include "kwc_poller.h"
#include "kwc_sock_bio.h"
#include "kwc_servers.h"

/* ---- the client against loopback sockets ---- */

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, 0) == 1;
}

static char tmpdir[64];
static char cert_path[128];
static char key_path[128];

/* A self-signed P-256 identity in a temporary directory (enough for kw_client_new). */
static int make_identity(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kwclienttest.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(cert_path, sizeof(cert_path), "%s/id.crt", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/id.key", tmpdir);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(pk);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, pk);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
    return 0;
}

static int remove_identity(void **state)
{
    (void)state;
    unlink(cert_path);
    unlink(key_path);
    rmdir(tmpdir);
    return 0;
}

/* A listening loopback socket (never accepted from: connections complete in the backlog but
 * nothing is ever said). Returns the fd; *port gets its port. */
static int silent_listener(uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A port with nothing listening (bound then closed). */
static uint16_t closed_port(void)
{
    uint16_t port;
    int fd = silent_listener(&port);
    close(fd);
    return port;
}

static kw_client_t *client_for(const char *servers, unsigned timeout_ms, unsigned connect_ms)
{
    kw_client_config_t cfg;
    kw_client_t *c = NULL;
    char err[300];
    memset(&cfg, 0, sizeof(cfg));
    cfg.servers = servers;
    cfg.cert_file = cert_path;
    cfg.key_file = key_path;
    cfg.ca_file = cert_path;
    cfg.timeout_ms = timeout_ms;
    cfg.connect_timeout_ms = connect_ms;
    assert_int_equal(kw_client_new(&cfg, &c, err, sizeof(err)), 0);
    return c;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static kw_msg_t ping_msg(void)
{
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    m.opcode = KW_OP_PING;
    m.has_opcode = 1;
    m.payload = kw_bytes("x", 1);
    return m;
}

static void test_client_new_errors(void **state)
{
    (void)state;
    kw_client_config_t cfg;
    kw_client_t *c = (kw_client_t *)1;
    char err[300];
    memset(&cfg, 0, sizeof(cfg));
    cfg.servers = "127.0.0.1:1";
    assert_int_equal(kw_client_new(&cfg, &c, err, sizeof(err)), KW_ECONFIG);
    assert_null(c);
    assert_non_null(strstr(err, "CA"));
    cfg.ca_file = cert_path;
    cfg.servers = "127.0.0.1:0";
    assert_int_equal(kw_client_new(&cfg, &c, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "127.0.0.1:0"));
    cfg.servers = "127.0.0.1:1";
    cfg.cert_file = "/nonexistent/cert.pem";
    cfg.key_file = key_path;
    /* a file that cannot be read is a local I/O error naming the file and the reason */
    assert_int_equal(kw_client_new(&cfg, &c, err, sizeof(err)), KW_EIO);
    assert_non_null(
        strstr(err, "cannot read the client certificate /nonexistent/cert.pem: No such"));
    /* PEM bytes in memory replace the files; bad ones are a TLS setup error naming the file */
    cfg.cert_file = NULL;
    cfg.key_file = NULL;
    cfg.ca_pem = "not a certificate";
    cfg.ca_pem_len = strlen(cfg.ca_pem);
    assert_int_equal(kw_client_new(&cfg, &c, err, sizeof(err)), KW_ETLS);
    assert_non_null(strstr(err, "cannot load CA file"));
    assert_non_null(strstr(err, cert_path));
    cfg.ca_file = NULL;
    assert_int_equal(kw_client_new(&cfg, &c, err, sizeof(err)), KW_ETLS);
    assert_non_null(strstr(err, "the CA file (in memory)"));
    assert_int_equal(kw_client_new(NULL, &c, err, sizeof(err)), KW_EINVAL);
}

static void test_refused_fails_fast(void **state)
{
    (void)state;
    char servers[64];
    char err[300];
    uint8_t out[16];
    size_t len = 99;
    uint8_t remote = 7;
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", closed_port());
    kw_client_t *c = client_for(servers, 5000, 1000);
    kw_server_stats_t st[2];
    assert_int_equal(kw_client_stats(c, st, 2), 1);
    assert_string_equal(st[0].address, servers);
    kw_msg_t m = ping_msg();
    double t0 = now_ms();
    assert_int_equal(kw_client_call(c, &m, out, sizeof(out), &len, &remote), KW_ECONN);
    assert_true(now_ms() - t0 < 2000); /* max_tries attempts with 50/100 ms backoff */
    assert_int_equal(len, 0);
    assert_int_equal(remote, 0);
    kw_client_last_error(c, err, sizeof(err));
    assert_non_null(strstr(err, servers));
    assert_non_null(strstr(err, "refused"));
    assert_int_equal(kw_client_stats(c, st, 2), 1);
    assert_false(st[0].up);
    assert_true(st[0].failures >= 1);
    kw_client_free(c);
}

/* kw_client_ping's failure sentence: the error's text, then the connection-level failure. */
static void test_ping_says_why(void **state)
{
    (void)state;
    char servers[64];
    char why[400];
    uint8_t remote = 7;
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", closed_port());
    kw_client_t *c = client_for(servers, 5000, 1000);
    assert_int_equal(kw_client_ping(c, &remote, why, sizeof(why)), KW_ECONN);
    assert_int_equal(remote, 0);
    assert_non_null(strstr(why, kw_strerror(KW_ECONN)));
    assert_non_null(strstr(why, servers));
    assert_non_null(strstr(why, "refused"));
    char tiny[8];
    assert_int_equal(kw_client_ping(c, NULL, tiny, sizeof(tiny)), KW_ECONN);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1); /* truncated, terminated */
    assert_int_equal(kw_client_ping(c, NULL, NULL, 0), KW_ECONN);
    assert_int_equal(kw_client_ping(NULL, NULL, why, sizeof(why)), KW_EINVAL);
    kw_client_free(c);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    uint16_t port;
    char servers[64];
    char err[300];
    uint8_t out[16];
    int fd = silent_listener(&port);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
    kw_client_t *c = client_for(servers, 700, 200);
    kw_msg_t m = ping_msg();
    double t0 = now_ms();
    int rc = kw_client_call(c, &m, out, sizeof(out), NULL, NULL);
    double dt = now_ms() - t0;
    assert_int_equal(rc, KW_ETIMEDOUT);
    assert_true(dt >= 150 && dt < 1500);
    kw_client_last_error(c, err, sizeof(err));
    assert_non_null(strstr(err, "TLS handshake timed out"));
    kw_client_free(c);
    close(fd);
}

/* kw_request_notify: a second fd signalled exactly once at completion; 0 for a completed
 * request, KW_EINVAL for a second call while pending; after kw_request_free of a pending one the fd
 * is never written. A call once the request is complete returns 0: no signal. */
static void test_request_notify(void **state)
{
    (void)state;
    uint16_t port;
    char servers[64];
    uint64_t v = 0;
    int nfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(nfd >= 0);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", closed_port());
    kw_client_t *c = client_for(servers, 5000, 1000);
    kw_msg_t m = ping_msg();
    kw_request_t *r = NULL;
    assert_int_equal(kw_client_submit(c, &m, &r), 0);
    assert_int_equal(kw_request_notify(r, nfd), 1);
    assert_int_equal(kw_request_notify(r, nfd), KW_EINVAL);
    struct pollfd p = {.fd = nfd, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, 3000), 1); /* refused: fails fast, and signals */
    assert_true(kw_request_done(r));
    assert_int_equal(read(nfd, &v, sizeof(v)), (ssize_t)sizeof(v));
    assert_int_equal(v, 1);
    assert_int_equal(kw_request_notify(r, nfd), 0); /* complete now: no (second) signal */
    kw_request_free(r);
    assert_false(readable(nfd));

    assert_int_equal(kw_client_submit(c, &m, &r), 0);
    assert_int_equal(kw_request_wait(r), 0);
    assert_int_equal(kw_request_notify(r, nfd), 0); /* already complete: no signal */
    kw_request_free(r);
    assert_false(readable(nfd));
    kw_client_free(c);

    int lfd = silent_listener(&port);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
    c = client_for(servers, 60000, 30000);
    assert_int_equal(kw_client_submit(c, &m, &r), 0);
    assert_int_equal(kw_request_notify(r, nfd), 1);
    kw_request_free(
        r); /* pending: cancelled; the fd must stay quiet even when the client fails it */
    kw_client_free(c);
    assert_false(readable(nfd));
    close(lfd);
    close(nfd);
}

/* kw_request_notify_fn's callback: counts calls and records the thread and completion state. */
typedef struct notify_rec_s {
    atomic_int calls;
    kw_request_t *req;
    int done_when_called;
    int efd; /* written by the callback, so the test can wait for it */
} notify_rec_t;

static void on_notify(void *arg)
{
    notify_rec_t *rec = arg;
    rec->done_when_called = kw_request_done(rec->req);
    atomic_fetch_add(&rec->calls, 1);
    uint64_t one = 1;
    ssize_t n = write(rec->efd, &one, sizeof(one)); /* no cmocka asserts off the test's thread */
    (void)n;
}

/* kw_request_notify_fn: fn called exactly once, after the result is published; 0 for a completed
 * request, KW_EINVAL for a second request for notification; never called after kw_request_free
 * of a pending request. */
static void test_request_notify_fn(void **state)
{
    (void)state;
    uint16_t port;
    char servers[64];
    notify_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(rec.efd >= 0);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", closed_port());
    kw_client_t *c = client_for(servers, 5000, 1000);
    kw_msg_t m = ping_msg();
    kw_request_t *r = NULL;
    assert_int_equal(kw_client_submit(c, &m, &r), 0);
    rec.req = r;
    assert_int_equal(kw_request_notify_fn(NULL, on_notify, &rec), KW_EINVAL);
    assert_int_equal(kw_request_notify_fn(r, NULL, &rec), KW_EINVAL);
    assert_int_equal(kw_request_notify_fn(r, on_notify, &rec), 1);
    assert_int_equal(kw_request_notify_fn(r, on_notify, &rec), KW_EINVAL);
    assert_int_equal(kw_request_notify(r, rec.efd), KW_EINVAL); /* one notification per request */
    struct pollfd p = {.fd = rec.efd, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&p, 1, 3000), 1); /* refused: fails fast, and calls back */
    assert_int_equal(atomic_load(&rec.calls), 1);
    assert_true(rec.done_when_called);
    assert_int_equal(kw_request_notify_fn(r, on_notify, &rec), 0); /* complete: no second call */
    kw_request_free(r);
    assert_int_equal(atomic_load(&rec.calls), 1);
    kw_client_free(c);

    int lfd = silent_listener(&port);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
    c = client_for(servers, 60000, 30000);
    assert_int_equal(kw_client_submit(c, &m, &r), 0);
    rec.req = r;
    assert_int_equal(kw_request_notify_fn(r, on_notify, &rec), 1);
    kw_request_free(r); /* pending: cancelled; fn must not run even when the client fails it */
    kw_client_free(c);
    assert_int_equal(atomic_load(&rec.calls), 1);
    close(lfd);
    close(rec.efd);
}

/* Pending requests: freed before completion (cancel), waited on from the fd, and failed with
 * KW_ECLOSED when the client is freed. */
static void test_cancel_and_close(void **state)
{
    (void)state;
    uint16_t port;
    char servers[64];
    int fd = silent_listener(&port);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
    kw_client_t *c = client_for(servers, 60000, 30000);
    kw_msg_t m = ping_msg();
    kw_request_t *r[50];
    for (int i = 0; i < 50; i++)
        assert_int_equal(kw_client_submit(c, &m, &r[i]), 0);
    for (int i = 0; i < 50; i += 2) {
        kw_request_free(r[i]); /* cancelled while pending */
        r[i] = NULL;
    }
    usleep(50000);
    for (int i = 1; i < 50; i += 2) {
        assert_false(kw_request_done(r[i]));
        assert_false(readable(kw_request_fd(r[i])));
    }
    kw_client_free(c);
    for (int i = 1; i < 50; i += 2) {
        assert_true(readable(kw_request_fd(r[i])));
        assert_int_equal(kw_request_wait(r[i]), 0);
        assert_int_equal(kw_request_result(r[i], NULL, NULL, NULL), KW_ECLOSED);
        kw_request_free(r[i]); /* after the client: still fine */
    }
    close(fd);
}

/* A write on a connection the peer has closed is an error code, not SIGPIPE: this test runs
 * with SIGPIPE's default action, which would end the process. */
static void test_sock_bio_no_sigpipe(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    BIO *b = kwc_sock_bio_new(sv[0]);
    assert_non_null(b);
    assert_int_equal(BIO_write(b, "ping", 4), 4);
    char buf[8];
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 4);
    close(sv[1]);
    errno = 0;
    assert_true(BIO_write(b, "ping", 4) < 0);
    assert_int_equal(errno, EPIPE);
    assert_false(BIO_should_retry(b));
    BIO_free(b); /* BIO_NOCLOSE: the descriptor stays open */
    assert_int_equal(close(sv[0]), 0);
}

/* A poller of the test's own (what a host's event loop would be): it records what the connection
 * asks for; the test waits on the fd itself and hands the events to the connection. */
typedef struct test_poller_s {
    kwc_poller_t base;
    int watches;
    int forgets;
    uint32_t events;
} test_poller_t;

static int tp_watch(kwc_poller_t *p, kwc_io_t *io, uint32_t events)
{
    test_poller_t *tp = (test_poller_t *)p;
    tp->watches++;
    tp->events = events;
    io->events = events;
    io->added = 1;
    return 0;
}

static void tp_forget(kwc_poller_t *p, kwc_io_t *io)
{
    ((test_poller_t *)p)->forgets++;
    io->added = 0;
}

static const kwc_poller_ops_t tp_ops = {tp_watch, tp_forget};

typedef struct test_owner_s {
    int opened;
    int lost;
    int err;
    int peer_closed;
    char why[256];
} test_owner_t;

static void to_open(kwc_conn_t *conn)
{
    ((test_owner_t *)conn->data)->opened++;
}

static void to_frame(kwc_conn_t *conn, uint32_t id, const uint8_t *body, size_t len)
{
    (void)conn;
    (void)id;
    (void)body;
    (void)len;
    fail_msg("no frame expected");
}

static void to_lost(kwc_conn_t *conn, int err, int peer_closed, const char *why)
{
    test_owner_t *o = conn->data;
    o->lost++;
    o->err = err;
    o->peer_closed = peer_closed;
    snprintf(o->why, sizeof(o->why), "%s", why);
}

static const kwc_conn_cbs_t test_cbs = {to_open, to_frame, to_lost};

/* The connection layer alone, watched by a foreign poller: it asks for KWC_IO_WRITE while
 * connecting, reports a refused connection through its lost callback (never calling up), and has
 * the poller forget its fd before closing it. */
static void test_conn_foreign_poller(void **state)
{
    (void)state;
    test_poller_t tp = {{&tp_ops}, 0, 0, 0};
    test_owner_t owner;
    memset(&owner, 0, sizeof(owner));
    kw_srv_spec_t spec;
    kw_srv_addr_t *addrs = NULL;
    size_t n = 0;
    char err[200];
    uint16_t port = closed_port();
    snprintf(spec.host, sizeof(spec.host), "127.0.0.1");
    spec.port = port;
    assert_int_equal(kw_srvlist_resolve(&spec, 1, &addrs, &n, err, sizeof(err)), 0);
    kwc_conn_t conn;
    kwc_conn_init(&conn, &tp.base, NULL, &test_cbs, &owner);
    kwc_conn_start(&conn, &addrs[0]);
    if (conn.state == KWC_CONN_TCP) { /* connect in progress: the host's loop waits for it */
        assert_int_equal(tp.events, KWC_IO_WRITE);
        struct pollfd p = {.fd = conn.io.fd, .events = POLLOUT, .revents = 0};
        assert_int_equal(poll(&p, 1, 5000), 1);
        kwc_conn_event(&conn, KWC_IO_WRITE);
    }
    assert_int_equal(owner.lost, 1);
    assert_int_equal(owner.opened, 0);
    assert_int_equal(owner.err, KW_ECONN);
    assert_int_equal(owner.peer_closed, 0);
    assert_non_null(strstr(owner.why, "refused"));
    assert_int_equal(conn.state, KWC_CONN_IDLE);
    assert_int_equal(conn.io.fd, -1);
    assert_int_equal(tp.forgets, 1); /* before its fd was closed */
    kwc_conn_destroy(&conn);
    free(addrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sock_bio_no_sigpipe), cmocka_unit_test(test_client_new_errors),
        cmocka_unit_test(test_refused_fails_fast),  cmocka_unit_test(test_ping_says_why),
        cmocka_unit_test(test_handshake_timeout),   cmocka_unit_test(test_request_notify),
        cmocka_unit_test(test_request_notify_fn),   cmocka_unit_test(test_cancel_and_close),
        cmocka_unit_test(test_conn_foreign_poller),
    };
    return cmocka_run_group_tests(tests, make_identity, remove_identity);
}
