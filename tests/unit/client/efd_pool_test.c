/*
 * The client's eventfd pool (src/client/efd_pool.c): an eventfd handed back signalled is drained
 * before it is handed out again, and the pool lives as long as its references.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>

#include "kw_eventfd.h"
#include "kwc_efd.h"

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, 0) == 1;
}

static void test_efd_pool(void **state)
{
    (void)state;
    kw_efd_pool_t *p = kw_efd_pool_new(2);
    assert_non_null(p);
    int a = kw_efd_pool_get(p);
    assert_true(a >= 0);
    assert_false(readable(a));
    kw_eventfd_signal(a);
    assert_true(readable(a));
    kw_efd_pool_put(p, a, 1);
    int b = kw_efd_pool_get(p);
    assert_int_equal(b, a); /* reused, and drained */
    assert_false(readable(b));
    kw_efd_pool_put(p, b, 0);
    kw_efd_pool_ref(p);
    kw_efd_pool_unref(p);
    kw_efd_pool_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_efd_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
