/*
 * Signature context parameters (signature.h). libssl sets the pad mode and PSS salt length by
 * EVP_PKEY_CTX_set_rsa_padding / set_rsa_pss_saltlen, which arrive here as an int or a string.
 * The key server signs PSS with salt length = digest length and MGF1 = the signature digest
 * only, so other values are refused here, where the caller can still choose something else.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "signature.h"
#include "kw_num.h"

int kw_sig_set_md(kw_sig_ctx_t *ctx, const char *mdname)
{
    EVP_MD *md = NULL;
    if (mdname != NULL && *mdname != '\0') {
        md = EVP_MD_fetch(ctx->pctx->libctx, mdname, NULL);
        if (md == NULL) {
            kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED, "unknown digest %s", mdname);
            return 0;
        }
    }
    EVP_MD_free(ctx->md);
    ctx->md = md;
    return 1;
}

static const struct {
    const char *name;
    int mode;
} pad_names[] = {
    {OSSL_PKEY_RSA_PAD_MODE_NONE, RSA_NO_PADDING},
    {OSSL_PKEY_RSA_PAD_MODE_PKCSV15, RSA_PKCS1_PADDING},
    {OSSL_PKEY_RSA_PAD_MODE_OAEP, RSA_PKCS1_OAEP_PADDING},
    {OSSL_PKEY_RSA_PAD_MODE_X931, RSA_X931_PADDING},
    {OSSL_PKEY_RSA_PAD_MODE_PSS, RSA_PKCS1_PSS_PADDING},
};

static int set_pad(kw_sig_ctx_t *ctx, const OSSL_PARAM *p)
{
    int mode = -1;
    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        for (size_t i = 0; i < sizeof(pad_names) / sizeof(pad_names[0]); i++) {
            if (strcasecmp(p->data, pad_names[i].name) == 0)
                mode = pad_names[i].mode;
        }
    } else if (!OSSL_PARAM_get_int(p, &mode)) {
        return 0;
    }
    if (ctx->type != KW_KEY_RSA || (mode != RSA_PKCS1_PADDING && mode != RSA_PKCS1_PSS_PADDING)) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "RSA padding mode %d is not offered by the key server (PKCS#1 v1.5 and "
                      "PSS are)",
                      mode);
        return 0;
    }
    ctx->pad = mode;
    return 1;
}

static int set_saltlen(kw_sig_ctx_t *ctx, const OSSL_PARAM *p)
{
    int len;
    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        const char *s = p->data;
        unsigned v;
        if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
            len = RSA_PSS_SALTLEN_DIGEST;
        } else {
            len = kw_parse_uint(s, 0, 1023, &v) == 0 ? (int)v : -100;
        }
    } else if (!OSSL_PARAM_get_int(p, &len)) {
        return 0;
    }
    if (len != RSA_PSS_SALTLEN_DIGEST && len < 0) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "the key server signs RSA-PSS with salt length = digest length only");
        return 0;
    }
    ctx->saltlen = len;
    return 1;
}

static int set_mgf1(kw_sig_ctx_t *ctx, const OSSL_PARAM *p)
{
    const char *name = NULL;
    EVP_MD *md;
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
        return 0;
    md = EVP_MD_fetch(ctx->pctx->libctx, name, NULL);
    if (md == NULL) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED, "unknown MGF1 digest %s", name);
        return 0;
    }
    EVP_MD_free(ctx->mgf1);
    ctx->mgf1 = md;
    return 1;
}

int kw_sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    kw_sig_ctx_t *ctx = vctx;
    const OSSL_PARAM *p;
    const char *name = NULL;
    if (ctx == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !kw_sig_set_md(ctx, name)))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && !set_pad(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !set_saltlen(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL && !set_mgf1(ctx, p))
        return 0;
    return 1;
}

static int get_pad(const kw_sig_ctx_t *ctx, OSSL_PARAM *p)
{
    if (p->data_type != OSSL_PARAM_UTF8_STRING)
        return OSSL_PARAM_set_int(p, ctx->pad);
    for (size_t i = 0; i < sizeof(pad_names) / sizeof(pad_names[0]); i++) {
        if (pad_names[i].mode == ctx->pad)
            return OSSL_PARAM_set_utf8_string(p, pad_names[i].name);
    }
    return 0;
}

static int get_saltlen(const kw_sig_ctx_t *ctx, OSSL_PARAM *p)
{
    char buf[16];
    if (p->data_type != OSSL_PARAM_UTF8_STRING)
        return OSSL_PARAM_set_int(p, ctx->saltlen);
    if (ctx->saltlen == RSA_PSS_SALTLEN_DIGEST)
        return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST);
    snprintf(buf, sizeof(buf), "%d", ctx->saltlen);
    return OSSL_PARAM_set_utf8_string(p, buf);
}

/*
 * The signature's AlgorithmIdentifier DER, which X509_sign / X509_REQ_sign / CMS need from a
 * provider key. Refused (0, raised) for RSA-PSS, whose parameters this provider does not encode:
 * leaving the parameter unset is not an option, as OpenSSL 3.0's ASN1_item_sign_ctx would then
 * parse an unset buffer.
 */
static int get_algorithm_id(const kw_sig_ctx_t *ctx, OSSL_PARAM *p)
{
    int md_nid = ctx->md != NULL ? EVP_MD_get_type(ctx->md) : NID_undef;
    int pkey_nid = ctx->type == KW_KEY_RSA  ? NID_rsaEncryption
                   : ctx->type == KW_KEY_EC ? NID_X9_62_id_ecPublicKey
                                            : NID_ED25519;
    int sig_nid = NID_undef;
    X509_ALGOR *alg;
    unsigned char *der = NULL;
    int len = 0;
    int ok;
    if (ctx->type == KW_KEY_ED25519)
        sig_nid = NID_ED25519;
    else if (ctx->type == KW_KEY_RSA && ctx->pad != RSA_PKCS1_PADDING)
        sig_nid = NID_undef;
    else if (!OBJ_find_sigid_by_algs(&sig_nid, md_nid, pkey_nid))
        sig_nid = NID_undef;
    if (sig_nid == NID_undef) {
        kw_prov_raise(ctx->pctx, KW_PROV_R_UNSUPPORTED,
                      "no AlgorithmIdentifier for this signature (keyward encodes RSA PKCS#1, "
                      "ECDSA and Ed25519 ones)");
        return 0;
    }
    alg = X509_ALGOR_new();
    if (alg != NULL && X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid),
                                       ctx->type == KW_KEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
        len = i2d_X509_ALGOR(alg, &der);
    ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)len);
    OPENSSL_free(der);
    X509_ALGOR_free(alg);
    return ok;
}

int kw_sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    kw_sig_ctx_t *ctx = vctx;
    OSSL_PARAM *p;
    const EVP_MD *mgf1;
    if (ctx == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, ctx->md ? EVP_MD_get0_name(ctx->md) : ""))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL && !get_algorithm_id(ctx, p))
        return 0;
    if (ctx->type != KW_KEY_RSA)
        return 1;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && !get_pad(ctx, p))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !get_saltlen(ctx, p))
        return 0;
    mgf1 = ctx->mgf1 != NULL ? ctx->mgf1 : ctx->md;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, mgf1 ? EVP_MD_get0_name(mgf1) : ""))
        return 0;
    return 1;
}

static const OSSL_PARAM rsa_params[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM md_params[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_END,
};

const OSSL_PARAM *kw_sig_rsa_ctx_params(void *vctx, void *provctx)
{
    return rsa_params;
}

const OSSL_PARAM *kw_sig_md_ctx_params(void *vctx, void *provctx)
{
    return md_params;
}
