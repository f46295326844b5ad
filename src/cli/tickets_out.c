/*
 * keyward tickets output (tickets_out.h): the nginx and HAProxy key files and HAProxy's runtime
 * API. Key bytes pass through stack buffers that are cleansed after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cli_common.h"
#include "tickets_out.h"

/* Writes len bytes to path.tmp (0600) and renames it to path, so a reader sees old or new. */
static int write_atomic(const char *path, const void *buf, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        kw_cli_error("%s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        kw_cli_error("cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    ssize_t n = write(fd, buf, len);
    int ok = n == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        kw_cli_error("cannot write %s: %s", path, strerror(ok ? errno : saved));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int kw_tickets_write_nginx(const kw_ticket_keys_t *set, const char *dir)
{
    static const char *const names[KW_TICKET_EPOCHS] = {"previous.key", "current.key", "next.key"};
    static const int order[KW_TICKET_EPOCHS] = {1, 0, 2}; /* current first */
    for (int j = 0; j < KW_TICKET_EPOCHS; j++) {
        int i = order[j];
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path)) {
            kw_cli_error("%s: path too long", dir);
            return -1;
        }
        if (write_atomic(path, set->keys[i].key, KW_TICKET_KEY_LEN) != 0)
            return -1;
    }
    return 0;
}

void kw_tickets_haproxy_b64(const kw_ticket_key_t *k, char *out, size_t cap)
{
    uint8_t hk[KW_TICKET_KEY_LEN]; /* name | AES | HMAC */
    memcpy(hk, k->key, KW_TICKET_NAME_LEN);
    memcpy(hk + KW_TICKET_NAME_LEN, k->key + KW_TICKET_NAME_LEN + KW_TICKET_HMAC_LEN,
           KW_TICKET_AES_LEN);
    memcpy(hk + KW_TICKET_NAME_LEN + KW_TICKET_AES_LEN, k->key + KW_TICKET_NAME_LEN,
           KW_TICKET_HMAC_LEN);
    unsigned char b64[4 * ((KW_TICKET_KEY_LEN + 2) / 3) + 1];
    EVP_EncodeBlock(b64, hk, KW_TICKET_KEY_LEN);
    snprintf(out, cap, "%s", (const char *)b64);
    OPENSSL_cleanse(hk, sizeof(hk));
    OPENSSL_cleanse(b64, sizeof(b64));
}

int kw_tickets_write_haproxy(const kw_ticket_keys_t *set, const char *file)
{
    char text[KW_TICKET_EPOCHS * 120];
    size_t len = 0;
    for (int i = 0; i < KW_TICKET_EPOCHS; i++) {
        char line[120];
        kw_tickets_haproxy_b64(&set->keys[i], line, sizeof(line));
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\n", line);
        OPENSSL_cleanse(line, sizeof(line));
    }
    int rc = write_atomic(file, text, len);
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

int kw_tickets_haproxy_push(const char *sock_path, const char *file, const kw_ticket_key_t *k)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        kw_cli_error("--haproxy-socket %s: path too long", sock_path);
        return -1;
    }
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        kw_cli_error("cannot connect to the HAProxy socket %s: %s (is `stats socket %s level "
                     "admin` in haproxy.cfg?)",
                     sock_path, strerror(errno), sock_path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char b64[120];
    char cmd[4400];
    kw_tickets_haproxy_b64(k, b64, sizeof(b64));
    int n = snprintf(cmd, sizeof(cmd), "set ssl tls-key %s %s\n", file, b64);
    OPENSSL_cleanse(b64, sizeof(b64));
    int ok = n > 0 && n < (int)sizeof(cmd) && write(fd, cmd, (size_t)n) == n;
    OPENSSL_cleanse(cmd, sizeof(cmd));
    char reply[512] = "";
    ssize_t got = ok ? read(fd, reply, sizeof(reply) - 1) : -1;
    close(fd);
    if (got > 0)
        reply[got] = '\0';
    if (!ok || got <= 0 || strstr(reply, "TLS ticket key updated") == NULL) {
        kw_cli_error("HAProxy did not take the ticket key for %s: %s", file,
                     got > 0 ? reply : "no answer");
        return -1;
    }
    return 0;
}
