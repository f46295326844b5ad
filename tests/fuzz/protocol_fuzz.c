/*
 * libFuzzer target for the KWP codec: parses the input as a frame (header + body), and for every
 * body that decodes, re-encodes the message (plain and padded to the input's size) and checks
 * that decoding the result gives the same message back. Any difference aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "keyward/protocol.h"

static uint8_t kw_fuzz_buf[KW_MAX_FRAME];

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_bytes_equal(const kw_bytes_t *a, const kw_bytes_t *b)
{
    check(a->present == b->present);
    if (!a->present)
        return;
    check(a->len == b->len);
    check(a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static void check_msg_equal(const kw_msg_t *a, const kw_msg_t *b)
{
    check(a->id == b->id);
    check(a->has_opcode == b->has_opcode && a->opcode == b->opcode);
    check(a->has_hops == b->has_hops && a->hops == b->hops);
    check_bytes_equal(&a->digest, &b->digest);
    check_bytes_equal(&a->sni, &b->sni);
    check_bytes_equal(&a->client_ip, &b->client_ip);
    check_bytes_equal(&a->ski, &b->ski);
    check_bytes_equal(&a->server_ip, &b->server_ip);
    check_bytes_equal(&a->cert_id, &b->cert_id);
    check_bytes_equal(&a->payload, &b->payload);
    check_bytes_equal(&a->custom_func, &b->custom_func);
    check_bytes_equal(&a->extra, &b->extra);
    check_bytes_equal(&a->client_random, &b->client_random);
    check_bytes_equal(&a->server_random, &b->server_random);
    check_bytes_equal(&a->session_hash, &b->session_hash);
    check_bytes_equal(&a->prf_digest, &b->prf_digest);
}

/* Encodes msg with pad_to, decodes the result, and checks it is the same message. */
static void reencode(const kw_msg_t *msg, size_t pad_to)
{
    size_t len = 0;
    kw_header_t h;
    kw_msg_t again;
    int rc = kw_msg_encode(msg, pad_to, kw_fuzz_buf, sizeof(kw_fuzz_buf), &len);
    if (rc == KW_ETOOBIG) {
        check(pad_to > KW_MAX_FRAME - KW_ITEM_HDR_LEN); /* only padding can overflow */
        return;
    }
    check(rc == 0);
    if (pad_to <= kw_msg_encoded_len(msg))
        check(len == kw_msg_encoded_len(msg));
    else
        check(len >= pad_to && len <= pad_to + 2);
    check(kw_header_parse(kw_fuzz_buf, len, &h) == 0);
    check((size_t)h.body_len + KW_HEADER_LEN == len && h.id == msg->id);
    check(kw_msg_decode(kw_fuzz_buf + KW_HEADER_LEN, h.body_len, h.id, &again) == 0);
    check_msg_equal(msg, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kw_header_t h;
    kw_msg_t msg;
    int rc = kw_header_parse(data, size, &h);
    if (rc == KW_ESHORT) {
        check(size < KW_HEADER_LEN);
        return 0;
    }
    check(rc == 0 || rc == KW_EVERSION);
    if (rc != 0 || (size_t)h.body_len > size - KW_HEADER_LEN)
        return 0;
    rc = kw_msg_decode(data + KW_HEADER_LEN, h.body_len, h.id, &msg);
    check(rc == 0 || rc == KW_EFORMAT);
    if (rc != 0)
        return 0;
    /* decoding drops only padding and unknown items: never longer than the input */
    check(kw_msg_encoded_len(&msg) <= KW_HEADER_LEN + (size_t)h.body_len);
    reencode(&msg, 0);
    reencode(&msg, KW_HEADER_LEN + (size_t)h.body_len);
    reencode(&msg, KW_GOKEYLESS_PAD);
    return 0;
}
