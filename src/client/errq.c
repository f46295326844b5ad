/*
 * Setting the caller's OpenSSL error queue aside and back (kwc_errq.h).
 */
#include <stdio.h>

#include <openssl/err.h>

#include "kwc_errq.h"

void kwc_errq_save(kwc_errq_t *q)
{
    const char *file = NULL;
    const char *func = NULL;
    const char *data = NULL;
    int line = 0;
    int flags = 0;
    unsigned long code;
    q->n = 0;
    if (ERR_peek_error() == 0)
        return;
    for (;;) {
        code = ERR_get_error_all(&file, &line, &func, &data, &flags);
        if (code == 0)
            break;
        if (q->n == KWC_ERRQ_MAX)
            continue;
        q->e[q->n].code = code;
        snprintf(q->e[q->n].file, sizeof(q->e[q->n].file), "%s", file != NULL ? file : "");
        snprintf(q->e[q->n].func, sizeof(q->e[q->n].func), "%s", func != NULL ? func : "");
        q->e[q->n].line = line;
        q->e[q->n].has_data = (flags & ERR_TXT_STRING) != 0 && data != NULL;
        snprintf(q->e[q->n].data, sizeof(q->e[q->n].data), "%s", q->e[q->n].has_data ? data : "");
        q->n++;
    }
}

void kwc_errq_restore(const kwc_errq_t *q)
{
    ERR_clear_error();
    for (size_t i = 0; i < q->n; i++) {
        ERR_new();
        ERR_set_debug(q->e[i].file, q->e[i].line, q->e[i].func);
        if (q->e[i].has_data)
            ERR_set_error(ERR_GET_LIB(q->e[i].code), ERR_GET_REASON(q->e[i].code), "%s",
                          q->e[i].data);
        else
            ERR_set_error(ERR_GET_LIB(q->e[i].code), ERR_GET_REASON(q->e[i].code), NULL);
    }
}
