/*
 * RSA private keys whose prime factors stay in the secure heap while in use (hygiene.h). On the
 * first private operation, OpenSSL 3.0 caches Montgomery contexts for p and q (RSA_FLAG_CACHE_
 * PRIVATE, set by the default RSA method's init), and those copies of p and q live in ordinary heap
 * memory for the key's lifetime. A key decoded by the default provider offers no way to clear the
 * flag: EVP_PKEY_get0_RSA returns a legacy *copy* of it (itself in ordinary memory) and operations
 * keep using the provider's object. So the key is re-decoded here into a legacy RSA object (d2i:
 * its bignums in the secure heap) with a copy of the default method whose init caches only the
 * public modulus's context (RSA_FLAG_CACHE_PUBLIC: n is public) and whose CRT step (mod_exp below)
 * builds the contexts of p and q per operation and frees them cleansed. That step runs both
 * half-exponentiations in one BN_mod_exp_mont_consttime_x2 call, which takes OpenSSL's AVX-512
 * IFMA path where the CPU has it, as OpenSSL's own cached path does: the cost left is two context
 * set-ups per operation (docs/security.md, "p and q during RSA operations", measured there).
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

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keystore/hygiene.h"
#include "keyward/error.h"

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *method; /* the default method without its cache-enabling init */
static atomic_int cache_factors;

static int method_init(RSA *rsa)
{
    RSA_set_flags(rsa, RSA_FLAG_CACHE_PUBLIC); /* the context of n only; never of p and q */
    return 1;
}

/* A BIGNUM sharing b's words with BN_FLG_CONSTTIME set (freed before b is used again). */
static BIGNUM *consttime(const BIGNUM *b)
{
    BIGNUM *r = BN_new();
    if (r != NULL)
        BN_with_flags(r, b, BN_FLG_CONSTTIME);
    return r;
}

/*
 * r0 = I^d mod n by the CRT, the steps of OpenSSL 3.0's rsa_ossl_mod_exp without cached p and q
 * contexts: m1 = (I mod q)^dQ mod q and r0 = (I mod p)^dP mod p in one x2 call (NULL contexts:
 * built for this call, freed with BN_clear_free), h = (r0 - m1) qInv mod p, r0 = m1 + h q, then
 * r0^e checked against I, falling back to I^d mod n when they differ (fault attacks). Only
 * two-prime keys reach this: the loader refuses nothing else, and multi-prime keys keep the
 * default step (mod_exp_default).
 */
static int (*mod_exp_default)(BIGNUM *, const BIGNUM *, RSA *, BN_CTX *);
static int mont_n_index = -1; /* ex_data: the key's BN_MONT_CTX of n, built at load, read-only */

static void mont_n_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    BN_MONT_CTX_free(ptr);
}

static int mod_exp(BIGNUM *r0, const BIGNUM *I, RSA *rsa, BN_CTX *ctx)
{
    const BIGNUM *n, *e, *d, *p, *q, *dp, *dq, *qinv;
    RSA_get0_key(rsa, &n, &e, &d);
    RSA_get0_factors(rsa, &p, &q);
    RSA_get0_crt_params(rsa, &dp, &dq, &qinv);
    if (RSA_get_multi_prime_extra_count(rsa) != 0 || p == NULL || q == NULL || dp == NULL ||
        dq == NULL || qinv == NULL || n == NULL || e == NULL || d == NULL)
        return mod_exp_default(r0, I, rsa, ctx);
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *rp = BN_CTX_get(ctx), *rq = BN_CTX_get(ctx), *m1 = BN_CTX_get(ctx);
    BIGNUM *t = BN_CTX_get(ctx), *vrfy = BN_CTX_get(ctx);
    BIGNUM *c = consttime(I), *cp = consttime(p), *cq = consttime(q);
    BIGNUM *cdp = consttime(dp), *cdq = consttime(dq);
    if (vrfy == NULL || c == NULL || cp == NULL || cq == NULL || cdp == NULL || cdq == NULL)
        goto done;
    BN_set_flags(rp, BN_FLG_CONSTTIME);
    BN_set_flags(rq, BN_FLG_CONSTTIME);
    BN_set_flags(t, BN_FLG_CONSTTIME);
    if (!BN_mod(rq, c, cq, ctx) || !BN_mod(rp, c, cp, ctx) ||
        !BN_mod_exp_mont_consttime_x2(m1, rq, cdq, cq, NULL, r0, rp, cdp, cp, NULL, ctx))
        goto done;
    /* h = (r0 - m1) qInv mod p; m1 < q may exceed p, so add p until non-negative (at most twice
     * for a balanced key, as OpenSSL does). */
    if (!BN_sub(r0, r0, m1))
        goto done;
    for (int i = 0; i < 2 && BN_is_negative(r0); i++)
        if (!BN_add(r0, r0, p))
            goto done;
    if (!BN_mul(t, r0, qinv, ctx) || !BN_mod(r0, t, cp, ctx))
        goto done;
    if (BN_is_negative(r0) && !BN_add(r0, r0, p))
        goto done;
    if (!BN_mul(t, r0, q, ctx) || !BN_add(r0, t, m1))
        goto done;
    /* Verify with the public exponent (n's context from load); on a mismatch, answer the
     * straight exponentiation rather than a faulty CRT result. */
    if (!BN_mod_exp_mont(vrfy, r0, e, n, ctx, RSA_get_ex_data(rsa, mont_n_index)) ||
        !BN_sub(vrfy, vrfy, I) || !BN_nnmod(vrfy, vrfy, n, ctx))
        goto done;
    if (!BN_is_zero(vrfy)) {
        BIGNUM *cd = consttime(d);
        ok = cd != NULL && BN_mod_exp_mont_consttime(r0, I, cd, n, ctx, NULL);
        BN_free(cd);
        goto done;
    }
    ok = 1;
done:
    BN_free(c);
    BN_free(cp);
    BN_free(cq);
    BN_free(cdp);
    BN_free(cdq);
    BN_CTX_end(ctx); /* the values stay in ctx, cleared when the caller frees it */
    return ok;
}

static void method_make(void)
{
    RSA_METHOD *m = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    mod_exp_default = m != NULL ? RSA_meth_get_mod_exp(m) : NULL;
    mont_n_index = RSA_get_ex_new_index(0, NULL, NULL, NULL, mont_n_free);
    if (m != NULL && mod_exp_default != NULL && mont_n_index >= 0 &&
        RSA_meth_set1_name(m, "keyward: p, q in the secure heap") == 1 &&
        RSA_meth_set_init(m, method_init) == 1 && RSA_meth_set_mod_exp(m, mod_exp) == 1)
        method = m;
    else
        RSA_meth_free(m);
}

/* Builds the context of the public modulus once, so mod_exp's check needs no set-up of its own. */
static int mont_n_attach(RSA *rsa)
{
    const BIGNUM *n = RSA_get0_n(rsa);
    BN_CTX *ctx = BN_CTX_new();
    BN_MONT_CTX *mont = BN_MONT_CTX_new();
    int ok = n != NULL && ctx != NULL && mont != NULL && BN_MONT_CTX_set(mont, n, ctx) == 1 &&
             RSA_set_ex_data(rsa, mont_n_index, mont) == 1;
    if (!ok)
        BN_MONT_CTX_free(mont);
    BN_CTX_free(ctx);
    return ok;
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
    if (rsa != NULL && method != NULL && RSA_set_method(rsa, method) == 1 &&
        mont_n_attach(rsa) == 1) {
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
