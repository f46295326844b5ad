/*
 * Requests to the key server on behalf of the provider's operations. Inside an OpenSSL ASYNC job
 * (SSL_MODE_ASYNC) a request pauses the job with the reply's file descriptor registered in the
 * job's wait context; otherwise it blocks. Failures are raised as OpenSSL errors that name the
 * key, the key servers and what to do.
 */
#ifndef KW_PROV_REMOTE_H
#define KW_PROV_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "key.h"

/*
 * Runs opcode with payload (and the optional extra item) for key; copies the reply payload into
 * out (cap bytes). what names the operation for messages ("RSA-PSS signature"). Returns 1, or 0
 * with an error raised.
 */
int kw_remote_key_op(kw_key_t *key, uint8_t opcode, const uint8_t *payload, size_t len,
                     const uint8_t *extra, size_t extra_len, uint8_t *out, size_t cap,
                     size_t *out_len, const char *what);

/* Outcome of a look-up that may be answered "unknown" or not at all. */
enum kw_lookup {
    KW_LOOKUP_FOUND = 1,
    KW_LOOKUP_MISSING = 0,    /* the key server says the key (or its certificate) is unknown */
    KW_LOOKUP_NO_ANSWER = -1, /* unreachable, timed out, or the server cannot answer this */
};

/*
 * Certificate chain of a key (KWP 0xA2) by key id digest (id_len 32) or SKI (id_len 20).
 * On KW_LOOKUP_FOUND *chain (OPENSSL_malloc'd, caller frees) holds the concatenated DER
 * certificates. An error is raised for every outcome but FOUND.
 */
int kw_remote_get_chain(kw_prov_ctx_t *pctx, const uint8_t *id, size_t id_len, uint8_t **chain,
                        size_t *chain_len);

/* Whether the key server lists key (KWP 0xA3). Raises an error unless FOUND. */
int kw_remote_has_key(kw_key_t *key);

/*
 * Like kw_remote_key_op for a request with more items (master-secret mode, 0xA1): msg carries the
 * opcode and items; the key id of key is added. Returns 1, or 0 with an error raised.
 */
int kw_remote_msg_op(kw_key_t *key, kw_msg_t *msg, uint8_t *out, size_t cap, size_t *out_len,
                     const char *what);

#endif /* KW_PROV_REMOTE_H */
