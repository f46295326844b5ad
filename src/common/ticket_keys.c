/*
 * The 0xA4 reply codec (protocol.h): a set of three session-ticket keys with their epochs and
 * validity times, written through kw_writer and read back only through kw_reader. The decoder
 * checks that the set is what a key server derives (consecutive epochs, times that follow from
 * the rotation), so an edge never installs a set it cannot reason about.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "kw_reader.h"
#include "kw_writer.h"

int kw_ticket_keys_encode(const kw_ticket_keys_t *set, uint8_t *out, size_t cap, size_t *out_len)
{
    kw_writer_t w;
    kw_writer_init(&w, out, cap);
    KW_ENSURE(cap >= KW_TICKET_KEYS_LEN, KW_ETOOBIG);
    KW_GUARD(kw_writer_u8(&w, KW_TICKET_KEYS_VERSION));
    KW_GUARD(kw_writer_u8(&w, KW_TICKET_EPOCHS));
    KW_GUARD(kw_writer_u32(&w, set->rotation_s));
    KW_GUARD(kw_writer_u64(&w, set->server_time));
    for (size_t i = 0; i < KW_TICKET_EPOCHS; i++) {
        const kw_ticket_key_t *k = &set->keys[i];
        KW_GUARD(kw_writer_u64(&w, k->epoch));
        KW_GUARD(kw_writer_u64(&w, k->not_before));
        KW_GUARD(kw_writer_u64(&w, k->not_after));
        KW_GUARD(kw_writer_bytes(&w, k->key, KW_TICKET_KEY_LEN));
    }
    *out_len = kw_writer_len(&w);
    return 0;
}

/* 1 when key i of set has the epoch and times a key server gives it. */
static int key_consistent(const kw_ticket_keys_t *set, size_t i)
{
    const kw_ticket_key_t *k = &set->keys[i];
    uint64_t n = set->rotation_s;
    if (k->epoch > UINT64_MAX / n - 1)
        return 0;
    if (i > 0 && k->epoch != set->keys[i - 1].epoch + 1)
        return 0;
    return k->not_before == k->epoch * n && k->not_after == (k->epoch + 1) * n;
}

static int decode(kw_reader_t *r, kw_ticket_keys_t *out)
{
    uint8_t version = 0;
    uint8_t count = 0;
    KW_GUARD(kw_reader_u8(r, &version));
    KW_GUARD(kw_reader_u8(r, &count));
    KW_ENSURE(version == KW_TICKET_KEYS_VERSION && count == KW_TICKET_EPOCHS, KW_EFORMAT);
    KW_GUARD(kw_reader_u32(r, &out->rotation_s));
    KW_GUARD(kw_reader_u64(r, &out->server_time));
    KW_ENSURE(out->rotation_s != 0, KW_EFORMAT);
    for (size_t i = 0; i < KW_TICKET_EPOCHS; i++) {
        kw_ticket_key_t *k = &out->keys[i];
        KW_GUARD(kw_reader_u64(r, &k->epoch));
        KW_GUARD(kw_reader_u64(r, &k->not_before));
        KW_GUARD(kw_reader_u64(r, &k->not_after));
        KW_GUARD(kw_reader_copy(r, k->key, KW_TICKET_KEY_LEN));
        KW_ENSURE(key_consistent(out, i), KW_EFORMAT);
    }
    return kw_reader_remaining(r) == 0 ? 0 : KW_EFORMAT;
}

int kw_ticket_keys_decode(const uint8_t *p, size_t len, kw_ticket_keys_t *out)
{
    kw_reader_t r;
    memset(out, 0, sizeof(*out));
    kw_reader_init(&r, p, len);
    int rc = decode(&r, out);
    if (rc != 0) {
        OPENSSL_cleanse(out, sizeof(*out));
        return KW_EFORMAT;
    }
    return 0;
}
