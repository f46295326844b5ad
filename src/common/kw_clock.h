/*
 * The monotonic clock (CLOCK_MONOTONIC) in the units callers count in: for timeouts, rates and
 * durations, never for wall-clock times.
 */
#ifndef KW_CLOCK_H
#define KW_CLOCK_H

#include <stdint.h>
#include <time.h>

uint64_t kw_clock_ns(void);
uint64_t kw_clock_us(void);
uint64_t kw_clock_ms(void);
int64_t kw_clock_s(void);

/* The monotonic time ms milliseconds from now, for pthread_cond_timedwait on a condition
 * variable whose clock is CLOCK_MONOTONIC. */
void kw_clock_deadline(struct timespec *ts, unsigned ms);

#endif /* KW_CLOCK_H */
