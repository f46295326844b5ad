/*
 * Private-key operations of the key server: which opcodes exist, whether a request fits its key
 * (checked on the loop thread before any work is queued) and the operation itself (run on a
 * worker thread with that worker's cache of initialised OpenSSL contexts).
 */
#ifndef KW_OPS_H
#define KW_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "keystore/keystore.h"

/* 1 when opcode is a private-key operation this server performs on a worker. */
int kw_ks_op_is_key_op(uint8_t opcode);

/*
 * Checks a key operation request against its key: returns 0 when it may be queued, or the
 * kw_remote_error_t to answer: KW_ERR_UNEXPECTED_OPCODE (opcode not for this key type),
 * KW_ERR_FORMAT (missing payload, wrong digest length, raw block not k bytes, 0xA0 without a
 * 2-byte version in extra).
 */
uint8_t kw_ks_op_check(const kw_ks_key_t *key, uint8_t opcode, const kw_bytes_t *payload,
                       const kw_bytes_t *extra);

/* The worker's cache (kw_ks_op_cache_new) and KW_OP_OUT_MAX come from keystore/backend.h. */

/*
 * Performs opcode with key on in[0..inlen) (already checked by kw_ks_op_check). tls_version is the
 * ClientHello version for KW_OP_TLS_RSA_DECRYPT. Writes at most KW_OP_OUT_MAX bytes to out.
 * Returns 0, or KW_ERR_CRYPTO / KW_ERR_INTERNAL. KW_OP_TLS_RSA_DECRYPT never fails on the
 * ciphertext: bad padding, a wrong version, length or value yield the key's synthetic PMS for it
 * (deterministic implicit rejection, tls_reject_internal.h).
 */
uint8_t kw_ks_op_run(kw_ks_op_cache_t *cache, const kw_ks_key_t *key, uint8_t opcode,
                     const uint8_t *in, size_t inlen, unsigned tls_version, uint8_t *out,
                     size_t *outlen);

#endif /* KW_OPS_H */
