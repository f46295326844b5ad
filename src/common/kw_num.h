/*
 * Numbers from text (flags, environment, config values): decimal digits only, the whole string,
 * no sign, no overflow. The one checked replacement for atoi and a bare strtoul.
 */
#ifndef KW_NUM_H
#define KW_NUM_H

#include <stdint.h>

#include "kw_guard.h"

/* Parses s as a decimal number of at most max. Returns 0, or KW_EINVAL (s NULL or empty, a
 * character that is not a digit, or a value over max) with *out untouched. */
KW_WARN_UNUSED int kw_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* The same into an unsigned int, from lo to hi. */
KW_WARN_UNUSED int kw_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out);

#endif /* KW_NUM_H */
