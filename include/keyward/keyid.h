/*
 * Key identifiers: SHA-256 of the SubjectPublicKeyInfo DER (KWP tag 0x01, keyward's key id) and
 * the RFC 5280 §4.2.1.2 method-1 SKI, SHA-1 of the subjectPublicKey BIT STRING contents (tag 0x04).
 * Also the text forms users type: "sha256:HEX", "sha256=HEX", "ski:HEX", "ski=HEX".
 */
#ifndef KEYWARD_KEYID_H
#define KEYWARD_KEYID_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keyward/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kw_keyid_kind { KW_KEYID_SHA256 = 1, KW_KEYID_SKI = 2 } kw_keyid_kind_t;

/* Computes both identifiers of pkey's public key. Returns 0 or KW_ECRYPTO. */
int kw_keyid_from_pkey(const EVP_PKEY *pkey, uint8_t digest[KW_DIGEST_LEN],
                       uint8_t ski[KW_SKI_LEN]);

/* Parses "sha256:HEX" / "sha256=HEX" (64 hex digits) or "ski:HEX" / "ski=HEX" (40 hex digits).
 * Sets *kind and writes KW_DIGEST_LEN or KW_SKI_LEN bytes to out. Returns 0 or KW_EINVAL. */
int kw_keyid_parse(const char *text, kw_keyid_kind_t *kind, uint8_t out[KW_DIGEST_LEN]);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARD_KEYID_H */
