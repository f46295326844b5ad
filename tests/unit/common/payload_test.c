/*
 * Wire payload reader tests: the key list (whole ids only), the TLS-version item (exactly two
 * bytes), and certificate chains (DER after DER; a truncated or foreign tail is refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "kw_chain.h"
#include "kw_payload.h"

static void test_keylist(void **state)
{
    (void)state;
    uint8_t list[2 * KW_DIGEST_LEN + 5];
    memset(list, 0x11, KW_DIGEST_LEN);
    memset(list + KW_DIGEST_LEN, 0x22, KW_DIGEST_LEN);
    memset(list + 2 * KW_DIGEST_LEN, 0x33, 5);
    kw_reader_t r;
    const uint8_t *id;
    kw_reader_init(&r, list, sizeof(list));
    assert_int_equal(kw_keylist_next(&r, &id), 1);
    assert_int_equal(id[0], 0x11);
    assert_int_equal(kw_keylist_next(&r, &id), 1);
    assert_int_equal(id[0], 0x22);
    assert_int_equal(kw_keylist_next(&r, &id), 0); /* 5 bytes left: not an id */
    uint8_t want[KW_DIGEST_LEN];
    memset(want, 0x22, sizeof(want));
    assert_int_equal(kw_keylist_has(list, sizeof(list), want), 1);
    memset(want, 0x33, sizeof(want));
    assert_int_equal(kw_keylist_has(list, sizeof(list), want), 0);
    assert_int_equal(kw_keylist_has(NULL, 0, want), 0);
}

static void test_tls_version(void **state)
{
    (void)state;
    static const uint8_t v[] = {0x03, 0x03, 0x00};
    uint16_t version = 0;
    kw_bytes_t item = kw_bytes(v, 2);
    assert_int_equal(kw_item_tls_version(&item, &version), 0);
    assert_int_equal(version, 0x0303);
    item = kw_bytes(v, 3);
    assert_int_equal(kw_item_tls_version(&item, &version), KW_EFORMAT);
    item = kw_bytes(v, 1);
    assert_int_equal(kw_item_tls_version(&item, &version), KW_EFORMAT);
    memset(&item, 0, sizeof(item));
    assert_int_equal(kw_item_tls_version(&item, &version), KW_EFORMAT);
}

/* A self-signed EC certificate's DER (OPENSSL_malloc'ed). */
static int make_cert_der(const char *cn, unsigned char **der)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    assert_non_null(pkey);
    assert_non_null(x);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_int_equal(X509_set_pubkey(x, pkey), 1);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    *der = NULL;
    int len = i2d_X509(x, der);
    assert_true(len > 0);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return len;
}

static void test_chain(void **state)
{
    (void)state;
    unsigned char *a = NULL;
    unsigned char *b = NULL;
    size_t alen = (size_t)make_cert_der("leaf", &a);
    size_t blen = (size_t)make_cert_der("ca", &b);
    uint8_t *buf = malloc(alen + blen + 4);
    assert_non_null(buf);
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen);

    kw_reader_t r;
    X509 *x = NULL;
    const uint8_t *der = NULL;
    size_t der_len = 0;
    kw_reader_init(&r, buf, alen + blen);
    assert_int_equal(kw_chain_next(&r, &x, &der, &der_len), 1);
    assert_ptr_equal(der, buf);
    assert_int_equal(der_len, alen);
    X509_free(x);
    assert_int_equal(kw_chain_next(&r, NULL, &der, &der_len), 1);
    assert_int_equal(der_len, blen);
    assert_int_equal(kw_chain_next(&r, NULL, NULL, NULL), 0);

    STACK_OF(X509) *chain = kw_chain_parse(buf, alen + blen);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 2);
    sk_X509_pop_free(chain, X509_free);

    /* the second certificate cut short: refused, and the reader stays before it */
    kw_reader_init(&r, buf, alen + blen - 1);
    assert_int_equal(kw_chain_next(&r, NULL, NULL, NULL), 1);
    assert_int_equal(kw_chain_next(&r, NULL, NULL, NULL), KW_EFORMAT);
    assert_int_equal(kw_reader_offset(&r), alen);
    assert_null(kw_chain_parse(buf, alen + blen - 1));
    /* garbage after a whole certificate */
    memset(buf + alen, 0xFF, 4);
    assert_null(kw_chain_parse(buf, alen + 4));
    assert_null(kw_chain_parse(buf, 0));
    free(buf);
    OPENSSL_free(a);
    OPENSSL_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keylist),
        cmocka_unit_test(test_tls_version),
        cmocka_unit_test(test_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
