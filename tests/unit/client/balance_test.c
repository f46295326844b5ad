/*
 * The client's load spreading and retry pacing (src/client/balance.c): backoff doubling to its
 * cap, jitter within +-20%, the latency EWMA, the per-try timeout, and the choice of server
 * (fewest in flight, then lower EWMA, untried first, rotation on a full tie).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kwc_balance.h"

static void test_backoff(void **state)
{
    (void)state;
    uint32_t expect[] = {50, 100, 200, 400, 800, 1600, 3200, 5000, 5000};
    uint32_t b = 0;
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        b = kw_lb_backoff_next(b);
        assert_int_equal(b, expect[i]);
    }
    uint32_t lo = 1000000, hi = 0;
    for (uint32_t r = 0; r < 5000; r++) {
        uint32_t j = kw_lb_jitter(1000, r * 2654435761u);
        lo = j < lo ? j : lo;
        hi = j > hi ? j : hi;
    }
    assert_true(lo >= 799 && lo < 820);
    assert_true(hi > 1180 && hi < 1200);
}

static void test_ewma_and_try(void **state)
{
    (void)state;
    assert_true(kw_lb_ewma(0, 100) == 100);
    double e = 100;
    for (int i = 0; i < 50; i++)
        e = kw_lb_ewma(e, 200);
    assert_true(e > 199 && e <= 200);
    assert_true(kw_lb_ewma(100, 200) == 120);
    assert_int_equal(kw_lb_try_timeout_ms(5000, 3), 1666);
    assert_int_equal(kw_lb_try_timeout_ms(300, 3), 200);
    assert_int_equal(kw_lb_try_timeout_ms(100, 3), 100);
    assert_int_equal(kw_lb_try_timeout_ms(1000, 1), 1000);
}

static void test_pick(void **state)
{
    (void)state;
    kw_lb_cand_t c[3];
    memset(c, 0, sizeof(c));
    assert_int_equal(kw_lb_pick(c, 3, 0), -1); /* none usable */
    assert_int_equal(kw_lb_pick(c, 0, 0), -1);
    c[0] = (kw_lb_cand_t){1, 0, 5, 100};
    c[1] = (kw_lb_cand_t){1, 0, 2, 900};
    c[2] = (kw_lb_cand_t){0, 0, 0, 1};
    assert_int_equal(kw_lb_pick(c, 3, 0), 1); /* fewest in flight; the down one is skipped */
    c[1].inflight = 5;
    assert_int_equal(kw_lb_pick(c, 3, 0), 0); /* tie: lower EWMA */
    c[0].tried = 1;
    assert_int_equal(kw_lb_pick(c, 3, 0), 1); /* untried first, even if slower */
    c[1].tried = 1;
    assert_int_equal(kw_lb_pick(c, 3, 0), 0); /* all tried: the best of them */
    c[0] = (kw_lb_cand_t){1, 0, 0, 0};
    c[1] = (kw_lb_cand_t){1, 0, 0, 0};
    assert_int_equal(kw_lb_pick(c, 3, 0), 0); /* full tie: rotate by start */
    assert_int_equal(kw_lb_pick(c, 3, 1), 1);
    assert_int_equal(kw_lb_pick(c, 3, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_ewma_and_try),
        cmocka_unit_test(test_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
