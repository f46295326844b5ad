/*
 * Bounded writer: a cursor over a caller's buffer with typed big-endian writes. A write that does
 * not fit fails with KW_ETOOBIG and writes nothing. The writer owns nothing.
 */
#ifndef KW_WRITER_H
#define KW_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "kw_guard.h"

typedef struct kw_writer_s {
    uint8_t *data;
    size_t cap;
    size_t pos;
} kw_writer_t;

/* Starts a writer over cap bytes at data (data may be NULL when cap is 0). */
void kw_writer_init(kw_writer_t *w, uint8_t *data, size_t cap);

/* Bytes written so far. */
size_t kw_writer_len(const kw_writer_t *w);

/* Bytes still free. */
size_t kw_writer_space(const kw_writer_t *w);

/* Typed big-endian writes. Return 0 or KW_ETOOBIG. */
KW_WARN_UNUSED int kw_writer_u8(kw_writer_t *w, uint8_t v);
KW_WARN_UNUSED int kw_writer_u16(kw_writer_t *w, uint16_t v);
KW_WARN_UNUSED int kw_writer_u32(kw_writer_t *w, uint32_t v);
KW_WARN_UNUSED int kw_writer_u64(kw_writer_t *w, uint64_t v);

/* Appends n bytes from src (src may be NULL when n is 0). 0 or KW_ETOOBIG. */
KW_WARN_UNUSED int kw_writer_bytes(kw_writer_t *w, const void *src, size_t n);

/* Appends n zero bytes. 0 or KW_ETOOBIG. */
KW_WARN_UNUSED int kw_writer_zeros(kw_writer_t *w, size_t n);

#endif /* KW_WRITER_H */
