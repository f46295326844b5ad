/*
 * Hex: lower-case encoding, decoding of either case, and the value of one digit (for callers
 * that decode hex inside other syntax, such as percent-encoding).
 */
#ifndef KW_HEX_H
#define KW_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "kw_guard.h"

/* Writes 2*len lower-case hex digits and a NUL to out (2*len+1 bytes). */
void kw_hex_encode(const uint8_t *in, size_t len, char *out);

/* Decodes exactly 2*len hex digits (either case) into len bytes. Returns 0 or KW_EINVAL. */
KW_WARN_UNUSED int kw_hex_decode(const char *hex, uint8_t *out, size_t len);

/* The value 0-15 of one hex digit, or -1. */
int kw_hex_digit(char c);

#endif /* KW_HEX_H */
