/*
 * TLS context helpers (include/keyward/tls.h): TLS 1.2-1.3 contexts for mutual authentication
 * between edges and key servers. Both sides present a certificate chain and verify the peer
 * against one CA file; compression and renegotiation are off. The server demands a client
 * certificate and issues no session tickets (connections are long-lived). Errors are written into
 * the caller's buffer with the drained OpenSSL error queue.
 */
#include "keyward/tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

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
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
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
        /* A readable key of another certificate fails here too: name the certificate. */
        unsigned long e = ERR_peek_last_error();
        int mismatch =
            ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                                               ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
        if (mismatch)
            snprintf(msg, sizeof(msg),
                     "private key %s does not match certificate %s (give the key made with "
                     "that certificate)",
                     key, cert);
        else
            snprintf(msg, sizeof(msg), "cannot load private key %s", key);
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

/* Common part of both sides: versions, options, identity and trusted CA. */
static SSL_CTX *ctx_new(OSSL_LIB_CTX *libctx, const SSL_METHOD *method, const char *cert,
                        const char *key, const char *ca, char *err, size_t errlen)
{
    char msg[512];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, method);
    if (ctx == NULL) {
        kw_tls_error("cannot create TLS context", err, errlen);
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        kw_tls_error("cannot restrict TLS versions to 1.2-1.3", err, errlen);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
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

SSL_CTX *kw_tls_client_ctx(OSSL_LIB_CTX *libctx, const char *cert, const char *key, const char *ca,
                           char *err, size_t errlen)
{
    /* cert and key may both be NULL: a client without identity (the server will refuse it). */
    if (check_args(cert, key, ca, (cert != NULL) != (key != NULL), err, errlen) != 0)
        return NULL;
    SSL_CTX *ctx = ctx_new(libctx, TLS_client_method(), cert, key, ca, err, errlen);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}
