/*
 * PROXY protocol v2 encoder: signature, version/command, family, length, the address block and
 * TLVs, written through kw_writer (bounds-checked) so nothing can run past the buffer.
 */
#include "proxy_ppv2.h"

#include <netinet/in.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_writer.h"

const uint8_t kw_ppv2_signature[KW_PPV2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A kw_writer that remembers a write that did not fit, so the encoder checks once at the end. */
typedef struct cursor {
    kw_writer_t w;
    int overflow;
} cursor_t;

static void put(cursor_t *c, const void *data, size_t n)
{
    c->overflow |= kw_writer_bytes(&c->w, data, n) != 0;
}

static void put_u8(cursor_t *c, uint8_t v)
{
    c->overflow |= kw_writer_u8(&c->w, v) != 0;
}

static void put_u16(cursor_t *c, uint16_t v)
{
    c->overflow |= kw_writer_u16(&c->w, v) != 0;
}

static void put_tlv(cursor_t *c, uint8_t type, const void *value, size_t n)
{
    put_u8(c, type);
    put_u16(c, (uint16_t)n);
    put(c, value, n);
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack [::] socket reports for an
 * IPv4 peer) as the IPv4 address it is, in *tmp; any other address unchanged. */
static const struct sockaddr *unmap(const struct sockaddr *sa, struct sockaddr_in *tmp)
{
    if (sa == NULL || sa->sa_family != AF_INET6) {
        return sa;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        return sa;
    }
    memset(tmp, 0, sizeof(*tmp));
    tmp->sin_family = AF_INET;
    tmp->sin_port = in6->sin6_port;
    memcpy(&tmp->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
    return (const struct sockaddr *)tmp;
}

/* Address block; returns the family/protocol byte. Ports are already in network order. IPv4
 * clients of a dual-stack listener go out as IPv4 (0x11), so IPv4 allow-lists and real-IP
 * settings behind the proxy see them as such. */
static uint8_t put_addresses(cursor_t *c, const struct sockaddr *src, const struct sockaddr *dst)
{
    struct sockaddr_in src4, dst4;
    const struct sockaddr *s4 = unmap(src, &src4);
    const struct sockaddr *d4 = unmap(dst, &dst4);
    if (s4 != NULL && d4 != NULL && s4->sa_family == AF_INET && d4->sa_family == AF_INET) {
        src = s4;
        dst = d4;
    }
    if (src != NULL && dst != NULL && src->sa_family == AF_INET && dst->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
        put(c, &s->sin_addr, 4);
        put(c, &d->sin_addr, 4);
        put(c, &s->sin_port, 2);
        put(c, &d->sin_port, 2);
        return 0x11; /* TCP over IPv4 */
    }
    if (src != NULL && dst != NULL && src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)dst;
        put(c, &s->sin6_addr, 16);
        put(c, &d->sin6_addr, 16);
        put(c, &s->sin6_port, 2);
        put(c, &d->sin6_port, 2);
        return 0x21; /* TCP over IPv6 */
    }
    return 0x00; /* AF_UNSPEC */
}

static void put_ssl_tlv(cursor_t *c, const kw_ppv2_info_t *info)
{
    size_t vlen = strlen(info->tls_version);
    size_t clen = info->cipher != NULL ? strlen(info->cipher) : 0;
    size_t len = 1 + 4 + 3 + vlen + (info->cipher != NULL ? 3 + clen : 0);
    const uint8_t verify[4] = {0, 0, 0, 1}; /* non-zero: no client certificate verified */
    put_u8(c, KW_PPV2_TYPE_SSL);
    put_u16(c, (uint16_t)len);
    put_u8(c, KW_PPV2_CLIENT_SSL);
    put(c, verify, sizeof(verify));
    put_tlv(c, KW_PPV2_SUBTYPE_SSL_VERSION, info->tls_version, vlen);
    if (info->cipher != NULL) {
        put_tlv(c, KW_PPV2_SUBTYPE_SSL_CIPHER, info->cipher, clen);
    }
}

int kw_ppv2_encode(const kw_ppv2_info_t *info, uint8_t *out, size_t cap, size_t *outlen)
{
    if ((info->alpn != NULL && info->alpn_len > 255) ||
        (info->authority != NULL && strlen(info->authority) > 255) ||
        (info->tls_version != NULL && strlen(info->tls_version) > 64) ||
        (info->cipher != NULL && strlen(info->cipher) > 128)) {
        return KW_EINVAL;
    }
    cursor_t c = {.overflow = 0};
    kw_writer_init(&c.w, out, cap);
    put(&c, kw_ppv2_signature, KW_PPV2_SIG_LEN);
    put_u8(&c, 0x21); /* version 2, command PROXY */
    size_t fam_at = kw_writer_len(&c.w);
    put_u8(&c, 0);
    put_u16(&c, 0); /* family and length, patched below */
    size_t body_at = kw_writer_len(&c.w);
    uint8_t fam = put_addresses(&c, info->src, info->dst);
    if (info->alpn != NULL && info->alpn_len > 0) {
        put_tlv(&c, KW_PPV2_TYPE_ALPN, info->alpn, info->alpn_len);
    }
    if (info->authority != NULL && info->authority[0] != '\0') {
        put_tlv(&c, KW_PPV2_TYPE_AUTHORITY, info->authority, strlen(info->authority));
    }
    if (info->tls_version != NULL) {
        put_ssl_tlv(&c, info);
    }
    if (c.overflow) {
        return KW_ETOOBIG;
    }
    cursor_t head = {.overflow = 0};
    kw_writer_init(&head.w, out + fam_at, 3);
    put_u8(&head, fam);
    put_u16(&head, (uint16_t)(kw_writer_len(&c.w) - body_at));
    *outlen = kw_writer_len(&c.w);
    return 0;
}
