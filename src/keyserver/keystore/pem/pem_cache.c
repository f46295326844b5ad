/*
 * The PEM backend's per-worker cache (pem_internal.h): a small direct-mapped table of OpenSSL
 * contexts initialised for (key, opcode), with the padding and digest each opcode needs.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>

#include "keystore/pem/pem_internal.h"

kw_ks_op_cache_t *kw_ks_op_cache_new(size_t slots)
{
    kw_ks_op_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->slots = slots;
    if (slots > 0) {
        c->entries = calloc(slots, sizeof(*c->entries));
        if (c->entries == NULL) {
            free(c);
            return NULL;
        }
    }
    return c;
}

void kw_ks_pem_entry_clear(kw_ks_pem_entry_t *e)
{
    EVP_PKEY_CTX_free(e->pctx);
    EVP_MD_CTX_free(e->mdctx);
    memset(e, 0, sizeof(*e));
}

void kw_ks_op_cache_free(kw_ks_op_cache_t *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < cache->slots; i++)
        kw_ks_pem_entry_clear(&cache->entries[i]);
    kw_ks_pem_entry_clear(&cache->scratch);
    free(cache->entries);
    free(cache);
}

static int setup_sign(EVP_PKEY_CTX *pctx, const kw_ks_op_info_t *info)
{
    if (EVP_PKEY_sign_init(pctx) != 1)
        return 0;
    if (info->family == KW_KS_FAM_ECDSA)
        return 1; /* ECDSA signs the digest as given; its length was checked */
    const EVP_MD *md = EVP_get_digestbyname(info->md);
    if (md == NULL)
        return 0;
    if (info->family == KW_KS_FAM_RSA_PSS)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
               EVP_PKEY_CTX_set_signature_md(pctx, md) == 1 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
           EVP_PKEY_CTX_set_signature_md(pctx, md) == 1;
}

static int setup_decrypt(EVP_PKEY_CTX *pctx, const kw_ks_op_info_t *info)
{
    int pad = RSA_PKCS1_PADDING;
    if (info->family == KW_KS_FAM_RSA_RAW || info->family == KW_KS_FAM_RSA_TLS)
        pad = RSA_NO_PADDING; /* 0xA0: tls_reject.c checks the padding */
    return EVP_PKEY_decrypt_init(pctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(pctx, pad) == 1;
}

int kw_ks_pem_entry_init(kw_ks_pem_entry_t *e, const kw_ks_key_t *key, uint8_t opcode,
                         const kw_ks_op_info_t *info)
{
    e->pkey = key->pkey;
    e->opcode = opcode;
    if (info->family == KW_KS_FAM_ED25519) {
        e->mdctx = EVP_MD_CTX_new();
        return e->mdctx != NULL &&
               EVP_DigestSignInit_ex(e->mdctx, NULL, NULL, NULL, NULL, key->pkey, NULL) == 1;
    }
    e->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (e->pctx == NULL)
        return 0;
    if (kw_ks_op_is_decrypt(info->family))
        return setup_decrypt(e->pctx, info);
    return setup_sign(e->pctx, info);
}

kw_ks_pem_entry_t *kw_ks_pem_cache_get(kw_ks_op_cache_t *c, const kw_ks_key_t *key, uint8_t opcode,
                                       const kw_ks_op_info_t *info)
{
    kw_ks_pem_entry_t *e = &c->scratch;
    if (c->slots > 0) {
        uintptr_t h = ((uintptr_t)key->pkey >> 4) * 31u + opcode;
        e = &c->entries[h % c->slots];
        if (e->pkey == key->pkey && e->opcode == opcode)
            return e;
    }
    kw_ks_pem_entry_clear(e);
    if (!kw_ks_pem_entry_init(e, key, opcode, info)) {
        kw_ks_pem_entry_clear(e);
        return NULL;
    }
    return e;
}
