/*
 * The PEM key backend: private keys decoded from "*.key" files into this process's memory
 * (OpenSSL's secure heap, hygiene.h), operated on with OpenSSL EVP contexts cached per worker.
 */
#ifndef KW_KS_PEM_H
#define KW_KS_PEM_H

#include "keystore/backend.h"

/* The backend table. A PEM key's priv is its implicit-rejection secret (RSA keys:
 * kw_ks_ir_secret_from_pkey, tls_reject_internal.h) or NULL (EC, Ed25519). */
extern const kw_ks_backend_t kw_ks_backend_pem;

#endif /* KW_KS_PEM_H */
