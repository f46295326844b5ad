/*
 * Ticket-key derivation tests (src/keyserver/keystore/ticket_keys.c): a known HKDF-SHA256 vector
 * (computed independently from RFC 5869 with Python's hmac module), the same secret giving the
 * same keys in two separately created objects and in a forked process, the set of three epochs
 * and their times, the refusals when the secret file is loaded: too short, readable by group
 * or others, and kw_ks_tickets_same_secret (what a SIGHUP compares).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "keystore/ticket_keys.h"
#include "keyward/error.h"
#include "kw_hex.h"

/* secret 00 01 .. 1f, epoch 492000 */
static const char kVector492000[] =
    "84960ff02915fac50072719d9ee8c60cdc8131f001b87cfc9f71835e9b943ed17af8e01e1c046301ab97f4a4ad7d"
    "23c5a05c65ea21d6dfc7b198e8ee319e6a5cdce156762a933f239f14744055219eb2";
static const char kVector1[] =
    "1c4a88ee66516434115f2ff6daa751f5ece42e3088ef928649cb74212c7d74422da14280096007512109a9e3dd0d"
    "369ca4c9d781ee4094d1478ee64107f41f96aa9a704ebb9a60af28b82ffd9822c37d";

static void secret_bytes(uint8_t s[32])
{
    for (int i = 0; i < 32; i++)
        s[i] = (uint8_t)i;
}

static void test_known_vector(void **state)
{
    (void)state;
    uint8_t s[32];
    uint8_t key[KW_TICKET_KEY_LEN];
    uint8_t want[KW_TICKET_KEY_LEN];
    kw_ks_tickets_t *t = NULL;
    secret_bytes(s);
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 3600, &t), 0);
    assert_int_equal(kw_ks_tickets_derive(t, 492000, key), 0);
    assert_int_equal(kw_hex_decode(kVector492000, want, sizeof(want)), 0);
    assert_memory_equal(key, want, sizeof(key));
    assert_int_equal(kw_ks_tickets_derive(t, 1, key), 0);
    assert_int_equal(kw_hex_decode(kVector1, want, sizeof(want)), 0);
    assert_memory_equal(key, want, sizeof(key));
    kw_ks_tickets_free(t);
}

/* The set a forked child derives (another process, its own objects) equals the parent's. */
static void test_two_processes(void **state)
{
    (void)state;
    uint8_t s[32];
    secret_bytes(s);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kw_ks_tickets_t *t = NULL;
        kw_ticket_keys_t set;
        if (kw_ks_tickets_new(s, sizeof(s), 60, &t) != 0 ||
            kw_ks_tickets_set(t, 1700000000, &set) != 0 ||
            write(fds[1], &set, sizeof(set)) != (ssize_t)sizeof(set))
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    kw_ticket_keys_t child;
    assert_int_equal(read(fds[0], &child, sizeof(child)), sizeof(child));
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    kw_ks_tickets_t *t = NULL;
    kw_ticket_keys_t mine;
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 60, &t), 0);
    assert_int_equal(kw_ks_tickets_set(t, 1700000000, &mine), 0);
    assert_memory_equal(&mine, &child, sizeof(mine));
    kw_ks_tickets_free(t);
}

static void test_set(void **state)
{
    (void)state;
    uint8_t s[32];
    secret_bytes(s);
    kw_ks_tickets_t *t = NULL;
    kw_ticket_keys_t set;
    uint8_t key[KW_TICKET_KEY_LEN];
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 3600, &t), 0);
    assert_int_equal(kw_ks_tickets_set(t, 492000ull * 3600 + 17, &set), 0);
    assert_int_equal(set.rotation_s, 3600);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(set.keys[i].epoch, 491999 + i);
        assert_int_equal(set.keys[i].not_before, (491999ull + i) * 3600);
        assert_int_equal(set.keys[i].not_after, (492000ull + i) * 3600);
    }
    assert_int_equal(kw_ks_tickets_derive(t, 492000, key), 0);
    assert_memory_equal(set.keys[1].key, key, sizeof(key));
    assert_memory_not_equal(set.keys[0].key, set.keys[1].key, KW_TICKET_NAME_LEN);
    /* the wire codec accepts what the key server makes */
    uint8_t buf[KW_TICKET_KEYS_LEN];
    size_t len = 0;
    kw_ticket_keys_t back;
    assert_int_equal(kw_ticket_keys_encode(&set, buf, sizeof(buf), &len), 0);
    assert_int_equal(kw_ticket_keys_decode(buf, len, &back), 0);
    assert_memory_equal(&back, &set, sizeof(set));
    /* another secret, other keys */
    kw_ks_tickets_t *u = NULL;
    s[0] ^= 1;
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 3600, &u), 0);
    assert_int_equal(kw_ks_tickets_derive(u, 492000, key), 0);
    assert_memory_not_equal(set.keys[1].key, key, sizeof(key));
    kw_ks_tickets_free(u);
    kw_ks_tickets_free(t);
}

static void write_file(const char *path, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < len; i++)
        fputc((int)i, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/kw_ticket_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/secret", dir);
    char err[512] = "";
    kw_ks_tickets_t *t = NULL;

    write_file(path, 32, 0640);
    assert_int_equal(kw_ks_tickets_load(path, 3600, &t, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "chmod 600"));
    assert_null(t);

    write_file(path, 31, 0600);
    assert_int_equal(kw_ks_tickets_load(path, 3600, &t, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "at least 32"));

    write_file(path, 32, 0600);
    assert_int_equal(kw_ks_tickets_load(path, 0, &t, err, sizeof(err)), KW_ECONFIG);
    assert_int_equal(kw_ks_tickets_load(path, 3600, &t, err, sizeof(err)), 0);
    uint8_t key[KW_TICKET_KEY_LEN];
    uint8_t want[KW_TICKET_KEY_LEN];
    assert_int_equal(kw_ks_tickets_derive(t, 492000, key), 0);
    assert_int_equal(kw_hex_decode(kVector492000, want, sizeof(want)), 0);
    assert_memory_equal(key, want, sizeof(key));
    kw_ks_tickets_free(t);

    unlink(path);
    assert_int_equal(kw_ks_tickets_load(path, 3600, &t, err, sizeof(err)), KW_EIO);
    rmdir(dir);
}

/* The same bytes are the same secret whatever the rotation; another byte or length is not. */
static void test_same(void **state)
{
    (void)state;
    uint8_t s[40];
    memset(s, 0x5a, sizeof(s));
    kw_ks_tickets_t *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 3600, &a), 0);
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 3600, &b), 0);
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 60, &c), 0);
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s) - 1, 3600, &d), 0);
    s[sizeof(s) - 1] ^= 1;
    assert_int_equal(kw_ks_tickets_new(s, sizeof(s), 3600, &e), 0);
    assert_int_equal(kw_ks_tickets_same_secret(a, b), 1);
    assert_int_equal(kw_ks_tickets_same_secret(a, c), 1);
    assert_int_equal(kw_ks_tickets_same_secret(a, d), 0);
    assert_int_equal(kw_ks_tickets_same_secret(d, a), 0);
    assert_int_equal(kw_ks_tickets_same_secret(a, e), 0);
    kw_ks_tickets_free(a);
    kw_ks_tickets_free(b);
    kw_ks_tickets_free(c);
    kw_ks_tickets_free(d);
    kw_ks_tickets_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vector), cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_set),          cmocka_unit_test(test_load),
        cmocka_unit_test(test_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
