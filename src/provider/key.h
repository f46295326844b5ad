/*
 * A keyward key object (the provider's keydata): the key id, the public key (an EVP_PKEY in the
 * provider's own library context, from the default provider) and whether its private half lives
 * on a key server. It never holds private key bytes. Reference counted: keymgmt, signature and
 * cipher contexts each hold a reference; kw_key_free drops one.
 */
#ifndef KW_PROV_KEY_H
#define KW_PROV_KEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keyward/protocol.h"
#include "prov_ctx.h"

typedef enum kw_key_type {
    KW_KEY_NONE = 0,
    KW_KEY_RSA = 1,
    KW_KEY_EC = 2,
    KW_KEY_ED25519 = 3,
} kw_key_type_t;

typedef struct kw_key_s {
    int refs;
    kw_prov_ctx_t *pctx;
    kw_key_type_t type;
    int remote;    /* 1: the private half is on a key server; 0: public-only (imported) */
    EVP_PKEY *pub; /* NULL until set */
    uint8_t digest[KW_DIGEST_LEN];
    uint8_t ski[KW_SKI_LEN];
    char idtext[8 + 2 * KW_DIGEST_LEN]; /* "sha256=HEX", for messages */
} kw_key_t;

/* An empty key of a type (keymgmt new). NULL on allocation failure. */
kw_key_t *kw_key_new(kw_prov_ctx_t *pctx, kw_key_type_t type);

/* Sets the public key (takes ownership of pub) and computes the key ids. Returns 1 or 0 (raised).
 */
int kw_key_set_public(kw_key_t *key, EVP_PKEY *pub, int remote);

/* A remote key from SubjectPublicKeyInfo DER. NULL (raised) when it is not RSA, EC or Ed25519. */
kw_key_t *kw_key_from_spki(kw_prov_ctx_t *pctx, const uint8_t *der, size_t len);

/* The keyward type of a public key, KW_KEY_NONE if unsupported. */
kw_key_type_t kw_key_type_of(const EVP_PKEY *pub);

/* "RSA", "EC", "ED25519": keymgmt names, and the data type decoders and the store report. */
const char *kw_key_type_name(kw_key_type_t type);

void kw_key_up_ref(kw_key_t *key);
void kw_key_free(kw_key_t *key);

/*
 * Object references handed from the store/decoder to keymgmt load. The size differs from a
 * pointer's on purpose: another provider's load() that expects a bare pointer refuses it.
 */
typedef struct kw_key_ref_s {
    uint64_t magic;
    kw_key_t *key;
    uint64_t reserved[2];
} kw_key_ref_t;

void kw_key_ref_init(kw_key_ref_t *ref, kw_key_t *key);

/* The key a reference names, with a new reference taken; NULL when ref is not ours. */
kw_key_t *kw_key_from_ref(const void *ref, size_t ref_size);

/* Maximum signature / block size of the key (EVP_PKEY_get_size of the public key). */
size_t kw_key_max_size(const kw_key_t *key);

#endif /* KW_PROV_KEY_H */
