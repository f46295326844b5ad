/* kw_rawclient's parts: its options, a connection (TLS or plain) and the calls the benchmark mode
 * (bench.c) shares with the single-request modes (main.c). */
#ifndef KW_RAWCLIENT_H
#define KW_RAWCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "keyward/protocol.h"
#include "kw_tool.h"

typedef struct opts_s {
    kw_tool_opts_t t; /* --server --cert --key --ca */
    const char *out_file;
    uint8_t digest[KW_DIGEST_LEN], ski[KW_SKI_LEN];
    int has_digest, has_ski, has_opcode, plain, silent, expect_close, bench, no_wait;
    const char *sni;
    uint8_t opcode;
    uint8_t *payload, *extra, *raw;
    size_t payload_len, extra_len, raw_len;
    int has_payload, has_extra;
    size_t pad;
    long count, inflight, connections, timeout_ms, expect_error;
    double seconds;
    uint32_t id;
    int hops;       /* KW_TAG_HOPS value, -1: no item */
    uint8_t ip[16]; /* client IP item (tag 0x03) */
    size_t ip_len;  /* 0: no item */
} opts_t;

typedef struct conn_s {
    int fd;
    SSL *ssl;
} conn_t;

/* Opens a connection to --server (TLS unless --plain). 0, or -1 when the handshake is refused. */
int conn_open(const opts_t *o, SSL_CTX *ctx, conn_t *c);
void conn_close(conn_t *c);
int conn_write(conn_t *c, const uint8_t *buf, size_t len);
/* Reads what is there (up to cap): the count, 0 at close, -1 on error. */
int conn_read(conn_t *c, uint8_t *buf, size_t cap);
/* Encodes the request the options describe, with id, into out (KW_MAX_FRAME bytes). */
size_t build_frame(const opts_t *o, uint32_t id, uint8_t *out);

/* --bench: N requests in flight on each of M connections for S seconds (bench.c). */
int run_bench(const opts_t *o, SSL_CTX *ctx);

#endif /* KW_RAWCLIENT_H */
