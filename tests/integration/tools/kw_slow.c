/*
 * kw_slow: slowloris clients for the proxy's handshake-timeout test.
 *   kw_slow --connect HOST:PORT [--conns N] [--mode idle|partial] [--min-ms A] [--max-ms B]
 * Opens N connections that send nothing (idle) or only the first bytes of a ClientHello
 * (partial), then waits for the server to close each one. Prints when they were closed and
 * exits 0 only when every connection was closed by the server between A and B ms.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kw_addr.h"
#include "kw_tool.h"

#define USAGE                                                                                      \
    "kw_slow --connect HOST:PORT [--conns N] [--mode idle|partial] [--min-ms A] [--max-ms B]"

/* A TLS record header announcing a 512-byte handshake message, and its first few bytes. */
static const unsigned char partial_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00,
                                              0x01, 0xfc, 0x03, 0x03, 0x11, 0x22, 0x33};

static int open_conn(const struct sockaddr_storage *addr, socklen_t addrlen, int partial)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, addrlen) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if (partial && write(fd, partial_hello, sizeof(partial_hello)) != sizeof(partial_hello)) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *mode = NULL;
    unsigned conns = 10;
    double min_ms = 0, max_ms = 60000;
    const kw_tool_arg_t args[] = {
        {"connect", .s = &connect_to}, {"conns", .u = &conns},   {"mode", .s = &mode},
        {"min-ms", .d = &min_ms},      {"max-ms", .d = &max_ms}, {.name = NULL},
    };
    kw_tool_opts_t common = {0};
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    char err[300];
    kw_tool_parse(argc, argv, args, &common, USAGE);
    int partial = mode != NULL && strcmp(mode, "partial") == 0;
    if (connect_to == NULL || conns == 0 || conns > 4096 ||
        kw_addr_resolve(connect_to, 0, &addr, &addrlen, err, sizeof(err)) != 0) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 2;
    }
    int n = (int)conns;
    struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
    double *closed_at = calloc((size_t)n, sizeof(*closed_at));
    if (pfd == NULL || closed_at == NULL) {
        return 2;
    }
    double t0 = (kw_tool_now() * 1000.0);
    for (int i = 0; i < n; i++) {
        pfd[i].fd = open_conn(&addr, addrlen, partial);
        pfd[i].events = POLLIN;
        if (pfd[i].fd < 0) {
            fprintf(stderr, "kw_slow: connect failed: %s\n", strerror(errno));
            return 1;
        }
    }
    int open = n;
    while (open > 0 && (kw_tool_now() * 1000.0) - t0 < max_ms + 1000) {
        poll(pfd, (nfds_t)n, 50);
        for (int i = 0; i < n; i++) {
            char buf[512];
            if (pfd[i].fd < 0 || pfd[i].revents == 0) {
                continue;
            }
            ssize_t r = read(pfd[i].fd, buf, sizeof(buf));
            if (r <= 0) { /* closed (or reset) by the server */
                closed_at[i] = (kw_tool_now() * 1000.0) - t0;
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open--;
            }
        }
    }
    double lo = 1e18, hi = 0;
    int in_window = 0;
    for (int i = 0; i < n; i++) {
        if (pfd[i].fd >= 0) {
            close(pfd[i].fd);
            continue;
        }
        lo = closed_at[i] < lo ? closed_at[i] : lo;
        hi = closed_at[i] > hi ? closed_at[i] : hi;
        in_window += closed_at[i] >= min_ms && closed_at[i] <= max_ms;
    }
    printf("kw_slow: %d/%d %s connections closed by the server (after %.0f..%.0f ms; %d within "
           "%.0f..%.0f ms)\n",
           n - open, n, partial ? "partial-hello" : "idle", n > open ? lo : 0.0, hi, in_window,
           min_ms, max_ms);
    free(pfd);
    free(closed_at);
    return in_window == n ? 0 : 1;
}
