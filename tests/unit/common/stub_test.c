/*
 * Key stub codec (src/common/stub.c): round trip for RSA, EC and Ed25519 public keys, the PEM
 * form, and refusal of every malformed variant: wrong format string or version, short key id,
 * truncation at every length, trailing bytes, a second element after the SPKI, lengths that run
 * past the end, and non-minimal length encodings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "keyward/stub.h"

static EVP_PKEY *gen(const char *alg, const char *curve)
{
    EVP_PKEY *pkey = curve != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, alg, curve)
                                   : EVP_PKEY_Q_keygen(NULL, NULL, alg, (size_t)2048);
    assert_non_null(pkey);
    return pkey;
}

/* Encodes pkey's stub into buf; returns its length. */
static size_t encode(EVP_PKEY *pkey, uint8_t *buf, size_t cap, uint8_t digest[KW_DIGEST_LEN])
{
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(pkey, &spki);
    size_t len = 0;
    assert_true(spki_len > 0);
    assert_int_equal(kw_keyid_from_pkey(pkey, digest, NULL), 0);
    assert_int_equal(kw_stub_encode(digest, spki, (size_t)spki_len, buf, cap, &len), 0);
    OPENSSL_free(spki);
    return len;
}

static void round_trip(EVP_PKEY *pkey)
{
    uint8_t buf[2048];
    uint8_t digest[KW_DIGEST_LEN];
    kw_stub_t stub;
    size_t len = encode(pkey, buf, sizeof(buf), digest);
    assert_int_equal(kw_stub_decode(buf, len, &stub), 0);
    assert_memory_equal(stub.digest, digest, KW_DIGEST_LEN);
    const unsigned char *p = stub.spki;
    EVP_PKEY *back = d2i_PUBKEY(NULL, &p, (long)stub.spki_len);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(back, pkey), 1);
    EVP_PKEY_free(back);
    /* every truncation, and any trailing byte, is refused */
    for (size_t n = 0; n < len; n++)
        assert_int_equal(kw_stub_decode(buf, n, &stub), KW_EFORMAT);
    buf[len] = 0;
    assert_int_equal(kw_stub_decode(buf, len + 1, &stub), KW_EFORMAT);
    EVP_PKEY_free(pkey);
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip(gen("RSA", NULL));
    round_trip(gen("EC", "P-256"));
    round_trip(gen("EC", "P-521"));
    round_trip(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
}

static void test_encode_errors(void **state)
{
    uint8_t digest[KW_DIGEST_LEN] = {0};
    uint8_t spki[4] = {0x30, 0x02, 0x05, 0x00};
    uint8_t out[64];
    size_t len = 0;
    (void)state;
    assert_int_equal(kw_stub_encode(digest, spki, sizeof(spki), out, 10, &len), KW_ETOOBIG);
    assert_true(len > 10);
    assert_int_equal(kw_stub_encode(digest, spki, sizeof(spki), out, sizeof(out), &len), 0);
    spki[0] = 0x04; /* not a SEQUENCE */
    assert_int_equal(kw_stub_encode(digest, spki, sizeof(spki), out, sizeof(out), &len), KW_EINVAL);
    assert_int_equal(kw_stub_encode(NULL, spki, sizeof(spki), out, sizeof(out), &len), KW_EINVAL);
}

/* A small valid stub around a 4-byte "SPKI", to corrupt field by field. */
static size_t tiny(uint8_t *out)
{
    uint8_t digest[KW_DIGEST_LEN];
    uint8_t spki[4] = {0x30, 0x02, 0x05, 0x00};
    size_t len = 0;
    memset(digest, 0xab, sizeof(digest));
    assert_int_equal(kw_stub_encode(digest, spki, sizeof(spki), out, 128, &len), 0);
    return len;
}

static void test_decode_rejects(void **state)
{
    uint8_t buf[128];
    kw_stub_t stub;
    size_t len = tiny(buf);
    (void)state;
    assert_int_equal(kw_stub_decode(buf, len, &stub), 0);
    assert_int_equal(stub.spki_len, 4);
    /* layout: 30 L | 0c 10 "keyward-key-stub" | 02 01 01 | 04 20 id(32) | 30 02 05 00 */
    static const struct {
        size_t off;
        uint8_t val;
    } bad[] = {
        {0, 0x31},  /* outer tag */
        {1, 0x7f},  /* outer length past the end */
        {2, 0x13},  /* format tag */
        {4, 'K'},   /* format string */
        {20, 0x04}, /* version tag */
        {22, 0x02}, /* version value */
        {24, 0x1f}, /* key id length */
        {57, 0x31}, /* SPKI tag */
        {58, 0x03}, /* SPKI length past the end */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t copy[128];
        memcpy(copy, buf, len);
        copy[bad[i].off] = bad[i].val;
        assert_int_equal(kw_stub_decode(copy, len, &stub), KW_EFORMAT);
    }
    /* a non-minimal long-form length (0x81 0x3d for 61) */
    uint8_t longform[129];
    longform[0] = 0x30;
    longform[1] = 0x81;
    memcpy(longform + 2, buf + 1, len - 1);
    longform[2] = (uint8_t)(len - 2);
    assert_int_equal(kw_stub_decode(longform, len + 1, &stub), KW_EFORMAT);
    assert_int_equal(kw_stub_decode(NULL, 0, &stub), KW_EFORMAT);
}

static void test_pem(void **state)
{
    EVP_PKEY *pkey = gen("EC", "P-256");
    BIO *mem = BIO_new(BIO_s_mem());
    char *name = NULL;
    char *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    kw_stub_t stub;
    uint8_t digest[KW_DIGEST_LEN];
    (void)state;
    assert_int_equal(kw_stub_write_pem(mem, pkey), 0);
    assert_true(PEM_read_bio(mem, &name, &header, &der, &der_len) > 0);
    assert_string_equal(name, KW_STUB_PEM_LABEL);
    assert_int_equal(kw_stub_decode(der, (size_t)der_len, &stub), 0);
    assert_int_equal(kw_keyid_from_pkey(pkey, digest, NULL), 0);
    assert_memory_equal(stub.digest, digest, KW_DIGEST_LEN);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(mem);
    EVP_PKEY_free(pkey);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_pem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
