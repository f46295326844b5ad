/*
 * Bounded reader and writer tests: typed big-endian reads and writes, views into the buffer, and
 * every read or write that would cross the end fails without moving the cursor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "kw_reader.h"
#include "kw_writer.h"

static void test_reader_typed(void **state)
{
    (void)state;
    static const uint8_t buf[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xFF, 0xFE, 0xAA};
    kw_reader_t r;
    uint8_t u8 = 0;
    uint16_t u16 = 0;
    uint32_t u32 = 0;
    kw_reader_init(&r, buf, sizeof(buf));
    assert_int_equal(kw_reader_remaining(&r), 10);
    assert_int_equal(kw_reader_u8(&r, &u8), 0);
    assert_int_equal(u8, 0x01);
    assert_int_equal(kw_reader_u16(&r, &u16), 0);
    assert_int_equal(u16, 0x0203);
    assert_int_equal(kw_reader_u32(&r, &u32), 0);
    assert_int_equal(u32, 0x04050607);
    assert_int_equal(kw_reader_u16(&r, &u16), 0);
    assert_int_equal(u16, 0xFFFE);
    assert_int_equal(kw_reader_offset(&r), 9);
    assert_int_equal(kw_reader_remaining(&r), 1);
    /* too short: fails, cursor does not move, output untouched */
    u16 = 0x1234;
    assert_int_equal(kw_reader_u16(&r, &u16), KW_ESHORT);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(kw_reader_u32(&r, &u32), KW_ESHORT);
    assert_int_equal(kw_reader_remaining(&r), 1);
    assert_int_equal(kw_reader_u8(&r, &u8), 0);
    assert_int_equal(u8, 0xAA);
    assert_int_equal(kw_reader_u8(&r, &u8), KW_ESHORT);
    assert_int_equal(kw_reader_remaining(&r), 0);

    static const uint8_t hi[] = {0x80, 0x00, 0x00, 0x01};
    kw_reader_init(&r, hi, sizeof(hi));
    assert_int_equal(kw_reader_u32(&r, &u32), 0);
    assert_int_equal(u32, 0x80000001u);

    /* u64 round trip through the writer; a short read moves nothing */
    uint8_t buf8[9];
    kw_writer_t w;
    uint64_t u64 = 0;
    kw_writer_init(&w, buf8, 8);
    assert_int_equal(kw_writer_u64(&w, 0x8102030405060708ull), 0);
    assert_int_equal(kw_writer_u64(&w, 1), KW_ETOOBIG);
    assert_int_equal(buf8[0], 0x81);
    assert_int_equal(buf8[7], 0x08);
    kw_reader_init(&r, buf8, 8);
    assert_int_equal(kw_reader_u64(&r, &u64), 0);
    assert_true(u64 == 0x8102030405060708ull);
    kw_reader_init(&r, buf8, 7);
    assert_int_equal(kw_reader_u64(&r, &u64), KW_ESHORT);
    assert_int_equal(kw_reader_remaining(&r), 7);
}

static void test_reader_take(void **state)
{
    (void)state;
    static const uint8_t buf[] = "abcdef";
    kw_reader_t r;
    const uint8_t *v = NULL;
    kw_reader_init(&r, buf, 6);
    assert_int_equal(kw_reader_take(&r, 2, &v), 0);
    assert_ptr_equal(v, buf); /* a view, not a copy */
    assert_int_equal(kw_reader_take(&r, 0, &v), 0);
    assert_ptr_equal(v, buf + 2);
    assert_int_equal(kw_reader_take(&r, 5, &v), KW_ESHORT);
    assert_int_equal(kw_reader_take(&r, SIZE_MAX, &v), KW_ESHORT);
    assert_int_equal(kw_reader_skip(&r, SIZE_MAX), KW_ESHORT);
    assert_int_equal(kw_reader_offset(&r), 2);
    assert_int_equal(kw_reader_skip(&r, 1), 0);
    char out[4] = {0};
    assert_int_equal(kw_reader_copy(&r, out, 4), KW_ESHORT);
    assert_int_equal(kw_reader_copy(&r, out, 3), 0);
    assert_string_equal(out, "def");
    assert_int_equal(kw_reader_remaining(&r), 0);
    assert_int_equal(kw_reader_take(&r, 1, &v), KW_ESHORT);
    assert_int_equal(kw_reader_take(&r, 0, &v), 0);

    /* an empty reader, with or without a buffer */
    kw_reader_init(&r, NULL, 10);
    assert_int_equal(kw_reader_remaining(&r), 0);
    uint8_t u8;
    assert_int_equal(kw_reader_u8(&r, &u8), KW_ESHORT);
    assert_int_equal(kw_reader_take(&r, 0, &v), 0);
    assert_int_equal(kw_reader_copy(&r, out, 0), 0);
}

static void test_writer(void **state)
{
    (void)state;
    uint8_t buf[12];
    kw_writer_t w;
    memset(buf, 0xEE, sizeof(buf));
    kw_writer_init(&w, buf, 11);
    assert_int_equal(kw_writer_space(&w), 11);
    assert_int_equal(kw_writer_u8(&w, 0x01), 0);
    assert_int_equal(kw_writer_u16(&w, 0x0203), 0);
    assert_int_equal(kw_writer_u32(&w, 0x04050607), 0);
    assert_int_equal(kw_writer_bytes(&w, "xy", 2), 0);
    assert_int_equal(kw_writer_len(&w), 9);
    /* does not fit: fails, nothing written */
    assert_int_equal(kw_writer_u32(&w, 0xDEADBEEF), KW_ETOOBIG);
    assert_int_equal(kw_writer_bytes(&w, "abc", 3), KW_ETOOBIG);
    assert_int_equal(kw_writer_zeros(&w, 3), KW_ETOOBIG);
    assert_int_equal(kw_writer_bytes(&w, "abc", SIZE_MAX), KW_ETOOBIG);
    assert_int_equal(kw_writer_len(&w), 9);
    assert_int_equal(buf[9], 0xEE);
    assert_int_equal(kw_writer_zeros(&w, 1), 0);
    assert_int_equal(kw_writer_u8(&w, 0x0B), 0);
    assert_int_equal(kw_writer_u8(&w, 0x0C), KW_ETOOBIG);
    assert_int_equal(kw_writer_u16(&w, 0x0C0C), KW_ETOOBIG);
    assert_int_equal(kw_writer_bytes(&w, NULL, 0), 0);
    assert_int_equal(kw_writer_zeros(&w, 0), 0);
    static const uint8_t expect[] = {1, 2, 3, 4, 5, 6, 7, 'x', 'y', 0, 0x0B, 0xEE};
    assert_memory_equal(buf, expect, sizeof(expect));
    assert_int_equal(kw_writer_space(&w), 0);

    kw_writer_init(&w, NULL, 100);
    assert_int_equal(kw_writer_space(&w), 0);
    assert_int_equal(kw_writer_u8(&w, 1), KW_ETOOBIG);
}

static void test_reader_reads_writer(void **state)
{
    (void)state;
    uint8_t buf[7];
    kw_writer_t w;
    kw_reader_t r;
    kw_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(kw_writer_u8(&w, 0x9A), 0);
    assert_int_equal(kw_writer_u16(&w, 0xBEEF), 0);
    assert_int_equal(kw_writer_u32(&w, 0xCAFEF00D), 0);
    kw_reader_init(&r, buf, kw_writer_len(&w));
    uint8_t a;
    uint16_t b;
    uint32_t c;
    assert_int_equal(kw_reader_u8(&r, &a), 0);
    assert_int_equal(kw_reader_u16(&r, &b), 0);
    assert_int_equal(kw_reader_u32(&r, &c), 0);
    assert_int_equal(a, 0x9A);
    assert_int_equal(b, 0xBEEF);
    assert_int_equal(c, 0xCAFEF00D);
}

/* KW_GUARD / KW_GUARD_AS / KW_ENSURE return early with the right code. */
static int guarded(const uint8_t *buf, size_t len, int mode)
{
    kw_reader_t r;
    uint16_t v;
    kw_reader_init(&r, buf, len);
    if (mode == 0)
        KW_GUARD(kw_reader_u16(&r, &v));
    else
        KW_GUARD_AS(kw_reader_u16(&r, &v), KW_EFORMAT);
    KW_ENSURE(v != 0, KW_EINVAL);
    return 1;
}

static void test_guards(void **state)
{
    (void)state;
    static const uint8_t one[] = {0x00, 0x01};
    static const uint8_t zero[] = {0x00, 0x00};
    assert_int_equal(guarded(one, 2, 0), 1);
    assert_int_equal(guarded(one, 1, 0), KW_ESHORT);
    assert_int_equal(guarded(one, 1, 1), KW_EFORMAT);
    assert_int_equal(guarded(zero, 2, 1), KW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_typed), cmocka_unit_test(test_reader_take),
        cmocka_unit_test(test_writer),       cmocka_unit_test(test_reader_reads_writer),
        cmocka_unit_test(test_guards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
