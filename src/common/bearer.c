/*
 * Bearer tokens of the metrics endpoints (kw_bearer.h): the token file read once, the token kept
 * as its SHA-256, requests compared with CRYPTO_memcmp over the hashes.
 */
#include "kw_bearer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keyward/error.h"

int kw_bearer_load(kw_bearer_t *b, const char *path, char *err, size_t errlen)
{
    char line[KW_BEARER_MAX + 2] = "";
    memset(b, 0, sizeof(*b));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "--metrics-token-file %s: %s", path, strerror(errno));
        return KW_EIO;
    }
    int ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    size_t len = ok ? strlen(line) : 0;
    while (len > 0 && strchr(" \t\r\n", line[len - 1]) != NULL)
        line[--len] = '\0';
    const char *tok = line + strspn(line, " \t");
    size_t tlen = strlen(tok);
    unsigned int n = 0;
    int rc = 0;
    if (tlen < KW_BEARER_MIN || tlen > KW_BEARER_MAX) {
        snprintf(err, errlen,
                 "--metrics-token-file %s: the first line must hold a token of %d to %d "
                 "characters (e.g. openssl rand -hex 32)",
                 path, KW_BEARER_MIN, KW_BEARER_MAX);
        rc = KW_ECONFIG;
    } else if (EVP_Digest(tok, tlen, b->hash, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        snprintf(err, errlen, "--metrics-token-file: cannot hash the token");
        rc = KW_ECONFIG;
    }
    OPENSSL_cleanse(line, sizeof(line));
    b->set = rc == 0;
    return rc;
}

int kw_bearer_allows(const kw_bearer_t *b, const char *authorization)
{
    if (!b->set)
        return 1;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    uint8_t got[32];
    unsigned int n = 0;
    const char *tok = authorization + 7;
    if (EVP_Digest(tok, strlen(tok), got, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return 0;
    return CRYPTO_memcmp(got, b->hash, 32) == 0;
}
