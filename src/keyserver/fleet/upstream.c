/*
 * Forwarding to upstream key servers (upstream.h): one libkeyward client for all upstreams, one
 * pending entry per forwarded request with a uv_poll_t on the request's completion eventfd, and
 * the relay of the answer to the edge's connection.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fleet/authz.h"
#include "kw_clock.h"
#include "keyward/client.h"
#include "keyward/error.h"
#include "kw_list.h"
#include "kw_log.h"
#include "kw_payload.h"
#include "obs/metrics.h"
#include "fleet/upstream.h"

/* One forwarded request. Owned by the upstream's pending list until its poll handle is closed. */
typedef struct fwd_s {
    uv_poll_t poll;
    kw_request_t *req;  /* owned; freed once the poll handle is closed */
    kw_ks_peer_t *peer; /* held, and one unit of peer->inflight */
    kw_ks_upstream_t *up;
    uint32_t id; /* the edge's request id */
    uint8_t opcode;
    uint64_t t0;    /* kw_clock_ns() when forwarded */
    uint8_t *local; /* 0xA3: this server's key ids to merge with the upstream's (owned) */
    size_t local_len;
    kw_ks_audit_rec_t rec;
    kw_link_t link; /* the upstream's pending list */
} fwd_t;

struct kw_ks_upstream_s {
    uv_loop_t *loop;
    kw_client_t *client;
    kw_ks_audit_t *audit;        /* not owned */
    kw_ks_metrics_t *metrics;    /* not owned; NULL: off */
    kw_ks_authz_t *const *authz; /* the rules in force (fleet.h), not owned */
    kw_list_t pending;           /* fwd_t, newest first */
    int stopped;
    uint64_t failed;           /* requests that could not be forwarded */
    uint64_t failed_logged_at; /* uv_now of the last warning about them */
};

/* "a,b,c" from the list; malloc'ed, NULL when out of memory. */
static char *join_servers(char *const *v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    char *s = malloc(len);
    size_t pos = 0;
    for (size_t i = 0; s != NULL && i < n; i++) {
        size_t one = strlen(v[i]);
        if (i > 0)
            s[pos++] = ',';
        memcpy(s + pos, v[i], one);
        pos += one;
    }
    if (s != NULL)
        s[pos] = '\0';
    return s;
}

/* The identity towards the upstreams must be valid for TLS client authentication: an upstream
 * (any OpenSSL server verifying clients) refuses a certificate whose extendedKeyUsage lacks
 * clientAuth, e.g. a server-only certificate given as --cert. Returns 0, or KW_ECONFIG with err
 * naming the file, the cause and the fix. An unreadable file is left to kw_client_new. */
static int check_client_auth(const char *path, int is_default, char *err, size_t errlen)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (x == NULL)
        return 0;
    uint32_t flags = X509_get_extension_flags(x);
    int ok = (flags & EXFLAG_XKUSAGE) == 0 || (X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    X509_free(x);
    if (ok)
        return 0;
    snprintf(err, errlen,
             "--upstream: %s, %s, is not valid for TLS client authentication (its "
             "extendedKeyUsage lacks clientAuth), so every upstream would refuse this key server: "
             "give --upstream-cert/--upstream-key a client certificate of the upstreams' CA, or "
             "use a certificate with serverAuth and clientAuth (keyward keygen makes one)",
             path,
             is_default ? "this key server's --cert (the identity towards upstreams unless "
                          "--upstream-cert)"
                        : "the --upstream-cert");
    return KW_ECONFIG;
}

int kw_ks_upstream_new(uv_loop_t *loop, const kw_ks_config_t *cfg, kw_ks_audit_t *audit,
                       kw_ks_metrics_t *metrics, kw_ks_authz_t *const *authz,
                       kw_ks_upstream_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->n_upstreams == 0)
        return 0;
    int rc = check_client_auth(cfg->upstream_cert != NULL ? cfg->upstream_cert : cfg->cert,
                               cfg->upstream_cert == NULL, err, errlen);
    if (rc != 0)
        return rc;
    kw_ks_upstream_t *u = calloc(1, sizeof(*u));
    char *servers = join_servers(cfg->upstreams, cfg->n_upstreams);
    if (u == NULL || servers == NULL) {
        free(u);
        free(servers);
        snprintf(err, errlen, "out of memory setting up --upstream");
        return KW_ENOMEM;
    }
    kw_client_config_t cc;
    memset(&cc, 0, sizeof(cc));
    cc.servers = servers;
    cc.cert_file = cfg->upstream_cert != NULL ? cfg->upstream_cert : cfg->cert;
    cc.key_file = cfg->upstream_key != NULL ? cfg->upstream_key : cfg->key;
    cc.ca_file = cfg->upstream_ca != NULL ? cfg->upstream_ca : cfg->ca;
    cc.timeout_ms = cfg->upstream_timeout_ms > 0 ? (unsigned)cfg->upstream_timeout_ms
                                                 : KW_KS_UPSTREAM_TIMEOUT_MS;
    char why[512] = "";
    rc = kw_client_new(&cc, &u->client, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen,
                 "upstream %s: %s (check --upstream-cert/--upstream-key/"
                 "--upstream-ca, which default to --cert/--key/--ca)",
                 servers, why);
        free(servers);
        free(u);
        return rc;
    }
    kw_info("forwarding keys not held here to %s (as %s)", servers, cc.cert_file);
    free(servers);
    u->loop = loop;
    u->audit = audit;
    u->metrics = metrics;
    u->authz = authz;
    *out = u;
    return 0;
}

size_t kw_ks_upstream_pending(const kw_ks_upstream_t *u)
{
    return u != NULL ? u->pending.n : 0;
}

static void on_fwd_closed(uv_handle_t *h)
{
    free(((fwd_t *)h->data)->local);
    free(h->data);
}

/* Ends a forward: closes its poll handle before freeing the request (whose eventfd goes back to
 * the client's pool and may be watched again at once), then releases the peer. */
static void fwd_end(fwd_t *f)
{
    kw_ks_upstream_t *u = f->up;
    kw_ks_peer_t *p = f->peer;
    kw_list_remove(&u->pending, &f->link);
    uv_close((uv_handle_t *)&f->poll, on_fwd_closed);
    kw_request_free(f->req);
    f->req = NULL;
    kw_ks_peer_done(p);
    kw_ks_peer_release(p);
}

/* The result of a finished forward: 0 (payload in *payload) or the error to relay. A request
 * the upstreams did not answer is logged with the client's reason (the upstream refused this key
 * server's certificate, nothing listens, ...), at most once a second with a count. */
static uint8_t fwd_result(fwd_t *f, const uint8_t **payload, size_t *len)
{
    kw_ks_upstream_t *u = f->up;
    uint8_t remote = 0;
    int rc = kw_request_result(f->req, payload, len, &remote);
    if (rc == KW_EREMOTE)
        return remote;
    if (rc != 0) {
        u->failed++;
        uint64_t now = uv_now(u->loop);
        if (u->failed_logged_at == 0 || now - u->failed_logged_at >= 1000) {
            char why[640] = "";
            u->failed_logged_at = now;
            kw_client_last_error(u->client, why, sizeof(why));
            kw_warn("upstream request failed (%llu so far, answered 0x42): %s%s%s",
                    (unsigned long long)u->failed, kw_strerror(rc), why[0] != '\0' ? ": " : "",
                    why);
        }
        return KW_ERR_UPSTREAM_UNAVAILABLE;
    }
    return 0;
}

/* 0xA3 relayed: the local ids, then the upstream's ones the edge may use and that are not local
 * (payload NULL when the upstream failed). Returns what kw_ks_peer_reply returns. */
static int reply_merged(fwd_t *f, const uint8_t *payload, size_t len)
{
    kw_ks_peer_t *p = f->peer;
    size_t max = KW_MAX_REPLY_PAYLOAD / KW_DIGEST_LEN;
    size_t n = f->local_len / KW_DIGEST_LEN;
    size_t nup = payload != NULL ? len / KW_DIGEST_LEN : 0;
    uint8_t *out = malloc((n + nup) * KW_DIGEST_LEN + 1);
    if (out == NULL)
        return kw_ks_peer_error(p, f->id, KW_ERR_INTERNAL);
    if (f->local_len > 0)
        memcpy(out, f->local, f->local_len);
    kw_reader_t r; /* the upstream's key list */
    const uint8_t *id;
    kw_reader_init(&r, payload, payload != NULL ? len : 0);
    while (n < max && kw_keylist_next(&r, &id)) {
        kw_ks_keyid_t probe = {KW_KS_KEYID_DIGEST, id, KW_DIGEST_LEN};
        if (kw_keylist_has(out, n * KW_DIGEST_LEN, id) ||
            kw_ks_authz_check_remote(*f->up->authz, p->edge, &probe, KW_OP_LIST_KEYS) !=
                KW_KS_ALLOWED)
            continue;
        memcpy(out + n++ * KW_DIGEST_LEN, id, KW_DIGEST_LEN);
    }
    int rc = kw_ks_peer_reply(p, f->id, KW_OP_RESPONSE, out, n * KW_DIGEST_LEN);
    free(out);
    return rc;
}

static void on_fwd_ready(uv_poll_t *h, int status, int events)
{
    fwd_t *f = h->data;
    const uint8_t *payload = NULL;
    size_t len = 0;
    uint8_t result = KW_ERR_UPSTREAM_UNAVAILABLE;
    (void)events;
    if (kw_request_done(f->req))
        result = fwd_result(f, &payload, &len);
    else if (status == 0)
        return; /* woken without a completion: keep waiting */
    kw_ks_peer_t *p =
        f->peer; /* a closing peer refuses replies (KW_ECLOSED); close is idempotent */
    if (f->opcode == KW_OP_LIST_KEYS) {
        if (result != 0)
            kw_debug("list keys: the upstream failed (%s); answering with local keys only",
                     kw_remote_error_name(result));
        result = 0;
        if (reply_merged(f, payload, len) != 0)
            kw_ks_peer_close(p);
    } else {
        int sent = result == 0 ? kw_ks_peer_reply(p, f->id, KW_OP_RESPONSE, payload, len)
                               : kw_ks_peer_error(p, f->id, result);
        if (sent != 0)
            kw_ks_peer_close(p);
    }
    kw_ks_audit_log(f->up->audit, &f->rec, p->edge != NULL ? p->edge->cn : "", result);
    kw_ks_metrics_request(f->up->metrics, f->opcode, result, kw_clock_ns() - f->t0);
    fwd_end(f);
}

/* The hop count a forwarded copy of msg carries, or -1 when no hop is left. */
static int next_hops(const kw_msg_t *msg)
{
    unsigned hops = msg->has_hops ? msg->hops : KW_DEFAULT_MAX_HOPS;
    if (hops > KW_KS_MAX_HOPS)
        hops = KW_KS_MAX_HOPS;
    return hops == 0 ? -1 : (int)hops - 1;
}

/* Submits msg and watches its completion. Returns 0; KW_E* when nothing was started (the caller
 * frees f); 1 when the poll handle could not start (it is closing and frees f). */
static int fwd_start(kw_ks_upstream_t *u, fwd_t *f, const kw_msg_t *msg, int hops)
{
    kw_msg_t copy = *msg;
    copy.hops = (uint8_t)hops;
    copy.has_hops = 1;
    int rc = kw_client_submit(u->client, &copy, &f->req);
    if (rc != 0) {
        u->failed++;
        uint64_t now = uv_now(u->loop);
        if (u->failed_logged_at == 0 || now - u->failed_logged_at >= 1000) { /* once a second */
            u->failed_logged_at = now;
            kw_warn("cannot forward a request upstream (%llu so far, answered 0x42): %s%s",
                    (unsigned long long)u->failed, kw_strerror(rc),
                    rc == KW_ENOFD ? " (each request in flight upstream holds one eventfd)" : "");
        }
        return rc;
    }
    rc = uv_poll_init(u->loop, &f->poll, kw_request_fd(f->req));
    if (rc != 0) {
        kw_warn("cannot watch a forwarded request: %s", uv_strerror(rc));
        kw_request_free(f->req);
        return KW_EIO;
    }
    f->poll.data = f;
    rc = uv_poll_start(&f->poll, UV_READABLE, on_fwd_ready);
    if (rc != 0) {
        kw_warn("cannot watch a forwarded request: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&f->poll, on_fwd_closed);
        kw_request_free(f->req);
        return 1;
    }
    return 0;
}

uint8_t kw_ks_upstream_forward(kw_ks_upstream_t *u, kw_ks_peer_t *p, const kw_msg_t *msg,
                               const kw_ks_audit_rec_t *rec)
{
    if (u == NULL)
        return KW_ERR_KEY_NOT_FOUND;
    int hops = next_hops(msg);
    if (hops < 0) {
        kw_warn("connection %llu: request %u needs forwarding but has no hop left (a loop "
                "between key servers? check --upstream)",
                (unsigned long long)p->id, msg->id);
        return KW_ERR_UPSTREAM_UNAVAILABLE;
    }
    if (u->stopped)
        return KW_ERR_UPSTREAM_UNAVAILABLE;
    fwd_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return KW_ERR_UPSTREAM_UNAVAILABLE;
    int rc = fwd_start(u, f, msg, hops);
    if (rc != 0) {
        if (rc < 0)
            free(f);
        return KW_ERR_UPSTREAM_UNAVAILABLE;
    }
    f->up = u;
    f->id = msg->id;
    f->opcode = msg->opcode;
    f->t0 = kw_clock_ns();
    f->rec = *rec;
    f->peer = kw_ks_peer_hold(p);
    p->inflight++;
    kw_list_push_front(&u->pending, &f->link);
    return 0;
}

int kw_ks_upstream_list_keys(kw_ks_upstream_t *u, kw_ks_peer_t *p, const kw_msg_t *msg,
                             const kw_ks_audit_rec_t *rec, uint8_t *local, size_t len)
{
    if (kw_ks_upstream_forward(u, p, msg, rec) != 0)
        return -1;
    /* kw_ks_upstream_forward puts the new one first */
    fwd_t *f = KW_LIST_ENTRY(u->pending.head, fwd_t, link);
    f->local = local;
    f->local_len = len;
    return 0;
}

void kw_ks_upstream_stop(kw_ks_upstream_t *u)
{
    if (u == NULL)
        return;
    u->stopped = 1;
    while (u->pending.head != NULL) /* cancels: kw_request_free of a pending one drops its reply */
        fwd_end(KW_LIST_ENTRY(u->pending.head, fwd_t, link));
}

void kw_ks_upstream_free(kw_ks_upstream_t *u)
{
    if (u == NULL)
        return;
    kw_client_free(u->client);
    free(u);
}
