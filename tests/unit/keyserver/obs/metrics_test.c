/*
 * Metrics tests: counters by opcode and result, histogram buckets (cumulative, +Inf, sum, count),
 * gauges, certificate expiry with label escaping, concurrent updates from several threads adding
 * up exactly, and the HTTP endpoint on a loopback port (200 on /metrics, 404 elsewhere, 405 for
 * POST).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "kw_test_http.h"
#include "obs/metrics.h"

static char *render(kw_ks_metrics_t *m)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(kw_ks_metrics_render(m, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

static void has_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("missing line '%s' in:\n%s", line, text);
}

static void test_counters(void **state)
{
    (void)state;
    kw_ks_metrics_t *m = kw_ks_metrics_new(4);
    assert_non_null(m);
    kw_ks_metrics_request(m, KW_OP_ECDSA_SIGN_SHA256, 0, 50000);   /* 50 us */
    kw_ks_metrics_request(m, KW_OP_ECDSA_SIGN_SHA256, 0, 2000000); /* 2 ms */
    kw_ks_metrics_request(m, KW_OP_ECDSA_SIGN_SHA256, KW_ERR_KEY_NOT_FOUND, 1000);
    kw_ks_metrics_request(m, KW_OP_PING, 0, 7000000000ull); /* 7 s: only +Inf */
    kw_ks_metrics_request(m, 0x77, KW_ERR_BAD_OPCODE, 1000);
    kw_ks_metrics_request(m, KW_OP_RSA_DECRYPT, KW_ERR_NOT_AUTHORISED, 1000);
    kw_ks_metrics_request(m, KW_OP_RSA_DECRYPT, 0x99, 1000);
    char *t = render(m);
    has_line(t, "# TYPE keyward_requests_total counter");
    has_line(t, "keyward_requests_total{opcode=\"ecdsa-sha256\",result=\"ok\"} 2");
    has_line(t, "keyward_requests_total{opcode=\"ecdsa-sha256\",result=\"key-not-found\"} 1");
    has_line(t, "keyward_requests_total{opcode=\"ping\",result=\"ok\"} 1");
    has_line(t, "keyward_requests_total{opcode=\"unknown\",result=\"bad-opcode\"} 1");
    has_line(t, "keyward_requests_total{opcode=\"rsa-decrypt\",result=\"not-authorised\"} 1");
    has_line(t, "keyward_requests_total{opcode=\"rsa-decrypt\",result=\"other\"} 1");
    /* key operations are listed at zero so rates exist before the first request */
    has_line(t, "keyward_requests_total{opcode=\"ed25519\",result=\"ok\"} 0");
    has_line(t, "# TYPE keyward_request_duration_seconds histogram");
    has_line(t, "keyward_request_duration_seconds_bucket{opcode=\"ecdsa-sha256\",le=\"0.0001\"} 2");
    has_line(t, "keyward_request_duration_seconds_bucket{opcode=\"ecdsa-sha256\",le=\"0.001\"} 2");
    has_line(t, "keyward_request_duration_seconds_bucket{opcode=\"ecdsa-sha256\",le=\"0.0025\"} 3");
    has_line(t, "keyward_request_duration_seconds_bucket{opcode=\"ecdsa-sha256\",le=\"+Inf\"} 3");
    has_line(t, "keyward_request_duration_seconds_sum{opcode=\"ecdsa-sha256\"} 0.002051000");
    has_line(t, "keyward_request_duration_seconds_count{opcode=\"ecdsa-sha256\"} 3");
    has_line(t, "keyward_request_duration_seconds_bucket{opcode=\"ping\",le=\"5\"} 0");
    has_line(t, "keyward_request_duration_seconds_bucket{opcode=\"ping\",le=\"+Inf\"} 1");
    assert_null(strstr(t, "opcode=\"ed25519\",le=")); /* no histogram without observations */
    free(t);
    kw_ks_metrics_free(m);
}

static void test_gauges(void **state)
{
    (void)state;
    kw_ks_metrics_t *m = kw_ks_metrics_new(2);
    kw_ks_metrics_inflight_add(m, 5);
    kw_ks_metrics_inflight_add(m, -2);
    kw_ks_metrics_connections_add(m, 3);
    kw_ks_metrics_connections_add(m, -1);
    kw_ks_metrics_worker_busy(m, 1500000000ull);
    kw_ks_metrics_reload(m, 1);
    kw_ks_metrics_reload(m, 0);
    kw_ks_metrics_reload(m, 0);
    kw_ks_metrics_cert_t certs[] = {{"rsa2048", 1900000000}, {"odd\"name\\x\ny", 42}};
    assert_int_equal(kw_ks_metrics_set_keys(m, 7, certs, 2), 0);
    char *t = render(m);
    has_line(t, "keyward_inflight 3");
    has_line(t, "keyward_connections 2");
    has_line(t, "keyward_connections_accepted_total 3");
    has_line(t, "keyward_keys_loaded 7");
    has_line(t, "keyward_workers 2");
    has_line(t, "keyward_worker_busy_seconds_total 1.500000");
    has_line(t, "keyward_reloads_total{result=\"ok\"} 1");
    has_line(t, "keyward_reloads_total{result=\"failed\"} 2");
    has_line(t, "keyward_certificate_expiry_timestamp_seconds{key=\"rsa2048\"} 1900000000");
    has_line(t, "keyward_certificate_expiry_timestamp_seconds{key=\"odd\\\"name\\\\x\\ny\"} 42");
    has_line(t, "# TYPE keyward_worker_utilisation gauge");
    free(t);
    /* a reload replaces the list */
    assert_int_equal(kw_ks_metrics_set_keys(m, 1, certs, 1), 0);
    t = render(m);
    has_line(t, "keyward_keys_loaded 1");
    assert_null(strstr(t, "odd"));
    free(t);
    kw_ks_metrics_free(m);
    /* NULL metrics: every update is a no-op */
    kw_ks_metrics_request(NULL, 1, 0, 1);
    kw_ks_metrics_inflight_add(NULL, 1);
    kw_ks_metrics_connections_add(NULL, 1);
    kw_ks_metrics_worker_busy(NULL, 1);
    kw_ks_metrics_reload(NULL, 1);
    assert_int_equal(kw_ks_metrics_set_keys(NULL, 1, NULL, 0), 0);
}

static void *hammer(void *arg)
{
    kw_ks_metrics_t *m = arg;
    for (int i = 0; i < 100000; i++) {
        kw_ks_metrics_request(m, KW_OP_RSA_SIGN_SHA256, 0, (uint64_t)i);
        kw_ks_metrics_inflight_add(m, 1);
        kw_ks_metrics_inflight_add(m, -1);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    kw_ks_metrics_t *m = kw_ks_metrics_new(4);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, m), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    char *t = render(m);
    has_line(t, "keyward_requests_total{opcode=\"rsa-pkcs1-sha256\",result=\"ok\"} 400000");
    has_line(t, "keyward_request_duration_seconds_count{opcode=\"rsa-pkcs1-sha256\"} 400000");
    has_line(t, "keyward_inflight 0");
    free(t);
    kw_ks_metrics_free(m);
}

/* ---- HTTP ---- */

static void test_http(void **state)
{
    (void)state;
    kw_ks_metrics_t *m = kw_ks_metrics_new(1);
    kw_ks_metrics_request(m, KW_OP_PING, 0, 10);
    kw_ks_metrics_http_t *h = NULL;
    char err[256] = "";
    char listen[64];
    int port = kw_test_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    assert_int_equal(kw_ks_metrics_http_start(m, listen, NULL, &h, err, sizeof(err)), 0);
    char *r = kw_test_http(port, "GET", "/metrics", NULL);
    assert_non_null(strstr(r, "HTTP/1.0 200") != NULL ? r : strstr(r, "HTTP/1.1 200"));
    assert_non_null(strstr(r, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r, "keyward_requests_total{opcode=\"ping\",result=\"ok\"} 1"));
    free(r);
    r = kw_test_http(port, "GET", "/", NULL);
    assert_non_null(strstr(r, " 404 "));
    free(r);
    r = kw_test_http(port, "POST", "/metrics", NULL);
    assert_non_null(strstr(r, " 405 "));
    free(r);
    /* the same port cannot be served twice; bad addresses are refused */
    kw_ks_metrics_http_t *h2 = NULL;
    assert_int_equal(kw_ks_metrics_http_start(m, listen, NULL, &h2, err, sizeof(err)), KW_EIO);
    assert_int_equal(kw_ks_metrics_http_start(m, "nonsense", NULL, &h2, err, sizeof(err)),
                     KW_ECONFIG);
    kw_ks_metrics_http_stop(h);
    kw_ks_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
