/*
 * Load spreading and retry pacing (kwc_balance.h): pure functions, pinned by
 * tests/unit/client/balance_test.c.
 */
#include "kwc_balance.h"

uint32_t kw_lb_backoff_next(uint32_t prev_ms)
{
    if (prev_ms < KW_LB_BACKOFF_MIN_MS)
        return KW_LB_BACKOFF_MIN_MS;
    if (prev_ms >= KW_LB_BACKOFF_MAX_MS / 2)
        return KW_LB_BACKOFF_MAX_MS;
    return prev_ms * 2;
}

uint32_t kw_lb_jitter(uint32_t ms, uint32_t rnd)
{
    /* 0.8 + 0.4 * (rnd / 2^32), in integer arithmetic */
    uint64_t scaled = (uint64_t)ms * (819u + (uint64_t)(rnd % 410u));
    return (uint32_t)(scaled / 1024u);
}

double kw_lb_ewma(double prev, double sample)
{
    if (prev <= 0.0)
        return sample;
    return prev + KW_LB_EWMA_ALPHA * (sample - prev);
}

uint32_t kw_lb_try_timeout_ms(uint32_t timeout_ms, uint32_t max_tries)
{
    uint32_t t = max_tries > 1 ? timeout_ms / max_tries : timeout_ms;
    if (t < KW_LB_MIN_TRY_MS)
        t = KW_LB_MIN_TRY_MS;
    return t > timeout_ms ? timeout_ms : t;
}

/* 1 when a is a better choice than b (both usable). */
static int better(const kw_lb_cand_t *a, const kw_lb_cand_t *b)
{
    if (a->tried != b->tried)
        return !a->tried;
    if (a->inflight != b->inflight)
        return a->inflight < b->inflight;
    return a->ewma_us < b->ewma_us;
}

int kw_lb_pick(const kw_lb_cand_t *c, size_t n, uint32_t start)
{
    int best = -1;
    if (n == 0)
        return -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!c[i].usable)
            continue;
        if (best < 0 || better(&c[i], &c[best]))
            best = (int)i;
    }
    return best;
}
