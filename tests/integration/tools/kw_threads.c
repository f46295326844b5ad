/*
 * kw_threads: many threads sharing one libkeyward client, each making blocking calls
 * (kw_client_call) back to back, as a multi-threaded server using the provider without ASYNC
 * does. This drives the client's direct paths concurrently: callers sending while the I/O thread
 * sleeps and waiters reading their connection themselves (kwc_core_lead), with other threads'
 * requests on the same connection.
 *   kw_threads --server HOST:PORT --cert F --key F --ca F --key-cert SITE_EC.crt
 *              [--threads N] [--seconds S]
 * Every request is an ECDSA-P256 signature over a fresh digest, verified, or (every fourth) a
 * ping whose payload must come back. Prints "threads=N ok=X failed=Y ops_per_sec=Z" and exits 1
 * when any call failed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "keyward/error.h"
#include "kw_tool.h"

typedef struct shared_s {
    kw_client_t *client;
    EVP_PKEY *pub;
    uint8_t key_id[KW_DIGEST_LEN];
    double until;
    atomic_ulong ok;
    atomic_ulong failed;
} shared_t;

/* One signature, verified. Returns 1 when it worked. */
static int one_sign(shared_t *s)
{
    uint8_t dgst[32];
    uint8_t sig[256];
    size_t len = 0;
    uint8_t remote = 0;
    kw_msg_t m;
    if (RAND_bytes(dgst, sizeof(dgst)) != 1)
        return 0;
    kw_tool_sign_msg(&m, KW_OP_ECDSA_SIGN_SHA256, s->key_id, dgst);
    int rc = kw_client_call(s->client, &m, sig, sizeof(sig), &len, &remote);
    if (rc != 0) {
        fprintf(stderr, "kw_threads: sign failed: %s (remote 0x%02x)\n", kw_strerror(rc), remote);
        return 0;
    }
    return kw_tool_verify(s->pub, sig, len, dgst, sizeof(dgst));
}

/* One ping; its payload must come back. Returns 1 when it did. */
static int one_ping(shared_t *s, unsigned n)
{
    uint8_t out[16];
    size_t len = 0;
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    m.opcode = KW_OP_PING;
    m.has_opcode = 1;
    m.payload = kw_bytes(&n, sizeof(n));
    int rc = kw_client_call(s->client, &m, out, sizeof(out), &len, NULL);
    return rc == 0 && len == sizeof(n) && memcmp(out, &n, sizeof(n)) == 0;
}

static void *worker(void *arg)
{
    shared_t *s = arg;
    for (unsigned n = 0; kw_tool_now() < s->until; n++) {
        int good = n % 4 == 3 ? one_ping(s, n) : one_sign(s);
        atomic_fetch_add(good ? &s->ok : &s->failed, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        KW_TOOL_OPTIONS, {"threads", 1, NULL, 't'}, {"seconds", 1, NULL, 'S'}, {NULL, 0, NULL, 0}};
    kw_tool_opts_t o;
    memset(&o, 0, sizeof(o));
    unsigned nthreads = 8;
    double seconds = 2;
    int c;
    while ((c = kw_tool_getopt(argc, argv, "", lo, &o)) != -1) {
        if (c == 't')
            nthreads = (unsigned)strtoul(optarg, NULL, 10);
        else if (c == 'S')
            seconds = strtod(optarg, NULL);
        else
            kw_tool_die("unknown option (see the comment atop kw_threads.c)");
    }
    if (o.server == NULL || o.ca == NULL || o.key_cert == NULL || nthreads == 0 || nthreads > 256)
        kw_tool_die("--server, --ca, --key-cert and 1..256 --threads are required");
    static shared_t s;
    s.pub = kw_tool_cert_key(o.key_cert, s.key_id);
    if (s.pub == NULL)
        kw_tool_die("--key-cert is not a certificate");
    if (kw_tool_client_new(&o, 5000, &s.client) != 0)
        return 1;
    pthread_t t[256];
    double t0 = kw_tool_now();
    s.until = t0 + seconds;
    for (unsigned i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, worker, &s) != 0)
            kw_tool_die("pthread_create");
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    double dt = kw_tool_now() - t0;
    unsigned long ok = atomic_load(&s.ok);
    unsigned long failed = atomic_load(&s.failed);
    printf("threads=%u ok=%lu failed=%lu ops_per_sec=%.0f\n", nthreads, ok, failed, ok / dt);
    kw_client_free(s.client);
    EVP_PKEY_free(s.pub);
    return failed == 0 && ok > 0 ? 0 : 1;
}
