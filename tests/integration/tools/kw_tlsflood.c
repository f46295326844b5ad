/*
 * kw_tlsflood: a TLS 1.3 client that floods a server with post-handshake KeyUpdate messages
 * (update_requested) and never reads, for the proxy's flood test.
 *   kw_tlsflood --connect HOST:PORT [--seconds N] [--once]
 * Connects, completes a handshake (no certificate check), then sends KeyUpdate after KeyUpdate
 * until the server closes the connection or N seconds (default 10) have passed; a server that
 * stops reading leaves the writes blocked, which is fine. The KeyUpdates are written 256 at a
 * time, and the receive buffer is small, so the server's replies back up on the server. Without
 * --once it connects again after each close, so the pressure lasts the whole time. Prints one line:
 *   conns=N keyupdates=N closed=N failed=N
 * (closed: connections the server ended; failed: connects or handshakes that did not work).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kw_tool.h"

static unsigned long g_updates, g_closed, g_failed, g_conns;

/* Sends all of buf, coming back every 200 ms (the send timeout) to check the clock. Returns 0
 * when sent, 1 when the server ended the connection, 2 at the deadline. */
static int send_all(int fd, const char *buf, size_t len, double deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (kw_tool_now() >= deadline) {
                return 2; /* the server stopped reading us: fine, it is still alive */
            }
        } else {
            return 1;
        }
    }
    return 0;
}

/* Floods one connection until the server ends it (returns 1) or the deadline (returns 0). The
 * KeyUpdates are made into a memory BIO, 256 at a time, and written in one go. */
static int flood(SSL *ssl, int fd, double deadline)
{
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL) {
        return 1;
    }
    SSL_set0_wbio(ssl, mem); /* the socket stays the read BIO, never read */
    int rc = 0;
    while (rc == 0 && kw_tool_now() < deadline) {
        for (int i = 0; i < 256; i++) {
            if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1 || SSL_do_handshake(ssl) != 1) {
                return 1;
            }
            g_updates++;
        }
        char *data = NULL;
        long len = BIO_get_mem_data(mem, &data);
        rc = send_all(fd, data, (size_t)len, deadline);
        (void)BIO_reset(mem);
    }
    return rc == 1;
}

#define USAGE "kw_tlsflood --connect HOST:PORT [--seconds N] [--once]"

int main(int argc, char **argv)
{
    const char *server = NULL;
    double seconds = 10;
    int once = 0;
    kw_tool_opts_t common = {0};
    const kw_tool_arg_t args[] = {
        {"connect", .s = &server},
        {"seconds", .d = &seconds},
        {"once", .flag = &once},
        {.name = NULL},
    };
    kw_tool_parse(argc, argv, args, &common, USAGE);
    if (server == NULL) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        kw_tool_die("cannot make a TLS 1.3 context");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    double deadline = kw_tool_now() + seconds;
    while (kw_tool_now() < deadline) {
        int fd = kw_tool_connect(server, 1);
        struct timeval tv = {0, 200 * 1000}; /* blocked writes come back to check the clock */
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int small = 4096; /* the server's replies back up in its own queue soon */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        SSL *ssl = SSL_new(ctx);
        g_conns++;
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
            g_failed++;
            usleep(50 * 1000);
        } else if (flood(ssl, fd, deadline)) {
            g_closed++;
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        if (once) {
            break;
        }
    }
    printf("conns=%lu keyupdates=%lu closed=%lu failed=%lu\n", g_conns, g_updates, g_closed,
           g_failed);
    SSL_CTX_free(ctx);
    return 0;
}
