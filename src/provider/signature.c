/*
 * Signatures with keys on a key server: RSA (PKCS#1 v1.5, PSS), ECDSA and Ed25519.
 * libssl signs with EVP_DigestSign*: the digest is computed here (default provider, in the
 * provider's library context) and only the digest goes to the key server, as the KWP opcode of
 * the algorithm and digest (DESIGN.md §3); Ed25519 sends the whole message (opcode 0x18).
 * EVP_PKEY_sign with a pre-computed digest takes the same path without hashing.
 */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include "provider.h"
#include "remote.h"
#include "signature.h"

#define KW_MAX_MSG 8192 /* Ed25519 message collected by digest_sign_update */

static OSSL_FUNC_signature_freectx_fn sig_freectx;
static OSSL_FUNC_signature_dupctx_fn sig_dupctx;
static OSSL_FUNC_signature_sign_init_fn sig_sign_init;
static OSSL_FUNC_signature_sign_fn sig_sign;
static OSSL_FUNC_signature_digest_sign_init_fn sig_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_update_fn sig_digest_sign_update;
static OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;

static kw_sig_ctx_t *sig_newctx(void *provctx, kw_key_type_t type)
{
    kw_sig_ctx_t *ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx == NULL)
        return NULL;
    ctx->pctx = provctx;
    ctx->type = type;
    ctx->pad = RSA_PKCS1_PADDING;
    ctx->saltlen = RSA_PSS_SALTLEN_DIGEST;
    return ctx;
}

static void sig_freectx(void *vctx)
{
    kw_sig_ctx_t *ctx = vctx;
    if (ctx == NULL)
        return;
    kw_key_free(ctx->key);
    EVP_MD_free(ctx->md);
    EVP_MD_free(ctx->mgf1);
    EVP_MD_CTX_free(ctx->mdctx);
    OPENSSL_free(ctx->msg);
    OPENSSL_free(ctx);
}

static void *sig_dupctx(void *vctx)
{
    const kw_sig_ctx_t *src = vctx;
    kw_sig_ctx_t *dst = OPENSSL_memdup(src, sizeof(*src));
    int ok = dst != NULL;
    if (!ok)
        return NULL;
    dst->mdctx = NULL;
    dst->msg = NULL;
    if (dst->key != NULL)
        kw_key_up_ref(dst->key);
    if (dst->md != NULL && !EVP_MD_up_ref(dst->md))
        dst->md = NULL;
    if (dst->mgf1 != NULL && !EVP_MD_up_ref(dst->mgf1))
        dst->mgf1 = NULL;
    if (src->mdctx != NULL) {
        dst->mdctx = EVP_MD_CTX_new();
        ok = dst->mdctx != NULL && EVP_MD_CTX_copy_ex(dst->mdctx, src->mdctx) == 1;
    }
    if (ok && src->msg != NULL) {
        dst->msg = OPENSSL_memdup(src->msg, src->msg_len);
        ok = dst->msg != NULL;
    }
    if (!ok) {
        sig_freectx(dst);
        return NULL;
    }
    return dst;
}

static int sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    kw_sig_ctx_t *ctx = vctx;
    kw_key_t *key = provkey;
    if (ctx == NULL || key == NULL || key->type != ctx->type) {
        kw_prov_raise(ctx ? ctx->pctx : NULL, KW_PROV_R_BAD_KEY,
                      "key type does not fit this signature algorithm");
        return 0;
    }
    kw_key_up_ref(key);
    kw_key_free(ctx->key);
    ctx->key = key;
    ctx->pad = RSA_PKCS1_PADDING;
    ctx->saltlen = RSA_PSS_SALTLEN_DIGEST;
    EVP_MD_free(ctx->mgf1);
    ctx->mgf1 = NULL;
    ctx->msg_len = 0;
    return kw_sig_set_ctx_params(ctx, params);
}

/* KWP opcode for an RSA signature over a digest of dlen bytes with nid (NID_undef: by length). */
static int rsa_opcode(const kw_sig_ctx_t *ctx, int nid, size_t dlen, uint8_t *op)
{
    if (nid == NID_undef && dlen == 36)
        nid = NID_md5_sha1;
    if (ctx->pad == RSA_PKCS1_PSS_PADDING) {
        const EVP_MD *mgf1 = ctx->mgf1 != NULL ? ctx->mgf1 : ctx->md;
        if (ctx->md == NULL || EVP_MD_get_type(mgf1) != nid ||
            (ctx->saltlen != RSA_PSS_SALTLEN_DIGEST && (size_t)ctx->saltlen != dlen))
            return 0;
        *op = nid == NID_sha256   ? KW_OP_RSA_PSS_SIGN_SHA256
              : nid == NID_sha384 ? KW_OP_RSA_PSS_SIGN_SHA384
              : nid == NID_sha512 ? KW_OP_RSA_PSS_SIGN_SHA512
                                  : 0;
        return *op != 0;
    }
    *op = nid == NID_md5_sha1 ? KW_OP_RSA_SIGN_MD5SHA1
          : nid == NID_sha1   ? KW_OP_RSA_SIGN_SHA1
          : nid == NID_sha224 ? KW_OP_RSA_SIGN_SHA224
          : nid == NID_sha256 ? KW_OP_RSA_SIGN_SHA256
          : nid == NID_sha384 ? KW_OP_RSA_SIGN_SHA384
          : nid == NID_sha512 ? KW_OP_RSA_SIGN_SHA512
                              : 0;
    return *op != 0;
}

/* ECDSA signs a hash value of any length; the opcode names the hash (by length when unset). */
static int ecdsa_opcode(int nid, size_t dlen, uint8_t *op)
{
    if (nid == NID_undef)
        nid = dlen == 20   ? NID_sha1
              : dlen == 28 ? NID_sha224
              : dlen == 32 ? NID_sha256
              : dlen == 48 ? NID_sha384
              : dlen == 64 ? NID_sha512
              : dlen == 36 ? NID_md5_sha1
                           : NID_undef;
    *op = nid == NID_md5_sha1 ? KW_OP_ECDSA_SIGN_MD5SHA1
          : nid == NID_sha1   ? KW_OP_ECDSA_SIGN_SHA1
          : nid == NID_sha224 ? KW_OP_ECDSA_SIGN_SHA224
          : nid == NID_sha256 ? KW_OP_ECDSA_SIGN_SHA256
          : nid == NID_sha384 ? KW_OP_ECDSA_SIGN_SHA384
          : nid == NID_sha512 ? KW_OP_ECDSA_SIGN_SHA512
                              : 0;
    return *op != 0;
}

static const char *op_label(const kw_sig_ctx_t *ctx)
{
    if (ctx->type == KW_KEY_EC)
        return "ECDSA signature";
    if (ctx->type == KW_KEY_ED25519)
        return "Ed25519 signature";
    return ctx->pad == RSA_PKCS1_PSS_PADDING ? "RSA-PSS signature" : "RSA PKCS#1 signature";
}

/* Signs tbs (a digest; the message for Ed25519) on the key server. */
static int sign_remote(kw_sig_ctx_t *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *tbs, size_t tbslen)
{
    int nid = ctx->md != NULL ? EVP_MD_get_type(ctx->md) : NID_undef;
    uint8_t op = KW_OP_ED25519_SIGN;
    int ok = 1;
    if (ctx->md != NULL && (size_t)EVP_MD_get_size(ctx->md) != tbslen)
        ok = 0;
    else if (ctx->type == KW_KEY_RSA)
        ok = rsa_opcode(ctx, nid, tbslen, &op);
    else if (ctx->type == KW_KEY_EC)
        ok = ecdsa_opcode(nid, tbslen, &op);
    if (!ok) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "%s with digest %s (%zu bytes)%s is not offered by the key server",
                      op_label(ctx), ctx->md ? EVP_MD_get0_name(ctx->md) : "(none)", tbslen,
                      ctx->pad == RSA_PKCS1_PSS_PADDING ? ", salt/MGF1 other than the digest's"
                                                        : "");
        return 0;
    }
    return kw_remote_key_op(ctx->key, op, tbs, tbslen, NULL, 0, sig, sigsize, siglen,
                            op_label(ctx));
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    kw_sig_ctx_t *ctx = vctx;
    if (ctx == NULL || ctx->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = kw_key_max_size(ctx->key);
        return *siglen > 0;
    }
    return sign_remote(ctx, sig, siglen, sigsize, tbs, tbslen);
}

/* Digests libssl may ask for, per algorithm; anything else is refused at init. */
static int md_allowed(const kw_sig_ctx_t *ctx)
{
    int nid = EVP_MD_get_type(ctx->md);
    if (nid == NID_sha1 || nid == NID_sha224 || nid == NID_sha256 || nid == NID_sha384 ||
        nid == NID_sha512)
        return 1;
    return nid == NID_md5_sha1 && ctx->type != KW_KEY_ED25519;
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    kw_sig_ctx_t *ctx = vctx;
    if (!sig_sign_init(vctx, provkey, NULL))
        return 0;
    if (ctx->type == KW_KEY_ED25519) {
        if (mdname != NULL && *mdname != '\0') {
            kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED, "Ed25519 takes no digest (got %s)",
                          mdname);
            return 0;
        }
        return kw_sig_set_md(ctx, NULL) && kw_sig_set_ctx_params(ctx, params);
    }
    if (!kw_sig_set_md(ctx, mdname != NULL && *mdname != '\0' ? mdname : "SHA256"))
        return 0;
    if (!md_allowed(ctx)) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "%s with %s is not offered by the key "
                      "server",
                      op_label(ctx), mdname);
        return 0;
    }
    if (ctx->mdctx == NULL)
        ctx->mdctx = EVP_MD_CTX_new();
    if (ctx->mdctx == NULL || EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL) != 1)
        return 0;
    return kw_sig_set_ctx_params(ctx, params);
}

static int sig_digest_sign_update(void *vctx, const unsigned char *data, size_t datalen)
{
    kw_sig_ctx_t *ctx = vctx;
    unsigned char *grown;
    if (ctx == NULL)
        return 0;
    if (ctx->type != KW_KEY_ED25519)
        return ctx->mdctx != NULL && EVP_DigestUpdate(ctx->mdctx, data, datalen) == 1;
    if (datalen > KW_MAX_MSG - ctx->msg_len) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED, "Ed25519 message longer than %d bytes",
                      KW_MAX_MSG);
        return 0;
    }
    grown = OPENSSL_realloc(ctx->msg, ctx->msg_len + datalen + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + ctx->msg_len, data, datalen);
    ctx->msg = grown;
    ctx->msg_len += datalen;
    return 1;
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    kw_sig_ctx_t *ctx = vctx;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (ctx == NULL || ctx->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = kw_key_max_size(ctx->key);
        return *siglen > 0;
    }
    if (ctx->type == KW_KEY_ED25519)
        return sign_remote(ctx, sig, siglen, sigsize, ctx->msg, ctx->msg_len);
    if (ctx->mdctx == NULL || EVP_DigestFinal_ex(ctx->mdctx, digest, &dlen) != 1)
        return 0;
    return sign_remote(ctx, sig, siglen, sigsize, digest, dlen);
}

static void *rsa_newctx(void *provctx, const char *propq)
{
    return sig_newctx(provctx, KW_KEY_RSA);
}

static void *ecdsa_newctx(void *provctx, const char *propq)
{
    return sig_newctx(provctx, KW_KEY_EC);
}

static void *ed25519_newctx(void *provctx, const char *propq)
{
    return sig_newctx(provctx, KW_KEY_ED25519);
}

#define KW_SIG_COMMON                                                                              \
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},                                    \
        {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},                                  \
        {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init},                            \
        {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},                                      \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init},              \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_sign_update},          \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final},            \
        {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))kw_sig_get_ctx_params},               \
    {                                                                                              \
        OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))kw_sig_set_ctx_params                  \
    }

/* The last entries of a table: the parameters its key type gets and sets, and the end. */
#define KW_SIG_PARAMS(params)                                                                      \
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))params},                             \
        {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))params},                         \
    {                                                                                              \
        0, NULL                                                                                    \
    }

static OSSL_FUNC_signature_newctx_fn rsa_newctx, ecdsa_newctx, ed25519_newctx;

const OSSL_DISPATCH kw_rsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))rsa_newctx},
    KW_SIG_COMMON,
    KW_SIG_PARAMS(kw_sig_rsa_ctx_params),
};

const OSSL_DISPATCH kw_ecdsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ecdsa_newctx},
    KW_SIG_COMMON,
    KW_SIG_PARAMS(kw_sig_md_ctx_params),
};

const OSSL_DISPATCH kw_ed25519_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ed25519_newctx},
    KW_SIG_COMMON,
    /* One-shot EVP_DigestSign, Ed25519 only (libcrypto runs update + final for the others): the
     * whole message goes to the key server, as sig_sign sends it. */
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_sign},
    KW_SIG_PARAMS(kw_sig_md_ctx_params),
};
