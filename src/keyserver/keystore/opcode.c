/*
 * The opcode table of opcode.h: family, digest name and digest length of each KWP key operation.
 */
#include "keyward/protocol.h"
#include "keystore/opcode.h"

kw_ks_op_info_t kw_ks_op_info(uint8_t opcode)
{
    static const char *const mds[] = {"MD5-SHA1", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512"};
    static const size_t lens[] = {36, 20, 28, 32, 48, 64};
    kw_ks_op_info_t info = {KW_KS_FAM_NONE, NULL, 0};
    if (opcode >= KW_OP_RSA_SIGN_MD5SHA1 && opcode <= KW_OP_RSA_SIGN_SHA512) {
        info.family = KW_KS_FAM_RSA_PKCS1;
        info.md = mds[opcode - KW_OP_RSA_SIGN_MD5SHA1];
        info.digest_len = lens[opcode - KW_OP_RSA_SIGN_MD5SHA1];
    } else if (opcode >= KW_OP_ECDSA_SIGN_MD5SHA1 && opcode <= KW_OP_ECDSA_SIGN_SHA512) {
        info.family = KW_KS_FAM_ECDSA;
        info.digest_len = lens[opcode - KW_OP_ECDSA_SIGN_MD5SHA1];
    } else if (opcode >= KW_OP_RSA_PSS_SIGN_SHA256 && opcode <= KW_OP_RSA_PSS_SIGN_SHA512) {
        info.family = KW_KS_FAM_RSA_PSS;
        info.md = mds[3 + opcode - KW_OP_RSA_PSS_SIGN_SHA256];
        info.digest_len = lens[3 + opcode - KW_OP_RSA_PSS_SIGN_SHA256];
    } else if (opcode == KW_OP_ED25519_SIGN) {
        info.family = KW_KS_FAM_ED25519;
    } else if (opcode == KW_OP_RSA_DECRYPT) {
        info.family = KW_KS_FAM_RSA_DECRYPT;
    } else if (opcode == KW_OP_RSA_DECRYPT_RAW) {
        info.family = KW_KS_FAM_RSA_RAW;
    } else if (opcode == KW_OP_TLS_RSA_DECRYPT || opcode == KW_OP_TLS12_MASTER) {
        info.family = KW_KS_FAM_RSA_TLS;
    }
    return info;
}

int kw_ks_op_is_decrypt(kw_ks_op_family_t family)
{
    return family == KW_KS_FAM_RSA_DECRYPT || family == KW_KS_FAM_RSA_RAW ||
           family == KW_KS_FAM_RSA_TLS;
}
