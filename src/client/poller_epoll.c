/*
 * The core's poller (kwc_poller.h) on epoll: watchers are registered with their kwc_io_t as the
 * event's data, and kwc_epoll_run calls each one's callback with the events translated.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "kwc_poller.h"

static uint32_t to_epoll(uint32_t events)
{
    return ((events & KWC_IO_READ) != 0 ? EPOLLIN : 0u) |
           ((events & KWC_IO_WRITE) != 0 ? EPOLLOUT : 0u);
}

static uint32_t from_epoll(uint32_t ev)
{
    return ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 ? KWC_IO_READ : 0u) |
           ((ev & EPOLLOUT) != 0 ? KWC_IO_WRITE : 0u);
}

static int ctl(kwc_epoll_t *ep, int op, kwc_io_t *io, uint32_t events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = to_epoll(events);
    ev.data.ptr = io;
    return epoll_ctl(ep->epfd, op, io->fd, &ev);
}

static int ep_watch(kwc_poller_t *p, kwc_io_t *io, uint32_t events)
{
    kwc_epoll_t *ep = (kwc_epoll_t *)p;
    if (io->added && io->events == events)
        return 0;
    if (ctl(ep, io->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io, events) != 0)
        return -1;
    io->added = 1;
    io->events = events;
    return 0;
}

static void ep_forget(kwc_poller_t *p, kwc_io_t *io)
{
    kwc_epoll_t *ep = (kwc_epoll_t *)p;
    /* Removed explicitly: a child between fork() and exec() may still share the socket. */
    if (io->added)
        (void)epoll_ctl(ep->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->added = 0;
    io->events = 0;
}

static const kwc_poller_ops_t epoll_ops = {ep_watch, ep_forget};

int kwc_epoll_init(kwc_epoll_t *ep)
{
    ep->base.ops = &epoll_ops;
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    return ep->epfd >= 0 ? 0 : -1;
}

void kwc_epoll_close(kwc_epoll_t *ep)
{
    if (ep->epfd >= 0)
        close(ep->epfd);
    ep->epfd = -1;
}

int kwc_epoll_wait(kwc_epoll_t *ep, kwc_epoll_events_t *out, int timeout_ms)
{
    struct epoll_event evs[KWC_EPOLL_BATCH];
    out->n = 0;
    int n = epoll_wait(ep->epfd, evs, KWC_EPOLL_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        out->e[i].io = evs[i].data.ptr;
        out->e[i].events = from_epoll(evs[i].events);
    }
    out->n = n;
    return n;
}

void kwc_epoll_dispatch(const kwc_epoll_events_t *evs)
{
    for (int i = 0; i < evs->n; i++)
        evs->e[i].io->cb(evs->e[i].io, evs->e[i].events);
}

int kwc_epoll_mask(kwc_epoll_t *ep, kwc_io_t *io, int masked)
{
    if (!io->added)
        return -1;
    return ctl(ep, EPOLL_CTL_MOD, io, masked ? 0u : io->events);
}
