/*
 * 0xA4 reply codec tests (src/common/ticket_keys.c): a set round-trips byte for byte, the wire
 * layout is pinned against a hand-made frame, and every malformed payload (short, long, wrong
 * version or count, rotation 0, epochs out of order, times that do not follow) is refused with
 * KW_EFORMAT and a zeroed result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "keyward/protocol.h"

static void make_set(kw_ticket_keys_t *set, uint64_t e, uint32_t n)
{
    memset(set, 0, sizeof(*set));
    set->rotation_s = n;
    set->server_time = e * n + 1;
    for (size_t i = 0; i < KW_TICKET_EPOCHS; i++) {
        kw_ticket_key_t *k = &set->keys[i];
        k->epoch = e - 1 + i;
        k->not_before = k->epoch * n;
        k->not_after = (k->epoch + 1) * n;
        memset(k->key, (int)(0x10 + i), sizeof(k->key));
    }
}

static void test_roundtrip(void **state)
{
    (void)state;
    kw_ticket_keys_t in;
    kw_ticket_keys_t out;
    uint8_t buf[KW_TICKET_KEYS_LEN];
    size_t len = 0;
    make_set(&in, 492000, 3600);
    assert_int_equal(kw_ticket_keys_encode(&in, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, KW_TICKET_KEYS_LEN);
    assert_int_equal(kw_ticket_keys_decode(buf, len, &out), 0);
    assert_memory_equal(&in, &out, sizeof(in));
}

static void test_layout(void **state)
{
    (void)state;
    kw_ticket_keys_t in;
    uint8_t buf[KW_TICKET_KEYS_LEN];
    size_t len = 0;
    make_set(&in, 2, 4); /* epochs 1, 2, 3; server time 9 */
    assert_int_equal(kw_ticket_keys_encode(&in, buf, sizeof(buf), &len), 0);
    static const uint8_t head[] = {1, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9};
    assert_memory_equal(buf, head, sizeof(head));
    static const uint8_t first[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,   0,
                                    0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 0x10};
    assert_memory_equal(buf + 14, first, sizeof(first));
    assert_int_equal(buf[14 + 24 + 79], 0x10);
    assert_int_equal(buf[14 + 104 + 7], 2); /* second epoch */
    assert_int_equal(buf[14 + 2 * 104 + 24], 0x12);
}

static void test_short_buffer(void **state)
{
    (void)state;
    kw_ticket_keys_t in;
    uint8_t buf[KW_TICKET_KEYS_LEN - 1];
    size_t len = 0;
    make_set(&in, 5, 10);
    assert_int_equal(kw_ticket_keys_encode(&in, buf, sizeof(buf), &len), KW_ETOOBIG);
}

/* Encodes a set with epoch 7 / rotation 60, lets tweak change one byte, expects a refusal. */
static void expect_refused(size_t at, uint8_t value, size_t len_delta_minus)
{
    kw_ticket_keys_t in;
    kw_ticket_keys_t out;
    uint8_t buf[KW_TICKET_KEYS_LEN + 1];
    size_t len = 0;
    make_set(&in, 7, 60);
    assert_int_equal(kw_ticket_keys_encode(&in, buf, sizeof(buf), &len), 0);
    if (at < len)
        buf[at] = value;
    memset(&out, 0xAA, sizeof(out));
    assert_int_equal(kw_ticket_keys_decode(buf, len - len_delta_minus, &out), KW_EFORMAT);
    kw_ticket_keys_t zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&out, &zero, sizeof(out));
}

static void test_malformed(void **state)
{
    (void)state;
    expect_refused(SIZE_MAX, 0, 1);              /* one byte short */
    expect_refused(SIZE_MAX, 0, 200);            /* a key cut off */
    expect_refused(0, 2, 0);                     /* version 2 */
    expect_refused(1, 4, 0);                     /* four keys announced */
    expect_refused(5, 0, 0);                     /* rotation 0 (60 = 0x3C in its last byte) */
    expect_refused(14 + 7, 9, 0);                /* first epoch 9: not followed by 7, 8 */
    expect_refused(14 + 104 + 7, 9, 0);          /* epochs 6, 9, 8 */
    expect_refused(14 + 8 + 7, 0, 0);            /* not_before not epoch * rotation */
    expect_refused(14 + 2 * 104 + 16 + 7, 0, 0); /* not_after of the last key */
    kw_ticket_keys_t out;
    uint8_t empty[1] = {0};
    assert_int_equal(kw_ticket_keys_decode(empty, 0, &out), KW_EFORMAT);
}

static void test_trailing_byte(void **state)
{
    (void)state;
    kw_ticket_keys_t in;
    kw_ticket_keys_t out;
    uint8_t buf[KW_TICKET_KEYS_LEN + 1] = {0};
    size_t len = 0;
    make_set(&in, 7, 60);
    assert_int_equal(kw_ticket_keys_encode(&in, buf, sizeof(buf), &len), 0);
    assert_int_equal(kw_ticket_keys_decode(buf, len + 1, &out), KW_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_layout),
        cmocka_unit_test(test_short_buffer),  cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_trailing_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
