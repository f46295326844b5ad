/*
 * Loading one key file (and its certificate chain) for the key store: parse, check the type is
 * one we serve, check the certificate matches, compute the key ids and the names for SNI. Keys
 * found on PKCS#11 tokens go through the same checks.
 * Internal to keystore/ (keystore.c).
 */
#ifndef KW_KEYSTORE_LOAD_H
#define KW_KEYSTORE_LOAD_H

#include <stddef.h>

#include <openssl/decoder.h>

#include "keystore/keystore.h"

/* Names (lower case) a key's leaf certificate answers to; owned by the caller via
 * kw_ks_names_free. */
typedef struct kw_ks_names_s {
    char **v;
    size_t n;
} kw_ks_names_t;

/*
 * What the keys of one load share: the private-key decoder, set up for the first key and reused
 * (OpenSSL 3.0 spends longer setting one up than decoding a key with it). Zero-initialise it, pass
 * it to every kw_ks_key_load of the load (from one thread), then kw_ks_loader_free it. A key the
 * reused decoder does not take goes through PEM_read_bio_PrivateKey_ex as before, and the decoder
 * is set up afresh for the next key.
 */
typedef struct kw_ks_loader_s {
    OSSL_DECODER_CTX *dctx; /* NULL until the first key, and after a failed decode */
    EVP_PKEY *decoded;      /* where dctx puts the key it decodes */
} kw_ks_loader_t;

void kw_ks_loader_free(kw_ks_loader_t *l);

/*
 * Loads dir/name.key and, when present, dir/name.crt into key (zeroed by the caller) and the
 * certificate's names (SAN DNS names and CN) into names; cert_ski receives the certificate's SKI
 * extension when it has one of KW_SKI_LEN bytes (*has_cert_ski = 1). Returns 0, or a negative
 * KW_E* with the reason in err (the key is then to be skipped). On failure key holds nothing.
 * l: the load's shared state (NULL: OpenSSL's PEM reader for this key alone).
 */
int kw_ks_key_load(kw_ks_loader_t *l, const char *dir, const char *name, kw_ks_key_t *key,
                   kw_ks_names_t *names, uint8_t cert_ski[KW_SKI_LEN], int *has_cert_ski, char *err,
                   size_t errlen);

/*
 * Fills key (zeroed by the caller) from a key found on a PKCS#11 token, taking over f's key,
 * public key, name and certificate: the same type, size and certificate checks as for files.
 * Returns 0 or a negative KW_E* with the reason in err (key then holds nothing).
 */
int kw_ks_key_from_token(kw_ks_p11_found_t *f, kw_ks_key_t *key, kw_ks_names_t *names,
                         uint8_t cert_ski[KW_SKI_LEN], int *has_cert_ski, char *err, size_t errlen);

/* Frees what kw_ks_key_load put in key (not key itself). */
void kw_ks_key_clear(kw_ks_key_t *key);

void kw_ks_names_free(kw_ks_names_t *names);

#endif /* KW_KEYSTORE_LOAD_H */
