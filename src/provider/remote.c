/*
 * Key server requests for the provider (remote.h): submit through the shared client, then either
 * pause the current ASYNC job until its connection's wait fd is signalled, or block; turn every
 * failure into an error message a person can act on.
 */
#include "remote.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/crypto.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "provider.h"
#include "kw_hex.h"
#include "kw_payload.h"
#include "kw_guard.h"

#define KW_RC_RAISED 1 /* an error was already raised (client creation failed) */

/*
 * ASYNC jobs wait on one eventfd per ASYNC_WAIT_CTX (that is, per SSL connection), registered once
 * and kept until the wait context is freed (in callback mode only while a request is pending).
 * Applications keep their own tables of wait fds (HAProxy aborts when a number it still tracks is
 * registered again), so the fd a connection waits on must not come and go per request: each request
 * signals this fd once (kw_request_notify), and the resumed job consumes that signal so the fd is
 * quiet between operations.
 */
typedef struct async_slot_s {
    int fd;
    kw_request_t *pending; /* the request a paused job waits for; freed if the job is abandoned */
    ASYNC_callback_fn cb;  /* the application's callback when it asked for one, else NULL */
    void *cb_arg;
    atomic_int fired; /* the completer is done with the slot (callback mode) */
} async_slot_t;

static const char async_slot_key = 'k'; /* its address names our fd in every wait context */

/* Wait-context cleanup (the SSL is being freed): a job abandoned while paused still owns its
 * request; once kw_request_free returns, the fd is never written again, so it can be closed. */
static void async_slot_cleanup(ASYNC_WAIT_CTX *wctx, const void *key, OSSL_ASYNC_FD fd, void *data)
{
    async_slot_t *slot = data;
    (void)wctx;
    (void)key;
    if (slot->pending != NULL)
        kw_request_free(slot->pending);
    close(fd);
    free(slot);
}

/* The wait context's slot, made and registered on first use; NULL when that fails. */
static async_slot_t *async_slot(ASYNC_WAIT_CTX *wctx)
{
    OSSL_ASYNC_FD fd = -1;
    void *data = NULL;
    if (ASYNC_WAIT_CTX_get_fd(wctx, &async_slot_key, &fd, &data) == 1 && data != NULL)
        return data;
    async_slot_t *slot = calloc(1, sizeof(*slot));
    if (slot == NULL)
        return NULL;
    slot->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (slot->fd < 0 || ASYNC_WAIT_CTX_set_wait_fd(wctx, &async_slot_key, slot->fd, slot,
                                                   async_slot_cleanup) != 1) {
        if (slot->fd >= 0)
            close(slot->fd);
        free(slot);
        return NULL;
    }
    return slot;
}

/* Consumes the one signal of a completed request, which its completer writes right after
 * publishing the result (so at most a few instructions later). */
static void async_slot_consume(int fd)
{
    uint64_t v;
    for (;;) {
        if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) || (errno != EAGAIN && errno != EINTR))
            return;
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        (void)poll(&p, 1, 1000);
    }
}

/* Callback mode: nobody watches the fd, so it need not outlive the request and the connection
 * does not hold it for its whole life (keyward-proxy: two descriptors per tunnel, not three); a
 * later operation registers a new one. clear_fd runs no cleanup, so this closes and frees. */
static void async_slot_drop(ASYNC_WAIT_CTX *wctx, async_slot_t *slot, int promised)
{
    /* The request is complete, so a promised callback is running or a few instructions away
     * (even when the application resumed the job without waiting for it): let it finish. */
    while (promised && !atomic_load(&slot->fired))
        sched_yield();
    if (ASYNC_WAIT_CTX_clear_fd(wctx, &async_slot_key) == 1) {
        close(slot->fd);
        free(slot);
    }
}

/* Runs on the completing thread (kw_request_notify_fn); the slot outlives the request. */
static void async_slot_fire(void *arg)
{
    async_slot_t *slot = arg;
    (void)slot->cb(slot->cb_arg);
    atomic_store(&slot->fired, 1); /* the last touch: async_slot_drop may free it now */
}

/*
 * Pauses job until req completes; blocks instead when the job cannot take a wait fd. An
 * application that asked for a callback (SSL_CTX_set_async_callback, which libssl passes on as
 * the wait context's callback) is called on the completing thread instead, and the fd stays
 * quiet: no fd to watch per connection, no write and read per operation. The slot and its fd
 * are still registered, so a wait context freed while its job is paused frees the request (and
 * the callback is then never called).
 */
static int wait_async(ASYNC_JOB *job, kw_request_t *req)
{
    ASYNC_WAIT_CTX *wctx = ASYNC_get_wait_ctx(job);
    async_slot_t *slot = wctx != NULL ? async_slot(wctx) : NULL;
    if (slot == NULL)
        return kw_request_wait(req);
    if (ASYNC_WAIT_CTX_get_callback(wctx, &slot->cb, &slot->cb_arg) != 1)
        slot->cb = NULL;
    int by_callback = slot->cb != NULL;
    atomic_store(&slot->fired, 0);
    int asked = by_callback ? kw_request_notify_fn(req, async_slot_fire, slot)
                            : kw_request_notify(req, slot->fd);
    if (asked != 1) {
        if (by_callback)
            async_slot_drop(wctx, slot, 0);
        return kw_request_wait(req); /* already complete */
    }
    slot->pending = req;
    /* A promised callback always comes, so pause at least once: the application then resumes
     * a paused job, never one that went on without it. */
    int paused = 0;
    while (!kw_request_done(req) || (by_callback && !paused)) {
        if (ASYNC_pause_job() != 1)
            break;
        paused = 1;
    }
    int rc = kw_request_wait(req); /* returns at once unless the pause failed */
    if (!by_callback)
        async_slot_consume(slot->fd);
    slot->pending = NULL;
    if (by_callback)
        async_slot_drop(wctx, slot, 1);
    return rc;
}

/* A completed request and its reply payload (pointing into req). */
typedef struct reply_s {
    kw_request_t *req; /* owned: kw_request_free it (NULL when none was completed) */
    const uint8_t *data;
    size_t len;
    uint8_t remote; /* the key server's error code when run returns KW_EREMOTE */
} reply_t;

/* Submits msg and waits for the reply into r. Returns 0 or why it failed (KW_RC_RAISED when an
 * error was already raised). The caller frees r->req in every case. */
static int run(kw_prov_ctx_t *pctx, const kw_msg_t *msg, reply_t *r)
{
    kw_client_t *client = kw_prov_client(pctx);
    kw_request_t *req = NULL;
    ASYNC_JOB *job;
    int rc;
    memset(r, 0, sizeof(*r));
    if (client == NULL)
        return KW_RC_RAISED;
    KW_GUARD(kw_client_submit(client, msg, &req));
    job = ASYNC_get_current_job();
    rc = job != NULL ? wait_async(job, req) : kw_request_wait(req);
    if (rc != 0) {
        kw_request_free(req);
        return rc;
    }
    r->req = req;
    return kw_request_result(req, &r->data, &r->len, &r->remote);
}

/* The reason code for a transport failure (rc not KW_EREMOTE). */
static int transport_reason(int rc)
{
    switch (rc) {
    case KW_ETLS:
        return KW_PROV_R_REFUSED; /* a TLS failure with the key server: which side, in the text */
    case KW_ETHREAD:
        return KW_PROV_R_NO_THREAD;
    case KW_EIO:
        return KW_PROV_R_LOCAL_FILE;
    default:
        return KW_PROV_R_UNREACHABLE;
    }
}

/* Raises the error for a failed request: rc from run/kw_request_result, remote the KWP code. The
 * cause comes first, whole: OpenSSL keeps at most 1023 characters of an error's text. */
static void raise_failure(kw_prov_ctx_t *pctx, const char *what, const char *idtext, int rc,
                          uint8_t remote)
{
    const char *servers = kw_prov_servers(pctx);
    char last[KW_PROV_ERR_MAX] = "";
    if (rc == KW_RC_RAISED)
        return;
    if (rc != KW_EREMOTE) {
        if (pctx->client != NULL)
            (void)kw_client_last_error(pctx->client, last, sizeof(last));
        /* A connection that failed is explained by its last error; a timeout by itself. */
        int by_last = last[0] != '\0' && (rc == KW_ETLS || rc == KW_ECONN || rc == KW_ETHREAD);
        kw_prov_raise(pctx, transport_reason(rc), "%s with key %s failed: %s (key servers: %s%s%s)",
                      what, idtext, by_last ? last : kw_strerror(rc), servers,
                      !by_last && last[0] != '\0' ? "; last error: " : "", by_last ? "" : last);
        return;
    }
    switch (remote) {
    case KW_ERR_KEY_NOT_FOUND:
        kw_prov_raise(pctx, KW_PROV_R_KEY_NOT_FOUND,
                      "key %s not found on key server %s; add the key to the key server or "
                      "fix the stub/URI",
                      idtext, servers);
        break;
    case KW_ERR_CERT_NOT_FOUND:
        kw_prov_raise(pctx, KW_PROV_R_KEY_NOT_FOUND,
                      "key %s not found on key server %s (no key with a certificate chain has "
                      "that id); fix the URI, add the key and its chain to the key server, or use "
                      "a key stub file (keyward stub --cert SITE.crt)",
                      idtext, servers);
        break;
    case KW_ERR_NOT_AUTHORISED:
        kw_prov_raise(pctx, KW_PROV_R_NOT_AUTHORISED,
                      "key server %s refused %s with key %s: this edge is not authorised to use "
                      "it",
                      servers, what, idtext);
        break;
    default:
        kw_prov_raise(pctx, KW_PROV_R_REMOTE, "key server %s failed %s with key %s: %s (0x%02x)",
                      servers, what, idtext, kw_remote_error_name(remote), remote);
        break;
    }
}

/* 1 when key can be used for a private-key operation, else 0 with an error raised. */
static int has_private(kw_key_t *key, const char *what)
{
    if (key->remote && key->pub != NULL)
        return 1;
    kw_prov_raise(key->pctx, KW_PROV_R_NO_PRIVATE,
                  "%s needs a private key, but this keyward key object holds only a public key",
                  what);
    return 0;
}

/* Runs msg with the key id of key added; copies the reply payload into out (cap bytes). Returns
 * 1, or 0 with an error raised. */
static int key_request(kw_key_t *key, kw_msg_t *msg, uint8_t *out, size_t cap, size_t *out_len,
                       const char *what)
{
    reply_t r;
    msg->digest = kw_bytes(key->digest, KW_DIGEST_LEN);
    int rc = run(key->pctx, msg, &r);
    if (rc == 0 && r.len > cap)
        rc = KW_ETOOBIG;
    if (rc == 0) {
        memcpy(out, r.data, r.len);
        *out_len = r.len;
    } else if (rc == KW_ETOOBIG) {
        kw_prov_raise(key->pctx, KW_PROV_R_REMOTE,
                      "%s with key %s: the key server's reply (%zu bytes) does not fit %zu bytes",
                      what, key->idtext, r.len, cap);
    } else {
        raise_failure(key->pctx, what, key->idtext, rc, r.remote);
    }
    kw_request_free(r.req);
    return rc == 0;
}

int kw_remote_key_op(kw_key_t *key, uint8_t opcode, const uint8_t *payload, size_t len,
                     const uint8_t *extra, size_t extra_len, uint8_t *out, size_t cap,
                     size_t *out_len, const char *what)
{
    kw_msg_t msg;
    if (!has_private(key, what))
        return 0;
    if (len > KW_MAX_BODY / 2 || extra_len > 64) {
        kw_prov_raise(key->pctx, KW_PROV_R_UNSUPPORTED, "%s: input of %zu bytes is too large", what,
                      len);
        return 0;
    }
    memset(&msg, 0, sizeof(msg));
    msg.opcode = opcode;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(payload, len);
    if (extra != NULL)
        msg.extra = kw_bytes(extra, extra_len);
    return key_request(key, &msg, out, cap, out_len, what);
}

/* Maps a failed look-up to MISSING or NO_ANSWER. */
static int lookup_outcome(int rc, uint8_t remote)
{
    if (rc != KW_EREMOTE)
        return KW_LOOKUP_NO_ANSWER;
    switch (remote) {
    case KW_ERR_KEY_NOT_FOUND:
    case KW_ERR_CERT_NOT_FOUND:
    case KW_ERR_NOT_AUTHORISED:
        return KW_LOOKUP_MISSING;
    default:
        return KW_LOOKUP_NO_ANSWER;
    }
}

int kw_remote_get_chain(kw_prov_ctx_t *pctx, const uint8_t *id, size_t id_len, uint8_t **chain,
                        size_t *chain_len)
{
    kw_msg_t msg;
    reply_t r;
    char idtext[8 + 2 * KW_DIGEST_LEN];
    int rc;
    *chain = NULL;
    *chain_len = 0;
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_GET_CERT_CHAIN;
    msg.has_opcode = 1;
    if (id_len == KW_DIGEST_LEN) {
        msg.digest = kw_bytes(id, id_len);
        memcpy(idtext, "sha256=", 7);
        kw_hex_encode(id, id_len, idtext + 7);
    } else {
        msg.ski = kw_bytes(id, id_len);
        memcpy(idtext, "ski=", 4);
        kw_hex_encode(id, id_len, idtext + 4);
    }
    rc = run(pctx, &msg, &r);
    if (rc == 0 && r.len == 0) {
        rc = KW_EREMOTE;
        r.remote = KW_ERR_CERT_NOT_FOUND;
    }
    if (rc == 0) {
        *chain = OPENSSL_memdup(r.data, r.len);
        *chain_len = r.len;
        rc = *chain == NULL ? KW_ENOMEM : 0;
    }
    kw_request_free(r.req);
    if (rc == 0)
        return KW_LOOKUP_FOUND;
    raise_failure(pctx, "certificate look-up", idtext, rc, r.remote);
    return lookup_outcome(rc, r.remote);
}

int kw_remote_has_key(kw_key_t *key)
{
    kw_msg_t msg;
    reply_t r;
    int found = 0;
    int rc;
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_LIST_KEYS;
    msg.has_opcode = 1;
    rc = run(key->pctx, &msg, &r);
    if (rc == 0)
        found = kw_keylist_has(r.data, r.len, key->digest);
    kw_request_free(r.req);
    if (rc == 0 && found)
        return KW_LOOKUP_FOUND;
    if (rc == 0) {
        rc = KW_EREMOTE;
        r.remote = KW_ERR_KEY_NOT_FOUND;
    }
    raise_failure(key->pctx, "key look-up", key->idtext, rc, r.remote);
    return lookup_outcome(rc, r.remote);
}

int kw_remote_msg_op(kw_key_t *key, kw_msg_t *msg, uint8_t *out, size_t cap, size_t *out_len,
                     const char *what)
{
    return has_private(key, what) && key_request(key, msg, out, cap, out_len, what);
}
