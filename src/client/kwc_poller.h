/*
 * The poller between the client's core and its connections, in libuv's watcher shape
 * (uv__io_init(w, cb, fd)): a connection owns a kwc_io_t naming its fd and the function to call
 * with its events, and asks a poller to watch it; it never sees the loop that waits. The core's
 * loop is epoll (kwc_epoll_t below); a host program's own event loop can drive the client by
 * implementing these two operations instead.
 */
#ifndef KWC_POLLER_H
#define KWC_POLLER_H

#include <stdint.h>

/* Events, independent of the poller's own flags. An error or hang-up is reported as READ (the
 * read then says what happened). */
#define KWC_IO_READ  0x1u
#define KWC_IO_WRITE 0x2u

typedef struct kwc_io_s kwc_io_t;
typedef void (*kwc_io_cb)(kwc_io_t *io, uint32_t events);

struct kwc_io_s {
    kwc_io_cb cb;
    int fd;
    uint32_t events; /* the interest asked for */
    int added;       /* registered with the poller */
};

static inline void kwc_io_init(kwc_io_t *io, kwc_io_cb cb, int fd)
{
    io->cb = cb;
    io->fd = fd;
    io->events = 0;
    io->added = 0;
}

typedef struct kwc_poller_s kwc_poller_t;

typedef struct kwc_poller_ops_s {
    /* Sets io's interest to events (KWC_IO_*), registering io on first use. 0 or -1 (errno). */
    int (*watch)(kwc_poller_t *p, kwc_io_t *io, uint32_t events);
    /* Stops watching io; called before its fd is closed. */
    void (*forget)(kwc_poller_t *p, kwc_io_t *io);
} kwc_poller_ops_t;

struct kwc_poller_s {
    const kwc_poller_ops_t *ops;
};

static inline int kwc_poller_watch(kwc_poller_t *p, kwc_io_t *io, uint32_t events)
{
    return p->ops->watch(p, io, events);
}

static inline void kwc_poller_forget(kwc_poller_t *p, kwc_io_t *io)
{
    p->ops->forget(p, io);
}

/* The core's poller: epoll. */
typedef struct kwc_epoll_s {
    kwc_poller_t base;
    int epfd;
} kwc_epoll_t;

/* 0, or -1 with errno. */
int kwc_epoll_init(kwc_epoll_t *ep);
/* Closes the epoll fd (also in a forked child: the parent's registrations are untouched). */
void kwc_epoll_close(kwc_epoll_t *ep);
/* Events taken from the poller, handed to their callbacks later (under the runner's lock). */
#define KWC_EPOLL_BATCH 64
typedef struct kwc_epoll_events_s {
    int n;
    struct {
        kwc_io_t *io;
        uint32_t events; /* KWC_IO_* */
    } e[KWC_EPOLL_BATCH];
} kwc_epoll_events_t;

/* Waits up to timeout_ms (0: just looks) for events. Returns their number, or -1 (EINTR: 0). */
int kwc_epoll_wait(kwc_epoll_t *ep, kwc_epoll_events_t *out, int timeout_ms);
/* Calls the callback of every io in evs with its events. */
void kwc_epoll_dispatch(const kwc_epoll_events_t *evs);
/* While masked, io stays registered but wakes nobody (a caller reads it itself); unmasking
 * restores its interest. 0 or -1. */
int kwc_epoll_mask(kwc_epoll_t *ep, kwc_io_t *io, int masked);

#endif /* KWC_POLLER_H */
