/*
 * Deterministic implicit rejection for TLS RSA key exchange (tls_reject_internal.h): the per-key secret,
 * the synthetic PMS, and the constant-time check that selects between it and the decrypted one.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "keystore/ct_internal.h"
#include "keyward/protocol.h"
#include "keystore/tls_reject_internal.h"

#define DOMAIN    "keyward implicit rejection key secret v1"
#define PRF_LABEL "tls pms"
#define SYNTH_LEN (KW_TLS_PMS_LEN - 2) /* the derived bytes after the version */

/* 40 bytes, no terminating NUL: no signing opcode signs this length (36, or a DigestInfo). */
const uint8_t kw_ks_ir_label[KW_KS_IR_LABEL_LEN] = {
    'k', 'e', 'y', 'w', 'a', 'r', 'd', ' ', 'T', 'L', 'S', ' ', 'i', 'm',
    'p', 'l', 'i', 'c', 'i', 't', ' ', 'r', 'e', 'j', 'e', 'c', 't', 'i',
    'o', 'n', ' ', 's', 'e', 'c', 'r', 'e', 't', ' ', 'v', '1'};

uint8_t *kw_ks_ir_secret_from_sig(const uint8_t *sig, size_t len)
{
    uint8_t *secret = OPENSSL_secure_zalloc(KW_KS_IR_SECRET_LEN);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int outlen = 0;
    int ok = secret != NULL && md != NULL && len > 0 &&
             EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, DOMAIN, sizeof(DOMAIN)) == 1 && /* with its NUL */
             EVP_DigestUpdate(md, sig, len) == 1 && EVP_DigestFinal_ex(md, secret, &outlen) == 1 &&
             outlen == KW_KS_IR_SECRET_LEN;
    EVP_MD_CTX_free(md);
    if (!ok) {
        ERR_clear_error();
        kw_ks_ir_secret_free(secret);
        return NULL;
    }
    return secret;
}

uint8_t *kw_ks_ir_secret_from_pkey(EVP_PKEY *pkey)
{
    uint8_t sig[1024];
    size_t len = sizeof(sig);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    /* PKCS#1 v1.5 type 1 padding without a DigestInfo, as CKM_RSA_PKCS on a token. */
    int ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_sign(ctx, sig, &len, kw_ks_ir_label, sizeof(kw_ks_ir_label)) == 1;
    EVP_PKEY_CTX_free(ctx);
    uint8_t *secret = ok ? kw_ks_ir_secret_from_sig(sig, len) : NULL;
    OPENSSL_cleanse(sig, sizeof(sig));
    ERR_clear_error();
    return secret;
}

void kw_ks_ir_secret_free(uint8_t *secret)
{
    if (secret != NULL)
        OPENSSL_secure_clear_free(secret, KW_KS_IR_SECRET_LEN);
}

int kw_ks_ir_synthetic(const uint8_t *secret, const uint8_t *ct, size_t ctlen, unsigned version,
                       uint8_t out[48])
{
    uint8_t kdk[32];
    uint8_t block[32];
    /* I2OSP(i, 2) || label || version || I2OSP(bits, 2), as the draft's IRPRF. */
    uint8_t msg[2 + sizeof(PRF_LABEL) - 1 + 2 + 2];
    unsigned int len = 0;
    int ok = HMAC(EVP_sha256(), secret, KW_KS_IR_SECRET_LEN, ct, ctlen, kdk, &len) != NULL &&
             len == sizeof(kdk);
    size_t off = 2;
    memcpy(msg + off, PRF_LABEL, sizeof(PRF_LABEL) - 1);
    off += sizeof(PRF_LABEL) - 1;
    msg[off++] = (uint8_t)(version >> 8);
    msg[off++] = (uint8_t)version;
    msg[off++] = (uint8_t)((SYNTH_LEN * 8) >> 8);
    msg[off++] = (uint8_t)(SYNTH_LEN * 8);
    out[0] = (uint8_t)(version >> 8);
    out[1] = (uint8_t)version;
    for (size_t i = 0, done = 0; ok && done < SYNTH_LEN; i++) {
        msg[0] = (uint8_t)(i >> 8);
        msg[1] = (uint8_t)i;
        ok = HMAC(EVP_sha256(), kdk, sizeof(kdk), msg, sizeof(msg), block, &len) != NULL &&
             len == sizeof(block);
        size_t n = SYNTH_LEN - done < sizeof(block) ? SYNTH_LEN - done : sizeof(block);
        memcpy(out + 2 + done, block, n);
        done += n;
    }
    OPENSSL_cleanse(kdk, sizeof(kdk));
    OPENSSL_cleanse(block, sizeof(block));
    if (!ok) {
        ERR_clear_error();
        OPENSSL_cleanse(out, KW_TLS_PMS_LEN);
    }
    return ok;
}

void kw_ks_ir_select(const uint8_t *em, size_t k, unsigned version, const uint8_t synth[48],
                     uint8_t out[48])
{
    size_t sep = k - KW_TLS_PMS_LEN - 1;
    unsigned good = kw_ct_eq(em[0], 0) & kw_ct_eq(em[1], 2);
    for (size_t i = 2; i < sep; i++)
        good &= ~kw_ct_is_zero(em[i]);
    good &= kw_ct_is_zero(em[sep]);
    /* The version check is one more mask (Klima-Pokorny-Rosa: never a separate outcome). */
    good &= kw_ct_eq(em[sep + 1], (version >> 8) & 0xff) & kw_ct_eq(em[sep + 2], version & 0xff);
    for (size_t i = 0; i < KW_TLS_PMS_LEN; i++)
        out[i] = (uint8_t)((em[sep + 1 + i] & good) | (synth[i] & ~good));
}
