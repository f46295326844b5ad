/*
 * Hex encoding and decoding (see kw_hex.h).
 */
#include "kw_hex.h"

#include <string.h>

#include "keyward/error.h"

void kw_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

int kw_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int kw_hex_decode(const char *hex, uint8_t *out, size_t len)
{
    KW_ENSURE(hex != NULL && (out != NULL || len == 0), KW_EINVAL);
    KW_ENSURE(strlen(hex) == 2 * len, KW_EINVAL);
    for (size_t i = 0; i < len; i++) {
        int hi = kw_hex_digit(hex[2 * i]);
        int lo = kw_hex_digit(hex[2 * i + 1]);
        KW_ENSURE(hi >= 0 && lo >= 0, KW_EINVAL);
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return 0;
}
