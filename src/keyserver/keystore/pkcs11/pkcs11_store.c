/*
 * Loading the keys of a PKCS#11 token: resolve the spec (flags and URI) into module, token, PIN
 * and key filter; open the token; list its private keys (filtered by the URI's object= / id=);
 * pair each with its public key and check it is a type and size the key server serves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_log.h"
#include "keystore/pkcs11/pkcs11_internal.h"
#include "keystore/tls_reject_internal.h"
#include "kw_hex.h"

#define MAX_KEYS_PER_TOKEN 1024

/* Resolved settings of one kw_ks_p11_load. */
typedef struct load_s {
    kw_ks_p11_uri_t uri;
    const char *module;
    const char *pin_file;
} load_t;

static int resolve(const kw_ks_p11_spec_t *spec, load_t *ld, char *err, size_t errlen)
{
    memset(ld, 0, sizeof(*ld));
    if (spec->uri != NULL) {
        int rc = kw_ks_p11_uri_parse(spec->uri, &ld->uri, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (spec->token != NULL) {
        free(ld->uri.token);
        ld->uri.token = strdup(spec->token);
        if (ld->uri.token == NULL)
            return KW_ENOMEM;
    }
    ld->module = spec->module != NULL ? spec->module : ld->uri.module_path;
    ld->pin_file = spec->pin_file;
    if (ld->pin_file == NULL && ld->uri.pin_source != NULL)
        ld->pin_file = strncmp(ld->uri.pin_source, "file:", 5) == 0 ? ld->uri.pin_source + 5
                                                                    : ld->uri.pin_source;
    if (ld->module == NULL) {
        snprintf(err, errlen,
                 "pkcs11: no module given (--pkcs11-module PATH, module:, or "
                 "module-path= in the URI)");
        return KW_ECONFIG;
    }
    if (ld->uri.token == NULL && ld->uri.serial == NULL && !ld->uri.has_slot_id) {
        snprintf(err, errlen,
                 "pkcs11: name the token (--pkcs11-token LABEL, token:, or token= "
                 "in the URI)");
        return KW_ECONFIG;
    }
    return 0;
}

/* Key type and size checks, as for PEM keys. Sets *type and *k. Returns 0 or KW_ECRYPTO. */
static int classify(EVP_PKEY *pub, CK_KEY_TYPE ck_type, int *type, size_t *k, char *why,
                    size_t whylen)
{
    int bits = EVP_PKEY_get_bits(pub);
    *k = (size_t)EVP_PKEY_get_size(pub);
    if (ck_type == CKK_RSA && EVP_PKEY_is_a(pub, "RSA")) {
        *type = KW_P11_RSA;
        *k = (size_t)(bits + 7) / 8;
        if (bits >= 2048 && bits <= 4096)
            return 0;
        snprintf(why, whylen, "RSA-%d is not supported (2048 to 4096 bits are)", bits);
        return KW_ECRYPTO;
    }
    if (ck_type == CKK_EC && EVP_PKEY_is_a(pub, "EC")) {
        *type = KW_P11_EC;
        if (bits == 256 || bits == 384 || bits == 521)
            return 0;
        snprintf(why, whylen, "EC curve of %d bits is not supported (P-256/384/521 are)", bits);
        return KW_ECRYPTO;
    }
    if (ck_type == CKK_EC_EDWARDS && EVP_PKEY_is_a(pub, "ED25519")) {
        *type = KW_P11_ED25519;
        return 0;
    }
    snprintf(why, whylen, "key type %lu with a %s public key is not supported",
             (unsigned long)ck_type,
             EVP_PKEY_get0_type_name(pub) ? EVP_PKEY_get0_type_name(pub) : "?");
    return KW_ECRYPTO;
}

static int get_modulus(EVP_PKEY *pub, size_t k, uint8_t **out)
{
    BIGNUM *n = NULL;
    uint8_t *buf = malloc(k);
    int ok = buf != NULL && EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
             BN_bn2binpad(n, buf, (int)k) == (int)k;
    BN_free(n);
    ERR_clear_error();
    if (!ok) {
        free(buf);
        return KW_ENOMEM;
    }
    *out = buf;
    return 0;
}

static char *key_name(const kw_ks_p11_token_t *t, const uint8_t *label, size_t label_len,
                      const uint8_t *id, size_t id_len)
{
    char buf[256];
    if (label != NULL && label_len > 0 && label_len < 128 && memchr(label, 0, label_len) == NULL) {
        snprintf(buf, sizeof(buf), "%s/%.*s", t->label, (int)label_len, (const char *)label);
    } else {
        char hex[2 * 32 + 1] = "";
        kw_hex_encode(id, id_len < 32 ? id_len : 32, hex);
        snprintf(buf, sizeof(buf), "%s/id-%s", t->label, hex);
    }
    return strdup(buf);
}

static void found_clear(kw_ks_p11_found_t *f)
{
    kw_ks_p11_key_free(f->key);
    EVP_PKEY_free(f->pub);
    free(f->name);
    free(f->cert_der);
    memset(f, 0, sizeof(*f));
}

static int list_add(kw_ks_p11_keylist_t *list, const kw_ks_p11_found_t *f)
{
    kw_ks_p11_found_t *grown = realloc(list->v, (list->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return KW_ENOMEM;
    list->v = grown;
    list->v[list->n++] = *f;
    return 0;
}

/* Examines private key object o; adds it to out when usable. Returns 0 or KW_ENOMEM. */
static int examine(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                   kw_ks_p11_keylist_t *out)
{
    CK_ULONG ck_type = 0;
    CK_BBOOL always = CK_FALSE;
    CK_ATTRIBUTE aa = {CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always)};
    uint8_t *id = NULL;
    uint8_t *label = NULL;
    size_t id_len = 0;
    size_t label_len = 0;
    kw_ks_p11_found_t f;
    memset(&f, 0, sizeof(f));
    char why[256] = "no public key or certificate with the same id on the token";
    kw_ks_p11_get_attr(t, s, o, CKA_ID, &id, &id_len);
    kw_ks_p11_get_attr(t, s, o, CKA_LABEL, &label, &label_len);
    f.name = key_name(t, label, label_len, id, id_len);
    if (f.name == NULL || kw_ks_p11_get_ulong(t, s, o, CKA_KEY_TYPE, &ck_type) != CKR_OK) {
        free(id);
        free(label);
        free(f.name);
        return f.name == NULL ? KW_ENOMEM : 0;
    }
    CK_ATTRIBUTE match = {CKA_ID, id, id_len};
    if (id == NULL) {
        match.type = CKA_LABEL;
        match.pValue = label;
        match.ulValueLen = label_len;
    }
    int type = 0;
    size_t k = 0;
    int usable = 0;
    if (t->f->C_GetAttributeValue(s, o, &aa, 1) == CKR_OK && always == CK_TRUE)
        snprintf(why, sizeof(why),
                 "it needs the PIN for every operation (CKA_ALWAYS_AUTHENTICATE)");
    else if (kw_ks_p11_public_key(t, s, o, ck_type, match.pValue != NULL ? &match : NULL, &f.pub,
                                  &f.cert_der, &f.cert_der_len) == 0)
        usable = classify(f.pub, ck_type, &type, &k, why, sizeof(why)) == 0;
    free(id);
    free(label);
    int rc = 0;
    if (usable) {
        f.key = calloc(1, sizeof(*f.key));
        rc = f.key == NULL ? KW_ENOMEM : 0;
        if (rc == 0) {
            f.key->token = kw_ks_p11_token_ref(t);
            f.key->handle = o;
            f.key->type = type;
            f.key->k = k;
            f.key->name = strdup(f.name);
            rc = f.key->name == NULL ? KW_ENOMEM : 0;
            if (rc == 0 && type == KW_P11_RSA)
                rc = get_modulus(f.pub, k, &f.key->modulus);
            if (rc == 0 && type == KW_P11_RSA && kw_ks_p11_ir_init(f.key) == KW_ENOMEM)
                rc = KW_ENOMEM; /* other failures are logged; the key still signs */
            if (rc == 0)
                rc = list_add(out, &f);
        }
    } else {
        kw_warn("pkcs11 key %s skipped: %s", f.name, why);
    }
    if (!usable || rc != 0)
        found_clear(&f);
    return rc;
}

static int enumerate(kw_ks_p11_token_t *t, const kw_ks_p11_uri_t *uri, kw_ks_p11_keylist_t *out,
                     char *err, size_t errlen)
{
    CK_SESSION_HANDLE s;
    CK_RV rv = kw_ks_p11_session_get(t, &s);
    if (rv != CKR_OK) {
        snprintf(err, errlen, "pkcs11 token '%s': cannot open a session: %s", t->label,
                 kw_ks_p11_rv_name(rv));
        return KW_EIO;
    }
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_ULONG n = 1;
    if (uri->object != NULL)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, uri->object, strlen(uri->object)};
    if (uri->has_id)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)uri->id, uri->id_len};
    CK_OBJECT_HANDLE *objs = calloc(MAX_KEYS_PER_TOKEN, sizeof(*objs));
    CK_ULONG found = 0;
    rv = objs == NULL ? CKR_HOST_MEMORY
                      : kw_ks_p11_find(t, s, tmpl, n, objs, MAX_KEYS_PER_TOKEN, &found);
    int rc = 0;
    if (rv != CKR_OK) {
        snprintf(err, errlen, "pkcs11 token '%s': cannot list keys: %s", t->label,
                 kw_ks_p11_rv_name(rv));
        rc = KW_EIO;
    }
    for (CK_ULONG i = 0; rc == 0 && i < found; i++)
        rc = examine(t, s, objs[i], out);
    free(objs);
    kw_ks_p11_session_put(t, s, rv != CKR_OK && kw_ks_p11_rv_breaks_session(rv));
    if (rc == KW_ENOMEM)
        snprintf(err, errlen, "out of memory listing the keys of token '%s'", t->label);
    return rc;
}

int kw_ks_p11_load(kw_ks_p11_ctx_t *ctx, const kw_ks_p11_spec_t *spec, kw_ks_p11_keylist_t *out,
                   char *err, size_t errlen)
{
    load_t ld;
    kw_ks_p11_module_t *mod = NULL;
    kw_ks_p11_token_t *tok = NULL;
    memset(out, 0, sizeof(*out));
    int rc = resolve(spec, &ld, err, errlen);
    if (rc == 0)
        rc = kw_ks_p11_module_get(ctx, ld.module, &mod, err, errlen);
    if (rc == 0)
        rc = kw_ks_p11_token_open(mod, &ld.uri, ld.pin_file, &tok, err, errlen);
    if (rc == 0)
        rc = enumerate(tok, &ld.uri, out, err, errlen);
    if (rc == 0)
        kw_info("pkcs11 token '%s' (%s): %zu usable key(s)", tok->label, ld.module, out->n);
    if (rc == 0 && !(tok->mechs & KW_P11_MECH_RSA_X509))
        kw_warn("pkcs11 token '%s' offers no raw RSA (CKM_RSA_X_509): TLS RSA decryption (0xA0) "
                "lets the token unpad, so its timing on bad padding is the token's "
                "(docs/operator.md); prefer ECDHE or allowing raw RSA",
                tok->label);
    kw_ks_p11_token_unref(tok); /* the keys hold their own references */
    kw_ks_p11_module_unref(mod);
    kw_ks_p11_uri_free(&ld.uri);
    if (rc != 0)
        kw_ks_p11_keylist_free(out);
    return rc;
}

void kw_ks_p11_keylist_free(kw_ks_p11_keylist_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        found_clear(&list->v[i]);
    free(list->v);
    memset(list, 0, sizeof(*list));
}

void kw_ks_p11_key_free(kw_ks_p11_key_t *key)
{
    if (key == NULL)
        return;
    kw_ks_p11_token_unref(key->token);
    kw_ks_ir_secret_free(key->ir_secret);
    free(key->modulus);
    free(key->name);
    free(key);
}
