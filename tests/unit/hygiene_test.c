/*
 * Key hygiene tests (src/keyserver/hygiene.c): after the secure heap is started, private keys
 * decoded from PEM (RSA bignums, EC scalar, Ed25519 bytes) are allocated in it; core dumps are
 * off; --user drops root for good (run as root: in a child, to nobody); an unknown user and root
 * itself are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "hygiene.h"
#include "keyward/error.h"

/* PEM of a fresh private key of the given type. */
static BIO *pem_of(EVP_PKEY *pkey)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL), 1);
    EVP_PKEY_free(pkey);
    return b;
}

static void check_decoded_in_secure_heap(BIO *pem, size_t min_bytes)
{
    size_t before = CRYPTO_secure_used();
    EVP_PKEY *k = PEM_read_bio_PrivateKey(pem, NULL, NULL, NULL);
    assert_non_null(k);
    size_t used = CRYPTO_secure_used() - before;
    assert_true(used >= min_bytes);
    EVP_PKEY_free(k);
    assert_true(CRYPTO_secure_used() <= before + 64); /* freed (and cleansed) again */
    BIO_free(pem);
}

static void test_secure_heap(void **state)
{
    (void)state;
    assert_int_equal(kw_ks_hygiene_count_keys("/nonexistent"), 0);
    int rc = kw_ks_hygiene_secure_heap(3);
    assert_true(rc == 0 || rc == 1);
    assert_int_equal(CRYPTO_secure_malloc_initialized(), 1);
    /* RSA-2048: d (256 bytes) and p, q, dP, dQ, qInv (128 each) = 896 bytes of limbs. */
    check_decoded_in_secure_heap(pem_of(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)), 896);
    check_decoded_in_secure_heap(pem_of(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")), 32);
    check_decoded_in_secure_heap(pem_of(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")), 32);
}

/* Runs fn in a child; returns its exit status. */
static int in_child(int (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static int child_no_dumps(void)
{
    struct rlimit rl;
    if (kw_ks_hygiene_no_dumps() != 0)
        return 1;
    if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
        return 2;
    if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
        return 3;
    return 0;
}

static void test_no_dumps(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_no_dumps), 0);
}

static int child_drop(void)
{
    char err[256];
    if (kw_ks_hygiene_drop_privileges("nobody", err, sizeof(err)) != 0)
        return 1;
    if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getegid() == 0)
        return 2;
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
        return 3;
    gid_t groups[8];
    int n = getgroups(8, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == 0)
            return 4;
    return 0;
}

static int child_refused(void)
{
    char err[256];
    if (kw_ks_hygiene_drop_privileges("no-such-user-kw", err, sizeof(err)) != KW_EINVAL)
        return 1;
    if (kw_ks_hygiene_drop_privileges("root", err, sizeof(err)) != KW_EINVAL)
        return 2;
    return 0;
}

static void test_drop_privileges(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_refused), 0);
    if (geteuid() != 0)
        skip(); /* only root can drop privileges */
    assert_int_equal(in_child(child_drop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secure_heap),
        cmocka_unit_test(test_no_dumps),
        cmocka_unit_test(test_drop_privileges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
