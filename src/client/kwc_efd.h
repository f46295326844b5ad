/*
 * A pool of eventfds for request completion, so a request costs no eventfd()/close() syscalls in
 * the steady state. Reference counted: the client's I/O core and every live request hold a
 * reference, so requests may outlive the client. Thread-safe.
 */
#ifndef KWC_EFD_H
#define KWC_EFD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct kw_efd_pool_s {
    pthread_mutex_t lock;
    atomic_int refs;
    int *fds; /* idle, drained eventfds */
    size_t n;
    size_t cap;
} kw_efd_pool_t;

/* A pool that keeps at most cap idle eventfds; one reference. NULL when out of memory. */
kw_efd_pool_t *kw_efd_pool_new(size_t cap);

void kw_efd_pool_ref(kw_efd_pool_t *p);

/* Drops a reference; the last one closes the idle fds and frees the pool. */
void kw_efd_pool_unref(kw_efd_pool_t *p);

/* A drained eventfd (EFD_CLOEXEC|EFD_NONBLOCK), or KW_EIO when the system has none left. */
int kw_efd_pool_get(kw_efd_pool_t *p);

/* Keeps fd for reuse (drained first when it may have been signalled: a read the common case, a
 * request nobody watched, does without), or closes it when the pool is full. */
void kw_efd_pool_put(kw_efd_pool_t *p, int fd, int signalled);

/* In a forked child, holding p->lock from the fork: closes the idle fds (the child's copies) and
 * leaves the pool to leak; nothing may use it afterwards. */
void kw_efd_pool_abandon(kw_efd_pool_t *p);

#endif /* KWC_EFD_H */
