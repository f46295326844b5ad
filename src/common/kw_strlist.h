/*
 * Lists of strings, each a copy the list owns: the list-valued settings of the key server and of
 * the proxy (key directories, upstreams, key servers, ALPN protocols, ...). A list is a pointer
 * to its array and a count (*v, *n: the key server's configuration keeps the two apart), or a
 * kw_strlist_t holding both.
 */
#ifndef KW_STRLIST_H
#define KW_STRLIST_H

#include <stddef.h>

#include "kw_guard.h"

typedef struct kw_strlist_s {
    char **v;
    size_t n;
} kw_strlist_t;

/* Appends a copy of s to the list *v of *n strings. Returns 0 or KW_ENOMEM (the list as it was). */
KW_WARN_UNUSED int kw_strlist_add(char ***v, size_t *n, const char *s);

/* The same with the first len bytes of s (s need not end there). */
KW_WARN_UNUSED int kw_strlist_addn(char ***v, size_t *n, const char *s, size_t len);

/* Frees every string and the array, leaving the list empty. */
void kw_strlist_free(char ***v, size_t *n);

#endif /* KW_STRLIST_H */
