/*
 * Audit log tests (src/keyserver/obs/audit.c): the JSON line of a request (every field, time
 * format, IPv4/IPv6, escaping of quotes, backslashes, control bytes and invalid UTF-8 while valid
 * UTF-8 passes, strings cut without breaking the JSON), and the writer: lines reach the file within
 * the flush interval without a close, everything is written at close, and reopen follows a
 * rotation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "obs/audit.h"
#include "keyward/error.h"

static kw_ks_audit_rec_t make_rec(const char *sni, const uint8_t *ip, size_t ip_len)
{
    static uint8_t digest[KW_DIGEST_LEN];
    static const uint8_t payload[32] = {0xde, 0xad, 0xbe, 0xef};
    kw_msg_t msg;
    kw_ks_audit_rec_t r;
    memset(&msg, 0, sizeof(msg));
    for (size_t i = 0; i < KW_DIGEST_LEN; i++)
        digest[i] = (uint8_t)i;
    msg.opcode = KW_OP_ECDSA_SIGN_SHA256;
    msg.has_opcode = 1;
    msg.digest = kw_bytes(digest, KW_DIGEST_LEN);
    msg.payload = kw_bytes(payload, sizeof(payload));
    if (sni != NULL)
        msg.sni = kw_bytes(sni, strlen(sni));
    if (ip != NULL)
        msg.client_ip = kw_bytes(ip, ip_len);
    kw_ks_audit_rec_init(&r, &msg);
    return r;
}

static void test_line_fields(void **state)
{
    (void)state;
    static const uint8_t ip4[4] = {192, 0, 2, 7};
    char line[KW_AUDIT_LINE_MAX];
    kw_ks_audit_rec_t r = make_rec("www.example.com", ip4, 4);
    r.wall_ms = 1700000000123; /* 2023-11-14T22:13:20.123Z */
    size_t n = kw_ks_audit_format(&r, "edge", 0, r.start_ns + 1500000, line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_string_equal(line,
                        "{\"time\":\"2023-11-14T22:13:20.123Z\",\"edge\":\"edge\","
                        "\"client_ip\":\"192.0.2.7\",\"sni\":\"www.example.com\",\"key\":"
                        "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\","
                        "\"opcode\":\"ecdsa-sha256\",\"result\":\"ok\",\"latency_us\":1500}\n");
    assert_null(strstr(line, "dead")); /* never the payload */
}

static void test_reload_line(void **state)
{
    (void)state;
    char line[512];
    size_t n =
        kw_ks_audit_format_reload(1700000000123, "ticket_secret", "changed", line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "{\"time\":\"2023-11-14T22:13:20.123Z\",\"event\":\"reload\","
                              "\"part\":\"ticket_secret\",\"result\":\"changed\"}\n");
}

static void test_results_and_ipv6(void **state)
{
    (void)state;
    static const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    char line[KW_AUDIT_LINE_MAX];
    kw_ks_audit_rec_t r = make_rec(NULL, ip6, 16);
    kw_ks_audit_format(&r, NULL, KW_ERR_NOT_AUTHORISED, r.start_ns, line, sizeof(line));
    assert_non_null(strstr(line, "\"client_ip\":\"2001:db8::1\",\"sni\":\"\""));
    assert_non_null(strstr(line, "\"edge\":\"\""));
    assert_non_null(strstr(line, "\"result\":\"denied\""));
    assert_string_equal(kw_ks_audit_result_name(KW_ERR_KEY_NOT_FOUND), "key-not-found");
    assert_string_equal(kw_ks_audit_result_name(KW_ERR_UPSTREAM_UNAVAILABLE),
                        "upstream-unavailable");
    r = make_rec(NULL, ip6, 5); /* a client IP of another size is left out */
    kw_ks_audit_format(&r, "e", 0, 0, line, sizeof(line));
    assert_non_null(strstr(line, "\"client_ip\":\"\""));
    assert_non_null(strstr(line, "\"latency_us\":0}")); /* a clock before the start gives 0 */
}

static void test_escaping(void **state)
{
    (void)state;
    char line[KW_AUDIT_LINE_MAX];
    kw_ks_audit_rec_t r = make_rec("a\"b\\c\x01\x7f\xff\xc3(", NULL, 0);
    kw_ks_audit_format(&r,
                       "\xc3\xa9"
                       "dge \xe2\x82\xac \xed\xa0\x80",
                       0, 0, line, sizeof(line));
    assert_non_null(strstr(line, "\"sni\":\"a\\\"b\\\\c\\u0001\\u007f\\ufffd\\ufffd(\""));
    /* valid UTF-8 passes, a surrogate (ED A0 80) is three invalid bytes */
    assert_non_null(strstr(line, "\"edge\":\"\xc3\xa9"
                                 "dge \xe2\x82\xac \\ufffd\\ufffd\\ufffd\""));
    for (const char *p = line; *p != '\n'; p++)
        assert_true((unsigned char)*p >= 0x20);
}

static void test_long_strings_are_cut(void **state)
{
    (void)state;
    char edge[3000];
    char sni[400];
    char line[KW_AUDIT_LINE_MAX];
    memset(edge, '"', sizeof(edge) - 1); /* each needs 2 bytes escaped */
    edge[sizeof(edge) - 1] = '\0';
    memset(sni, '\x01', sizeof(sni) - 1); /* 6 bytes each; cut to KW_AUDIT_SNI_MAX first */
    sni[sizeof(sni) - 1] = '\0';
    kw_ks_audit_rec_t r = make_rec(sni, NULL, 0);
    assert_int_equal(r.sni_len, KW_AUDIT_SNI_MAX);
    size_t n = kw_ks_audit_format(&r, edge, 0, 0, line, sizeof(line));
    assert_true(n < sizeof(line));
    assert_int_equal(line[n - 1], '\n');
    assert_non_null(strstr(line, "\\\"\",\"client_ip\"")); /* edge cut after a whole escape */
    assert_non_null(strstr(line, "\"result\":\"ok\",\"latency_us\":0}\n"));
    char small[600];
    n = kw_ks_audit_format(&r, edge, 0, 0, small, sizeof(small));
    assert_true(n < sizeof(small));
    assert_non_null(strstr(small, "\"latency_us\":0}\n"));
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int ch;
    if (f == NULL)
        return 0;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static void test_writer(void **state)
{
    (void)state;
    char dir[] = "/tmp/kw_audit_XXXXXX";
    char path[64];
    char rotated[64];
    char err[256];
    kw_ks_audit_t *a = NULL;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/audit.log.1", dir);
    assert_int_equal(kw_ks_audit_open("/nonexistent/dir/audit.log", 0, &a, err, sizeof(err)),
                     KW_EIO);
    assert_non_null(strstr(err, "--audit-log"));
    assert_int_equal(kw_ks_audit_open(path, 0, &a, err, sizeof(err)), 0);
    kw_ks_audit_rec_t r = make_rec("x", NULL, 0);
    for (int i = 0; i < 100; i++)
        kw_ks_audit_log(a, &r, "edge", 0);
    /* On disk within the flush interval, without closing. */
    size_t n = 0;
    for (int waited = 0; waited < 3 * KW_AUDIT_FLUSH_MS && n < 100; waited += 20) {
        usleep(20000);
        n = count_lines(path);
    }
    assert_int_equal(n, 100);
    /* Rotation: rename, reopen, new lines go to the new file. */
    assert_int_equal(rename(path, rotated), 0);
    kw_ks_audit_reopen(a);
    usleep(100000);
    for (int i = 0; i < 5; i++)
        kw_ks_audit_log(a, &r, "edge", 0);
    kw_ks_audit_close(a); /* writes the rest */
    assert_int_equal(count_lines(rotated), 100);
    assert_int_equal(count_lines(path), 5);
    kw_ks_audit_log(NULL, &r, "edge", 0); /* no audit log: nothing */
    kw_ks_audit_close(NULL);
    unlink(rotated);
    unlink(path);
    rmdir(dir);
}

/* kw_ks_audit_sync: the lines are in the file when it returns (with and without fsync), and a
 * buffer that would overflow is written rather than dropped. */
static void test_sync(void **state)
{
    (void)state;
    char dir[] = "/tmp/kw_audit_XXXXXX";
    char path[64];
    char err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    for (int fsync = 0; fsync < 2; fsync++) {
        kw_ks_audit_t *a = NULL;
        assert_int_equal(kw_ks_audit_open(path, fsync, &a, err, sizeof(err)), 0);
        kw_ks_audit_rec_t r = make_rec("x", NULL, 0);
        for (int i = 0; i < 7; i++)
            kw_ks_audit_log(a, &r, "edge", 0);
        kw_ks_audit_sync(a);
        assert_int_equal(count_lines(path), (size_t)(fsync * 20007 + 7));
        kw_ks_audit_sync(a);            /* nothing buffered: nothing written */
        for (int i = 0; i < 20000; i++) /* > KW_AUDIT_BUFFER_MAX bytes of lines */
            kw_ks_audit_log(a, &r, "edge", 0);
        assert_int_equal(kw_ks_audit_dropped(a), 0);
        kw_ks_audit_close(a);
        assert_int_equal(count_lines(path), (size_t)(fsync * 20007 + 20007));
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_fields), cmocka_unit_test(test_sync),
        cmocka_unit_test(test_reload_line), cmocka_unit_test(test_results_and_ipv6),
        cmocka_unit_test(test_escaping),    cmocka_unit_test(test_long_strings_are_cut),
        cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
