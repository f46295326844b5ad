/*
 * SNI certificate choice (kw_proxy_sni_pick) over certificates made here: exact names win over
 * wildcards whatever their order, a wildcard covers exactly one label, CN counts only without
 * DNS SANs, matching ignores case and a trailing dot, and unknown names find nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "proxy_tls.h"

static EVP_PKEY *g_key;

static X509 *make_cert(const char *cn, const char *san)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, g_key), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    if (san != NULL) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, g_key, EVP_sha256()) > 0);
    return x;
}

static int setup(void **state)
{
    g_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return g_key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(g_key);
    return 0;
}

static void free_all(X509 **certs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        X509_free(certs[i]);
    }
}

static void test_exact_beats_wildcard(void **state)
{
    X509 *c[3] = {
        make_cert("default", "DNS:localhost"),
        make_cert("wild", "DNS:*.example.com"),
        make_cert("www", "DNS:www.example.com,DNS:example.com"),
    };
    assert_int_equal(kw_proxy_sni_pick(c, 3, "www.example.com"), 2);
    assert_int_equal(kw_proxy_sni_pick(c, 3, "example.com"), 2);
    assert_int_equal(kw_proxy_sni_pick(c, 3, "api.example.com"), 1);
    assert_int_equal(kw_proxy_sni_pick(c, 3, "localhost"), 0);
    free_all(c, 3);
}

static void test_wildcard_one_label(void **state)
{
    X509 *c[1] = {make_cert("wild", "DNS:*.example.com")};
    assert_int_equal(kw_proxy_sni_pick(c, 1, "a.example.com"), 0);
    assert_int_equal(kw_proxy_sni_pick(c, 1, "a.b.example.com"), -1);
    assert_int_equal(kw_proxy_sni_pick(c, 1, "example.com"), -1);
    assert_int_equal(kw_proxy_sni_pick(c, 1, "aexample.com"), -1);
    free_all(c, 1);
}

static void test_cn_only_without_san(void **state)
{
    X509 *c[2] = {
        make_cert("cn-only.example", NULL),
        make_cert("ignored.example", "DNS:san.example"),
    };
    assert_int_equal(kw_proxy_sni_pick(c, 2, "cn-only.example"), 0);
    assert_int_equal(kw_proxy_sni_pick(c, 2, "san.example"), 1);
    assert_int_equal(kw_proxy_sni_pick(c, 2, "ignored.example"), -1);
    free_all(c, 2);
}

static void test_case_dot_and_misses(void **state)
{
    X509 *c[2] = {
        make_cert("a", "DNS:first.example"),
        make_cert("b", "DNS:Second.Example"),
    };
    assert_int_equal(kw_proxy_sni_pick(c, 2, "SECOND.example"), 1);
    assert_int_equal(kw_proxy_sni_pick(c, 2, "first.example."), 0);
    assert_int_equal(kw_proxy_sni_pick(c, 2, "third.example"), -1);
    assert_int_equal(kw_proxy_sni_pick(c, 2, ""), -1);
    assert_int_equal(kw_proxy_sni_pick(c, 2, NULL), -1);
    assert_int_equal(kw_proxy_sni_pick(c, 0, "first.example"), -1);
    free_all(c, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_beats_wildcard),
        cmocka_unit_test(test_wildcard_one_label),
        cmocka_unit_test(test_cn_only_without_san),
        cmocka_unit_test(test_case_dot_and_misses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
