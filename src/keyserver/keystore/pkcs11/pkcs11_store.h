/*
 * The PKCS#11 key store: private keys that live on a token (an HSM, or SoftHSM2 in tests) and never
 * leave it. A module is dlopen'ed and initialised once per process (kept in a kw_ks_p11_ctx_t that
 * main owns), a token is found by label (or an RFC 7512 URI), logged into with a PIN read from a
 * file, and every private key with a matching public key or certificate on the token is offered
 * to the key store with its public key, from which the key ids are computed. Operations run on
 * the token through pooled sessions; a token error is an error reply, never a crash.
 */
#ifndef KW_PKCS11_STORE_H
#define KW_PKCS11_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keystore/backend.h"

typedef struct kw_ks_p11_ctx_s kw_ks_p11_ctx_t;
typedef struct kw_ks_p11_key_s kw_ks_p11_key_t;

/* What to open, from the flags or one config entry. Strings are the caller's; any may be NULL.
 * module, token and pin_file override the URI's module-path, token and pin-source. */
typedef struct kw_ks_p11_spec_s {
    const char *uri;
    const char *module;
    const char *token;
    const char *pin_file;
} kw_ks_p11_spec_t;

/* One usable key found on a token. The caller takes key, pub, name and cert_der by setting them
 * to NULL; kw_ks_p11_keylist_free frees what is left. */
typedef struct kw_ks_p11_found_s {
    kw_ks_p11_key_t *key; /* free with kw_ks_p11_key_free */
    EVP_PKEY *pub;        /* its public key */
    char *name;           /* "TOKEN/LABEL" (or "TOKEN/id-HEX") for logs; malloc'ed */
    uint8_t *cert_der;    /* a certificate with the same CKA_ID on the token, or NULL; malloc'ed */
    size_t cert_der_len;
} kw_ks_p11_found_t;

typedef struct kw_ks_p11_keylist_s {
    kw_ks_p11_found_t *v;
    size_t n;
} kw_ks_p11_keylist_t;

/* The module registry; owned by main, freed after every key store. Returns 0 or KW_ENOMEM. */
int kw_ks_p11_ctx_new(kw_ks_p11_ctx_t **out);
void kw_ks_p11_ctx_free(kw_ks_p11_ctx_t *ctx);

/*
 * Opens the token spec names and lists its keys into out (zeroed here). Keys without a public
 * key or certificate, of unsupported types or sizes, or needing a PIN per operation
 * (CKA_ALWAYS_AUTHENTICATE) are skipped with a log line. Returns 0, or a negative KW_E* with the
 * reason in err (module not found, token not found, wrong PIN, ...).
 */
int kw_ks_p11_load(kw_ks_p11_ctx_t *ctx, const kw_ks_p11_spec_t *spec, kw_ks_p11_keylist_t *out,
                   char *err, size_t errlen);

void kw_ks_p11_keylist_free(kw_ks_p11_keylist_t *list);

/* Frees a key (drops its token reference; the last one closes the token's sessions). */
void kw_ks_p11_key_free(kw_ks_p11_key_t *key);

/*
 * Performs a KWP key operation (opcode already checked against the key by kw_op_check) on the
 * token. Writes at most outmax bytes to out. Returns 0 or a kw_remote_error_t: KW_ERR_CRYPTO when
 * the token refuses the operation, KW_ERR_INTERNAL when the token or session failed.
 * KW_OP_TLS_RSA_DECRYPT answers 48 random bytes on any padding or version failure, in constant
 * time (the token decrypts raw with CKM_RSA_X_509 and this code checks the padding).
 * Thread-safe: sessions come from the token's pool.
 */
uint8_t kw_ks_p11_op_run(const kw_ks_p11_key_t *key, uint8_t opcode, const uint8_t *in,
                         size_t inlen, unsigned tls_version, uint8_t *out, size_t outmax,
                         size_t *outlen);

/* The backend table (backend.h); a token key's priv is its kw_ks_p11_key_t. */
extern const kw_ks_backend_t kw_ks_backend_pkcs11;

#endif /* KW_PKCS11_STORE_H */
