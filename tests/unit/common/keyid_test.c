/*
 * Key identifier tests: the SKI we compute equals the Subject Key Identifier OpenSSL writes for
 * `subjectKeyIdentifier = hash` (through the X509 API and through the `openssl x509` command),
 * the SHA-256 key id equals a direct hash of the certificate's SubjectPublicKeyInfo, both match a
 * fixed Ed25519 vector (RFC 8032 test 1), and the hex / "sha256:" / "ski:" text forms parse.
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

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_hex.h"

/* A self-signed certificate for pkey with subjectKeyIdentifier = hash. */
static X509 *make_cert(EVP_PKEY *pkey)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"keyid test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, pkey), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    int is_ed = EVP_PKEY_is_a(pkey, "ED25519");
    assert_true(X509_sign(x, pkey, is_ed ? NULL : EVP_sha256()) > 0);
    return x;
}

/* The SKI as `openssl x509 -ext subjectKeyIdentifier` prints it, parsed as "ski:AB:CD:..". */
static void ski_from_openssl_cli(X509 *x, uint8_t ski[KW_SKI_LEN])
{
    char path[] = "/tmp/kw-keyid-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "openssl x509 -noout -ext subjectKeyIdentifier -in %s", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256];
    char hex[300] = "";
    while (fgets(line, sizeof(line), p) != NULL) {
        char *s = line;
        while (*s == ' ')
            s++;
        s[strcspn(s, "\r\n")] = '\0';
        if (strlen(s) == 3 * KW_SKI_LEN - 1 && s[2] == ':')
            snprintf(hex, sizeof(hex), "ski:%s", s);
    }
    assert_int_equal(pclose(p), 0);
    unlink(path);
    uint8_t out[KW_DIGEST_LEN];
    kw_keyid_kind_t kind;
    assert_int_equal(kw_keyid_parse(hex, &kind, out), 0);
    assert_int_equal(kind, KW_KEYID_SKI);
    memcpy(ski, out, KW_SKI_LEN);
}

static void check_key(EVP_PKEY *pkey)
{
    uint8_t digest[KW_DIGEST_LEN];
    uint8_t ski[KW_SKI_LEN];
    assert_non_null(pkey);
    assert_int_equal(kw_keyid_from_pkey(pkey, digest, ski), 0);
    X509 *x = make_cert(pkey);

    const ASN1_OCTET_STRING *ext_ski = X509_get0_subject_key_id(x);
    assert_non_null(ext_ski);
    assert_int_equal(ASN1_STRING_length(ext_ski), KW_SKI_LEN);
    assert_memory_equal(ASN1_STRING_get0_data(ext_ski), ski, KW_SKI_LEN);

    uint8_t cli_ski[KW_SKI_LEN];
    ski_from_openssl_cli(x, cli_ski);
    assert_memory_equal(cli_ski, ski, KW_SKI_LEN);

    /* SHA-256 over the certificate's own SubjectPublicKeyInfo */
    unsigned char *der = NULL;
    int der_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    assert_true(der_len > 0);
    uint8_t expect[KW_DIGEST_LEN];
    size_t expect_len = 0;
    assert_int_equal(EVP_Q_digest(NULL, "SHA256", NULL, der, (size_t)der_len, expect, &expect_len),
                     1);
    assert_int_equal(expect_len, KW_DIGEST_LEN);
    assert_memory_equal(expect, digest, KW_DIGEST_LEN);
    OPENSSL_free(der);

    /* the public half alone gives the same ids */
    EVP_PKEY *pub = X509_get0_pubkey(x);
    uint8_t digest2[KW_DIGEST_LEN];
    uint8_t ski2[KW_SKI_LEN];
    assert_int_equal(kw_keyid_from_pkey(pub, digest2, ski2), 0);
    assert_memory_equal(digest2, digest, KW_DIGEST_LEN);
    assert_memory_equal(ski2, ski, KW_SKI_LEN);
    X509_free(x);
    EVP_PKEY_free(pkey);
}

static void test_ski_rsa(void **state)
{
    (void)state;
    check_key(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
}

static void test_ski_ec(void **state)
{
    (void)state;
    check_key(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    check_key(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"));
    check_key(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"));
}

static void test_ski_ed25519(void **state)
{
    (void)state;
    check_key(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
}

/* RFC 8032 §7.1 test 1; expected values computed with Python's hashlib over the SPKI DER. */
static void test_fixed_vector(void **state)
{
    (void)state;
    uint8_t priv[32];
    assert_int_equal(
        kw_hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", priv, 32),
        0);
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, priv, sizeof(priv));
    assert_non_null(pkey);
    uint8_t digest[KW_DIGEST_LEN];
    uint8_t ski[KW_SKI_LEN];
    char hex[2 * KW_DIGEST_LEN + 1];
    assert_int_equal(kw_keyid_from_pkey(pkey, digest, ski), 0);
    kw_hex_encode(digest, KW_DIGEST_LEN, hex);
    assert_string_equal(hex, "06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9");
    kw_hex_encode(ski, KW_SKI_LEN, hex);
    assert_string_equal(hex, "5b27aa5589179770e47575b162a1ded97b8bfc6d");
    /* either output may be skipped */
    assert_int_equal(kw_keyid_from_pkey(pkey, NULL, ski), 0);
    assert_int_equal(kw_keyid_from_pkey(pkey, digest, NULL), 0);
    EVP_PKEY_free(pkey);
    assert_int_equal(kw_keyid_from_pkey(NULL, digest, ski), KW_EINVAL);
}

static void test_hex(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof(bytes) + 1];
    uint8_t back[sizeof(bytes)];
    kw_hex_encode(bytes, sizeof(bytes), hex);
    assert_string_equal(hex, "00017f80abff");
    assert_int_equal(kw_hex_decode(hex, back, sizeof(back)), 0);
    assert_memory_equal(back, bytes, sizeof(bytes));
    assert_int_equal(kw_hex_decode("00017F80ABFF", back, sizeof(back)), 0);
    assert_memory_equal(back, bytes, sizeof(bytes));
    assert_int_equal(kw_hex_decode("00017f80abf", back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode("00017f80abfff", back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode("00017f80abfg", back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode(" 0017f80abff", back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode(NULL, back, sizeof(back)), KW_EINVAL);
    kw_hex_encode(bytes, 0, hex);
    assert_string_equal(hex, "");
    assert_int_equal(kw_hex_decode("", back, 0), 0);
}

static void test_parse(void **state)
{
    (void)state;
    static const char d64[] = "06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9";
    static const char s40[] = "5b27aa5589179770e47575b162a1ded97b8bfc6d";
    char text[160];
    uint8_t out[KW_DIGEST_LEN];
    uint8_t expect[KW_DIGEST_LEN];
    kw_keyid_kind_t kind = 0;
    assert_int_equal(kw_hex_decode(d64, expect, KW_DIGEST_LEN), 0);
    static const char *sha_prefixes[] = {"sha256:", "sha256=", "SHA256:"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(text, sizeof(text), "%s%s", sha_prefixes[i], d64);
        memset(out, 0xEE, sizeof(out));
        assert_int_equal(kw_keyid_parse(text, &kind, out), 0);
        assert_int_equal(kind, KW_KEYID_SHA256);
        assert_memory_equal(out, expect, KW_DIGEST_LEN);
    }
    assert_int_equal(kw_hex_decode(s40, expect, KW_SKI_LEN), 0);
    static const char *ski_prefixes[] = {"ski:", "ski="};
    for (size_t i = 0; i < 2; i++) {
        snprintf(text, sizeof(text), "%s%s", ski_prefixes[i], s40);
        memset(out, 0xEE, sizeof(out));
        assert_int_equal(kw_keyid_parse(text, &kind, out), 0);
        assert_int_equal(kind, KW_KEYID_SKI);
        assert_memory_equal(out, expect, KW_SKI_LEN);
    }
    /* as `openssl x509 -text` prints it */
    assert_int_equal(
        kw_keyid_parse("ski:5B:27:AA:55:89:17:97:70:E4:75:75:B1:62:A1:DE:D9:7B:8B:FC:6D", &kind,
                       out),
        0);
    assert_memory_equal(out, expect, KW_SKI_LEN);

    static const char *bad[] = {
        "",
        "sha256:",
        "ski:",
        "5b27aa5589179770e47575b162a1ded97b8bfc6d",
        "sha1:5b27aa5589179770e47575b162a1ded97b8bfc6d",
        "ski:5b27aa5589179770e47575b162a1ded97b8bfc6",   /* 39 digits */
        "ski:5b27aa5589179770e47575b162a1ded97b8bfc6d0", /* 41 digits */
        "ski:06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9",
        "sha256:5b27aa5589179770e47575b162a1ded97b8bfc6d",
        "sha256:06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa",
        "sha256:06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792faZ",
        "sha256 06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9",
        "sha256:06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9 ",
        ("sha256:06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa906e3fd8fda29bb60"
         "ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kw_keyid_parse(bad[i], &kind, out), KW_EINVAL);
    assert_int_equal(kw_keyid_parse(NULL, &kind, out), KW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ski_rsa),     cmocka_unit_test(test_ski_ec),
        cmocka_unit_test(test_ski_ed25519), cmocka_unit_test(test_fixed_vector),
        cmocka_unit_test(test_hex),         cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
