/*
 * Bounded reader: a cursor over const bytes with typed big-endian reads. Every read checks the
 * remaining length first and fails with KW_ESHORT (the cursor does not move) instead of reading
 * past the end; kw_reader_take hands out a view into the buffer instead of copying.
 * All wire parsing in keyward goes through this reader. The reader owns nothing: the buffer must
 * outlive it and every view taken from it.
 */
#ifndef KW_READER_H
#define KW_READER_H

#include <stddef.h>
#include <stdint.h>

#include "kw_guard.h"

typedef struct kw_reader_s {
    const uint8_t *data;
    size_t len;
    size_t pos;
} kw_reader_t;

/* Starts a reader over len bytes at data (data may be NULL when len is 0). */
void kw_reader_init(kw_reader_t *r, const uint8_t *data, size_t len);

/* Bytes not yet read. */
size_t kw_reader_remaining(const kw_reader_t *r);

/* Bytes read so far. */
size_t kw_reader_offset(const kw_reader_t *r);

/* Typed big-endian reads. Return 0, or KW_ESHORT when fewer bytes remain (nothing consumed). */
KW_WARN_UNUSED int kw_reader_u8(kw_reader_t *r, uint8_t *out);
KW_WARN_UNUSED int kw_reader_u16(kw_reader_t *r, uint16_t *out);
KW_WARN_UNUSED int kw_reader_u32(kw_reader_t *r, uint32_t *out);
KW_WARN_UNUSED int kw_reader_u64(kw_reader_t *r, uint64_t *out);

/* Takes the next n bytes as a view (*out points into the buffer). 0 or KW_ESHORT. */
KW_WARN_UNUSED int kw_reader_take(kw_reader_t *r, size_t n, const uint8_t **out);

/* Copies the next n bytes into out. 0 or KW_ESHORT. */
KW_WARN_UNUSED int kw_reader_copy(kw_reader_t *r, void *out, size_t n);

/* Skips n bytes. 0 or KW_ESHORT. */
KW_WARN_UNUSED int kw_reader_skip(kw_reader_t *r, size_t n);

#endif /* KW_READER_H */
