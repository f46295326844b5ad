/*
 * kw_session: one long-lived mutual-TLS KWP connection driven by commands on stdin, one per line,
 * so a test can act on the key server (SIGHUP, new key files) between requests and prove that the
 * SAME connection sees the change. It never reconnects: if the connection drops it prints
 * "closed" and exits 4.
 *
 *   ping                                  -> "pong"
 *   op OPCODE DIGEST_HEX PAYLOAD_HEX [EXTRA_HEX]
 *                                         -> "ok RESULT_HEX" or "error CODE_NAME"
 *   quit
 * At start it prints "connected LOCAL_PORT" once the TLS handshake is done.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "keyward/keyid.h"
#include "keyward/protocol.h"
#include "keyward/tls.h"

static void die(const char *msg)
{
    fprintf(stderr, "kw_session: %s\n", msg);
    exit(1);
}

static int connect_to(const char *server)
{
    char host[256];
    const char *colon = strrchr(server, ':');
    if (colon == NULL || (size_t)(colon - server) >= sizeof(host))
        die("--server HOST:PORT");
    memcpy(host, server, (size_t)(colon - server));
    host[colon - server] = '\0';
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        die("cannot resolve the server");
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0)
        die("cannot connect");
    freeaddrinfo(res);
    return fd;
}

static int read_full(SSL *ssl, uint8_t *buf, size_t len)
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

/* Hex of at most len bytes into a new buffer; NULL on bad hex. */
static uint8_t *unhex(const char *hex, size_t *len)
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

/* Sends msg, waits for the reply with the same id, prints the result line. */
static void call(SSL *ssl, kw_msg_t *msg)
{
    static uint32_t next_id = 1;
    static uint8_t frame[KW_MAX_FRAME];
    size_t len = 0;
    msg->id = next_id++;
    if (kw_msg_encode(msg, 0, frame, sizeof(frame), &len) != 0) {
        printf("error encode\n");
        return;
    }
    if (SSL_write(ssl, frame, (int)len) != (int)len) {
        printf("closed\n");
        exit(4);
    }
    kw_header_t hdr;
    kw_msg_t reply;
    if (read_full(ssl, frame, KW_HEADER_LEN) != 0 ||
        kw_header_parse(frame, KW_HEADER_LEN, &hdr) != 0 ||
        read_full(ssl, frame + KW_HEADER_LEN, hdr.body_len) != 0 ||
        kw_msg_decode(frame + KW_HEADER_LEN, hdr.body_len, hdr.id, &reply) != 0) {
        printf("closed\n");
        exit(4);
    }
    if (reply.opcode == KW_OP_ERROR && reply.payload.len == 1) {
        printf("error %s\n", kw_remote_error_name(reply.payload.ptr[0]));
        return;
    }
    if (reply.opcode == KW_OP_PONG) {
        printf("pong\n");
        return;
    }
    char *hex = malloc(2 * (size_t)reply.payload.len + 1);
    if (hex == NULL)
        die("out of memory");
    kw_hex_encode(reply.payload.ptr, reply.payload.len, hex);
    printf("ok %s\n", hex);
    free(hex);
}

static void command(SSL *ssl, char *line)
{
    char *save = NULL;
    char *verb = strtok_r(line, " \t\r\n", &save);
    kw_msg_t msg;
    memset(&msg, 0, sizeof(msg));
    msg.has_opcode = 1;
    if (verb == NULL)
        return;
    if (strcmp(verb, "quit") == 0)
        exit(0);
    if (strcmp(verb, "ping") == 0) {
        msg.opcode = KW_OP_PING;
        msg.payload = kw_bytes("hi", 2);
        call(ssl, &msg);
        return;
    }
    char *op = strtok_r(NULL, " \t\r\n", &save);
    char *dig = strtok_r(NULL, " \t\r\n", &save);
    char *pay = strtok_r(NULL, " \t\r\n", &save);
    char *ext = strtok_r(NULL, " \t\r\n", &save);
    size_t dlen = 0, plen = 0, elen = 0;
    uint8_t *d = dig ? unhex(dig, &dlen) : NULL;
    uint8_t *p = pay ? unhex(pay, &plen) : NULL;
    uint8_t *e = ext ? unhex(ext, &elen) : NULL;
    if (strcmp(verb, "op") != 0 || op == NULL || d == NULL || p == NULL || (ext && e == NULL)) {
        printf("error usage\n");
    } else {
        msg.opcode = (uint8_t)strtoul(op, NULL, 16);
        msg.digest = kw_bytes(d, dlen);
        msg.payload = kw_bytes(p, plen);
        if (e != NULL)
            msg.extra = kw_bytes(e, elen);
        call(ssl, &msg);
    }
    free(d);
    free(p);
    free(e);
}

int main(int argc, char **argv)
{
    const char *server = NULL, *cert = NULL, *key = NULL, *ca = NULL;
    static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                         {"cert", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"ca", required_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 's')
            server = optarg;
        else if (o == 'c')
            cert = optarg;
        else if (o == 'k')
            key = optarg;
        else if (o == 'a')
            ca = optarg;
        else
            die("usage: kw_session --server HOST:PORT --cert F --key F --ca F < commands");
    }
    if (server == NULL || cert == NULL || key == NULL || ca == NULL)
        die("usage: kw_session --server HOST:PORT --cert F --key F --ca F < commands");
    char err[512];
    SSL_CTX *ctx = kw_tls_client_ctx(NULL, cert, key, ca, err, sizeof(err));
    if (ctx == NULL)
        die(err);
    int fd = connect_to(server);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1)
        die("TLS handshake failed");
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    getsockname(fd, (struct sockaddr *)&local, &llen);
    unsigned port = local.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&local)->sin6_port)
                                                : ntohs(((struct sockaddr_in *)&local)->sin_port);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("connected %u\n", port);
    static char line[4 * KW_MAX_BODY];
    while (fgets(line, sizeof(line), stdin) != NULL)
        command(ssl, line);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return 0;
}
