/*
 * The client's request object, shared by the caller and whoever runs the client's loop: its
 * reference count, the published result, the completion signals (its eventfd, a caller's fd or
 * callback), and the intrusive list that queues it. The bottom layer of the client: it knows no
 * connection, server or core, only opaque pointers to them.
 *
 * Threads: a caller and the loop share a request through a reference count; the result fields are
 * published by a store of `state` and read after an acquire load. Fields marked "loop" belong to
 * whoever holds the core's io_lock.
 */
#ifndef KWC_REQUEST_H
#define KWC_REQUEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "keyward/client.h"
#include "kw_list.h"
#include "kwc_efd.h"

enum kwc_req_state { KWC_REQ_PENDING = 0, KWC_REQ_DONE = 1 };
/* The request's own eventfd is written only when someone watches it (kw_request_fd, a waiter in
 * poll): not watched and not done, watched, done without a signal, signalled. */
enum { KWC_SIG_NONE = 0, KWC_SIG_WATCHED = 1, KWC_SIG_DONE = 2, KWC_SIG_SENT = 3 };
/* kw_request_notify states besides a fd: none asked, taken by the completer, refused by free, a
 * function (kw_request_notify_fn) to call. */
enum { KWC_NOTIFY_NONE = -1, KWC_NOTIFY_TAKEN = -2, KWC_NOTIFY_OFF = -3, KWC_NOTIFY_FN = -4 };

struct kwc_server_s;
struct kwc_core_s;

struct kw_request_s {
    /* shared */
    atomic_int refs;              /* caller + loop */
    atomic_int state;             /* kwc_req_state; DONE published with release */
    atomic_int cancelled;         /* the caller freed it while pending */
    atomic_int notify;            /* kw_request_notify's fd, or a KWC_NOTIFY_* state */
    atomic_int notified;          /* the completer has finished writing to the notify fd */
    atomic_int sig;               /* KWC_SIG_*: whether efd is watched and signalled */
    void (*notify_fn)(void *arg); /* with KWC_NOTIFY_FN; set before it is published */
    void *notify_arg;
    int efd;                 /* -1 for internal requests */
    unsigned fork_gen;       /* kwc_fork_gen at creation */
    kw_efd_pool_t *pool;     /* reference held while efd is ours */
    struct kwc_core_s *core; /* the core it was submitted to (waits go there) */
    /* result: written by the loop before state becomes DONE */
    int status;
    uint8_t remote_err;
    uint8_t *reply; /* cleansed on free */
    size_t reply_len;
    /* request frame, encoded at submit; the id bytes are rewritten for each try */
    uint8_t *frame;
    size_t frame_len;
    /* loop */
    kw_link_t link;              /* on at most one list: a core's queue, a server's sent, pending */
    struct kwc_server_s *server; /* where it is in flight, or NULL */
    uint32_t id;                 /* 0 when not in the id map */
    uint8_t internal;            /* a health ping of the client itself (no caller) */
    uint8_t opcode;
    unsigned tries;
    int last_err;
    uint64_t tried_mask;
    uint64_t deadline_us;     /* whole request */
    uint64_t try_deadline_us; /* this try; then another server may be tried */
    uint64_t sent_us;
};

/* The request whose link k is, or NULL for NULL (requests are queued on kw_list_t lists). */
static inline kw_request_t *kwc_req_of(kw_link_t *k)
{
    return KW_LIST_ENTRY(k, kw_request_t, link);
}

/* Incremented in every forked child (client.c). */
extern atomic_uint kwc_fork_gen;

/* A new request; NULL with KW_ENOMEM or KW_ENOFD (no eventfd) in *err (may be NULL). Internal
 * requests (health pings) have one reference and no eventfd; a caller's have two. */
kw_request_t *kwc_request_new(kw_efd_pool_t *pool, int internal, int *err);
/* Records the result, signals the caller and drops the loop's reference. */
void kwc_request_complete(kw_request_t *r, int status, uint8_t remote_err, const uint8_t *payload,
                          size_t len);
int kwc_request_is_cancelled(const kw_request_t *r);
/* r's eventfd will be signalled at completion (signalled now if r is already complete). */
void kwc_request_watch(kw_request_t *r);
/* Drops one reference; the last one frees r. */
void kwc_request_unref(kw_request_t *r);
/* Frees r at once (a request made before fork(), which nothing else in this process holds). */
void kwc_request_destroy(kw_request_t *r);
/* Submitted in this process (not before a fork), so its core is ours. */
int kwc_request_ours(const kw_request_t *r);

#endif /* KWC_REQUEST_H */
