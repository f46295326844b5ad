/*
 * Key store loads of many files through one reused private-key decoder (keystore_load.c) and the
 * duplicate check by key-id set (keyset.c): files the reused decoder does not take (EC PARAMETERS
 * before the key, a public key, an encrypted key, garbage) are decided by OpenSSL's own reader as
 * before and do not disturb the keys after them; duplicates among many keys are refused, the
 * first in name order kept; the set itself keeps digests that share their first bytes apart.
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

#include "keystore/keyset.h"
#include "keystore/keystore.h"
#include "keyward/error.h"
#include "keyward/keyid.h"

#include "key_files.h"

/* As `openssl ecparam -genkey` writes: an EC PARAMETERS block, then the key. */
static void params_first(BIO *b, EVP_PKEY *pkey)
{
    assert_int_equal(PEM_write_bio_Parameters(b, pkey), 1);
    kf_traditional(b, pkey);
}

static void public_only(BIO *b, EVP_PKEY *pkey)
{
    assert_int_equal(PEM_write_bio_PUBKEY(b, pkey), 1);
}

static void encrypted(BIO *b, EVP_PKEY *pkey)
{
    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(b, pkey, EVP_aes_128_cbc(), "secret", 6, NULL, NULL), 1);
}

static const kw_ks_key_t *find(const kw_keystore_t *s, EVP_PKEY *pkey)
{
    uint8_t digest[KW_DIGEST_LEN];
    assert_int_equal(kw_keyid_from_pkey(pkey, digest, NULL), 0);
    return kw_keystore_find_digest(s, digest);
}

static void test_files_the_reused_decoder_does_not_take(void **state)
{
    (void)state;
    char dir[] = "/tmp/kw-ksload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_true(ec != NULL && ec2 != NULL && ed != NULL && other != NULL);
    kf_write_key(dir, "a-params-first", ec, params_first);
    kf_write_key(dir, "b-public", other, public_only);
    kf_write_key(dir, "c-encrypted", other, encrypted);
    kf_write_text(dir, "d-garbage.key",
                  "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n");
    kf_write_key(dir, "e-ec384", ec2, kf_pkcs8);
    kf_write_key(dir, "f-ed", ed, kf_pkcs8);
    kf_write_key(dir, "g-same-as-a", ec, kf_pkcs8);
    kf_write_key(dir, "h-ec384-again", ec2, kf_traditional);

    kw_keystore_t *s = NULL;
    size_t skipped = 0;
    char err[256] = "";
    assert_int_equal(kw_keystore_load(dir, &s, &skipped, err, sizeof(err)), 0);
    assert_int_equal(kw_keystore_count(s), 3);
    assert_int_equal(skipped, 5); /* public, encrypted, garbage, and the two duplicates */
    assert_string_equal(kw_keystore_get(s, 0)->name, "a-params-first");
    assert_string_equal(kw_keystore_get(s, 1)->name, "e-ec384");
    assert_string_equal(kw_keystore_get(s, 2)->name, "f-ed");
    assert_int_equal(kw_keystore_get(s, 1)->bits, 384);
    assert_ptr_equal(find(s, ec), kw_keystore_get(s, 0));
    assert_null(find(s, other));
    kw_keystore_unref(s);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(other);
    kf_remove_dir(dir);
}

#define N_KEYS 64

/* N_KEYS keys, each also under a later name: every second file is refused as a duplicate. */
static void test_many_keys_with_duplicates(void **state)
{
    (void)state;
    char dir[] = "/tmp/kw-ksload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    EVP_PKEY *keys[N_KEYS];
    char name[32];
    for (int i = 0; i < N_KEYS; i++) {
        keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(keys[i]);
    }
    for (int i = 0; i < N_KEYS; i++) {
        snprintf(name, sizeof(name), "k%03d", i);
        kf_write_key(dir, name, keys[i], i % 2 ? kf_pkcs8 : kf_traditional);
        snprintf(name, sizeof(name), "k%03d-copy", (i * 7) % N_KEYS); /* another order */
        kf_write_key(dir, name, keys[(i * 7) % N_KEYS], kf_pkcs8);
    }
    kw_keystore_t *s = NULL;
    size_t skipped = 0;
    char err[256] = "";
    assert_int_equal(kw_keystore_load(dir, &s, &skipped, err, sizeof(err)), 0);
    assert_int_equal(kw_keystore_count(s), N_KEYS);
    assert_int_equal(skipped, N_KEYS);
    for (int i = 0; i < N_KEYS; i++) {
        const kw_ks_key_t *k = find(s, keys[i]);
        assert_non_null(k);
        snprintf(name, sizeof(name), "k%03d", i); /* "k000" sorts before "k000-copy" */
        assert_string_equal(k->name, name);
        EVP_PKEY_free(keys[i]);
    }
    kw_keystore_unref(s);
    kf_remove_dir(dir);
}

static void test_keyset(void **state)
{
    (void)state;
    enum { N = 1000 };
    static uint8_t d[N][KW_DIGEST_LEN];
    uint8_t same[KW_DIGEST_LEN];
    kw_ks_keyset_t set = {0};
    assert_int_equal(kw_ks_keyset_init(&set, N + 1), 0);
    for (int i = 0; i < N; i++) {
        memset(d[i], 0x5A, KW_DIGEST_LEN); /* all in one probe chain: only the last bytes differ */
        d[i][KW_DIGEST_LEN - 2] = (uint8_t)(i >> 8);
        d[i][KW_DIGEST_LEN - 1] = (uint8_t)i;
        assert_int_equal(kw_ks_keyset_add(&set, d[i]), 1);
    }
    for (int i = 0; i < N; i += 37) {
        memcpy(same, d[i], KW_DIGEST_LEN); /* an equal digest at another address */
        assert_int_equal(kw_ks_keyset_add(&set, same), 0);
    }
    memset(same, 0x5A, KW_DIGEST_LEN);
    same[0] = 0;
    assert_int_equal(kw_ks_keyset_add(&set, same), 1);
    kw_ks_keyset_free(&set);
    kw_ks_keyset_free(&set); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_the_reused_decoder_does_not_take),
        cmocka_unit_test(test_many_keys_with_duplicates),
        cmocka_unit_test(test_keyset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
