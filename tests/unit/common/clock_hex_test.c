/*
 * kw_clock and kw_hex tests: the monotonic clock's units agree and never run back; hex encodes
 * lower-case, decodes either case and refuses wrong lengths and non-digits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "kw_clock.h"
#include "kw_hex.h"

static void test_clock(void **state)
{
    (void)state;
    uint64_t ns = kw_clock_ns();
    uint64_t us = kw_clock_us();
    uint64_t ms = kw_clock_ms();
    int64_t s = kw_clock_s();
    assert_true(us >= ns / 1000u);
    assert_true(ms >= ns / 1000000u);
    assert_true(ms - ns / 1000000u < 1000u); /* taken within a second of each other */
    assert_true((uint64_t)s <= ms / 1000u + 1);
    uint64_t later = kw_clock_ns();
    assert_true(later >= ns);
    struct timespec dl;
    kw_clock_deadline(&dl, 1500);
    uint64_t dl_ms = (uint64_t)dl.tv_sec * 1000u + (uint64_t)dl.tv_nsec / 1000000u;
    assert_true(dl_ms >= ms + 1500);
    assert_true(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000L);
}

static void test_hex(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {0x00, 0x9f, 0xA5, 0xff};
    char text[9];
    uint8_t back[4];
    kw_hex_encode(bytes, sizeof(bytes), text);
    assert_string_equal(text, "009fa5ff");
    assert_int_equal(kw_hex_decode("009FA5ff", back, sizeof(back)), 0);
    assert_memory_equal(back, bytes, sizeof(bytes));
    assert_int_equal(kw_hex_decode("009fa5f", back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode("009fa5fff0", back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode("009fa5fg", back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode(NULL, back, sizeof(back)), KW_EINVAL);
    assert_int_equal(kw_hex_decode("", NULL, 0), 0);
    assert_int_equal(kw_hex_digit('7'), 7);
    assert_int_equal(kw_hex_digit('c'), 12);
    assert_int_equal(kw_hex_digit('F'), 15);
    assert_int_equal(kw_hex_digit('g'), -1);
    assert_int_equal(kw_hex_digit('%'), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
