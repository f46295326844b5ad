/*
 * Resolving a request's key ids to one key (resolve.h): look each id up, take the key held here
 * that one of them names, and check every other id names that key too.
 */
#include <string.h>

#include "engine/resolve.h"

/* 1 when the id names key. */
static int id_names(const kw_ks_keyid_t *id, const kw_ks_key_t *key)
{
    switch (id->kind) {
    case KW_KS_KEYID_DIGEST:
        return memcmp(id->ptr, key->digest, KW_DIGEST_LEN) == 0;
    case KW_KS_KEYID_SKI:
        return kw_keystore_key_has_ski(key, id->ptr);
    case KW_KS_KEYID_SNI:
        return kw_keystore_key_covers_sni(key, id->ptr, id->len);
    default:
        return 0;
    }
}

static const kw_ks_key_t *id_lookup(const kw_keystore_t *store, const kw_ks_keyid_t *id)
{
    switch (id->kind) {
    case KW_KS_KEYID_DIGEST:
        return kw_keystore_find_digest(store, id->ptr);
    case KW_KS_KEYID_SKI:
        return kw_keystore_find_ski(store, id->ptr);
    case KW_KS_KEYID_SNI:
        return kw_keystore_find_sni(store, id->ptr, id->len);
    default:
        return NULL;
    }
}

/* The key ids of msg into ids (at most 3); returns how many. kw_msg_decode has checked the
 * lengths of digest and SKI items; an item of another length, or an empty SNI, is not an id. */
static size_t collect_ids(const kw_msg_t *msg, int sni_is_id, kw_ks_keyid_t ids[3])
{
    size_t n = 0;
    if (msg->digest.present && msg->digest.len == KW_DIGEST_LEN)
        ids[n++] = (kw_ks_keyid_t){KW_KS_KEYID_DIGEST, msg->digest.ptr, msg->digest.len};
    if (msg->ski.present && msg->ski.len == KW_SKI_LEN)
        ids[n++] = (kw_ks_keyid_t){KW_KS_KEYID_SKI, msg->ski.ptr, msg->ski.len};
    if (sni_is_id && msg->sni.present && msg->sni.len > 0)
        ids[n++] = (kw_ks_keyid_t){KW_KS_KEYID_SNI, msg->sni.ptr, msg->sni.len};
    return n;
}

uint8_t kw_ks_resolve(const kw_keystore_t *store, const kw_msg_t *msg, int sni_is_id,
                      kw_ks_resolved_t *out)
{
    kw_ks_keyid_t ids[3];
    memset(out, 0, sizeof(*out));
    out->n_ids = collect_ids(msg, sni_is_id, ids);
    const kw_ks_key_t *key = NULL;
    for (size_t i = 0; i < out->n_ids && key == NULL; i++)
        key = id_lookup(store, &ids[i]);
    if (key == NULL) {
        if (out->n_ids == 1)
            out->id = ids[0];
        return 0;
    }
    for (size_t i = 0; i < out->n_ids; i++)
        if (!id_names(&ids[i], key))
            return KW_ERR_FORMAT;
    out->key = key;
    return 0;
}

kw_msg_t kw_ks_resolve_forward_msg(const kw_msg_t *msg, const kw_ks_keyid_t *id, int sni_is_id)
{
    kw_msg_t copy = *msg;
    memset(&copy.digest, 0, sizeof(copy.digest));
    memset(&copy.ski, 0, sizeof(copy.ski));
    if (sni_is_id)
        memset(&copy.sni, 0, sizeof(copy.sni));
    switch (id->kind) {
    case KW_KS_KEYID_DIGEST:
        copy.digest = kw_bytes(id->ptr, id->len);
        break;
    case KW_KS_KEYID_SKI:
        copy.ski = kw_bytes(id->ptr, id->len);
        break;
    case KW_KS_KEYID_SNI:
        copy.sni = kw_bytes(id->ptr, id->len);
        break;
    default:
        break;
    }
    return copy;
}
