/*
 * kw_tool: what the test tools in tests/integration/tools/ share: their common command-line
 * options (--server --cert --key --ca --key-cert), connecting to HOST:PORT, the mutual-TLS
 * handshake, whole-frame KWP request/reply over a blocking connection, site certificates (key id
 * and public key), signature checks and hex. Errors that end a tool print "<tool>: <reason>" on
 * stderr (the tool's name is the program's name).
 */
#ifndef KW_TOOL_H
#define KW_TOOL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "keyward/client.h"
#include "keyward/keyid.h"
#include "keyward/protocol.h"

/* kw_tool_call's failures. */
#define KW_TOOL_EENCODE (-1) /* the request does not encode (too big) */
#define KW_TOOL_ECLOSED (-2) /* writing or reading failed: connection closed or broken */
#define KW_TOOL_EREPLY  (-3) /* the reply does not decode */

/* The options every TLS tool shares (strings point into argv). */
typedef struct kw_tool_opts_s {
    const char *server;   /* --server HOST:PORT (client tools: a comma list) */
    const char *cert;     /* --cert: this client's certificate */
    const char *key;      /* --key: its private key */
    const char *ca;       /* --ca: CA of the key server's certificate */
    const char *key_cert; /* --key-cert: a site certificate naming the key to use */
} kw_tool_opts_t;

/* getopt_long entries of kw_tool_opts_t (kw_tool_getopt handles them). */
#define KW_TOOL_OPTIONS                                                                            \
    {"server", 1, NULL, 's'}, {"cert", 1, NULL, 'c'}, {"key", 1, NULL, 'k'}, {"ca", 1, NULL, 'a'}, \
    {                                                                                              \
        "key-cert", 1, NULL, 'K'                                                                   \
    }

/* getopt_long that stores the KW_TOOL_OPTIONS it meets in o. Returns the next other option
 * (optarg set; '?' for an unknown one), or -1 at the end. */
int kw_tool_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
                   kw_tool_opts_t *o);

/* One of a tool's own options, --name: a whole number into *u, a number into *d, a text into *s
 * (pointing into argv), or, with none of these, a flag that sets *flag to 1. A table of them ends
 * with a NULL name. */
typedef struct kw_tool_arg_s {
    const char *name;
    unsigned *u;
    double *d;
    const char **s;
    int *flag;
} kw_tool_arg_t;

/* Reads the whole command line: the KW_TOOL_OPTIONS into o, the tool's own options by args.
 * Exits 2 with usage on stderr on an unknown option or a value that is not a number. */
void kw_tool_parse(int argc, char **argv, const kw_tool_arg_t *args, kw_tool_opts_t *o,
                   const char *usage);

/* Prints "<tool>: msg" on stderr and exits with status 1. */
void kw_tool_die(const char *msg) __attribute__((noreturn));

/* Monotonic clock, in seconds. */
double kw_tool_now(void);

/* A TCP connection to HOST:PORT ("[V6ADDR]:PORT" too). Exits 1 when server is not such an address
 * or does not resolve, and with connect_status when the connection fails. Returns the socket. */
int kw_tool_connect(const char *server, int connect_status);

/* The mutual-TLS client context of kw_tls_client_ctx (cert and key may be NULL: no client
 * certificate). Exits 1 with the reason on failure. Caller frees. */
SSL_CTX *kw_tool_client_ctx(const kw_tool_opts_t *o);

/* Blocking TLS client handshake over fd, sending sni when not NULL. Returns the connection
 * (caller frees; fd stays the caller's), or NULL with the reason in the OpenSSL error queue. */
SSL *kw_tool_handshake(SSL_CTX *ctx, int fd, const char *sni);

/* kw_tool_connect + kw_tool_handshake to o->server; exits 1 (printing the OpenSSL errors) when the
 * handshake fails. Sets *fd. */
SSL *kw_tool_tls_connect(SSL_CTX *ctx, const kw_tool_opts_t *o, const char *sni, int *fd);

/* Reads exactly len bytes. Returns 0, or -1 when the connection closed or failed. */
int kw_tool_read_full(SSL *ssl, uint8_t *buf, size_t len);

/* One request and its reply on a blocking connection: encodes msg into buf (KW_MAX_FRAME
 * bytes), writes it, reads the reply frame into buf and decodes it into reply (its items point
 * into buf; reply->id is the reply's id). Returns 0 or a KW_TOOL_E* code. */
int kw_tool_call(SSL *ssl, const kw_msg_t *msg, uint8_t *buf, kw_msg_t *reply);

/* m as a request to sign the SHA-256 digest dgst (32 bytes) with the key whose id is id, by opcode
 * (e.g. KW_OP_ECDSA_SIGN_SHA256); m points at id and dgst. */
void kw_tool_sign_msg(kw_msg_t *m, uint8_t opcode, const uint8_t *id, const uint8_t *dgst);

/* The public key of a PEM certificate file (caller frees), and its key id (SHA-256 of the SPKI)
 * in digest when digest is not NULL. NULL when the file is not such a certificate. */
EVP_PKEY *kw_tool_cert_key(const char *path, uint8_t digest[KW_DIGEST_LEN]);

/* 1 when sig is pub's valid signature over the digest dgst (EVP_PKEY_verify), else 0. */
int kw_tool_verify(EVP_PKEY *pub, const uint8_t *sig, size_t sig_len, const uint8_t *dgst,
                   size_t dgst_len);

/* A new buffer (caller frees) with the bytes of hex, *len of them; NULL when hex is not hex. */
uint8_t *kw_tool_unhex(const char *hex, size_t *len);

/* A new string (caller frees) with the hex of len bytes. Exits 1 when out of memory. */
char *kw_tool_hex(const uint8_t *buf, size_t len);

/* A libkeyward client for o (server list, identity, CA) with timeout_ms (0: the default).
 * Prints the reason and returns -1 on failure, else 0. */
int kw_tool_client_new(const kw_tool_opts_t *o, unsigned timeout_ms, kw_client_t **out);

#endif /* KW_TOOL_H */
