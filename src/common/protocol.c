/*
 * KWP codec (include/keyward/protocol.h): the 8-byte header, and a body of tag-length-value items
 * decoded into a kw_msg_t of views into the caller's buffer. Parsing goes only through the bounded
 * reader; encoding only through the bounded writer. One table (kw_items) gives every known item's
 * field and size rule, so decode and encode cannot disagree.
 *
 * Padding (kw_msg_encode with pad_to): the padding item (tag 0x20, zero bytes) makes the whole
 * frame exactly pad_to bytes. An item costs at least 3 bytes, so when the frame is only 1 or 2
 * bytes short of pad_to, an empty padding item makes it pad_to + 2 or pad_to + 1 bytes: the
 * smallest frame not shorter than pad_to. A frame already at least pad_to long is not padded.
 */
#include "keyward/protocol.h"

#include <stddef.h>
#include <string.h>

#include "kw_guard.h"
#include "kw_reader.h"
#include "kw_writer.h"

/* Size rule of an item: exactly `fixed` bytes (or `alt`, when non-zero), else at most `max`. */
typedef struct kw_item_rule_s {
    uint8_t tag;
    size_t offset; /* of its kw_bytes_t in kw_msg_t */
    uint16_t fixed;
    uint16_t alt;
    uint16_t max;
} kw_item_rule_t;

#define KW_SESSION_HASH_MAX 64

#define ITEM(tag, field, fixed, alt, max)                                                          \
    {                                                                                              \
        tag, offsetof(kw_msg_t, field), fixed, alt, max                                            \
    }

/* Known byte items, in encoding order (opcode and hops are written separately, opcode first). */
static const kw_item_rule_t kw_items[] = {
    ITEM(KW_TAG_DIGEST, digest, KW_DIGEST_LEN, 0, 0),
    ITEM(KW_TAG_SKI, ski, KW_SKI_LEN, 0, 0),
    ITEM(KW_TAG_SNI, sni, 0, 0, KW_MAX_BODY),
    ITEM(KW_TAG_CLIENT_IP, client_ip, 4, 16, 0),
    ITEM(KW_TAG_SERVER_IP, server_ip, 4, 16, 0),
    ITEM(KW_TAG_CERT_ID, cert_id, 0, 0, KW_MAX_BODY),
    ITEM(KW_TAG_CUSTOM_FUNC, custom_func, 0, 0, KW_MAX_BODY),
    ITEM(KW_TAG_EXTRA, extra, 0, 0, KW_MAX_BODY),
    ITEM(KW_TAG_CLIENT_RANDOM, client_random, KW_TLS_RANDOM_LEN, 0, 0),
    ITEM(KW_TAG_SERVER_RANDOM, server_random, KW_TLS_RANDOM_LEN, 0, 0),
    ITEM(KW_TAG_SESSION_HASH, session_hash, 0, 0, KW_SESSION_HASH_MAX),
    ITEM(KW_TAG_PRF_DIGEST, prf_digest, 1, 0, 0),
    ITEM(KW_TAG_PAYLOAD, payload, 0, 0, KW_MAX_BODY),
};

#define KW_N_ITEMS (sizeof(kw_items) / sizeof(kw_items[0]))

static const kw_item_rule_t *item_rule(uint8_t tag)
{
    for (size_t i = 0; i < KW_N_ITEMS; i++) {
        if (kw_items[i].tag == tag)
            return &kw_items[i];
    }
    return NULL;
}

static int item_len_ok(const kw_item_rule_t *rule, size_t len)
{
    if (rule->fixed != 0)
        return len == rule->fixed || (rule->alt != 0 && len == rule->alt);
    return len <= rule->max;
}

static kw_bytes_t *msg_field(kw_msg_t *msg, const kw_item_rule_t *rule)
{
    return (kw_bytes_t *)((uint8_t *)msg + rule->offset);
}

static const kw_bytes_t *msg_field_const(const kw_msg_t *msg, const kw_item_rule_t *rule)
{
    return (const kw_bytes_t *)((const uint8_t *)msg + rule->offset);
}

int kw_header_parse(const uint8_t *buf, size_t len, kw_header_t *out)
{
    kw_reader_t r;
    KW_ENSURE(out != NULL, KW_EINVAL);
    KW_ENSURE(len >= KW_HEADER_LEN && buf != NULL, KW_ESHORT);
    kw_reader_init(&r, buf, len);
    KW_GUARD(kw_reader_u8(&r, &out->major));
    KW_GUARD(kw_reader_u8(&r, &out->minor));
    KW_GUARD(kw_reader_u16(&r, &out->body_len));
    KW_GUARD(kw_reader_u32(&r, &out->id));
    KW_ENSURE(out->major == KW_VERSION_MAJOR, KW_EVERSION);
    return 0;
}

void kw_header_write(uint8_t out[KW_HEADER_LEN], uint16_t body_len, uint32_t id)
{
    out[0] = KW_VERSION_MAJOR;
    out[1] = KW_VERSION_MINOR;
    out[2] = (uint8_t)(body_len >> 8);
    out[3] = (uint8_t)body_len;
    out[4] = (uint8_t)(id >> 24);
    out[5] = (uint8_t)(id >> 16);
    out[6] = (uint8_t)(id >> 8);
    out[7] = (uint8_t)id;
}

/* Stores a 1-byte item (opcode or hops) in its uint8_t field; a repeat is a format error. */
static int store_byte_item(uint8_t *value, uint8_t *has, const uint8_t *ptr, uint16_t len)
{
    KW_ENSURE(*has == 0, KW_EFORMAT);
    KW_ENSURE(len == 1, KW_EFORMAT);
    *value = ptr[0];
    *has = 1;
    return 0;
}

static int store_item(kw_msg_t *msg, uint8_t tag, const uint8_t *ptr, uint16_t len)
{
    if (tag == KW_TAG_OPCODE)
        return store_byte_item(&msg->opcode, &msg->has_opcode, ptr, len);
    if (tag == KW_TAG_HOPS)
        return store_byte_item(&msg->hops, &msg->has_hops, ptr, len);
    const kw_item_rule_t *rule = item_rule(tag);
    if (rule == NULL)
        return 0; /* unknown tags and padding are skipped */
    kw_bytes_t *field = msg_field(msg, rule);
    KW_ENSURE(!field->present, KW_EFORMAT);
    KW_ENSURE(item_len_ok(rule, len), KW_EFORMAT);
    field->ptr = ptr;
    field->len = len;
    field->present = 1;
    return 0;
}

/* On KW_EFORMAT, msg keeps the items decoded before the bad one (the opcode, when it came first,
 * lets a server name the failed operation in its log). */
int kw_msg_decode(const uint8_t *body, size_t body_len, uint32_t id, kw_msg_t *msg)
{
    kw_reader_t r;
    KW_ENSURE(msg != NULL, KW_EINVAL);
    memset(msg, 0, sizeof(*msg));
    msg->id = id;
    KW_ENSURE(body != NULL || body_len == 0, KW_EINVAL);
    KW_ENSURE(body_len <= KW_MAX_BODY, KW_EFORMAT);
    kw_reader_init(&r, body, body_len);
    while (kw_reader_remaining(&r) > 0) {
        uint8_t tag;
        uint16_t len;
        const uint8_t *value;
        KW_GUARD_AS(kw_reader_u8(&r, &tag), KW_EFORMAT);
        KW_GUARD_AS(kw_reader_u16(&r, &len), KW_EFORMAT);
        KW_GUARD_AS(kw_reader_take(&r, len, &value), KW_EFORMAT);
        KW_GUARD(store_item(msg, tag, value, len));
    }
    return 0;
}

/* Body size of msg without padding; *valid = 0 when an item breaks its size rule (or has len
 * bytes but no pointer), since decode would then reject what encode wrote. */
static size_t body_len_of(const kw_msg_t *msg, int *valid)
{
    size_t n = 0;
    *valid = 1;
    if (msg->has_opcode)
        n += KW_ITEM_HDR_LEN + 1;
    if (msg->has_hops)
        n += KW_ITEM_HDR_LEN + 1;
    for (size_t i = 0; i < KW_N_ITEMS; i++) {
        const kw_bytes_t *b = msg_field_const(msg, &kw_items[i]);
        if (!b->present)
            continue;
        if (!item_len_ok(&kw_items[i], b->len) || (b->ptr == NULL && b->len != 0))
            *valid = 0;
        n += KW_ITEM_HDR_LEN + b->len;
    }
    return n;
}

size_t kw_msg_encoded_len(const kw_msg_t *msg)
{
    int valid;
    if (msg == NULL)
        return KW_HEADER_LEN;
    return KW_HEADER_LEN + body_len_of(msg, &valid);
}

static int write_item(kw_writer_t *w, uint8_t tag, const uint8_t *ptr, uint16_t len)
{
    KW_GUARD(kw_writer_u8(w, tag));
    KW_GUARD(kw_writer_u16(w, len));
    return kw_writer_bytes(w, ptr, len);
}

/* Body length once padded for pad_to (see the comment atop this file). */
static size_t padded_body_len(size_t body, size_t pad_to)
{
    if (pad_to <= KW_HEADER_LEN + body)
        return body;
    size_t gap = pad_to - KW_HEADER_LEN - body;
    return body + (gap < KW_ITEM_HDR_LEN ? KW_ITEM_HDR_LEN : gap);
}

static int write_items(kw_writer_t *w, const kw_msg_t *msg, size_t pad_len)
{
    if (msg->has_opcode)
        KW_GUARD(write_item(w, KW_TAG_OPCODE, &msg->opcode, 1));
    for (size_t i = 0; i < KW_N_ITEMS; i++) {
        const kw_bytes_t *b = msg_field_const(msg, &kw_items[i]);
        if (b->present)
            KW_GUARD(write_item(w, kw_items[i].tag, b->ptr, b->len));
    }
    if (msg->has_hops)
        KW_GUARD(write_item(w, KW_TAG_HOPS, &msg->hops, 1));
    if (pad_len > 0) {
        KW_GUARD(kw_writer_u8(w, KW_TAG_PADDING));
        KW_GUARD(kw_writer_u16(w, (uint16_t)(pad_len - KW_ITEM_HDR_LEN)));
        KW_GUARD(kw_writer_zeros(w, pad_len - KW_ITEM_HDR_LEN));
    }
    return 0;
}

int kw_msg_encode(const kw_msg_t *msg, size_t pad_to, uint8_t *out, size_t cap, size_t *out_len)
{
    int valid;
    kw_writer_t w;
    KW_ENSURE(msg != NULL && out_len != NULL, KW_EINVAL);
    *out_len = 0;
    size_t body = body_len_of(msg, &valid);
    KW_ENSURE(valid, KW_EINVAL);
    size_t padded = padded_body_len(body, pad_to);
    KW_ENSURE(padded <= KW_MAX_BODY, KW_ETOOBIG);
    KW_ENSURE(out != NULL || cap == 0, KW_EINVAL);
    KW_ENSURE(KW_HEADER_LEN + padded <= cap, KW_ETOOBIG);
    kw_header_write(out, (uint16_t)padded, msg->id);
    kw_writer_init(&w, out + KW_HEADER_LEN, padded);
    KW_GUARD(write_items(&w, msg, padded - body));
    KW_ENSURE(kw_writer_len(&w) == padded, KW_EINVAL);
    *out_len = KW_HEADER_LEN + padded;
    return 0;
}

int kw_reply_encode(uint32_t id, uint8_t opcode, const uint8_t *payload, size_t payload_len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    kw_msg_t msg;
    KW_ENSURE(out_len != NULL, KW_EINVAL);
    *out_len = 0;
    KW_ENSURE(payload_len <= KW_MAX_BODY, KW_ETOOBIG);
    KW_ENSURE(payload != NULL || payload_len == 0, KW_EINVAL);
    memset(&msg, 0, sizeof(msg));
    msg.id = id;
    msg.opcode = opcode;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(payload, payload_len);
    return kw_msg_encode(&msg, 0, out, cap, out_len);
}

int kw_error_encode(uint32_t id, uint8_t err, uint8_t *out, size_t cap, size_t *out_len)
{
    return kw_reply_encode(id, KW_OP_ERROR, &err, 1, out, cap, out_len);
}
