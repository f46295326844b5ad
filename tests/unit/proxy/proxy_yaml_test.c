/*
 * keyward-proxy's YAML reader alone (src/proxy/proxy_yaml.c), with a sink of the test's own that
 * records what it is handed: values reach the sink in file order with their keys, "certs" and
 * "keyservers" stand for cert and keyserver, list items one by one, a certs mapping as
 * "FILE[,KEY]"; an empty file sets nothing. Every refusal names the file and the line of the
 * fault and says what is wrong; the sink's own reason reaches the user with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "proxy_yaml.h"

typedef struct rec_s {
    char log[2048];     /* "key=value;" per call */
    const char *refuse; /* a key the sink refuses */
} rec_t;

static int rec_set(void *arg, const char *key, const char *value, char *why, size_t whylen)
{
    rec_t *r = arg;
    if (r->refuse != NULL && strcmp(key, r->refuse) == 0) {
        snprintf(why, whylen, "%s: the sink says no to '%s'", key, value);
        return -1;
    }
    size_t used = strlen(r->log);
    snprintf(r->log + used, sizeof(r->log) - used, "%s=%s;", key, value);
    return 0;
}

static int rec_is_list(const char *key)
{
    return strcmp(key, "cert") == 0 || strcmp(key, "keyserver") == 0 || strcmp(key, "listen") == 0;
}

static int load(rec_t *r, const char *yaml, char *err, size_t errlen)
{
    kw_proxy_yaml_sink_t sink = {rec_set, rec_is_list, r};
    err[0] = '\0';
    return kw_proxy_yaml_load_buffer("proxy.yaml", (const unsigned char *)yaml, strlen(yaml), &sink,
                                     err, errlen);
}

static void test_values_in_order(void **state)
{
    (void)state;
    rec_t r;
    char err[256];
    memset(&r, 0, sizeof(r));
    assert_int_equal(load(&r,
                          "backend: 127.0.0.1:8080\n"
                          "keyservers:\n"
                          "  - ks1:2407\n"
                          "  - '[::1]:2407'\n"
                          "certs:\n"
                          "  - {cert: a.pem, key: a.key}\n"
                          "  - cert: b.pem\n"
                          "  - c.pem,c.key\n"
                          "threads: 4\n"
                          "listen: [ '0.0.0.0:443' ]\n",
                          err, sizeof(err)),
                     0);
    assert_string_equal(r.log, "backend=127.0.0.1:8080;keyserver=ks1:2407;keyserver=[::1]:2407;"
                               "cert=a.pem,a.key;cert=b.pem;cert=c.pem,c.key;threads=4;"
                               "listen=0.0.0.0:443;");
    memset(&r, 0, sizeof(r));
    assert_int_equal(load(&r, "", err, sizeof(err)), 0); /* empty: nothing set */
    assert_string_equal(r.log, "");
    assert_int_equal(load(&r, "# only a comment\n", err, sizeof(err)), 0);
    assert_string_equal(r.log, "");
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *where; /* "proxy.yaml:LINE" */
        const char *says;
    } bad[] = {
        {"- a\n- b\n", "proxy.yaml:1", "must be a mapping"},
        {"backend: x\nthreads: [1, 2]\n", "proxy.yaml:2", "one value, not a list"},
        {"backend:\n  host: x\n", "proxy.yaml:2", "a value or a list"},
        {"listen:\n  - a\n  - [b]\n", "proxy.yaml:3", "plain values"},
        {"certs:\n  - {cert: a, x: b}\n", "proxy.yaml:2", "only the keys cert and key"},
        {"certs:\n  - {key: k}\n", "proxy.yaml:2", "needs cert"},
        {"certs:\n  - {cert: 'a,b', key: k}\n", "proxy.yaml:2", "comma"},
        {"config: other.yaml\n", "proxy.yaml:1", "cannot appear in a config file"},
        {"help: yes\n", "proxy.yaml:1", "cannot appear in a config file"},
        {"? [a, b]\n: c\n", "proxy.yaml:1", "plain names"},
        {"backend: x\nlisten: [unclosed\n", "proxy.yaml:", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rec_t r;
        char err[256];
        memset(&r, 0, sizeof(r));
        assert_int_equal(load(&r, bad[i].yaml, err, sizeof(err)), KW_ECONFIG);
        if (strstr(err, bad[i].where) == NULL || strstr(err, bad[i].says) == NULL)
            fail_msg("case %zu: '%s' lacks '%s' or '%s'", i, err, bad[i].where, bad[i].says);
    }
}

static void test_sink_reason(void **state)
{
    (void)state;
    rec_t r;
    char err[256];
    memset(&r, 0, sizeof(r));
    r.refuse = "threads";
    assert_int_equal(load(&r, "backend: x\n\nthreads: many\n", err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "proxy.yaml:3"));
    assert_non_null(strstr(err, "the sink says no to 'many'"));
    assert_string_equal(r.log, "backend=x;"); /* what came before was set, nothing after */
    memset(&r, 0, sizeof(r));
    r.refuse = "cert";
    assert_int_equal(load(&r, "certs:\n  - a.pem\n  - {cert: b.pem}\n", err, sizeof(err)),
                     KW_ECONFIG);
    assert_non_null(strstr(err, "proxy.yaml:2"));
}

static void test_file(void **state)
{
    (void)state;
    rec_t r;
    char err[256];
    kw_proxy_yaml_sink_t sink = {rec_set, rec_is_list, &r};
    memset(&r, 0, sizeof(r));
    assert_int_equal(kw_proxy_yaml_load("/nonexistent/proxy.yaml", &sink, err, sizeof(err)),
                     KW_ECONFIG);
    assert_non_null(strstr(err, "/nonexistent/proxy.yaml"));
    char path[] = "/tmp/kw_proxy_yaml_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("backend: b:1\nkeyserver: k:2\n", f);
    fclose(f);
    assert_int_equal(kw_proxy_yaml_load(path, &sink, err, sizeof(err)), 0);
    assert_string_equal(r.log, "backend=b:1;keyserver=k:2;"); /* a single value for a list */
    assert_int_equal(remove(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_in_order),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sink_reason),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
