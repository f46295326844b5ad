/*
 * Private-key operations: the opcode table (family, digest, digest length), request checks done
 * on the loop thread, and the operations run on worker threads. Each worker keeps a small
 * direct-mapped cache of OpenSSL contexts already initialised for (key, opcode), because creating
 * and initialising an EVP_PKEY_CTX costs a provider fetch per operation. A cached context holds a
 * reference to its EVP_PKEY, so a cached entry stays valid after its key store is released.
 * Keys on a PKCS#11 token are handed to pkcs11_ops.c instead. KWP 0xA1 (master-secret mode) is
 * unpacked here and runs as 0xA0 then the PRF of ops_master.c (which takes nothing from here).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "ops/ops.h"
#include "ops/ops_master.h"
#include "net/tls_reject.h"

typedef enum op_family {
    FAM_NONE = 0,
    FAM_RSA_PKCS1,
    FAM_RSA_PSS,
    FAM_ECDSA,
    FAM_ED25519,
    FAM_RSA_DECRYPT,
    FAM_RSA_RAW,
    FAM_RSA_TLS,
} op_family_t;

typedef struct op_info_s {
    op_family_t family;
    const char *md;    /* digest name for RSA signatures */
    size_t digest_len; /* required payload length for signatures over a digest; 0: any */
} op_info_t;

static op_info_t op_info(uint8_t opcode)
{
    static const char *const mds[] = {"MD5-SHA1", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512"};
    static const size_t lens[] = {36, 20, 28, 32, 48, 64};
    op_info_t info = {FAM_NONE, NULL, 0};
    if (opcode >= KW_OP_RSA_SIGN_MD5SHA1 && opcode <= KW_OP_RSA_SIGN_SHA512) {
        info.family = FAM_RSA_PKCS1;
        info.md = mds[opcode - KW_OP_RSA_SIGN_MD5SHA1];
        info.digest_len = lens[opcode - KW_OP_RSA_SIGN_MD5SHA1];
    } else if (opcode >= KW_OP_ECDSA_SIGN_MD5SHA1 && opcode <= KW_OP_ECDSA_SIGN_SHA512) {
        info.family = FAM_ECDSA;
        info.digest_len = lens[opcode - KW_OP_ECDSA_SIGN_MD5SHA1];
    } else if (opcode >= KW_OP_RSA_PSS_SIGN_SHA256 && opcode <= KW_OP_RSA_PSS_SIGN_SHA512) {
        info.family = FAM_RSA_PSS;
        info.md = mds[3 + opcode - KW_OP_RSA_PSS_SIGN_SHA256];
        info.digest_len = lens[3 + opcode - KW_OP_RSA_PSS_SIGN_SHA256];
    } else if (opcode == KW_OP_ED25519_SIGN) {
        info.family = FAM_ED25519;
    } else if (opcode == KW_OP_RSA_DECRYPT) {
        info.family = FAM_RSA_DECRYPT;
    } else if (opcode == KW_OP_RSA_DECRYPT_RAW) {
        info.family = FAM_RSA_RAW;
    } else if (opcode == KW_OP_TLS_RSA_DECRYPT || opcode == KW_OP_TLS12_MASTER) {
        info.family = FAM_RSA_TLS; /* 0xA1: the 0xA0 decryption, then the PRF (ops_master.c) */
    }
    return info;
}

int kw_ks_op_is_key_op(uint8_t opcode)
{
    return op_info(opcode).family != FAM_NONE;
}

static kw_ks_key_type_t family_key_type(op_family_t family)
{
    switch (family) {
    case FAM_ECDSA:
        return KW_KS_KEY_EC;
    case FAM_ED25519:
        return KW_KS_KEY_ED25519;
    default:
        return KW_KS_KEY_RSA;
    }
}

uint8_t kw_ks_op_check(const kw_ks_key_t *key, uint8_t opcode, const kw_bytes_t *payload,
                       const kw_bytes_t *extra)
{
    op_info_t info = op_info(opcode);
    if (info.family == FAM_NONE)
        return KW_ERR_BAD_OPCODE;
    if (family_key_type(info.family) != key->type)
        return KW_ERR_UNEXPECTED_OPCODE;
    if (!payload->present)
        return KW_ERR_FORMAT;
    if (info.digest_len != 0 && payload->len != info.digest_len)
        return KW_ERR_FORMAT;
    if (info.family == FAM_RSA_RAW && payload->len != key->max_out)
        return KW_ERR_FORMAT;
    if (info.family == FAM_RSA_DECRYPT && (payload->len == 0 || payload->len > key->max_out))
        return KW_ERR_FORMAT;
    if (info.family == FAM_RSA_TLS && (!extra->present || extra->len != 2))
        return KW_ERR_FORMAT;
    return 0;
}

/* ---- context cache ---- */

typedef struct cache_entry_s {
    EVP_PKEY *pkey; /* identity only; the contexts hold the reference */
    uint8_t opcode;
    EVP_PKEY_CTX *pctx; /* sign / decrypt families */
    EVP_MD_CTX *mdctx;  /* Ed25519 */
} cache_entry_t;

struct kw_ks_op_cache_s {
    size_t slots;
    cache_entry_t *entries;
    cache_entry_t scratch; /* used when caching is off */
};

kw_ks_op_cache_t *kw_ks_op_cache_new(size_t slots)
{
    kw_ks_op_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->slots = slots;
    if (slots > 0) {
        c->entries = calloc(slots, sizeof(*c->entries));
        if (c->entries == NULL) {
            free(c);
            return NULL;
        }
    }
    return c;
}

static void entry_clear(cache_entry_t *e)
{
    EVP_PKEY_CTX_free(e->pctx);
    EVP_MD_CTX_free(e->mdctx);
    memset(e, 0, sizeof(*e));
}

void kw_ks_op_cache_free(kw_ks_op_cache_t *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < cache->slots; i++)
        entry_clear(&cache->entries[i]);
    entry_clear(&cache->scratch);
    free(cache->entries);
    free(cache);
}

static int setup_sign(EVP_PKEY_CTX *pctx, const op_info_t *info)
{
    if (EVP_PKEY_sign_init(pctx) != 1)
        return 0;
    if (info->family == FAM_ECDSA)
        return 1; /* ECDSA signs the digest as given; its length was checked */
    const EVP_MD *md = EVP_get_digestbyname(info->md);
    if (md == NULL)
        return 0;
    if (info->family == FAM_RSA_PSS)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
               EVP_PKEY_CTX_set_signature_md(pctx, md) == 1 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
           EVP_PKEY_CTX_set_signature_md(pctx, md) == 1;
}

static int setup_decrypt(EVP_PKEY_CTX *pctx, const op_info_t *info)
{
    int pad = RSA_PKCS1_PADDING;
    if (info->family == FAM_RSA_RAW || info->family == FAM_RSA_TLS)
        pad = RSA_NO_PADDING; /* 0xA0: tls_reject.c checks the padding */
    return EVP_PKEY_decrypt_init(pctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(pctx, pad) == 1;
}

/* Fills e for (key, opcode). Returns 1 or 0. */
static int entry_init(cache_entry_t *e, const kw_ks_key_t *key, uint8_t opcode,
                      const op_info_t *info)
{
    e->pkey = key->pkey;
    e->opcode = opcode;
    if (info->family == FAM_ED25519) {
        e->mdctx = EVP_MD_CTX_new();
        return e->mdctx != NULL &&
               EVP_DigestSignInit_ex(e->mdctx, NULL, NULL, NULL, NULL, key->pkey, NULL) == 1;
    }
    e->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (e->pctx == NULL)
        return 0;
    if (info->family == FAM_RSA_DECRYPT || info->family == FAM_RSA_RAW ||
        info->family == FAM_RSA_TLS)
        return setup_decrypt(e->pctx, info);
    return setup_sign(e->pctx, info);
}

static cache_entry_t *cache_get(kw_ks_op_cache_t *c, const kw_ks_key_t *key, uint8_t opcode,
                                const op_info_t *info)
{
    cache_entry_t *e = &c->scratch;
    if (c->slots > 0) {
        uintptr_t h = ((uintptr_t)key->pkey >> 4) * 31u + opcode;
        e = &c->entries[h % c->slots];
        if (e->pkey == key->pkey && e->opcode == opcode)
            return e;
    }
    entry_clear(e);
    if (!entry_init(e, key, opcode, info)) {
        entry_clear(e);
        return NULL;
    }
    return e;
}

/* ---- operations ---- */

/*
 * 0xA0: raw RSA, then the constant-time TLS check of tls_reject.c, which answers the synthetic PMS
 * (derived from the ciphertext and the key's secret, so the same every time and on every key
 * server with this key) when the padding or version is wrong. Raw RSA fails only on public
 * properties (ciphertext length, value >= n): those get the synthetic PMS too.
 */
static uint8_t tls_decrypt(cache_entry_t *e, const kw_ks_key_t *key, const uint8_t *in,
                           size_t inlen, unsigned tls_version, uint8_t *out, size_t *outlen)
{
    uint8_t synth[KW_TLS_PMS_LEN];
    uint8_t em[KW_OP_OUT_MAX];
    size_t k = key->max_out;
    if (key->ir_secret == NULL || k < KW_TLS_PMS_LEN + 11 ||
        !kw_ks_ir_synthetic(key->ir_secret, in, inlen, tls_version, synth))
        return KW_ERR_INTERNAL;
    size_t len = sizeof(em);
    int ok =
        e != NULL && inlen == k && EVP_PKEY_decrypt(e->pctx, em, &len, in, inlen) == 1 && len == k;
    if (ok) {
        kw_ks_ir_select(em, k, tls_version, synth, out);
    } else {
        ERR_clear_error();
        memcpy(out, synth, KW_TLS_PMS_LEN);
    }
    OPENSSL_cleanse(em, sizeof(em));
    OPENSSL_cleanse(synth, sizeof(synth));
    *outlen = KW_TLS_PMS_LEN;
    return 0;
}

static uint8_t ed25519_sign(cache_entry_t *e, const kw_ks_key_t *key, const uint8_t *in,
                            size_t inlen, uint8_t *out, size_t *outlen)
{
    size_t len = KW_OP_OUT_MAX;
    if (EVP_DigestSign(e->mdctx, out, &len, in, inlen) == 1) {
        *outlen = len;
        return 0;
    }
    /* Newer OpenSSL refuses a second one-shot on one context: initialise afresh once. */
    ERR_clear_error();
    entry_clear(e);
    op_info_t info = op_info(KW_OP_ED25519_SIGN);
    if (!entry_init(e, key, KW_OP_ED25519_SIGN, &info)) {
        entry_clear(e);
        return KW_ERR_CRYPTO;
    }
    len = KW_OP_OUT_MAX;
    if (EVP_DigestSign(e->mdctx, out, &len, in, inlen) != 1) {
        ERR_clear_error();
        entry_clear(e);
        return KW_ERR_CRYPTO;
    }
    *outlen = len;
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
    if (inlen < KW_MASTER_HDR_LEN || inlen < (size_t)KW_MASTER_HDR_LEN + in[2])
        return KW_ERR_FORMAT;
    const char *md = in[0] == KW_PRF_SHA384 ? "SHA384" : "SHA256";
    int ems = in[1];
    const uint8_t *seed = in + KW_MASTER_HDR_LEN;
    size_t slen = in[2];
    const uint8_t *ct = seed + slen;
    size_t ctlen = inlen - KW_MASTER_HDR_LEN - slen;
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
    op_info_t info = op_info(opcode);
    if (info.family == FAM_NONE || key->max_out > KW_OP_OUT_MAX)
        return KW_ERR_INTERNAL;
    if (opcode == KW_OP_TLS12_MASTER) /* unpacks, then calls back here with 0xA0 */
        return master_run(cache, key, in, inlen, tls_version, out, outlen);
    if (key->p11 != NULL) /* the key lives on a PKCS#11 token: no OpenSSL context */
        return kw_ks_p11_op_run(key->p11, opcode, in, inlen, tls_version, out, KW_OP_OUT_MAX,
                                outlen);
    cache_entry_t *e = cache_get(cache, key, opcode, &info);
    if (info.family == FAM_RSA_TLS)
        return tls_decrypt(e, key, in, inlen, tls_version, out, outlen);
    if (e == NULL) {
        ERR_clear_error();
        return KW_ERR_CRYPTO;
    }
    if (info.family == FAM_ED25519)
        return ed25519_sign(e, key, in, inlen, out, outlen);
    size_t len = KW_OP_OUT_MAX;
    int ok;
    if (info.family == FAM_RSA_DECRYPT || info.family == FAM_RSA_RAW)
        ok = EVP_PKEY_decrypt(e->pctx, out, &len, in, inlen);
    else
        ok = EVP_PKEY_sign(e->pctx, out, &len, in, inlen);
    if (ok != 1) {
        ERR_clear_error();
        if (info.family == FAM_RSA_DECRYPT || info.family == FAM_RSA_RAW)
            OPENSSL_cleanse(out, KW_OP_OUT_MAX);
        return KW_ERR_CRYPTO;
    }
    *outlen = len;
    return 0;
}
