/*
 * Private-key operations: request checks done on the loop thread (against the opcode table of
 * keystore/opcode.h), and the operations run on worker threads, handed to the key's backend.
 * KWP 0xA1 (master-secret mode) is unpacked here and runs as 0xA0 then the PRF of ops_master.c
 * (which takes nothing from here).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "keystore/opcode.h"
#include "ops/ops.h"
#include "ops/ops_master.h"

int kw_ks_op_is_key_op(uint8_t opcode)
{
    return kw_ks_op_info(opcode).family != KW_KS_FAM_NONE;
}

static kw_ks_key_type_t family_key_type(kw_ks_op_family_t family)
{
    switch (family) {
    case KW_KS_FAM_ECDSA:
        return KW_KS_KEY_EC;
    case KW_KS_FAM_ED25519:
        return KW_KS_KEY_ED25519;
    default:
        return KW_KS_KEY_RSA;
    }
}

uint8_t kw_ks_op_check(const kw_ks_key_t *key, uint8_t opcode, const kw_bytes_t *payload,
                       const kw_bytes_t *extra)
{
    kw_ks_op_info_t info = kw_ks_op_info(opcode);
    if (info.family == KW_KS_FAM_NONE)
        return KW_ERR_BAD_OPCODE;
    if (family_key_type(info.family) != key->type)
        return KW_ERR_UNEXPECTED_OPCODE;
    if (!payload->present)
        return KW_ERR_FORMAT;
    if (info.digest_len != 0 && payload->len != info.digest_len)
        return KW_ERR_FORMAT;
    if (info.family == KW_KS_FAM_RSA_RAW && payload->len != key->max_out)
        return KW_ERR_FORMAT;
    if (info.family == KW_KS_FAM_RSA_DECRYPT && (payload->len == 0 || payload->len > key->max_out))
        return KW_ERR_FORMAT;
    if (info.family == KW_KS_FAM_RSA_TLS && (!extra->present || extra->len != 2))
        return KW_ERR_FORMAT;
    return 0;
}

/*
 * KWP 0xA1 on the worker: unpacks in (ops_master.h), decrypts the PMS (implicit rejection, as 0xA0,
 * PEM or PKCS#11 key), derives the master secret into out (48 bytes) and cleanses the PMS.
 * Returns 0, KW_ERR_FORMAT or KW_ERR_CRYPTO / KW_ERR_INTERNAL.
 */
static uint8_t master_run(kw_ks_op_cache_t *cache, const kw_ks_key_t *key, const uint8_t *in,
                          size_t inlen, unsigned tls_version, uint8_t *out, size_t *outlen)
{
    uint8_t pms[KW_OP_OUT_MAX];
    size_t pms_len = 0;
    kw_ks_master_in_t m;
    if (kw_ks_master_unpack(in, inlen, &m) != 0)
        return KW_ERR_FORMAT;
    const char *md = m.prf == KW_PRF_SHA384 ? "SHA384" : "SHA256";
    int ems = m.ems;
    const uint8_t *seed = m.seed;
    size_t slen = m.seed_len;
    const uint8_t *ct = m.ct;
    size_t ctlen = m.ct_len;
    /* Implicit rejection: never fails on bad padding, yields the synthetic PMS instead. */
    uint8_t rc =
        kw_ks_op_run(cache, key, KW_OP_TLS_RSA_DECRYPT, ct, ctlen, tls_version, pms, &pms_len);
    if (rc == 0 && pms_len != KW_TLS_PMS_LEN)
        rc = KW_ERR_CRYPTO;
    if (rc == 0 && !kw_ks_master_derive(md, ems, pms, pms_len, seed, slen, out))
        rc = KW_ERR_INTERNAL;
    OPENSSL_cleanse(pms, sizeof(pms));
    if (rc != 0) {
        OPENSSL_cleanse(out, KW_TLS_MASTER_LEN);
        return rc;
    }
    *outlen = KW_TLS_MASTER_LEN;
    return 0;
}

uint8_t kw_ks_op_run(kw_ks_op_cache_t *cache, const kw_ks_key_t *key, uint8_t opcode,
                     const uint8_t *in, size_t inlen, unsigned tls_version, uint8_t *out,
                     size_t *outlen)
{
    kw_ks_op_info_t info = kw_ks_op_info(opcode);
    if (info.family == KW_KS_FAM_NONE || key->max_out > KW_OP_OUT_MAX)
        return KW_ERR_INTERNAL;
    if (opcode == KW_OP_TLS12_MASTER) /* unpacks, then calls back here with 0xA0 */
        return master_run(cache, key, in, inlen, tls_version, out, outlen);
    return key->backend->op_run(cache, key, opcode, in, inlen, tls_version, out, outlen);
}
