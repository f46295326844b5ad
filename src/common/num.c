/*
 * Checked decimal numbers (see kw_num.h).
 */
#include "kw_num.h"

#include <stddef.h>

#include "keyward/error.h"

int kw_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    KW_ENSURE(s != NULL && *s != '\0', KW_EINVAL);
    for (; *s != '\0'; s++) {
        KW_ENSURE(*s >= '0' && *s <= '9', KW_EINVAL);
        uint64_t d = (uint64_t)(*s - '0');
        KW_ENSURE(v <= (max - d) / 10, KW_EINVAL); /* v * 10 + d <= max, without overflow */
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int kw_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t v;
    KW_GUARD(kw_parse_u64(s, hi, &v));
    KW_ENSURE(v >= lo, KW_EINVAL);
    *out = (unsigned)v;
    return 0;
}
