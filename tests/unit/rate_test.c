/*
 * Per-edge rate limits (src/keyserver/engine/rate.c): a burst is allowed at once, then one
 * operation per interval; buckets are shared by key, separate between keys, kept while they still
 * limit after the last connection is gone (reconnecting does not refill them) and pruned once full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/rate.h"

#define MS 1000000ull

static void test_burst_then_rate(void **state)
{
    (void)state;
    int failed = 1;
    assert_null(kw_ks_rate_new(0, 5, &failed)); /* 0: no limit */
    assert_int_equal(failed, 0);
    kw_ks_rate_t *r = kw_ks_rate_new(10, 3, &failed); /* 10/s: one per 100 ms, bursts of 3 */
    assert_non_null(r);
    uint8_t a[KW_DIGEST_LEN] = {1}, b[KW_DIGEST_LEN] = {2};
    uint64_t t = 1000 * MS;
    kw_ks_rate_bucket_t *ba = kw_ks_rate_get(r, a, t);
    kw_ks_rate_bucket_t *ba2 = kw_ks_rate_get(r, a, t);
    kw_ks_rate_bucket_t *bb = kw_ks_rate_get(r, b, t);
    assert_ptr_equal(ba, ba2); /* one bucket per edge */
    assert_ptr_not_equal(ba, bb);
    for (int i = 0; i < 3; i++)
        assert_true(kw_ks_rate_take(ba2, t));
    assert_false(kw_ks_rate_take(ba, t)); /* the burst is spent, on both connections */
    assert_true(kw_ks_rate_take(bb, t));  /* another edge is not */
    assert_false(kw_ks_rate_take(ba, t + 99 * MS));
    assert_true(kw_ks_rate_take(ba, t + 100 * MS)); /* one more per 100 ms */
    assert_false(kw_ks_rate_take(ba, t + 150 * MS));
    assert_true(kw_ks_rate_take(NULL, t)); /* no bucket: no limit */
    /* The last connection leaves while the bucket still limits: it is kept. */
    kw_ks_rate_put(ba, t + 150 * MS);
    kw_ks_rate_put(ba2, t + 150 * MS);
    ba = kw_ks_rate_get(r, a, t + 160 * MS);
    assert_false(kw_ks_rate_take(ba, t + 160 * MS));
    kw_ks_rate_put(ba, t + 160 * MS);
    /* Later it is full again: forgotten, and a new one allows the whole burst. */
    ba = kw_ks_rate_get(r, a, t + 10000 * MS);
    for (int i = 0; i < 3; i++)
        assert_true(kw_ks_rate_take(ba, t + 10000 * MS));
    assert_false(kw_ks_rate_take(ba, t + 10000 * MS));
    kw_ks_rate_put(ba, t + 10000 * MS);
    kw_ks_rate_put(bb, t + 10000 * MS);
    assert_int_equal(kw_ks_rate_per_second(r), 10);
    assert_int_equal(kw_ks_rate_burst(r), 3);
    kw_ks_rate_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
