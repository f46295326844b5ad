/*
 * eventfd pool (kwc_efd.h).
 */
#include "kwc_efd.h"

#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "keyward/error.h"
#include "kw_eventfd.h"

kw_efd_pool_t *kw_efd_pool_new(size_t cap)
{
    kw_efd_pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->fds = calloc(cap > 0 ? cap : 1, sizeof(int));
    if (p->fds == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->fds);
        free(p);
        return NULL;
    }
    p->cap = cap;
    atomic_init(&p->refs, 1);
    return p;
}

void kw_efd_pool_ref(kw_efd_pool_t *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void kw_efd_pool_unref(kw_efd_pool_t *p)
{
    if (p == NULL || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < p->n; i++)
        close(p->fds[i]);
    pthread_mutex_destroy(&p->lock);
    free(p->fds);
    free(p);
}

int kw_efd_pool_get(kw_efd_pool_t *p)
{
    int fd = -1;
    pthread_mutex_lock(&p->lock);
    if (p->n > 0)
        fd = p->fds[--p->n];
    pthread_mutex_unlock(&p->lock);
    if (fd >= 0)
        return fd;
    fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd >= 0 ? fd : KW_EIO;
}

void kw_efd_pool_put(kw_efd_pool_t *p, int fd, int signalled)
{
    if (signalled)
        kw_eventfd_drain(fd);
    pthread_mutex_lock(&p->lock);
    if (p->n < p->cap) {
        p->fds[p->n++] = fd;
        fd = -1;
    }
    pthread_mutex_unlock(&p->lock);
    if (fd >= 0)
        close(fd);
}

void kw_efd_pool_abandon(kw_efd_pool_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        close(p->fds[i]);
    p->n = 0;
}
