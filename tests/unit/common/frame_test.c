/*
 * kw_frame tests: frames that arrive byte by byte and several at once are handed out whole and
 * in order, a wrong major version is reported without consuming, and consuming cleanses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "kw_frame.h"

/* Writes a frame with body_len bytes of value fill; returns its length. */
static size_t put_frame(uint8_t *out, uint32_t id, uint16_t body_len, uint8_t fill)
{
    kw_header_write(out, body_len, id);
    memset(out + KW_HEADER_LEN, fill, body_len);
    return KW_HEADER_LEN + body_len;
}

static void test_frames_in_pieces(void **state)
{
    (void)state;
    uint8_t wire[64];
    size_t n = put_frame(wire, 7, 5, 0xAA);
    n += put_frame(wire + n, 8, 0, 0);
    n += put_frame(wire + n, 9, 3, 0xBB);
    uint8_t buf[64];
    size_t len = 0;
    uint32_t seen[3];
    size_t nseen = 0;
    for (size_t i = 0; i < n; i++) { /* one byte at a time */
        buf[len++] = wire[i];
        assert_true(kw_frame_need(buf, len) >= KW_HEADER_LEN);
        kw_reader_t r;
        kw_reader_init(&r, buf, len);
        kw_header_t h;
        const uint8_t *body = NULL;
        int rc;
        for (;;) {
            rc = kw_frame_next(&r, &h, &body);
            if (rc != 1)
                break;
            assert_true(nseen < 3);
            seen[nseen++] = h.id;
            if (h.id == 7) {
                assert_int_equal(h.body_len, 5);
                assert_int_equal(body[0], 0xAA);
            }
        }
        assert_int_equal(rc, 0);
        kw_frame_consume(buf, &len, kw_reader_offset(&r));
    }
    assert_int_equal(nseen, 3);
    assert_int_equal(seen[0], 7);
    assert_int_equal(seen[1], 8);
    assert_int_equal(seen[2], 9);
    assert_int_equal(len, 0);
}

static void test_need_and_version(void **state)
{
    (void)state;
    uint8_t buf[KW_HEADER_LEN + 300];
    put_frame(buf, 1, 300, 0x11);
    assert_int_equal(kw_frame_need(buf, 0), KW_HEADER_LEN);
    assert_int_equal(kw_frame_need(buf, 3), KW_HEADER_LEN);
    assert_int_equal(kw_frame_need(buf, KW_HEADER_LEN), KW_HEADER_LEN + 300);
    kw_reader_t r;
    kw_header_t h;
    const uint8_t *body;
    kw_reader_init(&r, buf, KW_HEADER_LEN + 299);
    assert_int_equal(kw_frame_next(&r, &h, &body), 0);
    assert_int_equal(kw_reader_offset(&r), 0);
    buf[0] = 2; /* major 2 */
    kw_reader_init(&r, buf, sizeof(buf));
    assert_int_equal(kw_frame_next(&r, &h, &body), KW_EVERSION);
    assert_int_equal(h.major, 2);
    assert_int_equal(h.id, 1);
    assert_int_equal(kw_reader_offset(&r), 0);
}

static void test_consume_cleanses(void **state)
{
    (void)state;
    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t len = 8;
    kw_frame_consume(buf, &len, 3);
    assert_int_equal(len, 5);
    static const uint8_t want[8] = {4, 5, 6, 7, 8, 0, 0, 0};
    assert_memory_equal(buf, want, 8);
    kw_frame_consume(buf, &len, 0);
    assert_int_equal(len, 5);
    kw_frame_consume(buf, &len, 99); /* more than there is: all */
    assert_int_equal(len, 0);
    static const uint8_t zero[8] = {0};
    assert_memory_equal(buf, zero, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_in_pieces),
        cmocka_unit_test(test_need_and_version),
        cmocka_unit_test(test_consume_cleanses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
