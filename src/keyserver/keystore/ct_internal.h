/*
 * Constant-time helpers of the key server's padding checks: each returns an all-ones or all-zero
 * mask computed without a branch, so code that meets a secret (a decrypted block) selects with
 * masks instead of testing it. Used by tls_reject.c and pkcs11_ops.c.
 * Internal to keystore/ and its backend folders.
 */
#ifndef KW_KS_CT_H
#define KW_KS_CT_H

/* All ones when the top bit of a is set. */
static inline unsigned kw_ct_msb(unsigned a)
{
    return 0u - (a >> (sizeof(a) * 8 - 1));
}

static inline unsigned kw_ct_is_zero(unsigned a)
{
    return kw_ct_msb(~a & (a - 1));
}

static inline unsigned kw_ct_eq(unsigned a, unsigned b)
{
    return kw_ct_is_zero(a ^ b);
}

/* a < b for values below 2^31. */
static inline unsigned kw_ct_lt(unsigned a, unsigned b)
{
    return kw_ct_msb(a - b);
}

#endif /* KW_KS_CT_H */
