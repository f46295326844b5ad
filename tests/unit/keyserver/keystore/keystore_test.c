/*
 * Key store tests: a temporary directory of freshly generated keys (PKCS#8 and traditional PEM,
 * with and without certificate chains) plus files that must be refused (garbage, RSA-1024, an
 * unsupported curve, a certificate of another key, a duplicate key); lookups by key id, SKI and
 * SNI (exact, case-insensitive, wildcard), reference counting, and a missing directory.
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
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keystore/keystore.h"
#include "keyward/error.h"
#include "keyward/keyid.h"

#include "key_files.h"

typedef struct fixture_s {
    char dir[64];
    EVP_PKEY *rsa, *ec, *ed, *other;
    X509 *rsa_cert, *ec_cert;
    kw_keystore_t *store;
    size_t skipped;
} fixture_t;

static void write_cert(const char *dir, const char *name, X509 *cert)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
    BIO *b = BIO_new_file(path, "w");
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, cert), 1);
    BIO_free(b);
}

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* Self-signed certificate for pkey, CN cn, SAN san (may be NULL). */
static X509 *make_cert(EVP_PKEY *pkey, const char *cn, const char *san)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pkey);
    add_ext(x, NID_subject_key_identifier, "hash");
    if (san != NULL)
        add_ext(x, NID_subject_alt_name, san);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    return x;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kw-keystore-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    f->other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    if (!f->rsa || !f->ec || !f->ed || !f->other || !small || !k1)
        return -1;
    f->rsa_cert = make_cert(f->rsa, "rsa-cn.test", "DNS:rsa.test,DNS:shared.test");
    f->ec_cert = make_cert(f->ec, "ec.test", "DNS:*.wild.test,DNS:shared.test");
    X509 *wrong = make_cert(f->other, "mismatch.test", NULL);
    kf_write_key(f->dir, "a-rsa", f->rsa, kf_pkcs8);
    write_cert(f->dir, "a-rsa", f->rsa_cert);
    kf_write_key(f->dir, "b-ec", f->ec, kf_traditional);
    write_cert(f->dir, "b-ec", f->ec_cert);
    kf_write_key(f->dir, "c-ed", f->ed, kf_pkcs8);
    kf_write_key(f->dir, "d-small", small, kf_pkcs8);
    kf_write_key(f->dir, "e-k1", k1, kf_pkcs8);
    kf_write_key(f->dir, "f-mismatch", f->ec,
                 kf_pkcs8); /* the EC key with a P-384 key's certificate */
    write_cert(f->dir, "f-mismatch", wrong);
    kf_write_key(f->dir, "g-duplicate", f->rsa, kf_traditional);
    kf_write_text(f->dir, "h-garbage.key",
                  "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
                  "-----END PRIVATE KEY-----\n");
    kf_write_text(f->dir, "readme.txt", "not a key\n");
    X509_free(wrong);
    EVP_PKEY_free(small);
    EVP_PKEY_free(k1);
    char err[256];
    if (kw_keystore_load(f->dir, &f->store, &f->skipped, err, sizeof(err)) != 0)
        return -1;
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
    EVP_PKEY_free(f->other);
    X509_free(f->rsa_cert);
    X509_free(f->ec_cert);
    kf_remove_dir(f->dir);
    free(f);
    return 0;
}

static void ids_of(EVP_PKEY *pkey, uint8_t digest[KW_DIGEST_LEN], uint8_t ski[KW_SKI_LEN])
{
    assert_int_equal(kw_keyid_from_pkey(pkey, digest, ski), 0);
}

static void test_loads_supported_refuses_rest(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(kw_keystore_count(f->store), 3);
    /* d-small, e-k1, f-mismatch, g-duplicate, h-garbage */
    assert_int_equal(f->skipped, 5);
    const kw_ks_key_t *k0 = kw_keystore_get(f->store, 0);
    const kw_ks_key_t *k1 = kw_keystore_get(f->store, 1);
    const kw_ks_key_t *k2 = kw_keystore_get(f->store, 2);
    assert_string_equal(k0->name, "a-rsa");
    assert_int_equal(k0->type, KW_KS_KEY_RSA);
    assert_int_equal(k0->bits, 2048);
    assert_int_equal(k0->max_out, 256);
    assert_string_equal(k1->name, "b-ec");
    assert_int_equal(k1->type, KW_KS_KEY_EC);
    assert_string_equal(k2->name, "c-ed");
    assert_int_equal(k2->type, KW_KS_KEY_ED25519);
    assert_null(k2->chain_der);
    assert_null(kw_keystore_get(f->store, 3));
}

static void test_lookup_by_digest_and_ski(void **state)
{
    fixture_t *f = *state;
    uint8_t digest[KW_DIGEST_LEN], ski[KW_SKI_LEN];
    EVP_PKEY *keys[3] = {f->rsa, f->ec, f->ed};
    for (int i = 0; i < 3; i++) {
        ids_of(keys[i], digest, ski);
        const kw_ks_key_t *k = kw_keystore_find_digest(f->store, digest);
        assert_non_null(k);
        assert_int_equal(EVP_PKEY_eq(k->pkey, keys[i]), 1);
        assert_ptr_equal(kw_keystore_find_ski(f->store, ski), k);
        assert_memory_equal(k->digest, digest, KW_DIGEST_LEN);
    }
    memset(digest, 0xAB, sizeof(digest));
    memset(ski, 0xCD, sizeof(ski));
    assert_null(kw_keystore_find_digest(f->store, digest));
    assert_null(kw_keystore_find_ski(f->store, ski));
    /* a key that was refused is not found */
    ids_of(f->other, digest, ski);
    assert_null(kw_keystore_find_digest(f->store, digest));
}

static void test_find_request(void **state)
{
    fixture_t *f = *state;
    uint8_t digest[KW_DIGEST_LEN], ski[KW_SKI_LEN], unknown[KW_DIGEST_LEN];
    ids_of(f->ec, digest, ski);
    memset(unknown, 0x11, sizeof(unknown));
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    assert_null(kw_keystore_find(f->store, &m)); /* no key id at all */
    m.digest = kw_bytes(digest, KW_DIGEST_LEN);
    const kw_ks_key_t *k = kw_keystore_find(f->store, &m);
    assert_non_null(k);
    assert_string_equal(k->name, "b-ec");
    m.digest = kw_bytes(unknown, KW_DIGEST_LEN); /* unknown digest, then the SKI */
    m.ski = kw_bytes(ski, KW_SKI_LEN);
    assert_ptr_equal(kw_keystore_find(f->store, &m), k);
    memset(&m, 0, sizeof(m));
    m.digest = kw_bytes(unknown, KW_DIGEST_LEN);
    assert_null(kw_keystore_find(f->store, &m));
}

static const kw_ks_key_t *by_sni(fixture_t *f, const char *name)
{
    return kw_keystore_find_sni(f->store, (const uint8_t *)name, strlen(name));
}

static void test_lookup_by_sni(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(by_sni(f, "rsa.test")->name, "a-rsa");
    assert_string_equal(by_sni(f, "rsa-cn.test")->name, "a-rsa"); /* subject CN */
    assert_string_equal(by_sni(f, "RSA.Test")->name, "a-rsa");
    assert_string_equal(by_sni(f, "ec.test")->name, "b-ec");
    assert_string_equal(by_sni(f, "www.wild.test")->name, "b-ec"); /* *.wild.test */
    assert_null(by_sni(f, "a.b.wild.test"));                       /* one label only */
    assert_null(by_sni(f, "wild.test"));
    assert_string_equal(by_sni(f, "shared.test")->name, "a-rsa"); /* first file wins */
    assert_null(by_sni(f, "mismatch.test"));                      /* refused key */
    assert_null(by_sni(f, "nothing.test"));
    assert_null(by_sni(f, ""));
    assert_null(kw_keystore_find_sni(f->store, (const uint8_t *)"rsa.test\0x", 10));
}

static void test_chain_is_der_of_crt(void **state)
{
    fixture_t *f = *state;
    unsigned char *der = NULL;
    int len = i2d_X509(f->rsa_cert, &der);
    assert_true(len > 0);
    const kw_ks_key_t *k = kw_keystore_get(f->store, 0);
    assert_int_equal(k->chain_der_len, (size_t)len);
    assert_memory_equal(k->chain_der, der, (size_t)len);
    OPENSSL_free(der);
}

static void test_refcount(void **state)
{
    fixture_t *f = *state;
    assert_ptr_equal(kw_keystore_ref(f->store), f->store);
    kw_keystore_unref(f->store);
    kw_keystore_ref(NULL);
    kw_keystore_unref(NULL);
    assert_int_equal(kw_keystore_count(f->store), 3); /* still alive */
}

static void test_missing_and_empty_dir(void **state)
{
    (void)state;
    kw_keystore_t *s = NULL;
    char err[256] = "";
    assert_int_equal(kw_keystore_load("/nonexistent/kw-keys", &s, NULL, err, sizeof(err)), KW_EIO);
    assert_null(s);
    assert_non_null(strstr(err, "/nonexistent/kw-keys"));
    assert_int_equal(kw_keystore_load(NULL, &s, NULL, err, sizeof(err)), 0);
    assert_int_equal(kw_keystore_count(s), 0);
    uint8_t zero[KW_DIGEST_LEN] = {0};
    assert_null(kw_keystore_find_digest(s, zero));
    assert_null(kw_keystore_find_ski(s, zero));
    assert_null(kw_keystore_find_sni(s, (const uint8_t *)"a.test", 6));
    kw_keystore_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_supported_refuses_rest),
        cmocka_unit_test(test_lookup_by_digest_and_ski),
        cmocka_unit_test(test_find_request),
        cmocka_unit_test(test_lookup_by_sni),
        cmocka_unit_test(test_chain_is_der_of_crt),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_missing_and_empty_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
