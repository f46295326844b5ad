/*
 * Master-secret mode (issue 8): the opaque 48-byte handles that the RSA decryption in TLS padding
 * mode returns instead of a pre-master secret, and the table in the provider context that maps a
 * handle to what the key server needs later (key, encrypted PMS, ClientHello version). The
 * provider's TLS1-PRF (kdf_tls1_prf.c) takes a handle's entry and sends KWP 0xA1. A handle is
 * a 16-byte magic prefix, a slot number and random bytes; it is single use and expires.
 */
#ifndef KW_PROV_MASTER_H
#define KW_PROV_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "key.h"

#define KW_MS_HANDLE_LEN 48 /* = KW_TLS_PMS_LEN: libssl passes it on as the PMS */
#define KW_MS_SLOTS      1024
#define KW_MS_TTL_SEC    60
#define KW_MS_CT_MAX     512 /* an RSA-4096 ciphertext */

typedef struct kw_ms_table_s kw_ms_table_t;

/* What a handle stands for. key holds a reference owned by whoever holds the entry. */
typedef struct kw_ms_entry_s {
    kw_key_t *key;
    unsigned client_version;
    size_t ct_len;
    uint8_t ct[KW_MS_CT_MAX];
} kw_ms_entry_t;

/* Releases the table and the key references it holds (provider teardown). NULL is fine. */
void kw_ms_table_free(kw_ms_table_t *table);

/*
 * Records (key, encrypted PMS, client version) in pctx's table (created on first use) and writes
 * the handle. When the table is full the oldest entry is dropped. Returns 1, or 0 (raised).
 */
int kw_ms_handle_new(kw_prov_ctx_t *pctx, kw_key_t *key, const uint8_t *ct, size_t ct_len,
                     unsigned client_version, uint8_t handle[KW_MS_HANDLE_LEN]);

/* 1 when s has a handle's length and magic prefix (live or not). */
int kw_ms_is_handle(const uint8_t *s, size_t len);

/*
 * Takes the live entry of handle out of the table (single use) into *out; the caller then owns
 * out->key's reference (kw_key_free). Returns 1, or 0 when unknown or expired.
 */
int kw_ms_handle_take(kw_prov_ctx_t *pctx, const uint8_t handle[KW_MS_HANDLE_LEN],
                      kw_ms_entry_t *out);

#endif /* KW_PROV_MASTER_H */
