/* The KWP codec tests' list of every opcode, shared by protocol_test.c and
 * protocol_constants_test.c. */
#ifndef KW_TEST_PROTOCOL_OPCODES_H
#define KW_TEST_PROTOCOL_OPCODES_H

#include <stdint.h>

#include "keyward/protocol.h"

static const uint8_t kAllOpcodes[] = {
    KW_OP_RSA_DECRYPT,
    KW_OP_RSA_SIGN_MD5SHA1,
    KW_OP_RSA_SIGN_SHA1,
    KW_OP_RSA_SIGN_SHA224,
    KW_OP_RSA_SIGN_SHA256,
    KW_OP_RSA_SIGN_SHA384,
    KW_OP_RSA_SIGN_SHA512,
    KW_OP_RSA_DECRYPT_RAW,
    KW_OP_ECDSA_SIGN_MD5SHA1,
    KW_OP_ECDSA_SIGN_SHA1,
    KW_OP_ECDSA_SIGN_SHA224,
    KW_OP_ECDSA_SIGN_SHA256,
    KW_OP_ECDSA_SIGN_SHA384,
    KW_OP_ECDSA_SIGN_SHA512,
    KW_OP_ED25519_SIGN,
    KW_OP_RSA_PSS_SIGN_SHA256,
    KW_OP_RSA_PSS_SIGN_SHA384,
    KW_OP_RSA_PSS_SIGN_SHA512,
    KW_OP_TLS_RSA_DECRYPT,
    KW_OP_TLS12_MASTER,
    KW_OP_GET_CERT_CHAIN,
    KW_OP_LIST_KEYS,
    KW_OP_TICKET_KEYS,
    KW_OP_RESPONSE,
    KW_OP_PING,
    KW_OP_PONG,
    KW_OP_ERROR,
};

#endif
