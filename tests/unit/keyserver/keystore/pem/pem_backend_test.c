/*
 * The PEM key backend through the backend table (keystore/backend.h): RSA-2048, EC P-256 and
 * Ed25519 key files loaded by the key store point at kw_ks_backend_pem (local, so the loop may
 * run them); their operations run through key->backend->op_run and through kw_ks_op_run (ops/,
 * which only calls the table) and are checked with OpenSSL: PKCS#1 and PSS signatures, ECDSA,
 * Ed25519, PKCS#1 and raw decryption, 0xA0 (the real PMS on good padding, the same synthetic
 * PMS twice on bad padding). With caching off (0 slots) the results are the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "keystore/keystore.h"
#include "keystore/pem/pem.h"
#include "ops/ops.h"

typedef struct fixture_s {
    char dir[64];
    EVP_PKEY *rsa, *ec, *ed;
    kw_keystore_t *store;
} fixture_t;

static void write_key(const char *dir, const char *name, EVP_PKEY *pkey)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kwpem.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_true(f->rsa && f->ec && f->ed);
    write_key(f->dir, "a-rsa", f->rsa);
    write_key(f->dir, "b-ec", f->ec);
    write_key(f->dir, "c-ed", f->ed);
    char err[256] = "";
    size_t skipped = 9;
    assert_int_equal(kw_keystore_load(f->dir, &f->store, &skipped, err, sizeof(err)), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(kw_keystore_count(f->store), 3);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kw_keystore_unref(f->store);
    EVP_PKEY_free(f->rsa);
    EVP_PKEY_free(f->ec);
    EVP_PKEY_free(f->ed);
    const char *names[] = {"a-rsa", "b-ec", "c-ed"};
    char path[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s.key", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The store's key at index (file name order: RSA, EC, Ed25519), a PEM backend key. */
static const kw_ks_key_t *key_of(const fixture_t *f, size_t index)
{
    const kw_ks_key_t *key = kw_keystore_get(f->store, index);
    assert_non_null(key);
    assert_ptr_equal(key->backend, &kw_ks_backend_pem);
    return key;
}

/* Runs opcode through the table (via_ops 0) or through kw_ks_op_run (1). */
static uint8_t run(kw_ks_op_cache_t *c, const kw_ks_key_t *key, int via_ops, uint8_t opcode,
                   const uint8_t *in, size_t inlen, unsigned ver, uint8_t *out, size_t *outlen)
{
    if (via_ops)
        return kw_ks_op_run(c, key, opcode, in, inlen, ver, out, outlen);
    return key->backend->op_run(c, key, opcode, in, inlen, ver, out, outlen);
}

static void verify(EVP_PKEY *pkey, const char *md, int pad, const uint8_t *sig, size_t siglen,
                   const uint8_t *tbs, size_t tbslen)
{
    if (md == NULL && pad == 0 && EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        assert_non_null(m);
        assert_int_equal(EVP_DigestVerifyInit(m, NULL, NULL, NULL, pkey), 1);
        assert_int_equal(EVP_DigestVerify(m, sig, siglen, tbs, tbslen), 1);
        EVP_MD_CTX_free(m);
        return;
    }
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    assert_non_null(v);
    assert_int_equal(EVP_PKEY_verify_init(v), 1);
    if (pad != 0)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(v, pad), 1);
    if (md != NULL)
        assert_int_equal(EVP_PKEY_CTX_set_signature_md(v, EVP_get_digestbyname(md)), 1);
    if (pad == RSA_PKCS1_PSS_PADDING)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(v, RSA_PSS_SALTLEN_DIGEST), 1);
    assert_int_equal(EVP_PKEY_verify(v, sig, siglen, tbs, tbslen), 1);
    EVP_PKEY_CTX_free(v);
}

static size_t encrypt(EVP_PKEY *pkey, int pad, const uint8_t *in, size_t inlen, uint8_t *ct)
{
    size_t ctlen = KW_OP_OUT_MAX;
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    assert_non_null(e);
    assert_int_equal(EVP_PKEY_encrypt_init(e), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(e, pad), 1);
    assert_int_equal(EVP_PKEY_encrypt(e, ct, &ctlen, in, inlen), 1);
    EVP_PKEY_CTX_free(e);
    return ctlen;
}

static void sign_all(fixture_t *f, kw_ks_op_cache_t *c, int via_ops)
{
    uint8_t digest[32], msg[100], sig[KW_OP_OUT_MAX];
    size_t siglen = 0;
    assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
    assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
    const kw_ks_key_t *rsa = key_of(f, 0), *ec = key_of(f, 1), *ed = key_of(f, 2);
    assert_int_equal(run(c, rsa, via_ops, KW_OP_RSA_SIGN_SHA256, digest, 32, 0, sig, &siglen), 0);
    verify(f->rsa, "SHA256", RSA_PKCS1_PADDING, sig, siglen, digest, 32);
    assert_int_equal(run(c, rsa, via_ops, KW_OP_RSA_PSS_SIGN_SHA256, digest, 32, 0, sig, &siglen),
                     0);
    verify(f->rsa, "SHA256", RSA_PKCS1_PSS_PADDING, sig, siglen, digest, 32);
    assert_int_equal(run(c, ec, via_ops, KW_OP_ECDSA_SIGN_SHA256, digest, 32, 0, sig, &siglen), 0);
    verify(f->ec, NULL, 0, sig, siglen, digest, 32);
    for (int i = 0; i < 2; i++) { /* twice: the second one-shot on a cached context */
        assert_int_equal(run(c, ed, via_ops, KW_OP_ED25519_SIGN, msg, sizeof(msg), 0, sig, &siglen),
                         0);
        verify(f->ed, NULL, 0, sig, siglen, msg, sizeof(msg));
    }
}

static void decrypt_all(fixture_t *f, kw_ks_op_cache_t *c, int via_ops)
{
    const kw_ks_key_t *rsa = key_of(f, 0);
    uint8_t pms[KW_TLS_PMS_LEN], ct[KW_OP_OUT_MAX], out[KW_OP_OUT_MAX], first[KW_TLS_PMS_LEN];
    size_t outlen = 0;
    assert_int_equal(RAND_bytes(pms, sizeof(pms)), 1);
    pms[0] = 3;
    pms[1] = 3;
    size_t ctlen = encrypt(f->rsa, RSA_PKCS1_PADDING, pms, sizeof(pms), ct);
    assert_int_equal(run(c, rsa, via_ops, KW_OP_RSA_DECRYPT, ct, ctlen, 0, out, &outlen), 0);
    assert_int_equal(outlen, sizeof(pms));
    assert_memory_equal(out, pms, sizeof(pms));
    assert_int_equal(run(c, rsa, via_ops, KW_OP_RSA_DECRYPT_RAW, ct, ctlen, 0, out, &outlen), 0);
    assert_int_equal(outlen, ctlen);
    assert_memory_equal(out + ctlen - sizeof(pms), pms, sizeof(pms));
    assert_int_equal(run(c, rsa, via_ops, KW_OP_TLS_RSA_DECRYPT, ct, ctlen, 0x0303, out, &outlen),
                     0);
    assert_int_equal(outlen, KW_TLS_PMS_LEN);
    assert_memory_equal(out, pms, sizeof(pms));
    ct[ctlen / 2] ^= 1; /* bad padding: 48 bytes, not the PMS, the same ones every time */
    assert_int_equal(run(c, rsa, via_ops, KW_OP_TLS_RSA_DECRYPT, ct, ctlen, 0x0303, first, &outlen),
                     0);
    assert_int_equal(outlen, KW_TLS_PMS_LEN);
    assert_memory_not_equal(first, pms, sizeof(pms));
    assert_int_equal(run(c, rsa, via_ops, KW_OP_TLS_RSA_DECRYPT, ct, ctlen, 0x0303, out, &outlen),
                     0);
    assert_memory_equal(out, first, sizeof(first));
}

static void test_table(void **state)
{
    (void)state;
    assert_string_equal(kw_ks_backend_pem.name, "pem");
    assert_int_equal(kw_ks_backend_pem.local, 1);
    assert_non_null(kw_ks_backend_pem.op_run);
    assert_non_null(kw_ks_backend_pem.key_free);
    kw_ks_backend_pem.key_free(NULL); /* an EC or Ed25519 key has no private data */
}

static void test_ops(void **state)
{
    fixture_t *f = *state;
    for (size_t slots = 0; slots <= 8; slots += 8) {
        kw_ks_op_cache_t *c = kw_ks_op_cache_new(slots);
        assert_non_null(c);
        for (int via_ops = 0; via_ops < 2; via_ops++) {
            sign_all(f, c, via_ops);
            decrypt_all(f, c, via_ops);
        }
        kw_ks_op_cache_free(c);
    }
    assert_non_null(key_of(f, 0)->priv); /* the RSA key's implicit-rejection secret */
    assert_null(key_of(f, 1)->priv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
