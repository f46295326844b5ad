/*
 * kw_bearer and kw_heartbeat tests (the metrics endpoints' helpers): a token file's first line,
 * blanks trimmed, is the token; too short, too long, empty or missing files are refused with a
 * sentence naming --metrics-token-file; only "Bearer " and exactly the token pass, and anything
 * passes when no token is set. A heartbeat is alive when fresh or not started, stalled (with the
 * milliseconds) when older than KW_HEARTBEAT_STALL_MS, and without verdict again once stopped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "kw_bearer.h"
#include "kw_clock.h"
#include "kw_heartbeat.h"

static char path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/kw_bearer_test.%ld", (long)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void test_bearer_load(void **state)
{
    (void)state;
    kw_bearer_t b;
    char err[256] = "";
    write_file("  0123456789abcdef0123  \r\nsecond line ignored\n");
    assert_int_equal(kw_bearer_load(&b, path, err, sizeof(err)), 0);
    assert_true(b.set);
    assert_true(kw_bearer_allows(&b, "Bearer 0123456789abcdef0123"));
    assert_true(kw_bearer_allows(&b, "bearer 0123456789abcdef0123")); /* the scheme: any case */
    assert_false(kw_bearer_allows(&b, NULL));
    assert_false(kw_bearer_allows(&b, ""));
    assert_false(kw_bearer_allows(&b, "Bearer "));
    assert_false(kw_bearer_allows(&b, "Bearer 0123456789abcdef012"));   /* shorter */
    assert_false(kw_bearer_allows(&b, "Bearer 0123456789abcdef01234")); /* longer */
    assert_false(kw_bearer_allows(&b, "Bearer 0123456789ABCDEF0123"));  /* other bytes */
    assert_false(kw_bearer_allows(&b, "Basic 0123456789abcdef0123"));   /* other scheme */
    assert_false(kw_bearer_allows(&b, "Bearer  0123456789abcdef0123")); /* not trimmed */

    write_file("short\n");
    assert_int_equal(kw_bearer_load(&b, path, err, sizeof(err)), KW_ECONFIG);
    assert_false(b.set);
    assert_non_null(strstr(err, "--metrics-token-file"));
    assert_non_null(strstr(err, "16 to 512"));
    assert_null(strstr(err, "short")); /* the (refused) token is not repeated */
    write_file("");
    assert_int_equal(kw_bearer_load(&b, path, err, sizeof(err)), KW_ECONFIG);
    char big[KW_BEARER_MAX + 10];
    memset(big, 'x', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    write_file(big);
    assert_int_equal(kw_bearer_load(&b, path, err, sizeof(err)), KW_ECONFIG);
    unlink(path);
    assert_int_equal(kw_bearer_load(&b, path, err, sizeof(err)), KW_EIO);
    assert_non_null(strstr(err, "No such file"));
}

static void test_bearer_unset(void **state)
{
    (void)state;
    kw_bearer_t b;
    memset(&b, 0, sizeof(b));
    assert_true(kw_bearer_allows(&b, NULL));
    assert_true(kw_bearer_allows(&b, "Basic anything"));
}

static void test_heartbeat(void **state)
{
    (void)state;
    kw_heartbeat_t hb;
    char why[128] = "";
    atomic_init(&hb.ns, 0);
    assert_false(kw_heartbeat_started(&hb));
    assert_true(kw_heartbeat_alive(&hb, why, sizeof(why))); /* not started: no verdict */
    kw_heartbeat_beat(&hb);
    assert_true(kw_heartbeat_started(&hb));
    assert_true(kw_heartbeat_alive(&hb, why, sizeof(why)));
    /* a beat older than the threshold: as if the loop had not turned for 3 s */
    atomic_store(&hb.ns, kw_clock_ns() - (uint64_t)(KW_HEARTBEAT_STALL_MS + 1000) * 1000000u);
    assert_false(kw_heartbeat_alive(&hb, why, sizeof(why)));
    unsigned long ms = 0;
    assert_int_equal(strncmp(why, "event loop stalled for ", 23), 0);
    ms = strtoul(why + 23, NULL, 10);
    assert_true(ms >= KW_HEARTBEAT_STALL_MS + 1000 && ms < KW_HEARTBEAT_STALL_MS + 60000);
    /* just under the threshold: alive */
    atomic_store(&hb.ns, kw_clock_ns() - (uint64_t)(KW_HEARTBEAT_STALL_MS - 500) * 1000000u);
    assert_true(kw_heartbeat_alive(&hb, why, sizeof(why)));
    kw_heartbeat_stop(&hb);
    assert_false(kw_heartbeat_started(&hb));
    assert_true(kw_heartbeat_alive(&hb, why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bearer_load, setup, teardown),
        cmocka_unit_test(test_bearer_unset),
        cmocka_unit_test(test_heartbeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
