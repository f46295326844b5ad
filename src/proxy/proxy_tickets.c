/*
 * keyward-proxy fleet session tickets (proxy_tickets.h): the key set and its refetch timer, the
 * ticket key callback (nginx's ticket format: key name 16 | IV 16 | AES-256-CBC | HMAC-SHA256),
 * and the session-id contexts of --session-context. Worker threads read the set under a
 * read lock; worker 0's loop replaces it and counts the fetches for /metrics (atomics). Key bytes
 * are copied to the stack for one ticket and cleansed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "proxy_tickets.h"
#include "proxy_fetch.h"
#include "proxy_tls.h"

enum { CTX_DEFAULT = 0, CTX_NGINX, CTX_HAPROXY, CTX_TEXT };

#define RETRY_MAX_MS 10000u

struct kw_px_tickets_s {
    const kw_proxy_config_t *cfg;
    int fleet;             /* --tickets-from-keyserver */
    int ctx_mode;          /* CTX_* from --session-context */
    pthread_rwlock_t lock; /* guards set, have_set */
    kw_ticket_keys_t set;
    int have_set;
    uint8_t local[KW_TICKET_KEY_LEN]; /* random: used when no fleet key may encrypt */
    kw_client_t *client;
    uv_timer_t timer;
    uv_work_t work;
    int timer_on, busy;
    kw_ticket_keys_t fetched; /* the thread pool's result */
    int fetch_rc;
    uint8_t fetch_remote;
    int outage_logged, expired_logged;
    atomic_int_fast64_t last_fetch; /* Unix time of the last good fetch (metrics thread reads) */
    atomic_uint_fast64_t fetches_ok, fetches_failed;
};

/* A fetch ended (loop thread of worker 0, or the start): counted for /metrics. */
static void count_fetch(kw_px_tickets_t *t, int ok)
{
    atomic_fetch_add_explicit(ok ? &t->fetches_ok : &t->fetches_failed, 1, memory_order_relaxed);
    if (ok)
        atomic_store_explicit(&t->last_fetch, (int64_t)time(NULL), memory_order_relaxed);
}

void kw_px_tickets_stats(kw_px_tickets_t *t, kw_px_tickets_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (t == NULL)
        return;
    out->fleet = t->fleet;
    pthread_rwlock_rdlock(&t->lock);
    out->have_set = t->have_set;
    pthread_rwlock_unlock(&t->lock);
    out->last_fetch = atomic_load_explicit(&t->last_fetch, memory_order_relaxed);
    out->fetches_ok = atomic_load_explicit(&t->fetches_ok, memory_order_relaxed);
    out->fetches_failed = atomic_load_explicit(&t->fetches_failed, memory_order_relaxed);
}

/* ---- picking keys (any worker thread) ---- */

/* Copies the key to encrypt with at now into out: the fleet key of the current epoch, else the
 * local one. */
static void enc_key(kw_px_tickets_t *t, uint64_t now, uint8_t out[KW_TICKET_KEY_LEN])
{
    memcpy(out, t->local, KW_TICKET_KEY_LEN);
    pthread_rwlock_rdlock(&t->lock);
    for (int i = 0; t->have_set && i < KW_TICKET_EPOCHS; i++) {
        const kw_ticket_key_t *k = &t->set.keys[i];
        if (k->not_before <= now && now < k->not_after)
            memcpy(out, k->key, KW_TICKET_KEY_LEN);
    }
    pthread_rwlock_unlock(&t->lock);
}

/* The key named name that may still decrypt at now into out: a fleet key until one rotation
 * after its own period (tickets live one to two rotations), or the local key. Returns 1 (and
 * *renew: not the key encrypting now) or 0. */
static int dec_key(kw_px_tickets_t *t, const uint8_t *name, uint64_t now,
                   uint8_t out[KW_TICKET_KEY_LEN], int *renew)
{
    int found = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (int i = 0; t->have_set && i < KW_TICKET_EPOCHS && !found; i++) {
        const kw_ticket_key_t *k = &t->set.keys[i];
        if (memcmp(k->key, name, KW_TICKET_NAME_LEN) != 0 ||
            now >= k->not_after + t->set.rotation_s)
            continue;
        memcpy(out, k->key, KW_TICKET_KEY_LEN);
        *renew = !(k->not_before <= now && now < k->not_after);
        found = 1;
    }
    pthread_rwlock_unlock(&t->lock);
    if (!found && memcmp(t->local, name, KW_TICKET_NAME_LEN) == 0) {
        memcpy(out, t->local, KW_TICKET_KEY_LEN);
        *renew = 0;
        found = 1;
    }
    return found;
}

/* Keys the cipher and the MAC with key (name | HMAC key | AES key). */
static int init_crypto(const uint8_t *key, const unsigned char *iv, EVP_CIPHER_CTX *cctx,
                       EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(key + KW_TICKET_NAME_LEN),
                                          KW_TICKET_HMAC_LEN),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    const uint8_t *aes = key + KW_TICKET_NAME_LEN + KW_TICKET_HMAC_LEN;
    int ok = enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv)
                 : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv);
    return ok == 1 && EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: 1 ok, 2 ok and issue a fresh ticket, 0 unknown key
 * (full handshake), -1 error. */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    kw_px_tickets_t *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    uint8_t key[KW_TICKET_KEY_LEN];
    uint64_t now = (uint64_t)time(NULL);
    int rc = -1;
    int renew = 0;
    if (t == NULL)
        return -1;
    if (enc) {
        enc_key(t, now, key);
        memcpy(key_name, key, KW_TICKET_NAME_LEN);
        if (RAND_bytes(iv, 16) == 1 && init_crypto(key, iv, cctx, hctx, 1))
            rc = 1;
    } else if (!dec_key(t, key_name, now, key, &renew)) {
        rc = 0;
    } else if (init_crypto(key, iv, cctx, hctx, 0)) {
        /* 2 also for every TLS 1.3 resumption, as nginx does: OpenSSL sends a TLS 1.3 client a
         * new ticket after a resumed handshake only then, and clients use a ticket once. */
        rc = renew || SSL_version(s) == TLS1_3_VERSION ? 2 : 1;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* ---- session-id contexts ---- */

int kw_px_nginx_sid_ctx(X509 *const *certs, size_t n, uint8_t out[20])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(md, "HTTP", 4) == 1;
    for (size_t i = n; ok && i > 0; i--)
        ok = X509_digest(certs[i - 1], EVP_sha1(), d, &len) == 1 &&
             EVP_DigestUpdate(md, d, len) == 1;
    ok = ok && EVP_DigestFinal_ex(md, d, &len) == 1 && len == 20;
    if (ok)
        memcpy(out, d, 20);
    EVP_MD_CTX_free(md);
    return ok ? 0 : KW_ECRYPTO;
}

/* ctx's certificates, leaf (the first configured) first; the current one is left as it was. */
static size_t ctx_certs(SSL_CTX *ctx, X509 *leaf, X509 **out, size_t max)
{
    size_t n = 0;
    out[n++] = leaf;
    int more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
    while (more == 1 && n < max) {
        X509 *x = SSL_CTX_get0_certificate(ctx);
        if (x != NULL && X509_cmp(x, leaf) != 0)
            out[n++] = x;
        more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT);
    }
    more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
    while (more == 1 && SSL_CTX_get0_certificate(ctx) != leaf)
        more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT);
    return n;
}

static int set_sid_ctx(const kw_px_tickets_t *t, SSL_CTX *ctx, X509 *leaf)
{
    const char *text = t->cfg->session_context;
    if (t->ctx_mode == CTX_HAPROXY)
        return SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"haproxy", 7) == 1;
    if (t->ctx_mode == CTX_TEXT)
        return SSL_CTX_set_session_id_context(ctx, (const unsigned char *)text,
                                              (unsigned)strlen(text)) == 1;
    if (t->ctx_mode != CTX_NGINX)
        return 1;
    X509 *certs[8];
    uint8_t sid[20];
    size_t n = ctx_certs(ctx, leaf, certs, 8);
    return kw_px_nginx_sid_ctx(certs, n, sid) == 0 &&
           SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid)) == 1;
}

int kw_px_tickets_setup_ctx(kw_px_tickets_t *t, SSL_CTX *ctx, X509 *leaf)
{
    if (t == NULL)
        return 0;
    if (!set_sid_ctx(t, ctx, leaf))
        return KW_ETLS;
    if (!t->fleet)
        return 0;
    SSL_CTX_set_app_data(ctx, t);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    pthread_rwlock_rdlock(&t->lock);
    if (t->have_set)
        SSL_CTX_set_timeout(ctx, 2L * (long)t->set.rotation_s);
    pthread_rwlock_unlock(&t->lock);
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) == 1 ? 0 : KW_ETLS;
}

/* ---- the key set and its refetch (worker 0's loop) ---- */

static void describe(const kw_ticket_keys_t *s, char *out, size_t cap)
{
    snprintf(out, cap, "epochs %llu-%llu, %u s each, the last one ends at %llu",
             (unsigned long long)s->keys[0].epoch, (unsigned long long)s->keys[2].epoch,
             s->rotation_s, (unsigned long long)s->keys[2].not_after);
}

static void install(kw_px_tickets_t *t, const kw_ticket_keys_t *s)
{
    pthread_rwlock_wrlock(&t->lock);
    t->set = *s;
    t->have_set = 1;
    pthread_rwlock_unlock(&t->lock);
    t->expired_logged = 0;
}

/* Drops a set whose last key has ended: tickets then use the local key. */
static void expire(kw_px_tickets_t *t, uint64_t now)
{
    int dropped = 0;
    pthread_rwlock_wrlock(&t->lock);
    if (t->have_set && now >= t->set.keys[KW_TICKET_EPOCHS - 1].not_after) {
        OPENSSL_cleanse(&t->set, sizeof(t->set));
        t->have_set = 0;
        dropped = 1;
    }
    pthread_rwlock_unlock(&t->lock);
    if (dropped && !t->expired_logged) {
        t->expired_logged = 1;
        kw_warn("session-ticket keys: the last fleet keys have expired and the key servers "
                "still cannot be reached: tickets now use a local random key (sessions resume "
                "only at this edge until the fleet keys are back)");
    }
}

/* Milliseconds until the next fetch: just after the current epoch ends, or a retry. */
static uint64_t next_fetch_ms(const kw_px_tickets_t *t, int ok)
{
    uint64_t now = (uint64_t)time(NULL);
    unsigned n = t->have_set ? t->set.rotation_s : 0;
    if (!ok || !t->have_set) {
        uint64_t retry = n > 0 ? (uint64_t)n * 250u : RETRY_MAX_MS;
        return retry < 1000 ? 1000 : retry > RETRY_MAX_MS ? RETRY_MAX_MS : retry;
    }
    uint64_t end = t->set.keys[1].not_after;
    return (end > now ? (end - now) * 1000u : 0) + 300u;
}

static void fetch_work(uv_work_t *req)
{
    kw_px_tickets_t *t = req->data;
    t->fetch_remote = 0;
    t->fetch_rc = kw_ticket_keys(t->client, &t->fetched, &t->fetch_remote);
}

static void log_failure(kw_px_tickets_t *t, int rc, uint8_t remote)
{
    char what[160];
    char last[256] = "";
    if (t->outage_logged)
        return;
    t->outage_logged = 1;
    if (rc == KW_EREMOTE)
        snprintf(what, sizeof(what), "the key server answered %s (0x%02x)%s",
                 kw_remote_error_name(remote), remote,
                 remote == KW_ERR_NOT_AUTHORISED
                     ? ": it needs --ticket-secret and an allow rule naming 'tickets' for this edge"
                     : "");
    else
        snprintf(what, sizeof(what), "%s", kw_strerror(rc));
    (void)kw_client_last_error(t->client, last, sizeof(last));
    pthread_rwlock_rdlock(&t->lock);
    int have = t->have_set;
    char set[160] = "";
    if (have)
        describe(&t->set, set, sizeof(set));
    pthread_rwlock_unlock(&t->lock);
    if (have)
        kw_warn("session-ticket keys: cannot fetch them from the key servers (%s%s%s); keeping the "
                "last good keys (%s), retrying",
                what, last[0] ? ": " : "", last, set);
    else
        kw_warn("session-ticket keys: cannot fetch them from the key servers (%s%s%s); tickets "
                "use a local random key until a fetch succeeds",
                what, last[0] ? ": " : "", last);
}

static void on_timer(uv_timer_t *timer);

static void fetch_done(uv_work_t *req, int status)
{
    kw_px_tickets_t *t = req->data;
    int ok = status == 0 && t->fetch_rc == 0;
    t->busy = 0;
    count_fetch(t, ok);
    if (ok) {
        char set[160];
        describe(&t->fetched, set, sizeof(set));
        if (t->outage_logged)
            kw_info("session-ticket keys: fetched again from the key servers (%s)", set);
        else
            kw_debug("session-ticket keys: %s", set);
        install(t, &t->fetched);
        t->outage_logged = 0;
    } else {
        log_failure(t, status != 0 ? KW_ECLOSED : t->fetch_rc, t->fetch_remote);
        expire(t, (uint64_t)time(NULL));
    }
    OPENSSL_cleanse(&t->fetched, sizeof(t->fetched));
    if (t->timer_on)
        (void)uv_timer_start(&t->timer, on_timer, next_fetch_ms(t, ok), 0);
}

static void on_timer(uv_timer_t *timer)
{
    kw_px_tickets_t *t = timer->data;
    if (t->busy)
        return;
    t->work.data = t;
    if (uv_queue_work(timer->loop, &t->work, fetch_work, fetch_done) == 0)
        t->busy = 1;
    else
        (void)uv_timer_start(&t->timer, on_timer, RETRY_MAX_MS, 0);
}

int kw_px_tickets_start(kw_px_tickets_t *t, uv_loop_t *loop)
{
    if (t == NULL || !t->fleet)
        return 0;
    if (uv_timer_init(loop, &t->timer) != 0)
        return KW_EIO;
    t->timer.data = t;
    t->timer_on = 1;
    return uv_timer_start(&t->timer, on_timer, next_fetch_ms(t, t->have_set), 0) == 0 ? 0 : KW_EIO;
}

void kw_px_tickets_stop(kw_px_tickets_t *t)
{
    if (t != NULL && t->timer_on) {
        t->timer_on = 0;
        uv_close((uv_handle_t *)&t->timer, NULL);
    }
}

static int parse_context(kw_px_tickets_t *t, const char *text, char *err, size_t errlen)
{
    if (text == NULL)
        t->ctx_mode = CTX_DEFAULT;
    else if (strcmp(text, "nginx") == 0)
        t->ctx_mode = CTX_NGINX;
    else if (strcmp(text, "haproxy") == 0)
        t->ctx_mode = CTX_HAPROXY;
    else
        t->ctx_mode = CTX_TEXT;
    if (t->ctx_mode == CTX_TEXT && (text[0] == '\0' || strlen(text) > SSL_MAX_SID_CTX_LENGTH)) {
        snprintf(err, errlen,
                 "--session-context: give nginx, haproxy, or a text of 1 to %d bytes "
                 "(the context of the servers whose sessions should resume here)",
                 SSL_MAX_SID_CTX_LENGTH);
        return KW_ECONFIG;
    }
    return 0;
}

/* The first set, fetched before the workers start. */
static int first_fetch(kw_px_tickets_t *t, const kw_proxy_config_t *cfg, char *err, size_t errlen)
{
    kw_proxy_tls_t tmp; /* kw_proxy_fetch_client_new makes the client from cfg into tmp.client */
    memset(&tmp, 0, sizeof(tmp));
    if (cfg->keyservers.n == 0) {
        snprintf(err, errlen,
                 "--tickets-from-keyserver needs --keyserver and this edge's "
                 "--client-cert/--client-key/--ca");
        return KW_ECONFIG;
    }
    char msg[512];
    int rc = kw_proxy_fetch_client_new(&tmp, cfg, msg, sizeof(msg));
    if (rc != 0) {
        snprintf(err, errlen, "--tickets-from-keyserver: %s", msg);
        return rc;
    }
    t->client = tmp.client;
    kw_ticket_keys_t set;
    uint8_t remote = 0;
    rc = kw_ticket_keys(t->client, &set, &remote);
    count_fetch(t, rc == 0);
    if (rc == 0) {
        char d[160];
        describe(&set, d, sizeof(d));
        kw_info("session-ticket keys from the key servers (%s): sessions resume at every edge "
                "of the fleet",
                d);
        install(t, &set);
    } else {
        log_failure(t, rc, remote);
    }
    OPENSSL_cleanse(&set, sizeof(set));
    return 0;
}

int kw_px_tickets_new(const kw_proxy_config_t *cfg, kw_px_tickets_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->tickets_from_keyserver && cfg->session_context == NULL)
        return 0;
    kw_px_tickets_t *t = calloc(1, sizeof(*t));
    if (t == NULL || pthread_rwlock_init(&t->lock, NULL) != 0) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    t->cfg = cfg;
    t->fleet = cfg->tickets_from_keyserver;
    int rc = parse_context(t, cfg->session_context, err, errlen);
    if (rc == 0 && RAND_bytes(t->local, sizeof(t->local)) != 1) {
        snprintf(err, errlen, "cannot make a random ticket key");
        rc = KW_ECRYPTO;
    }
    if (rc == 0 && t->fleet)
        rc = first_fetch(t, cfg, err, errlen);
    if (rc != 0) {
        kw_px_tickets_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void kw_px_tickets_free(kw_px_tickets_t *t)
{
    if (t == NULL)
        return;
    kw_client_free(t->client);
    pthread_rwlock_destroy(&t->lock);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}
