/*
 * kw_tool (kw_tool.h): the code the test tools share: options, connecting, the mutual-TLS
 * handshake, blocking KWP request/reply, site certificates, signature checks and hex.
 */
#include "kw_tool.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kw_addr.h"
#include "kw_clock.h"
#include "kw_hex.h"
#include "kw_tls.h"
#include "kw_num.h"

/* Stores option ch (one of KW_TOOL_OPTIONS) in o. Returns 1 when ch was one of them, else 0. */
static int tool_opt(int ch, const char *arg, kw_tool_opts_t *o)
{
    switch (ch) {
    case 's':
        o->server = arg;
        return 1;
    case 'c':
        o->cert = arg;
        return 1;
    case 'k':
        o->key = arg;
        return 1;
    case 'a':
        o->ca = arg;
        return 1;
    case 'K':
        o->key_cert = arg;
        return 1;
    default:
        return 0;
    }
}

int kw_tool_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
                   kw_tool_opts_t *o)
{
    for (;;) {
        int ch = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (ch == -1 || !tool_opt(ch, optarg, o))
            return ch;
    }
}

/* Stores optarg in the option args[i] names. Returns 0, or -1 when it is not a number. */
static int tool_arg(const kw_tool_arg_t *a, const char *arg)
{
    char *end = NULL;
    if (a->u != NULL)
        return kw_parse_uint(arg, 0, UINT_MAX, a->u) == 0 ? 0 : -1;
    if (a->d != NULL) {
        errno = 0;
        *a->d = strtod(arg, &end);
        return errno == 0 && end != arg && *end == '\0' ? 0 : -1;
    }
    if (a->s != NULL)
        *a->s = arg;
    else
        *a->flag = 1;
    return 0;
}

void kw_tool_parse(int argc, char **argv, const kw_tool_arg_t *args, kw_tool_opts_t *o,
                   const char *usage)
{
    static const struct option common[] = {KW_TOOL_OPTIONS};
    size_t nc = sizeof(common) / sizeof(common[0]);
    size_t n = 0;
    while (args[n].name != NULL)
        n++;
    struct option *lo = calloc(nc + n + 1, sizeof(*lo));
    if (lo == NULL)
        kw_tool_die("out of memory");
    memcpy(lo, common, sizeof(common));
    for (size_t i = 0; i < n; i++) {
        const kw_tool_arg_t *a = &args[i];
        lo[nc + i] = (struct option){a->name, a->flag != NULL ? 0 : 1, NULL, 256 + (int)i};
    }
    for (;;) {
        int ch = kw_tool_getopt(argc, argv, "", lo, o);
        if (ch == -1)
            break;
        if (ch < 256 || (size_t)(ch - 256) >= n || tool_arg(&args[ch - 256], optarg) != 0) {
            fprintf(stderr, "usage: %s\n", usage);
            exit(2);
        }
    }
    free(lo);
}

void kw_tool_die(const char *msg)
{
    fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg);
    exit(1);
}

double kw_tool_now(void)
{
    return (double)kw_clock_ns() / 1e9;
}

int kw_tool_connect(const char *server, int connect_status)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char err[300];
    if (kw_addr_resolve(server, 0, &ss, &sslen, err, sizeof(err)) != 0)
        kw_tool_die(err);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
        fprintf(stderr, "%s: cannot connect to %s: %s\n", program_invocation_short_name, server,
                strerror(errno));
        exit(connect_status);
    }
    return fd;
}

SSL_CTX *kw_tool_client_ctx(const kw_tool_opts_t *o)
{
    char err[512];
    SSL_CTX *ctx = kw_tls_client_ctx(NULL, o->cert, o->key, o->ca, err, sizeof(err));
    if (ctx == NULL)
        kw_tool_die(err);
    return ctx;
}

SSL *kw_tool_handshake(SSL_CTX *ctx, int fd, const char *sni)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
        (sni != NULL && SSL_set_tlsext_host_name(ssl, sni) != 1) || SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

SSL *kw_tool_tls_connect(SSL_CTX *ctx, const kw_tool_opts_t *o, const char *sni, int *fd)
{
    *fd = kw_tool_connect(o->server, 1);
    SSL *ssl = kw_tool_handshake(ctx, *fd, sni);
    if (ssl == NULL) {
        ERR_print_errors_fp(stderr);
        kw_tool_die("TLS handshake failed");
    }
    return ssl;
}

int kw_tool_read_full(SSL *ssl, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        int n = SSL_read(ssl, buf + got, (int)(len - got));
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

int kw_tool_call(SSL *ssl, const kw_msg_t *msg, uint8_t *buf, kw_msg_t *reply)
{
    size_t len = 0;
    kw_header_t h;
    if (kw_msg_encode(msg, 0, buf, KW_MAX_FRAME, &len) != 0)
        return KW_TOOL_EENCODE;
    if (SSL_write(ssl, buf, (int)len) != (int)len)
        return KW_TOOL_ECLOSED;
    if (kw_tool_read_full(ssl, buf, KW_HEADER_LEN) != 0 ||
        kw_header_parse(buf, KW_HEADER_LEN, &h) != 0 ||
        kw_tool_read_full(ssl, buf + KW_HEADER_LEN, h.body_len) != 0)
        return KW_TOOL_ECLOSED;
    if (kw_msg_decode(buf + KW_HEADER_LEN, h.body_len, h.id, reply) != 0)
        return KW_TOOL_EREPLY;
    return 0;
}

void kw_tool_sign_msg(kw_msg_t *m, uint8_t opcode, const uint8_t *id, const uint8_t *dgst)
{
    memset(m, 0, sizeof(*m));
    m->opcode = opcode;
    m->has_opcode = 1;
    m->digest = kw_bytes(id, KW_DIGEST_LEN);
    m->payload = kw_bytes(dgst, 32);
}

EVP_PKEY *kw_tool_cert_key(const char *path, uint8_t digest[KW_DIGEST_LEN])
{
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    EVP_PKEY *pub = x != NULL ? X509_get_pubkey(x) : NULL;
    X509_free(x);
    if (pub != NULL && digest != NULL && kw_keyid_from_pkey(pub, digest, NULL) != 0) {
        EVP_PKEY_free(pub);
        return NULL;
    }
    return pub;
}

int kw_tool_verify(EVP_PKEY *pub, const uint8_t *sig, size_t sig_len, const uint8_t *dgst,
                   size_t dgst_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, sig, sig_len, dgst, dgst_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

uint8_t *kw_tool_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0)
        return NULL;
    uint8_t *out = malloc(n / 2 + 1);
    if (out == NULL || kw_hex_decode(hex, out, n / 2) != 0) {
        free(out);
        return NULL;
    }
    *len = n / 2;
    return out;
}

char *kw_tool_hex(const uint8_t *buf, size_t len)
{
    char *hex = malloc(2 * len + 1);
    if (hex == NULL)
        kw_tool_die("out of memory");
    kw_hex_encode(buf, len, hex);
    return hex;
}

int kw_tool_client_new(const kw_tool_opts_t *o, unsigned timeout_ms, kw_client_t **out)
{
    kw_client_config_t cfg;
    char err[300];
    memset(&cfg, 0, sizeof(cfg));
    cfg.servers = o->server;
    cfg.cert_file = o->cert;
    cfg.key_file = o->key;
    cfg.ca_file = o->ca;
    cfg.timeout_ms = timeout_ms;
    if (kw_client_new(&cfg, out, err, sizeof(err)) != 0) {
        fprintf(stderr, "kw_client_new: %s\n", err);
        return -1;
    }
    return 0;
}
