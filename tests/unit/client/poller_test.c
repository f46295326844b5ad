/*
 * The core's epoll poller (src/client/poller_epoll.c) over real pipes and sockets, and the
 * caller's OpenSSL error queue set aside (src/client/errq.c). The poller: a watched fd is
 * reported to its own callback with its events (read, write, a hang-up as read); changing the
 * interest is one epoll_ctl, asking again for the same is none; masking silences an fd without
 * forgetting it and unmasking restores its interest; a forgotten fd is never reported. The error
 * queue: saved errors leave the thread's queue empty and come back in order with their library,
 * reason, text, file and line; a full queue comes back whole and in order; an empty save clears
 * what is there at restore.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kwc_errq.h"
#include "kwc_poller.h"

typedef struct watched_s {
    kwc_io_t io;
    int calls;
    uint32_t events;
} watched_t;

static void on_events(kwc_io_t *io, uint32_t events)
{
    watched_t *w = (watched_t *)io;
    w->calls++;
    w->events = events;
}

/* One wait of at most timeout_ms, then the callbacks. Returns the number of events. */
static int turn(kwc_epoll_t *ep, int timeout_ms)
{
    kwc_epoll_events_t evs;
    int n = kwc_epoll_wait(ep, &evs, timeout_ms);
    assert_true(n >= 0);
    kwc_epoll_dispatch(&evs);
    return n;
}

static void test_watch_read_write(void **state)
{
    (void)state;
    kwc_epoll_t ep;
    int sv[2];
    watched_t a;
    watched_t b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(kwc_epoll_init(&ep), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    kwc_io_init(&a.io, on_events, sv[0]);
    kwc_io_init(&b.io, on_events, sv[1]);
    assert_int_equal(kwc_poller_watch(&ep.base, &a.io, KWC_IO_READ), 0);
    assert_int_equal(kwc_poller_watch(&ep.base, &b.io, KWC_IO_READ), 0);
    assert_int_equal(a.io.added, 1);
    assert_int_equal(a.io.events, KWC_IO_READ);
    assert_int_equal(turn(&ep, 0), 0); /* nothing to read yet */
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(turn(&ep, 1000), 1);
    assert_int_equal(a.calls, 1); /* a's own callback, with a read */
    assert_int_equal(a.events, KWC_IO_READ);
    assert_int_equal(b.calls, 0);
    /* b asks for writes too: writable at once (level-triggered, reported every turn) */
    assert_int_equal(kwc_poller_watch(&ep.base, &b.io, KWC_IO_READ | KWC_IO_WRITE), 0);
    assert_int_equal(b.io.events, KWC_IO_READ | KWC_IO_WRITE);
    assert_int_equal(turn(&ep, 1000), 2);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.events, KWC_IO_WRITE);
    assert_int_equal(a.calls, 2); /* the byte is still unread */
    char c;
    assert_int_equal(read(sv[0], &c, 1), 1);
    /* asking again for the same interest changes nothing (and is no epoll_ctl: a closed epoll
     * would fail it) */
    int epfd = ep.epfd;
    ep.epfd = -1;
    assert_int_equal(kwc_poller_watch(&ep.base, &b.io, KWC_IO_READ | KWC_IO_WRITE), 0);
    assert_int_equal(kwc_poller_watch(&ep.base, &b.io, KWC_IO_READ), -1);
    ep.epfd = epfd;
    assert_int_equal(b.io.events, KWC_IO_READ | KWC_IO_WRITE); /* unchanged by the failure */
    /* forgotten: never reported again */
    kwc_poller_forget(&ep.base, &b.io);
    assert_int_equal(b.io.added, 0);
    assert_int_equal(turn(&ep, 0), 0);
    assert_int_equal(b.calls, 1);
    /* the peer hangs up: a read (the read then says EOF) */
    close(sv[1]);
    assert_int_equal(turn(&ep, 1000), 1);
    assert_int_equal(a.events, KWC_IO_READ);
    kwc_poller_forget(&ep.base, &a.io);
    close(sv[0]);
    kwc_epoll_close(&ep);
    assert_int_equal(ep.epfd, -1);
}

/* A poller and a pipe whose read end w is set up to watch (not watched yet). */
typedef struct piped_s {
    kwc_epoll_t ep;
    int p[2];
    watched_t w;
} piped_t;

static void piped_open(piped_t *t)
{
    memset(&t->w, 0, sizeof(t->w));
    assert_int_equal(kwc_epoll_init(&t->ep), 0);
    assert_int_equal(pipe(t->p), 0);
    kwc_io_init(&t->w.io, on_events, t->p[0]);
}

/* The writer's end goes: the reader sees a hang-up. */
static void piped_hang_up(piped_t *t)
{
    close(t->p[1]);
    t->p[1] = -1;
}

static void piped_close(piped_t *t)
{
    kwc_poller_forget(&t->ep.base, &t->w.io);
    close(t->p[0]);
    if (t->p[1] >= 0)
        close(t->p[1]);
    kwc_epoll_close(&t->ep);
}

static void test_mask(void **state)
{
    (void)state;
    piped_t t;
    piped_open(&t);
    assert_int_equal(kwc_epoll_mask(&t.ep, &t.w.io, 1), -1); /* not watched */
    assert_int_equal(kwc_poller_watch(&t.ep.base, &t.w.io, KWC_IO_READ), 0);
    assert_int_equal(write(t.p[1], "x", 1), 1);
    assert_int_equal(kwc_epoll_mask(&t.ep, &t.w.io, 1), 0);
    assert_int_equal(turn(&t.ep, 50), 0); /* readable, but masked */
    assert_int_equal(t.w.io.added, 1);
    assert_int_equal(kwc_epoll_mask(&t.ep, &t.w.io, 0), 0);
    assert_int_equal(turn(&t.ep, 1000), 1);
    assert_int_equal(t.w.calls, 1);
    piped_close(&t);
}

/* A pipe whose writer closed says only EPOLLHUP (no EPOLLIN): still a read for the owner. */
static void test_hangup_is_read(void **state)
{
    (void)state;
    piped_t t;
    piped_open(&t);
    assert_int_equal(kwc_poller_watch(&t.ep.base, &t.w.io, KWC_IO_READ), 0);
    piped_hang_up(&t);
    assert_int_equal(turn(&t.ep, 1000), 1);
    assert_int_equal(t.w.calls, 1);
    assert_int_equal(t.w.events, KWC_IO_READ);
    piped_close(&t);
}

/* ---- the error queue ---- */

static void test_errq_round_trip(void **state)
{
    (void)state;
    kwc_errq_t q;
    ERR_clear_error();
    ERR_raise_data(ERR_LIB_SSL, SSL_R_BAD_LENGTH, "the caller's %s", "handshake");
    ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    kwc_errq_save(&q);
    assert_int_equal(q.n, 2);
    assert_int_equal(ERR_peek_error(), 0); /* empty for the client's own SSL calls */
    ERR_raise(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE); /* ours: must not survive */
    kwc_errq_restore(&q);
    const char *file = NULL;
    const char *data = NULL;
    int line = 0;
    int flags = 0;
    unsigned long e = ERR_get_error_all(&file, &line, NULL, &data, &flags);
    assert_int_equal(ERR_GET_LIB(e), ERR_LIB_SSL);
    assert_int_equal(ERR_GET_REASON(e), SSL_R_BAD_LENGTH);
    assert_true((flags & ERR_TXT_STRING) != 0);
    assert_string_equal(data, "the caller's handshake");
    assert_non_null(strstr(file, "poller_test.c"));
    assert_true(line > 0);
    e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
    assert_int_equal(ERR_GET_LIB(e), ERR_LIB_EVP);
    assert_int_equal(ERR_GET_REASON(e), EVP_R_BAD_DECRYPT);
    assert_int_equal(ERR_get_error(), 0);
}

static void test_errq_bounds(void **state)
{
    (void)state;
    kwc_errq_t q;
    ERR_clear_error();
    kwc_errq_save(&q);
    assert_int_equal(q.n, 0);
    ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    kwc_errq_restore(&q); /* nothing saved: the queue ends empty */
    assert_int_equal(ERR_peek_error(), 0);
    for (int i = 0; i < KWC_ERRQ_MAX + 4; i++)
        ERR_raise_data(ERR_LIB_EVP, EVP_R_BAD_DECRYPT, "error %d", i);
    kwc_errq_save(&q); /* OpenSSL itself keeps the newest 15 of them */
    assert_true(q.n > 0 && q.n <= KWC_ERRQ_MAX);
    assert_int_equal(ERR_peek_error(), 0); /* none left behind */
    kwc_errq_restore(&q);
    /* back in their order, up to the newest */
    int first = KWC_ERRQ_MAX + 4 - (int)q.n;
    for (int i = first; i < KWC_ERRQ_MAX + 4; i++) {
        const char *data = NULL;
        int flags = 0;
        char want[32];
        snprintf(want, sizeof(want), "error %d", i);
        assert_int_not_equal(ERR_get_error_all(NULL, NULL, NULL, &data, &flags), 0);
        assert_string_equal(data, want);
    }
    assert_int_equal(ERR_get_error(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_read_write), cmocka_unit_test(test_mask),
        cmocka_unit_test(test_hangup_is_read),   cmocka_unit_test(test_errq_round_trip),
        cmocka_unit_test(test_errq_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
