/*
 * --pid-file tests (src/keyserver/config/pidfile.c): the flag is taken out of argv in both
 * spellings (the rest keeps its order, "--" ends the search, a missing value is an error); the file
 * holds our pid; it is removed at exit only while it still holds our pid.
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

#include "config/pidfile.h"

static void test_take(void **state)
{
    (void)state;
    char *argv[] = {"ks",         "--cert", "c", "--pid-file",
                    "/run/a.pid", "--key",  "k", "--pid-file=/run/b.pid",
                    "--ca",       "ca",     NULL};
    int argc = 10;
    const char *path = NULL;
    char err[128] = "";
    assert_int_equal(kw_ks_pidfile_take(&argc, argv, &path, err, sizeof(err)), 0);
    assert_string_equal(path, "/run/b.pid"); /* the last one wins */
    assert_int_equal(argc, 7);
    const char *want[] = {"ks", "--cert", "c", "--key", "k", "--ca", "ca"};
    for (int i = 0; i < 7; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[7]);
}

static void test_take_none_and_dashdash(void **state)
{
    (void)state;
    char *argv[] = {"ks", "--listen", "x", "--", "--pid-file", "p", NULL};
    int argc = 6;
    const char *path = "unset";
    char err[128] = "";
    assert_int_equal(kw_ks_pidfile_take(&argc, argv, &path, err, sizeof(err)), 0);
    assert_null(path);
    assert_int_equal(argc, 6);
    assert_string_equal(argv[4], "--pid-file");
}

static void test_take_missing_value(void **state)
{
    (void)state;
    char *argv1[] = {"ks", "--pid-file", NULL};
    char *argv2[] = {"ks", "--pid-file=", "--cert", "c", NULL};
    int argc1 = 2, argc2 = 4;
    const char *path = NULL;
    char err[128] = "";
    assert_int_equal(kw_ks_pidfile_take(&argc1, argv1, &path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--pid-file"));
    assert_int_equal(kw_ks_pidfile_take(&argc2, argv2, &path, err, sizeof(err)), -1);
}

static void test_write_remove(void **state)
{
    (void)state;
    char dir[] = "/tmp/kw_pidfile.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], buf[64] = "", want[64];
    snprintf(path, sizeof(path), "%s/ks.pid", dir);
    char err[256] = "";
    assert_int_equal(kw_ks_pidfile_write(path, err, sizeof(err)), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    assert_string_equal(buf, want);
    kw_ks_pidfile_remove(path);
    assert_int_not_equal(access(path, F_OK), 0);

    /* another instance's pid file stays */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%ld\n", (long)getpid() + 1);
    fclose(f);
    kw_ks_pidfile_remove(path);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(unlink(path), 0);

    /* an unwritable place: the error names the file */
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/no/such/ks.pid", dir);
    assert_int_equal(kw_ks_pidfile_write(bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, bad));
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_take_none_and_dashdash),
        cmocka_unit_test(test_take_missing_value),
        cmocka_unit_test(test_write_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
