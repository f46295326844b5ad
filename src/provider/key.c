/*
 * Key objects (key.h): creation from a public key or SPKI DER, key ids, reference counting and
 * the references the store and decoder hand to keymgmt load.
 */
#include "key.h"

#include <string.h>

#include <openssl/x509.h>

#include "keyward/keyid.h"
#include "kw_hex.h"

#define KW_KEY_REF_MAGIC 0x6b65797761726431ULL /* "keyward1" */

kw_key_t *kw_key_new(kw_prov_ctx_t *pctx, kw_key_type_t type)
{
    kw_key_t *key = OPENSSL_zalloc(sizeof(*key));
    if (key == NULL)
        return NULL;
    key->refs = 1;
    key->pctx = pctx;
    key->type = type;
    return key;
}

kw_key_type_t kw_key_type_of(const EVP_PKEY *pub)
{
    if (EVP_PKEY_is_a(pub, "RSA"))
        return KW_KEY_RSA;
    if (EVP_PKEY_is_a(pub, "EC"))
        return KW_KEY_EC;
    if (EVP_PKEY_is_a(pub, "ED25519"))
        return KW_KEY_ED25519;
    return KW_KEY_NONE;
}

const char *kw_key_type_name(kw_key_type_t type)
{
    switch (type) {
    case KW_KEY_RSA:
        return "RSA";
    case KW_KEY_EC:
        return "EC";
    case KW_KEY_ED25519:
        return "ED25519";
    default:
        return "none";
    }
}

int kw_key_set_public(kw_key_t *key, EVP_PKEY *pub, int remote)
{
    kw_key_type_t type = kw_key_type_of(pub);
    if (type == KW_KEY_NONE || (key->type != KW_KEY_NONE && key->type != type)) {
        kw_prov_raise(key->pctx, KW_PROV_R_BAD_KEY,
                      "public key type %s does not fit a keyward %s key (RSA, EC and Ed25519 "
                      "keys are supported)",
                      EVP_PKEY_get0_type_name(pub), kw_key_type_name(key->type));
        EVP_PKEY_free(pub);
        return 0;
    }
    if (kw_keyid_from_pkey(pub, key->digest, key->ski) != 0) {
        kw_prov_raise(key->pctx, KW_PROV_R_BAD_KEY, "cannot compute the key id of a public key");
        EVP_PKEY_free(pub);
        return 0;
    }
    EVP_PKEY_free(key->pub);
    key->pub = pub;
    key->type = type;
    key->remote = remote;
    memcpy(key->idtext, "sha256=", 7);
    kw_hex_encode(key->digest, KW_DIGEST_LEN, key->idtext + 7);
    return 1;
}

kw_key_t *kw_key_from_spki(kw_prov_ctx_t *pctx, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY_ex(NULL, &p, (long)len, pctx->libctx, NULL);
    kw_key_t *key;
    if (pub == NULL || p != der + len) {
        EVP_PKEY_free(pub);
        kw_prov_raise(pctx, KW_PROV_R_BAD_KEY, "malformed SubjectPublicKeyInfo");
        return NULL;
    }
    key = kw_key_new(pctx, KW_KEY_NONE);
    if (key == NULL) {
        EVP_PKEY_free(pub);
        return NULL;
    }
    if (!kw_key_set_public(key, pub, 1)) {
        kw_key_free(key);
        return NULL;
    }
    return key;
}

void kw_key_up_ref(kw_key_t *key)
{
    __atomic_add_fetch(&key->refs, 1, __ATOMIC_RELAXED);
}

void kw_key_free(kw_key_t *key)
{
    if (key == NULL)
        return;
    if (__atomic_sub_fetch(&key->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    EVP_PKEY_free(key->pub);
    OPENSSL_free(key);
}

void kw_key_ref_init(kw_key_ref_t *ref, kw_key_t *key)
{
    memset(ref, 0, sizeof(*ref));
    ref->magic = KW_KEY_REF_MAGIC;
    ref->key = key;
}

kw_key_t *kw_key_from_ref(const void *ref, size_t ref_size)
{
    const kw_key_ref_t *r = ref;
    if (r == NULL || ref_size != sizeof(*r) || r->magic != KW_KEY_REF_MAGIC || r->key == NULL)
        return NULL;
    kw_key_up_ref(r->key);
    return r->key;
}

size_t kw_key_max_size(const kw_key_t *key)
{
    int n = key->pub == NULL ? 0 : EVP_PKEY_get_size(key->pub);
    return n > 0 ? (size_t)n : 0;
}
