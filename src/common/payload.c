/*
 * Key-list and TLS-version readers, and the TLS-version item's writer (see kw_payload.h).
 */
#include "kw_payload.h"

#include <string.h>

#include "keyward/error.h"
#include "kw_writer.h"

int kw_keylist_next(kw_reader_t *r, const uint8_t **id)
{
    return kw_reader_take(r, KW_DIGEST_LEN, id) == 0 ? 1 : 0;
}

int kw_keylist_has(const uint8_t *list, size_t len, const uint8_t *id)
{
    kw_reader_t r;
    const uint8_t *each;
    kw_reader_init(&r, list, len);
    while (kw_keylist_next(&r, &each)) {
        if (memcmp(each, id, KW_DIGEST_LEN) == 0)
            return 1;
    }
    return 0;
}

int kw_item_tls_version(const kw_bytes_t *item, uint16_t *version)
{
    kw_reader_t r;
    KW_ENSURE(item->present && item->len == KW_ITEM_TLS_VERSION_LEN, KW_EFORMAT);
    kw_reader_init(&r, item->ptr, item->len);
    KW_GUARD_AS(kw_reader_u16(&r, version), KW_EFORMAT);
    return 0;
}

void kw_item_tls_version_write(uint16_t version, uint8_t out[KW_ITEM_TLS_VERSION_LEN])
{
    kw_writer_t w;
    kw_writer_init(&w, out, KW_ITEM_TLS_VERSION_LEN);
    if (kw_writer_u16(&w, version) != 0) /* cannot happen: out holds exactly the item */
        memset(out, 0, KW_ITEM_TLS_VERSION_LEN);
}
