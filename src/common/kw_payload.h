/*
 * Readers for the payloads and items whose inside KWP gives a shape, over kw_reader:
 *   the key list (0xA3's reply: SHA-256 key ids, KW_DIGEST_LEN bytes each) and
 *   the TLS-version item (0xA0/0xA1's extra: the ClientHello version, 2 bytes big-endian).
 * Certificate chains (0xA2's reply) are read by kw_chain.h.
 */
#ifndef KW_PAYLOAD_H
#define KW_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"
#include "kw_reader.h"

/* The next key id of a key list: 1 with *id (a view of KW_DIGEST_LEN bytes), 0 at the end.
 * Bytes after the last whole id are ignored (a list is read as far as it is whole). */
int kw_keylist_next(kw_reader_t *r, const uint8_t **id);

/* 1 when the key list list[0..len) holds id (KW_DIGEST_LEN bytes), 0 otherwise. */
int kw_keylist_has(const uint8_t *list, size_t len, const uint8_t *id);

/* The ClientHello version in a TLS-version item. Returns 0, or KW_EFORMAT when the item is
 * absent or not exactly 2 bytes. */
KW_WARN_UNUSED int kw_item_tls_version(const kw_bytes_t *item, uint16_t *version);

#define KW_ITEM_TLS_VERSION_LEN 2

/* Writes the TLS-version item that carries version (the ClientHello's) into out. */
void kw_item_tls_version_write(uint16_t version, uint8_t out[KW_ITEM_TLS_VERSION_LEN]);

#endif /* KW_PAYLOAD_H */
