/*
 * The growing text buffer of the metrics pages (see kw_textbuf.h).
 */
#include "kw_textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"

int kw_textbuf_init(kw_textbuf_t *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->p = malloc(cap);
    if (b->p == NULL)
        return KW_ENOMEM;
    b->p[0] = '\0';
    b->cap = cap;
    return 0;
}

void kw_textbuf_printf(kw_textbuf_t *b, const char *fmt, ...)
{
    /* The first try writes in place; when it did not fit, the buffer grows once to hold it. */
    for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
}

int kw_textbuf_take(kw_textbuf_t *b, char **out, size_t *len)
{
    int rc = 0;
    if (b->failed || b->p == NULL) {
        free(b->p);
        rc = KW_ENOMEM;
    } else {
        *out = b->p;
        *len = b->len;
    }
    memset(b, 0, sizeof(*b));
    return rc;
}
