/*
 * kw_prov_raise (prov_ctx.h): a provider error with a formatted sentence, through the core's
 * error functions when the provider context has them, else OpenSSL's ERR_* directly.
 */
#include "prov_ctx.h"

#include <openssl/err.h>

void kw_prov_raise_at(kw_prov_ctx_t *pctx, const char *file, int line, const char *func, int reason,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (pctx != NULL && pctx->new_error != NULL && pctx->set_error_debug != NULL &&
        pctx->vset_error != NULL) {
        pctx->new_error(pctx->handle);
        pctx->set_error_debug(pctx->handle, file, line, func);
        pctx->vset_error(pctx->handle, (uint32_t)reason, fmt, ap);
    } else {
        ERR_new();
        ERR_set_debug(file, line, func);
        ERR_vset_error(ERR_LIB_PROV, reason, fmt, ap);
    }
    va_end(ap);
}
