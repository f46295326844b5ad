/*
 * KWP, the keyward wire protocol: constants and the frame/item codec.
 *
 * Wire compatible with the public Keyless SSL protocol v1.0 (DESIGN.md §3):
 *   header (8 bytes): major u8 = 1 | minor u8 = 0 | body length u16 BE | request id u32 BE
 *   body: items, each tag u8 | length u16 BE | value
 * Every value here is pinned by tests/unit/common/protocol_test.c; never renumber.
 *
 * Decoding is zero-copy: a decoded kw_msg_t points into the caller's buffer, which must outlive
 * it. All parsing goes through the bounded reader (src/common/kw_reader.h).
 */
#ifndef KEYWARD_PROTOCOL_H
#define KEYWARD_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KW_VERSION_MAJOR 1
#define KW_VERSION_MINOR 0
#define KW_HEADER_LEN    8
#define KW_MAX_BODY      65535u
#define KW_MAX_FRAME     (KW_HEADER_LEN + KW_MAX_BODY)
#define KW_ITEM_HDR_LEN  3
#define KW_GOKEYLESS_PAD 1024 /* gokeyless clients pad every frame to this many bytes */

#define KW_DIGEST_LEN       32 /* SHA-256 of the SubjectPublicKeyInfo DER */
#define KW_SKI_LEN          20 /* SHA-1 of the subjectPublicKey BIT STRING contents */
#define KW_TLS_RANDOM_LEN   32
#define KW_TLS_PMS_LEN      48
#define KW_TLS_MASTER_LEN   48
#define KW_DEFAULT_PORT     2407
#define KW_DEFAULT_MAX_HOPS 4

/* Item tags. 0x01-0x20 are the Keyless SSL tags; 0xC0 and up are keyward's own. */
typedef enum kw_tag {
    KW_TAG_DIGEST = 0x01,
    KW_TAG_SNI = 0x02,
    KW_TAG_CLIENT_IP = 0x03,
    KW_TAG_SKI = 0x04,
    KW_TAG_SERVER_IP = 0x05,
    KW_TAG_CERT_ID = 0x06,
    KW_TAG_OPCODE = 0x11,
    KW_TAG_PAYLOAD = 0x12,
    KW_TAG_CUSTOM_FUNC = 0x13,
    KW_TAG_EXTRA = 0x14,
    KW_TAG_PADDING = 0x20,
    /* keyward additions */
    KW_TAG_CLIENT_RANDOM = 0xC0, /* 32 bytes, 0xA1 */
    KW_TAG_SERVER_RANDOM = 0xC1, /* 32 bytes, 0xA1 */
    KW_TAG_SESSION_HASH = 0xC2,  /* 0xA1 with extended master secret (RFC 7627) */
    KW_TAG_PRF_DIGEST = 0xC3,    /* 1 byte: a kw_prf_digest value, 0xA1 */
    KW_TAG_HOPS = 0xC4,          /* 1 byte: forwarding hops left (chaining loop guard) */
} kw_tag_t;

/* Opcodes. */
typedef enum kw_opcode {
    KW_OP_RSA_DECRYPT = 0x01,
    KW_OP_RSA_SIGN_MD5SHA1 = 0x02,
    KW_OP_RSA_SIGN_SHA1 = 0x03,
    KW_OP_RSA_SIGN_SHA224 = 0x04,
    KW_OP_RSA_SIGN_SHA256 = 0x05,
    KW_OP_RSA_SIGN_SHA384 = 0x06,
    KW_OP_RSA_SIGN_SHA512 = 0x07,
    KW_OP_RSA_DECRYPT_RAW = 0x08,
    KW_OP_ECDSA_SIGN_MD5SHA1 = 0x12,
    KW_OP_ECDSA_SIGN_SHA1 = 0x13,
    KW_OP_ECDSA_SIGN_SHA224 = 0x14,
    KW_OP_ECDSA_SIGN_SHA256 = 0x15,
    KW_OP_ECDSA_SIGN_SHA384 = 0x16,
    KW_OP_ECDSA_SIGN_SHA512 = 0x17,
    KW_OP_ED25519_SIGN = 0x18,
    KW_OP_RSA_PSS_SIGN_SHA256 = 0x35,
    KW_OP_RSA_PSS_SIGN_SHA384 = 0x36,
    KW_OP_RSA_PSS_SIGN_SHA512 = 0x37,
    KW_OP_TLS_RSA_DECRYPT = 0xA0, /* implicit rejection; extra = ClientHello version (2 bytes) */
    KW_OP_TLS12_MASTER = 0xA1,    /* master-secret mode */
    KW_OP_GET_CERT_CHAIN = 0xA2,  /* by digest, SKI or SNI; reply: concatenated DER certs */
    KW_OP_LIST_KEYS = 0xA3,       /* reply: concatenated 32-byte digests */
    KW_OP_TICKET_KEYS = 0xA4,     /* session-ticket keys; reply: kw_ticket_keys_encode */
    KW_OP_RESPONSE = 0xF0,
    KW_OP_PING = 0xF1,
    KW_OP_PONG = 0xF2,
    KW_OP_ERROR = 0xFF,
} kw_opcode_t;

/* Error payload of a KW_OP_ERROR reply (1 byte). */
typedef enum kw_remote_error {
    KW_ERR_NONE = 0x00,
    KW_ERR_CRYPTO = 0x01,
    KW_ERR_KEY_NOT_FOUND = 0x02,
    KW_ERR_READ = 0x03,
    KW_ERR_VERSION_MISMATCH = 0x04,
    KW_ERR_BAD_OPCODE = 0x05,
    KW_ERR_UNEXPECTED_OPCODE = 0x06,
    KW_ERR_FORMAT = 0x07,
    KW_ERR_INTERNAL = 0x08,
    KW_ERR_CERT_NOT_FOUND = 0x09,
    KW_ERR_EXPIRED = 0x0A,
    KW_ERR_NOT_AUTHORISED = 0x40,
    KW_ERR_RATE_LIMITED = 0x41,
    KW_ERR_UPSTREAM_UNAVAILABLE = 0x42,
} kw_remote_error_t;

/* PRF digest of a 0xA1 request (KW_TAG_PRF_DIGEST). */
typedef enum kw_prf_digest {
    KW_PRF_SHA256 = 0x01,
    KW_PRF_SHA384 = 0x02,
} kw_prf_digest_t;

/*
 * 0xA4 session-ticket keys (docs/keyserver.md "Ticket keys"). The request carries no key id and
 * no payload; the reply's payload is, big-endian:
 *   version u8 = 1 | count u8 = 3 | rotation_s u32 | server_time u64 (Unix seconds)
 *   count x { epoch u64 | not_before u64 | not_after u64 | key 80 bytes }
 * for epochs e-1, e, e+1 in that order, e = floor(server_time / rotation_s); epoch k is the one to
 * encrypt with during [not_before, not_after) = [k*rotation_s, (k+1)*rotation_s). A key is nginx's
 * 80-byte ssl_session_ticket_key layout: name 16 | HMAC-SHA256 key 32 | AES-256-CBC key 32.
 */
#define KW_TICKET_NAME_LEN     16
#define KW_TICKET_HMAC_LEN     32
#define KW_TICKET_AES_LEN      32
#define KW_TICKET_KEY_LEN      80 /* name | HMAC key | AES key */
#define KW_TICKET_EPOCHS       3  /* e-1, e, e+1 */
#define KW_TICKET_KEYS_VERSION 1
#define KW_TICKET_KEYS_LEN     (14 + KW_TICKET_EPOCHS * (24 + KW_TICKET_KEY_LEN)) /* 326 */

typedef struct kw_ticket_key_s {
    uint64_t epoch;
    uint64_t not_before; /* Unix seconds: this key encrypts from here ... */
    uint64_t not_after;  /* ... to here (exclusive) */
    uint8_t key[KW_TICKET_KEY_LEN];
} kw_ticket_key_t;

/* A set of ticket keys: keys[0] = e-1, keys[1] = e (current), keys[2] = e+1. Secret: cleanse it
 * (OPENSSL_cleanse) when done. */
typedef struct kw_ticket_keys_s {
    uint32_t rotation_s;
    uint64_t server_time;
    kw_ticket_key_t keys[KW_TICKET_EPOCHS];
} kw_ticket_keys_t;

/* Encodes set into out (cap bytes, at least KW_TICKET_KEYS_LEN). Returns 0 or KW_ETOOBIG. */
int kw_ticket_keys_encode(const kw_ticket_keys_t *set, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Decodes a 0xA4 reply payload. Returns 0, or KW_EFORMAT when the length, version or count is
 * wrong, rotation_s is 0, the epochs are not consecutive or a key's times are not
 * [epoch*rotation_s, (epoch+1)*rotation_s). out is zeroed on failure.
 */
int kw_ticket_keys_decode(const uint8_t *p, size_t len, kw_ticket_keys_t *out);

/* A view of bytes inside a frame buffer. present is 1 when the item was in the frame. */
typedef struct kw_bytes_s {
    const uint8_t *ptr;
    uint16_t len;
    uint8_t present;
} kw_bytes_t;

typedef struct kw_header_s {
    uint8_t major;
    uint8_t minor;
    uint16_t body_len;
    uint32_t id;
} kw_header_t;

/*
 * A decoded (or to-be-encoded) message. Zero it before filling it in for encoding; only fields
 * whose `present` is set (or has_opcode / has_hops) are written.
 */
typedef struct kw_msg_s {
    uint32_t id;
    uint8_t opcode;
    uint8_t has_opcode;
    uint8_t hops;
    uint8_t has_hops;
    kw_bytes_t digest;
    kw_bytes_t sni;
    kw_bytes_t client_ip;
    kw_bytes_t ski;
    kw_bytes_t server_ip;
    kw_bytes_t cert_id;
    kw_bytes_t payload;
    kw_bytes_t custom_func;
    kw_bytes_t extra;
    kw_bytes_t client_random;
    kw_bytes_t server_random;
    kw_bytes_t session_hash;
    kw_bytes_t prf_digest;
} kw_msg_t;

/*
 * Parses the 8-byte header at buf. Returns 0, KW_ESHORT when len < KW_HEADER_LEN, or
 * KW_EVERSION when major != KW_VERSION_MAJOR (out is still filled so the id can be answered).
 */
int kw_header_parse(const uint8_t *buf, size_t len, kw_header_t *out);

/* Writes an 8-byte header. */
void kw_header_write(uint8_t out[KW_HEADER_LEN], uint16_t body_len, uint32_t id);

/*
 * Decodes a body of body_len bytes into msg (id is copied in). Returns 0 or KW_EFORMAT when an
 * item's length runs past the end, a known item appears twice, or a fixed-size item (opcode,
 * digest, SKI, client/server IP, randoms, hops, PRF digest) has the wrong length.
 * Unknown tags and padding are skipped.
 */
int kw_msg_decode(const uint8_t *body, size_t body_len, uint32_t id, kw_msg_t *msg);

/*
 * Encodes header + items of msg into out (capacity cap) and sets *out_len. When pad_to is larger
 * than the frame, a padding item (tag 0x20) brings the whole frame to pad_to bytes.
 * Returns 0, KW_ETOOBIG when the body would exceed KW_MAX_BODY or cap.
 */
int kw_msg_encode(const kw_msg_t *msg, size_t pad_to, uint8_t *out, size_t cap, size_t *out_len);

/* Size msg would encode to without padding (header included). */
size_t kw_msg_encoded_len(const kw_msg_t *msg);

/* Convenience: set a kw_bytes_t. */
static inline kw_bytes_t kw_bytes(const void *ptr, size_t len)
{
    kw_bytes_t b;
    b.ptr = (const uint8_t *)ptr;
    b.len = (uint16_t)len;
    b.present = 1;
    return b;
}

/* Encodes a reply: opcode item + payload item, no padding. */
int kw_reply_encode(uint32_t id, uint8_t opcode, const uint8_t *payload, size_t payload_len,
                    uint8_t *out, size_t cap, size_t *out_len);

/* Encodes an error reply carrying one kw_remote_error_t byte. */
int kw_error_encode(uint32_t id, uint8_t err, uint8_t *out, size_t cap, size_t *out_len);

/* Stable lower-case names, for logs, metrics and the audit log ("ecdsa-sha256", "rsa-decrypt",
 * "tls12-master-secret", ...). Unknown values give "unknown". */
const char *kw_opcode_name(uint8_t opcode);
const char *kw_remote_error_name(uint8_t err);

/* 1 when opcode is one the key server performs with a private key. */
int kw_opcode_uses_key(uint8_t opcode);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARD_PROTOCOL_H */
