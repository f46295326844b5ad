/*
 * The key-backend table: where a key lives and how its operations run, one table per backend
 * folder (as curl's vtls backends): keystore/pem/ (keys decoded into this process's secure heap,
 * OpenSSL EVP) and keystore/pkcs11/ (keys on a token). Every key points at its backend and holds
 * that backend's private data; ops/ calls key->backend->op_run and never asks what kind a key
 * is. Also: the largest result of an operation and a worker's cache, the per-thread state handed
 * to every operation (today the PEM backend keeps its initialised OpenSSL contexts there).
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

struct kw_ks_key_s;

typedef struct kw_ks_backend_s {
    const char *name; /* "pem", "pkcs11": for logs and docs */
    const char *note; /* appended to the "loaded key" log line: "" or ", on a PKCS#11 token" */
    /* 1: operations run in this process's memory and take microseconds, so the loop thread may
     * run them itself (workers.c); 0: a device's latency, always left to the workers. */
    int local;
    /*
     * Performs opcode (a key operation already checked by kw_ks_op_check; never 0xA1, which
     * ops/ unpacks into 0xA0) with key on in[0..inlen), writing at most KW_OP_OUT_MAX bytes to
     * out. On a worker thread with that worker's cache; no allocation on this path once the
     * cache is warm. Returns 0, or KW_ERR_CRYPTO / KW_ERR_INTERNAL. 0xA0 never fails on the
     * ciphertext (implicit rejection, tls_reject_internal.h).
     */
    uint8_t (*op_run)(kw_ks_op_cache_t *cache, const struct kw_ks_key_s *key, uint8_t opcode,
                      const uint8_t *in, size_t inlen, unsigned tls_version, uint8_t *out,
                      size_t *outlen);
    /* Frees a key's private data (key->priv); NULL is ignored. */
    void (*key_free)(void *priv);
} kw_ks_backend_t;

#endif /* KW_KS_BACKEND_H */
