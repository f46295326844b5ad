/*
 * The key ids (SHA-256 digests) a key store load has taken so far, to refuse a key loaded twice
 * in constant time per key (a linear scan of the keys before it made 100,000 keys a quadratic
 * 5 billion comparisons). Internal to keystore/ (keystore.c).
 */
#ifndef KW_KS_KEYSET_H
#define KW_KS_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/keyid.h"

typedef struct kw_ks_keyset_s {
    const uint8_t **slot; /* digests (not owned), NULL: free; a power of two of them */
    size_t cap;
} kw_ks_keyset_t;

/* Room for n digests (set zeroed before). Returns 0 or KW_ENOMEM. */
int kw_ks_keyset_init(kw_ks_keyset_t *set, size_t n);

/* Adds digest (KW_DIGEST_LEN bytes, kept by pointer: it must outlive the set) unless an equal one
 * is there. Returns 1 when added, 0 when it was there. At most the n of init. */
int kw_ks_keyset_add(kw_ks_keyset_t *set, const uint8_t *digest);

void kw_ks_keyset_free(kw_ks_keyset_t *set);

#endif /* KW_KS_KEYSET_H */
