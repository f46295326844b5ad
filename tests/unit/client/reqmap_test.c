/*
 * The client's request id map (src/client/reqmap.c): ids are never 0 and never repeat for a live
 * entry, a stale id (its slot reused since) never finds the new owner, the map grows, and freed
 * slots are reused oldest first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "keyward/error.h"
#include "kwc_reqmap.h"

static void test_reqmap_basic(void **state)
{
    (void)state;
    kw_reqmap_t m;
    int a, b;
    uint32_t ida, idb;
    assert_int_equal(kw_reqmap_init(&m, 16), 0);
    assert_int_equal(kw_reqmap_add(&m, &a, &ida), 0);
    assert_int_equal(kw_reqmap_add(&m, &b, &idb), 0);
    assert_int_not_equal(ida, 0);
    assert_int_not_equal(ida, idb);
    assert_ptr_equal(kw_reqmap_get(&m, ida), &a);
    assert_ptr_equal(kw_reqmap_get(&m, idb), &b);
    assert_int_equal(kw_reqmap_count(&m), 2);
    assert_ptr_equal(kw_reqmap_remove(&m, ida), &a);
    assert_null(kw_reqmap_get(&m, ida));
    assert_null(kw_reqmap_remove(&m, ida));
    assert_null(kw_reqmap_get(&m, 12345));
    assert_int_equal(kw_reqmap_add(&m, NULL, &ida), KW_EINVAL);
    assert_int_equal(kw_reqmap_count(&m), 1);
    kw_reqmap_destroy(&m);
}

/* A stale id (the slot was reused since) never finds the new owner. */
static void test_reqmap_stale_and_grow(void **state)
{
    (void)state;
    kw_reqmap_t m;
    static int items[5000];
    static uint32_t ids[5000];
    assert_int_equal(kw_reqmap_init(&m, 16), 0);
    uint32_t old;
    assert_int_equal(kw_reqmap_add(&m, &items[0], &old), 0);
    kw_reqmap_remove(&m, old);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5000; i++)
            assert_int_equal(kw_reqmap_add(&m, &items[i], &ids[i]), 0);
        for (int i = 0; i < 5000; i++) {
            assert_ptr_equal(kw_reqmap_get(&m, ids[i]), &items[i]);
            assert_int_not_equal(ids[i], old);
        }
        assert_null(kw_reqmap_get(&m, old));
        for (int i = 0; i < 5000; i++)
            assert_ptr_equal(kw_reqmap_remove(&m, ids[i]), &items[i]);
    }
    assert_int_equal(kw_reqmap_count(&m), 0);
    kw_reqmap_destroy(&m);
}

/* Freed slots are reused oldest first: the same slot comes back only after all others. */
static void test_reqmap_fifo_reuse(void **state)
{
    (void)state;
    kw_reqmap_t m;
    int x;
    uint32_t id, first;
    assert_int_equal(kw_reqmap_init(&m, 16), 0);
    assert_int_equal(kw_reqmap_add(&m, &x, &first), 0);
    kw_reqmap_remove(&m, first);
    for (int i = 0; i < 15; i++) {
        assert_int_equal(kw_reqmap_add(&m, &x, &id), 0);
        assert_int_not_equal(id & (KW_REQMAP_MAX - 1), first & (KW_REQMAP_MAX - 1));
        kw_reqmap_remove(&m, id);
    }
    assert_int_equal(kw_reqmap_add(&m, &x, &id), 0);
    assert_int_equal(id & (KW_REQMAP_MAX - 1), first & (KW_REQMAP_MAX - 1));
    assert_int_not_equal(id, first);
    kw_reqmap_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reqmap_basic),
        cmocka_unit_test(test_reqmap_stale_and_grow),
        cmocka_unit_test(test_reqmap_fifo_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
