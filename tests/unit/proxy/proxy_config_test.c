/*
 * keyward-proxy options: flags, the YAML file with the same keys, their precedence (flags over
 * the file, a list flag replaces the file's list), and the errors users see for bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward/error.h"
#include "proxy_config.h"

static int parse(kw_proxy_config_t *cfg, char *err, int *help, ...)
{
    char *argv[32] = {"keyward-proxy"};
    int argc = 1;
    va_list ap;
    va_start(ap, help);
    for (char *a = va_arg(ap, char *); a != NULL && argc < 31; a = va_arg(ap, char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    kw_proxy_config_init(cfg);
    return kw_proxy_config_from_args(cfg, argc, argv, help, err, 256);
}

static char *write_yaml(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/kw-proxy-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    kw_proxy_config_t cfg;
    char err[256];
    int help = 0;
    assert_int_equal(parse(&cfg, err, &help, NULL), 0);
    assert_null(cfg.listen);
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.idle_timeout_ms, 60000);
    assert_int_equal(cfg.drain_timeout_ms, 30000);
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.threads, 0);
    assert_int_equal(cfg.proxy_protocol, 0);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "--cert"));
    kw_proxy_config_free(&cfg);
}

static void test_flags(void **state)
{
    kw_proxy_config_t cfg;
    char err[256];
    int help = 0;
    assert_int_equal(parse(&cfg, err, &help, "--listen", "0.0.0.0:443", "--cert", "a.crt", "--cert",
                           "b.crt,keyward:sha256=00", "--backend", "127.0.0.1:80", "--keyserver",
                           "k1:2407", "--keyserver", "k2:2407,k3:2407", "--client-cert", "e.crt",
                           "--client-key", "e.key", "--ca", "ca.crt", "--proxy-protocol", "--alpn",
                           "h2,http/1.1", "--threads", "3", "--handshake-timeout-ms", "500",
                           "--log-level", "debug", NULL),
                     0);
    assert_int_equal(help, 0);
    assert_string_equal(cfg.listen, "0.0.0.0:443");
    assert_int_equal(cfg.ncerts, 2);
    assert_string_equal(cfg.certs[0].cert, "a.crt");
    assert_null(cfg.certs[0].key);
    assert_string_equal(cfg.certs[1].key, "keyward:sha256=00");
    assert_int_equal(cfg.keyservers.n, 3);
    assert_string_equal(cfg.keyservers.v[2], "k3:2407");
    assert_int_equal(cfg.alpn.n, 2);
    assert_string_equal(cfg.alpn.v[0], "h2");
    assert_int_equal(cfg.proxy_protocol, 1);
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(cfg.handshake_timeout_ms, 500);
    assert_int_equal(cfg.log_level, KW_LOG_DEBUG);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), 0);
    kw_proxy_config_free(&cfg);
}

static void test_flag_errors(void **state)
{
    kw_proxy_config_t cfg;
    char err[256];
    int help = 0;
    assert_int_equal(parse(&cfg, err, &help, "--threads", "many", NULL), KW_ECONFIG);
    assert_non_null(strstr(err, "threads"));
    kw_proxy_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, &help, "--idle-timeout-ms", "-1", NULL), KW_ECONFIG);
    kw_proxy_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, &help, "--no-such-flag", NULL), KW_ECONFIG);
    kw_proxy_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, &help, "--cert", "a.crt,", NULL), KW_ECONFIG);
    kw_proxy_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, &help, "--log-level", "loud", NULL), KW_ECONFIG);
    kw_proxy_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, &help, "stray", NULL), KW_ECONFIG);
    kw_proxy_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, &help, "--help", NULL), 0);
    assert_int_equal(help, 1);
    kw_proxy_config_free(&cfg);
}

static void test_check(void **state)
{
    kw_proxy_config_t cfg;
    char err[256];
    int help = 0;
    /* a remote key needs a key server */
    assert_int_equal(parse(&cfg, err, &help, "--cert", "a.crt", "--backend", "b:1", NULL), 0);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "--keyserver"));
    kw_proxy_config_free(&cfg);
    /* a key server needs the mTLS identity */
    assert_int_equal(
        parse(&cfg, err, &help, "--cert", "a.crt", "--backend", "b:1", "--keyserver", "k:1", NULL),
        0);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "--client-cert"));
    kw_proxy_config_free(&cfg);
    /* local keys need neither */
    assert_int_equal(parse(&cfg, err, &help, "--cert", "a.crt,a.key", "--backend", "b:1", NULL), 0);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), 0);
    kw_proxy_config_free(&cfg);
}

static void test_yaml_and_precedence(void **state)
{
    char *path = write_yaml("listen: 127.0.0.1:9443\n"
                            "backend: 127.0.0.1:8080\n"
                            "certs:\n"
                            "  - /etc/site.crt\n"
                            "  - {cert: /etc/two.crt, key: /etc/two.stub}\n"
                            "keyservers: [ks1:2407, ks2:2407]\n"
                            "client_cert: edge.crt\n"
                            "client-key: edge.key\n"
                            "ca: ca.crt\n"
                            "proxy_protocol: yes\n"
                            "alpn: [h2, http/1.1]\n"
                            "threads: 4\n"
                            "idle_timeout_ms: 1234\n"
                            "drain_timeout_ms: 2500\n");
    kw_proxy_config_t cfg;
    char err[256];
    int help = 0;
    assert_int_equal(parse(&cfg, err, &help, "--config", path, NULL), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:9443");
    assert_int_equal(cfg.ncerts, 2);
    assert_string_equal(cfg.certs[1].cert, "/etc/two.crt");
    assert_string_equal(cfg.certs[1].key, "/etc/two.stub");
    assert_int_equal(cfg.keyservers.n, 2);
    assert_string_equal(cfg.client_key, "edge.key");
    assert_int_equal(cfg.proxy_protocol, 1);
    assert_int_equal(cfg.alpn.n, 2);
    assert_int_equal(cfg.threads, 4);
    assert_int_equal(cfg.idle_timeout_ms, 1234);
    assert_int_equal(cfg.drain_timeout_ms, 2500);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), 0);
    kw_proxy_config_free(&cfg);

    /* flags win, wherever --config is; a list flag replaces the file's list */
    assert_int_equal(parse(&cfg, err, &help, "--threads", "1", "--keyserver", "ks9:1", "--config",
                           path, "--keyserver", "ks8:1", NULL),
                     0);
    assert_int_equal(cfg.threads, 1);
    assert_int_equal(cfg.keyservers.n, 2);
    assert_string_equal(cfg.keyservers.v[0], "ks9:1");
    assert_string_equal(cfg.keyservers.v[1], "ks8:1");
    assert_int_equal(cfg.ncerts, 2); /* untouched by flags: the file's */
    kw_proxy_config_free(&cfg);
    unlink(path);
}

static void test_yaml_errors(void **state)
{
    static const char *bad[] = {
        "threads: [1, 2]\n",             /* a list for a single value */
        "no_such_option: 1\n",           /* unknown key */
        "- just\n- a list\n",            /* not a mapping */
        "certs:\n  - {cert: a, x: b}\n", /* unknown cert key */
        "listen: [unclosed\n",           /* YAML syntax */
        "backend: {a: b}\n",             /* a mapping value */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *path = write_yaml(bad[i]);
        kw_proxy_config_t cfg;
        char err[256] = "";
        int help = 0;
        assert_int_equal(parse(&cfg, err, &help, "--config", path, NULL), KW_ECONFIG);
        assert_non_null(strstr(err, path)); /* the message names the file (and line) */
        kw_proxy_config_free(&cfg);
        unlink(path);
    }
    kw_proxy_config_t cfg;
    char err[256];
    int help = 0;
    assert_int_equal(parse(&cfg, err, &help, "--config", "/nonexistent/proxy.yaml", NULL),
                     KW_ECONFIG);
    assert_non_null(strstr(err, "/nonexistent/proxy.yaml"));
    kw_proxy_config_free(&cfg);
}

/* examples/proxy.yaml, the documented example, must load and be complete. */
/* Master-secret mode is on unless --no-master-secret / no_master_secret; --cert-from-keyserver
 * stands in for --cert but needs a key server and a valid NAME. */
static void test_master_secret_and_fetch(void **state)
{
    kw_proxy_config_t cfg;
    char err[256];
    int help = 0;
    assert_int_equal(
        parse(&cfg, err, &help, "--backend", "b:1", "--cert-from-keyserver", "a.example",
              "--cert-from-keyserver",
              "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", NULL),
        0);
    assert_int_equal(cfg.no_master_secret, 0);
    assert_int_equal(cfg.ncerts, 0);
    assert_int_equal(cfg.cert_from_keyserver.n, 2);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "needs a key server"));
    kw_proxy_config_free(&cfg);

    assert_int_equal(parse(&cfg, err, &help, "--backend", "b:1", "--cert-from-keyserver",
                           "sha256:12", "--keyserver", "k:1", "--client-cert", "c", "--client-key",
                           "k", "--ca", "ca", NULL),
                     0);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "sha256:12"));
    kw_proxy_config_free(&cfg);

    assert_int_equal(parse(&cfg, err, &help, "--backend", "b:1", "--cert-from-keyserver",
                           "a.example", "--keyserver", "k:1", "--client-cert", "c", "--client-key",
                           "k", "--ca", "ca", "--no-master-secret", NULL),
                     0);
    assert_int_equal(cfg.no_master_secret, 1);
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), 0);
    kw_proxy_config_free(&cfg);

    char *path = write_yaml("backend: b:1\nno_master_secret: true\n"
                            "cert_from_keyserver: [a.example, b.example]\n");
    assert_int_equal(parse(&cfg, err, &help, "--config", path, NULL), 0);
    unlink(path);
    assert_int_equal(cfg.no_master_secret, 1);
    assert_int_equal(cfg.cert_from_keyserver.n, 2);
    assert_string_equal(cfg.cert_from_keyserver.v[1], "b.example");
    kw_proxy_config_free(&cfg);
    (void)state;
}

static void test_example_file(void **state)
{
    const char *src = getenv("KW_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/examples/proxy.yaml", src != NULL ? src : ".");
    kw_proxy_config_t cfg;
    char err[256] = "";
    int help = 0;
    assert_int_equal(parse(&cfg, err, &help, "--config", path, NULL), 0);
    assert_int_equal(cfg.ncerts, 2);
    assert_null(cfg.certs[0].key);
    assert_non_null(cfg.certs[1].key);
    assert_int_equal(cfg.keyservers.n, 2);
    assert_int_equal(cfg.alpn.n, 0);         /* works with a plain HTTP/1.1 backend as copied */
    assert_int_equal(cfg.proxy_protocol, 0); /* (test_examples.sh runs it behind curl) */
    assert_int_equal(kw_proxy_config_check(&cfg, err, sizeof(err)), 0);
    kw_proxy_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_yaml_and_precedence),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_master_secret_and_fetch),
        cmocka_unit_test(test_example_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
