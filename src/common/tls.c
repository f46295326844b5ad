/*
 * TLS context helpers (kw_tls.h): TLS 1.2-1.3 contexts for mutual authentication
 * between edges and key servers. The client side builds its context from PEM bytes in memory (so
 * a forked, unprivileged child rebuilds it without opening a file); the server side from files.
 * Both sides present a certificate chain and verify the peer against one CA file; compression and
 * renegotiation are off. The server demands a client certificate and issues no session tickets
 * (connections are long-lived). Errors are written into the caller's buffer with the drained
 * OpenSSL error queue.
 */
#include "kw_tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keyward/error.h"
#include "kw_file.h"
#include "kw_strlist.h"

/* Why a key could not be set next to its certificate: a readable key of another certificate
 * fails in SSL_CTX_use_PrivateKey too, so name the certificate when OpenSSL says mismatch. */
static void key_failure_msg(char *msg, size_t cap, const char *key, const char *cert,
                            const char *how)
{
    unsigned long e = ERR_peek_last_error();
    int mismatch =
        ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                                           ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
    if (mismatch && cert != NULL)
        snprintf(msg, cap,
                 "private key %s does not match certificate %s (give the key made with that "
                 "certificate)",
                 key, cert);
    else
        snprintf(msg, cap, "cannot load private key %s%s", key, how);
}

void kw_tls_error(const char *prefix, char *err, size_t errlen)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0;
    size_t used = 0;
    if (err != NULL && errlen > 0) {
        int n = snprintf(err, errlen, "%s", prefix != NULL ? prefix : "TLS error");
        used = n < 0 ? 0 : (size_t)n;
    }
    for (;;) {
        e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
        if (e == 0)
            break;
        if (err == NULL || errlen == 0 || used + 1 >= errlen)
            continue; /* keep draining */
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        int n = snprintf(err + used, errlen - used, "%s%s%s%s", used > 0 ? ": " : "", one,
                         (flags & ERR_TXT_STRING) && data != NULL && *data ? " " : "",
                         (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        used += n < 0 ? 0 : (size_t)n;
        if (used >= errlen)
            used = errlen - 1;
    }
}

/* Loads our certificate chain and key into ctx and checks that they match. */
static int load_identity(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    char msg[512];
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(msg, sizeof(msg), "cannot load certificate chain %s", cert);
        kw_tls_error(msg, err, errlen);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        key_failure_msg(msg, sizeof(msg), key, cert, "");
        kw_tls_error(msg, err, errlen);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(msg, sizeof(msg), "private key %s does not match certificate %s", key, cert);
        kw_tls_error(msg, err, errlen);
        return -1;
    }
    return 0;
}

/* Common part of both sides: versions and options. */
static SSL_CTX *base_ctx(OSSL_LIB_CTX *libctx, const SSL_METHOD *method, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, method);
    if (ctx == NULL) {
        kw_tls_error("cannot create TLS context", err, errlen);
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        kw_tls_error("cannot restrict TLS versions to 1.2-1.3", err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

/* The server side from files: identity and trusted CA. */
static SSL_CTX *ctx_new(OSSL_LIB_CTX *libctx, const SSL_METHOD *method, const char *cert,
                        const char *key, const char *ca, char *err, size_t errlen)
{
    char msg[512];
    SSL_CTX *ctx = base_ctx(libctx, method, err, errlen);
    if (ctx == NULL)
        return NULL;
    if ((cert != NULL || key != NULL) &&
        load_identity(ctx, cert != NULL ? cert : key, key != NULL ? key : cert, err, errlen) != 0)
        goto fail;
    if (SSL_CTX_load_verify_file(ctx, ca) != 1) {
        snprintf(msg, sizeof(msg), "cannot load CA file %s", ca);
        kw_tls_error(msg, err, errlen);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static int check_args(const char *cert, const char *key, const char *ca, int need_identity,
                      char *err, size_t errlen)
{
    if (ca == NULL || (need_identity && (cert == NULL || key == NULL))) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "TLS setup needs %s",
                     need_identity ? "a certificate, a key and a CA file" : "a CA file");
        return -1;
    }
    return 0;
}

SSL_CTX *kw_tls_server_ctx(OSSL_LIB_CTX *libctx, const char *cert, const char *key, const char *ca,
                           char *err, size_t errlen)
{
    if (check_args(cert, key, ca, 1, err, errlen) != 0)
        return NULL;
    SSL_CTX *ctx = ctx_new(libctx, TLS_server_method(), cert, key, ca, err, errlen);
    if (ctx == NULL)
        return NULL;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file_ex(ca, libctx, NULL);
    if (names == NULL) {
        kw_tls_error("cannot read CA names from CA file", err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* ctx takes ownership */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

int kw_tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The certificate chain of pem (leaf first) as ctx's own. Returns 0, or -1 with err written. */
static int use_chain_pem(SSL_CTX *ctx, OSSL_LIB_CTX *libctx, const kw_tls_pem_t *pem, char *err,
                         size_t errlen)
{
    char msg[512];
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    X509 *x = X509_new_ex(libctx, NULL);
    int ok = bio != NULL && x != NULL &&
             PEM_read_bio_X509_AUX(bio, &x, kw_tls_no_passphrase, NULL) != NULL &&
             SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1;
    X509_free(x);
    while (ok) {
        X509 *ca = X509_new_ex(libctx, NULL);
        if (ca == NULL || PEM_read_bio_X509(bio, &ca, kw_tls_no_passphrase, NULL) == NULL) {
            X509_free(ca);
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                ERR_clear_error(); /* the end of the chain */
            else
                ok = 0;
            break;
        }
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            ok = 0;
        }
    }
    BIO_free(bio);
    if (!ok) {
        snprintf(msg, sizeof(msg), "cannot load certificate chain %s", pem->name);
        kw_tls_error(msg, err, errlen);
        return -1;
    }
    return 0;
}

static int use_key_pem(SSL_CTX *ctx, OSSL_LIB_CTX *libctx, const kw_tls_pem_t *pem,
                       const char *cert_name, char *err, size_t errlen)
{
    char msg[512];
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    EVP_PKEY *pk = bio != NULL ? PEM_read_bio_PrivateKey_ex(bio, NULL, kw_tls_no_passphrase, NULL,
                                                            libctx, NULL)
                               : NULL;
    int ok = pk != NULL && SSL_CTX_use_PrivateKey(ctx, pk) == 1;
    EVP_PKEY_free(pk);
    BIO_free(bio);
    if (!ok) {
        key_failure_msg(msg, sizeof(msg), pem->name, cert_name, " (PEM, not encrypted)");
        kw_tls_error(msg, err, errlen);
        return -1;
    }
    return 0;
}

/* Every certificate (and CRL) of pem as trusted by ctx. */
static int use_ca_pem(SSL_CTX *ctx, OSSL_LIB_CTX *libctx, const kw_tls_pem_t *pem, char *err,
                      size_t errlen)
{
    char msg[512];
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    STACK_OF(X509_INFO) *infos =
        bio != NULL ? PEM_X509_INFO_read_bio_ex(bio, NULL, kw_tls_no_passphrase, NULL, libctx, NULL)
                    : NULL;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int certs = 0;
    int ok = infos != NULL && store != NULL;
    for (int i = 0; ok && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->x509 != NULL) {
            ok = X509_STORE_add_cert(store, info->x509) == 1;
            certs++;
        }
        if (ok && info->crl != NULL)
            ok = X509_STORE_add_crl(store, info->crl) == 1;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    if (!ok || certs == 0) {
        snprintf(msg, sizeof(msg), "cannot load CA file %s%s", pem->name,
                 ok ? ": no certificate in it" : "");
        kw_tls_error(msg, err, errlen);
        return -1;
    }
    return 0;
}

SSL_CTX *kw_tls_client_ctx_pem(OSSL_LIB_CTX *libctx, const kw_tls_pem_t *cert,
                               const kw_tls_pem_t *key, const kw_tls_pem_t *ca, char *err,
                               size_t errlen)
{
    char msg[512];
    /* cert and key may both be NULL: a client without identity (the server will refuse it). */
    if (ca == NULL || (cert != NULL) != (key != NULL)) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "TLS setup needs %s",
                     ca == NULL ? "a CA file" : "a certificate, a key and a CA file");
        return NULL;
    }
    SSL_CTX *ctx = base_ctx(libctx, TLS_client_method(), err, errlen);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_default_passwd_cb(ctx, kw_tls_no_passphrase);
    if (cert != NULL) {
        if (use_chain_pem(ctx, libctx, cert, err, errlen) != 0 ||
            use_key_pem(ctx, libctx, key, cert->name, err, errlen) != 0)
            goto fail;
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(msg, sizeof(msg), "private key %s does not match certificate %s", key->name,
                     cert->name);
            kw_tls_error(msg, err, errlen);
            goto fail;
        }
    }
    if (use_ca_pem(ctx, libctx, ca, err, errlen) != 0)
        goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Reads one credential file into pem (data: OPENSSL_malloc'd). Returns 0 or -1 (err written). */
static int read_pem(const char *path, const char *what, kw_tls_pem_t *pem, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pem->name = path;
    if (kw_file_read(path, what, KW_FILE_MAX, &buf, &len, err, errlen) != 0)
        return -1;
    pem->data = buf;
    pem->len = len;
    return 0;
}

SSL_CTX *kw_tls_client_ctx(OSSL_LIB_CTX *libctx, const char *cert, const char *key, const char *ca,
                           char *err, size_t errlen)
{
    kw_tls_pem_t c = {NULL, NULL, 0}, k = {NULL, NULL, 0}, a = {NULL, NULL, 0};
    SSL_CTX *ctx = NULL;
    if (check_args(cert, key, ca, (cert != NULL) != (key != NULL), err, errlen) != 0)
        return NULL;
    if ((cert == NULL || read_pem(cert, "certificate", &c, err, errlen) == 0) &&
        (key == NULL || read_pem(key, "private key", &k, err, errlen) == 0) &&
        read_pem(ca, "CA file", &a, err, errlen) == 0)
        ctx = kw_tls_client_ctx_pem(libctx, cert != NULL ? &c : NULL, key != NULL ? &k : NULL, &a,
                                    err, errlen);
    OPENSSL_free((void *)c.data);
    OPENSSL_clear_free((void *)k.data, k.len);
    OPENSSL_free((void *)a.data);
    return ctx;
}

/* Appends one certificate name, lower case, unless it is no usable DNS name. */
static int dns_name_add(char ***v, size_t *n, const ASN1_STRING *s)
{
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s);
    if (len <= 0 || len > 253 || memchr(d, 0, (size_t)len) != NULL)
        return 0;
    if (kw_strlist_addn(v, n, (const char *)d, (size_t)len) != 0)
        return KW_ENOMEM;
    for (char *p = (*v)[*n - 1]; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return 0;
}

int kw_tls_cert_dns_names(X509 *x, int with_cn, char ***v, size_t *n)
{
    int rc = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        if (gn->type == GEN_DNS)
            rc = dns_name_add(v, n, gn->d.dNSName);
    }
    GENERAL_NAMES_free(gens);
    const X509_NAME *subj = X509_get_subject_name(x);
    int idx = with_cn ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
    if (rc == 0 && idx >= 0)
        rc = dns_name_add(v, n, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
    ERR_clear_error();
    return rc;
}
