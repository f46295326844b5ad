/*
 * KWP constants: pins every constant of protocol.h and error.h, the names the codec gives
 * opcodes, tags and errors, and which opcodes use a key (split from protocol_test.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "keyward/protocol.h"

#include "protocol_opcodes.h"

#define N_OPCODES (sizeof(kAllOpcodes) / sizeof(kAllOpcodes[0]))

/* ---- helpers ---- */

static void test_constants(void **state)
{
    (void)state;
    assert_int_equal(KW_VERSION_MAJOR, 1);
    assert_int_equal(KW_VERSION_MINOR, 0);
    assert_int_equal(KW_HEADER_LEN, 8);
    assert_int_equal(KW_MAX_BODY, 65535);
    assert_int_equal(KW_MAX_FRAME, 65543);
    assert_int_equal(KW_ITEM_HDR_LEN, 3);
    assert_int_equal(KW_GOKEYLESS_PAD, 1024);
    assert_int_equal(KW_DIGEST_LEN, 32);
    assert_int_equal(KW_SKI_LEN, 20);
    assert_int_equal(KW_TLS_RANDOM_LEN, 32);
    assert_int_equal(KW_TLS_PMS_LEN, 48);
    assert_int_equal(KW_TLS_MASTER_LEN, 48);
    assert_int_equal(KW_DEFAULT_PORT, 2407);
    assert_int_equal(KW_DEFAULT_MAX_HOPS, 4);

    assert_int_equal(KW_TAG_DIGEST, 0x01);
    assert_int_equal(KW_TAG_SNI, 0x02);
    assert_int_equal(KW_TAG_CLIENT_IP, 0x03);
    assert_int_equal(KW_TAG_SKI, 0x04);
    assert_int_equal(KW_TAG_SERVER_IP, 0x05);
    assert_int_equal(KW_TAG_CERT_ID, 0x06);
    assert_int_equal(KW_TAG_OPCODE, 0x11);
    assert_int_equal(KW_TAG_PAYLOAD, 0x12);
    assert_int_equal(KW_TAG_CUSTOM_FUNC, 0x13);
    assert_int_equal(KW_TAG_EXTRA, 0x14);
    assert_int_equal(KW_TAG_PADDING, 0x20);
    assert_int_equal(KW_TAG_CLIENT_RANDOM, 0xC0);
    assert_int_equal(KW_TAG_SERVER_RANDOM, 0xC1);
    assert_int_equal(KW_TAG_SESSION_HASH, 0xC2);
    assert_int_equal(KW_TAG_PRF_DIGEST, 0xC3);
    assert_int_equal(KW_TAG_HOPS, 0xC4);

    assert_int_equal(KW_OP_RSA_DECRYPT, 0x01);
    assert_int_equal(KW_OP_RSA_SIGN_MD5SHA1, 0x02);
    assert_int_equal(KW_OP_RSA_SIGN_SHA1, 0x03);
    assert_int_equal(KW_OP_RSA_SIGN_SHA224, 0x04);
    assert_int_equal(KW_OP_RSA_SIGN_SHA256, 0x05);
    assert_int_equal(KW_OP_RSA_SIGN_SHA384, 0x06);
    assert_int_equal(KW_OP_RSA_SIGN_SHA512, 0x07);
    assert_int_equal(KW_OP_RSA_DECRYPT_RAW, 0x08);
    assert_int_equal(KW_OP_ECDSA_SIGN_MD5SHA1, 0x12);
    assert_int_equal(KW_OP_ECDSA_SIGN_SHA1, 0x13);
    assert_int_equal(KW_OP_ECDSA_SIGN_SHA224, 0x14);
    assert_int_equal(KW_OP_ECDSA_SIGN_SHA256, 0x15);
    assert_int_equal(KW_OP_ECDSA_SIGN_SHA384, 0x16);
    assert_int_equal(KW_OP_ECDSA_SIGN_SHA512, 0x17);
    assert_int_equal(KW_OP_ED25519_SIGN, 0x18);
    assert_int_equal(KW_OP_RSA_PSS_SIGN_SHA256, 0x35);
    assert_int_equal(KW_OP_RSA_PSS_SIGN_SHA384, 0x36);
    assert_int_equal(KW_OP_RSA_PSS_SIGN_SHA512, 0x37);
    assert_int_equal(KW_OP_TLS_RSA_DECRYPT, 0xA0);
    assert_int_equal(KW_OP_TLS12_MASTER, 0xA1);
    assert_int_equal(KW_OP_GET_CERT_CHAIN, 0xA2);
    assert_int_equal(KW_OP_LIST_KEYS, 0xA3);
    assert_int_equal(KW_OP_TICKET_KEYS, 0xA4);
    assert_int_equal(KW_TICKET_KEY_LEN, 80);
    assert_int_equal(KW_TICKET_NAME_LEN + KW_TICKET_HMAC_LEN + KW_TICKET_AES_LEN, 80);
    assert_int_equal(KW_TICKET_EPOCHS, 3);
    assert_int_equal(KW_TICKET_KEYS_VERSION, 1);
    assert_int_equal(KW_TICKET_KEYS_LEN, 326);
    assert_int_equal(KW_OP_RESPONSE, 0xF0);
    assert_int_equal(KW_OP_PING, 0xF1);
    assert_int_equal(KW_OP_PONG, 0xF2);
    assert_int_equal(KW_OP_ERROR, 0xFF);

    assert_int_equal(KW_ERR_NONE, 0x00);
    assert_int_equal(KW_ERR_CRYPTO, 0x01);
    assert_int_equal(KW_ERR_KEY_NOT_FOUND, 0x02);
    assert_int_equal(KW_ERR_READ, 0x03);
    assert_int_equal(KW_ERR_VERSION_MISMATCH, 0x04);
    assert_int_equal(KW_ERR_BAD_OPCODE, 0x05);
    assert_int_equal(KW_ERR_UNEXPECTED_OPCODE, 0x06);
    assert_int_equal(KW_ERR_FORMAT, 0x07);
    assert_int_equal(KW_ERR_INTERNAL, 0x08);
    assert_int_equal(KW_ERR_CERT_NOT_FOUND, 0x09);
    assert_int_equal(KW_ERR_EXPIRED, 0x0A);
    assert_int_equal(KW_ERR_NOT_AUTHORISED, 0x40);
    assert_int_equal(KW_ERR_RATE_LIMITED, 0x41);
    assert_int_equal(KW_ERR_UPSTREAM_UNAVAILABLE, 0x42);

    assert_int_equal(KW_PRF_SHA256, 0x01);
    assert_int_equal(KW_PRF_SHA384, 0x02);
}

static void test_error_constants(void **state)
{
    (void)state;
    assert_int_equal(KW_OK, 0);
    assert_int_equal(KW_EINVAL, -1);
    assert_int_equal(KW_ENOMEM, -2);
    assert_int_equal(KW_ESHORT, -3);
    assert_int_equal(KW_EFORMAT, -4);
    assert_int_equal(KW_EVERSION, -5);
    assert_int_equal(KW_ETOOBIG, -6);
    assert_int_equal(KW_ETIMEDOUT, -7);
    assert_int_equal(KW_ECONN, -8);
    assert_int_equal(KW_ETLS, -9);
    assert_int_equal(KW_EREMOTE, -10);
    assert_int_equal(KW_ENOKEY, -11);
    assert_int_equal(KW_ECRYPTO, -12);
    assert_int_equal(KW_EIO, -13);
    assert_int_equal(KW_ECLOSED, -14);
    assert_int_equal(KW_ECONFIG, -15);
    assert_int_equal(KW_EBUSY, -16);
    assert_int_equal(KW_EDENIED, -17);
    assert_int_equal(KW_ENOFD, -18);
    assert_int_equal(KW_ETHREAD, -19);
    /* every code has its own sentence; unknown codes get a generic one */
    for (int a = KW_ETHREAD; a <= KW_OK; a++) {
        assert_non_null(kw_strerror(a));
        assert_true(strlen(kw_strerror(a)) > 5);
        assert_string_not_equal(kw_strerror(a), kw_strerror(-1000));
        for (int b = a + 1; b <= KW_OK; b++)
            assert_string_not_equal(kw_strerror(a), kw_strerror(b));
    }
    assert_string_equal(kw_strerror(12345), kw_strerror(-1000));
}

static void test_names(void **state)
{
    (void)state;
    static const struct {
        uint8_t op;
        const char *name;
    } names[] = {
        {KW_OP_RSA_DECRYPT, "rsa-decrypt"},
        {KW_OP_RSA_DECRYPT_RAW, "rsa-decrypt-raw"},
        {KW_OP_RSA_SIGN_MD5SHA1, "rsa-pkcs1-md5sha1"},
        {KW_OP_RSA_SIGN_SHA1, "rsa-pkcs1-sha1"},
        {KW_OP_RSA_SIGN_SHA224, "rsa-pkcs1-sha224"},
        {KW_OP_RSA_SIGN_SHA256, "rsa-pkcs1-sha256"},
        {KW_OP_RSA_SIGN_SHA384, "rsa-pkcs1-sha384"},
        {KW_OP_RSA_SIGN_SHA512, "rsa-pkcs1-sha512"},
        {KW_OP_ECDSA_SIGN_MD5SHA1, "ecdsa-md5sha1"},
        {KW_OP_ECDSA_SIGN_SHA1, "ecdsa-sha1"},
        {KW_OP_ECDSA_SIGN_SHA224, "ecdsa-sha224"},
        {KW_OP_ECDSA_SIGN_SHA256, "ecdsa-sha256"},
        {KW_OP_ECDSA_SIGN_SHA384, "ecdsa-sha384"},
        {KW_OP_ECDSA_SIGN_SHA512, "ecdsa-sha512"},
        {KW_OP_ED25519_SIGN, "ed25519"},
        {KW_OP_RSA_PSS_SIGN_SHA256, "rsa-pss-sha256"},
        {KW_OP_RSA_PSS_SIGN_SHA384, "rsa-pss-sha384"},
        {KW_OP_RSA_PSS_SIGN_SHA512, "rsa-pss-sha512"},
        {KW_OP_TLS_RSA_DECRYPT, "tls-rsa-decrypt"},
        {KW_OP_TLS12_MASTER, "tls12-master-secret"},
        {KW_OP_GET_CERT_CHAIN, "get-cert-chain"},
        {KW_OP_LIST_KEYS, "list-keys"},
        {KW_OP_TICKET_KEYS, "ticket-keys"},
        {KW_OP_RESPONSE, "response"},
        {KW_OP_PING, "ping"},
        {KW_OP_PONG, "pong"},
        {KW_OP_ERROR, "error"},
    };
    assert_int_equal(sizeof(names) / sizeof(names[0]), N_OPCODES);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(kw_opcode_name(names[i].op), names[i].name);
    assert_string_equal(kw_opcode_name(0x00), "unknown");
    assert_string_equal(kw_opcode_name(0x09), "unknown");
    assert_string_equal(kw_opcode_name(0xA5), "unknown");

    static const char *errs[] = {"none",
                                 "crypto",
                                 "key-not-found",
                                 "read",
                                 "version-mismatch",
                                 "bad-opcode",
                                 "unexpected-opcode",
                                 "format",
                                 "internal",
                                 "cert-not-found",
                                 "expired"};
    for (uint8_t e = 0; e <= KW_ERR_EXPIRED; e++)
        assert_string_equal(kw_remote_error_name(e), errs[e]);
    assert_string_equal(kw_remote_error_name(KW_ERR_NOT_AUTHORISED), "not-authorised");
    assert_string_equal(kw_remote_error_name(KW_ERR_RATE_LIMITED), "rate-limited");
    assert_string_equal(kw_remote_error_name(KW_ERR_UPSTREAM_UNAVAILABLE), "upstream-unavailable");
    assert_string_equal(kw_remote_error_name(0x0B), "unknown");
    assert_string_equal(kw_remote_error_name(0x43), "unknown");
}

static void test_uses_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OPCODES; i++) {
        uint8_t op = kAllOpcodes[i];
        int expect = op < 0xA2; /* every sign/decrypt opcode and 0xA0, 0xA1 */
        assert_int_equal(kw_opcode_uses_key(op), expect);
    }
    assert_int_equal(kw_opcode_uses_key(0x00), 0);
    assert_int_equal(kw_opcode_uses_key(0x09), 0);
    assert_int_equal(kw_opcode_uses_key(0x19), 0);
}

/* ---- worked example and round trips ---- */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_error_constants),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_uses_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
