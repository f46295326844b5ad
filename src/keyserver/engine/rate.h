/*
 * Per-edge rate limits (--rate-limit N operations per second, --rate-burst B): one bucket per
 * edge, named by the SHA-256 of its client certificate's public key, shared by all the edge's
 * connections. A bucket is found (or made) when a connection's handshake completes and released
 * when the connection is freed, so the request path only does arithmetic: a generic cell rate
 * algorithm (a token bucket that stores the time its next token is due) in integer nanoseconds.
 * Loop thread only.
 */
#ifndef KW_KS_RATE_H
#define KW_KS_RATE_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"

typedef struct kw_ks_rate_s kw_ks_rate_t;
typedef struct kw_ks_rate_bucket_s kw_ks_rate_bucket_t;

/* Limits of per_second operations per second with bursts of burst (0: per_second). NULL when
 * per_second is 0 (no limit) or out of memory (*failed then set). */
kw_ks_rate_t *kw_ks_rate_new(unsigned per_second, unsigned burst, int *failed);
void kw_ks_rate_free(kw_ks_rate_t *r);

/* The bucket of the edge whose client public key hashes to spki (a reference; NULL when r is NULL
 * or out of memory: not limited). now_ns: the monotonic clock, to prune spent buckets. */
kw_ks_rate_bucket_t *kw_ks_rate_get(kw_ks_rate_t *r, const uint8_t spki[KW_DIGEST_LEN],
                                    uint64_t now_ns);

/* Drops a reference from kw_ks_rate_get (NULL: nothing). A bucket without references is kept
 * while it still limits (so reconnecting does not refill it) and pruned later. */
void kw_ks_rate_put(kw_ks_rate_bucket_t *b, uint64_t now_ns);

/* Takes one operation at now_ns (monotonic). 1: allowed, 0: over the limit (nothing taken).
 * NULL: always 1. */
int kw_ks_rate_take(kw_ks_rate_bucket_t *b, uint64_t now_ns);

/* The configured limit, for log lines. */
unsigned kw_ks_rate_per_second(const kw_ks_rate_t *r);
unsigned kw_ks_rate_burst(const kw_ks_rate_t *r);

#endif /* KW_KS_RATE_H */
