/*
 * The provider's TLS1-PRF KDF (master-secret mode, issue 8). libssl derives the TLS 1.2 master
 * secret with EVP_KDF "TLS1-PRF" (secret = the PMS, seeds = label, randoms or session hash). When
 * the secret is a live handle from the RSA decryption (master.h) and the label is "master secret"
 * or "extended master secret", the key server derives it (KWP 0xA1) and the PMS never reaches this
 * process. Any other secret is derived locally by the default provider's TLS1-PRF (fetched in the
 * provider's own library context, so never this implementation). A handle that is not live is
 * refused: it must never be used as a PMS.
 */
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "kw_payload.h"
#include "master.h"
#include "provider.h"
#include "remote.h"

#define SEED_MAX   1024
#define SECRET_MAX 1024
#define LABEL_MS   "master secret"
#define LABEL_EMS  "extended master secret"

typedef struct kw_prf_ctx_s {
    kw_prov_ctx_t *pctx;
    char md[64];
    uint8_t *secret; /* cleansed when freed */
    size_t secret_len;
    uint8_t seed[SEED_MAX]; /* all seed params concatenated, as the default TLS1-PRF does */
    size_t seed_len;
} kw_prf_ctx_t;

static OSSL_FUNC_kdf_newctx_fn prf_new;
static OSSL_FUNC_kdf_freectx_fn prf_free;
static OSSL_FUNC_kdf_reset_fn prf_reset;
static OSSL_FUNC_kdf_derive_fn prf_derive;
static OSSL_FUNC_kdf_settable_ctx_params_fn prf_settable;
static OSSL_FUNC_kdf_set_ctx_params_fn prf_set;
static OSSL_FUNC_kdf_gettable_ctx_params_fn prf_gettable;
static OSSL_FUNC_kdf_get_ctx_params_fn prf_get;

static void *prf_new(void *provctx)
{
    kw_prf_ctx_t *ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx != NULL)
        ctx->pctx = provctx;
    return ctx;
}

static void prf_reset(void *vctx)
{
    kw_prf_ctx_t *ctx = vctx;
    kw_prov_ctx_t *pctx = ctx->pctx;
    OPENSSL_clear_free(ctx->secret, ctx->secret_len);
    OPENSSL_cleanse(ctx, sizeof(*ctx));
    ctx->pctx = pctx;
}

static void prf_free(void *vctx)
{
    if (vctx == NULL)
        return;
    prf_reset(vctx);
    OPENSSL_free(vctx);
}

static int set_seeds(kw_prf_ctx_t *ctx, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_KDF_PARAM_SEED);
    if (p != NULL)
        ctx->seed_len = 0; /* a new set of seeds replaces the old one */
    for (; p != NULL; p = OSSL_PARAM_locate_const(p + 1, OSSL_KDF_PARAM_SEED)) {
        const void *v = NULL;
        size_t n = 0;
        if (!OSSL_PARAM_get_octet_string_ptr(p, &v, &n))
            return 0;
        if (n > SEED_MAX - ctx->seed_len)
            return 0;
        if (n > 0)
            memcpy(ctx->seed + ctx->seed_len, v, n);
        ctx->seed_len += n;
    }
    return 1;
}

static int prf_set(void *vctx, const OSSL_PARAM params[])
{
    kw_prf_ctx_t *ctx = vctx;
    const OSSL_PARAM *p;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_KDF_PARAM_DIGEST);
    if (p != NULL) {
        char *md = ctx->md;
        if (!OSSL_PARAM_get_utf8_string(p, &md, sizeof(ctx->md)))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_KDF_PARAM_SECRET);
    if (p != NULL) {
        const void *v = NULL;
        size_t n = 0;
        if (!OSSL_PARAM_get_octet_string_ptr(p, &v, &n) || n > SECRET_MAX)
            return 0;
        OPENSSL_clear_free(ctx->secret, ctx->secret_len);
        ctx->secret = OPENSSL_memdup(v, n > 0 ? n : 1);
        ctx->secret_len = ctx->secret != NULL ? n : 0;
        if (ctx->secret == NULL)
            return 0;
    }
    return set_seeds(ctx, params);
}

/* KWP PRF digest of a digest name, 0 when master-secret mode cannot serve it. */
static uint8_t prf_digest(const char *md)
{
    if (strcasecmp(md, "SHA256") == 0 || strcasecmp(md, "SHA2-256") == 0 ||
        strcasecmp(md, "SHA-256") == 0)
        return KW_PRF_SHA256;
    if (strcasecmp(md, "SHA384") == 0 || strcasecmp(md, "SHA2-384") == 0 ||
        strcasecmp(md, "SHA-384") == 0)
        return KW_PRF_SHA384;
    return 0;
}

/* Length of the label at the start of the seed (LABEL_MS or LABEL_EMS), 0 if neither. */
static size_t seed_label(const kw_prf_ctx_t *ctx, int *ems)
{
    size_t ms = strlen(LABEL_MS);
    size_t xms = strlen(LABEL_EMS);
    *ems = 0;
    if (ctx->seed_len == ms + 2 * KW_TLS_RANDOM_LEN && memcmp(ctx->seed, LABEL_MS, ms) == 0)
        return ms;
    if (ctx->seed_len > xms && ctx->seed_len <= xms + 64 &&
        memcmp(ctx->seed, LABEL_EMS, xms) == 0) {
        *ems = 1;
        return xms;
    }
    return 0;
}

/* Trades a handle for the master secret (KWP 0xA1). Returns 1, or 0 (raised). */
static int derive_remote(kw_prf_ctx_t *ctx, unsigned char *out, size_t outlen)
{
    kw_ms_entry_t e;
    int ems = 0;
    size_t label = seed_label(ctx, &ems);
    uint8_t digest = prf_digest(ctx->md);
    if (label == 0 || digest == 0 || outlen != KW_TLS_MASTER_LEN) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "master-secret mode: a handle was used other than for the TLS 1.2 master "
                      "secret with SHA-256/384 (digest %s, %zu bytes); turn master_secret_mode off "
                      "for TLS 1.0/1.1 clients",
                      ctx->md, outlen);
        return 0;
    }
    if (!kw_ms_handle_take(ctx->pctx, ctx->secret, &e)) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_INTERNAL,
                      "master-secret mode: unknown or expired pre-master secret handle");
        return 0;
    }
    const uint8_t *rest = ctx->seed + label;
    size_t rest_len = ctx->seed_len - label;
    uint8_t extra[KW_ITEM_TLS_VERSION_LEN];
    kw_item_tls_version_write((uint16_t)e.client_version, extra);
    kw_msg_t msg;
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_TLS12_MASTER;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(e.ct, e.ct_len);
    msg.extra = kw_bytes(extra, sizeof(extra));
    msg.prf_digest = kw_bytes(&digest, 1);
    if (ems) {
        msg.session_hash = kw_bytes(rest, rest_len);
    } else {
        msg.client_random = kw_bytes(rest, KW_TLS_RANDOM_LEN);
        msg.server_random = kw_bytes(rest + KW_TLS_RANDOM_LEN, KW_TLS_RANDOM_LEN);
    }
    size_t got = 0;
    int ok = kw_remote_msg_op(e.key, &msg, out, outlen, &got, "TLS 1.2 master secret");
    if (ok && got != KW_TLS_MASTER_LEN) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_REMOTE,
                      "master secret: the key server answered %zu bytes, not 48", got);
        OPENSSL_cleanse(out, outlen);
        ok = 0;
    }
    kw_key_free(e.key);
    OPENSSL_cleanse(&e, sizeof(e));
    return ok;
}

/* Any other secret: the default provider's TLS1-PRF, in the provider's own library context. */
static int derive_local(kw_prf_ctx_t *ctx, unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(ctx->pctx->libctx, OSSL_KDF_NAME_TLS1_PRF, "provider=default");
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[4];
    int ok = 0;
    EVP_KDF_free(kdf);
    if (kctx != NULL) {
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, ctx->md, 0);
        params[1] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, ctx->secret, ctx->secret_len);
        params[2] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, ctx->seed, ctx->seed_len);
        params[3] = OSSL_PARAM_construct_end();
        ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
    }
    EVP_KDF_CTX_free(kctx);
    if (!ok)
        kw_prov_raise(ctx->pctx, KW_PROV_R_INTERNAL,
                      "TLS1-PRF: the default provider's TLS1-PRF failed (digest %s)", ctx->md);
    return ok;
}

static int prf_derive(void *vctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[])
{
    kw_prf_ctx_t *ctx = vctx;
    if (!prf_set(ctx, params))
        return 0;
    if (ctx->secret == NULL || ctx->md[0] == '\0' || ctx->seed_len == 0 || keylen == 0) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_INTERNAL, "TLS1-PRF: missing digest, secret or seed");
        return 0;
    }
    if (kw_ms_is_handle(ctx->secret, ctx->secret_len))
        return derive_remote(ctx, key, keylen);
    return derive_local(ctx, key, keylen);
}

static const OSSL_PARAM *prf_settable(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SECRET, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SEED, NULL, 0),
        OSSL_PARAM_END,
    };
    return settable;
}

static const OSSL_PARAM *prf_gettable(void *vctx, void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_size_t(OSSL_KDF_PARAM_SIZE, NULL),
        OSSL_PARAM_END,
    };
    return gettable;
}

static int prf_get(void *vctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_KDF_PARAM_SIZE);
    if (p != NULL)
        return OSSL_PARAM_set_size_t(p, SIZE_MAX);
    return 1;
}

const OSSL_DISPATCH kw_tls1_prf_functions[] = {
    {OSSL_FUNC_KDF_NEWCTX, (void (*)(void))prf_new},
    {OSSL_FUNC_KDF_FREECTX, (void (*)(void))prf_free},
    {OSSL_FUNC_KDF_RESET, (void (*)(void))prf_reset},
    {OSSL_FUNC_KDF_DERIVE, (void (*)(void))prf_derive},
    {OSSL_FUNC_KDF_SETTABLE_CTX_PARAMS, (void (*)(void))prf_settable},
    {OSSL_FUNC_KDF_SET_CTX_PARAMS, (void (*)(void))prf_set},
    {OSSL_FUNC_KDF_GETTABLE_CTX_PARAMS, (void (*)(void))prf_gettable},
    {OSSL_FUNC_KDF_GET_CTX_PARAMS, (void (*)(void))prf_get},
    {0, NULL},
};
