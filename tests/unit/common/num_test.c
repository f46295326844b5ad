/*
 * kw_num tests: decimal digits only, the whole string, the bounds, and no overflow wrapping
 * (what atoi and a bare strtoul get wrong).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "kw_num.h"

static void test_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(kw_parse_u64("0", 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(kw_parse_u64("10", 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(kw_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_int_equal(kw_parse_u64("18446744073709551616", UINT64_MAX, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64("99999999999999999999999", UINT64_MAX, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64("11", 10, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64("", 10, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64(NULL, 10, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64("-1", 10, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64("+1", 10, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64(" 1", 10, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64("1 ", 10, &v), KW_EINVAL);
    assert_int_equal(kw_parse_u64("1x", 10, &v), KW_EINVAL);
    assert_int_equal(v, 7); /* untouched by every refusal */
}

static void test_uint(void **state)
{
    (void)state;
    unsigned v = 0;
    assert_int_equal(kw_parse_uint("5", 1, 1000000, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(kw_parse_uint("0", 1, 1000000, &v), KW_EINVAL);
    assert_int_equal(kw_parse_uint("1000001", 1, 1000000, &v), KW_EINVAL);
    assert_int_equal(kw_parse_uint("4294967295", 0, UINT32_MAX, &v), 0);
    assert_int_equal(kw_parse_uint("4294967296", 0, UINT32_MAX, &v), KW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_uint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
