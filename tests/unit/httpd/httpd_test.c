/*
 * src/httpd tests, over a real loopback socket with raw HTTP/1.0 requests: 405 for a method other
 * than GET/HEAD, /health and /ready (200 or 503 and the callback's why) without a token, 401 with
 * WWW-Authenticate without or with a wrong bearer token, 404 for another path only behind the
 * token, /metrics (the callback's text, Prometheus content type; 500 when it fails), HEAD without
 * a body, the per-address connection limit, and the start's errors (bad address, port in use,
 * token file missing).
 */
#include <time.h>

#include "keyward/error.h"
#include "kw_httpd.h"
#include "kw_test_http.h"

#define TOKEN "0123456789abcdef-test-token"

/* What the callbacks answer; the test flips it. */
typedef struct {
    int healthy, ready, metrics_fail;
    int metrics_calls;
} pages_state_t;

static int health_cb(void *ctx, char *why, size_t len)
{
    pages_state_t *s = ctx;
    if (!s->healthy) {
        snprintf(why, len, "event loop stalled for 2500 ms");
    }
    return s->healthy;
}

static int ready_cb(void *ctx, char *why, size_t len)
{
    pages_state_t *s = ctx;
    snprintf(why, len, "%s", s->ready ? "ready: 3 keys" : "starting");
    return s->ready;
}

static int metrics_cb(void *ctx, char **body, size_t *len)
{
    pages_state_t *s = ctx;
    s->metrics_calls++;
    if (s->metrics_fail) {
        return KW_ENOMEM;
    }
    *body = strdup("test_metric 42\n");
    *len = strlen("test_metric 42\n");
    return *body != NULL ? 0 : KW_ENOMEM;
}

/* The response's status code (0: none) and its body (after the blank line). */
static int status_of(const char *r)
{
    return strncmp(r, "HTTP/1.", 7) == 0 && strlen(r) > 12 ? atoi(r + 9) : 0;
}

static const char *body_of(const char *r)
{
    const char *b = strstr(r, "\r\n\r\n");
    return b != NULL ? b + 4 : "";
}

static void expect(int port, const char *method, const char *path, const char *token, int status,
                   const char *body)
{
    char *r = kw_test_http(port, method, path, token);
    if (status_of(r) != status || (body != NULL && strcmp(body_of(r), body) != 0)) {
        print_error("%s %s: expected %d \"%s\", got:\n%s\n", method, path, status,
                    body != NULL ? body : "*", r);
        free(r);
        fail();
    }
    free(r);
}

static char *start(kw_httpd_t **h, const char *token_file, const kw_httpd_pages_t *pages, int *port)
{
    static char listen[64];
    char err[256] = "";
    *port = kw_test_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", *port);
    int rc = kw_httpd_start(listen, token_file, 8, pages, h, err, sizeof(err));
    if (rc != 0) {
        print_error("kw_httpd_start: %s\n", err);
    }
    assert_int_equal(rc, 0);
    return listen;
}

static void test_routes_with_token(void **state)
{
    (void)state;
    char path[] = "/tmp/kw_httpd_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, TOKEN "\n", sizeof(TOKEN)), (ssize_t)sizeof(TOKEN));
    close(fd);
    pages_state_t s = {.healthy = 1, .ready = 0};
    kw_httpd_pages_t pages = {
        .ctx = &s, .health = health_cb, .ready = ready_cb, .metrics = metrics_cb};
    kw_httpd_t *h = NULL;
    int port = 0;
    start(&h, path, &pages, &port);
    unlink(path);

    expect(port, "POST", "/metrics", TOKEN, 405, "GET or HEAD only\n");
    expect(port, "DELETE", "/health", NULL, 405, "GET or HEAD only\n");
    /* /health and /ready: no token, the callbacks' verdict and why */
    expect(port, "GET", "/health", NULL, 200, "ok\n");
    expect(port, "GET", "/ready", NULL, 503, "starting\n");
    s.healthy = 0;
    s.ready = 1;
    expect(port, "GET", "/health", NULL, 503, "event loop stalled for 2500 ms\n");
    expect(port, "GET", "/ready", NULL, 200, "ready: 3 keys\n");
    /* anything else behind the token */
    char *r = kw_test_http(port, "GET", "/metrics", NULL);
    assert_int_equal(status_of(r), 401);
    assert_non_null(strstr(r, "WWW-Authenticate: Bearer realm=\"keyward\"\r\n"));
    assert_string_equal(body_of(r), "a bearer token is required (Authorization: Bearer TOKEN)\n");
    free(r);
    expect(port, "GET", "/metrics", "0123456789abcdef-test-tokeX", 401, NULL);
    expect(port, "GET", "/nothing", NULL, 401, NULL);
    assert_int_equal(s.metrics_calls, 0);
    expect(port, "GET", "/nothing", TOKEN, 404, "not found: try /metrics, /health or /ready\n");
    r = kw_test_http(port, "GET", "/metrics", TOKEN);
    assert_int_equal(status_of(r), 200);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_string_equal(body_of(r), "test_metric 42\n");
    free(r);
    /* HEAD: the status and headers, no body */
    expect(port, "HEAD", "/metrics", TOKEN, 200, "");
    s.metrics_fail = 1;
    expect(port, "GET", "/metrics", TOKEN, 500, "out of memory\n");
    assert_int_equal(s.metrics_calls, 3);
    kw_httpd_stop(h);
}

static void test_no_token_no_callbacks(void **state)
{
    (void)state;
    pages_state_t s = {.healthy = 1, .ready = 1};
    kw_httpd_pages_t pages = {.ctx = &s, .metrics = metrics_cb};
    kw_httpd_t *h = NULL;
    int port = 0;
    start(&h, NULL, &pages, &port);
    expect(port, "GET", "/health", NULL, 200, "ok\n");
    expect(port, "GET", "/ready", NULL, 200, "ok\n");
    expect(port, "GET", "/metrics", NULL, 200, "test_metric 42\n");
    expect(port, "GET", "/", NULL, 404, NULL);
    kw_httpd_stop(h);
    kw_httpd_stop(NULL);
}

/* KW_HTTPD_PER_IP connections from one address at once; one more is closed unanswered. */
static void test_per_ip_limit(void **state)
{
    (void)state;
    kw_httpd_pages_t pages = {.ctx = NULL};
    kw_httpd_t *h = NULL;
    int port = 0;
    start(&h, NULL, &pages, &port);
    int held[KW_HTTPD_PER_IP];
    for (int i = 0; i < KW_HTTPD_PER_IP; i++) {
        held[i] = kw_test_connect(port);
    }
    char *r = kw_test_http(port, "GET", "/health", NULL);
    assert_string_equal(r, "");
    free(r);
    for (int i = 0; i < KW_HTTPD_PER_IP; i++) {
        close(held[i]);
    }
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) { /* until the server saw the closes */
        r = kw_test_http(port, "GET", "/health", NULL);
        status = status_of(r);
        free(r);
        if (status != 200) {
            nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        }
    }
    assert_int_equal(status, 200);
    kw_httpd_stop(h);
}

static void test_start_errors(void **state)
{
    (void)state;
    kw_httpd_pages_t pages = {.ctx = NULL};
    kw_httpd_t *h = NULL;
    kw_httpd_t *h2 = NULL;
    char err[256] = "";
    int port = 0;
    const char *listen = start(&h, NULL, &pages, &port);
    assert_int_equal(kw_httpd_start(listen, NULL, 8, &pages, &h2, err, sizeof(err)), KW_EIO);
    assert_non_null(strstr(err, "cannot listen there"));
    assert_int_equal(kw_httpd_start("nonsense", NULL, 8, &pages, &h2, err, sizeof(err)),
                     KW_ECONFIG);
    assert_non_null(strstr(err, "--metrics nonsense: "));
    assert_int_equal(kw_httpd_start(NULL, NULL, 8, &pages, &h2, err, sizeof(err)), KW_ECONFIG);
    assert_int_not_equal(
        kw_httpd_start("127.0.0.1:0", "/nonexistent/token", 8, &pages, &h2, err, sizeof(err)), 0);
    assert_null(h2);
    kw_httpd_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_with_token),
        cmocka_unit_test(test_no_token_no_callbacks),
        cmocka_unit_test(test_per_ip_limit),
        cmocka_unit_test(test_start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
