/*
 * Key stub files: what an edge keeps instead of a private key. A stub names a key that lives on
 * a key server (its SHA-256 key id) and carries its public key, never any private part. Programs
 * that only know how to read a private key *file* (nginx's ssl_certificate_key, HAProxy's PEM)
 * load it through the keyward provider's decoder and then sign/decrypt on the key server.
 *
 * PEM label "KEYWARD KEY"; the DER inside is
 *   KeywardKeyStub ::= SEQUENCE {
 *       format   UTF8String ("keyward-key-stub"),  -- no standard key structure starts this way
 *       version  INTEGER (1),
 *       keyId    OCTET STRING (SIZE (32)),         -- SHA-256 of spki, the KWP digest item
 *       spki     SubjectPublicKeyInfo }
 * Shared by the CLI (`keyward stub`) and the provider.
 */
#ifndef KEYWARD_STUB_H
#define KEYWARD_STUB_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/evp.h>

#include "keyward/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KW_STUB_PEM_LABEL "KEYWARD KEY"
#define KW_STUB_FORMAT    "keyward-key-stub"
#define KW_STUB_VERSION   1
#define KW_STUB_MAX_DER   16384 /* far above any RSA-16384 SPKI; bounds what a decoder accepts */

/* A decoded stub. spki points into the buffer given to kw_stub_decode (which must outlive it). */
typedef struct kw_stub_s {
    uint8_t digest[KW_DIGEST_LEN];
    const uint8_t *spki;
    size_t spki_len;
} kw_stub_t;

/*
 * Encodes a stub for key id digest and the SubjectPublicKeyInfo DER spki into out (capacity cap).
 * Returns 0, KW_EINVAL, or KW_ETOOBIG when cap is too small (*out_len then says what is needed).
 */
int kw_stub_encode(const uint8_t digest[KW_DIGEST_LEN], const uint8_t *spki, size_t spki_len,
                   uint8_t *out, size_t cap, size_t *out_len);

/*
 * Decodes a stub. Checks the format string, the version, the key id length and that spki is one
 * well-formed DER SEQUENCE, with nothing trailing. It does not hash spki: callers that build a
 * key from it compare the key id with kw_keyid_from_pkey(). Returns 0 or KW_EFORMAT.
 */
int kw_stub_decode(const uint8_t *der, size_t der_len, kw_stub_t *out);

/* Writes the PEM stub of pub's public key (key id computed here) to out. 0 or KW_E*. */
int kw_stub_write_pem(BIO *out, const EVP_PKEY *pub);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARD_STUB_H */
