/*
 * String lists (src/common/strlist.c): add keeps copies in order, addn copies only len bytes,
 * free empties the list (and an empty list frees to empty again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kw_strlist.h"

static void test_add_addn_free(void **state)
{
    (void)state;
    kw_strlist_t l = {NULL, 0};
    char word[] = "alpha";
    assert_int_equal(kw_strlist_add(&l.v, &l.n, word), 0);
    word[0] = 'X'; /* the list holds its own copy */
    assert_int_equal(kw_strlist_addn(&l.v, &l.n, "beta,gamma", 4), 0);
    assert_int_equal(kw_strlist_add(&l.v, &l.n, ""), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0], "alpha");
    assert_string_equal(l.v[1], "beta");
    assert_string_equal(l.v[2], "");
    kw_strlist_free(&l.v, &l.n);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    kw_strlist_free(&l.v, &l.n);
    assert_int_equal(l.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_addn_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
