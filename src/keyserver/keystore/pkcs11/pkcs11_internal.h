/*
 * Internals of the PKCS#11 key store, shared by pkcs11_module.c (dlopen, C_Initialize, the module
 * registry), pkcs11_token.c (slot, login, session pool), pkcs11_store.c (key enumeration) and
 * pkcs11_ops.c (the operations). Only these files include the Cryptoki header: p11-kit's pkcs11.h
 * defines short macros (value, count, params, ...) that must not leak into the rest of the server.
 */
#ifndef KW_PKCS11_INTERNAL_H
#define KW_PKCS11_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "keystore/pkcs11/pkcs11_store.h"
#include "keystore/pkcs11/pkcs11_uri_internal.h"

/* One loaded module (a dlopen'ed library, initialised once). Reference counted. */
typedef struct kw_ks_p11_module_s {
    atomic_uint refs;
    char *path;
    void *dl;
    CK_FUNCTION_LIST *f;
    int finalize;                    /* 1 when we initialised it (and so C_Finalize it) */
    struct kw_ks_p11_module_s *next; /* registry list */
} kw_ks_p11_module_t;

struct kw_ks_p11_ctx_s {
    pthread_mutex_t lock; /* guards modules */
    kw_ks_p11_module_t *modules;
};

/* Mechanisms the token offers, probed once at open. */
enum {
    KW_P11_MECH_RSA_PKCS = 1u << 0,
    KW_P11_MECH_RSA_X509 = 1u << 1,
    KW_P11_MECH_RSA_PSS = 1u << 2,
    KW_P11_MECH_ECDSA = 1u << 3,
    KW_P11_MECH_EDDSA = 1u << 4,
};

#define KW_P11_POOL_MAX 64 /* idle sessions kept per token */

/* One logged-in token. Reference counted: its keys hold references. */
typedef struct kw_ks_p11_token_s {
    atomic_uint refs;
    kw_ks_p11_module_t *mod; /* holds a reference */
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    char label[33];          /* token label, trailing blanks removed */
    CK_SESSION_HANDLE login; /* kept open so the login lasts; CK_INVALID_HANDLE when none */
    unsigned mechs;          /* KW_P11_MECH_* */
    pthread_mutex_t lock;    /* guards idle */
    CK_SESSION_HANDLE idle[KW_P11_POOL_MAX];
    size_t n_idle;
} kw_ks_p11_token_t;

enum { KW_P11_RSA = 1, KW_P11_EC = 2, KW_P11_ED25519 = 3 };

struct kw_ks_p11_key_s {
    kw_ks_p11_token_t *token; /* holds a reference */
    CK_OBJECT_HANDLE handle;
    int type;           /* KW_P11_* */
    size_t k;           /* RSA modulus bytes; EVP_PKEY_get_size for EC and Ed25519 */
    uint8_t *modulus;   /* RSA: n, k bytes big-endian (ciphertexts >= n are refused here) */
    uint8_t *ir_secret; /* RSA: implicit-rejection secret (tls_reject_internal.h), secure heap; or NULL */
    char *name;         /* shown in logs */
};

/* ---- pkcs11_module.c ---- */

/* The module at path from ctx's registry, loaded and initialised on first use; a new reference. */
int kw_ks_p11_module_get(kw_ks_p11_ctx_t *ctx, const char *path, kw_ks_p11_module_t **out,
                         char *err, size_t errlen);
void kw_ks_p11_module_unref(kw_ks_p11_module_t *mod);

/* "CKR_PIN_INCORRECT" etc. for logs. */
const char *kw_ks_p11_rv_name(CK_RV rv);

/* ---- pkcs11_token.c ---- */

/*
 * Finds the slot whose token matches uri (label, serial, manufacturer, model, slot-id; the token
 * label from spec overrides), logs in with the PIN (read from pin_file, then cleansed), probes the
 * mechanisms. Returns 0 and a token with one reference, or a negative KW_E* with err set.
 */
int kw_ks_p11_token_open(kw_ks_p11_module_t *mod, const kw_ks_p11_uri_t *uri, const char *pin_file,
                         kw_ks_p11_token_t **out, char *err, size_t errlen);
kw_ks_p11_token_t *kw_ks_p11_token_ref(kw_ks_p11_token_t *t);
void kw_ks_p11_token_unref(kw_ks_p11_token_t *t);

/* A session from the pool (or a new one). Returns CKR_OK or the module's error. */
CK_RV kw_ks_p11_session_get(kw_ks_p11_token_t *t, CK_SESSION_HANDLE *out);

/* Returns a session to the pool; broken = 1 closes it instead (after a session-level error). */
void kw_ks_p11_session_put(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, int broken);

/* 1 when rv means the session (not the request) is unusable. */
int kw_ks_p11_rv_breaks_session(CK_RV rv);

/* ---- pkcs11_ops.c ---- */

/*
 * Derives key->ir_secret (RSA keys) from the token's PKCS#1 v1.5 signature of kw_ks_ir_label
 * (CKM_RSA_PKCS; or, when the token refuses that, CKM_RSA_X_509 of the same padded block, which
 * is the same value). Returns 0, or a negative KW_E* (logged: 0xA0/0xA1 then answer an error).
 */
int kw_ks_p11_ir_init(kw_ks_p11_key_t *key);

/* ---- pkcs11_object.c ---- */

/* Reads attribute type of object o into a new buffer (*out, *len; free() it). Returns CKR_OK, or
 * CKR_ATTRIBUTE_TYPE_INVALID when the object has no (or an empty) value, or the module's error. */
CK_RV kw_ks_p11_get_attr(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                         CK_ATTRIBUTE_TYPE type, uint8_t **out, size_t *len);

/* A CK_ULONG attribute (class, key type, ...). */
CK_RV kw_ks_p11_get_ulong(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                          CK_ATTRIBUTE_TYPE type, CK_ULONG *out);

/* Finds up to max objects matching tmpl[0..n). Sets *found. */
CK_RV kw_ks_p11_find(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                     CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *found);

/*
 * The public key of private key priv of key type type: from a public key object or an X.509
 * certificate object carrying the same match attribute (CKA_ID, or CKA_LABEL for keys without an
 * id; match NULL: no search), else from the private key's own public attributes (RSA). *cert_der
 * receives the matching certificate's DER (malloc'ed) when there is one, else NULL. Returns 0 or
 * KW_ENOKEY / KW_ENOMEM.
 */
int kw_ks_p11_public_key(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                         CK_KEY_TYPE type, const CK_ATTRIBUTE *match, EVP_PKEY **pub,
                         uint8_t **cert_der, size_t *cert_der_len);

#endif /* KW_PKCS11_INTERNAL_H */
