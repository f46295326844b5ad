/*
 * Fleet session-ticket keys (ticket_keys.h): loading the --ticket-secret (permissions and length
 * checked) and the HKDF-SHA256 derivation of each epoch's 80-byte key through OpenSSL's EVP_KDF.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "keystore/ticket_keys.h"
#include "keyward/error.h"
#include "kw_file.h"

static const char kSalt[] = "keyward ticket keys v1";
static const char kInfo[] = "keyward ticket key";

struct kw_ks_tickets_s {
    uint8_t *secret; /* OPENSSL_malloc'd; cleansed at free */
    size_t len;
    unsigned rotation_s;
};

int kw_ks_tickets_new(const uint8_t *secret, size_t len, unsigned rotation_s, kw_ks_tickets_t **out)
{
    *out = NULL;
    if (secret == NULL || len < KW_KS_TICKET_SECRET_MIN || rotation_s == 0)
        return KW_EINVAL;
    kw_ks_tickets_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return KW_ENOMEM;
    t->secret = OPENSSL_malloc(len);
    if (t->secret == NULL) {
        free(t);
        return KW_ENOMEM;
    }
    memcpy(t->secret, secret, len);
    t->len = len;
    t->rotation_s = rotation_s;
    *out = t;
    return 0;
}

/* Refuses a secret file group or others may read (or write). */
static int check_mode(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read the ticket secret %s: %s", path, strerror(errno));
        return KW_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the ticket secret %s is not a regular file", path);
        return KW_ECONFIG;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "the ticket secret %s is readable or writable by group or others (mode %04o): "
                 "anyone who reads it can decrypt the fleet's resumed sessions; chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return KW_ECONFIG;
    }
    return 0;
}

int kw_ks_tickets_load(const char *path, unsigned rotation_s, kw_ks_tickets_t **out, char *err,
                       size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = check_mode(path, err, errlen);
    if (rc == 0)
        rc = kw_file_read(path, "the ticket secret", KW_KS_TICKET_SECRET_MAX, &buf, &len, err,
                          errlen);
    if (rc == 0 && len < KW_KS_TICKET_SECRET_MIN) {
        snprintf(err, errlen,
                 "the ticket secret %s has %zu bytes; it needs at least %u random bytes "
                 "(head -c 32 /dev/urandom > %s)",
                 path, len, KW_KS_TICKET_SECRET_MIN, path);
        rc = KW_ECONFIG;
    }
    if (rc == 0 && rotation_s == 0) {
        snprintf(err, errlen, "--ticket-rotation-s must be at least 1");
        rc = KW_ECONFIG;
    }
    if (rc == 0)
        rc = kw_ks_tickets_new(buf, len, rotation_s, out);
    if (rc == KW_ENOMEM)
        snprintf(err, errlen, "out of memory reading the ticket secret");
    OPENSSL_clear_free(buf, len);
    return rc;
}

void kw_ks_tickets_free(kw_ks_tickets_t *t)
{
    if (t == NULL)
        return;
    OPENSSL_clear_free(t->secret, t->len);
    free(t);
}

int kw_ks_tickets_same_secret(const kw_ks_tickets_t *a, const kw_ks_tickets_t *b)
{
    return a->len == b->len && CRYPTO_memcmp(a->secret, b->secret, a->len) == 0;
}

unsigned kw_ks_tickets_rotation(const kw_ks_tickets_t *t)
{
    return t->rotation_s;
}

int kw_ks_tickets_derive(const kw_ks_tickets_t *t, uint64_t epoch, uint8_t out[KW_TICKET_KEY_LEN])
{
    uint8_t info[sizeof(kInfo) - 1 + 8];
    memcpy(info, kInfo, sizeof(kInfo) - 1);
    for (int i = 0; i < 8; i++)
        info[sizeof(kInfo) - 1 + (size_t)i] = (uint8_t)(epoch >> (56 - 8 * i));
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (kctx == NULL)
        return KW_ECRYPTO;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, t->secret, t->len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)kSalt, sizeof(kSalt) - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info)),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(kctx, out, KW_TICKET_KEY_LEN, params) == 1;
    EVP_KDF_CTX_free(kctx);
    if (!ok) {
        OPENSSL_cleanse(out, KW_TICKET_KEY_LEN);
        return KW_ECRYPTO;
    }
    return 0;
}

int kw_ks_tickets_set(const kw_ks_tickets_t *t, uint64_t now, kw_ticket_keys_t *out)
{
    uint64_t n = t->rotation_s;
    uint64_t e = now / n;
    memset(out, 0, sizeof(*out));
    out->rotation_s = t->rotation_s;
    out->server_time = now;
    if (e == 0)
        return KW_EINVAL; /* a clock at 1970: no e-1 */
    for (size_t i = 0; i < KW_TICKET_EPOCHS; i++) {
        kw_ticket_key_t *k = &out->keys[i];
        k->epoch = e - 1 + i;
        k->not_before = k->epoch * n;
        k->not_after = (k->epoch + 1) * n;
        if (kw_ks_tickets_derive(t, k->epoch, k->key) != 0) {
            OPENSSL_cleanse(out, sizeof(*out));
            return KW_ECRYPTO;
        }
    }
    return 0;
}
