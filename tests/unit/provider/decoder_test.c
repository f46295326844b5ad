/*
 * The provider's key decoder (src/provider/decoder.c) in the built keyward.so, reached as a
 * server reads its key file (PEM_read_bio_PrivateKey_ex), load_check off (no key server): a stub
 * of an RSA, EC or Ed25519 key gives a keyward key of that type whose public half is the
 * original's; a stub whose key id is not the SHA-256 of its public key, a stub cut short at any
 * length, one with a trailing byte, or one whose public key is not a key are refused with a
 * reason; an ordinary private key PEM is not ours and loads through the default provider.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>

#include "prov_fixture.h"

static int setup(void **state)
{
    static prov_fixture_t f;
    setenv("KEYWARD_LOAD_CHECK", "off", 1);
    unsetenv("KEYWARD_SERVERS");
    if (prov_fixture_load(&f) != 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    if (*state != NULL)
        prov_fixture_unload(*state);
    return 0;
}

static void expect_refused(OSSL_LIB_CTX *libctx, const unsigned char *der, long len,
                           const char *reason)
{
    ERR_clear_error();
    EVP_PKEY *k = prov_fixture_read(libctx, KW_STUB_PEM_LABEL, der, len);
    if (k != NULL) {
        EVP_PKEY_free(k);
        fail_msg("a bad stub of %ld bytes was accepted", len);
    }
    int found = 0;
    const char *data = NULL;
    int flags = 0;
    while (ERR_get_error_all(NULL, NULL, NULL, &data, &flags) != 0) {
        if ((flags & ERR_TXT_STRING) != 0 && data != NULL && strstr(data, reason) != NULL)
            found = 1;
    }
    if (!found)
        fail_msg("a bad stub of %ld bytes was refused without '%s'", len, reason);
}

static void test_good_stubs(void **state)
{
    prov_fixture_t *f = *state;
    EVP_PKEY *orig[3] = {EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
                         EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
                         EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
    static const char *const types[3] = {"RSA", "EC", "ED25519"};
    for (int i = 0; i < 3; i++) {
        assert_non_null(orig[i]);
        long len = 0;
        unsigned char *der = prov_fixture_stub_der(orig[i], &len);
        assert_non_null(der);
        EVP_PKEY *k = prov_fixture_read(f->libctx, KW_STUB_PEM_LABEL, der, len);
        if (k == NULL) {
            ERR_print_errors_fp(stderr);
            fail_msg("the %s stub was not loaded", types[i]);
        }
        assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)), "keyward");
        assert_true(EVP_PKEY_is_a(k, types[i]));
        assert_int_equal(EVP_PKEY_get_bits(k), EVP_PKEY_get_bits(orig[i]));
        /* its public half is the original's: the same SubjectPublicKeyInfo */
        unsigned char *a = NULL;
        unsigned char *b = NULL;
        int alen = i2d_PUBKEY(orig[i], &a);
        int blen = i2d_PUBKEY(k, &b);
        assert_true(alen > 0);
        assert_int_equal(blen, alen);
        assert_memory_equal(a, b, (size_t)alen);
        OPENSSL_free(a);
        OPENSSL_free(b);
        EVP_PKEY_free(k);
        OPENSSL_free(der);
        EVP_PKEY_free(orig[i]);
    }
}

static void test_bad_stubs(void **state)
{
    prov_fixture_t *f = *state;
    EVP_PKEY *orig = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    long len = 0;
    unsigned char *der = prov_fixture_stub_der(orig, &len);
    assert_non_null(der);
    unsigned char *bad = OPENSSL_malloc((size_t)len + 1);
    assert_non_null(bad);
    /* the key id no longer matches the public key */
    kw_stub_t stub;
    assert_int_equal(kw_stub_decode(der, (size_t)len, &stub), 0);
    const unsigned char *id = memmem(der, (size_t)len, stub.digest, KW_DIGEST_LEN);
    assert_non_null(id);
    memcpy(bad, der, (size_t)len);
    bad[id - der] ^= 0x01;
    expect_refused(f->libctx, bad, len, "inconsistent");
    /* cut short at every length, and one byte too many */
    for (long n = 1; n < len; n++)
        expect_refused(f->libctx, der, n, "malformed");
    memcpy(bad, der, (size_t)len);
    bad[len] = 0;
    expect_refused(f->libctx, bad, len + 1, "malformed");
    OPENSSL_free(bad);
    OPENSSL_free(der);
    EVP_PKEY_free(orig);
}

/* An ordinary private key is not a stub: the provider lets it through to OpenSSL's decoder. */
static void test_not_ours(void **state)
{
    prov_fixture_t *f = *state;
    EVP_PKEY *orig = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, orig, NULL, NULL, 0, NULL, NULL), 1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, f->libctx, NULL);
    assert_non_null(k);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)), "default");
    assert_int_equal(EVP_PKEY_eq(k, orig), 1);
    EVP_PKEY_free(k);
    BIO_free(b);
    EVP_PKEY_free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_stubs),
        cmocka_unit_test(test_bad_stubs),
        cmocka_unit_test(test_not_ours),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
