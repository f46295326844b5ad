/*
 * Load spreading and retry pacing for the client, as pure functions (no I/O, no clock) so unit
 * tests can pin them: reconnect backoff with jitter, the latency EWMA, the per-try timeout, and
 * the choice of server for a request (fewest in flight, then lowest EWMA, preferring servers
 * the request has not tried yet).
 */
#ifndef KWC_BALANCE_H
#define KWC_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#define KW_LB_BACKOFF_MIN_MS 50u
#define KW_LB_BACKOFF_MAX_MS 5000u
#define KW_LB_EWMA_ALPHA     0.2
#define KW_LB_MIN_TRY_MS     200u

/* Next reconnect delay after a failure: 50 ms, then doubling, at most 5 s. prev 0 = first. */
uint32_t kw_lb_backoff_next(uint32_t prev_ms);

/* ms scaled into [0.8, 1.2) by rnd (any 32-bit random value), so many edges do not reconnect
 * to a restarted key server in lock step. */
uint32_t kw_lb_jitter(uint32_t ms, uint32_t rnd);

/* Exponentially weighted moving average; prev 0 means no sample yet. */
double kw_lb_ewma(double prev, double sample);

/* Time one try may take before the request is also sent to another server:
 * timeout / max_tries, at least KW_LB_MIN_TRY_MS (but never above timeout). */
uint32_t kw_lb_try_timeout_ms(uint32_t timeout_ms, uint32_t max_tries);

typedef struct kw_lb_cand_s {
    uint8_t usable;    /* connected and healthy */
    uint8_t tried;     /* the request already went there */
    uint32_t inflight; /* requests waiting for its replies */
    double ewma_us;    /* 0 = unknown (preferred: a fresh server gets a share at once) */
} kw_lb_cand_t;

/* Index of the best usable candidate, or -1 when none is usable. Untried servers win over tried
 * ones; then fewer in flight; then lower EWMA; remaining ties go to the first candidate at or
 * after start (mod n), so equal servers share the load. */
int kw_lb_pick(const kw_lb_cand_t *c, size_t n, uint32_t start);

#endif /* KWC_BALANCE_H */
