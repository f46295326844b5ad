/*
 * keyward-proxy TLS: one SSL_CTX per --cert (SNI picks among them, the first is the default; a
 * --cert for the same names as an earlier one but another key type, RSA next to ECDSA, joins that
 * one's SSL_CTX and libssl picks between them by the client's signature algorithms),
 * keys loaded through OSSL_STORE so keyward: URIs, key stubs and plain PEM keys all work, and a
 * private OSSL_LIB_CTX that loads the keyward provider with this proxy's key servers and mTLS
 * identity (from a generated openssl.cnf), so nothing depends on the user's OPENSSL_CONF.
 *
 * Ownership: kw_proxy_tls_t owns its library context, SSL_CTXs and certificates;
 * kw_proxy_tls_cleanup releases them after every SSL made from them is freed.
 */
#ifndef KW_PROXY_TLS_H
#define KW_PROXY_TLS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "keyward/client.h"
#include "proxy_config.h"

typedef struct kw_proxy_site_s {
    SSL_CTX *ctx;
    X509 *leaf;                   /* the site certificate, for SNI matching */
    char *key_desc;               /* where the key came from, for log lines */
    int key_type;                 /* EVP_PKEY base id of the leaf's key */
    int alt_key_type;             /* a second certificate for the same names: its key type, or 0 */
    char *alt_desc;               /* that certificate's file and key, for log lines, or NULL */
    const char *fetch_name;       /* --cert-from-keyserver NAME (the config's string), or NULL */
    time_t not_before, not_after; /* the leaf's validity, to refetch before it ends */
    time_t fetched_at;            /* when it was last fetched (or found unchanged) */
} kw_proxy_site_t;

typedef struct kw_proxy_tls_s {
    OSSL_LIB_CTX *libctx;  /* NULL: OpenSSL's default context (no key servers configured) */
    pthread_rwlock_t lock; /* guards sites[].ctx/leaf and leaves[]: fetched sites are swapped */
    int lock_init;
    kw_client_t *client;    /* fetches chains (0xA2); NULL without --cert-from-keyserver */
    kw_proxy_site_t *sites; /* --cert sites first, then --cert-from-keyserver ones */
    X509 **leaves;          /* sites[i].leaf, as one array for kw_proxy_sni_pick */
    size_t nsites;
    uint8_t *alpn; /* ALPN protocols in wire format, NULL when not configured */
    size_t alpn_len;
    SSL_async_callback_fn async_cb; /* set on every SSL_CTX: a key operation completed */
    /* The state the SNI and ALPN callbacks read: NULL for this one; the proxy's own when this
     * one is built by a SIGHUP reload to be moved into it (proxy_reload.c). */
    struct kw_proxy_tls_s *home;
} kw_proxy_tls_t;

/* Builds the library context and one SSL_CTX per certificate (tls is zeroed first, but for
 * tls->home), loading every key (a remote key is
 * looked up on the key server here, so a missing key fails at start, not at the first client).
 * async_cb becomes every SSL_CTX's async callback (SSL_CTX_set_async_callback).
 * Returns 0 or a KW_E* code with a sentence in err. */
int kw_proxy_tls_init(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg,
                      SSL_async_callback_fn async_cb, char *err, size_t errlen);

void kw_proxy_tls_cleanup(kw_proxy_tls_t *tls);

/* An SSL_CTX for a chain (leaf first, not consumed) whose key is on the key server
 * (keyward:sha256=<leaf SPKI hash>); fills site. Returns 0 or a KW_E* code with a sentence. */
int kw_proxy_site_from_chain(kw_proxy_tls_t *tls, STACK_OF(X509) * chain, kw_proxy_site_t *site,
                             char *err, size_t errlen);

/* Releases what site holds and zeroes it. */
void kw_proxy_site_clear(kw_proxy_site_t *site);

/* Puts *site in place of sites[i] for new handshakes (existing ones keep their SSL_CTX reference)
 * and hands the old one back in *site; the ticket keys carry over. Any thread. */
void kw_proxy_tls_swap(kw_proxy_tls_t *tls, size_t i, kw_proxy_site_t *site);

/* A server-side SSL on the default site, in accept state, without BIOs. NULL on failure. */
SSL *kw_proxy_tls_new_ssl(kw_proxy_tls_t *tls);

/* Index of the certificate that names host: exact names (SAN DNS, else CN) first, then
 * wildcards; -1 when none does. Pure function over the leaves, for the SNI callback and tests. */
int kw_proxy_sni_pick(X509 *const *leaves, size_t n, const char *host);

/* The library context for cfg: NULL (OpenSSL's default) when no key server is configured, else a
 * fresh one with the default and keyward providers loaded from a generated configuration.
 * Returns 0 or a KW_E* code with a sentence in err. (proxy_provider.c) */
int kw_proxy_libctx_new(const kw_proxy_config_t *cfg, OSSL_LIB_CTX **out, char *err, size_t errlen);

#endif /* KW_PROXY_TLS_H */
