/*
 * keyward-proxy TLS: one SSL_CTX per --cert (SNI picks among them, the first is the default),
 * keys loaded through OSSL_STORE so keyward: URIs, key stubs and plain PEM keys all work, and a
 * private OSSL_LIB_CTX that loads the keyward provider with this proxy's key servers and mTLS
 * identity (from a generated openssl.cnf), so nothing depends on the user's OPENSSL_CONF.
 *
 * Ownership: kw_proxy_tls_t owns its library context, SSL_CTXs and certificates;
 * kw_proxy_tls_cleanup releases them after every SSL made from them is freed.
 */
#ifndef KW_PROXY_TLS_H
#define KW_PROXY_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "proxy_config.h"

typedef struct kw_proxy_site_s {
    SSL_CTX *ctx;
    X509 *leaf;     /* the site certificate, for SNI matching */
    char *key_desc; /* where the key came from, for log lines */
} kw_proxy_site_t;

typedef struct kw_proxy_tls_s {
    OSSL_LIB_CTX *libctx; /* NULL: OpenSSL's default context (no key servers configured) */
    kw_proxy_site_t *sites;
    X509 **leaves; /* sites[i].leaf, as one array for kw_proxy_sni_pick */
    size_t nsites;
    uint8_t *alpn; /* ALPN protocols in wire format, NULL when not configured */
    size_t alpn_len;
} kw_proxy_tls_t;

/* Builds the library context and one SSL_CTX per certificate, loading every key (a remote key is
 * looked up on the key server here, so a missing key fails at start, not at the first client).
 * Returns 0 or a KW_E* code with a sentence in err. */
int kw_proxy_tls_init(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg, char *err, size_t errlen);

void kw_proxy_tls_cleanup(kw_proxy_tls_t *tls);

/* A server-side SSL on the default site, in accept state, without BIOs. NULL on failure. */
SSL *kw_proxy_tls_new_ssl(const kw_proxy_tls_t *tls);

/* Index of the certificate that names host: exact names (SAN DNS, else CN) first, then
 * wildcards; -1 when none does. Pure function over the leaves, for the SNI callback and tests. */
int kw_proxy_sni_pick(X509 *const *leaves, size_t n, const char *host);

/* The library context for cfg: NULL (OpenSSL's default) when no key server is configured, else a
 * fresh one with the default and keyward providers loaded from a generated configuration.
 * Returns 0 or a KW_E* code with a sentence in err. (proxy_provider.c) */
int kw_proxy_libctx_new(const kw_proxy_config_t *cfg, OSSL_LIB_CTX **out, char *err, size_t errlen);

#endif /* KW_PROXY_TLS_H */
