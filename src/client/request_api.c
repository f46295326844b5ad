/*
 * The public request API (include/keyward/client.h): waiting (blocking, on the request's fd, or
 * through a notification), results, and freeing/cancelling. Waiting hands the caller to its
 * core (kwc_core.h), which may run the client's loop on the caller's thread.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>

#include "keyward/error.h"
#include "kwc_core.h"
#include "kwc_request.h"

int kw_request_fd(const kw_request_t *req)
{
    if (req == NULL)
        return -1;
    kw_request_t *r = (kw_request_t *)req; /* watching is not a change the caller sees */
    kwc_request_watch(r);
    /* Someone must complete it while the caller watches the fd: the I/O thread. If none can
     * start, the request fails now with that reason (the fd is then readable). */
    if (kwc_request_ours(r) && !kw_request_done(r) && kwc_core_need_thread(r->core) != 0)
        kwc_core_abort(r->core, r, KW_ETHREAD);
    return r->efd;
}

int kw_request_notify(kw_request_t *req, int fd)
{
    int expected = KWC_NOTIFY_NONE;
    if (req == NULL || fd < 0)
        return KW_EINVAL;
    if (kwc_request_ours(req) && !kw_request_done(req) && kwc_core_need_thread(req->core) != 0)
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
    if (kwc_request_ours(req) && !kw_request_done(req) && kwc_core_need_thread(req->core) != 0)
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
    if (!kw_request_done(req) && kwc_request_ours(req))
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
        kwc_request_destroy(req);
        return;
    }
    atomic_store_explicit(&req->cancelled, 1, memory_order_relaxed);
    notify_off(req);
    kwc_request_unref(req);
}
