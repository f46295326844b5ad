/*
 * keyward.so internals: the lazily created key server client and the helpers every operation file
 * shares, above the provider context (prov_ctx.h). Each operation file exports only its dispatch
 * tables (declared at the bottom).
 */
#ifndef KW_PROVIDER_H
#define KW_PROVIDER_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>

#include "keyward/client.h"
#include "prov_ctx.h"

/* The client, created on first use. NULL (error raised) when it cannot be created. */
kw_client_t *kw_prov_client(kw_prov_ctx_t *pctx);

/* Servers as configured, for messages ("(none)" when unset). */
const char *kw_prov_servers(const kw_prov_ctx_t *pctx);

/* Dispatch tables (one file each). */
extern const OSSL_DISPATCH kw_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH kw_ec_keymgmt_functions[];
extern const OSSL_DISPATCH kw_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH kw_rsa_signature_functions[];
extern const OSSL_DISPATCH kw_ecdsa_signature_functions[];
extern const OSSL_DISPATCH kw_ed25519_signature_functions[];
extern const OSSL_DISPATCH kw_rsa_asym_cipher_functions[];
extern const OSSL_DISPATCH kw_store_functions[];
extern const OSSL_DISPATCH kw_pem_decoder_functions[];
extern const OSSL_DISPATCH kw_rsa_decoder_functions[];
extern const OSSL_DISPATCH kw_ec_decoder_functions[];
extern const OSSL_DISPATCH kw_ed25519_decoder_functions[];
extern const OSSL_DISPATCH kw_tls1_prf_functions[]; /* master-secret mode */

#endif /* KW_PROVIDER_H */
