/*
 * The client's server list (src/client/servers.c): "HOST[:PORT]" lists separated by commas or
 * blanks, IPv6 in brackets, the default port 2407; every malformed list refused with a sentence;
 * resolution drops duplicates, labels each address and says which name did not resolve.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kwc_servers.h"

static void test_srvlist_parse(void **state)
{
    (void)state;
    kw_srv_spec_t s[8];
    size_t n = 0;
    char err[200];
    assert_int_equal(kw_srvlist_parse("a.example:1,  b:2 [::1]:3\tc", s, 8, &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 4);
    assert_string_equal(s[0].host, "a.example");
    assert_int_equal(s[0].port, 1);
    assert_string_equal(s[1].host, "b");
    assert_int_equal(s[1].port, 2);
    assert_string_equal(s[2].host, "::1");
    assert_int_equal(s[2].port, 3);
    assert_string_equal(s[3].host, "c");
    assert_int_equal(s[3].port, 2407);
    assert_int_equal(kw_srvlist_parse("::1", s, 8, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_string_equal(s[0].host, "::1");
    assert_int_equal(s[0].port, 2407);
    assert_int_equal(kw_srvlist_parse("[fe80::1]", s, 8, &n, err, sizeof(err)), 0);
    assert_string_equal(s[0].host, "fe80::1");
}

static void test_srvlist_errors(void **state)
{
    (void)state;
    kw_srv_spec_t s[2];
    size_t n = 0;
    char err[200];
    const char *bad[] = {"",   " , ", "h:0",  "h:65536", "h:12x",
                         "h:", ":80", "[::1", "[::1]x",  "a:1,b:2,c:3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(kw_srvlist_parse(bad[i], s, 2, &n, err, sizeof(err)), KW_ECONFIG);
        assert_true(strlen(err) > 10);
    }
    kw_srvlist_parse("h:99999", s, 2, &n, err, sizeof(err));
    assert_non_null(strstr(err, "1 to 65535"));
}

static void test_srvlist_resolve(void **state)
{
    (void)state;
    kw_srv_spec_t s[3];
    size_t n = 0;
    char err[200];
    kw_srv_addr_t *a = NULL;
    size_t na = 0;
    assert_int_equal(kw_srvlist_parse("127.0.0.1:5,127.0.0.1:5,[::1]:6", s, 3, &n, err, 200), 0);
    assert_int_equal(kw_srvlist_resolve(s, n, &a, &na, err, sizeof(err)), 0);
    assert_int_equal(na, 2); /* the duplicate is dropped */
    assert_string_equal(a[0].label, "127.0.0.1:5");
    assert_true(a[0].host_is_ip);
    assert_string_equal(a[1].label, "[::1]:6");
    free(a);
    assert_int_equal(kw_srvlist_parse("no-such-host.invalid:1", s, 3, &n, err, 200), 0);
    assert_int_equal(kw_srvlist_resolve(s, n, &a, &na, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "no-such-host.invalid"));
    assert_true(kw_srv_host_is_ip("10.1.2.3"));
    assert_false(kw_srv_host_is_ip("localhost"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srvlist_parse),
        cmocka_unit_test(test_srvlist_errors),
        cmocka_unit_test(test_srvlist_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
