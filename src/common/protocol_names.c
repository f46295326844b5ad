/*
 * Stable names of KWP opcodes and remote error codes, for logs, metrics labels and the audit log.
 * These strings are part of the user-visible interface: never rename one.
 */
#include "keyward/protocol.h"

#include <stddef.h>

typedef struct kw_name_s {
    uint8_t value;
    const char *name;
} kw_name_t;

static const kw_name_t kw_opcode_names[] = {
    {KW_OP_RSA_DECRYPT, "rsa-decrypt"},
    {KW_OP_RSA_SIGN_MD5SHA1, "rsa-pkcs1-md5sha1"},
    {KW_OP_RSA_SIGN_SHA1, "rsa-pkcs1-sha1"},
    {KW_OP_RSA_SIGN_SHA224, "rsa-pkcs1-sha224"},
    {KW_OP_RSA_SIGN_SHA256, "rsa-pkcs1-sha256"},
    {KW_OP_RSA_SIGN_SHA384, "rsa-pkcs1-sha384"},
    {KW_OP_RSA_SIGN_SHA512, "rsa-pkcs1-sha512"},
    {KW_OP_RSA_DECRYPT_RAW, "rsa-decrypt-raw"},
    {KW_OP_ECDSA_SIGN_MD5SHA1, "ecdsa-md5sha1"},
    {KW_OP_ECDSA_SIGN_SHA1, "ecdsa-sha1"},
    {KW_OP_ECDSA_SIGN_SHA224, "ecdsa-sha224"},
    {KW_OP_ECDSA_SIGN_SHA256, "ecdsa-sha256"},
    {KW_OP_ECDSA_SIGN_SHA384, "ecdsa-sha384"},
    {KW_OP_ECDSA_SIGN_SHA512, "ecdsa-sha512"},
    {KW_OP_ED25519_SIGN, "ed25519"},
    {KW_OP_RSA_PSS_SIGN_SHA256, "rsa-pss-sha256"},
    {KW_OP_RSA_PSS_SIGN_SHA384, "rsa-pss-sha384"},
    {KW_OP_RSA_PSS_SIGN_SHA512, "rsa-pss-sha512"},
    {KW_OP_TLS_RSA_DECRYPT, "tls-rsa-decrypt"},
    {KW_OP_TLS12_MASTER, "tls12-master-secret"},
    {KW_OP_GET_CERT_CHAIN, "get-cert-chain"},
    {KW_OP_LIST_KEYS, "list-keys"},
    {KW_OP_TICKET_KEYS, "ticket-keys"},
    {KW_OP_RESPONSE, "response"},
    {KW_OP_PING, "ping"},
    {KW_OP_PONG, "pong"},
    {KW_OP_ERROR, "error"},
};

static const kw_name_t kw_error_names[] = {
    {KW_ERR_NONE, "none"},
    {KW_ERR_CRYPTO, "crypto"},
    {KW_ERR_KEY_NOT_FOUND, "key-not-found"},
    {KW_ERR_READ, "read"},
    {KW_ERR_VERSION_MISMATCH, "version-mismatch"},
    {KW_ERR_BAD_OPCODE, "bad-opcode"},
    {KW_ERR_UNEXPECTED_OPCODE, "unexpected-opcode"},
    {KW_ERR_FORMAT, "format"},
    {KW_ERR_INTERNAL, "internal"},
    {KW_ERR_CERT_NOT_FOUND, "cert-not-found"},
    {KW_ERR_EXPIRED, "expired"},
    {KW_ERR_NOT_AUTHORISED, "not-authorised"},
    {KW_ERR_RATE_LIMITED, "rate-limited"},
    {KW_ERR_UPSTREAM_UNAVAILABLE, "upstream-unavailable"},
};

static const char *lookup(const kw_name_t *names, size_t n, uint8_t value)
{
    for (size_t i = 0; i < n; i++) {
        if (names[i].value == value)
            return names[i].name;
    }
    return "unknown";
}

const char *kw_opcode_name(uint8_t opcode)
{
    return lookup(kw_opcode_names, sizeof(kw_opcode_names) / sizeof(kw_opcode_names[0]), opcode);
}

const char *kw_remote_error_name(uint8_t err)
{
    return lookup(kw_error_names, sizeof(kw_error_names) / sizeof(kw_error_names[0]), err);
}

int kw_opcode_uses_key(uint8_t opcode)
{
    switch (opcode) {
    case KW_OP_RSA_DECRYPT:
    case KW_OP_RSA_SIGN_MD5SHA1:
    case KW_OP_RSA_SIGN_SHA1:
    case KW_OP_RSA_SIGN_SHA224:
    case KW_OP_RSA_SIGN_SHA256:
    case KW_OP_RSA_SIGN_SHA384:
    case KW_OP_RSA_SIGN_SHA512:
    case KW_OP_RSA_DECRYPT_RAW:
    case KW_OP_ECDSA_SIGN_MD5SHA1:
    case KW_OP_ECDSA_SIGN_SHA1:
    case KW_OP_ECDSA_SIGN_SHA224:
    case KW_OP_ECDSA_SIGN_SHA256:
    case KW_OP_ECDSA_SIGN_SHA384:
    case KW_OP_ECDSA_SIGN_SHA512:
    case KW_OP_ED25519_SIGN:
    case KW_OP_RSA_PSS_SIGN_SHA256:
    case KW_OP_RSA_PSS_SIGN_SHA384:
    case KW_OP_RSA_PSS_SIGN_SHA512:
    case KW_OP_TLS_RSA_DECRYPT:
    case KW_OP_TLS12_MASTER:
        return 1;
    default:
        return 0;
    }
}
