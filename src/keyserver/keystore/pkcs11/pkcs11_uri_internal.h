/*
 * RFC 7512 "pkcs11:" URIs as used in the key server's configuration: which token (token, serial,
 * manufacturer, model, slot-id), which keys on it (object, id, type) and where the module and the
 * PIN come from (query attributes module-path, pin-source, pin-value). Parsing only; opening the
 * token is pkcs11_token.c's job.
 * Internal to keystore/pkcs11/.
 */
#ifndef KW_PKCS11_URI_H
#define KW_PKCS11_URI_H

#include <stddef.h>
#include <stdint.h>

#define KW_P11_ID_MAX 128

/* Every string is NUL-terminated, percent-decoded and owned; NULL when the attribute is absent. */
typedef struct kw_ks_p11_uri_s {
    char *token;               /* CK_TOKEN_INFO label */
    char *manufacturer;        /* CK_TOKEN_INFO manufacturerID */
    char *serial;              /* CK_TOKEN_INFO serialNumber */
    char *model;               /* CK_TOKEN_INFO model */
    char *object;              /* CKA_LABEL of the keys to serve */
    char *type;                /* "private" (or absent); other values are refused */
    char *module_path;         /* query: the module to dlopen */
    char *pin_source;          /* query: "file:/path" or "/path" */
    char *pin_value;           /* query: the PIN itself (discouraged; cleansed on free) */
    uint8_t id[KW_P11_ID_MAX]; /* CKA_ID of the keys to serve */
    size_t id_len;
    int has_id;
    int has_slot_id;
    unsigned long slot_id;
} kw_ks_p11_uri_t;

/*
 * Parses text ("pkcs11:" path [ "?" query ]) into uri (zeroed here). Unknown path attributes and
 * vendor attributes ("x-...") are refused so a typo cannot silently widen the key set; unknown
 * query attributes are ignored as RFC 7512 §2.4 allows. Returns 0 or KW_EINVAL with the reason in
 * err.
 */
int kw_ks_p11_uri_parse(const char *text, kw_ks_p11_uri_t *uri, char *err, size_t errlen);

/* Frees the strings (cleansing pin_value) and zeroes uri. */
void kw_ks_p11_uri_free(kw_ks_p11_uri_t *uri);

#endif /* KW_PKCS11_URI_H */
