/*
 * Key identifiers (include/keyward/keyid.h): SHA-256 of the SubjectPublicKeyInfo DER, and the
 * RFC 5280 method-1 SKI (SHA-1 of the subjectPublicKey BIT STRING contents, i.e. without the tag,
 * length and unused-bits octet), plus the hex and "sha256:"/"ski:" text forms.
 */
#include "keyward/keyid.h"
#include "kw_hex.h"

#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "kw_guard.h"

/* SHA-1 over the subjectPublicKey bits of the SPKI DER in der. The DER is read as plain ASN.1
 * (SEQUENCE { AlgorithmIdentifier, BIT STRING }): d2i_X509_PUBKEY would also decode the key, and
 * OpenSSL 3.0 sets up a decoder for that on every call, the dearest step of loading a key. */
static int ski_from_spki(const uint8_t *der, size_t der_len, uint8_t ski[KW_SKI_LEN])
{
    const unsigned char *p = der;
    int rc = KW_ECRYPTO;
    ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)der_len);
    KW_ENSURE(seq != NULL, KW_ECRYPTO);
    const ASN1_TYPE *alg = sk_ASN1_TYPE_num(seq) == 2 ? sk_ASN1_TYPE_value(seq, 0) : NULL;
    const ASN1_TYPE *bits = alg != NULL ? sk_ASN1_TYPE_value(seq, 1) : NULL;
    if (alg != NULL && alg->type == V_ASN1_SEQUENCE && bits != NULL &&
        bits->type == V_ASN1_BIT_STRING && ASN1_STRING_length(bits->value.bit_string) > 0 &&
        EVP_Digest(ASN1_STRING_get0_data(bits->value.bit_string),
                   (size_t)ASN1_STRING_length(bits->value.bit_string), ski, NULL, EVP_sha1(),
                   NULL) == 1)
        rc = 0;
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return rc;
}

int kw_keyid_from_pkey(const EVP_PKEY *pkey, uint8_t digest[KW_DIGEST_LEN], uint8_t ski[KW_SKI_LEN])
{
    unsigned char *der = NULL;
    int rc = 0;
    KW_ENSURE(pkey != NULL, KW_EINVAL);
    int der_len = i2d_PUBKEY(pkey, &der);
    KW_ENSURE(der_len > 0 && der != NULL, KW_ECRYPTO);
    /* either output may be NULL when the caller needs only the other */
    if (digest != NULL && EVP_Digest(der, (size_t)der_len, digest, NULL, EVP_sha256(), NULL) != 1)
        rc = KW_ECRYPTO;
    if (rc == 0 && ski != NULL)
        rc = ski_from_spki(der, (size_t)der_len, ski);
    OPENSSL_free(der);
    return rc;
}

/* Copies hex digits of text into buf, dropping ':' separators as `openssl x509 -text` prints
 * them ("AB:CD:..."). Returns 0, or KW_EINVAL when more than cap-1 characters remain. */
static int strip_colons(const char *text, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *text != '\0'; text++) {
        if (*text == ':')
            continue;
        KW_ENSURE(n + 1 < cap, KW_EINVAL);
        buf[n++] = *text;
    }
    buf[n] = '\0';
    return 0;
}

int kw_keyid_parse(const char *text, kw_keyid_kind_t *kind, uint8_t out[KW_DIGEST_LEN])
{
    char hex[2 * KW_DIGEST_LEN + 1];
    size_t len;
    kw_keyid_kind_t k;
    KW_ENSURE(text != NULL && kind != NULL && out != NULL, KW_EINVAL);
    if (strncasecmp(text, "sha256", 6) == 0 && (text[6] == ':' || text[6] == '=')) {
        k = KW_KEYID_SHA256;
        len = KW_DIGEST_LEN;
        text += 7;
    } else if (strncasecmp(text, "ski", 3) == 0 && (text[3] == ':' || text[3] == '=')) {
        k = KW_KEYID_SKI;
        len = KW_SKI_LEN;
        text += 4;
    } else {
        return KW_EINVAL;
    }
    KW_GUARD(strip_colons(text, hex, sizeof(hex)));
    uint8_t tmp[KW_DIGEST_LEN];
    KW_GUARD_AS(kw_hex_decode(hex, tmp, len), KW_EINVAL);
    memset(out, 0, KW_DIGEST_LEN);
    memcpy(out, tmp, len);
    *kind = k;
    return 0;
}
