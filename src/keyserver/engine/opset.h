/*
 * Sets of operations (opcodes) a key server performs (`--enable-op`, YAML `enable_ops:`) and an
 * allow rule grants (YAML `ops:`). Names are the opcode names of the audit log and metrics
 * (kw_opcode_name: "ecdsa-sha256", "rsa-decrypt", ...) plus groups: "signatures" (every signature
 * opcode) and "default" (the TLS-safe set: signatures, tls-rsa-decrypt 0xA0,
 * tls12-master-secret 0xA1, get-cert-chain 0xA2, list-keys 0xA3, ping). "rsa-raw-decrypt" is
 * another name of rsa-decrypt-raw (0x08). The legacy rsa-decrypt (0x01, a padding oracle) and
 * rsa-decrypt-raw (0x08, forges any PKCS#1 signature) are off unless enabled. docs/fleet.md.
 */
#ifndef KW_KS_OPSET_H
#define KW_KS_OPSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct kw_ks_opset_s {
    uint64_t bits[4]; /* bit n: opcode n */
} kw_ks_opset_t;

/* The default, TLS-safe set. */
kw_ks_opset_t kw_ks_opset_default(void);

/* An empty set. */
kw_ks_opset_t kw_ks_opset_empty(void);

int kw_ks_opset_has(const kw_ks_opset_t *set, uint8_t opcode);

/* Adds the operation or group name to set. Returns 0, or KW_EINVAL for an unknown name. */
int kw_ks_opset_add_name(kw_ks_opset_t *set, const char *name);

/* The server's set: the default plus every name of v. Returns 0 or KW_EINVAL with the bad name
 * in why. */
int kw_ks_opset_from_names(char *const *v, size_t n, kw_ks_opset_t *out, char *why, size_t whylen);

/* 1 when every operation of a is in b. */
int kw_ks_opset_subset(const kw_ks_opset_t *a, const kw_ks_opset_t *b);

/* 1 when a and b hold the same operations. */
int kw_ks_opset_equal(const kw_ks_opset_t *a, const kw_ks_opset_t *b);

/* a ∩ b. */
kw_ks_opset_t kw_ks_opset_and(const kw_ks_opset_t *a, const kw_ks_opset_t *b);

/* For logs: "default", "default + rsa-decrypt", or the operations' names, comma-separated; cut
 * to fit cap. Returns out. */
char *kw_ks_opset_describe(const kw_ks_opset_t *set, char *out, size_t cap);

/* The names accepted, for error messages. */
#define KW_KS_OPSET_NAMES                                                                          \
    "default, signatures, tls-rsa-decrypt, tls12-master-secret, get-cert-chain, list-keys, "       \
    "ping, rsa-decrypt, rsa-decrypt-raw (or rsa-raw-decrypt), or one signature opcode's name "     \
    "such as ecdsa-sha256"

#endif /* KW_KS_OPSET_H */
