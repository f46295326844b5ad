/*
 * Signature context shared by signature.c (operations, dispatch) and sig_params.c (the context
 * parameters libssl sets: digest, pad mode, PSS salt length, MGF1 digest).
 */
#ifndef KW_PROV_SIGNATURE_H
#define KW_PROV_SIGNATURE_H

#include <stddef.h>

#include <openssl/core.h>
#include <openssl/evp.h>

#include "key.h"

typedef struct kw_sig_ctx_s {
    kw_prov_ctx_t *pctx;
    kw_key_type_t type; /* the algorithm this context implements */
    kw_key_t *key;      /* a reference, set by *_init */
    EVP_MD *md;         /* NULL: not set (sign() then infers it from the input length) */
    EVP_MD_CTX *mdctx;  /* digest_sign_update state */
    int pad;            /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen;        /* RSA_PSS_SALTLEN_DIGEST or an explicit length */
    EVP_MD *mgf1;       /* NULL: the signature digest */
    unsigned char *msg; /* Ed25519: the message collected by digest_sign_update */
    size_t msg_len;
} kw_sig_ctx_t;

/* Sets the signature digest by name (NULL/"" clears it). Returns 1 or 0 (raised). */
int kw_sig_set_md(kw_sig_ctx_t *ctx, const char *mdname);

/* OSSL_FUNC_signature_{get,set}_ctx_params, and the gettable/settable tables: RSA's (digest,
 * pad mode, salt length, MGF1 digest) and the others' (digest). */
int kw_sig_get_ctx_params(void *vctx, OSSL_PARAM params[]);
int kw_sig_set_ctx_params(void *vctx, const OSSL_PARAM params[]);
const OSSL_PARAM *kw_sig_rsa_ctx_params(void *vctx, void *provctx);
const OSSL_PARAM *kw_sig_md_ctx_params(void *vctx, void *provctx);

#endif /* KW_PROV_SIGNATURE_H */
