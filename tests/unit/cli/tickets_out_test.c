/*
 * keyward tickets output (src/cli/tickets_out.c): nginx's three 80-byte files hold the keys as
 * they are (name | HMAC | AES), current.key being epoch e; HAProxy's file holds three base64 lines
 * e-1, e, e+1 in its own layout (name | AES | HMAC); files are mode 0600 and leave no .tmp behind;
 * `set ssl tls-key` reaches a Unix socket with the base64 line and an answer without "TLS ticket
 * key updated" is a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tickets_out.h"

/* keys[i].key[j] = 16 * i + j (mod 256): every byte of the three keys tells where it came from. */
static void make_set(kw_ticket_keys_t *set)
{
    memset(set, 0, sizeof(*set));
    set->rotation_s = 3600;
    set->server_time = 1000 * 3600 + 5;
    for (int i = 0; i < KW_TICKET_EPOCHS; i++) {
        set->keys[i].epoch = 999 + (uint64_t)i;
        set->keys[i].not_before = set->keys[i].epoch * 3600;
        set->keys[i].not_after = set->keys[i].not_before + 3600;
        for (int j = 0; j < KW_TICKET_KEY_LEN; j++)
            set->keys[i].key[j] = (uint8_t)(16 * i + j);
    }
}

static char *scratch_dir(void)
{
    char tmpl[] = "/tmp/kw_tickets_out_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static size_t read_whole(const char *path, uint8_t *buf, size_t cap, mode_t *mode)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    *mode = st.st_mode & 0777;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* The HAProxy layout of one key: name | AES | HMAC. */
static void haproxy_layout(const kw_ticket_key_t *k, uint8_t out[KW_TICKET_KEY_LEN])
{
    memcpy(out, k->key, KW_TICKET_NAME_LEN);
    memcpy(out + 16, k->key + 16 + KW_TICKET_HMAC_LEN, KW_TICKET_AES_LEN);
    memcpy(out + 16 + KW_TICKET_AES_LEN, k->key + 16, KW_TICKET_HMAC_LEN);
}

static void test_nginx_files(void **state)
{
    (void)state;
    kw_ticket_keys_t set;
    make_set(&set);
    char *dir = scratch_dir();
    assert_int_equal(kw_tickets_write_nginx(&set, dir), 0);
    static const char *const names[KW_TICKET_EPOCHS] = {"previous.key", "current.key", "next.key"};
    for (int i = 0; i < KW_TICKET_EPOCHS; i++) {
        char path[512];
        uint8_t buf[200];
        mode_t mode;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        assert_int_equal(read_whole(path, buf, sizeof(buf), &mode), KW_TICKET_KEY_LEN);
        assert_memory_equal(buf, set.keys[i].key, KW_TICKET_KEY_LEN); /* nginx = KWP layout */
        assert_int_equal(mode, 0600);
        snprintf(path, sizeof(path), "%s/%s.tmp", dir, names[i]);
        assert_int_not_equal(access(path, F_OK), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
    /* a directory that is not there: an error, no file */
    assert_int_equal(kw_tickets_write_nginx(&set, "/nonexistent/kw"), -1);
    free(dir);
}

static void test_haproxy_b64(void **state)
{
    (void)state;
    kw_ticket_keys_t set;
    make_set(&set);
    char line[120];
    kw_tickets_haproxy_b64(&set.keys[1], line, sizeof(line));
    assert_int_equal(strlen(line), 4 * ((KW_TICKET_KEY_LEN + 2) / 3)); /* 108 */
    uint8_t dec[84];
    assert_int_equal(EVP_DecodeBlock(dec, (const unsigned char *)line, (int)strlen(line)), 81);
    uint8_t want[KW_TICKET_KEY_LEN];
    haproxy_layout(&set.keys[1], want);
    assert_memory_equal(dec, want, KW_TICKET_KEY_LEN);
    /* the name stays first; the AES key (bytes 48..79 of the KWP key) comes right after it */
    assert_int_equal(dec[0], 16);
    assert_int_equal(dec[16], 16 + 48);
    assert_int_equal(dec[48], 16 + 16);
}

static void test_haproxy_file(void **state)
{
    (void)state;
    kw_ticket_keys_t set;
    make_set(&set);
    char *dir = scratch_dir();
    char path[512];
    snprintf(path, sizeof(path), "%s/tls-ticket-keys", dir);
    assert_int_equal(kw_tickets_write_haproxy(&set, path), 0);
    char text[1024];
    mode_t mode;
    size_t n = read_whole(path, (uint8_t *)text, sizeof(text) - 1, &mode);
    text[n] = '\0';
    assert_int_equal(mode, 0600);
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    for (int i = 0; i < KW_TICKET_EPOCHS; i++) { /* e-1, e, e+1: HAProxy encrypts with e */
        char want[120];
        assert_non_null(line);
        kw_tickets_haproxy_b64(&set.keys[i], want, sizeof(want));
        assert_string_equal(line, want);
        line = strtok_r(NULL, "\n", &save);
    }
    assert_null(line);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* A stand-in for HAProxy's admin socket: reads one command, answers with reply. */
typedef struct admin_s {
    int lfd;
    const char *reply;
    char cmd[4400];
} admin_t;

static void *admin_run(void *arg)
{
    admin_t *a = arg;
    int fd = accept(a->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(a->cmd) - 1 && (n = read(fd, a->cmd + got, sizeof(a->cmd) - 1 - got)) > 0) {
        got += (size_t)n;
        if (a->cmd[got - 1] == '\n')
            break;
    }
    a->cmd[got] = '\0';
    if (write(fd, a->reply, strlen(a->reply)) < 0)
        a->cmd[0] = '\0';
    close(fd);
    return NULL;
}

static int push_with_reply(const char *reply, char *cmd, size_t cap)
{
    char *dir = scratch_dir();
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/admin.sock", dir);
    admin_t a;
    memset(&a, 0, sizeof(a));
    a.reply = reply;
    a.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(a.lfd >= 0);
    assert_int_equal(bind(a.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(a.lfd, 1), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, admin_run, &a), 0);
    kw_ticket_keys_t set;
    make_set(&set);
    int rc = kw_tickets_haproxy_push(sa.sun_path, "/etc/haproxy/ticket.keys", &set.keys[2]);
    pthread_join(t, NULL);
    close(a.lfd);
    snprintf(cmd, cap, "%s", a.cmd);
    unlink(sa.sun_path);
    rmdir(dir);
    free(dir);
    return rc;
}

static void test_haproxy_push(void **state)
{
    (void)state;
    char cmd[4400];
    kw_ticket_keys_t set;
    make_set(&set);
    char b64[120];
    kw_tickets_haproxy_b64(&set.keys[2], b64, sizeof(b64));
    char want[400];
    snprintf(want, sizeof(want), "set ssl tls-key /etc/haproxy/ticket.keys %s\n", b64);
    assert_int_equal(push_with_reply("TLS ticket key updated!\n", cmd, sizeof(cmd)), 0);
    assert_string_equal(cmd, want);
    /* HAProxy refusing (unknown file): a failure */
    assert_int_equal(push_with_reply("'set ssl tls-key' unable to locate referenced filename\n",
                                     cmd, sizeof(cmd)),
                     -1);
    assert_string_equal(cmd, want);
    /* nobody listening */
    assert_int_equal(kw_tickets_haproxy_push("/nonexistent/admin.sock", "f", &set.keys[2]), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nginx_files),
        cmocka_unit_test(test_haproxy_b64),
        cmocka_unit_test(test_haproxy_file),
        cmocka_unit_test(test_haproxy_push),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
