/*
 * Fuzz target for the key server's request handling, in process: the input is a byte stream of
 * KWP frames as a client would send them after the TLS handshake. Each complete frame goes through
 * kw_ks_request_handle (src/keyserver/engine/request.c) on a connection object that has real libuv
 * handles but no socket; the jobs it makes run synchronously through kw_ks_op_run (ops.c) and come
 * back through kw_ks_request_done, as a worker's results would. Checks: every reply is a
 * well-formed frame answering a request id that was asked, and nothing reads or leaks outside its
 * buffers (ASan/UBSan, leak checks). Keys: fixed RSA-2048, P-256 and Ed25519 test keys with
 * certificates (keyserver_dispatch_keys.h), loaded once through the real key store loader.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "net/conn.h"
#include "keystore/keystore.h"
#include "ops/ops.h"
#include "engine/request.h"
#include "net/server.h"
#include "keyserver_dispatch_keys.h"
#include "keyward/log.h"
#include "keyward/protocol.h"

typedef struct fuzz_env_s {
    kw_ks_config_t cfg;
    kw_ks_server_t *server;
    kw_ks_op_cache_t *cache;
    SSL_CTX *ssl_ctx;
    uv_loop_t loop;
} fuzz_env_t;

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
    if (env == NULL || uv_loop_init(&env->loop) != 0)
        die("out of memory");
    kw_ks_config_defaults(&env->cfg);
    env->cfg.max_inflight = 64;
    /* Large (it has the 64 KiB read buffer): on the heap, zeroed like kw_ks_server_init does. */
    env->server = calloc(1, sizeof(*env->server));
    env->cache = kw_ks_op_cache_new(8);
    env->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (env->server == NULL || env->cache == NULL || env->ssl_ctx == NULL)
        die("out of memory");
    kw_ks_server_t *s = env->server;
    s->loop = &env->loop;
    s->cfg = &env->cfg;
    s->store = load_keys();
    /* The legacy 0x01 and 0x08 are off by default (opset.h): enabled here so the fuzzer reaches
     * them, through the real authorisation object (no rules). */
    char err[512] = "";
    if (kw_ks_strlist_add(&env->cfg.enable_ops, &env->cfg.n_enable_ops, "rsa-decrypt") != 0 ||
        kw_ks_strlist_add(&env->cfg.enable_ops, &env->cfg.n_enable_ops, "rsa-decrypt-raw") != 0 ||
        kw_ks_authz_new(&env->cfg, &s->fleet.authz, err, sizeof(err)) != 0)
        die(err[0] ? err : "cannot set up the enabled operations");
    s->workers.data = s;
    kw_ks_job_pool_init(&s->jobs, 64);
    return env;
}

/* A connection as kw_ks_conn_accept makes one, minus the socket: handshake_done stays 0 so
 * nothing tries to read TLS; request handling does not look at it. */
static kw_ks_conn_t *conn_new(fuzz_env_t *env)
{
    kw_ks_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        die("out of memory");
    c->server = env->server;
    c->ssl = SSL_new(env->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
        die("out of memory");
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both */
    if (uv_tcp_init(&env->loop, &c->tcp) != 0 || uv_timer_init(&env->loop, &c->timer) != 0)
        die("cannot set up a connection");
    c->tcp.data = c;
    c->timer.data = c;
    c->refs = 2; /* the two handles */
    c->reading = 1;
    snprintf(c->peer, sizeof(c->peer), "fuzz");
    c->next = env->server->conns;
    if (c->next != NULL)
        c->next->prev = c;
    env->server->conns = c;
    env->server->n_conns++;
    return c;
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
        kw_ks_request_done(&env->server->workers, batch->head);
    batch->head = batch->tail = NULL;
    batch->count = 0;
}

/* Every reply must decode and answer an id that was asked (ids[0..n)). */
static void check_replies(const kw_ks_conn_t *c, const uint32_t *ids, size_t n)
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

/* Drops the flush list's references (the check phase would flush them). */
static void drop_dirty(kw_ks_server_t *s)
{
    while (s->dirty != NULL) {
        kw_ks_conn_t *c = s->dirty;
        s->dirty = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        kw_ks_conn_unref(c);
    }
}

#define MAX_IDS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_env_t *env = env_get();
    kw_ks_conn_t *c = conn_new(env);
    kw_ks_conn_ref(c); /* ours, so c outlives a close */
    static uint32_t ids[MAX_IDS];
    size_t n_ids = 0;
    size_t pos = 0;
    kw_ks_job_batch_t batch = {NULL, NULL, 0};
    while (!c->closing && !c->finishing && size - pos >= KW_HEADER_LEN && n_ids < MAX_IDS) {
        kw_header_t h;
        int rc = kw_header_parse(data + pos, size - pos, &h);
        if (rc != 0 || size - pos - KW_HEADER_LEN < h.body_len)
            break; /* a version mismatch or a partial frame: the connection code's business */
        ids[n_ids++] = h.id;
        rc = kw_ks_request_handle(c, &h, data + pos + KW_HEADER_LEN, &batch);
        pos += KW_HEADER_LEN + (size_t)h.body_len;
        if (batch.count >= env->cfg.max_inflight || rc != 0)
            run_jobs(env, &batch);
        if (rc != 0)
            c->finishing = 1; /* what kw_ks_conn_finish does, without a socket to stop */
    }
    run_jobs(env, &batch);
    if (c->inflight != 0)
        __builtin_trap();
    check_replies(c, ids, n_ids);
    drop_dirty(env->server);
    kw_ks_conn_close(c);
    uv_run(&env->loop, UV_RUN_NOWAIT); /* close callbacks drop the handles' references */
    kw_ks_conn_unref(c);
    return 0;
}
