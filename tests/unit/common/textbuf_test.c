/*
 * The metrics pages' text buffer (src/common/textbuf.c): appends land in order past the first
 * allocation (it grows, also for one piece longer than all it had); the text taken is the
 * whole, NUL-terminated, with its length; after a failure the text is freed and taking it says
 * KW_ENOMEM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_textbuf.h"

static void test_grows_and_takes(void **state)
{
    (void)state;
    kw_textbuf_t b;
    char *text = NULL;
    size_t len = 0;
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kw_textbuf_init(&b, 8), 0);
    assert_string_equal(b.p, "");
    kw_textbuf_printf(&b, "%s=%d\n", "a", 1); /* fits */
    for (int i = 0; i < 10; i++)
        kw_textbuf_printf(&b, "line %d\n", i); /* grows on the way */
    kw_textbuf_printf(&b, "%s", big);          /* longer than all it had */
    assert_int_equal(b.failed, 0);
    assert_true(b.cap > b.len);
    assert_int_equal(kw_textbuf_take(&b, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_int_equal(len, 4 + 10 * 7 + 299);
    assert_memory_equal(text, "a=1\nline 0\nline 1\n", 18);
    assert_memory_equal(text + 4 + 9 * 7, "line 9\nxxx", 10);
    assert_int_equal(text[len - 1], 'x');
    assert_null(b.p); /* handed over */
    free(text);
}

static void test_failure_sticks(void **state)
{
    (void)state;
    kw_textbuf_t b;
    char *text = NULL;
    size_t len = 7;
    assert_int_equal(kw_textbuf_init(&b, 16), 0);
    kw_textbuf_printf(&b, "kept? ");
    b.failed = 1; /* as an allocation that failed leaves it */
    kw_textbuf_printf(&b, "not appended");
    assert_int_equal(b.len, 6);
    assert_int_equal(kw_textbuf_take(&b, &text, &len), KW_ENOMEM);
    assert_null(text);
    assert_int_equal(len, 7);
    assert_null(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_and_takes),
        cmocka_unit_test(test_failure_sticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
