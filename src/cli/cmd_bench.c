/*
 * keyward bench: a load generator for key servers. Keeps N requests in flight (kw_client_submit,
 * completion by eventfd) for S seconds over C independent clients (each its own I/O thread and
 * connections) and prints one line of key=value results that bench scripts parse:
 *   alg=ecdsa-sha256 inflight=16 connections=1 seconds=5.00 ops=12345 errors=0
 *   ops_per_sec=2469.0 p50_ms=6.100 p99_ms=9.800
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "cli_common.h"
#include "commands.h"
#include "kw_clock.h"
#include "kw_num.h"

static const char bench_help[] =
    "usage: keyward bench --alg ALG [--inflight N] [--seconds S] [--connections C]\n"
    "                     (--key-cert CERT | --key-id ID) --server HOST:PORT --cert F --key F --ca "
    "F\n"
    "Measures operations per second through key servers.\n"
    "  --alg ALG            a sign algorithm (see keyward sign --help), rsa-decrypt (needs\n"
    "                       --key-cert), or ping (no key)\n"
    "  --inflight N         requests kept in flight in total (default 16)\n"
    "  --seconds S          duration (default 5)\n"
    "  --connections C      independent clients, each with its own connection (default "
    "1)\n" KW_CLI_KEY_HELP KW_CLI_SERVER_HELP;

typedef struct bench_worker_s {
    kw_client_t *client;
    const kw_msg_t *msg;
    unsigned inflight;
    uint64_t end_us;
    uint64_t ops;
    uint64_t errors;
    int first_err;
    uint8_t first_remote;
    uint32_t *lat; /* microseconds */
    size_t nlat;
    size_t lat_cap;
    pthread_t thread;
} bench_worker_t;

static void record(bench_worker_t *w, kw_request_t *r, uint64_t started)
{
    uint8_t remote = 0;
    int rc = kw_request_result(r, NULL, NULL, &remote);
    if (rc != 0) {
        if (w->errors++ == 0) {
            w->first_err = rc;
            w->first_remote = remote;
        }
        return;
    }
    w->ops++;
    if (w->nlat == w->lat_cap) {
        size_t cap = w->lat_cap ? w->lat_cap * 2 : 65536;
        uint32_t *l = realloc(w->lat, cap * sizeof(*l));
        if (l == NULL)
            return;
        w->lat = l;
        w->lat_cap = cap;
    }
    w->lat[w->nlat++] = (uint32_t)(kw_clock_us() - started);
}

static void *worker_main(void *arg)
{
    bench_worker_t *w = arg;
    kw_request_t **reqs = calloc(w->inflight, sizeof(*reqs));
    uint64_t *started = calloc(w->inflight, sizeof(*started));
    struct pollfd *pfd = calloc(w->inflight, sizeof(*pfd));
    unsigned active = 0;
    for (unsigned i = 0; reqs != NULL && started != NULL && pfd != NULL && i < w->inflight; i++) {
        started[i] = kw_clock_us();
        if (kw_client_submit(w->client, w->msg, &reqs[i]) == 0)
            active++;
        else
            w->errors++;
    }
    while (active > 0) {
        for (unsigned i = 0; i < w->inflight; i++) {
            pfd[i].fd = reqs[i] != NULL ? kw_request_fd(reqs[i]) : -1;
            pfd[i].events = POLLIN;
        }
        poll(pfd, w->inflight, 100);
        uint64_t now = kw_clock_us();
        for (unsigned i = 0; i < w->inflight; i++) {
            if (reqs[i] == NULL || !kw_request_done(reqs[i]))
                continue;
            record(w, reqs[i], started[i]);
            kw_request_free(reqs[i]);
            reqs[i] = NULL;
            started[i] = now;
            if (now >= w->end_us || kw_client_submit(w->client, w->msg, &reqs[i]) != 0)
                active--;
        }
    }
    free(reqs);
    free(started);
    free(pfd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct bench_cfg_s {
    const char *alg;
    unsigned inflight;
    unsigned seconds;
    unsigned connections;
} bench_cfg_t;

/* The request the bench repeats; payload written into buf. Returns 0 or -1 (printed). */
static int build_msg(const bench_cfg_t *b, const kw_cli_key_t *k, kw_msg_t *msg, uint8_t *buf,
                     size_t cap)
{
    size_t len = 32;
    memset(msg, 0, sizeof(*msg));
    msg->has_opcode = 1;
    if (RAND_bytes(buf, 64) != 1)
        return -1;
    if (strcmp(b->alg, "ping") == 0) {
        msg->opcode = KW_OP_PING;
    } else if (strcmp(b->alg, "rsa-decrypt") == 0) {
        if (k->pub == NULL || !EVP_PKEY_is_a(k->pub, "RSA")) {
            kw_cli_error("rsa-decrypt needs --key-cert with an RSA certificate");
            return -1;
        }
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pub, NULL);
        int ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 &&
                 EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
                 EVP_PKEY_encrypt(ctx, buf + 64, &len, buf, 48) == 1;
        (void)cap;
        EVP_PKEY_CTX_free(ctx);
        if (!ok)
            return -1;
        memmove(buf, buf + 64, len);
        msg->opcode = KW_OP_RSA_DECRYPT;
    } else {
        const kw_cli_alg_t *alg = kw_cli_alg_find(b->alg);
        if (alg == NULL) {
            kw_cli_error("unknown --alg '%s' (use %s, rsa-decrypt or ping)", b->alg,
                         kw_cli_alg_names());
            return -1;
        }
        if (kw_cli_alg_check_key(alg, k) != 0 ||
            kw_cli_alg_payload(alg, buf, 32, buf, 64, &len) != 0)
            return -1;
        msg->opcode = alg->opcode;
    }
    msg->payload = kw_bytes(buf, len);
    if (msg->opcode != KW_OP_PING)
        kw_cli_key_set(k, msg);
    return 0;
}

static void report(const bench_cfg_t *b, bench_worker_t *w, double secs)
{
    uint64_t ops = 0, errors = 0;
    size_t n = 0;
    for (unsigned i = 0; i < b->connections; i++) {
        ops += w[i].ops;
        errors += w[i].errors;
        n += w[i].nlat;
    }
    uint32_t *all = malloc((n > 0 ? n : 1) * sizeof(*all));
    size_t k = 0;
    for (unsigned i = 0; all != NULL && i < b->connections; i++) {
        memcpy(all + k, w[i].lat, w[i].nlat * sizeof(*all));
        k += w[i].nlat;
    }
    double p50 = 0, p99 = 0;
    if (all != NULL && n > 0) {
        qsort(all, n, sizeof(*all), cmp_u32);
        p50 = all[n / 2] / 1000.0;
        p99 = all[(n * 99) / 100] / 1000.0;
    }
    free(all);
    printf("alg=%s inflight=%u connections=%u seconds=%.2f ops=%llu errors=%llu "
           "ops_per_sec=%.1f p50_ms=%.3f p99_ms=%.3f\n",
           b->alg, b->inflight, b->connections, secs, (unsigned long long)ops,
           (unsigned long long)errors, secs > 0 ? (double)ops / secs : 0.0, p50, p99);
}

static int run(const bench_cfg_t *b, const kw_cli_opts_t *o, const kw_msg_t *msg)
{
    bench_worker_t *w = calloc(b->connections, sizeof(*w));
    int status = KW_EXIT_FAIL;
    unsigned made = 0;
    if (w == NULL)
        return KW_EXIT_FAIL;
    for (; made < b->connections; made++) {
        if (kw_cli_client(o, &w[made].client) != 0)
            goto out;
        uint8_t warm[1024];
        uint8_t remote = 0;
        int rc = kw_client_call(w[made].client, msg, warm, sizeof(warm), NULL, &remote);
        if (rc != 0) {
            kw_cli_report(w[made].client, o, rc, remote, "bench warm-up");
            made++;
            goto out;
        }
    }
    uint64_t t0 = kw_clock_us();
    for (unsigned i = 0; i < b->connections; i++) {
        w[i].msg = msg;
        w[i].inflight = b->inflight / b->connections + (i < b->inflight % b->connections);
        w[i].end_us = t0 + (uint64_t)b->seconds * 1000000u;
        pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
    }
    uint64_t errors = 0;
    for (unsigned i = 0; i < b->connections; i++) {
        pthread_join(w[i].thread, NULL);
        errors += w[i].errors;
    }
    report(b, w, (double)(kw_clock_us() - t0) / 1e6);
    status = KW_EXIT_OK;
    for (unsigned i = 0; errors > 0 && i < b->connections; i++) {
        if (w[i].errors > 0) {
            kw_cli_report(w[i].client, o, w[i].first_err, w[i].first_remote, "some requests");
            status = KW_EXIT_FAIL;
            break;
        }
    }
out:
    for (unsigned i = 0; i < made; i++) {
        kw_client_free(w[i].client);
        free(w[i].lat);
    }
    free(w);
    return status;
}

static int parse_num(const char *arg, const char *name, unsigned max, unsigned *out)
{
    if (kw_parse_uint(arg, 1, max, out) != 0) {
        kw_cli_error("%s needs a number from 1 to %u", name, max);
        return -1;
    }
    return 0;
}

int kw_cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {KW_CLI_SERVER_OPTIONS,
                                         KW_CLI_KEY_OPTIONS,
                                         {"alg", required_argument, NULL, 'a'},
                                         {"inflight", required_argument, NULL, 'n'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"connections", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    kw_cli_opts_t o;
    bench_cfg_t b = {NULL, 16, 5, 1};
    int status = KW_EXIT_OK;
    kw_cli_opts_init(&o);
    for (;;) {
        int ch = kw_cli_getopt(&o, argc, argv, "h", opts, bench_help, &status);
        int bad = 0;
        if (ch == KW_CLI_OPT_END)
            break;
        if (ch == KW_CLI_OPT_EXIT)
            return status;
        if (ch == 'a')
            b.alg = optarg;
        else if (ch == 'n')
            bad = parse_num(optarg, "--inflight", 100000, &b.inflight) != 0;
        else if (ch == 's')
            bad = parse_num(optarg, "--seconds", 86400, &b.seconds) != 0;
        else /* 'c' */
            bad = parse_num(optarg, "--connections", 256, &b.connections) != 0;
        if (bad)
            return KW_EXIT_USAGE;
    }
    if (b.alg == NULL) {
        kw_cli_error("bench needs --alg ALG (%s, rsa-decrypt or ping)", kw_cli_alg_names());
        return KW_EXIT_USAGE;
    }
    if (b.connections > b.inflight)
        b.connections = b.inflight;
    kw_cli_key_t k;
    memset(&k, 0, sizeof(k));
    if (strcmp(b.alg, "ping") != 0 && kw_cli_key_load(&o, &k) != 0)
        return KW_EXIT_USAGE;
    kw_msg_t msg;
    uint8_t buf[1024];
    status = KW_EXIT_USAGE;
    if (build_msg(&b, &k, &msg, buf, sizeof(buf)) == 0)
        status = run(&b, &o, &msg);
    kw_cli_key_free(&k);
    return status;
}
