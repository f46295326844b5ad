/*
 * OSSL_STORE loader for "keyward:" URIs: keyward:sha256=HEX (the key id) or keyward:ski=HEX.
 * Loading asks the key server for the key's certificate chain (KWP 0xA2), which proves the key
 * exists and gives its public key; it yields the key first, then the certificates.
 * `openssl s_server -key keyward:sha256=...` and OSSL_STORE_open() callers use this.
 */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "keyward/keyid.h"
#include "kw_chain.h"
#include "provider.h"
#include "remote.h"

#define KW_URI_SCHEME "keyward:"

typedef struct kw_store_ctx_s {
    kw_prov_ctx_t *pctx;
    kw_keyid_kind_t kind;
    uint8_t id[KW_DIGEST_LEN];
    int expect;     /* OSSL_STORE_INFO_* wanted, 0 = all */
    int state;      /* 0: key next, 1: certificates, 2: done */
    uint8_t *chain; /* concatenated DER certificates from the key server */
    size_t chain_len;
    size_t chain_pos;
} kw_store_ctx_t;

static OSSL_FUNC_store_open_fn st_open;
static OSSL_FUNC_store_settable_ctx_params_fn st_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn st_set_ctx_params;
static OSSL_FUNC_store_load_fn st_load;
static OSSL_FUNC_store_eof_fn st_eof;
static OSSL_FUNC_store_close_fn st_close;

static void *st_open(void *provctx, const char *uri)
{
    kw_prov_ctx_t *pctx = provctx;
    kw_store_ctx_t *ctx;
    size_t n = strlen(KW_URI_SCHEME);
    if (uri == NULL || strncmp(uri, KW_URI_SCHEME, n) != 0)
        return NULL;
    ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx == NULL)
        return NULL;
    ctx->pctx = pctx;
    if (kw_keyid_parse(uri + n, &ctx->kind, ctx->id) != 0) {
        kw_prov_raise(pctx, KW_PROV_R_BAD_KEY,
                      "bad keyward URI %s: use keyward:sha256=<64 hex digits> or "
                      "keyward:ski=<40 hex digits>",
                      uri);
        OPENSSL_free(ctx);
        return NULL;
    }
    return ctx;
}

static const OSSL_PARAM *st_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END,
    };
    return settable;
}

static int st_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    kw_store_ctx_t *ctx = loaderctx;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p != NULL && !OSSL_PARAM_get_int(p, &ctx->expect))
        return 0;
    return 1;
}

/* SPKI DER of the first certificate in chain; NULL (raised) when there is none. */
static kw_key_t *key_from_chain(kw_store_ctx_t *ctx)
{
    kw_reader_t r;
    X509 *x = NULL;
    kw_reader_init(&r, ctx->chain, ctx->chain_len);
    if (kw_chain_next(&r, &x, NULL, NULL) != 1)
        x = NULL;
    unsigned char *spki = NULL;
    int spki_len = x == NULL ? 0 : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
    kw_key_t *key = NULL;
    if (spki_len > 0)
        key = kw_key_from_spki(ctx->pctx, spki, (size_t)spki_len);
    else
        kw_prov_raise(ctx->pctx, KW_PROV_R_REMOTE,
                      "the key server sent an unreadable "
                      "certificate chain");
    OPENSSL_free(spki);
    X509_free(x);
    if (key == NULL)
        return NULL;
    /* the chain must belong to the key asked for */
    if (ctx->kind == KW_KEYID_SHA256 ? memcmp(key->digest, ctx->id, KW_DIGEST_LEN) != 0
                                     : memcmp(key->ski, ctx->id, KW_SKI_LEN) != 0) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_REMOTE,
                      "the key server answered a certificate for another key (%s)", key->idtext);
        kw_key_free(key);
        return NULL;
    }
    return key;
}

static int load_key(kw_store_ctx_t *ctx, int wants_key, OSSL_CALLBACK *object_cb,
                    void *object_cbarg)
{
    size_t id_len = ctx->kind == KW_KEYID_SHA256 ? KW_DIGEST_LEN : KW_SKI_LEN;
    int objtype = OSSL_OBJECT_PKEY;
    kw_key_ref_t ref;
    kw_key_t *key;
    OSSL_PARAM params[4];
    int ok;
    if (kw_remote_get_chain(ctx->pctx, ctx->id, id_len, &ctx->chain, &ctx->chain_len) !=
        KW_LOOKUP_FOUND)
        return 0;
    key = key_from_chain(ctx);
    if (key == NULL)
        return 0;
    if (!wants_key) {
        kw_key_free(key);
        return 1;
    }
    kw_key_ref_init(&ref, key);
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)kw_key_type_name(key->type), 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof(ref));
    params[3] = OSSL_PARAM_construct_end();
    ok = object_cb(params, object_cbarg);
    kw_key_free(key);
    return ok;
}

/* Passes the next certificate of the chain on; sets state 2 after the last. */
static int load_cert(kw_store_ctx_t *ctx, OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    kw_reader_t r;
    const uint8_t *der = NULL;
    size_t der_len = 0;
    int objtype = OSSL_OBJECT_CERT;
    OSSL_PARAM params[3];
    kw_reader_init(&r, ctx->chain, ctx->chain_len);
    if (kw_reader_skip(&r, ctx->chain_pos) != 0 || kw_chain_next(&r, NULL, &der, &der_len) != 1) {
        ctx->state = 2;
        return 0;
    }
    ctx->chain_pos = kw_reader_offset(&r);
    if (ctx->chain_pos >= ctx->chain_len)
        ctx->state = 2;
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, (void *)der, der_len);
    params[2] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int st_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                   OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    kw_store_ctx_t *ctx = loaderctx;
    int wants_key = ctx->expect == 0 || ctx->expect == OSSL_STORE_INFO_PKEY ||
                    ctx->expect == OSSL_STORE_INFO_PUBKEY;
    int wants_certs = ctx->expect == 0 || ctx->expect == OSSL_STORE_INFO_CERT;
    if (ctx->state == 0) {
        ctx->state = wants_certs ? 1 : 2;
        if (!load_key(ctx, wants_key, object_cb, object_cbarg)) {
            ctx->state = 2;
            return 0;
        }
        if (wants_key)
            return 1;
    }
    if (ctx->state == 1 && ctx->chain_pos < ctx->chain_len)
        return load_cert(ctx, object_cb, object_cbarg);
    ctx->state = 2;
    return 1;
}

static int st_eof(void *loaderctx)
{
    const kw_store_ctx_t *ctx = loaderctx;
    return ctx->state == 2 || (ctx->state == 1 && ctx->chain_pos >= ctx->chain_len);
}

static int st_close(void *loaderctx)
{
    kw_store_ctx_t *ctx = loaderctx;
    if (ctx != NULL) {
        OPENSSL_free(ctx->chain);
        OPENSSL_free(ctx);
    }
    return 1;
}

const OSSL_DISPATCH kw_store_functions[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))st_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))st_settable_ctx_params},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))st_set_ctx_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))st_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))st_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))st_close},
    {0, NULL},
};
