/*
 * kw_yaml tests: the event reader over a buffer and a file, the root and end of the one
 * document, null and NUL-holding scalars, and refusals worded NAME:LINE: reason.
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
#include "kw_yaml.h"

static int open_text(kw_yaml_t *y, const char *text, char *err, size_t errlen)
{
    return kw_yaml_open_buffer(y, "t.yaml", (const unsigned char *)text, strlen(text), err, errlen);
}

/* Walks a flat map "k: v" and counts its pairs; returns the reader's result. */
static int walk(const char *text, int *pairs, char *err, size_t errlen)
{
    kw_yaml_t y;
    yaml_event_t ev;
    *pairs = 0;
    assert_int_equal(open_text(&y, text, err, errlen), 0);
    int rc = kw_yaml_root(&y, &ev);
    if (rc == 1) {
        int is_map = ev.type == YAML_MAPPING_START_EVENT;
        yaml_event_delete(&ev);
        rc = is_map ? 0 : kw_yaml_fail(&y, 1, "not a map");
        while (rc == 0) {
            rc = kw_yaml_next(&y, &ev);
            if (rc != 0)
                break;
            int end = ev.type == YAML_MAPPING_END_EVENT;
            yaml_event_delete(&ev);
            if (end) {
                rc = kw_yaml_end(&y);
                break;
            }
            rc = kw_yaml_next(&y, &ev);
            if (rc == 0) {
                if (kw_yaml_text(&ev) == NULL)
                    rc = kw_yaml_fail(&y, kw_yaml_line(&ev), "not a value");
                yaml_event_delete(&ev);
                (*pairs)++;
            }
        }
    }
    kw_yaml_close(&y);
    return rc;
}

static void test_documents(void **state)
{
    (void)state;
    char err[256];
    int pairs;
    assert_int_equal(walk("a: 1\nb: two\n", &pairs, err, sizeof(err)), 0);
    assert_int_equal(pairs, 2);
    assert_int_equal(walk("", &pairs, err, sizeof(err)), 0);
    assert_int_equal(walk("# only a comment\n", &pairs, err, sizeof(err)), 0);
    assert_int_equal(walk("~\n", &pairs, err, sizeof(err)), 0);
    assert_int_equal(walk("a: 1\n---\nb: 2\n", &pairs, err, sizeof(err)), KW_ECONFIG);
    assert_string_equal(err,
                        "t.yaml:2: only one YAML document is allowed (remove the second '---')");
    assert_int_equal(walk("a: 'x\n", &pairs, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "t.yaml:"));
    assert_non_null(strstr(err, "YAML syntax error"));
    assert_int_equal(walk("a: &x 1\nb: *x\n", &pairs, err, sizeof(err)), KW_ECONFIG);
    assert_string_equal(err,
                        "t.yaml:2: YAML aliases (*name) are not supported; write the value out");
    assert_int_equal(walk("a: \"x\\0y\"\n", &pairs, err, sizeof(err)), KW_ECONFIG);
    assert_string_equal(err, "t.yaml:1: not a value");
}

static void test_scalars(void **state)
{
    (void)state;
    static const char *nulls[] = {"~", "null", "Null", "NULL", ""};
    char err[128];
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        char text[32];
        snprintf(text, sizeof(text), "a: %s\n", nulls[i]);
        kw_yaml_t y;
        yaml_event_t ev;
        assert_int_equal(open_text(&y, text, err, sizeof(err)), 0);
        assert_int_equal(kw_yaml_root(&y, &ev), 1);
        yaml_event_delete(&ev);
        assert_int_equal(kw_yaml_next(&y, &ev), 0); /* the key */
        assert_false(kw_yaml_is_null(&ev));
        yaml_event_delete(&ev);
        assert_int_equal(kw_yaml_next(&y, &ev), 0); /* the value */
        assert_true(kw_yaml_is_null(&ev));
        yaml_event_delete(&ev);
        kw_yaml_close(&y);
    }
    kw_yaml_t y;
    yaml_event_t ev;
    assert_int_equal(open_text(&y, "'null'\n", err, sizeof(err)), 0);
    assert_int_equal(kw_yaml_root(&y, &ev), 1); /* quoted: a string, not null */
    assert_string_equal(kw_yaml_text(&ev), "null");
    yaml_event_delete(&ev);
    assert_int_equal(kw_yaml_end(&y), 0);
    kw_yaml_close(&y);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/kw_yaml_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x: 1\n", 5), 5);
    close(fd);
    kw_yaml_t y;
    yaml_event_t ev;
    char err[256];
    assert_int_equal(kw_yaml_open(&y, path, err, sizeof(err)), 0);
    assert_int_equal(kw_yaml_root(&y, &ev), 1);
    assert_int_equal(ev.type, YAML_MAPPING_START_EVENT);
    yaml_event_delete(&ev);
    kw_yaml_close(&y);
    unlink(path);
    assert_int_equal(kw_yaml_open(&y, path, err, sizeof(err)), KW_EIO);
    assert_non_null(strstr(err, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
