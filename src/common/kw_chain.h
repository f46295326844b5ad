/*
 * The certificate-chain reader: 0xA2's reply is DER certificates one after the other, leaf
 * first. Each is read through kw_reader, so no certificate is looked for past the payload.
 */
#ifndef KW_CHAIN_H
#define KW_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "kw_reader.h"

/*
 * The next certificate: 1 with *x (the caller frees it; pass x NULL to only step over it) and
 * its DER in *der and *der_len (a view into the buffer; either may be NULL); 0 at the end;
 * KW_EFORMAT when the bytes left do not start with a DER certificate (r does not move).
 */
int kw_chain_next(kw_reader_t *r, X509 **x, const uint8_t **der, size_t *der_len);

/* The whole chain as a stack, leaf first; NULL when it is empty or any certificate is not DER. */
STACK_OF(X509) * kw_chain_parse(const uint8_t *data, size_t len);

#endif /* KW_CHAIN_H */
