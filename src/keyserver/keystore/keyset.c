/*
 * A set of key digests (keyset.h): open addressing with linear probing, at most half full. The
 * digests are SHA-256 outputs, so their first bytes are already a uniform hash.
 */
#include "keystore/keyset.h"

#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"

int kw_ks_keyset_init(kw_ks_keyset_t *set, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    set->slot = calloc(cap, sizeof(*set->slot));
    if (set->slot == NULL)
        return KW_ENOMEM;
    set->cap = cap;
    return 0;
}

int kw_ks_keyset_add(kw_ks_keyset_t *set, const uint8_t *digest)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h));
    for (size_t i = (size_t)h & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (set->slot[i] == NULL) {
            set->slot[i] = digest;
            return 1;
        }
        if (memcmp(set->slot[i], digest, KW_DIGEST_LEN) == 0)
            return 0;
    }
}

void kw_ks_keyset_free(kw_ks_keyset_t *set)
{
    free(set->slot);
    set->slot = NULL;
    set->cap = 0;
}
