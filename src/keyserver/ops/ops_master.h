/*
 * Master-secret mode (KWP 0xA1): the key server decrypts the TLS 1.2 pre-master secret with
 * implicit rejection (the 0xA0 path) and derives the 48-byte master secret itself, so the PMS never
 * leaves this process. The request's items (client/server random or session hash, PRF digest) are
 * checked on the loop thread and packed in front of the encrypted PMS in the job's input. The
 * worker unpacks it in ops.c (kw_ks_op_run), which uses kw_ks_master_derive from here.
 */
#ifndef KW_OPS_MASTER_H
#define KW_OPS_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"

/* Packed job input: prf (1) | ems (1) | seed length (1) | seed | encrypted PMS. */
#define KW_MASTER_HDR_LEN 3

/*
 * Checks the 0xA1 items of msg: a PRF digest (1 = SHA256, 2 = SHA384) and either both randoms or
 * a session hash (1..64 bytes), not both. Returns 0 or KW_ERR_FORMAT.
 */
uint8_t kw_ks_master_check(const kw_msg_t *msg);

/* Job input length for a checked msg. */
size_t kw_ks_master_in_len(const kw_msg_t *msg);

/* Writes the packed input of a checked msg to in (kw_ks_master_in_len bytes). */
void kw_ks_master_pack(const kw_msg_t *msg, uint8_t *in);

/*
 * The TLS 1.2 master secret from pms: PRF(pms, "master secret", seed) or, with ems,
 * PRF(pms, "extended master secret", seed). md is "SHA256" or "SHA384". Returns 1 or 0.
 */
int kw_ks_master_derive(const char *md, int ems, const uint8_t *pms, size_t pms_len,
                        const uint8_t *seed, size_t seed_len, uint8_t out[KW_TLS_MASTER_LEN]);

#endif /* KW_OPS_MASTER_H */
