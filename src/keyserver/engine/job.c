/*
 * Job allocation from a loop-thread free list; results are cleansed before reuse.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "engine/job.h"

void kw_ks_job_pool_init(kw_ks_job_pool_t *pool, size_t max_free)
{
    pool->free = NULL;
    pool->n_free = 0;
    pool->max_free = max_free;
}

void kw_ks_job_pool_destroy(kw_ks_job_pool_t *pool)
{
    while (pool->free != NULL) {
        kw_ks_job_t *job = pool->free;
        pool->free = job->next;
        free(job);
    }
    pool->n_free = 0;
}

kw_ks_job_t *kw_ks_job_alloc(kw_ks_job_pool_t *pool, size_t in_len)
{
    kw_ks_job_t *job = pool->free;
    if (job != NULL) {
        pool->free = job->next;
        pool->n_free--;
    } else {
        job = malloc(sizeof(*job));
        if (job == NULL)
            return NULL;
    }
    job->next = NULL;
    job->src = NULL;
    job->peer = NULL;
    job->store = NULL;
    job->key = NULL;
    job->result = 0;
    job->cancelled = 0;
    job->tls_version = 0;
    job->out_len = 0;
    job->in_len = in_len;
    job->in = job->in_inline;
    if (in_len > KW_JOB_INLINE) {
        job->in = malloc(in_len);
        if (job->in == NULL) {
            job->in = job->in_inline;
            kw_ks_job_free(pool, job);
            return NULL;
        }
    }
    return job;
}

void kw_ks_job_free(kw_ks_job_pool_t *pool, kw_ks_job_t *job)
{
    /* Decrypted secrets and the request (an encrypted PMS is not secret, but cheap to clear). */
    OPENSSL_cleanse(job->out, job->out_len > 0 ? job->out_len : sizeof(job->out));
    if (job->in != job->in_inline)
        free(job->in);
    job->in = job->in_inline;
    if (pool->n_free >= pool->max_free) {
        free(job);
        return;
    }
    job->next = pool->free;
    pool->free = job;
    pool->n_free++;
}
