/*
 * keyward-proxy's guard (src/proxy/proxy_guard.c) on a real TLS 1.3 connection in memory: the
 * proxy's side is an SSL on memory BIOs as in proxy_conn.c, the client another SSL. KeyUpdates
 * (TLS messages without application data) are counted; KW_PROXY_CTL_MAX of them within the
 * window pass, one more cuts the client off (flooded) and drops the rest of its buffered input
 * at once (not even the byte after that update is read); application data is not counted; a new
 * window starts the count again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proxy.h"

typedef struct pair_s {
    kw_px_worker_t *worker; /* only its loop is used (uv_now) */
    kw_px_conn_t conn;      /* the proxy's side: conn.ssl, conn.rbio, conn.wbio */
    SSL_CTX *sctx;
    SSL_CTX *cctx;
    SSL *client;
    BIO *c_in;
    BIO *c_out;
} pair_t;

/* Moves what each side wrote to the other. */
static void shuttle(BIO *from, BIO *to)
{
    char buf[16384];
    int n;
    while (BIO_ctrl_pending(from) > 0) {
        n = BIO_read(from, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(BIO_write(to, buf, n), n);
    }
}

static void pair_up(pair_t *p)
{
    memset(p, 0, sizeof(*p));
    p->worker = calloc(1, sizeof(*p->worker));
    assert_non_null(p->worker);
    assert_int_equal(uv_loop_init(&p->worker->loop), 0);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"edge", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    p->sctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(p->sctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, key), 1);
    SSL_CTX_set_num_tickets(p->sctx, 0);
    X509_free(x);
    EVP_PKEY_free(key);
    p->cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(p->cctx, TLS1_3_VERSION);
    kw_px_conn_t *c = &p->conn;
    c->worker = p->worker;
    c->ssl = SSL_new(p->sctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    p->client = SSL_new(p->cctx);
    p->c_in = BIO_new(BIO_s_mem());
    p->c_out = BIO_new(BIO_s_mem());
    SSL_set_bio(p->client, p->c_in, p->c_out);
    SSL_set_connect_state(p->client);
    for (int i = 0; i < 10 && !(SSL_is_init_finished(c->ssl) && SSL_is_init_finished(p->client));
         i++) {
        (void)SSL_do_handshake(p->client);
        shuttle(p->c_out, c->rbio);
        (void)SSL_do_handshake(c->ssl);
        shuttle(c->wbio, p->c_in);
    }
    assert_true(SSL_is_init_finished(c->ssl));
    assert_true(SSL_is_init_finished(p->client));
    assert_int_equal(SSL_version(c->ssl), TLS1_3_VERSION);
    kw_px_guard_start(c); /* as proxy_conn.c does once the handshake is done */
}

static void pair_down(pair_t *p)
{
    SSL_free(p->conn.ssl);
    SSL_free(p->client);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    assert_int_equal(uv_loop_close(&p->worker->loop), 0);
    free(p->worker);
}

/* The client sends n KeyUpdates, each followed by one byte of data ('a' + i); all of it reaches
 * the proxy's input at once. */
static void send_updates(pair_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        char b = (char)('a' + i % 26);
        assert_int_equal(SSL_key_update(p->client, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
        assert_int_equal(SSL_write(p->client, &b, 1), 1);
    }
    shuttle(p->c_out, p->conn.rbio);
}

/* The proxy reads until SSL has nothing more (or 1000 reads). Returns the bytes read. */
static int drain(pair_t *p)
{
    char buf[256];
    int total = 0;
    for (int i = 0; i < 1000; i++) {
        int n = SSL_read(p->conn.ssl, buf, sizeof(buf));
        if (n <= 0)
            break;
        total += n;
    }
    ERR_clear_error();
    return total;
}

static void test_limit(void **state)
{
    (void)state;
    pair_t p;
    pair_up(&p);
    send_updates(&p, KW_PROXY_CTL_MAX);
    assert_int_equal(drain(&p), KW_PROXY_CTL_MAX); /* all data, every update taken */
    assert_int_equal(p.conn.ctl_count, KW_PROXY_CTL_MAX);
    assert_false(p.conn.flooded);
    /* data alone is not counted */
    assert_int_equal(SSL_write(p.client, "data", 4), 4);
    shuttle(p.c_out, p.conn.rbio);
    assert_int_equal(drain(&p), 4);
    assert_int_equal(p.conn.ctl_count, KW_PROXY_CTL_MAX);
    /* one more: cut off, and the rest of the input (9 more updates and bytes) is gone */
    send_updates(&p, 10);
    assert_int_equal(drain(&p), 0); /* not even the byte after the 33rd update */
    assert_true(p.conn.flooded);
    assert_int_equal(BIO_ctrl_pending(p.conn.rbio), 0);
    pair_down(&p);
}

static void test_new_window(void **state)
{
    (void)state;
    pair_t p;
    pair_up(&p);
    send_updates(&p, KW_PROXY_CTL_MAX);
    assert_int_equal(drain(&p), KW_PROXY_CTL_MAX);
    /* the window ends (as if KW_PROXY_CTL_WINDOW_MS had passed): counting starts again */
    p.conn.ctl_since = uv_now(&p.worker->loop) - KW_PROXY_CTL_WINDOW_MS;
    send_updates(&p, KW_PROXY_CTL_MAX);
    assert_int_equal(drain(&p), KW_PROXY_CTL_MAX);
    assert_false(p.conn.flooded);
    assert_int_equal(p.conn.ctl_count, KW_PROXY_CTL_MAX);
    pair_down(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_new_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
