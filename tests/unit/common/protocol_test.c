/*
 * KWP codec tests (constants: protocol_constants_test.c): checks the DESIGN.md worked
 * example byte for byte, round-trips every opcode's request and reply, gokeyless-style 1024-byte
 * padding, and rejects hand-made malformed frames with the right error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyward/error.h"
#include "keyward/protocol.h"

#include "protocol_opcodes.h"

static const uint8_t kDigest[KW_DIGEST_LEN] = {0xd1, 0xd2, 0xd3, [31] = 0xdf};
static const uint8_t kSki[KW_SKI_LEN] = {0x51, 0x52, [19] = 0x5f};
static const uint8_t kIp4[4] = {127, 0, 0, 1};
static const uint8_t kIp6[16] = {[15] = 1};
static const uint8_t kRandC[KW_TLS_RANDOM_LEN] = {0xc0, [31] = 0xc1};
static const uint8_t kRandS[KW_TLS_RANDOM_LEN] = {0x50, [31] = 0x51};

#define N_OPCODES (sizeof(kAllOpcodes) / sizeof(kAllOpcodes[0]))

/* ---- helpers ---- */

static void assert_bytes_equal(const kw_bytes_t *a, const kw_bytes_t *b)
{
    assert_int_equal(a->present, b->present);
    if (!a->present)
        return;
    assert_int_equal(a->len, b->len);
    if (a->len > 0)
        assert_memory_equal(a->ptr, b->ptr, a->len);
}

static void assert_msg_equal(const kw_msg_t *a, const kw_msg_t *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->has_opcode, b->has_opcode);
    if (a->has_opcode)
        assert_int_equal(a->opcode, b->opcode);
    assert_int_equal(a->has_hops, b->has_hops);
    if (a->has_hops)
        assert_int_equal(a->hops, b->hops);
    assert_bytes_equal(&a->digest, &b->digest);
    assert_bytes_equal(&a->sni, &b->sni);
    assert_bytes_equal(&a->client_ip, &b->client_ip);
    assert_bytes_equal(&a->ski, &b->ski);
    assert_bytes_equal(&a->server_ip, &b->server_ip);
    assert_bytes_equal(&a->cert_id, &b->cert_id);
    assert_bytes_equal(&a->payload, &b->payload);
    assert_bytes_equal(&a->custom_func, &b->custom_func);
    assert_bytes_equal(&a->extra, &b->extra);
    assert_bytes_equal(&a->client_random, &b->client_random);
    assert_bytes_equal(&a->server_random, &b->server_random);
    assert_bytes_equal(&a->session_hash, &b->session_hash);
    assert_bytes_equal(&a->prf_digest, &b->prf_digest);
}

/* Parses a whole frame (header + body exactly) into msg. */
static int decode_frame(const uint8_t *buf, size_t len, kw_msg_t *msg)
{
    kw_header_t h;
    int rc = kw_header_parse(buf, len, &h);
    if (rc != 0)
        return rc;
    if ((size_t)h.body_len != len - KW_HEADER_LEN)
        return KW_EFORMAT;
    return kw_msg_decode(buf + KW_HEADER_LEN, h.body_len, h.id, msg);
}

static void roundtrip(const kw_msg_t *in, size_t pad_to)
{
    static uint8_t buf[KW_MAX_FRAME];
    size_t len = 0;
    kw_msg_t out;
    assert_int_equal(kw_msg_encode(in, pad_to, buf, sizeof(buf), &len), 0);
    if (pad_to <= kw_msg_encoded_len(in))
        assert_int_equal(len, kw_msg_encoded_len(in));
    else
        assert_true(len >= pad_to && len <= pad_to + 2);
    assert_int_equal(decode_frame(buf, len, &out), 0);
    assert_msg_equal(in, &out);
}

/* Builds a plausible request for opcode, with the items a real client sends. */
static void make_request(kw_msg_t *m, uint8_t opcode, uint32_t id)
{
    static const uint8_t payload[64] = {1, 2, 3};
    static const uint8_t version[2] = {0x03, 0x03};
    static const uint8_t prf = KW_PRF_SHA256;
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->opcode = opcode;
    m->has_opcode = 1;
    m->digest = kw_bytes(kDigest, sizeof(kDigest));
    m->ski = kw_bytes(kSki, sizeof(kSki));
    m->client_ip = kw_bytes(kIp4, sizeof(kIp4));
    m->server_ip = kw_bytes(kIp6, sizeof(kIp6));
    m->sni = kw_bytes("www.example.com", 15);
    m->payload = kw_bytes(payload, sizeof(payload));
    if (opcode == KW_OP_TLS_RSA_DECRYPT)
        m->extra = kw_bytes(version, sizeof(version));
    if (opcode == KW_OP_TLS12_MASTER) {
        m->client_random = kw_bytes(kRandC, sizeof(kRandC));
        m->server_random = kw_bytes(kRandS, sizeof(kRandS));
        m->session_hash = kw_bytes(payload, 48);
        m->prf_digest = kw_bytes(&prf, 1);
    }
    if (opcode == KW_OP_GET_CERT_CHAIN)
        m->cert_id = kw_bytes("cert-1", 6);
    m->has_hops = opcode == KW_OP_LIST_KEYS;
    m->hops = KW_DEFAULT_MAX_HOPS;
}

/* ---- constants ---- */

static const uint8_t kPing[] = {0x01, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x01, 0x11,
                                0x00, 0x01, 0xF1, 0x12, 0x00, 0x02, 0x68, 0x69};
static const uint8_t kPong[] = {0x01, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x01, 0x11,
                                0x00, 0x01, 0xF2, 0x12, 0x00, 0x02, 0x68, 0x69};

static void test_worked_example(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = 0;
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    m.id = 1;
    m.opcode = KW_OP_PING;
    m.has_opcode = 1;
    m.payload = kw_bytes("hi", 2);
    assert_int_equal(kw_msg_encoded_len(&m), sizeof(kPing));
    assert_int_equal(kw_msg_encode(&m, 0, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(kPing));
    assert_memory_equal(buf, kPing, sizeof(kPing));

    kw_msg_t d;
    assert_int_equal(decode_frame(kPing, sizeof(kPing), &d), 0);
    assert_int_equal(d.id, 1);
    assert_true(d.has_opcode);
    assert_int_equal(d.opcode, KW_OP_PING);
    assert_true(d.payload.present);
    assert_int_equal(d.payload.len, 2);
    assert_memory_equal(d.payload.ptr, "hi", 2);
    assert_ptr_equal(d.payload.ptr, kPing + 15); /* zero-copy view */
    assert_false(d.digest.present);

    /* the pong echoes the payload with the same id */
    assert_int_equal(
        kw_reply_encode(d.id, KW_OP_PONG, d.payload.ptr, d.payload.len, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(kPong));
    assert_memory_equal(buf, kPong, sizeof(kPong));

    kw_header_t h;
    assert_int_equal(kw_header_parse(kPong, sizeof(kPong), &h), 0);
    assert_int_equal(h.major, 1);
    assert_int_equal(h.minor, 0);
    assert_int_equal(h.body_len, 9);
    assert_int_equal(h.id, 1);
    uint8_t hdr[KW_HEADER_LEN];
    kw_header_write(hdr, 9, 1);
    assert_memory_equal(hdr, kPing, KW_HEADER_LEN);
    kw_header_write(hdr, 0xABCD, 0x01020304);
    static const uint8_t expect_hdr[] = {1, 0, 0xAB, 0xCD, 1, 2, 3, 4};
    assert_memory_equal(hdr, expect_hdr, KW_HEADER_LEN);
}

static void test_roundtrip_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OPCODES; i++) {
        kw_msg_t m;
        make_request(&m, kAllOpcodes[i], 0x80000000u + (uint32_t)i);
        roundtrip(&m, 0);
        roundtrip(&m, KW_GOKEYLESS_PAD);
    }
    /* a message with every item, IPv6/IPv4 swapped, custom function and empty items */
    kw_msg_t m;
    make_request(&m, KW_OP_TLS12_MASTER, 0xFFFFFFFFu);
    m.client_ip = kw_bytes(kIp6, sizeof(kIp6));
    m.server_ip = kw_bytes(kIp4, sizeof(kIp4));
    m.custom_func = kw_bytes("fn", 2);
    m.extra = kw_bytes("", 0);
    m.cert_id = kw_bytes(NULL, 0);
    m.has_hops = 1;
    m.hops = 0;
    roundtrip(&m, 0);
    /* an empty message: no items at all */
    memset(&m, 0, sizeof(m));
    roundtrip(&m, 0);
}

static void test_roundtrip_replies(void **state)
{
    (void)state;
    static uint8_t big[4096];
    static uint8_t buf[KW_MAX_FRAME];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    static const uint8_t reply_ops[] = {KW_OP_RESPONSE, KW_OP_PONG, KW_OP_ERROR};
    static const size_t sizes[] = {0, 1, 48, 64, 256, 512, 4096};
    for (size_t o = 0; o < sizeof(reply_ops); o++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            size_t len = 0;
            kw_msg_t d;
            assert_int_equal(
                kw_reply_encode(42, reply_ops[o], big, sizes[s], buf, sizeof(buf), &len), 0);
            assert_int_equal(len, KW_HEADER_LEN + 2 * KW_ITEM_HDR_LEN + 1 + sizes[s]);
            assert_int_equal(decode_frame(buf, len, &d), 0);
            assert_int_equal(d.id, 42);
            assert_int_equal(d.opcode, reply_ops[o]);
            assert_true(d.payload.present);
            assert_int_equal(d.payload.len, sizes[s]);
            if (sizes[s] > 0)
                assert_memory_equal(d.payload.ptr, big, sizes[s]);
        }
    }
    /* the largest payload that fits one frame */
    size_t max_payload = KW_MAX_BODY - 2 * KW_ITEM_HDR_LEN - 1;
    static uint8_t huge[KW_MAX_BODY];
    size_t len = 0;
    assert_int_equal(kw_reply_encode(7, KW_OP_RESPONSE, huge, max_payload, buf, sizeof(buf), &len),
                     0);
    assert_int_equal(len, KW_MAX_FRAME);
    kw_msg_t d;
    assert_int_equal(decode_frame(buf, len, &d), 0);
    assert_int_equal(d.payload.len, max_payload);

    /* every remote error code */
    for (unsigned e = 0; e < 256; e++) {
        assert_int_equal(kw_error_encode(9, (uint8_t)e, buf, sizeof(buf), &len), 0);
        assert_int_equal(len, 16);
        assert_int_equal(decode_frame(buf, len, &d), 0);
        assert_int_equal(d.opcode, KW_OP_ERROR);
        assert_int_equal(d.payload.len, 1);
        assert_int_equal(d.payload.ptr[0], e);
    }
}

/* ---- padding ---- */

static void test_gokeyless_padding(void **state)
{
    (void)state;
    uint8_t buf[2048];
    size_t len = 0;
    kw_msg_t m;
    kw_msg_t d;
    make_request(&m, KW_OP_ECDSA_SIGN_SHA256, 77);
    assert_int_equal(kw_msg_encode(&m, KW_GOKEYLESS_PAD, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 1024);
    kw_header_t h;
    assert_int_equal(kw_header_parse(buf, len, &h), 0);
    assert_int_equal(h.body_len, 1016);
    assert_int_equal(decode_frame(buf, len, &d), 0);
    assert_msg_equal(&m, &d);
    /* the padding item is last and all zero */
    size_t unpadded = kw_msg_encoded_len(&m);
    assert_int_equal(buf[unpadded], KW_TAG_PADDING);
    assert_int_equal((buf[unpadded + 1] << 8) | buf[unpadded + 2], 1024 - unpadded - 3);
    for (size_t i = unpadded + 3; i < len; i++)
        assert_int_equal(buf[i], 0);

    /* a gokeyless-style ping, padding first and in the middle: padding is skipped anywhere */
    uint8_t g[1024];
    memset(g, 0, sizeof(g));
    kw_header_write(g, 1016, 5);
    size_t p = KW_HEADER_LEN;
    g[p++] = KW_TAG_PADDING, g[p++] = 0, g[p++] = 10, p += 10;
    g[p++] = KW_TAG_OPCODE, g[p++] = 0, g[p++] = 1, g[p++] = KW_OP_PING;
    g[p++] = KW_TAG_PADDING, g[p++] = 0, g[p++] = 0;
    g[p++] = KW_TAG_PAYLOAD, g[p++] = 0, g[p++] = 2, g[p++] = 'o', g[p++] = 'k';
    size_t rest = sizeof(g) - p - KW_ITEM_HDR_LEN;
    g[p++] = KW_TAG_PADDING, g[p++] = (uint8_t)(rest >> 8), g[p++] = (uint8_t)rest;
    assert_int_equal(decode_frame(g, sizeof(g), &d), 0);
    assert_int_equal(d.id, 5);
    assert_int_equal(d.opcode, KW_OP_PING);
    assert_int_equal(d.payload.len, 2);
    assert_memory_equal(d.payload.ptr, "ok", 2);
}

static void test_padding_edges(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = 0;
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    m.opcode = KW_OP_PING;
    m.has_opcode = 1;
    m.payload = kw_bytes("hi", 2); /* 17 bytes unpadded */
    /* not padded when pad_to <= frame */
    for (size_t pad = 0; pad <= 17; pad++) {
        assert_int_equal(kw_msg_encode(&m, pad, buf, sizeof(buf), &len), 0);
        assert_int_equal(len, 17);
    }
    /* 1 or 2 bytes short: an empty padding item, the smallest frame >= pad_to */
    assert_int_equal(kw_msg_encode(&m, 18, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 20);
    assert_int_equal(kw_msg_encode(&m, 19, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 20);
    /* exact from 3 bytes on */
    for (size_t pad = 20; pad <= sizeof(buf); pad++) {
        kw_msg_t d;
        assert_int_equal(kw_msg_encode(&m, pad, buf, sizeof(buf), &len), 0);
        assert_int_equal(len, pad);
        assert_int_equal(decode_frame(buf, len, &d), 0);
        assert_int_equal(d.payload.len, 2);
    }
    /* padding beyond the buffer or the largest frame */
    assert_int_equal(kw_msg_encode(&m, sizeof(buf) + 1, buf, sizeof(buf), &len), KW_ETOOBIG);
    static uint8_t big[KW_MAX_FRAME + 16];
    assert_int_equal(kw_msg_encode(&m, KW_MAX_FRAME, big, sizeof(big), &len), 0);
    assert_int_equal(len, KW_MAX_FRAME);
    assert_int_equal(kw_msg_encode(&m, KW_MAX_FRAME + 1, big, sizeof(big), &len), KW_ETOOBIG);
}

/* ---- malformed frames ---- */

static void test_short_header(void **state)
{
    (void)state;
    kw_header_t h;
    for (size_t n = 0; n < KW_HEADER_LEN; n++)
        assert_int_equal(kw_header_parse(kPing, n, &h), KW_ESHORT);
    assert_int_equal(kw_header_parse(NULL, 0, &h), KW_ESHORT);
    assert_int_equal(kw_header_parse(kPing, KW_HEADER_LEN, &h), 0);
}

static void test_wrong_version(void **state)
{
    (void)state;
    uint8_t f[sizeof(kPing)];
    kw_header_t h;
    memcpy(f, kPing, sizeof(f));
    f[0] = 2;
    f[7] = 0x2A;
    assert_int_equal(kw_header_parse(f, sizeof(f), &h), KW_EVERSION);
    assert_int_equal(h.major, 2);
    assert_int_equal(h.id, 0x2A); /* still filled so the error reply can carry the id */
    f[0] = 0;
    assert_int_equal(kw_header_parse(f, sizeof(f), &h), KW_EVERSION);
    /* a different minor version is accepted */
    f[0] = 1;
    f[1] = 7;
    assert_int_equal(kw_header_parse(f, sizeof(f), &h), 0);
    assert_int_equal(h.minor, 7);
}

static void test_body_past_end(void **state)
{
    (void)state;
    kw_msg_t d;
    kw_header_t h;
    /* header claims 9 body bytes, only 5 present */
    assert_int_equal(kw_header_parse(kPing, 13, &h), 0);
    assert_true(h.body_len > 13 - KW_HEADER_LEN);
    assert_int_equal(decode_frame(kPing, 13, &d), KW_EFORMAT);
    /* decoding a truncated body fails at the item that runs past the end */
    for (size_t n = 1; n < 9; n++) {
        if (n == 4)
            continue; /* the opcode item alone is a valid body */
        assert_int_equal(kw_msg_decode(kPing + KW_HEADER_LEN, n, 1, &d), KW_EFORMAT);
    }
    assert_int_equal(kw_msg_decode(kPing + KW_HEADER_LEN, 4, 1, &d), 0);
    assert_int_equal(kw_msg_decode(kPing + KW_HEADER_LEN, 0, 1, &d), 0);
    assert_int_equal(kw_msg_decode(NULL, 0, 3, &d), 0);
    assert_int_equal(d.id, 3);
    assert_int_equal(kw_msg_decode(NULL, 4, 3, &d), KW_EINVAL);
}

static void test_item_past_end(void **state)
{
    (void)state;
    kw_msg_t d;
    /* payload claims 3 bytes, 2 present */
    static const uint8_t b1[] = {0x11, 0x00, 0x01, 0xF1, 0x12, 0x00, 0x03, 0x68, 0x69};
    assert_int_equal(kw_msg_decode(b1, sizeof(b1), 1, &d), KW_EFORMAT);
    /* unknown tag claims 0xFFFF bytes */
    static const uint8_t b2[] = {0x7E, 0xFF, 0xFF, 0x00};
    assert_int_equal(kw_msg_decode(b2, sizeof(b2), 1, &d), KW_EFORMAT);
    /* padding runs past the end */
    static const uint8_t b3[] = {0x20, 0x00, 0x05, 0, 0, 0, 0};
    assert_int_equal(kw_msg_decode(b3, sizeof(b3), 1, &d), KW_EFORMAT);
    /* item header cut after the tag and after one length byte */
    static const uint8_t b4[] = {0x11, 0x00, 0x01, 0xF1, 0x12, 0x00};
    assert_int_equal(kw_msg_decode(b4, sizeof(b4), 1, &d), KW_EFORMAT);
    assert_int_equal(kw_msg_decode(b4, 5, 1, &d), KW_EFORMAT);
    /* body longer than KW_MAX_BODY */
    static uint8_t zeros[KW_MAX_BODY + 1];
    assert_int_equal(kw_msg_decode(zeros, sizeof(zeros), 1, &d), KW_EFORMAT);
}

/* Builds a body with item (tag, len) twice or once; returns its length. */
static size_t body_with(uint8_t *b, uint8_t tag, uint16_t len, int times)
{
    size_t p = 0;
    for (int t = 0; t < times; t++) {
        b[p++] = tag;
        b[p++] = (uint8_t)(len >> 8);
        b[p++] = (uint8_t)len;
        memset(b + p, 0x01, len);
        p += len;
    }
    return p;
}

static const struct {
    uint8_t tag;
    uint16_t good;
} kKnownItems[] = {
    {KW_TAG_DIGEST, 32},        {KW_TAG_SNI, 9},
    {KW_TAG_CLIENT_IP, 4},      {KW_TAG_SKI, 20},
    {KW_TAG_SERVER_IP, 16},     {KW_TAG_CERT_ID, 3},
    {KW_TAG_OPCODE, 1},         {KW_TAG_PAYLOAD, 5},
    {KW_TAG_CUSTOM_FUNC, 2},    {KW_TAG_EXTRA, 2},
    {KW_TAG_CLIENT_RANDOM, 32}, {KW_TAG_SERVER_RANDOM, 32},
    {KW_TAG_SESSION_HASH, 48},  {KW_TAG_PRF_DIGEST, 1},
    {KW_TAG_HOPS, 1},
};

static void test_duplicate_items(void **state)
{
    (void)state;
    uint8_t b[256];
    kw_msg_t d;
    for (size_t i = 0; i < sizeof(kKnownItems) / sizeof(kKnownItems[0]); i++) {
        size_t n = body_with(b, kKnownItems[i].tag, kKnownItems[i].good, 1);
        assert_int_equal(kw_msg_decode(b, n, 1, &d), 0);
        n = body_with(b, kKnownItems[i].tag, kKnownItems[i].good, 2);
        assert_int_equal(kw_msg_decode(b, n, 1, &d), KW_EFORMAT);
    }
    /* repeated padding and unknown tags are fine */
    size_t n = body_with(b, KW_TAG_PADDING, 4, 3);
    n += body_with(b + n, 0x7E, 2, 2);
    n += body_with(b + n, 0x15, 0, 2);
    assert_int_equal(kw_msg_decode(b, n, 1, &d), 0);
    assert_false(d.has_opcode);
}

static void test_fixed_sizes(void **state)
{
    (void)state;
    static const struct {
        uint8_t tag;
        uint16_t ok1, ok2;
    } fixed[] = {
        {KW_TAG_OPCODE, 1, 1},          {KW_TAG_DIGEST, 32, 32},   {KW_TAG_SKI, 20, 20},
        {KW_TAG_CLIENT_IP, 4, 16},      {KW_TAG_SERVER_IP, 4, 16}, {KW_TAG_CLIENT_RANDOM, 32, 32},
        {KW_TAG_SERVER_RANDOM, 32, 32}, {KW_TAG_HOPS, 1, 1},       {KW_TAG_PRF_DIGEST, 1, 1},
    };
    uint8_t b[128];
    kw_msg_t d;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        for (uint16_t len = 0; len <= 40; len++) {
            size_t n = body_with(b, fixed[i].tag, len, 1);
            int ok = len == fixed[i].ok1 || len == fixed[i].ok2;
            assert_int_equal(kw_msg_decode(b, n, 1, &d), ok ? 0 : KW_EFORMAT);
        }
    }
    /* session hash: up to 64 bytes */
    for (uint16_t len = 0; len <= 70; len++) {
        size_t n = body_with(b, KW_TAG_SESSION_HASH, len, 1);
        assert_int_equal(kw_msg_decode(b, n, 1, &d), len <= 64 ? 0 : KW_EFORMAT);
    }
}

static void test_encode_errors(void **state)
{
    (void)state;
    static uint8_t buf[KW_MAX_FRAME + 64];
    static uint8_t big[KW_MAX_BODY];
    size_t len = 99;
    kw_msg_t m;
    memset(&m, 0, sizeof(m));
    m.has_opcode = 1;
    m.opcode = KW_OP_RSA_DECRYPT;
    /* body over 65535 bytes */
    m.payload = kw_bytes(big, KW_MAX_BODY - KW_ITEM_HDR_LEN);
    assert_int_equal(kw_msg_encode(&m, 0, buf, sizeof(buf), &len), KW_ETOOBIG);
    assert_int_equal(len, 0);
    assert_int_equal(kw_reply_encode(1, KW_OP_RESPONSE, big, KW_MAX_BODY, buf, sizeof(buf), &len),
                     KW_ETOOBIG);
    assert_int_equal(
        kw_reply_encode(1, KW_OP_RESPONSE, big, KW_MAX_BODY + 1, buf, sizeof(buf), &len),
        KW_ETOOBIG);
    /* buffer too small, by one byte */
    m.payload = kw_bytes("hi", 2);
    assert_int_equal(kw_msg_encode(&m, 0, buf, 16, &len), KW_ETOOBIG);
    assert_int_equal(kw_msg_encode(&m, 0, buf, 17, &len), 0);
    assert_int_equal(kw_error_encode(1, KW_ERR_FORMAT, buf, 15, &len), KW_ETOOBIG);
    /* an item decode would reject is not encoded */
    m.digest = kw_bytes(kDigest, 31);
    assert_int_equal(kw_msg_encode(&m, 0, buf, sizeof(buf), &len), KW_EINVAL);
    m.digest = kw_bytes(kDigest, 32);
    m.client_ip = kw_bytes(kIp6, 6);
    assert_int_equal(kw_msg_encode(&m, 0, buf, sizeof(buf), &len), KW_EINVAL);
    m.client_ip.present = 0;
    m.session_hash = kw_bytes(big, 65);
    assert_int_equal(kw_msg_encode(&m, 0, buf, sizeof(buf), &len), KW_EINVAL);
    m.session_hash.present = 0;
    m.sni = kw_bytes(NULL, 3);
    assert_int_equal(kw_msg_encode(&m, 0, buf, sizeof(buf), &len), KW_EINVAL);
    m.sni.present = 0;
    assert_int_equal(kw_msg_encode(&m, 0, buf, sizeof(buf), &len), 0);
    assert_int_equal(kw_msg_encode(NULL, 0, buf, sizeof(buf), &len), KW_EINVAL);
}

static void test_unknown_tags_skipped(void **state)
{
    (void)state;
    static const uint8_t b[] = {0x7E, 0x00, 0x02, 0xAA, 0xBB, 0x11, 0x00, 0x01, 0x15, 0xFE,
                                0x00, 0x00, 0x01, 0x00, 0x20, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4,
                                0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde,
                                0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
                                0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef};
    kw_msg_t d;
    assert_int_equal(kw_msg_decode(b, sizeof(b), 11, &d), 0);
    assert_int_equal(d.opcode, KW_OP_ECDSA_SIGN_SHA256);
    assert_true(d.digest.present);
    assert_int_equal(d.digest.len, 32);
    assert_int_equal(d.digest.ptr[0], 0xd0);
    assert_false(d.payload.present);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),       cmocka_unit_test(test_roundtrip_requests),
        cmocka_unit_test(test_roundtrip_replies),    cmocka_unit_test(test_gokeyless_padding),
        cmocka_unit_test(test_padding_edges),        cmocka_unit_test(test_short_header),
        cmocka_unit_test(test_wrong_version),        cmocka_unit_test(test_body_past_end),
        cmocka_unit_test(test_item_past_end),        cmocka_unit_test(test_duplicate_items),
        cmocka_unit_test(test_fixed_sizes),          cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_unknown_tags_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
