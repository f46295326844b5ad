/*
 * Lists of owned strings (see kw_strlist.h).
 */
#include "kw_strlist.h"

#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"

int kw_strlist_addn(char ***v, size_t *n, const char *s, size_t len)
{
    char *copy = strndup(s, len);
    char **grown = copy != NULL ? realloc(*v, (*n + 1) * sizeof(**v)) : NULL;
    if (grown == NULL) {
        free(copy);
        return KW_ENOMEM;
    }
    grown[*n] = copy;
    *v = grown;
    (*n)++;
    return 0;
}

int kw_strlist_add(char ***v, size_t *n, const char *s)
{
    return kw_strlist_addn(v, n, s, strlen(s));
}

void kw_strlist_free(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}
