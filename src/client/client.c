/*
 * The libkeyward client's public API (include/keyward/client.h): creating and freeing a client,
 * submitting requests (starting the I/O core lazily), the blocking call, diagnostics, and fork
 * safety. Every client is on a process-wide registry so the pthread_atfork handlers can quiesce
 * its I/O thread before fork() and abandon its core in the child (see kwc_core.h). The top of the
 * client: it starts a core (kwc_core.h) with the settings and TLS context it holds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/provider.h>

#include "keyward/error.h"
#include "kw_guard.h"
#include "kw_tls.h"
#include "kw_file.h"
#include "kwc_core.h"

#define KWC_DEFAULT_TIMEOUT_MS 5000u
#define KWC_DEFAULT_CONNECT_MS 2000u
#define KWC_DEFAULT_TRIES      3u

/* A credential held in memory: PEM bytes (OPENSSL_malloc'd) and a name for messages. */
typedef struct kwc_pem_s {
    char *name;
    uint8_t *data;
    size_t len;
} kwc_pem_t;

struct kw_client_s {
    /* settings, immutable after kw_client_new; the credentials are read (or copied) there, so a
     * forked child rebuilds its TLS context from memory and never opens a file (DESIGN.md §6) */
    kwc_pem_t cert; /* data NULL: no client certificate */
    kwc_pem_t key;  /* cleansed when the client is freed */
    kwc_pem_t ca;
    uint32_t timeout_ms;
    uint32_t connect_ms;
    uint32_t max_tries;
    size_t pad_to;
    kw_srv_addr_t *addrs;
    size_t n_addrs;
    /* TLS: NULL in a forked child until its first core starts */
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov;
    SSL_CTX *ssl_ctx;
    pthread_mutex_t lock; /* creating or replacing the core */
    _Atomic(kwc_core_t *) core;
    char last_err[KWC_ERR_MAX]; /* copy kept across core replacement, under lock */
    kw_client_t *reg_prev;
    kw_client_t *reg_next;
};

/* Process-wide: the clients alive, for the fork handlers. */
static pthread_mutex_t kwc_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static kw_client_t *kwc_reg_head;
static pthread_once_t kwc_atfork_once = PTHREAD_ONCE_INIT;

/* Before fork(): no I/O thread may be inside OpenSSL or halfway through a change of state. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&kwc_reg_lock);
    for (kw_client_t *c = kwc_reg_head; c != NULL; c = c->reg_next) {
        pthread_mutex_lock(&c->lock);
        kwc_core_t *core = atomic_load(&c->core);
        if (core != NULL) {
            pthread_mutex_lock(&core->io_lock);
            pthread_mutex_lock(&core->pool->lock);
        }
    }
}

static void atfork_parent(void)
{
    for (kw_client_t *c = kwc_reg_head; c != NULL; c = c->reg_next) {
        kwc_core_t *core = atomic_load(&c->core);
        if (core != NULL) {
            pthread_mutex_unlock(&core->pool->lock);
            pthread_mutex_unlock(&core->io_lock);
        }
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&kwc_reg_lock);
}

/* In the child (one thread): the parent's I/O threads do not exist here. Close the descriptors
 * of their cores, never touch their SSL objects, and start afresh on first use. */
static void atfork_child(void)
{
    atomic_fetch_add(&kwc_fork_gen, 1);
    for (kw_client_t *c = kwc_reg_head; c != NULL; c = c->reg_next) {
        kwc_core_t *core = atomic_load(&c->core);
        if (core != NULL) {
            kwc_core_abandon(core);
            atomic_store(&c->core, NULL);
        }
        /* The TLS context may be referenced by the abandoned connections: leak it too. */
        c->ssl_ctx = NULL;
        c->prov = NULL;
        c->libctx = NULL;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&kwc_reg_lock);
}

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void client_tls_free(kw_client_t *c)
{
    SSL_CTX_free(c->ssl_ctx);
    if (c->prov != NULL)
        OSSL_PROVIDER_unload(c->prov);
    OSSL_LIB_CTX_free(c->libctx);
    c->ssl_ctx = NULL;
    c->prov = NULL;
    c->libctx = NULL;
}

static int tls_init(kw_client_t *c, char *err, size_t errlen)
{
    c->libctx = OSSL_LIB_CTX_new();
    if (c->libctx == NULL) {
        snprintf(err, errlen, "cannot create an OpenSSL library context");
        return KW_ENOMEM;
    }
    /* Only OpenSSL's own default provider: inside the keyward provider we must never call
     * back into it (or into any provider the application configured). */
    c->prov = OSSL_PROVIDER_load(c->libctx, "default");
    if (c->prov == NULL) {
        kw_tls_error("cannot load OpenSSL's default provider", err, errlen);
        return KW_ETLS;
    }
    kw_tls_pem_t cert = {c->cert.name, c->cert.data, c->cert.len};
    kw_tls_pem_t key = {c->key.name, c->key.data, c->key.len};
    kw_tls_pem_t ca = {c->ca.name, c->ca.data, c->ca.len};
    c->ssl_ctx = kw_tls_client_ctx_pem(c->libctx, c->cert.data != NULL ? &cert : NULL,
                                       c->key.data != NULL ? &key : NULL, &ca, err, errlen);
    if (c->ssl_ctx == NULL)
        return KW_ETLS;
    SSL_CTX_set_mode(c->ssl_ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(c->ssl_ctx, 1); /* whole batches of replies per read() */
    return 0;
}

static int client_tls_init(kw_client_t *c, char *err, size_t errlen)
{
    int rc = tls_init(c, err, errlen);
    if (rc != 0)
        client_tls_free(c);
    return rc;
}

/* One credential into p: the PEM bytes given, else the file read now. Returns 0 or a KW_E* code
 * with err written; absent (neither given) is 0 with p->data NULL. */
static int load_pem(kwc_pem_t *p, const char *pem, size_t pem_len, const char *file,
                    const char *what, char *err, size_t errlen)
{
    char name[300];
    if (pem != NULL) {
        snprintf(name, sizeof(name), "%s (in memory)", what);
        p->name = strdup(file != NULL ? file : name);
        p->data = OPENSSL_malloc(pem_len + 1);
        if (p->name == NULL || p->data == NULL)
            return KW_ENOMEM;
        memcpy(p->data, pem, pem_len);
        p->data[pem_len] = '\0';
        p->len = pem_len;
        return 0;
    }
    if (file == NULL)
        return 0;
    p->name = strdup(file);
    if (p->name == NULL)
        return KW_ENOMEM;
    return kw_file_read(file, what, KW_FILE_MAX, &p->data, &p->len, err, errlen);
}

static void free_pem(kwc_pem_t *p, int secret)
{
    if (secret)
        OPENSSL_clear_free(p->data, p->len + 1);
    else
        OPENSSL_free(p->data);
    free(p->name);
    memset(p, 0, sizeof(*p));
}

static int copy_settings(kw_client_t *c, const kw_client_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->ca_file == NULL && cfg->ca_pem == NULL) {
        snprintf(err, errlen, "no CA file for the key servers' certificates: set ca_file");
        return KW_ECONFIG;
    }
    int rc =
        load_pem(&c->ca, cfg->ca_pem, cfg->ca_pem_len, cfg->ca_file, "the CA file", err, errlen);
    if (rc == 0)
        rc = load_pem(&c->cert, cfg->cert_pem, cfg->cert_pem_len, cfg->cert_file,
                      "the client certificate", err, errlen);
    if (rc == 0)
        rc = load_pem(&c->key, cfg->key_pem, cfg->key_pem_len, cfg->key_file, "the client key", err,
                      errlen);
    if (rc != 0)
        return rc;
    c->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : KWC_DEFAULT_TIMEOUT_MS;
    c->connect_ms = cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms : KWC_DEFAULT_CONNECT_MS;
    c->max_tries = cfg->max_tries != 0 ? cfg->max_tries : KWC_DEFAULT_TRIES;
    c->pad_to = cfg->pad_to;
    return 0;
}

static int resolve_servers(kw_client_t *c, const char *servers, char *err, size_t errlen)
{
    kw_srv_spec_t *specs = calloc(KW_SRV_MAX, sizeof(*specs));
    size_t n = 0;
    if (specs == NULL)
        return KW_ENOMEM;
    int rc = kw_srvlist_parse(servers, specs, KW_SRV_MAX, &n, err, errlen);
    if (rc == 0)
        rc = kw_srvlist_resolve(specs, n, &c->addrs, &c->n_addrs, err, errlen);
    free(specs);
    return rc;
}

int kw_client_new(const kw_client_config_t *cfg, kw_client_t **out, char *err, size_t errlen)
{
    char scratch[2];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    if (cfg == NULL || out == NULL) {
        snprintf(err, errlen, "kw_client_new needs a configuration");
        return KW_EINVAL;
    }
    *out = NULL;
    kw_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KW_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    atomic_init(&c->core, NULL);
    int rc = copy_settings(c, cfg, err, errlen);
    if (rc == 0)
        rc = resolve_servers(c, cfg->servers, err, errlen);
    if (rc == 0)
        rc = client_tls_init(c, err, errlen);
    if (rc != 0) {
        kw_client_free(c);
        return rc;
    }
    err[0] = '\0';
    pthread_once(&kwc_atfork_once, atfork_register);
    pthread_mutex_lock(&kwc_reg_lock);
    c->reg_next = kwc_reg_head;
    if (kwc_reg_head != NULL)
        kwc_reg_head->reg_prev = c;
    kwc_reg_head = c;
    pthread_mutex_unlock(&kwc_reg_lock);
    *out = c;
    return 0;
}

static void unregister(kw_client_t *c)
{
    pthread_mutex_lock(&kwc_reg_lock);
    if (c->reg_prev != NULL)
        c->reg_prev->reg_next = c->reg_next;
    else if (kwc_reg_head == c)
        kwc_reg_head = c->reg_next;
    if (c->reg_next != NULL)
        c->reg_next->reg_prev = c->reg_prev;
    c->reg_prev = NULL;
    c->reg_next = NULL;
    pthread_mutex_unlock(&kwc_reg_lock);
}

void kw_client_free(kw_client_t *client)
{
    if (client == NULL)
        return;
    unregister(client);
    kwc_core_t *core = atomic_exchange(&client->core, NULL);
    if (core != NULL)
        kwc_core_stop(core);
    client_tls_free(client);
    free(client->addrs);
    free_pem(&client->cert, 0);
    free_pem(&client->key, 1);
    free_pem(&client->ca, 0);
    pthread_mutex_destroy(&client->lock);
    free(client);
}

/* The running core, started on first use (and again in a forked child). */
static int get_core(kw_client_t *c, kwc_core_t **out)
{
    int rc = 0;
    kwc_core_t *core = atomic_load_explicit(&c->core, memory_order_acquire);
    if (core != NULL) {
        *out = core;
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    core = atomic_load(&c->core);
    if (core == NULL && c->ssl_ctx == NULL) /* a forked child: a fresh TLS context */
        rc = client_tls_init(c, c->last_err, sizeof(c->last_err));
    if (core == NULL && rc == 0) {
        kwc_settings_t set = {c->ssl_ctx,    c->addrs,     c->n_addrs, c->timeout_ms,
                              c->connect_ms, c->max_tries, c->pad_to};
        rc = kwc_core_start(&set, &core, c->last_err, sizeof(c->last_err));
        if (rc == 0)
            atomic_store_explicit(&c->core, core, memory_order_release);
    }
    pthread_mutex_unlock(&c->lock);
    *out = core;
    return rc;
}

/* Encodes msg into r->frame (the id is written per try). */
static int encode_frame(kw_client_t *c, const kw_msg_t *msg, kw_request_t *r)
{
    size_t cap = kw_msg_encoded_len(msg);
    if (c->pad_to > cap)
        cap = c->pad_to;
    cap += KW_ITEM_HDR_LEN;
    KW_ENSURE(cap <= KW_MAX_FRAME + KW_ITEM_HDR_LEN, KW_ETOOBIG);
    r->frame = malloc(cap);
    KW_ENSURE(r->frame != NULL, KW_ENOMEM);
    int rc = kw_msg_encode(msg, c->pad_to, r->frame, cap, &r->frame_len);
    if (rc == 0 && msg->has_opcode)
        r->opcode = msg->opcode;
    return rc;
}

int kw_client_submit(kw_client_t *client, const kw_msg_t *msg, kw_request_t **out)
{
    kwc_core_t *core = NULL;
    if (out != NULL)
        *out = NULL;
    KW_ENSURE(client != NULL && msg != NULL && out != NULL, KW_EINVAL);
    KW_GUARD(get_core(client, &core));
    int rc = 0;
    kw_request_t *r = kwc_request_new(core->pool, 0, &rc);
    if (r == NULL)
        return rc; /* KW_ENOMEM, or KW_ENOFD when no eventfd can be made */
    r->core = core;
    rc = encode_frame(client, msg, r);
    if (rc == 0)
        rc = kwc_core_enqueue(core, r); /* takes the I/O reference */
    if (rc != 0) {
        atomic_store(&r->refs, 1);
        kw_request_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int kw_client_call(kw_client_t *client, const kw_msg_t *msg, uint8_t *out, size_t cap,
                   size_t *out_len, uint8_t *remote_err)
{
    kw_request_t *r = NULL;
    const uint8_t *payload = NULL;
    size_t len = 0;
    if (out_len != NULL)
        *out_len = 0;
    if (remote_err != NULL)
        *remote_err = 0;
    KW_GUARD(kw_client_submit(client, msg, &r));
    kw_request_wait(r);
    int rc = kw_request_result(r, &payload, &len, remote_err);
    if (rc == 0 && len > cap)
        rc = KW_ETOOBIG;
    if (rc == 0) {
        if (len > 0)
            memcpy(out, payload, len);
        if (out_len != NULL)
            *out_len = len;
    }
    kw_request_free(r);
    return rc;
}

int kw_client_last_error(kw_client_t *client, char *buf, size_t len)
{
    KW_ENSURE(buf != NULL && len != 0, KW_EINVAL);
    buf[0] = '\0';
    KW_ENSURE(client != NULL, KW_EINVAL);
    kwc_core_t *core = atomic_load_explicit(&client->core, memory_order_acquire);
    if (core != NULL)
        kwc_core_last_error(core, buf, len);
    if (buf[0] == '\0') {
        pthread_mutex_lock(&client->lock);
        snprintf(buf, len, "%s", client->last_err);
        pthread_mutex_unlock(&client->lock);
    }
    return 0;
}

size_t kw_client_stats(kw_client_t *client, kw_server_stats_t *out, size_t max)
{
    if (client == NULL)
        return 0;
    kwc_core_t *core = atomic_load_explicit(&client->core, memory_order_acquire);
    if (core != NULL) {
        kwc_core_stats(core, out, max);
        return client->n_addrs;
    }
    for (size_t i = 0; i < client->n_addrs && i < max; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].address, sizeof(out[i].address), "%s", client->addrs[i].label);
    }
    return client->n_addrs;
}
