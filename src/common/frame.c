/*
 * Frame reassembly (see kw_frame.h).
 */
#include "kw_frame.h"

#include <string.h>

#include <openssl/crypto.h>

#include "keyward/error.h"

int kw_frame_next(kw_reader_t *r, kw_header_t *h, const uint8_t **body)
{
    size_t left = kw_reader_remaining(r);
    if (left < KW_HEADER_LEN)
        return 0;
    const uint8_t *start = r->data + kw_reader_offset(r);
    KW_GUARD(kw_header_parse(start, left, h));
    if (left - KW_HEADER_LEN < h->body_len)
        return 0;
    KW_GUARD(kw_reader_skip(r, KW_HEADER_LEN));
    KW_GUARD(kw_reader_take(r, h->body_len, body));
    return 1;
}

size_t kw_frame_need(const uint8_t *buf, size_t len)
{
    kw_reader_t r;
    uint16_t body_len = 0;
    kw_reader_init(&r, buf, len);
    if (len < KW_HEADER_LEN || kw_reader_skip(&r, 2) != 0 || kw_reader_u16(&r, &body_len) != 0)
        return KW_HEADER_LEN;
    return KW_HEADER_LEN + (size_t)body_len;
}

void kw_frame_consume(uint8_t *buf, size_t *len, size_t n)
{
    if (n == 0)
        return;
    if (n > *len)
        n = *len;
    size_t rest = *len - n;
    memmove(buf, buf + n, rest);
    OPENSSL_cleanse(buf + rest, n);
    *len = rest;
}
