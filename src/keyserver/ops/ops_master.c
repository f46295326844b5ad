/*
 * KWP 0xA1, master-secret mode (ops_master.h): request checks and packing on the loop thread, and
 * the TLS 1.2 PRF that turns a PMS into the master secret. The worker side (unpack, 0xA0
 * decryption with implicit rejection, derive, cleanse the PMS) is master_run in ops.c, which
 * builds on this file; this file takes nothing from ops.c.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "kw_reader.h"
#include "ops/ops_master.h"

#define LABEL_MS  "master secret"
#define LABEL_EMS "extended master secret"

/* The PRF digest item: present and exactly one byte (read through kw_reader). 0 or -1. */
static int prf_of(const kw_msg_t *msg, uint8_t *prf)
{
    kw_reader_t r;
    if (!msg->prf_digest.present)
        return -1;
    kw_reader_init(&r, msg->prf_digest.ptr, msg->prf_digest.len);
    return kw_reader_u8(&r, prf) == 0 && kw_reader_remaining(&r) == 0 ? 0 : -1;
}

uint8_t kw_ks_master_check(const kw_msg_t *msg)
{
    int randoms = msg->client_random.present && msg->server_random.present;
    int hash = msg->session_hash.present;
    uint8_t prf = 0;
    if (prf_of(msg, &prf) != 0 || (prf != KW_PRF_SHA256 && prf != KW_PRF_SHA384))
        return KW_ERR_FORMAT;
    if (randoms == hash) /* exactly one kind of seed */
        return KW_ERR_FORMAT;
    if (randoms && (msg->client_random.len != KW_TLS_RANDOM_LEN ||
                    msg->server_random.len != KW_TLS_RANDOM_LEN))
        return KW_ERR_FORMAT;
    if (hash && (msg->session_hash.len == 0 || msg->session_hash.len > 64))
        return KW_ERR_FORMAT;
    if (hash && (msg->client_random.present || msg->server_random.present))
        return KW_ERR_FORMAT;
    return 0;
}

static size_t seed_len(const kw_msg_t *msg)
{
    if (msg->session_hash.present)
        return msg->session_hash.len;
    return 2 * KW_TLS_RANDOM_LEN;
}

size_t kw_ks_master_in_len(const kw_msg_t *msg)
{
    return KW_MASTER_HDR_LEN + seed_len(msg) + msg->payload.len;
}

void kw_ks_master_pack(const kw_msg_t *msg, uint8_t *in)
{
    size_t slen = seed_len(msg);
    uint8_t prf = 0;
    if (prf_of(msg, &prf) != 0) /* checked by kw_ks_master_check */
        prf = 0;
    in[0] = prf;
    in[1] = msg->session_hash.present ? 1 : 0;
    in[2] = (uint8_t)slen;
    if (msg->session_hash.present) {
        memcpy(in + KW_MASTER_HDR_LEN, msg->session_hash.ptr, slen);
    } else {
        memcpy(in + KW_MASTER_HDR_LEN, msg->client_random.ptr, KW_TLS_RANDOM_LEN);
        memcpy(in + KW_MASTER_HDR_LEN + KW_TLS_RANDOM_LEN, msg->server_random.ptr,
               KW_TLS_RANDOM_LEN);
    }
    memcpy(in + KW_MASTER_HDR_LEN + slen, msg->payload.ptr, msg->payload.len);
}

uint8_t kw_ks_master_unpack(const uint8_t *in, size_t inlen, kw_ks_master_in_t *out)
{
    kw_reader_t r;
    uint8_t slen = 0;
    kw_reader_init(&r, in, inlen);
    if (kw_reader_u8(&r, &out->prf) != 0 || kw_reader_u8(&r, &out->ems) != 0 ||
        kw_reader_u8(&r, &slen) != 0 || kw_reader_take(&r, slen, &out->seed) != 0)
        return KW_ERR_FORMAT;
    out->seed_len = slen;
    out->ct_len = kw_reader_remaining(&r);
    if (kw_reader_take(&r, out->ct_len, &out->ct) != 0)
        return KW_ERR_FORMAT;
    return 0;
}

int kw_ks_master_derive(const char *md, int ems, const uint8_t *pms, size_t pms_len,
                        const uint8_t *seed, size_t seed_len_, uint8_t out[KW_TLS_MASTER_LEN])
{
    const char *label = ems ? LABEL_EMS : LABEL_MS;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, "provider=default");
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5];
    int ok = 0;
    EVP_KDF_free(kdf);
    if (kctx != NULL) {
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)pms, pms_len);
        params[2] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)label, strlen(label));
        params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed, seed_len_);
        params[4] = OSSL_PARAM_construct_end();
        ok = EVP_KDF_derive(kctx, out, KW_TLS_MASTER_LEN, params) == 1;
    }
    EVP_KDF_CTX_free(kctx);
    if (!ok)
        ERR_clear_error();
    return ok;
}
