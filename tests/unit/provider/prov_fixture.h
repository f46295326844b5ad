/*
 * Loading the built keyward.so into a library context of its own, beside OpenSSL's default
 * provider, as a server's openssl.cnf would (the provider found in KW_BUILD_DIR/lib). Settings go
 * through the provider's environment variables, set before the load.
 */
#ifndef KW_TEST_PROV_FIXTURE_H
#define KW_TEST_PROV_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "keyward/stub.h"

typedef struct prov_fixture_s {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *deflt;
    OSSL_PROVIDER *kw;
} prov_fixture_t;

/* 0, or -1 (printed) when keyward.so cannot be loaded. */
static inline int prov_fixture_load(prov_fixture_t *f)
{
    const char *build = getenv("KW_BUILD_DIR");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/lib", build != NULL ? build : ".");
    f->libctx = OSSL_LIB_CTX_new();
    f->deflt = f->libctx != NULL ? OSSL_PROVIDER_load(f->libctx, "default") : NULL;
    f->kw = NULL;
    if (f->deflt != NULL && OSSL_PROVIDER_set_default_search_path(f->libctx, dir) == 1)
        f->kw = OSSL_PROVIDER_load(f->libctx, "keyward");
    if (f->kw == NULL) {
        fprintf(stderr, "cannot load keyward.so from %s\n", dir);
        ERR_print_errors_fp(stderr);
        return -1;
    }
    return 0;
}

static inline void prov_fixture_unload(prov_fixture_t *f)
{
    if (f->kw != NULL)
        OSSL_PROVIDER_unload(f->kw);
    if (f->deflt != NULL)
        OSSL_PROVIDER_unload(f->deflt);
    OSSL_LIB_CTX_free(f->libctx);
}

/* The stub DER of pub's key (caller frees with OPENSSL_free), or NULL. */
static inline unsigned char *prov_fixture_stub_der(const EVP_PKEY *pub, long *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *name = NULL;
    char *header = NULL;
    unsigned char *der = NULL;
    if (b != NULL && kw_stub_write_pem(b, pub) == 0 &&
        PEM_read_bio(b, &name, &header, &der, len) > 0) {
        OPENSSL_free(name);
        OPENSSL_free(header);
        BIO_free(b);
        return der;
    }
    BIO_free(b);
    return NULL;
}

/* Reads the PEM of der (under label) as a server reads its key file, through libctx: the
 * provider that decodes it gives the key. NULL when refused. */
static inline EVP_PKEY *prov_fixture_read(OSSL_LIB_CTX *libctx, const char *label,
                                          const unsigned char *der, long len)
{
    BIO *b = BIO_new(BIO_s_mem());
    EVP_PKEY *k = NULL;
    if (b != NULL && PEM_write_bio(b, label, "", der, len) > 0)
        k = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, libctx, NULL);
    BIO_free(b);
    return k;
}

#endif /* KW_TEST_PROV_FIXTURE_H */
