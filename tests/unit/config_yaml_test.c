/*
 * YAML config tests: a complete valid file fills every setting; flags override the file (a list
 * flag replaces the file's list); an empty file keeps the defaults; and each kind of error is
 * refused with the file name, the line of the offending value and a reason that names it.
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

#include "config/config.h"
#include "keyward/error.h"

static char path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/kwcfg.%d.yaml", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static const char full[] = "# a complete key server config\n"
                           "listen: \"[::1]:2500\"\n"
                           "cert: /etc/kw/ks.crt\n"
                           "key: /etc/kw/ks.key\n"
                           "ca: /etc/kw/ca.crt\n"
                           "keys:\n"
                           "  - /etc/kw/keys\n"
                           "  - /etc/kw/more-keys\n"
                           "pkcs11:\n"
                           "  - module: /usr/lib/softhsm/libsofthsm2.so\n"
                           "    token: keyward\n"
                           "    pin_file: /etc/kw/pin\n"
                           "  - uri: \"pkcs11:token=hsm;object=www?pin-source=file:/p\"\n"
                           "    module: /opt/hsm/p11.so\n"
                           "workers: 3\n"
                           "upstreams: [\"a.internal:2407\", \"b.internal:2407\"]\n"
                           "allow:\n"
                           "  - cn: edge1\n"
                           "    keys: [www, \"sha256:"
                           "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff\"]\n"
                           "  - spki: \"sha256:"
                           "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd\"\n"
                           "    keys: \"*\"\n"
                           "audit_log: /var/log/kw/audit.log\n"
                           "metrics: 127.0.0.1:9247\n"
                           "log_level: warn\n"
                           "ctx_cache: 0\n"
                           "limits:\n"
                           "  max_connections: 1000\n"
                           "  max_inflight: 64\n"
                           "  request_timeout_ms: 2500\n"
                           "  idle_timeout_ms: 30000\n"
                           "  handshake_timeout_ms: 4000\n";

static void test_full(void **state)
{
    (void)state;
    kw_ks_config_t cfg;
    char err[512] = "";
    kw_ks_config_defaults(&cfg);
    write_file(full);
    if (kw_ks_config_load_file(&cfg, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg.listen, "[::1]:2500");
    assert_string_equal(cfg.cert, "/etc/kw/ks.crt");
    assert_string_equal(cfg.key, "/etc/kw/ks.key");
    assert_string_equal(cfg.ca, "/etc/kw/ca.crt");
    assert_int_equal(cfg.n_keys_dirs, 2);
    assert_string_equal(cfg.keys_dirs[0], "/etc/kw/keys");
    assert_string_equal(cfg.keys_dirs[1], "/etc/kw/more-keys");
    assert_int_equal(cfg.n_pkcs11, 2);
    assert_string_equal(cfg.pkcs11[0].module, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(cfg.pkcs11[0].token, "keyward");
    assert_string_equal(cfg.pkcs11[0].pin_file, "/etc/kw/pin");
    assert_null(cfg.pkcs11[0].uri);
    assert_string_equal(cfg.pkcs11[1].uri, "pkcs11:token=hsm;object=www?pin-source=file:/p");
    assert_string_equal(cfg.pkcs11[1].module, "/opt/hsm/p11.so");
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.n_upstreams, 2);
    assert_string_equal(cfg.upstreams[1], "b.internal:2407");
    assert_int_equal(cfg.n_allow, 2);
    assert_string_equal(cfg.allow[0].cn, "edge1");
    assert_int_equal(cfg.allow[0].n_keys, 2);
    assert_string_equal(cfg.allow[0].keys[1],
                        "sha256:00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff");
    assert_string_equal(cfg.allow[1].spki,
                        "sha256:abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd");
    assert_int_equal(cfg.allow[1].n_keys, 1);
    assert_string_equal(cfg.allow[1].keys[0], "*");
    assert_string_equal(cfg.audit_log, "/var/log/kw/audit.log");
    assert_string_equal(cfg.metrics, "127.0.0.1:9247");
    assert_int_equal(cfg.log_level, KW_LOG_WARN);
    assert_int_equal(cfg.ctx_cache_slots, 0);
    assert_int_equal(cfg.max_connections, 1000);
    assert_int_equal(cfg.max_inflight, 64);
    assert_int_equal(cfg.request_timeout_ms, 2500);
    assert_int_equal(cfg.idle_timeout_ms, 30000);
    assert_int_equal(cfg.handshake_timeout_ms, 4000);
    assert_int_equal(kw_ks_config_validate(&cfg, err, sizeof(err)), 0);
    kw_ks_config_free(&cfg);
}

static void test_flags_override(void **state)
{
    (void)state;
    kw_ks_config_t cfg;
    char err[512] = "";
    write_file(full);
    char *argv[] = {"keyward-keyserver",
                    "--config",
                    path,
                    "--workers",
                    "5",
                    "--keys",
                    "/flag/keys",
                    "--pkcs11-module",
                    "/m.so",
                    "--pkcs11-token",
                    "t",
                    "--pkcs11-pin-file",
                    "/pin",
                    NULL};
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
    kw_ks_config_defaults(&cfg);
    if (kw_ks_config_load(&cfg, argc, argv, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg.workers, 5);       /* flag wins */
    assert_int_equal(cfg.max_inflight, 64); /* file value kept */
    assert_string_equal(cfg.config_file, path);
    assert_int_equal(cfg.n_keys_dirs, 1); /* the flag list replaces the file's */
    assert_string_equal(cfg.keys_dirs[0], "/flag/keys");
    assert_int_equal(cfg.n_pkcs11, 1);
    assert_string_equal(cfg.pkcs11[0].module, "/m.so");
    assert_string_equal(cfg.pkcs11[0].token, "t");
    assert_string_equal(cfg.pkcs11[0].pin_file, "/pin");
    kw_ks_config_free(&cfg);
}

static void test_empty(void **state)
{
    (void)state;
    kw_ks_config_t cfg;
    kw_ks_config_t def;
    char err[512] = "";
    kw_ks_config_defaults(&def);
    kw_ks_config_defaults(&cfg);
    write_file("# nothing set\n");
    assert_int_equal(kw_ks_config_load_file(&cfg, path, err, sizeof(err)), 0);
    write_file("---\n");
    assert_int_equal(kw_ks_config_load_file(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.workers, def.workers);
    assert_null(cfg.listen);
    assert_int_equal(cfg.n_keys_dirs, 0);
    kw_ks_config_free(&cfg);
    kw_ks_config_free(&def);
}

/* The file with text must be refused with ":LINE: " and why in the message. */
static void refused(const char *text, int line, const char *why)
{
    kw_ks_config_t cfg;
    char err[1024] = "";
    char want[96];
    kw_ks_config_defaults(&cfg);
    write_file(text);
    int rc = kw_ks_config_load_file(&cfg, path, err, sizeof(err));
    kw_ks_config_free(&cfg);
    if (rc != KW_ECONFIG)
        fail_msg("accepted (rc %d): %s", rc, text);
    snprintf(want, sizeof(want), "%s:%d: ", path, line);
    if (strncmp(err, want, strlen(want)) != 0 || strstr(err, why) == NULL)
        fail_msg("for:\n%s\nexpected '%s...%s', got '%s'", text, want, why, err);
}

static void test_errors(void **state)
{
    (void)state;
    refused("listen: x:1\n\nworker: 4\n", 3, "unknown key 'worker'");
    refused("limits:\n  max_conections: 5\n", 2, "unknown key 'max_conections'");
    refused("workers: 2\nworkers: 3\n", 2, "'workers' is given twice");
    refused("cert: a\nlisten: [a, b]\n", 2, "'listen' must be a single value");
    refused("keys:\n  a: b\n", 2, "'keys' must be a list of values");
    refused("keys:\n  - [a]\n", 2, "each item must be a single value");
    refused("limits: 5\n", 1, "'limits' must be a map");
    refused("pkcs11: softhsm\n", 1, "'pkcs11' must be a list of maps");
    refused("pkcs11:\n  - module: /m.so\n    token: t\n", 2, "needs module, token and pin_file");
    refused("pkcs11:\n  - uri: \"token=x\"\n", 2, "starting 'pkcs11:'");
    refused("pkcs11:\n  - modul: /m.so\n", 2, "unknown key 'modul'");
    refused("# comment\nworkers: many\n", 2, "'workers': ");
    refused("workers: -1\n", 1, "'workers': ");
    refused("limits:\n  max_inflight: 1e9\n", 2, "'max_inflight': ");
    refused("log_level: loud\n", 1, "'log_level': ");
    refused("cert: &c /a\nkey: *c\n", 2, "aliases");
    refused("keys: [a, b\n", 2, "YAML syntax error");
    refused("cert: a\n---\ncert: b\n", 2, "only one YAML document");
    refused("- a\n- b\n", 1, "must be a map of settings");
    refused("ca: /x\ncert:\n", 2, "'cert' has no value");
    refused("allow:\n  - cn: edge\n", 2, "needs keys");
    refused("allow:\n  - keys: [a]\n", 2, "needs cn, san or spki");
    refused("metrics: \"a\\0b\"\n", 1, "NUL");
    refused("enable_ops: [rsa-decrypt, rsa-sign]\n", 1, "'enable_ops': invalid value 'rsa-sign'");
    refused("allow:\n  - cn: e\n    keys: [\"*\"]\n    ops: [signatures, nope]\n", 4,
            "unknown operation 'nope'");
    refused("allow_all: yes\n", 1, "write true or false");
}

/* enable_ops, a rule's ops (an empty list grants nothing), allow_all. */
static void test_operations(void **state)
{
    (void)state;
    kw_ks_config_t cfg;
    char err[512] = "";
    kw_ks_config_defaults(&cfg);
    write_file("enable_ops: [rsa-decrypt, rsa-raw-decrypt]\n"
               "allow:\n"
               "  - cn: gokeyless\n"
               "    keys: [\"*\"]\n"
               "    ops: [default, rsa-decrypt]\n"
               "  - cn: monitor\n"
               "    keys: [\"*\"]\n"
               "    ops: []\n"
               "  - cn: edge\n"
               "    keys: [\"*\"]\n");
    assert_int_equal(kw_ks_config_load_file(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_enable_ops, 2);
    assert_string_equal(cfg.enable_ops[1], "rsa-raw-decrypt");
    assert_int_equal(cfg.n_allow, 3);
    assert_true(cfg.allow[0].has_ops);
    assert_int_equal(cfg.allow[0].n_ops, 2);
    assert_true(cfg.allow[1].has_ops);
    assert_int_equal(cfg.allow[1].n_ops, 0);
    assert_false(cfg.allow[2].has_ops);
    assert_false(cfg.allow_all);
    kw_ks_config_free(&cfg);
    kw_ks_config_defaults(&cfg);
    write_file("allow_all: true\n");
    assert_int_equal(kw_ks_config_load_file(&cfg, path, err, sizeof(err)), 0);
    assert_true(cfg.allow_all);
    kw_ks_config_free(&cfg);
}

static void test_missing_file(void **state)
{
    (void)state;
    kw_ks_config_t cfg;
    char err[512] = "";
    kw_ks_config_defaults(&cfg);
    assert_int_equal(kw_ks_config_load_file(&cfg, "/nonexistent/ks.yaml", err, sizeof(err)),
                     KW_EIO);
    assert_non_null(strstr(err, "/nonexistent/ks.yaml"));
    kw_ks_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),         cmocka_unit_test(test_flags_override),
        cmocka_unit_test(test_empty),        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_missing_file), cmocka_unit_test(test_operations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
