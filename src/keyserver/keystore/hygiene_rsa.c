/*
 * RSA private keys whose prime factors stay in the secure heap while in use (hygiene.h). On the
 * first private operation, OpenSSL 3.0 caches Montgomery contexts for p and q (RSA_FLAG_CACHE_
 * PRIVATE, set by the default RSA method's init), and those copies of p and q live in ordinary heap
 * memory for the key's lifetime. A key decoded by the default provider offers no way to clear the
 * flag: EVP_PKEY_get0_RSA returns a legacy *copy* of it (itself in ordinary memory) and operations
 * keep using the provider's object. So the key is re-decoded here into a legacy RSA object (d2i:
 * its bignums in the secure heap) with a copy of the default method whose init sets no cache flag,
 * which makes OpenSSL run its operations through the legacy RSA code on this very object; the
 * Montgomery contexts are then built per operation and freed cleansed. Costs about 1.6x CPU per RSA
 * private operation where the cached contexts would allow AVX-512 IFMA (docs/security.md).
 * Deprecated APIs on purpose: OpenSSL 3.0 has no other way to reach these flags.
 */
/* This file alone uses the 1.1.1 API (RSA_METHOD, RSA flags, EVP_PKEY_assign_RSA), which the
 * build hides everywhere else (OPENSSL_API_COMPAT=30000, OPENSSL_NO_DEPRECATED). */
#undef OPENSSL_NO_DEPRECATED
#undef OPENSSL_API_COMPAT
#define OPENSSL_API_COMPAT 10101
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keystore/hygiene.h"
#include "keyward/error.h"

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *method; /* the default method without its cache-enabling init */
static atomic_int cache_factors;

static void method_make(void)
{
    RSA_METHOD *m = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    if (m != NULL && RSA_meth_set1_name(m, "keyward: no cached p, q") == 1 &&
        RSA_meth_set_init(m, NULL) == 1)
        method = m;
    else
        RSA_meth_free(m);
}

void kw_ks_hygiene_rsa_cache_factors(int on)
{
    atomic_store(&cache_factors, on != 0);
}

int kw_ks_hygiene_rsa_uncached(EVP_PKEY **pkey)
{
    if (atomic_load(&cache_factors) || !EVP_PKEY_is_a(*pkey, "RSA"))
        return 0;
    (void)pthread_once(&method_once, method_make);
    unsigned char *der = NULL;
    int len = i2d_PrivateKey(*pkey, &der); /* PKCS#1 RSAPrivateKey */
    const unsigned char *p = der;
    RSA *rsa = len > 0 ? d2i_RSAPrivateKey(NULL, &p, len) : NULL; /* secure-heap bignums */
    if (der != NULL)
        OPENSSL_clear_free(der, (size_t)len);
    EVP_PKEY *out = NULL;
    if (rsa != NULL && method != NULL && RSA_set_method(rsa, method) == 1) {
        RSA_clear_flags(rsa, RSA_FLAG_CACHE_PRIVATE);
        out = EVP_PKEY_new();
        if (out != NULL && EVP_PKEY_assign_RSA(out, rsa) == 1) {
            rsa = NULL; /* owned by out */
        } else {
            EVP_PKEY_free(out);
            out = NULL;
        }
    }
    RSA_free(rsa);
    ERR_clear_error();
    if (out == NULL)
        return KW_ECRYPTO;
    EVP_PKEY_free(*pkey);
    *pkey = out;
    return 0;
}

void kw_ks_hygiene_rsa_cleanup(void)
{
    RSA_meth_free(method); /* every key using it is freed by now */
    method = NULL;
}
