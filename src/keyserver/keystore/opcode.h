/*
 * The KWP key-operation opcodes as the key store sees them: each opcode's family (what kind of
 * private-key operation it is), its digest name and the payload length it requires. ops/ checks
 * requests with it; every key backend (backend.h) maps the family to its own mechanism.
 */
#ifndef KW_KS_OPCODE_H
#define KW_KS_OPCODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum kw_ks_op_family {
    KW_KS_FAM_NONE = 0,
    KW_KS_FAM_RSA_PKCS1,
    KW_KS_FAM_RSA_PSS,
    KW_KS_FAM_ECDSA,
    KW_KS_FAM_ED25519,
    KW_KS_FAM_RSA_DECRYPT,
    KW_KS_FAM_RSA_RAW,
    KW_KS_FAM_RSA_TLS, /* 0xA0, and 0xA1 (the 0xA0 decryption, then the PRF of ops_master.c) */
} kw_ks_op_family_t;

typedef struct kw_ks_op_info_s {
    kw_ks_op_family_t family;
    const char *md;    /* digest name for RSA signatures */
    size_t digest_len; /* required payload length for signatures over a digest; 0: any */
} kw_ks_op_info_t;

/* The family of opcode (KW_KS_FAM_NONE: not a key operation), its digest and payload length. */
kw_ks_op_info_t kw_ks_op_info(uint8_t opcode);

/* 1 for the decryption families (RSA PKCS#1, raw, TLS). */
int kw_ks_op_is_decrypt(kw_ks_op_family_t family);

#endif /* KW_KS_OPCODE_H */
