/*
 * RFC 7512 URI parser tests: every attribute the key server uses, percent-decoding (id bytes,
 * labels with reserved characters), the query (module-path, pin-source, pin-value), and the
 * refusals (wrong scheme, unknown path attribute, duplicate, bad escape, type other than private).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "keystore/pkcs11/pkcs11_uri_internal.h"

static void test_full(void **state)
{
    (void)state;
    kw_ks_p11_uri_t u;
    char err[256] = "";
    int rc = kw_ks_p11_uri_parse("pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;"
                                 "serial=abc123;model=SoftHSM%20v2;object=site%3Bkey;id=%01%ff;"
                                 "type=private;slot-id=42;library-manufacturer=x"
                                 "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/p&"
                                 "foo=bar",
                                 &u, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(u.token, "My Token");
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.serial, "abc123");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.object, "site;key");
    assert_string_equal(u.type, "private");
    assert_true(u.has_id);
    assert_int_equal(u.id_len, 2);
    assert_int_equal(u.id[0], 0x01);
    assert_int_equal(u.id[1], 0xff);
    assert_true(u.has_slot_id);
    assert_int_equal(u.slot_id, 42);
    assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(u.pin_source, "file:/p");
    assert_null(u.pin_value);
    kw_ks_p11_uri_free(&u);
    assert_null(u.token);
}

static void test_minimal(void **state)
{
    (void)state;
    kw_ks_p11_uri_t u;
    char err[256] = "";
    assert_int_equal(kw_ks_p11_uri_parse("pkcs11:", &u, err, sizeof(err)), 0);
    assert_null(u.token);
    assert_false(u.has_id);
    kw_ks_p11_uri_free(&u);
    assert_int_equal(kw_ks_p11_uri_parse("pkcs11:token=t?pin-value=1234", &u, err, sizeof(err)), 0);
    assert_string_equal(u.token, "t");
    assert_string_equal(u.pin_value, "1234");
    kw_ks_p11_uri_free(&u);
}

static void expect_refused(const char *uri, const char *why)
{
    kw_ks_p11_uri_t u;
    char err[256] = "";
    assert_int_equal(kw_ks_p11_uri_parse(uri, &u, err, sizeof(err)), KW_EINVAL);
    if (strstr(err, why) == NULL)
        fail_msg("'%s': error '%s' does not mention '%s'", uri, err, why);
    assert_null(u.token);
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused("file:/x", "must start with");
    expect_refused("pkcs11:tokn=x", "unknown attribute 'tokn'");
    expect_refused("pkcs11:token=a;token=b", "given twice");
    expect_refused("pkcs11:token=a%2", "percent-encoding");
    expect_refused("pkcs11:token=a%zz", "percent-encoding");
    expect_refused("pkcs11:token=a%00b", "percent-encoding");
    expect_refused("pkcs11:type=cert", "only private keys");
    expect_refused("pkcs11:id=", "'id'");
    expect_refused("pkcs11:slot-id=x1", "slot-id");
    expect_refused("pkcs11:token", "NAME=VALUE");
    expect_refused("pkcs11:x-vendor=1", "unknown attribute");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
