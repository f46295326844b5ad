/*
 * Request dispatch on the loop thread. Cheap requests are answered here: ping (payload echoed),
 * 0xA2 certificate chain, 0xA3 key list and every error. Private-key requests are checked against
 * their key (so errors need no worker) and become jobs; finished jobs come back here as replies.
 */
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "keyward/log.h"
#include "ops.h"
#include "request.h"

/* Largest payload of a reply: the body minus the opcode item and the payload item header. */
#define KW_MAX_REPLY_PAYLOAD (KW_MAX_BODY - 2 * KW_ITEM_HDR_LEN - 1)

static void batch_add(kw_ks_job_batch_t *b, kw_ks_job_t *job)
{
    job->next = NULL;
    if (b->tail == NULL)
        b->head = job;
    else
        b->tail->next = job;
    b->tail = job;
    b->count++;
}

static void reply_error(kw_ks_conn_t *c, uint32_t id, uint8_t err)
{
    if (kw_ks_conn_error(c, id, err) != 0)
        kw_ks_conn_close(c);
}

static void reply(kw_ks_conn_t *c, uint32_t id, uint8_t opcode, const uint8_t *p, size_t len)
{
    if (kw_ks_conn_reply(c, id, opcode, p, len) != 0)
        kw_ks_conn_close(c);
}

/* 0xA2: by digest, then SKI, then SNI. */
static void get_cert_chain(kw_ks_conn_t *c, const kw_msg_t *msg)
{
    const kw_keystore_t *store = c->server->store;
    const kw_ks_key_t *key = kw_keystore_find(store, msg);
    if (key == NULL && msg->sni.present)
        key = kw_keystore_find_sni(store, msg->sni.ptr, msg->sni.len);
    if (key == NULL && !msg->digest.present && !msg->ski.present && !msg->sni.present) {
        reply_error(c, msg->id, KW_ERR_FORMAT);
        return;
    }
    if (key == NULL || key->chain_der == NULL || key->chain_der_len > KW_MAX_REPLY_PAYLOAD) {
        reply_error(c, msg->id, KW_ERR_CERT_NOT_FOUND);
        return;
    }
    reply(c, msg->id, KW_OP_RESPONSE, key->chain_der, key->chain_der_len);
}

/* 0xA3: the key ids, as many as fit one reply. */
static void list_keys(kw_ks_conn_t *c, const kw_msg_t *msg)
{
    const kw_keystore_t *store = c->server->store;
    size_t n = kw_keystore_count(store);
    size_t max = KW_MAX_REPLY_PAYLOAD / KW_DIGEST_LEN;
    if (n > max) {
        kw_warn("list keys: %zu keys, only the first %zu fit a reply", n, max);
        n = max;
    }
    size_t len = n * KW_DIGEST_LEN;
    uint8_t stack[4096];
    uint8_t *buf = len <= sizeof(stack) ? stack : malloc(len);
    if (buf == NULL) {
        reply_error(c, msg->id, KW_ERR_INTERNAL);
        return;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * KW_DIGEST_LEN, kw_keystore_get(store, i)->digest, KW_DIGEST_LEN);
    reply(c, msg->id, KW_OP_RESPONSE, buf, len);
    if (buf != stack)
        free(buf);
}

static void key_op(kw_ks_conn_t *c, const kw_msg_t *msg, kw_ks_job_batch_t *batch)
{
    kw_ks_server_t *s = c->server;
    const kw_ks_key_t *key = kw_keystore_find(s->store, msg);
    if (key == NULL) {
        reply_error(c, msg->id, KW_ERR_KEY_NOT_FOUND);
        return;
    }
    uint8_t err = kw_ks_op_check(key, msg->opcode, &msg->payload, &msg->extra);
    if (err != 0) {
        reply_error(c, msg->id, err);
        return;
    }
    kw_ks_job_t *job = kw_ks_job_alloc(&s->jobs, msg->payload.len);
    if (job == NULL) {
        reply_error(c, msg->id, KW_ERR_INTERNAL);
        return;
    }
    memcpy(job->in, msg->payload.ptr, msg->payload.len);
    job->conn = kw_ks_conn_ref(c);
    job->store = kw_keystore_ref(s->store);
    job->key = key;
    job->id = msg->id;
    job->opcode = msg->opcode;
    if (msg->opcode == KW_OP_TLS_RSA_DECRYPT)
        job->tls_version = (unsigned)msg->extra.ptr[0] << 8 | msg->extra.ptr[1];
    c->inflight++;
    batch_add(batch, job);
}

int kw_ks_request_handle(kw_ks_conn_t *c, const kw_header_t *hdr, const uint8_t *body,
                         kw_ks_job_batch_t *batch)
{
    kw_msg_t msg;
    if (kw_msg_decode(body, hdr->body_len, hdr->id, &msg) != 0) {
        reply_error(c, hdr->id, KW_ERR_FORMAT);
        return KW_EFORMAT;
    }
    if (!msg.has_opcode) {
        reply_error(c, msg.id, KW_ERR_FORMAT);
        return 0;
    }
    switch (msg.opcode) {
    case KW_OP_PING:
        reply(c, msg.id, KW_OP_PONG, msg.payload.ptr, msg.payload.len);
        return 0;
    case KW_OP_GET_CERT_CHAIN:
        get_cert_chain(c, &msg);
        return 0;
    case KW_OP_LIST_KEYS:
        list_keys(c, &msg);
        return 0;
    default:
        break;
    }
    if (!kw_ks_op_is_key_op(msg.opcode)) {
        reply_error(c, msg.id, KW_ERR_BAD_OPCODE);
        return 0;
    }
    key_op(c, &msg, batch);
    return 0;
}

void kw_ks_request_done(kw_ks_workers_t *w, kw_ks_job_t *jobs)
{
    kw_ks_server_t *s = w->data;
    while (jobs != NULL) {
        kw_ks_job_t *job = jobs;
        jobs = job->next;
        kw_ks_conn_t *c = job->conn;
        if (!c->closing && !job->cancelled) {
            if (job->result == 0)
                reply(c, job->id, KW_OP_RESPONSE, job->out, job->out_len);
            else
                reply_error(c, job->id, job->result);
        }
        kw_keystore_unref(job->store);
        kw_ks_job_free(&s->jobs, job);
        kw_ks_conn_job_done(c);
        kw_ks_conn_unref(c);
    }
}
