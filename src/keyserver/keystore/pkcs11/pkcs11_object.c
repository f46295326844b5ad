/*
 * Token objects: attribute reads, object searches, and the public half of a private key on the
 * token turned into an OpenSSL EVP_PKEY (from a public key object, a certificate, or the RSA
 * private key's public attributes), so the key store can compute the key ids exactly as it does
 * for PEM keys.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "keystore/pkcs11/pkcs11_internal.h"

#define ATTR_MAX (64 * 1024)

CK_RV kw_ks_p11_get_attr(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                         CK_ATTRIBUTE_TYPE type, uint8_t **out, size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    *out = NULL;
    *len = 0;
    CK_RV rv = t->f->C_GetAttributeValue(s, o, &a, 1);
    if (rv == CKR_ATTRIBUTE_SENSITIVE || a.ulValueLen == CK_UNAVAILABLE_INFORMATION ||
        a.ulValueLen == 0 || a.ulValueLen > ATTR_MAX)
        return rv == CKR_OK ? CKR_ATTRIBUTE_TYPE_INVALID : rv;
    if (rv != CKR_OK)
        return rv;
    uint8_t *buf = malloc(a.ulValueLen);
    if (buf == NULL)
        return CKR_HOST_MEMORY;
    a.pValue = buf;
    rv = t->f->C_GetAttributeValue(s, o, &a, 1);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0) {
        free(buf);
        return rv == CKR_OK ? CKR_ATTRIBUTE_TYPE_INVALID : rv;
    }
    *out = buf;
    *len = a.ulValueLen;
    return CKR_OK;
}

CK_RV kw_ks_p11_get_ulong(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                          CK_ATTRIBUTE_TYPE type, CK_ULONG *out)
{
    CK_ULONG v = 0;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    CK_RV rv = t->f->C_GetAttributeValue(s, o, &a, 1);
    if (rv == CKR_OK && a.ulValueLen != sizeof(v))
        rv = CKR_ATTRIBUTE_TYPE_INVALID;
    *out = v;
    return rv;
}

CK_RV kw_ks_p11_find(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                     CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *found)
{
    *found = 0;
    CK_RV rv = t->f->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    rv = t->f->C_FindObjects(s, objs, max, found);
    CK_RV fin = t->f->C_FindObjectsFinal(s);
    return rv != CKR_OK ? rv : fin;
}

/* ---- building EVP_PKEYs ---- */

static EVP_PKEY *from_params(const char *alg, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *p = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    if (p == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, p) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(p);
    ERR_clear_error();
    return pkey;
}

/* Two attributes of one object, read together; free with pair_free. */
typedef struct attr_pair_s {
    uint8_t *v[2];
    size_t len[2];
} attr_pair_t;

/* Reads attributes a0 and a1 of o into p; 1 when both were read. Free p in any case. */
static int get_pair(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                    CK_ATTRIBUTE_TYPE a0, CK_ATTRIBUTE_TYPE a1, attr_pair_t *p)
{
    memset(p, 0, sizeof(*p));
    return kw_ks_p11_get_attr(t, s, o, a0, &p->v[0], &p->len[0]) == CKR_OK &&
           kw_ks_p11_get_attr(t, s, o, a1, &p->v[1], &p->len[1]) == CKR_OK;
}

static void pair_free(attr_pair_t *p)
{
    free(p->v[0]);
    free(p->v[1]);
}

static EVP_PKEY *rsa_from_attrs(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    attr_pair_t ne;
    EVP_PKEY *pkey = NULL;
    if (get_pair(t, s, o, CKA_MODULUS, CKA_PUBLIC_EXPONENT, &ne)) {
        BIGNUM *bn = BN_bin2bn(ne.v[0], (int)ne.len[0], NULL);
        BIGNUM *be = BN_bin2bn(ne.v[1], (int)ne.len[1], NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bn != NULL && be != NULL && bld != NULL &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
            pkey = from_params("RSA", bld);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn);
        BN_free(be);
    }
    pair_free(&ne);
    return pkey;
}

/* CKA_EC_POINT is a DER OCTET STRING by the standard; some modules return the bare point. */
static const uint8_t *unwrap_point(const uint8_t *der, size_t len, size_t *out_len)
{
    if (len >= 2 && der[0] == 0x04 && der[1] < 0x80 && (size_t)der[1] + 2 == len) {
        *out_len = der[1];
        return der + 2;
    }
    if (len >= 3 && der[0] == 0x04 && der[1] == 0x81 && (size_t)der[2] + 3 == len) {
        *out_len = der[2];
        return der + 3;
    }
    *out_len = len;
    return der;
}

/* Curve short name of a CKA_EC_PARAMS (a DER OID, or for Ed25519 a PrintableString). */
static const char *curve_name(const uint8_t *der, size_t len)
{
    static const uint8_t ed25519_str[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                          'd',  's',  '2', '5', '5', '1', '9'};
    if (len == sizeof(ed25519_str) && memcmp(der, ed25519_str, len) == 0)
        return "ED25519";
    const unsigned char *p = der;
    ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    int nid = obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
    ASN1_OBJECT_free(obj);
    ERR_clear_error();
    switch (nid) {
    case NID_X9_62_prime256v1:
        return "P-256";
    case NID_secp384r1:
        return "P-384";
    case NID_secp521r1:
        return "P-521";
    case NID_ED25519:
        return "ED25519";
    default:
        return NULL;
    }
}

static EVP_PKEY *ec_from_attrs(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    attr_pair_t pp; /* CKA_EC_PARAMS, CKA_EC_POINT */
    EVP_PKEY *pkey = NULL;
    if (get_pair(t, s, o, CKA_EC_PARAMS, CKA_EC_POINT, &pp)) {
        const char *curve = curve_name(pp.v[0], pp.len[0]);
        size_t plen = 0;
        const uint8_t *point = unwrap_point(pp.v[1], pp.len[1], &plen);
        if (curve != NULL && strcmp(curve, "ED25519") == 0) {
            if (plen == 32)
                pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, point, plen);
        } else if (curve != NULL) {
            OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
            if (bld != NULL &&
                OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) == 1 &&
                OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, plen) == 1)
                pkey = from_params("EC", bld);
            OSSL_PARAM_BLD_free(bld);
        }
    }
    pair_free(&pp);
    ERR_clear_error();
    return pkey;
}

/* From CKA_PUBLIC_KEY_INFO (an SPKI) when the module offers it, else from the typed attributes. */
static EVP_PKEY *pub_from_object(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                 CK_KEY_TYPE type)
{
    uint8_t *spki = NULL;
    size_t len = 0;
    if (kw_ks_p11_get_attr(t, s, o, CKA_PUBLIC_KEY_INFO, &spki, &len) == CKR_OK) {
        const unsigned char *p = spki;
        EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);
        free(spki);
        ERR_clear_error();
        if (pkey != NULL)
            return pkey;
    }
    if (type == CKK_RSA)
        return rsa_from_attrs(t, s, o);
    return ec_from_attrs(t, s, o);
}

/* The first certificate object matching; its DER in *der and its public key in *pub. */
static void find_cert(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, const CK_ATTRIBUTE *match,
                      uint8_t **der, size_t *der_len, EVP_PKEY **pub)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ctype = CKC_X_509;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype)}, *match};
    CK_OBJECT_HANDLE o;
    CK_ULONG found = 0;
    *der = NULL;
    *pub = NULL;
    if (kw_ks_p11_find(t, s, tmpl, 3, &o, 1, &found) != CKR_OK || found == 0)
        return;
    if (kw_ks_p11_get_attr(t, s, o, CKA_VALUE, der, der_len) != CKR_OK)
        return;
    const unsigned char *p = *der;
    X509 *x = d2i_X509(NULL, &p, (long)*der_len);
    if (x != NULL)
        *pub = X509_get_pubkey(x);
    X509_free(x);
    ERR_clear_error();
    if (*pub == NULL) {
        free(*der);
        *der = NULL;
    }
}

static EVP_PKEY *find_pubkey_object(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_KEY_TYPE type,
                                    const CK_ATTRIBUTE *match)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &type, sizeof(type)}, *match};
    CK_OBJECT_HANDLE objs[4];
    CK_ULONG found = 0;
    if (kw_ks_p11_find(t, s, tmpl, 3, objs, 4, &found) != CKR_OK)
        return NULL;
    for (CK_ULONG i = 0; i < found; i++) {
        EVP_PKEY *pkey = pub_from_object(t, s, objs[i], type);
        if (pkey != NULL)
            return pkey;
    }
    return NULL;
}

int kw_ks_p11_public_key(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                         CK_KEY_TYPE type, const CK_ATTRIBUTE *match, EVP_PKEY **pub,
                         uint8_t **cert_der, size_t *cert_der_len)
{
    EVP_PKEY *cert_pub = NULL;
    EVP_PKEY *pkey = NULL;
    *cert_der = NULL;
    *cert_der_len = 0;
    if (match != NULL) {
        find_cert(t, s, match, cert_der, cert_der_len, &cert_pub);
        pkey = find_pubkey_object(t, s, type, match);
    }
    if (pkey == NULL && type == CKK_RSA)
        pkey = rsa_from_attrs(t, s, priv);
    if (pkey != NULL && cert_pub != NULL && EVP_PKEY_eq(pkey, cert_pub) != 1) {
        kw_warn("pkcs11 token '%s': a certificate shares a key's id but not its public key; "
                "ignoring the certificate",
                t->label);
        free(*cert_der);
        *cert_der = NULL;
        *cert_der_len = 0;
        EVP_PKEY_free(cert_pub);
        cert_pub = NULL;
    }
    ERR_clear_error();
    if (pkey == NULL)
        pkey = cert_pub; /* the certificate alone tells the public key */
    else
        EVP_PKEY_free(cert_pub);
    if (pkey == NULL)
        return KW_ENOKEY;
    *pub = pkey;
    return 0;
}
