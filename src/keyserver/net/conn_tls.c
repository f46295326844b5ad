/*
 * A new key server connection's TLS side (conn_tls.h): its peer address for logs and admission,
 * the SSL object over two memory BIOs, and the certificate check's log line for a refused client
 * certificate (the check itself is OpenSSL's; this decides nothing).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "keyward/error.h"
#include "kw_addr.h"
#include "net/conn.h"
#include "net/conn_tls.h"
#include "net/server.h"

void kw_ks_conn_describe_peer(kw_ks_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            memcpy(c->adm.addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
            c->adm.addr_len = 16;
        } else if (ss.ss_family == AF_INET) {
            memcpy(c->adm.addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
            c->adm.addr_len = 4;
        }
    }
    kw_addr_format((struct sockaddr *)&ss, c->peer, sizeof(c->peer)); /* "?" when unknown */
}

/* What to do about a refused client certificate, by OpenSSL's verify error. */
static const char *verify_hint(int e)
{
    switch (e) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return ": the --ca this key server trusts did not sign it";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return ": issue the edge a current certificate (or check the clocks)";
    case X509_V_ERR_INVALID_PURPOSE:
        return ": its extendedKeyUsage lacks clientAuth";
    default:
        return "";
    }
}

/* The handshake's certificate check, for its log line: remembers the first failure (the client
 * certificate's subject and issuer, and OpenSSL's verify reason). It decides nothing. */
static int on_verify(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    kw_ks_conn_t *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    if (ok || c == NULL || c->refused_cert != NULL)
        return ok;
    char subject[256] = "?";
    char issuer[256] = "?";
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    if (leaf != NULL) {
        X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof(subject));
        X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, sizeof(issuer));
    }
    int e = X509_STORE_CTX_get_error(store);
    int depth = X509_STORE_CTX_get_error_depth(store);
    char depth_note[48] = "";
    if (depth > 0)
        snprintf(depth_note, sizeof(depth_note), " (at chain depth %d)", depth);
    size_t len = 160 + strlen(subject) + strlen(issuer) + 128;
    c->refused_cert = malloc(len);
    if (c->refused_cert != NULL)
        snprintf(c->refused_cert, len, "client certificate %s issued by %s refused: %s%s%s",
                 subject, issuer, X509_verify_cert_error_string(e), depth_note, verify_hint(e));
    return ok;
}

int kw_ks_conn_setup_tls(kw_ks_conn_t *c)
{
    c->ssl = SSL_new(c->server->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        return KW_ENOMEM;
    }
    BIO_set_mem_eof_return(c->rbio, -1);
    BIO_set_mem_eof_return(c->wbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_app_data(c->ssl, c);
    SSL_set_verify(c->ssl, SSL_get_verify_mode(c->ssl), on_verify);
    SSL_set_accept_state(c->ssl);
    return 0;
}
