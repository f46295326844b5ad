/*
 * RSA decryption with keys on a key server. Pad modes: PKCS#1 v1.5 (KWP 0x01), none (0x08, raw),
 * and libssl's RSA_PKCS1_WITH_TLS_PADDING for the TLS 1.2 RSA key exchange, sent as 0xA0 with
 * the ClientHello version: the key server checks padding and version and, on any failure, answers
 * a random 48-byte pre-master secret in constant time (implicit rejection), so no padding oracle
 * reaches the network. Master-secret mode (issue 8) will return an opaque handle here instead,
 * which the provider's TLS1-PRF then trades for the master secret.
 */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "kw_payload.h"
#include "master.h"
#include "provider.h"
#include "remote.h"

typedef struct kw_cipher_ctx_s {
    kw_prov_ctx_t *pctx;
    kw_key_t *key;
    int pad;
    unsigned client_version;     /* TLS padding: the ClientHello version */
    unsigned negotiated_version; /* TLS padding: SSL_OP_TLS_ROLLBACK_BUG only (not sent) */
} kw_cipher_ctx_t;

static OSSL_FUNC_asym_cipher_newctx_fn rsa_newctx;
static OSSL_FUNC_asym_cipher_freectx_fn rsa_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn rsa_dupctx;
static OSSL_FUNC_asym_cipher_decrypt_init_fn rsa_decrypt_init;
static OSSL_FUNC_asym_cipher_decrypt_fn rsa_decrypt;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn rsa_get_ctx_params;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn rsa_set_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn rsa_gettable_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn rsa_settable_ctx_params;

static void *rsa_newctx(void *provctx)
{
    kw_cipher_ctx_t *ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx != NULL) {
        ctx->pctx = provctx;
        ctx->pad = RSA_PKCS1_PADDING;
    }
    return ctx;
}

static void rsa_freectx(void *vctx)
{
    kw_cipher_ctx_t *ctx = vctx;
    if (ctx == NULL)
        return;
    kw_key_free(ctx->key);
    OPENSSL_free(ctx);
}

static void *rsa_dupctx(void *vctx)
{
    kw_cipher_ctx_t *dst = OPENSSL_memdup(vctx, sizeof(kw_cipher_ctx_t));
    if (dst != NULL && dst->key != NULL)
        kw_key_up_ref(dst->key);
    return dst;
}

static int rsa_decrypt_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    kw_cipher_ctx_t *ctx = vctx;
    kw_key_t *key = provkey;
    if (ctx == NULL || key == NULL || key->type != KW_KEY_RSA)
        return 0;
    kw_key_up_ref(key);
    kw_key_free(ctx->key);
    ctx->key = key;
    ctx->pad = RSA_PKCS1_PADDING;
    ctx->client_version = 0;
    ctx->negotiated_version = 0;
    return rsa_set_ctx_params(ctx, params);
}

/* The opcode for the pad mode, and how large the answer can be. */
static int decrypt_plan(const kw_cipher_ctx_t *ctx, uint8_t *op, size_t *need)
{
    size_t k = kw_key_max_size(ctx->key);
    switch (ctx->pad) {
    case RSA_PKCS1_PADDING:
        *op = KW_OP_RSA_DECRYPT;
        *need = k > 11 ? k - 11 : k;
        return 1;
    case RSA_NO_PADDING:
        *op = KW_OP_RSA_DECRYPT_RAW;
        *need = k;
        return 1;
    case RSA_PKCS1_WITH_TLS_PADDING:
        *op = KW_OP_TLS_RSA_DECRYPT;
        *need = KW_TLS_PMS_LEN;
        return 1;
    default:
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "RSA decryption with padding mode %d is not offered by the key server "
                      "(PKCS#1 v1.5, none and TLS are)",
                      ctx->pad);
        return 0;
    }
}

static int rsa_decrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    kw_cipher_ctx_t *ctx = vctx;
    uint8_t op;
    size_t need;
    uint8_t extra[KW_ITEM_TLS_VERSION_LEN];
    uint8_t buf[1024];
    size_t got = 0;
    int ok;
    if (ctx == NULL || ctx->key == NULL || !decrypt_plan(ctx, &op, &need))
        return 0;
    if (out == NULL) {
        *outlen = need;
        return 1;
    }
    /* A ciphertext is exactly the modulus long (RFC 8017 I2OSP; RFC 5246 7.4.7.1 for TLS): any
     * other length is refused here, not sent to the key server. The length is public, so this
     * tells an attacker nothing about padding. */
    size_t k = kw_key_max_size(ctx->key);
    if (inlen > k || (op == KW_OP_TLS_RSA_DECRYPT && inlen != k)) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "RSA decryption: a %zu-byte ciphertext for a %zu-byte modulus", inlen, k);
        return 0;
    }
    if (op == KW_OP_TLS_RSA_DECRYPT && (ctx->client_version == 0 || outsize < KW_TLS_PMS_LEN)) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "TLS RSA decryption needs tls-client-version and a 48-byte buffer");
        return 0;
    }
    if (op == KW_OP_TLS_RSA_DECRYPT && ctx->pctx->cfg.master_secret_mode) {
        /* Master-secret mode: an opaque handle; the TLS1-PRF trades it for the master secret. */
        *outlen = KW_MS_HANDLE_LEN;
        return kw_ms_handle_new(ctx->pctx, ctx->key, in, inlen, ctx->client_version, out);
    }
    kw_item_tls_version_write((uint16_t)ctx->client_version, extra);
    ok = kw_remote_key_op(ctx->key, op, in, inlen, op == KW_OP_TLS_RSA_DECRYPT ? extra : NULL,
                          sizeof(extra), buf, sizeof(buf), &got, "RSA decryption");
    if (ok && (got > outsize || (op == KW_OP_TLS_RSA_DECRYPT && got != KW_TLS_PMS_LEN))) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_REMOTE,
                      "RSA decryption: the key server answered %zu bytes, %zu fit", got, outsize);
        ok = 0;
    }
    if (ok) {
        memcpy(out, buf, got);
        *outlen = got;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return ok;
}

static int set_pad(kw_cipher_ctx_t *ctx, const OSSL_PARAM *p)
{
    int mode = -1;
    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        const char *s = p->data;
        mode = strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0 ? RSA_PKCS1_PADDING
               : strcmp(s, OSSL_PKEY_RSA_PAD_MODE_NONE) == 0  ? RSA_NO_PADDING
                                                              : -1;
    } else if (!OSSL_PARAM_get_int(p, &mode)) {
        return 0;
    }
    if (mode != RSA_PKCS1_PADDING && mode != RSA_NO_PADDING && mode != RSA_PKCS1_WITH_TLS_PADDING) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "RSA padding mode %d is not offered by the key server", mode);
        return 0;
    }
    ctx->pad = mode;
    return 1;
}

static int rsa_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    kw_cipher_ctx_t *ctx = vctx;
    const OSSL_PARAM *p;
    if (ctx == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL && !set_pad(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
    if (p != NULL && !OSSL_PARAM_get_uint(p, &ctx->client_version))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION);
    if (p != NULL && !OSSL_PARAM_get_uint(p, &ctx->negotiated_version))
        return 0;
    return 1;
}

static int rsa_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    kw_cipher_ctx_t *ctx = vctx;
    OSSL_PARAM *p;
    if (ctx == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL && !OSSL_PARAM_set_int(p, ctx->pad))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
    if (p != NULL && !OSSL_PARAM_set_uint(p, ctx->client_version))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION);
    if (p != NULL && !OSSL_PARAM_set_uint(p, ctx->negotiated_version))
        return 0;
    return 1;
}

static const OSSL_PARAM cipher_params[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_gettable_ctx_params(void *vctx, void *provctx)
{
    return cipher_params;
}

static const OSSL_PARAM *rsa_settable_ctx_params(void *vctx, void *provctx)
{
    return cipher_params;
}

const OSSL_DISPATCH kw_rsa_asym_cipher_functions[] = {
    {OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))rsa_newctx},
    {OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))rsa_freectx},
    {OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))rsa_dupctx},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))rsa_decrypt_init},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))rsa_decrypt},
    {OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))rsa_get_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))rsa_gettable_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))rsa_set_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))rsa_settable_ctx_params},
    {0, NULL},
};
