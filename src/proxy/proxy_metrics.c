/*
 * keyward-proxy metrics: handshakes by result, TLS version and key type, resumed vs full, the
 * key-operation latency histogram, handshakes waiting on a key server, connections, backend
 * failures, reloads, the fleet ticket keys' fetches and each certificate's expiry, in the
 * Prometheus text format at /metrics (with --metrics-token-file, only to "Authorization: Bearer
 * TOKEN", else 401); /health (200, or 503 when an event loop is stalled) and /ready (200, or 503
 * and why) need no token (proxy_ready.c). src/httpd (kw_httpd.h) serves these pages from its own
 * thread, as it does the key server's (bounded: connections, per address, idle time).
 */
#include "proxy_metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "kw_clock.h"
#include "kw_textbuf.h"
#include "kw_httpd.h"
#include "proxy.h"

#define KW_PXM_CONNS   32 /* HTTP connections at once (per address and idle: kw_httpd.h) */
#define KW_PXM_RESULTS 3
#define KW_PXM_VERS    3
#define KW_PXM_KEYS    4
#define KW_PXM_BUCKETS 14

static const char *const result_names[KW_PXM_RESULTS] = {"ok", "failed", "timeout"};
static const char *const version_names[KW_PXM_VERS] = {"TLSv1.2", "TLSv1.3", "none"};
static const char *const key_names[KW_PXM_KEYS] = {"rsa", "ec", "ed25519", "none"};
/* Key-operation latency bucket bounds, in microseconds (Prometheus prints them in seconds). */
static const unsigned long bucket_us[KW_PXM_BUCKETS] = {250,    500,     1000,    2500,   5000,
                                                        10000,  25000,   50000,   100000, 250000,
                                                        500000, 1000000, 2500000, 5000000};

struct kw_px_metrics_s {
    kw_httpd_t *httpd; /* the endpoint (kw_httpd.h) */
    kw_proxy_t *proxy;
    atomic_ulong hs[KW_PXM_RESULTS][KW_PXM_VERS][KW_PXM_KEYS];
    atomic_ulong resumed, full;
    atomic_ulong keyop_bucket[KW_PXM_BUCKETS]; /* not cumulative: rendered as running sums */
    atomic_ulong keyop_count, keyop_sum_us;
    atomic_long waiting;
    atomic_ulong reloads_ok, reloads_failed;
};

static int version_index(const SSL *ssl)
{
    switch (SSL_version(ssl)) {
    case TLS1_2_VERSION:
        return 0;
    case TLS1_3_VERSION:
        return 1;
    default:
        return 2;
    }
}

static int key_index(SSL *ssl)
{
    X509 *cert = SSL_get_certificate(ssl);
    EVP_PKEY *pub = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    switch (pub != NULL ? EVP_PKEY_get_base_id(pub) : 0) {
    case EVP_PKEY_RSA:
        return 0;
    case EVP_PKEY_EC:
        return 1;
    case EVP_PKEY_ED25519:
        return 2;
    default:
        return 3;
    }
}

void kw_px_metrics_handshake(kw_proxy_t *p, SSL *ssl, kw_px_hs_result_t result)
{
    kw_px_metrics_t *m = p->metrics;
    if (m == NULL || ssl == NULL) {
        return;
    }
    int v = result == KW_PX_HS_OK ? version_index(ssl)
                                  : (SSL_is_init_finished(ssl) ? version_index(ssl) : 2);
    atomic_fetch_add(&m->hs[result][v][key_index(ssl)], 1);
    if (result == KW_PX_HS_OK) {
        atomic_fetch_add(SSL_session_reused(ssl) ? &m->resumed : &m->full, 1);
    }
}

void kw_px_metrics_keyop(kw_px_conn_t *c, int was_waiting, int waits)
{
    kw_px_metrics_t *m = c->worker->proxy->metrics;
    if (m == NULL || (!was_waiting && !waits)) {
        return;
    }
    uint64_t now = kw_clock_us();
    if (was_waiting && c->keyop_us != 0 && now >= c->keyop_us) {
        unsigned long us = (unsigned long)(now - c->keyop_us);
        size_t b = 0;
        while (b < KW_PXM_BUCKETS && us > bucket_us[b]) {
            b++;
        }
        if (b < KW_PXM_BUCKETS) {
            atomic_fetch_add(&m->keyop_bucket[b], 1);
        }
        atomic_fetch_add(&m->keyop_count, 1);
        atomic_fetch_add(&m->keyop_sum_us, us);
    }
    c->keyop_us = waits ? now : 0;
}

void kw_px_metrics_waiting(kw_proxy_t *p, int delta)
{
    if (p->metrics != NULL) {
        atomic_fetch_add(&p->metrics->waiting, delta);
    }
}

void kw_px_metrics_reload(kw_proxy_t *p, int ok)
{
    if (p->metrics != NULL) {
        atomic_fetch_add(ok ? &p->metrics->reloads_ok : &p->metrics->reloads_failed, 1);
    }
}

/* A label value: the subject's CN (or the one-line subject), with '"' and '\' left out. */
static void subject_label(X509 *leaf, char *out, size_t outlen)
{
    char raw[256] = "";
    X509_NAME *name = X509_get_subject_name(leaf);
    if (X509_NAME_get_text_by_NID(name, NID_commonName, raw, sizeof(raw)) <= 0) {
        X509_NAME_oneline(name, raw, sizeof(raw));
    }
    size_t j = 0;
    for (size_t i = 0; raw[i] != '\0' && j + 1 < outlen; i++) {
        if (raw[i] != '"' && raw[i] != '\\' && raw[i] != '\n') {
            out[j++] = raw[i];
        }
    }
    out[j] = '\0';
}

static void render_handshakes(kw_textbuf_t *b, kw_px_metrics_t *m)
{
    kw_textbuf_printf(
        b,
        "# HELP keyward_proxy_handshakes_total TLS handshakes by result, TLS version and key type "
        "of the certificate.\n# TYPE keyward_proxy_handshakes_total counter\n");
    for (int r = 0; r < KW_PXM_RESULTS; r++) {
        for (int v = 0; v < KW_PXM_VERS; v++) {
            for (int k = 0; k < KW_PXM_KEYS; k++) {
                unsigned long n = atomic_load(&m->hs[r][v][k]);
                if (n != 0 || (r == 0 && v < 2 && k < 2)) {
                    kw_textbuf_printf(b,
                                      "keyward_proxy_handshakes_total{result=\"%s\",version=\"%s\","
                                      "key_type=\"%s\"} %lu\n",
                                      result_names[r], version_names[v], key_names[k], n);
                }
            }
        }
    }
    kw_textbuf_printf(
        b,
        "# HELP keyward_proxy_handshakes_mode_total Completed handshakes: full, or resumed "
        "from a session (no key operation).\n# TYPE keyward_proxy_handshakes_mode_total "
        "counter\nkeyward_proxy_handshakes_mode_total{mode=\"full\"} %lu\n"
        "keyward_proxy_handshakes_mode_total{mode=\"resumed\"} %lu\n",
        atomic_load(&m->full), atomic_load(&m->resumed));
    kw_textbuf_printf(
        b, "# HELP keyward_proxy_key_operation_seconds Time a handshake waited for a key server's "
           "answer, per key operation.\n# TYPE keyward_proxy_key_operation_seconds histogram\n");
    unsigned long cum = 0;
    for (size_t i = 0; i < KW_PXM_BUCKETS; i++) {
        cum += atomic_load(&m->keyop_bucket[i]);
        kw_textbuf_printf(b, "keyward_proxy_key_operation_seconds_bucket{le=\"%g\"} %lu\n",
                          (double)bucket_us[i] / 1e6, cum);
    }
    unsigned long count = atomic_load(&m->keyop_count);
    kw_textbuf_printf(
        b,
        "keyward_proxy_key_operation_seconds_bucket{le=\"+Inf\"} %lu\n"
        "keyward_proxy_key_operation_seconds_sum %.6f\nkeyward_proxy_key_operation_seconds_count "
        "%lu\n",
        count, (double)atomic_load(&m->keyop_sum_us) / 1e6, count);
    long waiting = atomic_load(&m->waiting);
    kw_textbuf_printf(
        b,
        "# HELP keyward_proxy_handshakes_waiting Handshakes paused on a key server's answer "
        "now.\n# TYPE keyward_proxy_handshakes_waiting gauge\nkeyward_proxy_handshakes_waiting "
        "%ld\n",
        waiting > 0 ? waiting : 0);
}

static void render_conns(kw_textbuf_t *b, kw_proxy_t *p)
{
    kw_proxy_stats_t *s = &p->stats;
    kw_textbuf_printf(
        b,
        "# HELP keyward_proxy_connections Client connections open now.\n"
        "# TYPE keyward_proxy_connections gauge\nkeyward_proxy_connections %u\n"
        "# HELP keyward_proxy_connections_total Client connections accepted.\n"
        "# TYPE keyward_proxy_connections_total counter\nkeyward_proxy_connections_total %lu\n"
        "# HELP keyward_proxy_connections_refused_total Connections closed at accept (over "
        "max_connections).\n# TYPE keyward_proxy_connections_refused_total counter\n"
        "keyward_proxy_connections_refused_total %lu\n"
        "# HELP keyward_proxy_backend_failures_total Backend connects or streams that failed.\n"
        "# TYPE keyward_proxy_backend_failures_total counter\n"
        "keyward_proxy_backend_failures_total %lu\n"
        "# HELP keyward_proxy_floods_total Clients closed for TLS messages without data.\n"
        "# TYPE keyward_proxy_floods_total counter\nkeyward_proxy_floods_total %lu\n",
        atomic_load(&p->nconns), atomic_load(&s->accepted), atomic_load(&s->refused),
        atomic_load(&s->backend_failures), atomic_load(&s->floods));
    kw_textbuf_printf(
        b,
        "# HELP keyward_proxy_reloads_total SIGHUP reloads: ok, or failed (the running state "
        "kept).\n# TYPE keyward_proxy_reloads_total counter\n"
        "keyward_proxy_reloads_total{result=\"ok\"} %lu\n"
        "keyward_proxy_reloads_total{result=\"failed\"} %lu\n",
        atomic_load(&p->metrics->reloads_ok), atomic_load(&p->metrics->reloads_failed));
}

/* The fleet session-ticket keys (--tickets-from-keyserver): nothing without it. */
static void render_tickets(kw_textbuf_t *b, kw_proxy_t *p)
{
    kw_px_tickets_stats_t st;
    kw_px_tickets_stats(p->tickets, &st);
    if (!st.fleet) {
        return;
    }
    int64_t now = (int64_t)time(NULL);
    kw_textbuf_printf(
        b,
        "# HELP keyward_proxy_ticket_keys_fetches_total Fetches of the fleet's session-ticket "
        "keys from the key servers, by result.\n"
        "# TYPE keyward_proxy_ticket_keys_fetches_total counter\n"
        "keyward_proxy_ticket_keys_fetches_total{result=\"ok\"} %llu\n"
        "keyward_proxy_ticket_keys_fetches_total{result=\"failed\"} %llu\n"
        "# HELP keyward_proxy_ticket_keys_fleet 1 while tickets use the fleet's keys, 0 while they "
        "use a local random key (no fetch yet, or the last fetched keys have expired).\n"
        "# TYPE keyward_proxy_ticket_keys_fleet gauge\nkeyward_proxy_ticket_keys_fleet %d\n"
        "# HELP keyward_proxy_ticket_keys_last_fetch_timestamp_seconds When the ticket keys were "
        "last fetched successfully (Unix time; 0: never).\n"
        "# TYPE keyward_proxy_ticket_keys_last_fetch_timestamp_seconds gauge\n"
        "keyward_proxy_ticket_keys_last_fetch_timestamp_seconds %lld\n",
        (unsigned long long)st.fetches_ok, (unsigned long long)st.fetches_failed, st.have_set,
        (long long)st.last_fetch);
    if (st.last_fetch > 0) {
        kw_textbuf_printf(
            b,
            "# HELP keyward_proxy_ticket_keys_age_seconds Seconds since the ticket keys were last "
            "fetched successfully (absent before the first).\n"
            "# TYPE keyward_proxy_ticket_keys_age_seconds gauge\n"
            "keyward_proxy_ticket_keys_age_seconds %lld\n",
            (long long)(now > st.last_fetch ? now - st.last_fetch : 0));
    }
}

static void render_certs(kw_textbuf_t *b, kw_proxy_t *p)
{
    kw_textbuf_printf(b,
                      "# HELP keyward_proxy_certificate_expiry_timestamp_seconds When each served "
                      "certificate expires (notAfter, Unix time).\n"
                      "# TYPE keyward_proxy_certificate_expiry_timestamp_seconds gauge\n");
    pthread_rwlock_rdlock(&p->tls.lock);
    for (size_t i = 0; i < p->tls.nsites; i++) {
        char subject[256];
        if (p->tls.sites[i].leaf == NULL) {
            continue;
        }
        subject_label(p->tls.sites[i].leaf, subject, sizeof(subject));
        kw_textbuf_printf(
            b,
            "keyward_proxy_certificate_expiry_timestamp_seconds{index=\"%zu\",subject=\"%s\"} "
            "%lld\n",
            i + 1, subject, (long long)p->tls.sites[i].not_after);
    }
    pthread_rwlock_unlock(&p->tls.lock);
}

int kw_px_metrics_render(kw_proxy_t *p, char **out, size_t *len)
{
    kw_textbuf_t b;
    if (p->metrics == NULL || kw_textbuf_init(&b, 4096) != 0) {
        return KW_ENOMEM;
    }
    render_handshakes(&b, p->metrics);
    render_conns(&b, p);
    render_tickets(&b, p);
    render_certs(&b, p);
    return kw_textbuf_take(&b, out, len);
}

static int health_page(void *ctx, char *why, size_t len)
{
    return kw_px_health_check(ctx, why, len);
}

static int ready_page(void *ctx, char *why, size_t len)
{
    return kw_px_ready_check(ctx, why, len);
}

static int metrics_page(void *ctx, char **body, size_t *len)
{
    return kw_px_metrics_render(ctx, body, len);
}

int kw_px_metrics_start(kw_proxy_t *p, const char *listen, const char *token_file, char *err,
                        size_t errlen)
{
    kw_px_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    m->proxy = p;
    p->metrics = m; /* before the endpoint: a request may come at once */
    const kw_httpd_pages_t pages = {
        .ctx = p, .health = health_page, .ready = ready_page, .metrics = metrics_page};
    int rc = kw_httpd_start(listen, token_file, KW_PXM_CONNS, &pages, &m->httpd, err, errlen);
    if (rc != 0) {
        p->metrics = NULL;
        free(m);
        return rc;
    }
    return 0;
}

void kw_px_metrics_stop(kw_proxy_t *p)
{
    if (p->metrics == NULL) {
        return;
    }
    kw_httpd_stop(p->metrics->httpd);
    free(p->metrics);
    p->metrics = NULL;
}
