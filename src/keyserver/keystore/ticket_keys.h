/*
 * Fleet session-ticket keys (issue 19, docs/keyserver.md "Ticket keys"): the --ticket-secret read
 * at start and again at each SIGHUP (net/reload.c), and the 80-byte keys derived from it per
 * epoch e = floor(time / rotation), so every key server with the same secret serves the same keys
 * without talking to another, and no key is ever stored. Derivation: HKDF-SHA256 (RFC 5869) with
 *   IKM  = the secret file's bytes,
 *   salt = "keyward ticket keys v1",
 *   info = "keyward ticket key" || e as u64 big-endian,
 *   L    = 80: name 16 | HMAC-SHA256 key 32 | AES-256 key 32 (nginx's 80-byte key layout).
 *
 * Ownership: a kw_ks_tickets_t owns its copy of the secret and cleanses it when freed.
 */
#ifndef KW_KS_TICKET_KEYS_H
#define KW_KS_TICKET_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"

#define KW_KS_TICKET_SECRET_MIN   32u   /* bytes */
#define KW_KS_TICKET_SECRET_MAX   4096u /* bytes */
#define KW_KS_TICKET_ROTATION_DEF 3600u /* seconds */

typedef struct kw_ks_tickets_s kw_ks_tickets_t;

/*
 * Reads the secret at path. Refused (KW_ECONFIG, a sentence in err saying what to do): a file
 * group or others may read, or one shorter than KW_KS_TICKET_SECRET_MIN bytes; KW_EIO when it
 * cannot be read. rotation_s must be at least 1.
 */
int kw_ks_tickets_load(const char *path, unsigned rotation_s, kw_ks_tickets_t **out, char *err,
                       size_t errlen);

/* The same from secret bytes in memory (tests); the bytes are copied. */
int kw_ks_tickets_new(const uint8_t *secret, size_t len, unsigned rotation_s,
                      kw_ks_tickets_t **out);

void kw_ks_tickets_free(kw_ks_tickets_t *t);

/* 1 when a and b hold the same secret (its bytes compared in constant time), else 0. */
int kw_ks_tickets_same_secret(const kw_ks_tickets_t *a, const kw_ks_tickets_t *b);

unsigned kw_ks_tickets_rotation(const kw_ks_tickets_t *t);

/* The key of epoch into out. Returns 0 or KW_ECRYPTO. */
int kw_ks_tickets_derive(const kw_ks_tickets_t *t, uint64_t epoch, uint8_t out[KW_TICKET_KEY_LEN]);

/* The set for Unix time now: epochs e-1, e, e+1 with their times (protocol.h). Returns 0 or
 * KW_ECRYPTO (out cleansed). */
int kw_ks_tickets_set(const kw_ks_tickets_t *t, uint64_t now, kw_ticket_keys_t *out);

#endif /* KW_KS_TICKET_KEYS_H */
