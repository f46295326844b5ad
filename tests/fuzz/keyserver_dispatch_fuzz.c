/*
 * Fuzz target for the key server's request handling, in process: the input is a byte stream of
 * KWP frames as a client would send them after the TLS handshake. Each complete frame goes through
 * kw_ks_request_handle (src/keyserver/engine/request.c) from a fake peer (peer/peer.h: replies
 * appended to a buffer, no socket, no TLS, no server); the jobs it makes run synchronously through
 * kw_ks_op_run (ops.c) and come back through kw_ks_request_done, as a worker's results would.
 * Checks: every reply is a well-formed frame answering a request id that was asked, every job and
 * hold is given back, and nothing reads or leaks outside its buffers (ASan/UBSan, leak checks).
 * Keys: fixed RSA-2048, P-256 and Ed25519 test keys with certificates
 * (keyserver_dispatch_keys.h), loaded once through the real key store loader.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/request.h"
#include "keyserver_dispatch_keys.h"
#include "keystore/keystore.h"
#include "keyward/error.h"
#include "kw_log.h"
#include "keyward/protocol.h"
#include "ops/ops.h"
#include "peer/peer.h"

typedef struct fuzz_env_s {
    kw_ks_config_t cfg;
    kw_ks_engine_t eng;
    kw_ks_op_cache_t *cache;
} fuzz_env_t;

/* The fake peer: replies go to out; counts holds and dones. */
typedef struct fake_peer_s {
    kw_ks_peer_t p;
    kw_ks_job_src_t jobs;
    uint8_t *out;
    size_t out_len;
    size_t out_cap;
    int closed;
    long holds;
    unsigned done;
} fake_peer_t;

static int fake_reply(kw_ks_peer_t *p, uint32_t id, uint8_t opcode, const uint8_t *payload,
                      size_t len)
{
    fake_peer_t *f = (fake_peer_t *)p;
    size_t need = KW_HEADER_LEN + 2 * KW_ITEM_HDR_LEN + 1 + len;
    size_t wrote = 0;
    if (f->closed)
        return KW_ECLOSED;
    if (f->out_cap - f->out_len < need) {
        size_t cap = f->out_cap ? f->out_cap : 4096;
        while (cap - f->out_len < need)
            cap *= 2;
        uint8_t *grown = realloc(f->out, cap);
        if (grown == NULL)
            return KW_ENOMEM;
        f->out = grown;
        f->out_cap = cap;
    }
    int rc = kw_reply_encode(id, opcode, payload, len, f->out + f->out_len, need, &wrote);
    if (rc == 0)
        f->out_len += wrote;
    return rc;
}

static void fake_close(kw_ks_peer_t *p)
{
    ((fake_peer_t *)p)->closed = 1;
}

static void fake_hold(kw_ks_peer_t *p)
{
    ((fake_peer_t *)p)->holds++;
}

static void fake_release(kw_ks_peer_t *p)
{
    ((fake_peer_t *)p)->holds--;
}

static void fake_done(kw_ks_peer_t *p)
{
    ((fake_peer_t *)p)->done++;
}

static const kw_ks_peer_type_t fake_type = {fake_reply, fake_close, fake_hold, fake_release,
                                            fake_done};

static void die(const char *what)
{
    fprintf(stderr, "keyserver_dispatch_fuzz: %s\n", what);
    abort();
}

/* Writes the fixed keys into a temporary directory and loads them with the real loader. */
static kw_keystore_t *load_keys(void)
{
    char dir[] = "/tmp/kw-dispatch-fuzz.XXXXXX";
    if (mkdtemp(dir) == NULL)
        die("mkdtemp failed");
    size_t n = sizeof(kw_fuzz_pems) / sizeof(kw_fuzz_pems[0]);
    char path[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, kw_fuzz_pems[i].name);
        FILE *f = fopen(path, "w");
        if (f == NULL || fputs(kw_fuzz_pems[i].pem, f) < 0 || fclose(f) != 0)
            die("cannot write a test key");
    }
    kw_keystore_t *store = NULL;
    char err[512] = "";
    size_t skipped = 0;
    int rc = kw_keystore_load(dir, &store, &skipped, err, sizeof(err));
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, kw_fuzz_pems[i].name);
        unlink(path);
    }
    rmdir(dir);
    if (rc != 0 || skipped != 0 || kw_keystore_count(store) != 3)
        die(err[0] ? err : "the test keys did not all load");
    return store;
}

static fuzz_env_t *env_get(void)
{
    static fuzz_env_t *env;
    if (env != NULL)
        return env;
    kw_log_init("keyserver_dispatch_fuzz", KW_LOG_ERROR);
    env = calloc(1, sizeof(*env));
    if (env == NULL)
        die("out of memory");
    kw_ks_config_defaults(&env->cfg);
    env->cfg.max_inflight = 64;
    env->cache = kw_ks_op_cache_new(8);
    if (env->cache == NULL)
        die("out of memory");
    kw_ks_engine_t *e = &env->eng;
    e->store = load_keys();
    /* The legacy 0x01 and 0x08 are off by default (opset.h): enabled here so the fuzzer reaches
     * them, through the real authorisation object (no rules). */
    char err[512] = "";
    if (kw_strlist_add(&env->cfg.enable_ops, &env->cfg.n_enable_ops, "rsa-decrypt") != 0 ||
        kw_strlist_add(&env->cfg.enable_ops, &env->cfg.n_enable_ops, "rsa-decrypt-raw") != 0 ||
        kw_ks_authz_new(&env->cfg, &e->fleet.authz, err, sizeof(err)) != 0)
        die(err[0] ? err : "cannot set up the enabled operations");
    e->workers.data = e;
    kw_ks_job_pool_init(&e->jobs, 64);
    return env;
}

/* Runs a batch the way the workers would, then hands it back to the loop-thread completion. */
static void run_jobs(fuzz_env_t *env, kw_ks_job_batch_t *batch)
{
    for (kw_ks_job_t *job = batch->head; job != NULL; job = job->next) {
        size_t len = 0;
        job->result = kw_ks_op_run(env->cache, job->key, job->opcode, job->in, job->in_len,
                                   job->tls_version, job->out, &len);
        job->out_len = job->result == 0 ? len : 0;
        if (job->out_len > KW_OP_OUT_MAX)
            __builtin_trap();
    }
    if (batch->head != NULL)
        kw_ks_request_done(&env->eng.workers, batch->head);
    batch->head = batch->tail = NULL;
    batch->count = 0;
}

/* Every reply must decode and answer an id that was asked (ids[0..n)). */
static void check_replies(const fake_peer_t *c, const uint32_t *ids, size_t n)
{
    size_t pos = 0;
    while (pos < c->out_len) {
        kw_header_t h;
        kw_msg_t msg;
        if (kw_header_parse(c->out + pos, c->out_len - pos, &h) != 0 ||
            c->out_len - pos < KW_HEADER_LEN + (size_t)h.body_len)
            __builtin_trap();
        if (kw_msg_decode(c->out + pos + KW_HEADER_LEN, h.body_len, h.id, &msg) != 0 ||
            !msg.has_opcode || !msg.payload.present)
            __builtin_trap();
        if (msg.opcode != KW_OP_RESPONSE && msg.opcode != KW_OP_PONG && msg.opcode != KW_OP_ERROR)
            __builtin_trap();
        if (msg.opcode == KW_OP_ERROR && msg.payload.len != 1)
            __builtin_trap();
        int asked = 0;
        for (size_t i = 0; i < n && !asked; i++)
            asked = ids[i] == h.id;
        if (!asked)
            __builtin_trap();
        if (getenv("KW_FUZZ_VERBOSE") != NULL)
            printf("reply id %u opcode 0x%02x payload %u bytes%s%02x\n", h.id, msg.opcode,
                   msg.payload.len, msg.opcode == KW_OP_ERROR ? ", error 0x" : " ",
                   msg.payload.len > 0 ? msg.payload.ptr[0] : 0);
        pos += KW_HEADER_LEN + h.body_len;
    }
}

#define MAX_IDS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_env_t *env = env_get();
    fake_peer_t c;
    memset(&c, 0, sizeof(c));
    c.p.type = &fake_type;
    c.p.id = 1;
    c.p.name = "fuzz";
    c.p.jobs = &c.jobs;
    static uint32_t ids[MAX_IDS];
    size_t n_ids = 0;
    size_t pos = 0;
    int finishing = 0;
    kw_ks_job_batch_t batch = {NULL, NULL, 0};
    while (!c.closed && !finishing && size - pos >= KW_HEADER_LEN && n_ids < MAX_IDS) {
        kw_header_t h;
        int rc = kw_header_parse(data + pos, size - pos, &h);
        if (rc != 0 || size - pos - KW_HEADER_LEN < h.body_len)
            break; /* a version mismatch or a partial frame: the connection code's business */
        ids[n_ids++] = h.id;
        rc = kw_ks_request_handle(&env->eng, &c.p, &h, data + pos + KW_HEADER_LEN, &batch);
        pos += KW_HEADER_LEN + (size_t)h.body_len;
        if (batch.count >= env->cfg.max_inflight || rc != 0)
            run_jobs(env, &batch);
        if (rc != 0)
            finishing = 1; /* the connection would write its replies and close */
    }
    run_jobs(env, &batch);
    if (c.p.inflight != 0 || c.holds != 0)
        __builtin_trap();
    check_replies(&c, ids, n_ids);
    free(c.out);
    return 0;
}
