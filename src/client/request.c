/*
 * The request object (kwc_request.h): creation, completion (publishing the result, then the
 * signals: its own eventfd when watched, the caller's fd or callback), reference counting between
 * caller and loop. Its list link is kw_list.h's. Knows nothing of connections or cores.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keyward/error.h"
#include "kw_eventfd.h"
#include "kwc_request.h"

atomic_uint kwc_fork_gen;

kw_request_t *kwc_request_new(kw_efd_pool_t *pool, int internal, int *err)
{
    kw_request_t *r = calloc(1, sizeof(*r));
    if (err != NULL)
        *err = KW_ENOMEM;
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
            if (err != NULL)
                *err = r->efd; /* KW_ENOFD: out of descriptors, not memory */
            free(r);
            return NULL;
        }
        kw_efd_pool_ref(pool);
        r->pool = pool;
    }
    return r;
}

void kwc_request_destroy(kw_request_t *r)
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

void kwc_request_unref(kw_request_t *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        kwc_request_destroy(r);
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
    kwc_request_unref(r);
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

/* Public (client.h), but the loop asks it too. */
int kw_request_done(const kw_request_t *req)
{
    return req != NULL && atomic_load_explicit(&req->state, memory_order_acquire) == KWC_REQ_DONE;
}

int kwc_request_ours(const kw_request_t *r)
{
    return r->core != NULL &&
           r->fork_gen == atomic_load_explicit(&kwc_fork_gen, memory_order_relaxed);
}
