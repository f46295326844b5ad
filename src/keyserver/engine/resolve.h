/*
 * Which key a request names. A request may carry several key ids: the key id (SHA-256 of the
 * SPKI, item 0x01), the SKI (0x04) and, for certificate requests (0xA2) only, the SNI (0x02; in key
 * operations the SNI is the end client's, for the audit log, and names nothing). All the ids a
 * request carries must name the same key; the key so resolved is the one authorised and used.
 * A key not held here can only be checked through the one id that names it, so a request for it
 * must carry exactly one id, and only that id is forwarded upstream (fleet.c). docs/fleet.md.
 */
#ifndef KW_KS_RESOLVE_H
#define KW_KS_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "keystore/keystore.h"
#include "keyward/protocol.h"

typedef enum kw_ks_keyid_kind {
    KW_KS_KEYID_NONE = 0,
    KW_KS_KEYID_DIGEST, /* item 0x01, KW_DIGEST_LEN bytes */
    KW_KS_KEYID_SKI,    /* item 0x04, KW_SKI_LEN bytes */
    KW_KS_KEYID_SNI,    /* item 0x02 of a 0xA2 request */
} kw_ks_keyid_kind_t;

/* One key id of a request (a view into the request's frame). */
typedef struct kw_ks_keyid_s {
    kw_ks_keyid_kind_t kind;
    const uint8_t *ptr;
    size_t len;
} kw_ks_keyid_t;

typedef struct kw_ks_resolved_s {
    const kw_ks_key_t *key; /* the key held here that every id names, or NULL */
    size_t n_ids;           /* key ids the request carries */
    kw_ks_keyid_t id;       /* key NULL and n_ids == 1: that id (what may be forwarded) */
} kw_ks_resolved_t;

/*
 * Resolves msg's key ids against store (sni_is_id: the SNI is a key id, for 0xA2). Returns 0 with
 * out->key set when a key held here is named and every other id names it too; 0 with out->key
 * NULL when no id names a key held here (out->n_ids tells how many ids there are, out->id is the
 * id when there is one); KW_ERR_FORMAT when the ids name different keys (one held here that
 * another id does not name).
 */
uint8_t kw_ks_resolve(const kw_keystore_t *store, const kw_msg_t *msg, int sni_is_id,
                      kw_ks_resolved_t *out);

/* msg with only id as key id (digest, SKI and, when sni_is_id, SNI items dropped otherwise):
 * the copy a forwarding key server sends upstream. */
kw_msg_t kw_ks_resolve_forward_msg(const kw_msg_t *msg, const kw_ks_keyid_t *id, int sni_is_id);

#endif /* KW_KS_RESOLVE_H */
