/*
 * Loads one site key for the key store: the PEM private key (PKCS#8 or traditional), the type and
 * size checks (RSA 2048-4096, EC P-256/P-384/P-521, Ed25519), the optional same-named .crt chain
 * (leaf first, which must carry the key's public key) and the names the leaf answers to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "keyward/error.h"
#include "keystore/hygiene.h"
#include "keyward/keyid.h"
#include "keystore/keystore_load_internal.h"
#include "keystore/pem/pem.h"
#include "keystore/tls_reject_internal.h"
#include "kw_strlist.h"
#include "kw_tls.h"

static char *path_join(const char *dir, const char *name, const char *ext)
{
    size_t len = strlen(dir) + 1 + strlen(name) + strlen(ext) + 1;
    char *p = malloc(len);
    if (p != NULL)
        snprintf(p, len, "%s/%s%s", dir, name, ext);
    return p;
}

/* A key refused because OpenSSL found no room in the secure heap (hygiene.h), like a bad file:
 * not fatal, the other keys still load. */
static int heap_full(const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "the secure heap is full (%zu KiB used), and a private key is never kept in "
             "ordinary memory",
             CRYPTO_secure_used() >> 10);
    (void)path;
    ERR_clear_error();
    return KW_ECRYPTO;
}

/* The decoder of the first PEM block of bio into l->decoded, with l's context (made on first use:
 * setting one up costs OpenSSL 3.0 more than decoding a key with it). Private keys only, as
 * PEM_read_bio_PrivateKey_ex asks (the same decoders, with the same secure-heap allocations); on
 * any failure the context is dropped (nothing of a failed decode is carried to the next key) and
 * the caller falls back to PEM_read_bio_PrivateKey_ex. Returns the key or NULL. */
static EVP_PKEY *decode_reused(kw_ks_loader_t *l, BIO *bio)
{
    if (l->dctx == NULL) {
        l->dctx = OSSL_DECODER_CTX_new_for_pkey(&l->decoded, "PEM", NULL, NULL,
                                                OSSL_KEYMGMT_SELECT_PRIVATE_KEY, NULL, NULL);
        if (l->dctx != NULL &&
            OSSL_DECODER_CTX_set_pem_password_cb(l->dctx, kw_tls_no_passphrase, NULL) != 1)
            kw_ks_loader_free(l);
        if (l->dctx == NULL)
            return NULL;
    }
    l->decoded = NULL;
    ERR_set_mark();
    int ok = OSSL_DECODER_from_bio(l->dctx, bio) == 1 && l->decoded != NULL;
    ERR_pop_to_mark();
    if (!ok) {
        EVP_PKEY_free(l->decoded);
        l->decoded = NULL;
        kw_ks_loader_free(l);
        return NULL;
    }
    EVP_PKEY *pkey = l->decoded;
    l->decoded = NULL;
    return pkey;
}

void kw_ks_loader_free(kw_ks_loader_t *l)
{
    OSSL_DECODER_CTX_free(l->dctx);
    l->dctx = NULL;
}

static int read_private_key(kw_ks_loader_t *l, const char *path, EVP_PKEY **out, char *err,
                            size_t errlen)
{
    char stdio_buf[4096]; /* stdio's buffer holds the PEM text: ours, so it can be cleansed */
    FILE *f = fopen(path, "r");
    BIO *bio = NULL;
    if (f != NULL && setvbuf(f, stdio_buf, _IOFBF, sizeof(stdio_buf)) == 0)
        bio = BIO_new_fp(f, BIO_CLOSE);
    if (bio == NULL) {
        if (f != NULL)
            fclose(f);
        OPENSSL_cleanse(stdio_buf, sizeof(stdio_buf));
        snprintf(err, errlen, "cannot open %s", path);
        ERR_clear_error();
        return KW_EIO;
    }
    (void)kw_ks_hygiene_check_key_file(fileno(f), path); /* the file opened, not its name again */
    struct stat st;
    size_t file_len = fstat(fileno(f), &st) == 0 ? (size_t)st.st_size : 0;
    *out = l != NULL ? decode_reused(l, bio) : NULL;
    /* Anything else (several PEM blocks, a key the reused decoder refused): OpenSSL's own reader
     * from the file's start, which decides what is accepted and why not. */
    if (*out == NULL && (l == NULL || BIO_seek(bio, 0) == 0))
        *out = PEM_read_bio_PrivateKey_ex(bio, NULL, kw_tls_no_passphrase, NULL, NULL, NULL);
    BIO_free(bio); /* closes f */
    OPENSSL_cleanse(stdio_buf, sizeof(stdio_buf));
    if (*out == NULL && kw_ks_hygiene_secure_full(file_len))
        return heap_full(path, err, errlen);
    if (*out == NULL) {
        snprintf(err, errlen,
                 "%s is not a readable PEM private key (unencrypted PKCS#8 or "
                 "traditional PEM expected)",
                 path);
        ERR_clear_error();
        return KW_ECRYPTO;
    }
    return 0;
}

static int check_ec_curve(EVP_PKEY *pkey, char *err, size_t errlen)
{
    char group[64] = "";
    size_t glen = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "EC key without a named curve");
        return KW_ECRYPTO;
    }
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
        strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0 ||
        strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
        return 0;
    snprintf(err, errlen, "EC curve %s is not supported (P-256, P-384, P-521 are)", group);
    return KW_ECRYPTO;
}

/* Sets key->type and key->bits, or explains why the key is not one we serve. */
static int classify_key(kw_ks_key_t *key, char *err, size_t errlen)
{
    EVP_PKEY *pkey = key->pkey;
    key->bits = EVP_PKEY_get_bits(pkey);
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        key->type = KW_KS_KEY_RSA;
        if (key->bits < 2048 || key->bits > 4096) {
            snprintf(err, errlen, "RSA key of %d bits is not supported (2048 to 4096 are)",
                     key->bits);
            return KW_ECRYPTO;
        }
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        key->type = KW_KS_KEY_EC;
        return check_ec_curve(pkey, err, errlen);
    }
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        key->type = KW_KS_KEY_ED25519;
        return 0;
    }
    snprintf(err, errlen, "key type %s is not supported (RSA, EC P-256/384/521, Ed25519 are)",
             EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
    return KW_ECRYPTO;
}

/* Appends the DER of cert to key->chain_der. */
static int chain_append(kw_ks_key_t *key, X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    if (len <= 0)
        return KW_ECRYPTO;
    uint8_t *grown = realloc(key->chain_der, key->chain_der_len + (size_t)len);
    if (grown == NULL) {
        OPENSSL_free(der);
        return KW_ENOMEM;
    }
    memcpy(grown + key->chain_der_len, der, (size_t)len);
    key->chain_der = grown;
    key->chain_der_len += (size_t)len;
    OPENSSL_free(der);
    return 0;
}

static int check_leaf(kw_ks_key_t *key, X509 *leaf, const char *path, kw_ks_names_t *names,
                      uint8_t cert_ski[KW_SKI_LEN], int *has_cert_ski, char *err, size_t errlen)
{
    EVP_PKEY *pub = X509_get0_pubkey(leaf);
    if (pub == NULL || EVP_PKEY_eq(pub, key->pkey) != 1) {
        ERR_clear_error();
        snprintf(err, errlen,
                 "certificate %s does not match the private key (its first "
                 "certificate must be the key's leaf)",
                 path);
        return KW_ECRYPTO;
    }
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(leaf);
    if (ski != NULL && ASN1_STRING_length(ski) == KW_SKI_LEN) {
        memcpy(cert_ski, ASN1_STRING_get0_data(ski), KW_SKI_LEN);
        *has_cert_ski = 1;
    }
    return kw_tls_cert_dns_names(leaf, 1, &names->v, &names->n);
}

/* Reads the certificates of path (absent file: no chain, fine). */
static int read_chain(kw_ks_key_t *key, const char *path, kw_ks_names_t *names,
                      uint8_t cert_ski[KW_SKI_LEN], int *has_cert_ski, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int rc = 0;
    int count = 0;
    X509 *cert = NULL;
    while (rc == 0) {
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        if (cert == NULL)
            break;
        if (count == 0)
            rc = check_leaf(key, cert, path, names, cert_ski, has_cert_ski, err, errlen);
        if (rc == 0)
            rc = chain_append(key, cert);
        X509_free(cert);
        count++;
    }
    fclose(f);
    ERR_clear_error();
    if (rc == 0 && count == 0) {
        snprintf(err, errlen, "%s holds no PEM certificate", path);
        rc = KW_ECRYPTO;
    }
    return rc;
}

int kw_ks_key_load(kw_ks_loader_t *l, const char *dir, const char *name, kw_ks_key_t *key,
                   kw_ks_names_t *names, uint8_t cert_ski[KW_SKI_LEN], int *has_cert_ski, char *err,
                   size_t errlen)
{
    char *key_path = path_join(dir, name, ".key");
    char *crt_path = path_join(dir, name, ".crt");
    size_t name_len = strlen(name);
    key->name = malloc(name_len + 1);
    int rc = (key_path == NULL || crt_path == NULL || key->name == NULL) ? KW_ENOMEM : 0;
    if (rc == 0) {
        memcpy(key->name, name, name_len + 1);
        rc = read_private_key(l, key_path, &key->pkey, err, errlen);
    }
    if (rc == 0)
        rc = classify_key(key, err, errlen);
    if (rc == 0 && kw_keyid_from_pkey(key->pkey, key->digest, key->ski) != 0) {
        snprintf(err, errlen, "cannot compute the key id of %s", key_path);
        rc = KW_ECRYPTO;
    }
    key->backend = &kw_ks_backend_pem;
    if (rc == 0 && key->type == KW_KS_KEY_RSA)
        key->priv = kw_ks_ir_secret_from_pkey(key->pkey);
    if (rc == 0 && key->type == KW_KS_KEY_RSA && key->priv == NULL) {
        snprintf(err, errlen, "cannot derive the implicit-rejection secret of %s", key_path);
        rc = KW_ECRYPTO;
    }
    if (rc == 0) {
        key->max_out = (size_t)EVP_PKEY_get_size(key->pkey);
        rc = read_chain(key, crt_path, names, cert_ski, has_cert_ski, err, errlen);
    }
    /* Last: the certificate check above compares with the provider's key (hygiene.h). */
    if (rc == 0 && kw_ks_hygiene_rsa_uncached(&key->pkey) != 0) {
        /* the re-decoded copy's bignums: about 4.5 times the modulus */
        if (kw_ks_hygiene_secure_full(5 * key->max_out))
            rc = heap_full(key_path, err, errlen);
        else
            snprintf(err, errlen, "cannot set up %s without cached prime factors", key_path);
        rc = KW_ECRYPTO;
    }
    if (rc != 0) {
        kw_ks_key_clear(key);
        kw_ks_names_free(names);
    }
    free(key_path);
    free(crt_path);
    return rc;
}

int kw_ks_key_from_token(kw_ks_p11_found_t *f, kw_ks_key_t *key, kw_ks_names_t *names,
                         uint8_t cert_ski[KW_SKI_LEN], int *has_cert_ski, char *err, size_t errlen)
{
    key->pkey = f->pub;
    key->backend = &kw_ks_backend_pkcs11;
    key->priv = f->key;
    key->name = f->name;
    f->pub = NULL;
    f->key = NULL;
    f->name = NULL;
    int rc = key->pkey != NULL && key->priv != NULL && key->name != NULL ? 0 : KW_EINVAL;
    if (rc == 0)
        rc = classify_key(key, err, errlen);
    if (rc == 0 && kw_keyid_from_pkey(key->pkey, key->digest, key->ski) != 0) {
        snprintf(err, errlen, "cannot compute the key id");
        rc = KW_ECRYPTO;
    }
    if (rc == 0)
        key->max_out = (size_t)EVP_PKEY_get_size(key->pkey);
    if (rc == 0 && f->cert_der != NULL) {
        const unsigned char *p = f->cert_der;
        X509 *leaf = d2i_X509(NULL, &p, (long)f->cert_der_len);
        rc = leaf != NULL
                 ? check_leaf(key, leaf, "on the token", names, cert_ski, has_cert_ski, err, errlen)
                 : KW_ECRYPTO;
        if (leaf == NULL)
            snprintf(err, errlen, "its certificate on the token is not readable X.509");
        X509_free(leaf);
        ERR_clear_error();
    }
    if (rc == 0 && f->cert_der != NULL) {
        key->chain_der = f->cert_der;
        key->chain_der_len = f->cert_der_len;
        f->cert_der = NULL;
    }
    if (rc != 0) {
        kw_ks_key_clear(key);
        kw_ks_names_free(names);
    }
    return rc;
}

void kw_ks_key_clear(kw_ks_key_t *key)
{
    if (key->backend != NULL)
        key->backend->key_free(key->priv);
    EVP_PKEY_free(key->pkey);
    free(key->name);
    free(key->chain_der);
    memset(key, 0, sizeof(*key));
}

void kw_ks_names_free(kw_ks_names_t *names)
{
    kw_strlist_free(&names->v, &names->n);
}
