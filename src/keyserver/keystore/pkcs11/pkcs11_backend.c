/*
 * The PKCS#11 key backend's table (backend.h): a token key's priv is its kw_ks_p11_key_t, its
 * operations run on the token through pkcs11_ops.c (no OpenSSL context, so no worker cache).
 */
#include "keystore/keystore.h"
#include "keystore/pkcs11/pkcs11_store.h"

static uint8_t p11_op_run(kw_ks_op_cache_t *cache, const kw_ks_key_t *key, uint8_t opcode,
                          const uint8_t *in, size_t inlen, unsigned tls_version, uint8_t *out,
                          size_t *outlen)
{
    (void)cache;
    return kw_ks_p11_op_run(key->priv, opcode, in, inlen, tls_version, out, KW_OP_OUT_MAX, outlen);
}

static void p11_key_free(void *priv)
{
    kw_ks_p11_key_free(priv);
}

const kw_ks_backend_t kw_ks_backend_pkcs11 = {
    .name = "pkcs11",
    .note = ", on a PKCS#11 token",
    .local = 0, /* a token's latency is not the loop's to wait out */
    .op_run = p11_op_run,
    .key_free = p11_key_free,
};
