/*
 * Inside the PEM backend (keystore/pem/ only): a worker's cache of OpenSSL contexts already
 * initialised for (key, opcode), because creating and initialising an EVP_PKEY_CTX costs a
 * provider fetch per operation. A cached context holds a reference to its EVP_PKEY, so a cached
 * entry stays valid after its key store is released.
 */
#ifndef KW_KS_PEM_INTERNAL_H
#define KW_KS_PEM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keystore/keystore.h"
#include "keystore/opcode.h"

typedef struct kw_ks_pem_entry_s {
    EVP_PKEY *pkey; /* identity only; the contexts hold the reference */
    uint8_t opcode;
    EVP_PKEY_CTX *pctx; /* sign / decrypt families */
    EVP_MD_CTX *mdctx;  /* Ed25519 */
} kw_ks_pem_entry_t;

struct kw_ks_op_cache_s {
    size_t slots;
    kw_ks_pem_entry_t *entries;
    kw_ks_pem_entry_t scratch; /* used when caching is off */
};

/* Frees an entry's contexts and zeroes it. */
void kw_ks_pem_entry_clear(kw_ks_pem_entry_t *e);

/* Fills e (cleared) for (key, opcode). Returns 1 or 0. */
int kw_ks_pem_entry_init(kw_ks_pem_entry_t *e, const kw_ks_key_t *key, uint8_t opcode,
                         const kw_ks_op_info_t *info);

/* The entry for (key, opcode), initialised afresh when the slot held another; NULL on failure. */
kw_ks_pem_entry_t *kw_ks_pem_cache_get(kw_ks_op_cache_t *c, const kw_ks_key_t *key, uint8_t opcode,
                                       const kw_ks_op_info_t *info);

#endif /* KW_KS_PEM_INTERNAL_H */
