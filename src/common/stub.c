/*
 * Key stub codec (include/keyward/stub.h): the small DER structure an edge keeps instead of a
 * private key, and its PEM form. Parsing goes through the bounded reader; only definite-length
 * DER with lengths of at most two bytes is accepted (a stub is far below 64 KiB).
 */
#include "keyward/stub.h"

#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_reader.h"
#include "kw_writer.h"

#define DER_SEQUENCE     0x30
#define DER_INTEGER      0x02
#define DER_OCTET_STRING 0x04
#define DER_UTF8STRING   0x0c

/* Reads one tag + definite length; *len is the content length, bounded by what remains. */
static int der_header(kw_reader_t *r, uint8_t want_tag, size_t *len)
{
    uint8_t tag;
    uint8_t b;
    KW_GUARD_AS(kw_reader_u8(r, &tag), KW_EFORMAT);
    KW_ENSURE(tag == want_tag, KW_EFORMAT);
    KW_GUARD_AS(kw_reader_u8(r, &b), KW_EFORMAT);
    if (b < 0x80) {
        *len = b;
    } else if (b == 0x81) {
        KW_GUARD_AS(kw_reader_u8(r, &b), KW_EFORMAT);
        KW_ENSURE(b >= 0x80, KW_EFORMAT); /* DER: shortest form */
        *len = b;
    } else if (b == 0x82) {
        uint16_t v;
        KW_GUARD_AS(kw_reader_u16(r, &v), KW_EFORMAT);
        KW_ENSURE(v >= 0x100, KW_EFORMAT);
        *len = v;
    } else {
        return KW_EFORMAT;
    }
    KW_ENSURE(*len <= kw_reader_remaining(r), KW_EFORMAT);
    return 0;
}

static int der_put_header(kw_writer_t *w, uint8_t tag, size_t len)
{
    KW_GUARD(kw_writer_u8(w, tag));
    if (len < 0x80)
        return kw_writer_u8(w, (uint8_t)len);
    if (len <= 0xff) {
        KW_GUARD(kw_writer_u8(w, 0x81));
        return kw_writer_u8(w, (uint8_t)len);
    }
    KW_ENSURE(len <= 0xffff, KW_ETOOBIG);
    KW_GUARD(kw_writer_u8(w, 0x82));
    return kw_writer_u16(w, (uint16_t)len);
}

static size_t der_header_len(size_t len)
{
    return len < 0x80 ? 2 : (len <= 0xff ? 3 : 4);
}

int kw_stub_encode(const uint8_t digest[KW_DIGEST_LEN], const uint8_t *spki, size_t spki_len,
                   uint8_t *out, size_t cap, size_t *out_len)
{
    size_t fmt_len = strlen(KW_STUB_FORMAT);
    size_t body;
    kw_writer_t w;
    KW_ENSURE(digest != NULL && spki != NULL && spki_len != 0 && out_len != NULL, KW_EINVAL);
    KW_ENSURE(spki_len <= KW_STUB_MAX_DER && spki[0] == DER_SEQUENCE, KW_EINVAL);
    body = 2 + fmt_len + 3 + 2 + KW_DIGEST_LEN + spki_len;
    *out_len = der_header_len(body) + body;
    KW_ENSURE(out != NULL && cap >= *out_len, KW_ETOOBIG);
    kw_writer_init(&w, out, cap);
    KW_GUARD(der_put_header(&w, DER_SEQUENCE, body));
    KW_GUARD(der_put_header(&w, DER_UTF8STRING, fmt_len));
    KW_GUARD(kw_writer_bytes(&w, KW_STUB_FORMAT, fmt_len));
    KW_GUARD(der_put_header(&w, DER_INTEGER, 1));
    KW_GUARD(kw_writer_u8(&w, KW_STUB_VERSION));
    KW_GUARD(der_put_header(&w, DER_OCTET_STRING, KW_DIGEST_LEN));
    KW_GUARD(kw_writer_bytes(&w, digest, KW_DIGEST_LEN));
    KW_GUARD(kw_writer_bytes(&w, spki, spki_len));
    return kw_writer_len(&w) == *out_len ? 0 : KW_EINVAL;
}

/* The fields inside the outer SEQUENCE. */
static int decode_fields(kw_reader_t *r, kw_stub_t *out)
{
    size_t len;
    const uint8_t *p;
    uint8_t version;
    size_t fmt_len = strlen(KW_STUB_FORMAT);
    KW_GUARD(der_header(r, DER_UTF8STRING, &len));
    KW_ENSURE(len == fmt_len, KW_EFORMAT);
    KW_GUARD_AS(kw_reader_take(r, len, &p), KW_EFORMAT);
    KW_ENSURE(memcmp(p, KW_STUB_FORMAT, fmt_len) == 0, KW_EFORMAT);
    KW_GUARD(der_header(r, DER_INTEGER, &len));
    KW_ENSURE(len == 1, KW_EFORMAT);
    KW_GUARD_AS(kw_reader_u8(r, &version), KW_EFORMAT);
    KW_ENSURE(version == KW_STUB_VERSION, KW_EFORMAT);
    KW_GUARD(der_header(r, DER_OCTET_STRING, &len));
    KW_ENSURE(len == KW_DIGEST_LEN, KW_EFORMAT);
    KW_GUARD_AS(kw_reader_copy(r, out->digest, KW_DIGEST_LEN), KW_EFORMAT);
    /* spki: one SEQUENCE that ends exactly where the stub ends */
    size_t start = kw_reader_offset(r);
    KW_GUARD(der_header(r, DER_SEQUENCE, &len));
    KW_ENSURE(len == kw_reader_remaining(r), KW_EFORMAT);
    KW_GUARD_AS(kw_reader_skip(r, len), KW_EFORMAT);
    out->spki_len = kw_reader_offset(r) - start;
    return (int)start;
}

int kw_stub_decode(const uint8_t *der, size_t der_len, kw_stub_t *out)
{
    kw_reader_t outer;
    kw_reader_t inner;
    size_t len;
    const uint8_t *body;
    int start;
    KW_ENSURE(der != NULL && out != NULL && der_len <= KW_STUB_MAX_DER, KW_EFORMAT);
    memset(out, 0, sizeof(*out));
    kw_reader_init(&outer, der, der_len);
    KW_GUARD(der_header(&outer, DER_SEQUENCE, &len));
    KW_ENSURE(len == kw_reader_remaining(&outer), KW_EFORMAT);
    KW_GUARD_AS(kw_reader_take(&outer, len, &body), KW_EFORMAT);
    kw_reader_init(&inner, body, len);
    start = decode_fields(&inner, out);
    if (start < 0) {
        memset(out, 0, sizeof(*out));
        return KW_EFORMAT;
    }
    out->spki = body + start;
    return 0;
}

int kw_stub_write_pem(BIO *out, const EVP_PKEY *pub)
{
    uint8_t digest[KW_DIGEST_LEN];
    unsigned char *spki = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int rc;
    KW_ENSURE(out != NULL && pub != NULL, KW_EINVAL);
    int spki_len = i2d_PUBKEY(pub, &spki);
    KW_ENSURE(spki_len > 0, KW_ECRYPTO);
    rc = kw_keyid_from_pkey(pub, digest, NULL);
    if (rc == 0) {
        (void)kw_stub_encode(digest, spki, (size_t)spki_len, NULL, 0, &der_len);
        der = OPENSSL_malloc(der_len > 0 ? der_len : 1);
        rc = der == NULL ? KW_ENOMEM
                         : kw_stub_encode(digest, spki, (size_t)spki_len, der, der_len, &der_len);
    }
    if (rc == 0 && PEM_write_bio(out, KW_STUB_PEM_LABEL, "", der, (long)der_len) <= 0)
        rc = KW_EIO;
    OPENSSL_free(der);
    OPENSSL_free(spki);
    return rc;
}
