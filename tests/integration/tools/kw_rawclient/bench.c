/*
 * kw_rawclient --bench: keeps --inflight requests in flight on each of --connections connections
 * (one thread each) for --seconds and prints the throughput.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rawclient.h"

/* ---- benchmark ---- */

typedef struct bench_s {
    const opts_t *o;
    SSL_CTX *ctx;
    pthread_barrier_t *ready;
    double *start;
    long done, errors;
    int failed;
} bench_t;

/* Counts the complete reply frames in buf[0..*have), keeps the partial rest. */
static long take_replies(bench_t *b, uint8_t *buf, size_t *have)
{
    size_t pos = 0;
    long n = 0;
    while (*have - pos >= KW_HEADER_LEN) {
        size_t len = KW_HEADER_LEN + ((size_t)buf[pos + 2] << 8 | buf[pos + 3]);
        if (*have - pos < len)
            break;
        if (len < 12 || (buf[pos + 11] != KW_OP_RESPONSE && buf[pos + 11] != KW_OP_PONG))
            b->errors++;
        pos += len;
        n++;
    }
    memmove(buf, buf + pos, *have - pos);
    *have -= pos;
    return n;
}

static void *bench_thread(void *arg)
{
    bench_t *b = arg;
    const opts_t *o = b->o;
    conn_t c;
    long inflight = o->inflight;
    uint8_t one[KW_MAX_FRAME];
    size_t flen = build_frame(o, 1, one);
    uint8_t *many = malloc(flen * (size_t)inflight);
    uint8_t *buf = malloc(KW_MAX_FRAME + 65536);
    for (long i = 0; i < inflight; i++)
        memcpy(many + (size_t)i * flen, one, flen);
    b->failed = conn_open(o, b->ctx, &c) != 0;
    pthread_barrier_wait(b->ready);
    if (b->failed)
        return NULL;
    double end = *b->start + o->seconds;
    long outstanding = inflight;
    size_t have = 0;
    if (conn_write(&c, many, flen * (size_t)inflight) != 0)
        b->failed = 1;
    while (!b->failed && outstanding > 0) {
        int n = conn_read(&c, buf + have, KW_MAX_FRAME + 65536 - have);
        if (n <= 0) {
            b->failed = 1;
            break;
        }
        have += (size_t)n;
        long k = take_replies(b, buf, &have);
        b->done += k;
        if (kw_tool_now() < end) {
            if (k > 0 && conn_write(&c, many, flen * (size_t)k) != 0)
                b->failed = 1;
        } else {
            outstanding -= k;
        }
    }
    conn_close(&c);
    free(many);
    free(buf);
    return NULL;
}

int run_bench(const opts_t *o, SSL_CTX *ctx)
{
    long m = o->connections;
    pthread_t *th = calloc((size_t)m, sizeof(*th));
    bench_t *b = calloc((size_t)m, sizeof(*b));
    pthread_barrier_t ready;
    double start = 0;
    pthread_barrier_init(&ready, NULL, (unsigned)m + 1);
    for (long i = 0; i < m; i++) {
        b[i].o = o;
        b[i].ctx = ctx;
        b[i].ready = &ready;
        b[i].start = &start;
        pthread_create(&th[i], NULL, bench_thread, &b[i]);
    }
    start = kw_tool_now();
    pthread_barrier_wait(&ready);
    long done = 0, errors = 0, failed = 0;
    for (long i = 0; i < m; i++) {
        pthread_join(th[i], NULL);
        done += b[i].done;
        errors += b[i].errors;
        failed += b[i].failed;
    }
    double elapsed = kw_tool_now() - start;
    printf("bench connections=%ld inflight=%ld seconds=%.2f ops=%ld ops_per_sec=%.1f errors=%ld "
           "failed_connections=%ld\n",
           m, o->inflight, elapsed, done, (double)done / elapsed, errors, failed);
    free(th);
    free(b);
    pthread_barrier_destroy(&ready);
    return errors == 0 && failed == 0 ? 0 : 3;
}
