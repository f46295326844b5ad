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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "keyward/protocol.h"
#include "kw_tool.h"

/* Sends msg, waits for the reply with the same id, prints the result line. */
static void call(SSL *ssl, kw_msg_t *msg)
{
    static uint32_t next_id = 1;
    static uint8_t frame[KW_MAX_FRAME];
    kw_msg_t reply;
    msg->id = next_id++;
    int rc = kw_tool_call(ssl, msg, frame, &reply);
    if (rc == KW_TOOL_EENCODE) {
        printf("error encode\n");
        return;
    }
    if (rc != 0) {
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
    char *hex = kw_tool_hex(reply.payload.ptr, reply.payload.len);
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
    uint8_t *d = dig ? kw_tool_unhex(dig, &dlen) : NULL;
    uint8_t *p = pay ? kw_tool_unhex(pay, &plen) : NULL;
    uint8_t *e = ext ? kw_tool_unhex(ext, &elen) : NULL;
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
    static const char usage[] =
        "usage: kw_session --server HOST:PORT --cert F --key F --ca F < commands";
    static const struct option opts[] = {KW_TOOL_OPTIONS, {NULL, 0, NULL, 0}};
    kw_tool_opts_t t = {0};
    if (kw_tool_getopt(argc, argv, "", opts, &t) != -1)
        kw_tool_die(usage);
    if (t.server == NULL || t.cert == NULL || t.key == NULL || t.ca == NULL)
        kw_tool_die(usage);
    SSL_CTX *ctx = kw_tool_client_ctx(&t);
    int fd = -1;
    SSL *ssl = kw_tool_tls_connect(ctx, &t, "localhost", &fd);
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
