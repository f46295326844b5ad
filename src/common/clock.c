/*
 * The monotonic clock (see kw_clock.h).
 */
#include "kw_clock.h"

static struct timespec now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC on Linux */
    return ts;
}

uint64_t kw_clock_ns(void)
{
    struct timespec ts = now();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t kw_clock_us(void)
{
    return kw_clock_ns() / 1000u;
}

uint64_t kw_clock_ms(void)
{
    return kw_clock_ns() / 1000000u;
}

int64_t kw_clock_s(void)
{
    return (int64_t)now().tv_sec;
}

void kw_clock_deadline(struct timespec *ts, unsigned ms)
{
    *ts = now();
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
