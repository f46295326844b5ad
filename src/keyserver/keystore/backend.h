/*
 * What every key backend shares: the largest result of a key operation and a worker's cache,
 * the per-thread state handed to every operation (today the PEM backend keeps its initialised
 * OpenSSL contexts there).
 */
#ifndef KW_KS_BACKEND_H
#define KW_KS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* Largest result of a key operation: an RSA-4096 block (ECDSA P-521 DER is 139 bytes). */
#define KW_OP_OUT_MAX 512

/* A worker's cache of initialised EVP_PKEY_CTX / EVP_MD_CTX, one per (key, opcode) slot. */
typedef struct kw_ks_op_cache_s kw_ks_op_cache_t;

/* slots == 0 disables caching (contexts made per operation). NULL on allocation failure. */
kw_ks_op_cache_t *kw_ks_op_cache_new(size_t slots);
void kw_ks_op_cache_free(kw_ks_op_cache_t *cache);

#endif /* KW_KS_BACKEND_H */
