/*
 * Metrics storage and Prometheus text rendering. Hot-path updates are relaxed atomic additions to
 * fixed arrays indexed by opcode and result (no locks, no allocation); only the per-key
 * certificate list, replaced on reload, sits behind a mutex. Rendering reads the atomics without
 * stopping anyone, so a scrape sees each counter at some instant during the scrape.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "kw_clock.h"
#include "kw_textbuf.h"
#include "keyward/protocol.h"
#include "obs/metrics.h"

#define N_OPS_MAX    64 /* request opcodes with a name, plus "unknown" (index 0) */
#define N_RESULTS    15 /* ok, 0x01..0x0A, 0x40..0x42, other */
#define RESULT_OTHER 14

static const double bucket_bounds[KW_METRICS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
};

typedef struct op_hist_s {
    atomic_uint_fast64_t buckets[KW_METRICS_BUCKETS + 1]; /* not cumulative; last is > 5 s */
    atomic_uint_fast64_t sum_ns;
    atomic_uint_fast64_t count;
} op_hist_t;

typedef struct cert_entry_s {
    char *key;
    int64_t not_after;
} cert_entry_t;

struct kw_ks_metrics_s {
    uint8_t op_index[256];      /* opcode -> index into the arrays below; 0: unknown */
    uint8_t op_code[N_OPS_MAX]; /* index -> opcode */
    size_t n_ops;
    uint64_t bucket_ns[KW_METRICS_BUCKETS];
    atomic_uint_fast64_t requests[N_OPS_MAX][N_RESULTS];
    op_hist_t hist[N_OPS_MAX];
    atomic_int_fast64_t inflight;
    atomic_int_fast64_t connections;
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t busy_ns;
    atomic_uint_fast64_t keys;
    atomic_uint_fast64_t reloads_ok;
    atomic_uint_fast64_t reloads_failed;
    atomic_int_fast64_t last_reload;
    unsigned workers;
    uint64_t start_ns;
    int64_t start_time;
    pthread_mutex_t lock; /* guards certs */
    cert_entry_t *certs;
    size_t n_certs;
};

static int is_request_opcode(uint8_t op)
{
    if (op == KW_OP_RESPONSE || op == KW_OP_PONG || op == KW_OP_ERROR)
        return 0;
    return strcmp(kw_opcode_name(op), "unknown") != 0;
}

kw_ks_metrics_t *kw_ks_metrics_new(unsigned workers)
{
    kw_ks_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->n_ops = 1; /* index 0: unknown opcodes */
    for (unsigned op = 0; op < 256 && m->n_ops < N_OPS_MAX; op++) {
        if (!is_request_opcode((uint8_t)op))
            continue;
        m->op_index[op] = (uint8_t)m->n_ops;
        m->op_code[m->n_ops++] = (uint8_t)op;
    }
    for (size_t i = 0; i < KW_METRICS_BUCKETS; i++)
        m->bucket_ns[i] = (uint64_t)(bucket_bounds[i] * 1e9 + 0.5);
    m->workers = workers;
    m->start_ns = kw_clock_ns();
    m->start_time = (int64_t)time(NULL);
    return m;
}

static void certs_free(cert_entry_t *certs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(certs[i].key);
    free(certs);
}

void kw_ks_metrics_free(kw_ks_metrics_t *m)
{
    if (m == NULL)
        return;
    certs_free(m->certs, m->n_certs);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static size_t result_index(uint8_t result)
{
    if (result <= KW_ERR_EXPIRED)
        return result;
    if (result >= KW_ERR_NOT_AUTHORISED && result <= KW_ERR_UPSTREAM_UNAVAILABLE)
        return 11u + (size_t)(result - KW_ERR_NOT_AUTHORISED);
    return RESULT_OTHER;
}

static const char *result_name(size_t index)
{
    static char other[] = "other";
    if (index == 0)
        return "ok";
    if (index <= KW_ERR_EXPIRED)
        return kw_remote_error_name((uint8_t)index);
    if (index < RESULT_OTHER)
        return kw_remote_error_name((uint8_t)(KW_ERR_NOT_AUTHORISED + (index - 11)));
    return other;
}

void kw_ks_metrics_request(kw_ks_metrics_t *m, uint8_t opcode, uint8_t result, uint64_t duration_ns)
{
    if (m == NULL)
        return;
    size_t op = m->op_index[opcode];
    atomic_fetch_add_explicit(&m->requests[op][result_index(result)], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < KW_METRICS_BUCKETS && duration_ns > m->bucket_ns[b])
        b++;
    op_hist_t *h = &m->hist[op];
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, duration_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void kw_ks_metrics_inflight_add(kw_ks_metrics_t *m, int64_t delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->inflight, delta, memory_order_relaxed);
}

void kw_ks_metrics_connections_add(kw_ks_metrics_t *m, int64_t delta)
{
    if (m == NULL)
        return;
    atomic_fetch_add_explicit(&m->connections, delta, memory_order_relaxed);
    if (delta > 0)
        atomic_fetch_add_explicit(&m->connections_total, (uint64_t)delta, memory_order_relaxed);
}

void kw_ks_metrics_worker_busy(kw_ks_metrics_t *m, uint64_t ns)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->busy_ns, ns, memory_order_relaxed);
}

int kw_ks_metrics_set_keys(kw_ks_metrics_t *m, size_t keys, const kw_ks_metrics_cert_t *certs,
                           size_t n_certs)
{
    if (m == NULL)
        return 0;
    cert_entry_t *copy = n_certs > 0 ? calloc(n_certs, sizeof(*copy)) : NULL;
    if (n_certs > 0 && copy == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < n_certs; i++) {
        copy[i].key = strdup(certs[i].key != NULL ? certs[i].key : "");
        copy[i].not_after = certs[i].not_after;
        if (copy[i].key == NULL) {
            certs_free(copy, i);
            return KW_ENOMEM;
        }
    }
    pthread_mutex_lock(&m->lock);
    cert_entry_t *old = m->certs;
    size_t n_old = m->n_certs;
    m->certs = copy;
    m->n_certs = n_certs;
    atomic_store_explicit(&m->keys, keys, memory_order_relaxed);
    pthread_mutex_unlock(&m->lock);
    certs_free(old, n_old);
    return 0;
}

void kw_ks_metrics_reload(kw_ks_metrics_t *m, int ok)
{
    if (m == NULL)
        return;
    atomic_fetch_add_explicit(ok ? &m->reloads_ok : &m->reloads_failed, 1, memory_order_relaxed);
    if (ok)
        atomic_store_explicit(&m->last_reload, (int64_t)time(NULL), memory_order_relaxed);
}

int64_t kw_ks_metrics_cert_not_after(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
    struct tm tm;
    int64_t t = -1;
    if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
        t = (int64_t)timegm(&tm);
    X509_free(x);
    ERR_clear_error();
    return t;
}

/* ---- rendering ---- */

/* A label value with \, " and newline escaped (text format 0.0.4), at most 255 bytes in. */
static void put_label(kw_textbuf_t *b, const char *s)
{
    char esc[2 * 256 + 1];
    size_t n = 0;
    for (size_t i = 0; s[i] != '\0' && i < 255; i++) {
        if (s[i] == '\\' || s[i] == '"' || s[i] == '\n') {
            esc[n++] = '\\';
            esc[n++] = s[i] == '\n' ? 'n' : s[i];
        } else {
            esc[n++] = s[i];
        }
    }
    esc[n] = '\0';
    kw_textbuf_printf(b, "%s", esc);
}

static const char *op_name(const kw_ks_metrics_t *m, size_t op)
{
    return op == 0 ? "unknown" : kw_opcode_name(m->op_code[op]);
}

static uint64_t load(atomic_uint_fast64_t *a)
{
    return (uint64_t)atomic_load_explicit(a, memory_order_relaxed);
}

static void render_requests(kw_ks_metrics_t *m, kw_textbuf_t *b)
{
    kw_textbuf_printf(b, "# HELP keyward_requests_total Requests answered, by opcode and result.\n"
                         "# TYPE keyward_requests_total counter\n");
    for (size_t op = 0; op < m->n_ops; op++) {
        for (size_t r = 0; r < N_RESULTS; r++) {
            uint64_t v = load(&m->requests[op][r]);
            if (v == 0 && !(r == 0 && op != 0 && kw_opcode_uses_key(m->op_code[op])))
                continue;
            kw_textbuf_printf(b, "keyward_requests_total{opcode=\"%s\",result=\"%s\"} %llu\n",
                              op_name(m, op), result_name(r), (unsigned long long)v);
        }
    }
}

static void render_histograms(kw_ks_metrics_t *m, kw_textbuf_t *b)
{
    kw_textbuf_printf(
        b, "# HELP keyward_request_duration_seconds Time from reading a request to queuing its "
           "reply, by opcode.\n"
           "# TYPE keyward_request_duration_seconds histogram\n");
    for (size_t op = 0; op < m->n_ops; op++) {
        op_hist_t *h = &m->hist[op];
        uint64_t count = load(&h->count);
        if (count == 0)
            continue;
        const char *name = op_name(m, op);
        uint64_t cum = 0;
        for (size_t i = 0; i < KW_METRICS_BUCKETS; i++) {
            cum += load(&h->buckets[i]);
            kw_textbuf_printf(
                b, "keyward_request_duration_seconds_bucket{opcode=\"%s\",le=\"%g\"} %llu\n", name,
                bucket_bounds[i], (unsigned long long)cum);
        }
        cum += load(&h->buckets[KW_METRICS_BUCKETS]);
        kw_textbuf_printf(
            b, "keyward_request_duration_seconds_bucket{opcode=\"%s\",le=\"+Inf\"} %llu\n", name,
            (unsigned long long)cum);
        kw_textbuf_printf(b, "keyward_request_duration_seconds_sum{opcode=\"%s\"} %.9f\n", name,
                          (double)load(&h->sum_ns) / 1e9);
        kw_textbuf_printf(b, "keyward_request_duration_seconds_count{opcode=\"%s\"} %llu\n", name,
                          (unsigned long long)cum);
    }
}

static void render_gauges(kw_ks_metrics_t *m, kw_textbuf_t *b)
{
    kw_textbuf_printf(b,
                      "# HELP keyward_inflight Key operations queued or running on the workers.\n"
                      "# TYPE keyward_inflight gauge\nkeyward_inflight %lld\n",
                      (long long)atomic_load_explicit(&m->inflight, memory_order_relaxed));
    kw_textbuf_printf(b,
                      "# HELP keyward_connections Open client connections.\n"
                      "# TYPE keyward_connections gauge\nkeyward_connections %lld\n",
                      (long long)atomic_load_explicit(&m->connections, memory_order_relaxed));
    kw_textbuf_printf(b,
                      "# HELP keyward_connections_accepted_total Client connections accepted.\n"
                      "# TYPE keyward_connections_accepted_total counter\n"
                      "keyward_connections_accepted_total %llu\n",
                      (unsigned long long)load(&m->connections_total));
    kw_textbuf_printf(b,
                      "# HELP keyward_keys_loaded Keys in the key store.\n"
                      "# TYPE keyward_keys_loaded gauge\nkeyward_keys_loaded %llu\n",
                      (unsigned long long)load(&m->keys));
    double busy = (double)load(&m->busy_ns) / 1e9;
    double up = (double)(kw_clock_ns() - m->start_ns) / 1e9;
    unsigned w = m->workers > 0 ? m->workers : 1;
    kw_textbuf_printf(b,
                      "# HELP keyward_workers Worker threads for key operations.\n"
                      "# TYPE keyward_workers gauge\nkeyward_workers %u\n",
                      m->workers);
    kw_textbuf_printf(
        b,
        "# HELP keyward_worker_busy_seconds_total Time spent on key operations (workers, and the "
        "loop thread for the jobs it signs itself); "
        "rate() / keyward_workers is the utilisation.\n"
        "# TYPE keyward_worker_busy_seconds_total counter\n"
        "keyward_worker_busy_seconds_total %.6f\n",
        busy);
    kw_textbuf_printf(
        b,
        "# HELP keyward_worker_utilisation Busy seconds / (worker count x uptime) since start.\n"
        "# TYPE keyward_worker_utilisation gauge\nkeyward_worker_utilisation %.6f\n",
        up > 0 ? busy / (up * w) : 0.0);
    kw_textbuf_printf(
        b,
        "# HELP keyward_reloads_total Reloads (SIGHUP), by result.\n"
        "# TYPE keyward_reloads_total counter\n"
        "keyward_reloads_total{result=\"ok\"} %llu\nkeyward_reloads_total{result=\"failed\"} "
        "%llu\n",
        (unsigned long long)load(&m->reloads_ok), (unsigned long long)load(&m->reloads_failed));
    kw_textbuf_printf(b,
                      "# HELP keyward_start_time_seconds Start time of the process (Unix time).\n"
                      "# TYPE keyward_start_time_seconds gauge\nkeyward_start_time_seconds %lld\n",
                      (long long)m->start_time);
}

static void render_certs(kw_ks_metrics_t *m, kw_textbuf_t *b)
{
    kw_textbuf_printf(b,
                      "# HELP keyward_certificate_expiry_timestamp_seconds notAfter of each key's "
                      "certificate (Unix time).\n"
                      "# TYPE keyward_certificate_expiry_timestamp_seconds gauge\n");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_certs; i++) {
        kw_textbuf_printf(b, "keyward_certificate_expiry_timestamp_seconds{key=\"");
        put_label(b, m->certs[i].key);
        kw_textbuf_printf(b, "\"} %lld\n", (long long)m->certs[i].not_after);
    }
    pthread_mutex_unlock(&m->lock);
}

int kw_ks_metrics_render(kw_ks_metrics_t *m, char **out, size_t *len)
{
    kw_textbuf_t b;
    if (kw_textbuf_init(&b, 16384) != 0)
        return KW_ENOMEM;
    render_requests(m, &b);
    render_histograms(m, &b);
    render_gauges(m, &b);
    render_certs(m, &b);
    return kw_textbuf_take(&b, out, len);
}

uint64_t kw_ks_metrics_keys(kw_ks_metrics_t *m)
{
    return m != NULL ? atomic_load_explicit(&m->keys, memory_order_relaxed) : 0;
}
