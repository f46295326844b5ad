/*
 * keyward.so's provider context: its names, error reasons, settings and the context itself, and
 * kw_prov_raise (prov_ctx.c). The bottom layer of the provider: it takes nothing from the other
 * provider files, which all build on it (provider.c makes and frees the context).
 */
#ifndef KW_PROV_CTX_H
#define KW_PROV_CTX_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>

#include "keyward/client.h"

#define KW_PROV_NAME    "keyward"
#define KW_PROV_PROPS   "provider=keyward"
#define KW_PROV_VERSION "0.1.0"

/* Reason codes of the errors this provider raises (strings in provider.c). */
enum kw_prov_reason {
    KW_PROV_R_CONFIG = 1,      /* bad or missing setting */
    KW_PROV_R_UNREACHABLE = 2, /* no key server answered */
    KW_PROV_R_KEY_NOT_FOUND = 3,
    KW_PROV_R_REMOTE = 4,      /* the key server answered with an error */
    KW_PROV_R_UNSUPPORTED = 5, /* a parameter or algorithm the key server cannot do */
    KW_PROV_R_BAD_KEY = 6,     /* malformed stub, URI or public key */
    KW_PROV_R_NO_PRIVATE = 7,  /* a public-only key was asked to sign/decrypt */
    KW_PROV_R_INTERNAL = 8,
    KW_PROV_R_NOT_EXPORTABLE = 9,  /* a program asked for the private part of a keyward key */
    KW_PROV_R_LOCAL_FILE = 10,     /* a credential file could not be read (which, why) */
    KW_PROV_R_CREDENTIALS = 11,    /* the credentials read are not a usable cert/key/CA */
    KW_PROV_R_REFUSED = 12,        /* TLS with the key server failed (alert, certificate) */
    KW_PROV_R_NO_THREAD = 13,      /* the client needed a thread and may not create one */
    KW_PROV_R_NOT_AUTHORISED = 14, /* the key server says this edge may not use the key */
};

/* Settings (openssl.cnf [keyward_sect], each overridable by an environment variable). */
typedef struct kw_prov_settings_s {
    char *servers;     /* servers / KEYWARD_SERVERS */
    char *client_cert; /* client_cert / KEYWARD_CLIENT_CERT */
    char *client_key;  /* client_key / KEYWARD_CLIENT_KEY */
    char *ca;          /* ca / KEYWARD_CA */
    /* The credentials' bytes, read when the provider is configured (in a server's master, as
     * root, before it forks and drops privileges: DESIGN.md §6); the key cleansed at teardown. */
    uint8_t *cert_pem;
    size_t cert_pem_len;
    uint8_t *key_pem;
    size_t key_pem_len;
    uint8_t *ca_pem;
    size_t ca_pem_len;
    char cred_err[600]; /* why a credential could not be read ("" when all were) */
    unsigned timeout_ms;
    int load_check;         /* KW_LOAD_CHECK_* */
    int master_secret_mode; /* master_secret_mode / KEYWARD_MASTER_SECRET_MODE (master.h) */
} kw_prov_settings_t;

enum kw_load_check {
    KW_LOAD_CHECK_OFF = 0,    /* never ask the key server at load time */
    KW_LOAD_CHECK_AUTO = 1,   /* refuse unknown keys; accept when no key server answers */
    KW_LOAD_CHECK_STRICT = 2, /* refuse unless the key server confirms the key */
};

#define KW_PROV_ERR_MAX  640 /* a client error text (kw_client_last_error), never cut */
#define KW_CHECKED_SLOTS 16  /* key ids remembered as checked on the key server at load time */

typedef struct kw_prov_ctx_s {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx; /* own library context: default provider, for public keys/digests */
    kw_prov_settings_t cfg;
    unsigned load_uid;                     /* effective uid when the provider was loaded */
    pthread_mutex_t lock;                  /* guards client creation */
    kw_client_t *client;                   /* created on first key use */
    uint8_t checked[KW_CHECKED_SLOTS][32]; /* under lock: stubs checked in the last seconds, */
    int64_t checked_at[KW_CHECKED_SLOTS];  /* so the PEM and DER decoders ask only once */
    unsigned checked_next;
    struct kw_ms_table_s *ms_table; /* master-secret handles (master.h), lazily made */
    OSSL_FUNC_core_new_error_fn *new_error;
    OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
    OSSL_FUNC_core_vset_error_fn *vset_error;
} kw_prov_ctx_t;

/* Raises a provider error with a formatted sentence (shown by ERR_print_errors). */
void kw_prov_raise_at(kw_prov_ctx_t *pctx, const char *file, int line, const char *func, int reason,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define kw_prov_raise(pctx, reason, ...)                                                           \
    kw_prov_raise_at((pctx), __FILE__, __LINE__, __func__, (reason), __VA_ARGS__)

#endif /* KW_PROV_CTX_H */
