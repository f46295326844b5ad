/*
 * keyward-proxy session tickets, the parts that need no key server (src/proxy/proxy_tickets.c):
 * nginx's session-id context equals SHA-1("HTTP" || SHA-1(DER of the last certificate) || ... ||
 * SHA-1(DER of the first)), computed here independently, and depends on the certificates' order;
 * --session-context takes nginx, haproxy or a text of 1 to 32 bytes and refuses the rest; without
 * either option there is no tickets state at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "proxy_tickets.h"

static X509 *make_cert(const char *cn)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    EVP_PKEY_free(k);
    return x;
}

/* SHA-1 of a certificate's DER, by hand. */
static void der_sha1(X509 *x, uint8_t out[20])
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 0);
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(der, (size_t)len, out, &n, EVP_sha1(), NULL), 1);
    OPENSSL_free(der);
}

static void test_nginx_sid_ctx(void **state)
{
    (void)state;
    X509 *a = make_cert("a.example");
    X509 *b = make_cert("b.example");
    uint8_t ha[20];
    uint8_t hb[20];
    der_sha1(a, ha);
    der_sha1(b, hb);
    /* one certificate: SHA-1("HTTP" || SHA-1(a)) */
    uint8_t in[4 + 40];
    uint8_t want[20];
    unsigned int n = 0;
    memcpy(in, "HTTP", 4);
    memcpy(in + 4, ha, 20);
    assert_int_equal(EVP_Digest(in, 24, want, &n, EVP_sha1(), NULL), 1);
    uint8_t got[20];
    X509 *one[1] = {a};
    assert_int_equal(kw_px_nginx_sid_ctx(one, 1, got), 0);
    assert_memory_equal(got, want, 20);
    /* certs a, b in configuration order: nginx hashes the newest first, b then a */
    memcpy(in + 4, hb, 20);
    memcpy(in + 24, ha, 20);
    assert_int_equal(EVP_Digest(in, 44, want, &n, EVP_sha1(), NULL), 1);
    X509 *two[2] = {a, b};
    assert_int_equal(kw_px_nginx_sid_ctx(two, 2, got), 0);
    assert_memory_equal(got, want, 20);
    X509 *swapped[2] = {b, a};
    uint8_t other[20];
    assert_int_equal(kw_px_nginx_sid_ctx(swapped, 2, other), 0);
    assert_memory_not_equal(other, got, 20);
    X509_free(a);
    X509_free(b);
}

static void test_session_context_option(void **state)
{
    (void)state;
    kw_proxy_config_t cfg;
    kw_px_tickets_t *t = (kw_px_tickets_t *)&cfg; /* must be set to NULL */
    char err[300];
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(kw_px_tickets_new(&cfg, &t, err, sizeof(err)), 0);
    assert_null(t); /* neither option: nothing to set up */
    assert_int_equal(kw_px_tickets_setup_ctx(NULL, NULL, NULL), 0);
    static const char *const good[] = {"nginx", "haproxy", "x", "0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < 4; i++) {
        cfg.session_context = (char *)good[i];
        assert_int_equal(kw_px_tickets_new(&cfg, &t, err, sizeof(err)), 0);
        assert_non_null(t);
        kw_px_tickets_free(t);
    }
    static const char *const bad[] = {"", "0123456789abcdef0123456789abcdef!"};
    for (size_t i = 0; i < 2; i++) {
        cfg.session_context = (char *)bad[i];
        err[0] = '\0';
        assert_int_equal(kw_px_tickets_new(&cfg, &t, err, sizeof(err)), KW_ECONFIG);
        assert_null(t);
        assert_non_null(strstr(err, "--session-context"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nginx_sid_ctx),
        cmocka_unit_test(test_session_context_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
