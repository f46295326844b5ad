/*
 * keymgmt for keyward keys (RSA, EC, Ed25519). A key is a key id plus the public key; its
 * parameters (bits, security bits, max size, group, n/e, encoded point, default digest) are the
 * public key's, so libssl's certificate/key matching and X509_check_private_key work.
 *
 * The private half never leaves the key server, so export refuses any selection that includes
 * the private key: OpenSSL then stops trying to move the key into another provider and uses our
 * signature and cipher implementations. Import is refused (see km_import).
 */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "key.h"
#include "provider.h"

static OSSL_FUNC_keymgmt_free_fn km_free;
static OSSL_FUNC_keymgmt_load_fn km_load;
static OSSL_FUNC_keymgmt_has_fn km_has;
static OSSL_FUNC_keymgmt_match_fn km_match;
static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_dup_fn km_dup;
static OSSL_FUNC_keymgmt_import_fn km_import;

static void km_free(void *keydata)
{
    kw_key_free(keydata);
}

static void *km_load(const void *reference, size_t reference_sz)
{
    return kw_key_from_ref(reference, reference_sz);
}

static int km_has(const void *keydata, int selection)
{
    const kw_key_t *key = keydata;
    if (key == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL) == 0)
        return 1;
    if (key->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !key->remote)
        return 0;
    return 1;
}

static int km_match(const void *keydata1, const void *keydata2, int selection)
{
    const kw_key_t *a = keydata1;
    const kw_key_t *b = keydata2;
    if (a == NULL || b == NULL || a->pub == NULL || b->pub == NULL || a->type != b->type)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return EVP_PKEY_eq(a->pub, b->pub) == 1;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        return EVP_PKEY_parameters_eq(a->pub, b->pub) == 1;
    return 1;
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    kw_key_t *key = keydata;
    if (key == NULL || key->pub == NULL)
        return 0;
    return EVP_PKEY_get_params(key->pub, params);
}

/* The parameters the default provider's keymgmt of this type can report. */
static const OSSL_PARAM *gettable_of(void *provctx, kw_key_type_t type)
{
    kw_prov_ctx_t *pctx = provctx;
    EVP_KEYMGMT *km = EVP_KEYMGMT_fetch(pctx->libctx, kw_key_type_name(type), NULL);
    const OSSL_PARAM *p = km == NULL ? NULL : EVP_KEYMGMT_gettable_params(km);
    /* the table is static data of the default provider, loaded for as long as libctx lives */
    EVP_KEYMGMT_free(km);
    return p;
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    kw_key_t *key = keydata;
    if (key == NULL || key->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        /* never: the private key is on the key server. Said, so that `openssl pkey -in STUB`
         * and the like fail with a reason instead of silently. */
        kw_prov_raise(key->pctx, KW_PROV_R_NOT_EXPORTABLE,
                      "the private key stays on the key server; only the public key exports");
        return 0;
    }
    return EVP_PKEY_export(key->pub, selection, cb, cbarg);
}

/*
 * Refused: keyward keys come only from the store and the decoder. OpenSSL 3.0 compares a
 * certificate with our key (X509_check_private_key, EVP_PKEY_eq) by first trying to import the
 * certificate's public key here and, when that fails, exporting our public key to the other
 * keymgmt, which km_export allows; so matching works without import.
 */
static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return 0;
}

static void *km_dup(const void *keydata, int selection)
{
    kw_key_t *key = (kw_key_t *)keydata;
    if (key == NULL)
        return NULL;
    kw_key_up_ref(key); /* keys are immutable once set: share */
    return key;
}

/* Public-part export types per key type. */
static const OSSL_PARAM rsa_pub_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};
static const OSSL_PARAM ec_pub_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};
static const OSSL_PARAM ed_pub_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *types_of(kw_key_type_t type, int selection)
{
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return NULL;
    switch (type) {
    case KW_KEY_RSA:
        return rsa_pub_types;
    case KW_KEY_EC:
        return ec_pub_types;
    default:
        return ed_pub_types;
    }
}

/* Per-type entry points: new, gettable params, types, operation name. */
#define KW_KEYMGMT(name, TYPE, opname)                                                             \
    static void *name##_new(void *provctx)                                                         \
    {                                                                                              \
        return kw_key_new(provctx, TYPE);                                                          \
    }                                                                                              \
    static const OSSL_PARAM *name##_gettable(void *provctx)                                        \
    {                                                                                              \
        return gettable_of(provctx, TYPE);                                                         \
    }                                                                                              \
    static const OSSL_PARAM *name##_types(int selection)                                           \
    {                                                                                              \
        return types_of(TYPE, selection);                                                          \
    }                                                                                              \
    static const char *name##_opname(int operation_id)                                             \
    {                                                                                              \
        return (opname);                                                                           \
    }                                                                                              \
    const OSSL_DISPATCH kw_##name##_keymgmt_functions[] = {                                        \
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))name##_new},                                       \
        {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},                                         \
        {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},                                         \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                                           \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                                       \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},                             \
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))name##_gettable},                      \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                                     \
        {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))name##_types},                            \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},                                     \
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))name##_types},                            \
        {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))name##_opname},                   \
        {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},                                           \
        {0, NULL},                                                                                 \
    };

static OSSL_FUNC_keymgmt_new_fn rsa_new, ec_new, ed25519_new;
static OSSL_FUNC_keymgmt_gettable_params_fn rsa_gettable, ec_gettable, ed25519_gettable;
static OSSL_FUNC_keymgmt_import_types_fn rsa_types, ec_types, ed25519_types;
static OSSL_FUNC_keymgmt_query_operation_name_fn rsa_opname, ec_opname, ed25519_opname;

KW_KEYMGMT(rsa, KW_KEY_RSA, "RSA")
KW_KEYMGMT(ec, KW_KEY_EC, "ECDSA")
KW_KEYMGMT(ed25519, KW_KEY_ED25519, "ED25519")
