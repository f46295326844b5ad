/*
 * The key store: every private key the key server serves, with its certificate chain, indexed by
 * key id (SHA-256 of the SPKI), by SKI and by the certificate's names (SNI). A store is immutable
 * once loaded and reference counted, so a reload can build a new one and swap it in while jobs
 * in flight keep using the old one until they drop their reference.
 */
#ifndef KW_KEYSTORE_H
#define KW_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyward/protocol.h"
#include "keystore/backend.h"
#include "keystore/pkcs11/pkcs11_store.h"

typedef enum kw_ks_key_type {
    KW_KS_KEY_RSA = 1,
    KW_KS_KEY_EC = 2,
    KW_KS_KEY_ED25519 = 3,
} kw_ks_key_type_t;

/* One key. Owned by its store; valid as long as the caller holds a reference to the store. */
typedef struct kw_ks_key_s {
    EVP_PKEY *pkey;                 /* the private key; for a token key, its public key */
    const kw_ks_backend_t *backend; /* where the key lives and how it is operated (backend.h) */
    void *priv; /* the backend's data, freed by backend->key_free: for a PEM RSA key its
                 * implicit-rejection secret (tls_reject_internal.h, secure heap), for a token key its
                 * kw_ks_p11_key_t */
    kw_ks_key_type_t type;
    int bits;       /* modulus / field size */
    size_t max_out; /* EVP_PKEY_get_size: largest signature or decrypted block */
    size_t index;   /* position in the store, 0..n-1 */
    char *name;     /* file name without ".key", or "TOKEN/LABEL" for a token key */
    uint8_t digest[KW_DIGEST_LEN];
    uint8_t ski[KW_SKI_LEN];
    uint8_t cert_ski[KW_SKI_LEN]; /* the certificate's SKI extension, when has_cert_ski */
    int has_cert_ski;
    char **names; /* the names its certificate answers to (SAN DNS, CN), lower case; owned */
    size_t n_names;
    uint8_t *chain_der; /* concatenated DER certificates, leaf first; NULL without a .crt */
    size_t chain_der_len;
} kw_ks_key_t;

typedef struct kw_keystore_s kw_keystore_t;

/*
 * Loads every "*.key" of dir (NULL: an empty store) with its same-named ".crt" chain when
 * present. Unsupported or unreadable keys and keys whose certificate does not match are skipped
 * with a log line; they are counted in *skipped when skipped is not NULL. Returns 0 and a new store
 * with one reference (the caller's) in *out, or KW_EIO (directory unreadable) / KW_ENOMEM with a
 * message in err.
 */
int kw_keystore_load(const char *dir, kw_keystore_t **out, size_t *skipped, char *err,
                     size_t errlen);

/* Where a key store's keys come from: PEM key directories and PKCS#11 tokens. */
typedef struct kw_keystore_src_s {
    char *const *dirs;
    size_t n_dirs;
    const kw_ks_p11_spec_t *tokens;
    size_t n_tokens;
    kw_ks_p11_ctx_t *p11; /* module registry; required when n_tokens > 0 */
} kw_keystore_src_t;

/*
 * Like kw_keystore_load for several directories (in the order given) and tokens. A directory that
 * cannot be read or a token that cannot be opened (module, token, PIN) fails the whole load; key
 * files are refused one by one as for kw_keystore_load (counted in *skipped).
 */
int kw_keystore_load_src(const kw_keystore_src_t *src, kw_keystore_t **out, size_t *skipped,
                         char *err, size_t errlen);

/* Adds a reference / drops one (the last frees the store). Thread-safe. NULL is ignored. */
kw_keystore_t *kw_keystore_ref(kw_keystore_t *store);
void kw_keystore_unref(kw_keystore_t *store);

size_t kw_keystore_count(const kw_keystore_t *store);
const kw_ks_key_t *kw_keystore_get(const kw_keystore_t *store, size_t index);

/* Lookups; NULL when absent. sni is matched case-insensitively, then as a "*.rest" wildcard. */
const kw_ks_key_t *kw_keystore_find_digest(const kw_keystore_t *store, const uint8_t *digest);
const kw_ks_key_t *kw_keystore_find_ski(const kw_keystore_t *store, const uint8_t *ski);
const kw_ks_key_t *kw_keystore_find_sni(const kw_keystore_t *store, const uint8_t *sni, size_t len);

/* Key id lookup of a request: digest when present, else SKI. NULL when neither finds a key.
 * Request dispatch resolves ids with kw_ks_resolve (resolve.h), which checks they agree. */
const kw_ks_key_t *kw_keystore_find(const kw_keystore_t *store, const kw_msg_t *msg);

/* 1 when ski (KW_SKI_LEN bytes) is key's SKI: its own (SHA-1 of the public key) or the one in
 * its certificate's SKI extension. */
int kw_keystore_key_has_ski(const kw_ks_key_t *key, const uint8_t *ski);

/* 1 when key's certificate answers to the server name sni (len bytes, any case): one of its names
 * equals it, or a wildcard name covers it (kw_ks_sni_match). */
int kw_keystore_key_covers_sni(const kw_ks_key_t *key, const uint8_t *sni, size_t len);

/* sni (len bytes, from the wire) lower-cased into name: 0, or -1 when it cannot be a host name
 * (empty, over 253 bytes, or holding a NUL). */
int kw_ks_sni_lower(const uint8_t *sni, size_t len, char name[256]);

/* Whether pattern covers name (both lower case): equal, or a "*." wildcard on either side standing
 * for exactly one label. */
int kw_ks_sni_match(const char *pattern, const char *name);

#endif /* KW_KEYSTORE_H */
