/*
 * Requests (include/keyward/client.h): completion through an eventfd (the request's own, and
 * optionally one more the caller owns, kw_request_notify, or a callback, kw_request_notify_fn),
 * blocking wait with poll,
 * results, and freeing/cancelling. A request has two references while pending, the caller's and
 * the I/O thread's; whoever drops the last one frees it. Also the intrusive request list.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keyward/error.h"
#include "kw_eventfd.h"
#include "kwc_internal.h"

kw_request_t *kwc_request_new(kw_efd_pool_t *pool, int internal)
{
    kw_request_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->efd = -1;
    r->internal = (uint8_t)(internal != 0);
    r->fork_gen = atomic_load_explicit(&kwc_fork_gen, memory_order_relaxed);
    atomic_init(&r->state, KWC_REQ_PENDING);
    atomic_init(&r->cancelled, 0);
    atomic_init(&r->notify, KWC_NOTIFY_NONE);
    atomic_init(&r->notified, 0);
    atomic_init(&r->sig, KWC_SIG_NONE);
    atomic_init(&r->refs, internal ? 1 : 2);
    if (!internal) {
        r->efd = kw_efd_pool_get(pool);
        if (r->efd < 0) {
            free(r);
            return NULL;
        }
        kw_efd_pool_ref(pool);
        r->pool = pool;
    }
    return r;
}

static void request_destroy(kw_request_t *r)
{
    if (r->reply != NULL) {
        OPENSSL_cleanse(r->reply, r->reply_len);
        free(r->reply);
    }
    free(r->frame);
    if (r->efd >= 0) {
        if (r->fork_gen != atomic_load_explicit(&kwc_fork_gen, memory_order_relaxed)) {
            close(r->efd); /* made before fork(): the pool belongs to the abandoned parent */
        } else {
            kw_efd_pool_put(r->pool, r->efd, atomic_load(&r->sig) == KWC_SIG_SENT);
            kw_efd_pool_unref(r->pool);
        }
    }
    free(r);
}

static void request_unref(kw_request_t *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        request_destroy(r);
}

void kwc_request_complete(kw_request_t *r, int status, uint8_t remote_err, const uint8_t *payload,
                          size_t len)
{
    r->status = status;
    r->remote_err = remote_err;
    if (status == 0 && len > 0 && !kwc_request_is_cancelled(r)) {
        r->reply = malloc(len);
        if (r->reply == NULL) {
            r->status = KW_ENOMEM;
        } else {
            memcpy(r->reply, payload, len);
            r->reply_len = len;
        }
    }
    /* The notification is taken before the result is published, so whoever sees the request
     * complete also sees kw_request_notify refused (0), never a late registration that would
     * still be signalled. */
    int nfd = atomic_exchange(&r->notify, KWC_NOTIFY_TAKEN);
    atomic_store(&r->state, KWC_REQ_DONE);
    /* The own eventfd only when watched: a caller that runs the loop itself (no I/O thread)
     * completes its own request, and nobody needs the write and the read that would drain it. */
    int sig = KWC_SIG_NONE;
    if (r->efd >= 0 && !atomic_compare_exchange_strong(&r->sig, &sig, KWC_SIG_DONE)) {
        atomic_store(&r->sig, KWC_SIG_SENT); /* it was watched */
        kw_eventfd_signal(r->efd);
    }
    if (nfd >= 0)
        kw_eventfd_signal(nfd);
    else if (nfd == KWC_NOTIFY_FN)
        r->notify_fn(r->notify_arg);
    atomic_store(&r->notified, 1);
    request_unref(r);
}

int kwc_request_is_cancelled(const kw_request_t *r)
{
    return atomic_load_explicit(&r->cancelled, memory_order_relaxed);
}

void kwc_request_watch(kw_request_t *r)
{
    int old = KWC_SIG_NONE;
    if (r->efd < 0 || atomic_compare_exchange_strong(&r->sig, &old, KWC_SIG_WATCHED))
        return; /* the completer will signal */
    if (old == KWC_SIG_DONE && atomic_compare_exchange_strong(&r->sig, &old, KWC_SIG_SENT))
        kw_eventfd_signal(r->efd); /* completed unwatched: signal it ourselves */
}

/* Submitted in this process (not before a fork), so its core is ours. */
static int ours(const kw_request_t *r)
{
    return r->core != NULL &&
           r->fork_gen == atomic_load_explicit(&kwc_fork_gen, memory_order_relaxed);
}

int kw_request_fd(const kw_request_t *req)
{
    if (req == NULL)
        return -1;
    kw_request_t *r = (kw_request_t *)req; /* watching is not a change the caller sees */
    kwc_request_watch(r);
    /* Someone must complete it while the caller watches the fd: the I/O thread. If none can
     * start, the request fails now with that reason (the fd is then readable). */
    if (ours(r) && !kw_request_done(r) && kwc_core_need_thread(r->core) != 0)
        kwc_core_abort(r->core, r, KW_ETHREAD);
    return r->efd;
}

int kw_request_done(const kw_request_t *req)
{
    return req != NULL && atomic_load_explicit(&req->state, memory_order_acquire) == KWC_REQ_DONE;
}

int kw_request_notify(kw_request_t *req, int fd)
{
    int expected = KWC_NOTIFY_NONE;
    if (req == NULL || fd < 0)
        return KW_EINVAL;
    if (ours(req) && !kw_request_done(req) && kwc_core_need_thread(req->core) != 0)
        return KW_ETHREAD;
    if (atomic_compare_exchange_strong(&req->notify, &expected, fd))
        return 1; /* the completer will see fd */
    return expected == KWC_NOTIFY_TAKEN ? 0 : KW_EINVAL;
}

int kw_request_notify_fn(kw_request_t *req, void (*fn)(void *arg), void *arg)
{
    int expected = KWC_NOTIFY_NONE;
    if (req == NULL || fn == NULL)
        return KW_EINVAL;
    if (ours(req) && !kw_request_done(req) && kwc_core_need_thread(req->core) != 0)
        return KW_ETHREAD;
    if (atomic_load(&req->notify) == KWC_NOTIFY_NONE) { /* not ours to overwrite otherwise */
        req->notify_fn = fn;
        req->notify_arg = arg;
    }
    if (atomic_compare_exchange_strong(&req->notify, &expected, KWC_NOTIFY_FN))
        return 1; /* the completer will call fn */
    return expected == KWC_NOTIFY_TAKEN ? 0 : KW_EINVAL;
}

/* Makes sure the completer never writes to the notify fd after this returns: refuse it if not yet
 * taken, else wait for the write in progress (a few instructions away). */
static void notify_off(kw_request_t *r)
{
    int old = atomic_exchange(&r->notify, KWC_NOTIFY_OFF);
    if (old != KWC_NOTIFY_TAKEN)
        return;
    while (!atomic_load(&r->notified))
        sched_yield();
}

int kw_request_wait(kw_request_t *req)
{
    if (req == NULL)
        return KW_EINVAL;
    if (!kw_request_done(req) && ours(req))
        kwc_core_wait(req->core, req);
    if (!kw_request_done(req))
        kwc_request_watch(req);
    while (!kw_request_done(req)) {
        struct pollfd p = {.fd = req->efd, .events = POLLIN, .revents = 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return KW_EIO;
    }
    return 0;
}

int kw_request_result(const kw_request_t *req, const uint8_t **payload, size_t *len,
                      uint8_t *remote_err)
{
    if (req == NULL || !kw_request_done(req))
        return KW_EINVAL;
    if (payload != NULL)
        *payload = req->reply;
    if (len != NULL)
        *len = req->reply_len;
    if (remote_err != NULL)
        *remote_err = req->status == KW_EREMOTE ? req->remote_err : 0;
    return req->status;
}

void kw_request_free(kw_request_t *req)
{
    if (req == NULL)
        return;
    if (req->fork_gen != atomic_load_explicit(&kwc_fork_gen, memory_order_relaxed)) {
        /* Submitted before fork(): its I/O thread does not exist here; nothing else refers to it
         * in this process. */
        request_destroy(req);
        return;
    }
    atomic_store_explicit(&req->cancelled, 1, memory_order_relaxed);
    notify_off(req);
    request_unref(req);
}

void kwc_rlist_push(kwc_rlist_t *l, kw_request_t *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

void kwc_rlist_remove(kwc_rlist_t *l, kw_request_t *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = NULL;
    r->next = NULL;
    l->n--;
}

kw_request_t *kwc_rlist_pop(kwc_rlist_t *l)
{
    kw_request_t *r = l->head;
    if (r != NULL)
        kwc_rlist_remove(l, r);
    return r;
}

void kwc_rlist_splice(kwc_rlist_t *dst, kwc_rlist_t *src)
{
    if (src->head == NULL)
        return;
    if (dst->tail != NULL) {
        dst->tail->next = src->head;
        src->head->prev = dst->tail;
    } else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    dst->n += src->n;
    src->head = NULL;
    src->tail = NULL;
    src->n = 0;
}
