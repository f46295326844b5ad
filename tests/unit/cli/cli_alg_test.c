/*
 * The CLI's signature algorithms (src/cli/cli_alg.c): every name maps to the KWP opcode of the
 * same scheme and digest, the payload is OpenSSL's digest of the input (Ed25519: the message
 * itself, refused when it does not fit), and a key of --key-cert of the wrong type is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>

#include "cli_common.h"

static void test_find(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t opcode;
        const char *md;
        const char *type;
    } want[] = {
        {"rsa-pkcs1-sha1", KW_OP_RSA_SIGN_SHA1, "SHA1", "RSA"},
        {"rsa-pkcs1-sha256", KW_OP_RSA_SIGN_SHA256, "SHA256", "RSA"},
        {"rsa-pkcs1-sha384", KW_OP_RSA_SIGN_SHA384, "SHA384", "RSA"},
        {"rsa-pkcs1-sha512", KW_OP_RSA_SIGN_SHA512, "SHA512", "RSA"},
        {"rsa-pss-sha256", KW_OP_RSA_PSS_SIGN_SHA256, "SHA256", "RSA"},
        {"rsa-pss-sha384", KW_OP_RSA_PSS_SIGN_SHA384, "SHA384", "RSA"},
        {"rsa-pss-sha512", KW_OP_RSA_PSS_SIGN_SHA512, "SHA512", "RSA"},
        {"ecdsa-sha256", KW_OP_ECDSA_SIGN_SHA256, "SHA256", "EC"},
        {"ecdsa-sha384", KW_OP_ECDSA_SIGN_SHA384, "SHA384", "EC"},
        {"ecdsa-sha512", KW_OP_ECDSA_SIGN_SHA512, "SHA512", "EC"},
        {"ed25519", KW_OP_ED25519_SIGN, NULL, "ED25519"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const kw_cli_alg_t *a = kw_cli_alg_find(want[i].name);
        assert_non_null(a);
        assert_string_equal(a->name, want[i].name);
        assert_int_equal(a->opcode, want[i].opcode);
        if (want[i].md == NULL)
            assert_null(a->md);
        else
            assert_string_equal(a->md, want[i].md);
        assert_string_equal(a->key_type, want[i].type);
    }
    assert_null(kw_cli_alg_find(NULL));
    assert_null(kw_cli_alg_find(""));
    assert_null(kw_cli_alg_find("ecdsa-sha1"));
    assert_null(kw_cli_alg_find("ECDSA-SHA256")); /* names are exact */
    assert_non_null(strstr(kw_cli_alg_names(), "ed25519"));
}

static void test_payload_digest(void **state)
{
    (void)state;
    static const uint8_t msg[] = "keyward signs digests";
    static const char *const names[] = {"rsa-pkcs1-sha1", "rsa-pss-sha384", "ecdsa-sha512"};
    for (size_t i = 0; i < 3; i++) {
        const kw_cli_alg_t *a = kw_cli_alg_find(names[i]);
        uint8_t out[EVP_MAX_MD_SIZE];
        uint8_t want[EVP_MAX_MD_SIZE];
        size_t n = 0;
        unsigned int wn = 0;
        assert_int_equal(kw_cli_alg_payload(a, msg, sizeof(msg) - 1, out, sizeof(out), &n), 0);
        assert_int_equal(
            EVP_Digest(msg, sizeof(msg) - 1, want, &wn, EVP_get_digestbyname(a->md), NULL), 1);
        assert_int_equal(n, wn);
        assert_memory_equal(out, want, n);
        /* a buffer too small for the digest: refused, not truncated */
        assert_int_equal(kw_cli_alg_payload(a, msg, sizeof(msg) - 1, out, wn - 1, &n), -1);
    }
}

static void test_payload_ed25519(void **state)
{
    (void)state;
    const kw_cli_alg_t *a = kw_cli_alg_find("ed25519");
    uint8_t msg[100];
    uint8_t out[100];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    assert_int_equal(kw_cli_alg_payload(a, msg, sizeof(msg), out, sizeof(out), &n), 0);
    assert_int_equal(n, sizeof(msg));
    assert_memory_equal(out, msg, n);
    assert_int_equal(kw_cli_alg_payload(a, msg, sizeof(msg), out, sizeof(msg) - 1, &n), -1);
}

static EVP_PKEY *gen(const char *type, const char *arg)
{
    EVP_PKEY *k = NULL;
    if (arg == NULL)
        k = EVP_PKEY_Q_keygen(NULL, NULL, type);
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, type, arg);
    assert_non_null(k);
    return k;
}

static void test_check_key(void **state)
{
    (void)state;
    kw_cli_key_t k;
    memset(&k, 0, sizeof(k));
    snprintf(k.label, sizeof(k.label), "site.crt");
    /* --key-id: the type is not known here, the key server decides */
    assert_int_equal(kw_cli_alg_check_key(kw_cli_alg_find("ed25519"), &k), 0);
    k.pub = gen("EC", "P-256");
    assert_int_equal(kw_cli_alg_check_key(kw_cli_alg_find("ecdsa-sha384"), &k), 0);
    assert_int_equal(kw_cli_alg_check_key(kw_cli_alg_find("rsa-pss-sha256"), &k), -1);
    assert_int_equal(kw_cli_alg_check_key(kw_cli_alg_find("ed25519"), &k), -1);
    EVP_PKEY_free(k.pub);
    k.pub = gen("ED25519", NULL);
    assert_int_equal(kw_cli_alg_check_key(kw_cli_alg_find("ed25519"), &k), 0);
    assert_int_equal(kw_cli_alg_check_key(kw_cli_alg_find("ecdsa-sha256"), &k), -1);
    EVP_PKEY_free(k.pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_payload_digest),
        cmocka_unit_test(test_payload_ed25519),
        cmocka_unit_test(test_check_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
