/*
 * The PEM backend's operations on a worker thread: signatures and decryptions with the worker's
 * cached OpenSSL contexts (pem_cache.c), and 0xA0 as raw RSA followed by the constant-time check
 * of tls_reject.c. RSA keys run with their prime factors kept in the secure heap (hygiene_rsa.c).
 */
#include <string.h>

#include <openssl/err.h>

#include "keystore/pem/pem.h"
#include "keystore/pem/pem_internal.h"
#include "keystore/tls_reject_internal.h"

/*
 * 0xA0: raw RSA, then the constant-time TLS check of tls_reject.c, which answers the synthetic PMS
 * (derived from the ciphertext and the key's secret, so the same every time and on every key
 * server with this key) when the padding or version is wrong. Raw RSA fails only on public
 * properties (ciphertext length, value >= n): those get the synthetic PMS too.
 */
static uint8_t tls_decrypt(kw_ks_pem_entry_t *e, const kw_ks_key_t *key, const uint8_t *in,
                           size_t inlen, unsigned tls_version, uint8_t *out, size_t *outlen)
{
    uint8_t synth[KW_TLS_PMS_LEN];
    uint8_t em[KW_OP_OUT_MAX];
    size_t k = key->max_out;
    if (key->priv == NULL || k < KW_TLS_PMS_LEN + 11 ||
        !kw_ks_ir_synthetic(key->priv, in, inlen, tls_version, synth))
        return KW_ERR_INTERNAL;
    size_t len = sizeof(em);
    int ok =
        e != NULL && inlen == k && EVP_PKEY_decrypt(e->pctx, em, &len, in, inlen) == 1 && len == k;
    if (ok) {
        kw_ks_ir_select(em, k, tls_version, synth, out);
    } else {
        ERR_clear_error();
        memcpy(out, synth, KW_TLS_PMS_LEN);
    }
    OPENSSL_cleanse(em, sizeof(em));
    OPENSSL_cleanse(synth, sizeof(synth));
    *outlen = KW_TLS_PMS_LEN;
    return 0;
}

static uint8_t ed25519_sign(kw_ks_pem_entry_t *e, const kw_ks_key_t *key, const uint8_t *in,
                            size_t inlen, uint8_t *out, size_t *outlen)
{
    size_t len = KW_OP_OUT_MAX;
    if (EVP_DigestSign(e->mdctx, out, &len, in, inlen) == 1) {
        *outlen = len;
        return 0;
    }
    /* Newer OpenSSL refuses a second one-shot on one context: initialise afresh once. */
    ERR_clear_error();
    kw_ks_pem_entry_clear(e);
    kw_ks_op_info_t info = kw_ks_op_info(KW_OP_ED25519_SIGN);
    if (!kw_ks_pem_entry_init(e, key, KW_OP_ED25519_SIGN, &info)) {
        kw_ks_pem_entry_clear(e);
        return KW_ERR_CRYPTO;
    }
    len = KW_OP_OUT_MAX;
    if (EVP_DigestSign(e->mdctx, out, &len, in, inlen) != 1) {
        ERR_clear_error();
        kw_ks_pem_entry_clear(e);
        return KW_ERR_CRYPTO;
    }
    *outlen = len;
    return 0;
}

static uint8_t pem_op_run(kw_ks_op_cache_t *cache, const kw_ks_key_t *key, uint8_t opcode,
                          const uint8_t *in, size_t inlen, unsigned tls_version, uint8_t *out,
                          size_t *outlen)
{
    kw_ks_op_info_t info = kw_ks_op_info(opcode);
    kw_ks_pem_entry_t *e = kw_ks_pem_cache_get(cache, key, opcode, &info);
    if (info.family == KW_KS_FAM_RSA_TLS)
        return tls_decrypt(e, key, in, inlen, tls_version, out, outlen);
    if (e == NULL) {
        ERR_clear_error();
        return KW_ERR_CRYPTO;
    }
    if (info.family == KW_KS_FAM_ED25519)
        return ed25519_sign(e, key, in, inlen, out, outlen);
    size_t len = KW_OP_OUT_MAX;
    int decrypt = info.family == KW_KS_FAM_RSA_DECRYPT || info.family == KW_KS_FAM_RSA_RAW;
    int ok = decrypt ? EVP_PKEY_decrypt(e->pctx, out, &len, in, inlen)
                     : EVP_PKEY_sign(e->pctx, out, &len, in, inlen);
    if (ok != 1) {
        ERR_clear_error();
        if (decrypt)
            OPENSSL_cleanse(out, KW_OP_OUT_MAX);
        return KW_ERR_CRYPTO;
    }
    *outlen = len;
    return 0;
}

static void pem_key_free(void *priv)
{
    kw_ks_ir_secret_free(priv);
}

const kw_ks_backend_t kw_ks_backend_pem = {
    .name = "pem",
    .note = "",
    .local = 1,
    .op_run = pem_op_run,
    .key_free = pem_key_free,
};
