/*
 * Per-edge rate limits (rate.h): a chained hash table of buckets keyed by the edge's public key
 * hash, reference counted by connections, and the generic cell rate algorithm: a bucket keeps
 * `tat`, the time at which it would be empty again; an operation at `now` is allowed while
 * tat - now stays within (burst - 1) intervals, and moves tat one interval on.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/rate.h"

#define KW_RATE_SLOTS 1024 /* power of two */

struct kw_ks_rate_bucket_s {
    struct kw_ks_rate_bucket_s *next; /* same slot */
    kw_ks_rate_t *owner;
    unsigned refs;
    uint64_t tat; /* theoretical arrival time, monotonic ns */
    uint8_t spki[KW_DIGEST_LEN];
};

struct kw_ks_rate_s {
    uint64_t interval_ns;  /* 1 s / per_second */
    uint64_t tolerance_ns; /* (burst - 1) intervals */
    unsigned per_second;
    unsigned burst;
    kw_ks_rate_bucket_t *slots[KW_RATE_SLOTS];
};

kw_ks_rate_t *kw_ks_rate_new(unsigned per_second, unsigned burst, int *failed)
{
    *failed = 0;
    if (per_second == 0)
        return NULL;
    kw_ks_rate_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        *failed = 1;
        return NULL;
    }
    r->per_second = per_second;
    r->burst = burst > 0 ? burst : per_second;
    r->interval_ns = 1000000000u / per_second;
    r->tolerance_ns = (uint64_t)(r->burst - 1) * r->interval_ns;
    return r;
}

void kw_ks_rate_free(kw_ks_rate_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < KW_RATE_SLOTS; i++) {
        while (r->slots[i] != NULL) { /* only when connections outlive the table (tests) */
            kw_ks_rate_bucket_t *b = r->slots[i];
            r->slots[i] = b->next;
            free(b);
        }
    }
    free(r);
}

static size_t slot_of(const uint8_t spki[KW_DIGEST_LEN])
{
    size_t h = 0;
    memcpy(&h, spki, sizeof(h)); /* a SHA-256 output: its bytes are already uniform */
    return h & (KW_RATE_SLOTS - 1);
}

kw_ks_rate_bucket_t *kw_ks_rate_get(kw_ks_rate_t *r, const uint8_t spki[KW_DIGEST_LEN],
                                    uint64_t now_ns)
{
    if (r == NULL)
        return NULL;
    size_t slot = slot_of(spki);
    for (kw_ks_rate_bucket_t **p = &r->slots[slot]; *p != NULL;) {
        kw_ks_rate_bucket_t *b = *p;
        if (memcmp(b->spki, spki, KW_DIGEST_LEN) == 0) {
            b->refs++;
            return b;
        }
        if (b->refs == 0 && b->tat <= now_ns) { /* unused and full again: forget it */
            *p = b->next;
            free(b);
            continue;
        }
        p = &b->next;
    }
    kw_ks_rate_bucket_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->owner = r;
    b->refs = 1;
    memcpy(b->spki, spki, KW_DIGEST_LEN);
    b->next = r->slots[slot];
    r->slots[slot] = b;
    return b;
}

void kw_ks_rate_put(kw_ks_rate_bucket_t *b, uint64_t now_ns)
{
    if (b == NULL || --b->refs > 0 || b->tat > now_ns)
        return;
    kw_ks_rate_bucket_t **p = &b->owner->slots[slot_of(b->spki)];
    while (*p != b)
        p = &(*p)->next;
    *p = b->next;
    free(b);
}

int kw_ks_rate_take(kw_ks_rate_bucket_t *b, uint64_t now_ns)
{
    if (b == NULL)
        return 1;
    uint64_t tat = b->tat > now_ns ? b->tat : now_ns;
    if (tat - now_ns > b->owner->tolerance_ns)
        return 0;
    b->tat = tat + b->owner->interval_ns;
    return 1;
}

unsigned kw_ks_rate_per_second(const kw_ks_rate_t *r)
{
    return r != NULL ? r->per_second : 0;
}

unsigned kw_ks_rate_burst(const kw_ks_rate_t *r)
{
    return r != NULL ? r->burst : 0;
}
