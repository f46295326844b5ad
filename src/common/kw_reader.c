/*
 * Bounded reader (see kw_reader.h): every read checks what remains before touching a byte.
 */
#include "kw_reader.h"

#include <string.h>

void kw_reader_init(kw_reader_t *r, const uint8_t *data, size_t len)
{
    r->data = data;
    r->len = data == NULL ? 0 : len;
    r->pos = 0;
}

size_t kw_reader_remaining(const kw_reader_t *r)
{
    return r->len - r->pos;
}

size_t kw_reader_offset(const kw_reader_t *r)
{
    return r->pos;
}

int kw_reader_take(kw_reader_t *r, size_t n, const uint8_t **out)
{
    KW_ENSURE(n <= kw_reader_remaining(r), KW_ESHORT);
    if (r->data == NULL) {
        *out = NULL; /* only an empty reader has no data, and n is then 0 */
        return 0;
    }
    *out = r->data + r->pos;
    r->pos += n;
    return 0;
}

int kw_reader_u8(kw_reader_t *r, uint8_t *out)
{
    const uint8_t *p;
    KW_GUARD(kw_reader_take(r, 1, &p));
    *out = p[0];
    return 0;
}

int kw_reader_u16(kw_reader_t *r, uint16_t *out)
{
    const uint8_t *p;
    KW_GUARD(kw_reader_take(r, 2, &p));
    *out = (uint16_t)((p[0] << 8) | p[1]);
    return 0;
}

int kw_reader_u32(kw_reader_t *r, uint32_t *out)
{
    const uint8_t *p;
    KW_GUARD(kw_reader_take(r, 4, &p));
    *out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return 0;
}

int kw_reader_u64(kw_reader_t *r, uint64_t *out)
{
    const uint8_t *p;
    KW_GUARD(kw_reader_take(r, 8, &p));
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    *out = v;
    return 0;
}

int kw_reader_copy(kw_reader_t *r, void *out, size_t n)
{
    const uint8_t *p;
    KW_GUARD(kw_reader_take(r, n, &p));
    if (n > 0)
        memcpy(out, p, n);
    return 0;
}

int kw_reader_skip(kw_reader_t *r, size_t n)
{
    const uint8_t *p;
    return kw_reader_take(r, n, &p);
}
