/*
 * A growing text buffer filled with printf formats (the metrics pages of the key server and the
 * proxy): a failure (out of memory, a bad format) is kept, later appends do nothing, and taking
 * the text then fails.
 */
#ifndef KW_TEXTBUF_H
#define KW_TEXTBUF_H

#include <stddef.h>

#include "kw_guard.h"

typedef struct kw_textbuf_s {
    char *p; /* NUL-terminated text, len bytes */
    size_t len;
    size_t cap; /* bytes allocated at p */
    int failed;
} kw_textbuf_t;

/* An empty text with room for cap bytes (cap > 0). Returns 0 or KW_ENOMEM. */
KW_WARN_UNUSED int kw_textbuf_init(kw_textbuf_t *b, size_t cap);

/* Appends the formatted text, growing the buffer as needed. */
__attribute__((format(printf, 2, 3))) void kw_textbuf_printf(kw_textbuf_t *b, const char *fmt, ...);

/* Hands the text (malloc'ed, the caller frees it) and its length over: 0; or, after a failure,
 * frees it: KW_ENOMEM. The buffer is empty afterwards either way. */
KW_WARN_UNUSED int kw_textbuf_take(kw_textbuf_t *b, char **out, size_t *len);

#endif /* KW_TEXTBUF_H */
