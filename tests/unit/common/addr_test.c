/*
 * kw_addr tests: HOST:PORT and [v6]:port splitting with and without an optional port or host,
 * resolution of numeric addresses, and socket addresses back to text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>

#include "keyward/error.h"
#include "kw_addr.h"

static int split(const char *text, unsigned flags, kw_hostport_t *hp)
{
    const char *why = NULL;
    int rc = kw_addr_split(text, strlen(text), flags, 2407, hp, &why);
    if (rc != 0)
        assert_non_null(why);
    return rc;
}

static void test_split_required_port(void **state)
{
    (void)state;
    kw_hostport_t hp;
    assert_int_equal(split("example.com:443", 0, &hp), 0);
    assert_string_equal(hp.host, "example.com");
    assert_int_equal(hp.port, 443);
    assert_int_equal(split("[::1]:8443", 0, &hp), 0);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hp.port, 8443);
    assert_int_equal(split("::1:8443", 0, &hp), 0); /* the last colon splits */
    assert_string_equal(hp.host, "::1");
    assert_int_equal(split("host", 0, &hp), KW_EINVAL);
    assert_int_equal(split("host:", 0, &hp), KW_EINVAL);
    assert_int_equal(split(":443", 0, &hp), KW_EINVAL);
    assert_int_equal(split("[::1]", 0, &hp), KW_EINVAL);
    assert_int_equal(split("[::1:443", 0, &hp), KW_EINVAL);
    assert_int_equal(split("[::1]x443", 0, &hp), KW_EINVAL);
    assert_int_equal(split("h:0", 0, &hp), KW_EINVAL);
    assert_int_equal(split("h:65536", 0, &hp), KW_EINVAL);
    assert_int_equal(split("h:123456", 0, &hp), KW_EINVAL);
    assert_int_equal(split("h:12a", 0, &hp), KW_EINVAL);
    assert_int_equal(split("h:65535", 0, &hp), 0);
    assert_int_equal(hp.port, 65535);
    char longhost[300];
    memset(longhost, 'a', sizeof(longhost));
    memcpy(longhost + 290, ":1", 3);
    assert_int_equal(split(longhost, 0, &hp), KW_EINVAL);
}

static void test_split_optional(void **state)
{
    (void)state;
    kw_hostport_t hp;
    assert_int_equal(split("ks.example", KW_ADDR_PORT_OPTIONAL, &hp), 0);
    assert_string_equal(hp.host, "ks.example");
    assert_int_equal(hp.port, 2407);
    assert_int_equal(split("2001:db8::1", KW_ADDR_PORT_OPTIONAL, &hp), 0); /* bare IPv6 */
    assert_string_equal(hp.host, "2001:db8::1");
    assert_int_equal(hp.port, 2407);
    assert_int_equal(split("[2001:db8::1]", KW_ADDR_PORT_OPTIONAL, &hp), 0);
    assert_string_equal(hp.host, "2001:db8::1");
    assert_int_equal(split("[2001:db8::1]:9", KW_ADDR_PORT_OPTIONAL, &hp), 0);
    assert_int_equal(hp.port, 9);
    assert_int_equal(split("", KW_ADDR_PORT_OPTIONAL, &hp), KW_EINVAL);
    assert_int_equal(split(":1", KW_ADDR_HOST_OPTIONAL, &hp), 0);
    assert_string_equal(hp.host, "");
    assert_int_equal(split("*:1", KW_ADDR_HOST_OPTIONAL, &hp), 0);
    assert_string_equal(hp.host, "");
    /* a length, not a NUL, ends the text */
    const char *why = NULL;
    assert_int_equal(kw_addr_split("a:1,b:2", 3, 0, 0, &hp, &why), 0);
    assert_string_equal(hp.host, "a");
    assert_int_equal(hp.port, 1);
}

static void test_resolve_and_format(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char err[256];
    char text[KW_ADDR_STRLEN];
    assert_int_equal(kw_addr_resolve("127.0.0.1:8443", 0, &ss, &len, err, sizeof(err)), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    kw_addr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:8443");
    assert_int_equal(kw_addr_resolve("[::1]:2407", 0, &ss, &len, err, sizeof(err)), 0);
    kw_addr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "[::1]:2407");
    kw_addr_ip((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "::1");
    assert_int_equal(kw_addr_resolve("*:2407", 1, &ss, &len, err, sizeof(err)), 0);
    assert_int_equal(kw_addr_resolve("nope", 0, &ss, &len, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "HOST:PORT"));
    assert_int_equal(kw_addr_resolve(NULL, 0, &ss, &len, err, sizeof(err)), KW_ECONFIG);
    struct sockaddr other;
    memset(&other, 0, sizeof(other));
    other.sa_family = AF_UNIX;
    kw_addr_format(&other, text, sizeof(text));
    assert_string_equal(text, "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_required_port),
        cmocka_unit_test(test_split_optional),
        cmocka_unit_test(test_resolve_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
