/*
 * Bounded writer (see kw_writer.h): every write checks the free space before touching a byte.
 */
#include "kw_writer.h"

#include <string.h>

void kw_writer_init(kw_writer_t *w, uint8_t *data, size_t cap)
{
    w->data = data;
    w->cap = data == NULL ? 0 : cap;
    w->pos = 0;
}

size_t kw_writer_len(const kw_writer_t *w)
{
    return w->pos;
}

size_t kw_writer_space(const kw_writer_t *w)
{
    return w->cap - w->pos;
}

/* Reserves n bytes and returns where they start, or NULL when they do not fit. */
static uint8_t *writer_reserve(kw_writer_t *w, size_t n)
{
    if (n > kw_writer_space(w) || w->data == NULL)
        return NULL;
    uint8_t *p = w->data + w->pos;
    w->pos += n;
    return p;
}

int kw_writer_u8(kw_writer_t *w, uint8_t v)
{
    uint8_t *p = writer_reserve(w, 1);
    KW_ENSURE(p != NULL, KW_ETOOBIG);
    p[0] = v;
    return 0;
}

int kw_writer_u16(kw_writer_t *w, uint16_t v)
{
    uint8_t *p = writer_reserve(w, 2);
    KW_ENSURE(p != NULL, KW_ETOOBIG);
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 0;
}

int kw_writer_u32(kw_writer_t *w, uint32_t v)
{
    uint8_t *p = writer_reserve(w, 4);
    KW_ENSURE(p != NULL, KW_ETOOBIG);
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 0;
}

int kw_writer_u64(kw_writer_t *w, uint64_t v)
{
    uint8_t *p = writer_reserve(w, 8);
    KW_ENSURE(p != NULL, KW_ETOOBIG);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    return 0;
}

int kw_writer_bytes(kw_writer_t *w, const void *src, size_t n)
{
    if (n == 0)
        return 0;
    KW_ENSURE(src != NULL, KW_EINVAL);
    uint8_t *p = writer_reserve(w, n);
    KW_ENSURE(p != NULL, KW_ETOOBIG);
    memcpy(p, src, n);
    return 0;
}

int kw_writer_zeros(kw_writer_t *w, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *p = writer_reserve(w, n);
    KW_ENSURE(p != NULL, KW_ETOOBIG);
    memset(p, 0, n);
    return 0;
}
