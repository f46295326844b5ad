/*
 * keyward-proxy TLS contexts: one SSL_CTX per site certificate with its (usually remote) key,
 * TLS 1.2 and 1.3, SSL_MODE_ASYNC so key operations pause the handshake instead of the thread,
 * session tickets (resumption needs no key server), SNI selection and ALPN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_tls.h"
#include "proxy_tls.h"
#include "kw_hex.h"

static const unsigned char sid_ctx[] = "keyward-proxy";

int kw_proxy_sni_pick(X509 *const *leaves, size_t n, const char *host)
{
    if (host == NULL || host[0] == '\0') {
        return -1;
    }
    size_t len = strlen(host);
    if (host[len - 1] == '.') {
        len--; /* "example.com." names example.com */
    }
    for (int wild = 0; wild <= 1; wild++) {
        unsigned flags = wild ? X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS : X509_CHECK_FLAG_NO_WILDCARDS;
        for (size_t i = 0; i < n; i++) {
            if (X509_check_host(leaves[i], host, len, flags, NULL) == 1) {
                return (int)i;
            }
        }
    }
    return -1;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    kw_proxy_tls_t *tls = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    int rc = SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
    pthread_rwlock_rdlock(&tls->lock);
    int i = kw_proxy_sni_pick(tls->leaves, tls->nsites, host);
    if (i >= 0 && SSL_get_SSL_CTX(ssl) != tls->sites[i].ctx) {
        /* i == 0 too: the default site may have been swapped since this SSL was made. */
        if (SSL_set_SSL_CTX(ssl, tls->sites[i].ctx) == NULL) {
            *alert = SSL_AD_INTERNAL_ERROR;
            rc = SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }
    pthread_rwlock_unlock(&tls->lock);
    return rc;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    kw_proxy_tls_t *tls = arg;
    unsigned char *sel = NULL;
    pthread_rwlock_rdlock(&tls->lock); /* a reload may replace alpn (the old one is kept) */
    int rc = tls->alpn == NULL ? OPENSSL_NPN_NO_OVERLAP
                               : SSL_select_next_proto(&sel, outlen, tls->alpn,
                                                       (unsigned)tls->alpn_len, in, inlen);
    pthread_rwlock_unlock(&tls->lock);
    if (rc != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301 §3.2: no_application_protocol */
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static EVP_PKEY *load_key(OSSL_LIB_CTX *libctx, const char *uri, char *err, size_t errlen)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *pkey = NULL;
    if (st == NULL) {
        kw_tls_error("cannot open", err, errlen);
        return NULL;
    }
    if (OSSL_STORE_expect(st, OSSL_STORE_INFO_PKEY) != 1) {
        ERR_clear_error(); /* a loader that cannot filter still works */
    }
    for (int guard = 0; pkey == NULL && !OSSL_STORE_eof(st) && guard < 64; guard++) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);
        if (info == NULL) {
            if (OSSL_STORE_error(st)) {
                break;
            }
            continue;
        }
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) {
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        }
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    if (pkey == NULL) {
        kw_tls_error("no private key found", err, errlen);
    }
    return pkey;
}

/* "keyward:sha256=HEX" of the certificate's public key. */
static int remote_uri(X509 *leaf, char *out, size_t outlen)
{
    uint8_t digest[KW_DIGEST_LEN];
    uint8_t ski[KW_SKI_LEN];
    char hex[2 * KW_DIGEST_LEN + 1];
    const EVP_PKEY *pub = X509_get0_pubkey(leaf);
    if (pub == NULL || kw_keyid_from_pkey(pub, digest, ski) != 0) {
        return KW_ECRYPTO;
    }
    kw_hex_encode(digest, sizeof(digest), hex);
    snprintf(out, outlen, "keyward:sha256=%s", hex);
    return 0;
}

static SSL_CTX *new_ctx(kw_proxy_tls_t *tls)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(tls->libctx, NULL, TLS_server_method());
    if (ctx == NULL) {
        return NULL;
    }
    int ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
             SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ASYNC | SSL_MODE_RELEASE_BUFFERS);
    /* The keyward provider calls this when a key operation completes, so a paused handshake
     * needs no wait fd watched per connection (docs/proxy.md). */
    ok = ok && (tls->async_cb == NULL || SSL_CTX_set_async_callback(ctx, tls->async_cb));
    /* Stateless tickets: any thread resumes any session without a cache or a key server. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, tls->home != NULL ? tls->home : tls);
    if (tls->alpn != NULL) {
        SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, tls->home != NULL ? tls->home : tls);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Loads the key (default: the key server's key for the leaf) into site->ctx, whose certificate
 * is set; what names the certificate in messages. */
static int use_key(kw_proxy_tls_t *tls, kw_proxy_site_t *site, const char *key, const char *what,
                   char *err, size_t errlen)
{
    char uri[128];
    char msg[512];
    site->leaf = SSL_CTX_get0_certificate(site->ctx);
    if (site->leaf == NULL || !X509_up_ref(site->leaf)) {
        site->leaf = NULL;
        snprintf(err, errlen, "no certificate in %s", what);
        return KW_ECONFIG;
    }
    const ASN1_TIME *nb = X509_get0_notBefore(site->leaf);
    const ASN1_TIME *na = X509_get0_notAfter(site->leaf);
    struct tm tm;
    if (nb != NULL && ASN1_TIME_to_tm(nb, &tm) == 1) {
        site->not_before = timegm(&tm);
    }
    if (na != NULL && ASN1_TIME_to_tm(na, &tm) == 1) {
        site->not_after = timegm(&tm);
    }
    if (key == NULL) {
        if (remote_uri(site->leaf, uri, sizeof(uri)) != 0) {
            snprintf(err, errlen, "cannot compute the key id of %s", what);
            return KW_ECRYPTO;
        }
        key = uri;
    }
    site->key_desc = strdup(key);
    site->key_type = EVP_PKEY_get_base_id(X509_get0_pubkey(site->leaf));
    EVP_PKEY *pkey = load_key(tls->libctx, key, msg, sizeof(msg));
    if (pkey == NULL) {
        snprintf(err, errlen, "cannot load the key %s for %s: %s", key, what, msg);
        return KW_ENOKEY;
    }
    /* use_PrivateKey alone accepts a key of another type than the certificate (it lands in
     * another slot); check_private_key then finds the certificate without its key. */
    int ok =
        SSL_CTX_use_PrivateKey(site->ctx, pkey) == 1 && SSL_CTX_check_private_key(site->ctx) == 1;
    EVP_PKEY_free(pkey);
    if (!ok || site->key_desc == NULL) {
        kw_tls_error("", msg, sizeof(msg));
        snprintf(err, errlen, "the key %s does not match %s: %s", key, what, msg);
        return KW_ECONFIG;
    }
    return 0;
}

static int add_site(kw_proxy_tls_t *tls, const kw_proxy_cert_t *c, kw_proxy_site_t *site, char *err,
                    size_t errlen)
{
    char msg[512];
    site->ctx = new_ctx(tls);
    if (site->ctx == NULL) {
        kw_tls_error("cannot create a TLS context", err, errlen);
        return KW_ETLS;
    }
    if (SSL_CTX_use_certificate_chain_file(site->ctx, c->cert) != 1) {
        kw_tls_error("", msg, sizeof(msg));
        snprintf(err, errlen, "cannot load certificate %s: %s", c->cert, msg);
        return KW_ECONFIG;
    }
    return use_key(tls, site, c->key, c->cert, err, errlen);
}

/* 1 when every DNS name of a's SAN is among b's (case-insensitive). */
static int dns_subset(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(a); i++) {
        const GENERAL_NAME *ga = sk_GENERAL_NAME_value(a, i);
        if (ga->type != GEN_DNS) {
            continue;
        }
        int found = 0;
        for (int j = 0; !found && j < sk_GENERAL_NAME_num(b); j++) {
            const GENERAL_NAME *gb = sk_GENERAL_NAME_value(b, j);
            found =
                gb->type == GEN_DNS && gb->d.dNSName->length == ga->d.dNSName->length &&
                strncasecmp((const char *)gb->d.dNSName->data, (const char *)ga->d.dNSName->data,
                            (size_t)ga->d.dNSName->length) == 0;
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

/* 1 when a and b name the same sites: the same SAN DNS names, or (without SANs) the same
 * subject. */
static int same_names(X509 *a, X509 *b)
{
    GENERAL_NAMES *ga = X509_get_ext_d2i(a, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAMES *gb = X509_get_ext_d2i(b, NID_subject_alt_name, NULL, NULL);
    int same;
    if (ga == NULL && gb == NULL) {
        same = X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0;
    } else {
        same = ga != NULL && gb != NULL && dns_subset(ga, gb) && dns_subset(gb, ga);
    }
    GENERAL_NAMES_free(ga);
    GENERAL_NAMES_free(gb);
    return same;
}

/* An earlier --cert site (of the first n) for the same names as the certificate in file, whose
 * context has no certificate of that key type yet; NULL when there is none (or file does not
 * read: add_site then says why). */
static kw_proxy_site_t *find_twin(kw_proxy_tls_t *tls, size_t n, const char *file)
{
    BIO *in = BIO_new_file(file, "r");
    X509 *leaf = in != NULL ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    ERR_clear_error();
    kw_proxy_site_t *twin = NULL;
    int type = leaf != NULL ? EVP_PKEY_get_base_id(X509_get0_pubkey(leaf)) : EVP_PKEY_NONE;
    for (size_t i = 0; type != EVP_PKEY_NONE && twin == NULL && i < n; i++) {
        kw_proxy_site_t *site = &tls->sites[i];
        if (site->alt_key_type == 0 && site->key_type != type && same_names(site->leaf, leaf)) {
            twin = site;
        }
    }
    X509_free(leaf);
    return twin;
}

/* The certificate c (same names as twin's, another key type) and its key into twin's context:
 * libssl keeps one certificate per key type and chooses by the client's signature algorithms. */
static int add_alt(kw_proxy_tls_t *tls, const kw_proxy_cert_t *c, kw_proxy_site_t *twin, char *err,
                   size_t errlen)
{
    char uri[128];
    char msg[512];
    if (SSL_CTX_use_certificate_chain_file(twin->ctx, c->cert) != 1) {
        kw_tls_error("", msg, sizeof(msg));
        snprintf(err, errlen, "cannot load certificate %s: %s", c->cert, msg);
        return KW_ECONFIG;
    }
    X509 *leaf = SSL_CTX_get0_certificate(twin->ctx); /* the one just set */
    const char *key = c->key;
    if (key == NULL) {
        if (leaf == NULL || remote_uri(leaf, uri, sizeof(uri)) != 0) {
            snprintf(err, errlen, "cannot compute the key id of %s", c->cert);
            return KW_ECRYPTO;
        }
        key = uri;
    }
    EVP_PKEY *pkey = load_key(tls->libctx, key, msg, sizeof(msg));
    if (pkey == NULL) {
        snprintf(err, errlen, "cannot load the key %s for %s: %s", key, c->cert, msg);
        return KW_ENOKEY;
    }
    int ok =
        SSL_CTX_use_PrivateKey(twin->ctx, pkey) == 1 && SSL_CTX_check_private_key(twin->ctx) == 1;
    EVP_PKEY_free(pkey);
    if (!ok) {
        kw_tls_error("", msg, sizeof(msg));
        snprintf(err, errlen, "the key %s does not match %s: %s", key, c->cert, msg);
        return KW_ECONFIG;
    }
    size_t len = strlen(c->cert) + strlen(key) + 16;
    twin->alt_desc = malloc(len);
    if (twin->alt_desc == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    snprintf(twin->alt_desc, len, "%s, key %s", c->cert, key);
    twin->alt_key_type = EVP_PKEY_get_base_id(X509_get0_pubkey(leaf));
    return 0;
}

int kw_proxy_site_from_chain(kw_proxy_tls_t *tls, STACK_OF(X509) * chain, kw_proxy_site_t *site,
                             char *err, size_t errlen)
{
    char what[300];
    char subject[256] = "?";
    if (sk_X509_num(chain) < 1) {
        snprintf(err, errlen, "empty certificate chain");
        return KW_ECONFIG;
    }
    X509 *leaf = sk_X509_value(chain, 0);
    X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof(subject));
    snprintf(what, sizeof(what), "the fetched certificate %s", subject);
    site->ctx = new_ctx(tls);
    if (site->ctx == NULL) {
        kw_tls_error("cannot create a TLS context", err, errlen);
        return KW_ETLS;
    }
    int ok = SSL_CTX_use_certificate(site->ctx, leaf) == 1;
    for (int i = 1; ok && i < sk_X509_num(chain); i++) {
        ok = SSL_CTX_add1_chain_cert(site->ctx, sk_X509_value(chain, i)) == 1;
    }
    if (!ok) {
        kw_tls_error("cannot use", err, errlen);
        return KW_ECONFIG;
    }
    return use_key(tls, site, NULL, what, err, errlen);
}

void kw_proxy_site_clear(kw_proxy_site_t *site)
{
    SSL_CTX_free(site->ctx);
    X509_free(site->leaf);
    free(site->key_desc);
    free(site->alt_desc);
    memset(site, 0, sizeof(*site));
}

void kw_proxy_tls_swap(kw_proxy_tls_t *tls, size_t i, kw_proxy_site_t *site)
{
    unsigned char keys[80]; /* resumption of tickets issued before the swap keeps working */
    if (SSL_CTX_get_tlsext_ticket_keys(tls->sites[i].ctx, keys, sizeof(keys)) == 1) {
        (void)SSL_CTX_set_tlsext_ticket_keys(site->ctx, keys, sizeof(keys));
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    kw_proxy_site_t old;
    pthread_rwlock_wrlock(&tls->lock);
    old = tls->sites[i];
    tls->sites[i] = *site;
    tls->leaves[i] = site->leaf;
    pthread_rwlock_unlock(&tls->lock);
    *site = old;
}

/* ALPN wire format: each name prefixed by its length. */
static int build_alpn(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg)
{
    size_t len = 0;
    for (size_t i = 0; i < cfg->alpn.n; i++) {
        len += 1 + strlen(cfg->alpn.v[i]);
    }
    if (len == 0) {
        return 0;
    }
    tls->alpn = malloc(len);
    if (tls->alpn == NULL) {
        return KW_ENOMEM;
    }
    for (size_t i = 0; i < cfg->alpn.n; i++) {
        size_t n = strlen(cfg->alpn.v[i]);
        tls->alpn[tls->alpn_len++] = (uint8_t)n;
        memcpy(tls->alpn + tls->alpn_len, cfg->alpn.v[i], n);
        tls->alpn_len += n;
    }
    return 0;
}

int kw_proxy_tls_init(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg,
                      SSL_async_callback_fn async_cb, char *err, size_t errlen)
{
    kw_proxy_tls_t *home = tls->home; /* the one field a caller sets first */
    memset(tls, 0, sizeof(*tls));
    tls->home = home;
    tls->async_cb = async_cb;
    if (pthread_rwlock_init(&tls->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot create a lock");
        return KW_ENOMEM;
    }
    tls->lock_init = 1;
    int rc = kw_proxy_libctx_new(cfg, &tls->libctx, err, errlen);
    if (rc != 0) {
        kw_proxy_tls_cleanup(tls);
        return rc;
    }
    size_t total = cfg->ncerts + cfg->cert_from_keyserver.n;
    rc = build_alpn(tls, cfg);
    tls->sites = calloc(total, sizeof(*tls->sites));
    tls->leaves = calloc(total, sizeof(*tls->leaves));
    if (rc != 0 || tls->sites == NULL || tls->leaves == NULL) {
        snprintf(err, errlen, "out of memory");
        kw_proxy_tls_cleanup(tls);
        return KW_ENOMEM;
    }
    for (size_t i = 0; i < cfg->ncerts; i++) {
        kw_proxy_site_t *twin = find_twin(tls, tls->nsites, cfg->certs[i].cert);
        if (twin != NULL) {
            rc = add_alt(tls, &cfg->certs[i], twin, err, errlen);
        } else {
            size_t n = tls->nsites++;
            rc = add_site(tls, &cfg->certs[i], &tls->sites[n], err, errlen);
            tls->leaves[n] = tls->sites[n].leaf;
        }
        if (rc != 0) {
            kw_proxy_tls_cleanup(tls);
            return rc;
        }
    }
    return 0;
}

void kw_proxy_tls_cleanup(kw_proxy_tls_t *tls)
{
    for (size_t i = 0; i < tls->nsites; i++) {
        kw_proxy_site_clear(&tls->sites[i]);
    }
    kw_client_free(tls->client);
    if (tls->lock_init) {
        pthread_rwlock_destroy(&tls->lock);
    }
    free(tls->sites);
    free(tls->leaves);
    free(tls->alpn);
    OSSL_LIB_CTX_free(tls->libctx);
    memset(tls, 0, sizeof(*tls));
}

SSL *kw_proxy_tls_new_ssl(kw_proxy_tls_t *tls)
{
    pthread_rwlock_rdlock(&tls->lock);
    SSL *ssl = SSL_new(tls->sites[0].ctx);
    pthread_rwlock_unlock(&tls->lock);
    if (ssl != NULL) {
        SSL_set_accept_state(ssl);
    }
    return ssl;
}
