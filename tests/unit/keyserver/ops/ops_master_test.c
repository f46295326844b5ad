/*
 * Master-secret mode on the key server (src/keyserver/ops/ops_master.c, KWP 0xA1): request checks,
 * and the worker path end to end with a real RSA key: an encrypted PMS plus randoms (or a session
 * hash) yields the master secret an independent TLS1-PRF computes from the PMS; a bad ciphertext
 * still yields 48 bytes (implicit rejection), which differ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "ops/ops.h"
#include "ops/ops_master.h"
#include "keystore/pem/pem.h"
#include "keystore/tls_reject_internal.h"

static uint8_t cr[32], sr[32], hash[48], prf256 = KW_PRF_SHA256, prf384 = KW_PRF_SHA384;

static kw_msg_t base_msg(void)
{
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    m.opcode = KW_OP_TLS12_MASTER;
    m.has_opcode = 1;
    m.prf_digest = kw_bytes(&prf256, 1);
    m.client_random = kw_bytes(cr, 32);
    m.server_random = kw_bytes(sr, 32);
    return m;
}

static void test_check(void **state)
{
    (void)state;
    kw_msg_t m = base_msg();
    assert_int_equal(kw_ks_master_check(&m), 0);
    m.session_hash = kw_bytes(hash, sizeof(hash)); /* both kinds of seed */
    assert_int_equal(kw_ks_master_check(&m), KW_ERR_FORMAT);
    m.client_random.present = 0;
    m.server_random.present = 0;
    assert_int_equal(kw_ks_master_check(&m), 0); /* session hash alone */
    m.session_hash.present = 0;
    assert_int_equal(kw_ks_master_check(&m), KW_ERR_FORMAT); /* no seed */
    m = base_msg();
    m.server_random.present = 0;
    assert_int_equal(kw_ks_master_check(&m), KW_ERR_FORMAT); /* one random */
    m = base_msg();
    uint8_t bad = 3;
    m.prf_digest = kw_bytes(&bad, 1);
    assert_int_equal(kw_ks_master_check(&m), KW_ERR_FORMAT);
    m.prf_digest.present = 0;
    assert_int_equal(kw_ks_master_check(&m), KW_ERR_FORMAT);
}

/* Reference TLS 1.2 PRF over seeds label || s1 (independent of ops_master.c). */
static void ref_prf(const char *md, const char *label, const uint8_t *pms, const uint8_t *s1,
                    size_t s1len, uint8_t out[48])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[5];
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)pms, 48);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)label, strlen(label));
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)s1, s1len);
    p[4] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_KDF_derive(k, out, 48, p), 1);
    EVP_KDF_CTX_free(k);
    EVP_KDF_free(kdf);
}

/* Runs 0xA1 for m (payload: ct) on key; returns the 48-byte result in out. */
static void run_master(kw_ks_op_cache_t *cache, kw_ks_key_t *key, kw_msg_t *m, const uint8_t *ct,
                       size_t ctlen, uint8_t out[KW_OP_OUT_MAX])
{
    uint8_t ver[2] = {3, 3};
    m->payload = kw_bytes(ct, ctlen);
    m->extra = kw_bytes(ver, 2);
    assert_int_equal(kw_ks_op_check(key, KW_OP_TLS12_MASTER, &m->payload, &m->extra), 0);
    assert_int_equal(kw_ks_master_check(m), 0);
    uint8_t in[1024];
    size_t inlen = kw_ks_master_in_len(m);
    assert_true(inlen <= sizeof(in));
    kw_ks_master_pack(m, in);
    size_t outlen = 0;
    assert_int_equal(kw_ks_op_run(cache, key, KW_OP_TLS12_MASTER, in, inlen, 0x0303, out, &outlen),
                     0);
    assert_int_equal(outlen, KW_TLS_MASTER_LEN);
}

static void test_run(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(pk);
    kw_ks_key_t key;
    memset(&key, 0, sizeof(key));
    key.pkey = pk;
    key.type = KW_KS_KEY_RSA;
    key.bits = 2048;
    key.max_out = (size_t)EVP_PKEY_get_size(pk);
    key.backend = &kw_ks_backend_pem;
    key.priv = kw_ks_ir_secret_from_pkey(pk); /* as keystore_load.c does */
    assert_non_null(key.priv);
    uint8_t pms[48], ct[256], out[KW_OP_OUT_MAX], want[48];
    size_t ctlen = sizeof(ct);
    assert_int_equal(RAND_bytes(pms, 48), 1);
    pms[0] = 3;
    pms[1] = 3;
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(e), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_encrypt(e, ct, &ctlen, pms, 48), 1);
    EVP_PKEY_CTX_free(e);
    assert_int_equal(RAND_bytes(cr, 32), 1);
    assert_int_equal(RAND_bytes(sr, 32), 1);
    assert_int_equal(RAND_bytes(hash, 48), 1);
    kw_ks_op_cache_t *cache = kw_ks_op_cache_new(8);
    assert_non_null(cache);

    uint8_t seed[64];
    memcpy(seed, cr, 32);
    memcpy(seed + 32, sr, 32);
    kw_msg_t m = base_msg();
    run_master(cache, &key, &m, ct, ctlen, out);
    ref_prf("SHA256", "master secret", pms, seed, 64, want);
    assert_memory_equal(out, want, 48);

    m = base_msg(); /* extended master secret, SHA-384 */
    m.client_random.present = 0;
    m.server_random.present = 0;
    m.session_hash = kw_bytes(hash, 48);
    m.prf_digest = kw_bytes(&prf384, 1);
    run_master(cache, &key, &m, ct, ctlen, out);
    ref_prf("SHA384", "extended master secret", pms, hash, 48, want);
    assert_memory_equal(out, want, 48);

    ct[ctlen / 2] ^= 1; /* bad padding: still 48 bytes, but not this PMS's master secret */
    m = base_msg();
    run_master(cache, &key, &m, ct, ctlen, out);
    ref_prf("SHA256", "master secret", pms, seed, 64, want);
    assert_memory_not_equal(out, want, 48);
    /* implicit rejection is deterministic: the same answer again (no two-query oracle) */
    uint8_t first[48];
    memcpy(first, out, 48);
    m = base_msg();
    run_master(cache, &key, &m, ct, ctlen, out);
    assert_memory_equal(out, first, 48);

    kw_ks_ir_secret_free(key.priv);
    kw_ks_op_cache_free(cache);
    EVP_PKEY_free(pk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
