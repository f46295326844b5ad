/*
 * kw_client_load: a steady stream of verified requests through one libkeyward client, with
 * per-server counters printed as it goes, for the fail-over test.
 *   kw_client_load --server A,B --cert F --key F --ca F --key-cert SITE_EC.crt
 *                  [--inflight N] [--seconds S] [--interval-ms I] [--timeout-ms T]
 * Keeps N ECDSA-P256 signature requests in flight for S seconds (each over a fresh digest, each
 * signature verified). Every I ms prints
 *   t=2.50 ok=1234 failed=0 srv0=127.0.0.1:p/up/1200 srv1=127.0.0.1:q/down/34
 * (address/state/replies so far) and at the end "total ok=X failed=Y". Exits 1 if any failed.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_tool.h"

#define USAGE                                                                                      \
    "kw_client_load --server A,B --cert F --key F --ca F --key-cert EC.crt [--inflight N] "        \
    "[--seconds S] [--interval-ms I] [--timeout-ms T]"

typedef struct slot_s {
    kw_request_t *req;
    uint8_t dgst[32];
} slot_t;

static EVP_PKEY *pub;
static uint8_t key_id[KW_DIGEST_LEN];

static int submit(kw_client_t *c, slot_t *s)
{
    kw_msg_t m;
    if (RAND_bytes(s->dgst, sizeof(s->dgst)) != 1)
        return -1;
    kw_tool_sign_msg(&m, KW_OP_ECDSA_SIGN_SHA256, key_id, s->dgst);
    return kw_client_submit(c, &m, &s->req);
}

/* 1 when the completed request carries a valid signature. */
static int check(slot_t *s)
{
    const uint8_t *sig = NULL;
    size_t len = 0;
    uint8_t remote = 0;
    int rc = kw_request_result(s->req, &sig, &len, &remote);
    if (rc != 0) {
        fprintf(stderr, "request failed: %s (remote 0x%02x)\n", kw_strerror(rc), remote);
        return 0;
    }
    int ok = kw_tool_verify(pub, sig, len, s->dgst, sizeof(s->dgst));
    if (!ok)
        fprintf(stderr, "a signature does not verify\n");
    return ok;
}

static void print_line(kw_client_t *c, double t, unsigned long ok, unsigned long failed)
{
    kw_server_stats_t st[8];
    size_t n = kw_client_stats(c, st, 8);
    printf("t=%.2f ok=%lu failed=%lu", t, ok, failed);
    for (size_t i = 0; i < n && i < 8; i++)
        printf(" srv%zu=%s/%s/%llu", i, st[i].address, st[i].up ? "up" : "down",
               (unsigned long long)st[i].completed);
    printf("\n");
    fflush(stdout);
}

static int run(kw_client_t *c, unsigned inflight, double seconds, double interval)
{
    slot_t *slots = calloc(inflight, sizeof(*slots));
    struct pollfd *pfd = calloc(inflight, sizeof(*pfd));
    unsigned long ok = 0, failed = 0;
    unsigned active = 0;
    double t0 = kw_tool_now();
    double next_print = interval;
    for (unsigned i = 0; slots != NULL && pfd != NULL && i < inflight; i++)
        active += submit(c, &slots[i]) == 0;
    while (active > 0) {
        for (unsigned i = 0; i < inflight; i++) {
            pfd[i].fd = slots[i].req != NULL ? kw_request_fd(slots[i].req) : -1;
            pfd[i].events = POLLIN;
        }
        poll(pfd, inflight, 50);
        double t = kw_tool_now() - t0;
        for (unsigned i = 0; i < inflight; i++) {
            if (slots[i].req == NULL || !kw_request_done(slots[i].req))
                continue;
            if (check(&slots[i]))
                ok++;
            else
                failed++;
            kw_request_free(slots[i].req);
            slots[i].req = NULL;
            if (t >= seconds || submit(c, &slots[i]) != 0)
                active--;
        }
        if (t >= next_print) {
            print_line(c, t, ok, failed);
            next_print += interval;
        }
    }
    print_line(c, kw_tool_now() - t0, ok, failed);
    printf("total ok=%lu failed=%lu\n", ok, failed);
    free(slots);
    free(pfd);
    return failed == 0 && ok > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    kw_tool_opts_t t = {0};
    kw_client_t *c = NULL;
    unsigned inflight = 16, timeout_ms = 0;
    double seconds = 10, interval_ms = 500;
    const kw_tool_arg_t args[] = {
        {"inflight", .u = &inflight},
        {"seconds", .d = &seconds},
        {"interval-ms", .d = &interval_ms},
        {"timeout-ms", .u = &timeout_ms},
        {.name = NULL},
    };
    kw_tool_parse(argc, argv, args, &t, USAGE);
    double interval = interval_ms / 1000.0;
    pub = t.key_cert != NULL ? kw_tool_cert_key(t.key_cert, key_id) : NULL;
    if (pub == NULL || inflight == 0 || interval <= 0) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 2;
    }
    if (kw_tool_client_new(&t, timeout_ms, &c) != 0)
        return 1;
    int status = run(c, inflight, seconds, interval);
    kw_client_free(c);
    EVP_PKEY_free(pub);
    return status;
}
