/*
 * KWP key operations on a PKCS#11 token. Signatures: CKM_RSA_PKCS over a DigestInfo (RFC 8017
 * §9.2), CKM_RSA_PKCS_PSS (salt = digest length), CKM_ECDSA (the token's r||s turned into DER, as
 * the protocol answers) and CKM_EDDSA. Decryption: CKM_RSA_X_509 (raw) and the PKCS#1 v1.5 checks
 * done here, so the TLS decrypt (0xA0) checks padding and version in constant time and substitutes
 * the key's synthetic PMS on failure (tls_reject_internal.h; RFC 5246 §7.4.7.1): a token that answers "bad
 * padding" with an error after a data-dependent time would be a padding oracle. Only when the
 * token lacks CKM_RSA_X_509 does 0xA0 fall back to CKM_RSA_PKCS plus the same substitution; its
 * error path is then the token's, and its timing is not under our control (logged once at load;
 * see docs/operator.md). The key's implicit-rejection secret is derived here at load.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "keystore/ct_internal.h"
#include "keyward/error.h"
#include "kw_log.h"
#include "keyward/protocol.h"
#include "keystore/pkcs11/pkcs11_internal.h"
#include "keystore/tls_reject_internal.h"

#define EM_MAX 512 /* RSA-4096 */

/* ---- running one mechanism ---- */

static uint8_t map_rv(const kw_ks_p11_key_t *key, CK_RV rv, const char *what)
{
    if (rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_HOST_MEMORY || rv == CKR_DEVICE_MEMORY ||
        rv == CKR_BUFFER_TOO_SMALL || kw_ks_p11_rv_breaks_session(rv)) {
        kw_error("pkcs11 key %s: %s failed: %s (0x%lx)", key->name, what, kw_ks_p11_rv_name(rv),
                 (unsigned long)rv);
        return KW_ERR_INTERNAL;
    }
    kw_warn("pkcs11 key %s: %s refused: %s (0x%lx)", key->name, what, kw_ks_p11_rv_name(rv),
            (unsigned long)rv);
    return KW_ERR_CRYPTO;
}

/* C_SignInit+C_Sign or C_DecryptInit+C_Decrypt once on a pooled session, which is dropped when
 * drops(rv) says it broke. *outlen: room in, length out (set only on success). */
static CK_RV run_once(const kw_ks_p11_key_t *key, int decrypt, CK_MECHANISM *mech,
                      const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen,
                      int (*drops)(CK_RV))
{
    kw_ks_p11_token_t *t = key->token;
    CK_SESSION_HANDLE s;
    CK_RV rv = kw_ks_p11_session_get(t, &s);
    if (rv != CKR_OK)
        return rv;
    CK_ULONG len = (CK_ULONG)*outlen;
    if (decrypt) {
        rv = t->f->C_DecryptInit(s, mech, key->handle);
        if (rv == CKR_OK)
            rv = t->f->C_Decrypt(s, (CK_BYTE *)in, (CK_ULONG)inlen, out, &len);
    } else {
        rv = t->f->C_SignInit(s, mech, key->handle);
        if (rv == CKR_OK)
            rv = t->f->C_Sign(s, (CK_BYTE *)in, (CK_ULONG)inlen, out, &len);
    }
    kw_ks_p11_session_put(t, s, drops(rv));
    if (rv == CKR_OK)
        *outlen = (size_t)len;
    return rv;
}

static int breaks_or_too_small(CK_RV rv)
{
    return rv == CKR_BUFFER_TOO_SMALL || kw_ks_p11_rv_breaks_session(rv);
}

/* run_once, with one retry on a fresh session when the session (not the request) failed. */
static CK_RV run_mech(const kw_ks_p11_key_t *key, int decrypt, CK_MECHANISM *mech,
                      const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    CK_RV rv = run_once(key, decrypt, mech, in, inlen, out, outlen, breaks_or_too_small);
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && kw_ks_p11_rv_breaks_session(rv))
        rv = run_once(key, decrypt, mech, in, inlen, out, outlen, breaks_or_too_small);
    return rv;
}

/* ---- signatures ---- */

/* RFC 8017 §9.2 note 1: DER of DigestInfo up to the digest, for SHA-1, -224, -256, -384, -512. */
static const uint8_t *digest_info(uint8_t opcode, size_t *len)
{
    static const uint8_t sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                   0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
    static const uint8_t sha2[4][19] = {
        {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04,
         0x05, 0x00, 0x04, 0x1c},
        {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
         0x05, 0x00, 0x04, 0x20},
        {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
         0x05, 0x00, 0x04, 0x30},
        {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
         0x05, 0x00, 0x04, 0x40},
    };
    *len = 0;
    if (opcode == KW_OP_RSA_SIGN_MD5SHA1)
        return NULL; /* TLS 1.0/1.1: the 36 bytes are signed without a DigestInfo */
    if (opcode == KW_OP_RSA_SIGN_SHA1) {
        *len = sizeof(sha1);
        return sha1;
    }
    *len = sizeof(sha2[0]);
    return sha2[opcode - KW_OP_RSA_SIGN_SHA224];
}

static uint8_t rsa_pkcs1_sign(const kw_ks_p11_key_t *key, uint8_t opcode, const uint8_t *in,
                              size_t inlen, uint8_t *out, size_t outmax, size_t *outlen)
{
    uint8_t buf[19 + 64];
    size_t plen = 0;
    const uint8_t *prefix = digest_info(opcode, &plen);
    if (inlen > 64)
        return KW_ERR_FORMAT;
    if (prefix != NULL)
        memcpy(buf, prefix, plen);
    memcpy(buf + plen, in, inlen);
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    *outlen = outmax;
    CK_RV rv = run_mech(key, 0, &mech, buf, plen + inlen, out, outlen);
    return rv == CKR_OK ? 0 : map_rv(key, rv, "RSA PKCS#1 sign");
}

static uint8_t rsa_pss_sign(const kw_ks_p11_key_t *key, uint8_t opcode, const uint8_t *in,
                            size_t inlen, uint8_t *out, size_t outmax, size_t *outlen)
{
    static const CK_MECHANISM_TYPE hashes[] = {CKM_SHA256, CKM_SHA384, CKM_SHA512};
    static const CK_RSA_PKCS_MGF_TYPE mgfs[] = {CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA512};
    size_t i = (size_t)(opcode - KW_OP_RSA_PSS_SIGN_SHA256);
    CK_RSA_PKCS_PSS_PARAMS pss = {hashes[i], mgfs[i], (CK_ULONG)inlen};
    CK_MECHANISM mech = {CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
    *outlen = outmax;
    CK_RV rv = run_mech(key, 0, &mech, in, inlen, out, outlen);
    return rv == CKR_OK ? 0 : map_rv(key, rv, "RSA-PSS sign");
}

/* r||s (each half of len) into a DER ECDSA-Sig-Value. */
static uint8_t ecdsa_der(const uint8_t *rs, size_t len, uint8_t *out, size_t outmax, size_t *outlen)
{
    if (len == 0 || len % 2 != 0)
        return KW_ERR_INTERNAL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)(len / 2), NULL);
    BIGNUM *s = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
    uint8_t rc = KW_ERR_INTERNAL;
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = NULL; /* owned by sig now */
        s = NULL;
        int n = i2d_ECDSA_SIG(sig, NULL);
        unsigned char *p = out;
        if (n > 0 && (size_t)n <= outmax && i2d_ECDSA_SIG(sig, &p) == n) {
            *outlen = (size_t)n;
            rc = 0;
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    ERR_clear_error();
    return rc;
}

static uint8_t ecdsa_sign(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen, uint8_t *out,
                          size_t outmax, size_t *outlen)
{
    uint8_t rs[2 * 66];
    size_t rslen = sizeof(rs);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_RV rv = run_mech(key, 0, &mech, in, inlen, rs, &rslen);
    if (rv != CKR_OK)
        return map_rv(key, rv, "ECDSA sign");
    return ecdsa_der(rs, rslen, out, outmax, outlen);
}

static uint8_t eddsa_sign(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen, uint8_t *out,
                          size_t outmax, size_t *outlen)
{
    CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};
    *outlen = outmax;
    CK_RV rv = run_mech(key, 0, &mech, in, inlen, out, outlen);
    return rv == CKR_OK ? 0 : map_rv(key, rv, "Ed25519 sign");
}

/* ---- decryption ---- */

/* Raw RSA of in (at most k bytes, left-padded with zeros to k) into em[0..k). */
static CK_RV raw_decrypt(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen, uint8_t *em)
{
    uint8_t c[EM_MAX];
    size_t k = key->k;
    memset(c, 0, k - inlen);
    memcpy(c + (k - inlen), in, inlen);
    if (key->modulus == NULL || memcmp(c, key->modulus, k) >= 0)
        return CKR_ENCRYPTED_DATA_INVALID; /* not below n: public, refused before the token */
    size_t len = EM_MAX;
    CK_MECHANISM mech = {CKM_RSA_X_509, NULL, 0};
    CK_RV rv = run_mech(key, 1, &mech, c, k, em, &len);
    if (rv == CKR_OK && len > k)
        rv = CKR_GENERAL_ERROR;
    if (rv == CKR_OK && len < k) { /* a module that strips leading zero bytes */
        memmove(em + (k - len), em, len);
        memset(em, 0, k - len);
    }
    return rv;
}

static uint8_t rsa_raw(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen, uint8_t *out,
                       size_t outmax, size_t *outlen)
{
    if (inlen != key->k || key->k > outmax)
        return KW_ERR_FORMAT;
    CK_RV rv = raw_decrypt(key, in, inlen, out);
    if (rv != CKR_OK) {
        OPENSSL_cleanse(out, key->k);
        return map_rv(key, rv, "raw RSA decrypt");
    }
    *outlen = key->k;
    return 0;
}

/* PKCS#1 v1.5 type 2 decryption (0x01): the message after the padding, or KW_ERR_CRYPTO. */
static uint8_t rsa_pkcs1_decrypt(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen,
                                 uint8_t *out, size_t outmax, size_t *outlen)
{
    uint8_t em[EM_MAX];
    size_t k = key->k;
    if (inlen == 0 || inlen > k)
        return KW_ERR_FORMAT;
    if (!(key->token->mechs & KW_P11_MECH_RSA_X509)) {
        CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
        *outlen = outmax;
        CK_RV rv = run_mech(key, 1, &mech, in, inlen, out, outlen);
        return rv == CKR_OK ? 0 : map_rv(key, rv, "RSA decrypt");
    }
    CK_RV rv = raw_decrypt(key, in, inlen, em);
    if (rv != CKR_OK)
        return map_rv(key, rv, "RSA decrypt");
    unsigned good = kw_ct_eq(em[0], 0) & kw_ct_eq(em[1], 2);
    unsigned found = 0;
    unsigned zero_at = 0;
    for (size_t i = 2; i < k; i++) {
        unsigned is0 = kw_ct_is_zero(em[i]) & ~found;
        zero_at = (zero_at & ~is0) | ((unsigned)i & is0);
        found |= is0;
    }
    good &= found & ~kw_ct_lt(zero_at, 10); /* at least 8 padding bytes */
    size_t mlen = k - zero_at - 1;
    uint8_t rc = KW_ERR_CRYPTO;
    if (good && mlen <= outmax) { /* 0x01 reports bad padding by design (gokeyless) */
        memcpy(out, em + zero_at + 1, mlen);
        *outlen = mlen;
        rc = 0;
    }
    OPENSSL_cleanse(em, sizeof(em));
    return rc;
}

/* 0xA0 with a token that has CKM_RSA_X_509: constant-time check of the TLS padding and version. */
static uint8_t tls_decrypt_raw(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen,
                               unsigned version, const uint8_t *synth, uint8_t *out)
{
    uint8_t em[EM_MAX];
    CK_RV rv = raw_decrypt(key, in, inlen, em);
    if (rv != CKR_OK) {
        /* Raw RSA fails only on public properties (ciphertext >= n) or a broken token. */
        OPENSSL_cleanse(em, sizeof(em));
        if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
            rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE) {
            memcpy(out, synth, KW_TLS_PMS_LEN);
            return 0;
        }
        return map_rv(key, rv, "TLS RSA decrypt");
    }
    kw_ks_ir_select(em, key->k, version, synth, out);
    OPENSSL_cleanse(em, sizeof(em));
    return 0;
}

/* Failures that say the session or token is gone, whatever the ciphertext was. */
static int session_gone(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_OPERATION_ACTIVE;
}

/*
 * 0xA0 fallback: the token unpads (CKM_RSA_PKCS); any failure yields the synthetic PMS. Tokens
 * report bad padding in their own ways (SoftHSM2: CKR_GENERAL_ERROR, which elsewhere means a
 * broken session), so here nothing the token answers becomes an error reply, a retry (a second
 * decryption only for bad padding would double its time) or a dropped session (its reopening
 * would slow the next request): one attempt, and only failures that cannot depend on the
 * ciphertext drop the session and are logged.
 */
static uint8_t tls_decrypt_pkcs(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen,
                                unsigned version, const uint8_t *synth, uint8_t *out)
{
    uint8_t pms[EM_MAX];
    size_t len = sizeof(pms);
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    CK_RV rv = run_once(key, 1, &mech, in, inlen, pms, &len, session_gone);
    if (rv != CKR_OK)
        len = 0;
    if (session_gone(rv) || rv == CKR_USER_NOT_LOGGED_IN)
        kw_warn("pkcs11 key %s: TLS RSA decrypt: %s (0x%lx); answered the synthetic PMS", key->name,
                kw_ks_p11_rv_name(rv), (unsigned long)rv);
    unsigned good =
        kw_ct_is_zero((unsigned)(rv != CKR_OK)) & kw_ct_eq((unsigned)len, KW_TLS_PMS_LEN);
    good &= kw_ct_eq(pms[0], (version >> 8) & 0xff) & kw_ct_eq(pms[1], version & 0xff);
    for (size_t i = 0; i < KW_TLS_PMS_LEN; i++)
        out[i] = (uint8_t)((pms[i] & good) | (synth[i] & ~good));
    OPENSSL_cleanse(pms, sizeof(pms));
    return 0;
}

static uint8_t tls_decrypt(const kw_ks_p11_key_t *key, const uint8_t *in, size_t inlen,
                           unsigned version, uint8_t *out, size_t outmax, size_t *outlen)
{
    uint8_t synth[KW_TLS_PMS_LEN];
    if (outmax < KW_TLS_PMS_LEN || key->k > EM_MAX || key->k < KW_TLS_PMS_LEN + 11 ||
        key->ir_secret == NULL || !kw_ks_ir_synthetic(key->ir_secret, in, inlen, version, synth))
        return KW_ERR_INTERNAL;
    uint8_t rc = 0;
    if (inlen != key->k) /* public: answer the synthetic PMS at once, as for PEM keys */
        memcpy(out, synth, KW_TLS_PMS_LEN);
    else if (key->token->mechs & KW_P11_MECH_RSA_X509)
        rc = tls_decrypt_raw(key, in, inlen, version, synth, out);
    else
        rc = tls_decrypt_pkcs(key, in, inlen, version, synth, out);
    OPENSSL_cleanse(synth, sizeof(synth));
    if (rc == 0)
        *outlen = KW_TLS_PMS_LEN;
    return rc;
}

/* EMSA-PKCS1-v1_5 type 1 block of kw_ks_ir_label: what CKM_RSA_PKCS signs, for CKM_RSA_X_509. */
static void label_block(uint8_t *em, size_t k)
{
    size_t ps = k - 3 - KW_KS_IR_LABEL_LEN;
    em[0] = 0x00;
    em[1] = 0x01;
    memset(em + 2, 0xff, ps);
    em[2 + ps] = 0x00;
    memcpy(em + 3 + ps, kw_ks_ir_label, KW_KS_IR_LABEL_LEN);
}

int kw_ks_p11_ir_init(kw_ks_p11_key_t *key)
{
    uint8_t sig[EM_MAX];
    uint8_t em[EM_MAX];
    size_t len = sizeof(sig);
    if (key->type != KW_P11_RSA)
        return 0;
    if (key->k > EM_MAX || key->k < KW_KS_IR_LABEL_LEN + 11)
        return KW_EINVAL;
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    CK_RV rv = run_mech(key, 0, &mech, kw_ks_ir_label, KW_KS_IR_LABEL_LEN, sig, &len);
    if (rv != CKR_OK && (key->token->mechs & KW_P11_MECH_RSA_X509)) {
        label_block(em, key->k); /* the same value through raw RSA */
        len = key->k;
        rv = raw_decrypt(key, em, key->k, sig);
    }
    if (rv == CKR_OK && len == key->k)
        key->ir_secret = kw_ks_ir_secret_from_sig(sig, len);
    OPENSSL_cleanse(sig, sizeof(sig));
    if (key->ir_secret != NULL)
        return 0;
    kw_error("pkcs11 key %s: cannot derive its implicit-rejection secret (the token refused to "
             "sign with CKM_RSA_PKCS: %s); TLS RSA decryption (0xA0/0xA1) with it answers an error",
             key->name, kw_ks_p11_rv_name(rv));
    return rv == CKR_HOST_MEMORY ? KW_ENOMEM : KW_ECRYPTO;
}

uint8_t kw_ks_p11_op_run(const kw_ks_p11_key_t *key, uint8_t opcode, const uint8_t *in,
                         size_t inlen, unsigned tls_version, uint8_t *out, size_t outmax,
                         size_t *outlen)
{
    if (key->k > EM_MAX || key->k > outmax)
        return KW_ERR_INTERNAL;
    if (opcode >= KW_OP_RSA_SIGN_MD5SHA1 && opcode <= KW_OP_RSA_SIGN_SHA512)
        return rsa_pkcs1_sign(key, opcode, in, inlen, out, outmax, outlen);
    if (opcode >= KW_OP_RSA_PSS_SIGN_SHA256 && opcode <= KW_OP_RSA_PSS_SIGN_SHA512)
        return rsa_pss_sign(key, opcode, in, inlen, out, outmax, outlen);
    if (opcode >= KW_OP_ECDSA_SIGN_MD5SHA1 && opcode <= KW_OP_ECDSA_SIGN_SHA512)
        return ecdsa_sign(key, in, inlen, out, outmax, outlen);
    switch (opcode) {
    case KW_OP_ED25519_SIGN:
        return eddsa_sign(key, in, inlen, out, outmax, outlen);
    case KW_OP_RSA_DECRYPT:
        return rsa_pkcs1_decrypt(key, in, inlen, out, outmax, outlen);
    case KW_OP_RSA_DECRYPT_RAW:
        return rsa_raw(key, in, inlen, out, outmax, outlen);
    case KW_OP_TLS_RSA_DECRYPT:
        return tls_decrypt(key, in, inlen, tls_version, out, outmax, outlen);
    default:
        return KW_ERR_BAD_OPCODE;
    }
}
