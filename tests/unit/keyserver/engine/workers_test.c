/*
 * The key server's worker pool (src/keyserver/engine/workers.c) with a real libuv loop and a real
 * ECDSA key: the jobs of an iteration are held and signed on the loop thread, in order, at
 * kw_ks_workers_run_held; past the time budget the rest go to the worker threads; a token key or
 * a pool with run_inline off never holds; with loop_only (one CPU) the jobs past the budget stay
 * held for the next iteration instead; stopping with a held job cancels it. Every signature is
 * verified with the public key.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "engine/job.h"
#include "keyward/protocol.h"
#include "engine/workers.h"
#include "keystore/pem/pem.h"

#define MAX_DONE 8

typedef struct fixture_s {
    uv_loop_t loop;
    kw_ks_workers_t pool;
    kw_ks_key_t key;
    kw_ks_job_t jobs[4];
    uint8_t digest[32];
    kw_ks_job_t *done[MAX_DONE];
    pthread_t done_thread[MAX_DONE];
    size_t n_done;
} fixture_t;

static void on_done(kw_ks_workers_t *w, kw_ks_job_t *jobs)
{
    fixture_t *f = w->data;
    for (kw_ks_job_t *j = jobs; j != NULL; j = j->next) {
        assert_true(f->n_done < MAX_DONE);
        f->done_thread[f->n_done] = pthread_self();
        f->done[f->n_done++] = j;
    }
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->key.pkey = EVP_EC_gen("P-256");
    assert_non_null(f->key.pkey);
    f->key.type = KW_KS_KEY_EC;
    f->key.backend = &kw_ks_backend_pem;
    f->key.bits = 256;
    f->key.max_out = (size_t)EVP_PKEY_get_size(f->key.pkey);
    assert_int_equal(RAND_bytes(f->digest, sizeof(f->digest)), 1);
    for (size_t i = 0; i < 4; i++) {
        kw_ks_job_t *j = &f->jobs[i];
        j->key = &f->key;
        j->id = (uint32_t)i + 1;
        j->opcode = KW_OP_ECDSA_SIGN_SHA256;
        j->in = f->digest;
        j->in_len = sizeof(f->digest);
    }
    f->pool.data = f;
    f->pool.run_inline = 1;
    *state = f;
    return 0;
}

static void stop_pool(fixture_t *f)
{
    kw_ks_workers_stop(&f->pool, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0); /* the poll handle closes */
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(uv_loop_close(&f->loop), 0);
    EVP_PKEY_free(f->key.pkey);
    free(f);
    return 0;
}

/* The job's result is a valid ECDSA signature of the digest. */
static void assert_signed(fixture_t *f, const kw_ks_job_t *j)
{
    assert_int_equal(j->result, 0);
    assert_false(j->cancelled);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->key.pkey, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, j->out, j->out_len, f->digest, sizeof(f->digest)), 1);
    EVP_PKEY_CTX_free(ctx);
}

/* Runs the loop until n jobs came back (worker results arrive through the eventfd). */
static void wait_done(fixture_t *f, size_t n)
{
    while (f->n_done < n)
        assert_true(uv_run(&f->loop, UV_RUN_ONCE) >= 0);
}

static void test_lone_job_runs_on_loop_thread(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 2, 4, on_done), 0);
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[0], 1);
    assert_int_equal(f->pool.n_held, 1); /* held, not queued */
    assert_ptr_equal(f->pool.solo.held_head, &f->jobs[0]);
    assert_int_equal(f->n_done, 0);
    kw_ks_workers_run_held(&f->pool);
    assert_int_equal(f->pool.n_held, 0);
    assert_int_equal(f->n_done, 1); /* done_cb called before run_held returned */
    assert_ptr_equal(f->done[0], &f->jobs[0]);
    assert_true(pthread_equal(f->done_thread[0], pthread_self()));
    assert_signed(f, &f->jobs[0]);
    kw_ks_workers_run_held(&f->pool); /* nothing held: no call */
    assert_int_equal(f->n_done, 1);
    stop_pool(f);
}

static void test_jobs_of_one_iteration_run_on_loop_thread(void **state)
{
    fixture_t *f = *state;
    /* the default budget (KW_KS_INLINE_BUDGET_NS, 1 ms) can be spent by one signature on a loaded
     * machine (preempted); then the rest go to the workers, which is not what this case checks */
    f->pool.inline_budget_ns = 10ull * 1000 * 1000 * 1000;
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 2, 4, on_done), 0);
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[0], 1);
    f->jobs[1].next = &f->jobs[2];
    kw_ks_workers_submit(&f->pool, &f->jobs[1], &f->jobs[2], 2);
    assert_ptr_equal(f->pool.solo.held_head, &f->jobs[0]);
    kw_ks_workers_run_held(&f->pool);
    assert_int_equal(f->pool.n_held, 0);
    assert_int_equal(f->n_done, 3); /* all signed before run_held returned, in order */
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(f->done[i], &f->jobs[i]);
        assert_signed(f, &f->jobs[i]);
    }
    stop_pool(f);
}

static void test_past_budget_rest_goes_to_workers(void **state)
{
    fixture_t *f = *state;
    f->pool.inline_budget_ns = 1; /* spent by the first job */
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 2, 4, on_done), 0);
    f->jobs[0].next = &f->jobs[1];
    f->jobs[1].next = &f->jobs[2];
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[2], 3);
    kw_ks_workers_run_held(&f->pool);
    assert_int_equal(f->pool.n_held, 0);
    assert_int_equal(f->n_done, 1); /* the first ran here, the other two went to the workers */
    assert_ptr_equal(f->done[0], &f->jobs[0]);
    wait_done(f, 3);
    for (size_t i = 0; i < 3; i++)
        assert_signed(f, &f->jobs[i]);
    stop_pool(f);
}

/* One CPU (loop_only): past the budget the jobs left stay held for the next iteration, never go
 * to a worker on the loop's CPU, and the idle handle keeps the next poll from blocking. */
static void test_loop_only_keeps_jobs_past_budget(void **state)
{
    fixture_t *f = *state;
    f->pool.loop_only = 1;
    f->pool.inline_budget_ns = 1; /* spent by each iteration's first job */
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 1, 4, on_done), 0);
    f->jobs[0].next = &f->jobs[1];
    f->jobs[1].next = &f->jobs[2];
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[2], 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(kw_ks_workers_run_held(&f->pool), i < 2); /* 1: jobs left held */
        assert_int_equal(f->n_done, i + 1);
        assert_int_equal(f->pool.n_held, 2 - i);
        assert_int_equal(f->pool.queued, 0); /* nothing handed to the worker */
        kw_ks_workers_iteration_end(&f->pool);
        assert_int_equal(uv_is_active((uv_handle_t *)&f->pool.more), i < 2);
    }
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(f->done[i], &f->jobs[i]);
        assert_true(pthread_equal(f->done_thread[i], pthread_self()));
        assert_signed(f, &f->jobs[i]);
    }
    stop_pool(f);
}

static void test_token_key_and_inline_off_never_held(void **state)
{
    fixture_t *f = *state;
    f->pool.run_inline = 0;
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 1, 4, on_done), 0);
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[0], 1);
    assert_int_equal(f->pool.n_held, 0);
    wait_done(f, 1);
    assert_signed(f, &f->jobs[0]);
    stop_pool(f);

    /* a token key (the PKCS#11 backend) is left to the workers even with run_inline: an HSM's
     * latency must not stall the loop. A worker runs it; PING is refused before the token is
     * touched. */
    f->n_done = 0;
    f->pool.run_inline = 1;
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 1, 4, on_done), 0);
    kw_ks_key_t token_key = f->key;
    token_key.backend = &kw_ks_backend_pkcs11; /* not local; PING never reaches its op_run */
    kw_ks_job_t *j = &f->jobs[1];
    j->key = &token_key;
    j->opcode = KW_OP_PING; /* unknown to kw_ks_op_run: an error result, not a token call */
    j->next = &f->jobs[2];  /* in one submit with a job for a key in memory */
    kw_ks_workers_submit(&f->pool, j, &f->jobs[2], 2);
    assert_int_equal(f->pool.n_held, 1); /* only the key in memory is held */
    assert_ptr_equal(f->pool.solo.held_head, &f->jobs[2]);
    assert_null(f->jobs[2].next);
    kw_ks_workers_run_held(&f->pool);
    assert_signed(f, &f->jobs[2]);
    wait_done(f, 2);
    assert_ptr_equal(f->done[0], &f->jobs[2]);
    assert_ptr_equal(f->done[1], j);
    assert_int_not_equal(j->result, 0);
    stop_pool(f);
}

/* Fair turns: three jobs of source A then one of B, in one submit. On the loop thread they run
 * A, B, A, ...; past the budget the rest go to the workers, whose ring serves B before A's
 * second and third job (a FIFO would make B wait for all of A's). */
static void test_sources_take_turns(void **state)
{
    fixture_t *f = *state;
    kw_ks_job_src_t a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    for (size_t i = 0; i < 4; i++) {
        f->jobs[i].src = i < 3 ? &a : &b;
        f->jobs[i].next = i < 3 ? &f->jobs[i + 1] : NULL;
    }
    f->pool.inline_budget_ns = 10000000000u; /* 10 s: all four run here */
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 1, 4, on_done), 0);
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[3], 4);
    assert_int_equal(f->pool.n_held, 4);
    kw_ks_workers_run_held(&f->pool);
    assert_int_equal(f->n_done, 4);
    assert_ptr_equal(f->done[0], &f->jobs[0]); /* A */
    assert_ptr_equal(f->done[1], &f->jobs[3]); /* B */
    assert_ptr_equal(f->done[2], &f->jobs[1]); /* A */
    assert_ptr_equal(f->done[3], &f->jobs[2]);
    stop_pool(f);

    f->n_done = 0; /* now past the budget after the first job: one worker takes the rest */
    f->pool.inline_budget_ns = 1;
    for (size_t i = 0; i < 4; i++)
        f->jobs[i].next = i < 3 ? &f->jobs[i + 1] : NULL;
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 1, 4, on_done), 0);
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[3], 4);
    kw_ks_workers_run_held(&f->pool);
    assert_int_equal(f->n_done, 1);
    wait_done(f, 4);
    assert_ptr_equal(f->done[0], &f->jobs[0]);
    assert_ptr_equal(f->done[1], &f->jobs[3]); /* B's turn came before A's next jobs */
    assert_ptr_equal(f->done[2], &f->jobs[1]);
    assert_ptr_equal(f->done[3], &f->jobs[2]);
    for (size_t i = 0; i < 4; i++)
        assert_signed(f, &f->jobs[i]);
    assert_int_equal(a.queued, 0);
    assert_null(a.head);
    assert_int_equal(b.in_held, 0);
    stop_pool(f);
}

static void test_stop_cancels_held_job(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(kw_ks_workers_start(&f->pool, &f->loop, 2, 4, on_done), 0);
    kw_ks_workers_submit(&f->pool, &f->jobs[0], &f->jobs[0], 1);
    assert_ptr_equal(f->pool.solo.held_head, &f->jobs[0]);
    stop_pool(f);
    assert_int_equal(f->n_done, 1);
    assert_true(f->jobs[0].cancelled);
    assert_int_equal(f->jobs[0].out_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lone_job_runs_on_loop_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_of_one_iteration_run_on_loop_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_past_budget_rest_goes_to_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_only_keeps_jobs_past_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_key_and_inline_off_never_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_cancels_held_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sources_take_turns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
