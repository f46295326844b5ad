/*
 * The PEM key backend: private keys decoded from "*.key" files into this process's memory
 * (OpenSSL's secure heap, hygiene.h), operated on with OpenSSL EVP contexts cached per worker.
 */
#ifndef KW_KS_PEM_H
#define KW_KS_PEM_H

#include <stddef.h>
#include <stdint.h>

#include "keystore/keystore.h"

/* Performs opcode (checked by kw_ks_op_check) with the PEM key; as kw_ks_op_run. */
uint8_t kw_ks_pem_op_run(kw_ks_op_cache_t *cache, const kw_ks_key_t *key, uint8_t opcode,
                         const uint8_t *in, size_t inlen, unsigned tls_version, uint8_t *out,
                         size_t *outlen);

#endif /* KW_KS_PEM_H */
