/*
 * Deterministic implicit rejection for TLS 1.2 RSA key exchange (KWP 0xA0 and 0xA1). A ciphertext
 * whose PKCS#1 v1.5 padding or version bytes are wrong is answered with a synthetic pre-master
 * secret derived from the ciphertext and a per-key secret, never with an error and never with
 * fresh random bytes (which would differ between two queries of the same ciphertext while a valid
 * one repeats its PMS: a two-query padding oracle). The construction is the implicit-rejection one
 * of draft-irtf-cfrg-rsa-guidance (KDK = HMAC-SHA256(key secret, ciphertext), then an HMAC-based
 * PRF with a label), fitted to TLS: the synthetic PMS is the ClientHello version followed by 46
 * derived bytes, and the version is an input of the PRF. See docs/security.md.
 *
 * The per-key secret comes from the private key alone, so every key server holding the key
 * derives the same one, whether the key is a PEM file or lives on a PKCS#11 token: SHA-256 over a
 * domain label and the RSA PKCS#1 v1.5 signature (deterministic) of a fixed 40-byte message that
 * no signing opcode can ask for (they sign 36 bytes, or a DigestInfo). It is kept in OpenSSL's
 * secure heap and cleansed on free.
 * Internal to keystore/ and its backend folders (pem/, pkcs11/).
 */
#ifndef KW_KS_TLS_REJECT_H
#define KW_KS_TLS_REJECT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define KW_KS_IR_SECRET_LEN 32
#define KW_KS_IR_LABEL_LEN  40

/* The message whose PKCS#1 v1.5 signature (no DigestInfo) seeds a key's secret. */
extern const uint8_t kw_ks_ir_label[KW_KS_IR_LABEL_LEN];

/* The per-key secret from the signature of kw_ks_ir_label: a new KW_KS_IR_SECRET_LEN-byte buffer
 * in the secure heap (free with kw_ks_ir_secret_free), or NULL. */
uint8_t *kw_ks_ir_secret_from_sig(const uint8_t *sig, size_t len);

/* The same for an RSA private key held by OpenSSL (a PEM key): signs the label with it. */
uint8_t *kw_ks_ir_secret_from_pkey(EVP_PKEY *pkey);

/* Cleanses and frees a secret. NULL is ignored. */
void kw_ks_ir_secret_free(uint8_t *secret);

/*
 * The synthetic PMS for ciphertext ct (as received, any length) and ClientHello version:
 * version (2 bytes) || the first 46 bytes of IRPRF(HMAC-SHA256(secret, ct), "tls pms" || version).
 * Its time depends only on ctlen. Returns 1, or 0 when OpenSSL fails (out of memory).
 */
int kw_ks_ir_synthetic(const uint8_t *secret, const uint8_t *ct, size_t ctlen, unsigned version,
                       uint8_t out[48]);

/*
 * Constant-time TLS check of em, a raw RSA decryption of k bytes (k >= 59): 00 02, k-51 non-zero
 * padding bytes, 00, then 48 bytes starting with the version. Writes the 48 bytes to out when all
 * hold, else synth, selecting with masks (no branch on em).
 */
void kw_ks_ir_select(const uint8_t *em, size_t k, unsigned version, const uint8_t synth[48],
                     uint8_t out[48]);

#endif /* KW_KS_TLS_REJECT_H */
