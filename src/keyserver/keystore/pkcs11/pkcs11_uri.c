/*
 * RFC 7512 PKCS#11 URI parser: splits the path at ';' and the query at '&', percent-decodes each
 * value and stores the attributes the key server understands.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keyward/error.h"
#include "keystore/pkcs11/pkcs11_uri_internal.h"
#include "kw_hex.h"
#include "kw_num.h"

#define URI_SCHEME    "pkcs11:"
#define URI_VALUE_MAX 4096

/* Percent-decodes s[0..len) into out (room for len bytes). Returns the decoded length or -1. */
static long pct_decode(const char *s, size_t len, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[n++] = (uint8_t)s[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        int hi = kw_hex_digit(s[i + 1]);
        int lo = kw_hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return (long)n;
}

/* Sets *slot to the decoded value as a string (refusing embedded NULs and duplicates). */
static int set_string(char **slot, const char *name, const char *v, size_t len, char *err,
                      size_t errlen)
{
    if (*slot != NULL) {
        snprintf(err, errlen, "pkcs11 URI: attribute '%s' given twice", name);
        return KW_EINVAL;
    }
    char *s = malloc(len + 1);
    if (s == NULL)
        return KW_ENOMEM;
    long n = pct_decode(v, len, (uint8_t *)s);
    if (n < 0 || memchr(s, 0, (size_t)n) != NULL) {
        OPENSSL_clear_free(s, len + 1);
        snprintf(err, errlen, "pkcs11 URI: bad percent-encoding in '%s'", name);
        return KW_EINVAL;
    }
    s[n] = '\0';
    *slot = s;
    return 0;
}

static int set_id(kw_ks_p11_uri_t *uri, const char *v, size_t len, char *err, size_t errlen)
{
    uint8_t buf[URI_VALUE_MAX];
    long n = pct_decode(v, len, buf);
    if (uri->has_id || n <= 0 || (size_t)n > KW_P11_ID_MAX) {
        snprintf(err, errlen,
                 "pkcs11 URI: 'id' must be given once, 1 to %d bytes, "
                 "percent-encoded (e.g. id=%%01%%02)",
                 KW_P11_ID_MAX);
        return KW_EINVAL;
    }
    memcpy(uri->id, buf, (size_t)n);
    uri->id_len = (size_t)n;
    uri->has_id = 1;
    return 0;
}

static int set_slot_id(kw_ks_p11_uri_t *uri, const char *v, size_t len, char *err, size_t errlen)
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf) || uri->has_slot_id) {
        snprintf(err, errlen, "pkcs11 URI: bad 'slot-id'");
        return KW_EINVAL;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    uint64_t id = 0;
    if (kw_parse_u64(buf, ULONG_MAX, &id) != 0) {
        snprintf(err, errlen, "pkcs11 URI: 'slot-id' must be a decimal number");
        return KW_EINVAL;
    }
    uri->slot_id = (unsigned long)id;
    uri->has_slot_id = 1;
    return 0;
}

static int path_attr(kw_ks_p11_uri_t *uri, const char *name, size_t nlen, const char *v,
                     size_t vlen, char *err, size_t errlen)
{
    static const char *const strs[] = {"token", "manufacturer", "serial",
                                       "model", "object",       "type"};
    char **slots[] = {&uri->token, &uri->manufacturer, &uri->serial,
                      &uri->model, &uri->object,       &uri->type};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (strlen(strs[i]) == nlen && memcmp(strs[i], name, nlen) == 0)
            return set_string(slots[i], strs[i], v, vlen, err, errlen);
    }
    if (nlen == 2 && memcmp(name, "id", 2) == 0)
        return set_id(uri, v, vlen, err, errlen);
    if (nlen == 7 && memcmp(name, "slot-id", 7) == 0)
        return set_slot_id(uri, v, vlen, err, errlen);
    /* library-*, slot-description, slot-manufacturer: accepted, not used for selection. */
    if ((nlen > 8 && memcmp(name, "library-", 8) == 0) ||
        (nlen == 16 && memcmp(name, "slot-description", 16) == 0) ||
        (nlen == 17 && memcmp(name, "slot-manufacturer", 17) == 0))
        return 0;
    snprintf(err, errlen,
             "pkcs11 URI: unknown attribute '%.*s' (known: token, manufacturer, "
             "serial, model, object, id, type, slot-id)",
             (int)(nlen > 64 ? 64 : nlen), name);
    return KW_EINVAL;
}

static int query_attr(kw_ks_p11_uri_t *uri, const char *name, size_t nlen, const char *v,
                      size_t vlen, char *err, size_t errlen)
{
    if (nlen == 11 && memcmp(name, "module-path", 11) == 0)
        return set_string(&uri->module_path, "module-path", v, vlen, err, errlen);
    if (nlen == 10 && memcmp(name, "pin-source", 10) == 0)
        return set_string(&uri->pin_source, "pin-source", v, vlen, err, errlen);
    if (nlen == 9 && memcmp(name, "pin-value", 9) == 0)
        return set_string(&uri->pin_value, "pin-value", v, vlen, err, errlen);
    return 0; /* RFC 7512 §2.4: unknown query attributes may be ignored */
}

/* Parses the attributes of s[0..len) separated by sep. */
static int parse_part(kw_ks_p11_uri_t *uri, const char *s, size_t len, char sep, int query,
                      char *err, size_t errlen)
{
    size_t pos = 0;
    while (pos < len) {
        const char *a = s + pos;
        const char *end = memchr(a, sep, len - pos);
        size_t alen = end != NULL ? (size_t)(end - a) : len - pos;
        pos += alen + 1;
        if (alen == 0)
            continue;
        const char *eq = memchr(a, '=', alen);
        if (eq == NULL || eq == a || alen - (size_t)(eq - a) - 1 > URI_VALUE_MAX) {
            snprintf(err, errlen, "pkcs11 URI: expected NAME=VALUE, got '%.*s'",
                     (int)(alen > 64 ? 64 : alen), a);
            return KW_EINVAL;
        }
        size_t nlen = (size_t)(eq - a);
        size_t vlen = alen - nlen - 1;
        int rc = query ? query_attr(uri, a, nlen, eq + 1, vlen, err, errlen)
                       : path_attr(uri, a, nlen, eq + 1, vlen, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int kw_ks_p11_uri_parse(const char *text, kw_ks_p11_uri_t *uri, char *err, size_t errlen)
{
    memset(uri, 0, sizeof(*uri));
    size_t slen = strlen(URI_SCHEME);
    if (text == NULL || strncmp(text, URI_SCHEME, slen) != 0) {
        snprintf(err, errlen, "pkcs11 URI must start with 'pkcs11:'");
        return KW_EINVAL;
    }
    const char *path = text + slen;
    const char *q = strchr(path, '?');
    size_t plen = q != NULL ? (size_t)(q - path) : strlen(path);
    int rc = parse_part(uri, path, plen, ';', 0, err, errlen);
    if (rc == 0 && q != NULL)
        rc = parse_part(uri, q + 1, strlen(q + 1), '&', 1, err, errlen);
    if (rc == 0 && uri->type != NULL && strcmp(uri->type, "private") != 0) {
        snprintf(err, errlen, "pkcs11 URI: type=%s: only private keys are served (type=private)",
                 uri->type);
        rc = KW_EINVAL;
    }
    if (rc != 0)
        kw_ks_p11_uri_free(uri);
    return rc;
}

void kw_ks_p11_uri_free(kw_ks_p11_uri_t *uri)
{
    free(uri->token);
    free(uri->manufacturer);
    free(uri->serial);
    free(uri->model);
    free(uri->object);
    free(uri->type);
    free(uri->module_path);
    free(uri->pin_source);
    if (uri->pin_value != NULL)
        OPENSSL_clear_free(uri->pin_value, strlen(uri->pin_value));
    memset(uri, 0, sizeof(*uri));
}
