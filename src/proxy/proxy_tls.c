/*
 * keyward-proxy TLS contexts: one SSL_CTX per site certificate with its (usually remote) key,
 * TLS 1.2 and 1.3, SSL_MODE_ASYNC so key operations pause the handshake instead of the thread,
 * session tickets (resumption needs no key server), SNI selection and ALPN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "keyward/tls.h"
#include "proxy_tls.h"

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
    const kw_proxy_tls_t *tls = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    int i = kw_proxy_sni_pick(tls->leaves, tls->nsites, host);
    if (i > 0 && SSL_get_SSL_CTX(ssl) != tls->sites[i].ctx) {
        if (SSL_set_SSL_CTX(ssl, tls->sites[i].ctx) == NULL) {
            *alert = SSL_AD_INTERNAL_ERROR;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const kw_proxy_tls_t *tls = arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, tls->alpn, (unsigned)tls->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
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
    /* Stateless tickets: any thread resumes any session without a cache or a key server. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, tls);
    if (tls->alpn != NULL) {
        SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, tls);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int add_site(kw_proxy_tls_t *tls, const kw_proxy_cert_t *c, kw_proxy_site_t *site, char *err,
                    size_t errlen)
{
    char uri[128];
    char msg[512];
    const char *key = c->key;
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
    site->leaf = SSL_CTX_get0_certificate(site->ctx);
    if (site->leaf == NULL || !X509_up_ref(site->leaf)) {
        site->leaf = NULL;
        snprintf(err, errlen, "no certificate in %s", c->cert);
        return KW_ECONFIG;
    }
    if (key == NULL) {
        if (remote_uri(site->leaf, uri, sizeof(uri)) != 0) {
            snprintf(err, errlen, "cannot compute the key id of %s", c->cert);
            return KW_ECRYPTO;
        }
        key = uri;
    }
    site->key_desc = strdup(key);
    EVP_PKEY *pkey = load_key(tls->libctx, key, msg, sizeof(msg));
    if (pkey == NULL) {
        snprintf(err, errlen, "cannot load the key %s for %s: %s", key, c->cert, msg);
        return KW_ENOKEY;
    }
    /* use_PrivateKey alone accepts a key of another type than the certificate (it lands in
     * another slot); check_private_key then finds the certificate without its key. */
    int ok =
        SSL_CTX_use_PrivateKey(site->ctx, pkey) == 1 && SSL_CTX_check_private_key(site->ctx) == 1;
    EVP_PKEY_free(pkey);
    if (!ok || site->key_desc == NULL) {
        kw_tls_error("", msg, sizeof(msg));
        snprintf(err, errlen, "the key %s does not match %s: %s", key, c->cert, msg);
        return KW_ECONFIG;
    }
    return 0;
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

int kw_proxy_tls_init(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg, char *err, size_t errlen)
{
    memset(tls, 0, sizeof(*tls));
    int rc = kw_proxy_libctx_new(cfg, &tls->libctx, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = build_alpn(tls, cfg);
    tls->sites = calloc(cfg->ncerts, sizeof(*tls->sites));
    tls->leaves = calloc(cfg->ncerts, sizeof(*tls->leaves));
    if (rc != 0 || tls->sites == NULL || tls->leaves == NULL) {
        snprintf(err, errlen, "out of memory");
        kw_proxy_tls_cleanup(tls);
        return KW_ENOMEM;
    }
    for (size_t i = 0; i < cfg->ncerts; i++) {
        tls->nsites++;
        rc = add_site(tls, &cfg->certs[i], &tls->sites[i], err, errlen);
        if (rc != 0) {
            kw_proxy_tls_cleanup(tls);
            return rc;
        }
        tls->leaves[i] = tls->sites[i].leaf;
    }
    return 0;
}

void kw_proxy_tls_cleanup(kw_proxy_tls_t *tls)
{
    for (size_t i = 0; i < tls->nsites; i++) {
        SSL_CTX_free(tls->sites[i].ctx);
        X509_free(tls->sites[i].leaf);
        free(tls->sites[i].key_desc);
    }
    free(tls->sites);
    free(tls->leaves);
    free(tls->alpn);
    OSSL_LIB_CTX_free(tls->libctx);
    memset(tls, 0, sizeof(*tls));
}

SSL *kw_proxy_tls_new_ssl(const kw_proxy_tls_t *tls)
{
    SSL *ssl = SSL_new(tls->sites[0].ctx);
    if (ssl != NULL) {
        SSL_set_accept_state(ssl);
    }
    return ssl;
}
