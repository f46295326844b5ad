/*
 * TLS context helpers shared by the key server and the client: TLS 1.2 and 1.3 only, mutual
 * authentication with certificates from one CA, errors rendered into a caller's buffer.
 * libctx lets callers (the provider) keep these contexts away from the application's providers.
 */
#ifndef KW_TLS_H
#define KW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Server side: own identity cert/key, requires a client certificate that chains to ca.
 * Returns NULL with a message in err on failure. */
SSL_CTX *kw_tls_server_ctx(OSSL_LIB_CTX *libctx, const char *cert, const char *key, const char *ca,
                           char *err, size_t errlen);

/* Client side: presents cert/key, verifies the server against ca. Reads the three files (then
 * as kw_tls_client_ctx_pem). */
SSL_CTX *kw_tls_client_ctx(OSSL_LIB_CTX *libctx, const char *cert, const char *key, const char *ca,
                           char *err, size_t errlen);

/* PEM bytes of one credential held in memory; name (its file, or a description) for messages. */
typedef struct kw_tls_pem_s {
    const char *name;
    const unsigned char *data;
    size_t len;
} kw_tls_pem_t;

/* Client side from memory, opening no file: cert (a chain: the certificate, then intermediates)
 * and key may both be NULL (no client certificate); ca (one or more PEM certificates, CRLs
 * allowed) is required. An encrypted key is refused (no passphrase prompt). */
SSL_CTX *kw_tls_client_ctx_pem(OSSL_LIB_CTX *libctx, const kw_tls_pem_t *cert,
                               const kw_tls_pem_t *key, const kw_tls_pem_t *ca, char *err,
                               size_t errlen);

/* A pem_password_cb that never prompts and gives no passphrase: an encrypted key is an error (a
 * server must not stop on a terminal prompt). */
int kw_tls_no_passphrase(char *buf, int size, int rwflag, void *u);

/* Appends the DNS names x answers to, lower case, to the list *v of *n (kw_strlist.h): its
 * subjectAltName DNS entries, then its first subject CN when with_cn. A name that is empty, holds
 * a NUL byte or is longer than a DNS name can be (253 bytes) is skipped. Leaves the thread's
 * OpenSSL error queue empty. Returns 0 or KW_ENOMEM. */
int kw_tls_cert_dns_names(X509 *x, int with_cn, char ***v, size_t *n);

/* Writes the OpenSSL error queue (drained) after prefix into err. */
void kw_tls_error(const char *prefix, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* KW_TLS_H */
