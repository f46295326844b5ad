/*
 * Certificate chains from the wire (see kw_chain.h).
 */
#include "kw_chain.h"

#include <limits.h>

#include "keyward/error.h"

int kw_chain_next(kw_reader_t *r, X509 **x, const uint8_t **der, size_t *der_len)
{
    size_t left = kw_reader_remaining(r);
    if (left == 0)
        return 0;
    const uint8_t *start = r->data + kw_reader_offset(r);
    const unsigned char *p = start;
    X509 *cert = d2i_X509(NULL, &p, left > LONG_MAX ? LONG_MAX : (long)left);
    KW_ENSURE(cert != NULL, KW_EFORMAT);
    size_t used = (size_t)(p - start);
    const uint8_t *view;
    if (kw_reader_take(r, used, &view) != 0) { /* d2i never reads past left; checked anyway */
        X509_free(cert);
        return KW_EFORMAT;
    }
    if (der != NULL)
        *der = view;
    if (der_len != NULL)
        *der_len = used;
    if (x != NULL)
        *x = cert;
    else
        X509_free(cert);
    return 1;
}

STACK_OF(X509) * kw_chain_parse(const uint8_t *data, size_t len)
{
    kw_reader_t r;
    STACK_OF(X509) *chain = sk_X509_new_null();
    kw_reader_init(&r, data, len);
    while (chain != NULL && kw_reader_remaining(&r) > 0) {
        X509 *x = NULL;
        if (kw_chain_next(&r, &x, NULL, NULL) != 1 || sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            sk_X509_pop_free(chain, X509_free);
            return NULL;
        }
    }
    if (chain != NULL && sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        chain = NULL;
    }
    return chain;
}
