/*
 * PROXY protocol version 2 header (haproxy's proxy-protocol.txt §2.2): what keyward-proxy sends
 * first on a backend connection when --proxy-protocol is on, so the backend learns the client's
 * address, the SNI (PP2_TYPE_AUTHORITY), the ALPN protocol and the TLS version and cipher.
 */
#ifndef KW_PROXY_PPV2_H
#define KW_PROXY_PPV2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KW_PPV2_SIG_LEN 12
#define KW_PPV2_MAX_LEN 1024 /* our headers never exceed this */

#define KW_PPV2_TYPE_ALPN           0x01
#define KW_PPV2_TYPE_AUTHORITY      0x02
#define KW_PPV2_TYPE_SSL            0x20
#define KW_PPV2_SUBTYPE_SSL_VERSION 0x21
#define KW_PPV2_SUBTYPE_SSL_CIPHER  0x23
#define KW_PPV2_CLIENT_SSL          0x01

extern const uint8_t kw_ppv2_signature[KW_PPV2_SIG_LEN];

typedef struct kw_ppv2_info_s {
    const struct sockaddr *src; /* the client */
    const struct sockaddr *dst; /* the address it connected to */
    const uint8_t *alpn;        /* negotiated protocol or NULL */
    size_t alpn_len;
    const char *authority;   /* SNI or NULL */
    const char *tls_version; /* e.g. "TLSv1.3", or NULL for no SSL TLV */
    const char *cipher;      /* e.g. "TLS_AES_128_GCM_SHA256" or NULL */
} kw_ppv2_info_t;

/* Writes the header into out. A src/dst pair that is not both IPv4 or both IPv6 is sent as
 * AF_UNSPEC (the backend then uses the connection's own addresses). Returns 0, KW_EINVAL for a
 * value too long for its field, or KW_ETOOBIG when cap is too small. */
int kw_ppv2_encode(const kw_ppv2_info_t *info, uint8_t *out, size_t cap, size_t *outlen);

#endif /* KW_PROXY_PPV2_H */
