/*
 * Key hygiene tests (src/keyserver/keystore/hygiene.c): after the secure heap is started, private
 * keys decoded from PEM (RSA bignums, EC scalar, Ed25519 bytes) are allocated in it; core dumps are
 * off; --user drops root for good (run as root: in a child, to nobody); an unknown user and root
 * itself are refused; after RSA operations through the key store and ops.c, no copy of p or q is
 * left in memory outside the secure heap (issue 20: OpenSSL's cached Montgomery contexts); and the
 * CRT step that keeps them there computes what OpenSSL computes (issue 16).
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "keystore/hygiene.h"
#include "keystore/keystore_load_internal.h"
#include "keyward/error.h"
#include "ops/ops.h"

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

/* Sized from the key files: twice their bytes plus 64 per key plus 256 KiB, a power of two of at
 * least 1 MiB, at most the cap (issue 16: it was 64 KiB per key, capped at 1 GiB). */
static void test_secure_heap_size(void **state)
{
    (void)state;
    const size_t gib = (size_t)1 << 30, mib = (size_t)1 << 20;
    assert_int_equal(kw_ks_hygiene_secure_heap_size(0, 0, gib), mib);
    assert_int_equal(kw_ks_hygiene_secure_heap_size(7, 8000, gib), mib);
    /* 100,000 P-256 keys of 241 bytes: 61 MB needed, 64 MiB (was: 1 GiB) */
    assert_int_equal(kw_ks_hygiene_secure_heap_need(100000, 100000 * 241),
                     2 * (100000 * 241 + 100000 * 64) + (256 << 10));
    assert_int_equal(kw_ks_hygiene_secure_heap_size(100000, 100000 * 241, gib), 64 * mib);
    /* 10,000 RSA-2048 keys of 1,704 bytes: 36 MB, 64 MiB */
    assert_int_equal(kw_ks_hygiene_secure_heap_size(10000, 10000 * 1704, gib), 64 * mib);
    assert_int_equal(kw_ks_hygiene_secure_heap_size(100000, 100000 * 3272, gib), gib);
    assert_int_equal(kw_ks_hygiene_secure_heap_size(100000, 100000 * 241, 8 * mib), 8 * mib);
}

static void test_secure_heap(void **state)
{
    (void)state;
    assert_int_equal(kw_ks_hygiene_count_keys("/nonexistent"), 0);
    int rc = kw_ks_hygiene_secure_heap(3, 3 * 1704);
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

/* ---- p and q outside the secure heap ---- */

static char key_dir[] = "/tmp/kwhyg.XXXXXX";
static uint8_t needles[6][16]; /* 16-byte windows (start, middle, end) of p and q, as limbs */

static int child_write_key(void)
{
    char path[64];
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    snprintf(path, sizeof(path), "%s/k.key", key_dir);
    FILE *f = fopen(path, "w");
    if (f != NULL)
        (void)fchmod(fileno(f), 0600);
    int ok = k != NULL && f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (f != NULL)
        fclose(f);
    EVP_PKEY_free(k);
    return ok ? 0 : 1;
}

/* The windows of p and q of the key file, read through the provider (secure heap) and BIGNUMs
 * freed with BN_clear_free. */
static int load_needles(void)
{
    char path[64];
    snprintf(path, sizeof(path), "%s/k.key", key_dir);
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    const char *names[2] = {OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2};
    int ok = k != NULL;
    for (int i = 0; ok && i < 2; i++) {
        BIGNUM *bn = NULL;
        uint8_t le[128];
        ok = EVP_PKEY_get_bn_param(k, names[i], &bn) == 1 &&
             BN_bn2lebinpad(bn, le, sizeof(le)) == sizeof(le);
        for (int j = 0; ok && j < 3; j++)
            memcpy(needles[3 * i + j], le + j * 56, 16);
        OPENSSL_cleanse(le, sizeof(le));
        BN_clear_free(bn);
    }
    EVP_PKEY_free(k);
    return ok;
}

/* Windows of p or q found in writable memory outside the secure heap (and the needles). */
static int count_outside(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) != 3 || perm[0] != 'r' || perm[1] != 'w' ||
            strstr(line, "[vvar]") != NULL)
            continue;
        for (int n = 0; n < 6; n++) {
            const uint8_t *p = (const uint8_t *)a;
            const uint8_t *end = (const uint8_t *)b;
            const uint8_t *hit;
            while (p < end && (hit = memmem(p, (size_t)(end - p), needles[n], 16)) != NULL) {
                if ((hit < needles[0] || hit >= needles[0] + sizeof(needles)) &&
                    !CRYPTO_secure_allocated(hit))
                    found++;
                p = hit + 1;
            }
        }
    }
    if (f != NULL)
        fclose(f);
    return found;
}

static int child_factors(void)
{
    kw_ks_key_t key;
    kw_ks_names_t names = {0};
    uint8_t cert_ski[32], out[KW_OP_OUT_MAX], in[256], digest[32] = {1};
    int has_ski = 0;
    char err[256];
    size_t outlen;
    memset(&key, 0, sizeof(key));
    kw_ks_hygiene_rsa_cache_factors(getenv("KW_TEST_CACHE") != NULL);
    if (!load_needles())
        return 10;
    /* Loaded twice with one loader, as a key store load does: the second decode reuses the
     * decoder the first set up, and its key is the one used. */
    kw_ks_loader_t loader = {0};
    for (int i = 0; i < 2; i++) {
        if (i > 0) {
            kw_ks_key_clear(&key);
            kw_ks_names_free(&names);
        }
        if (kw_ks_key_load(&loader, key_dir, "k", &key, &names, cert_ski, &has_ski, err,
                           sizeof(err)) != 0)
            return 11;
        if (loader.dctx == NULL)
            return 13; /* the reused decoder did not take the key */
    }
    kw_ks_loader_free(&loader);
    kw_ks_op_cache_t *cache = kw_ks_op_cache_new(8);
    memset(in, 0x42, sizeof(in));
    in[0] = 0;
    for (int i = 0; i < 3; i++) {
        if (cache == NULL ||
            kw_ks_op_run(cache, &key, KW_OP_RSA_SIGN_SHA256, digest, 32, 0, out, &outlen) != 0 ||
            kw_ks_op_run(cache, &key, KW_OP_TLS_RSA_DECRYPT, in, 256, 0x0303, out, &outlen) != 0)
            return 12;
    }
    int outside = count_outside();
    kw_ks_op_cache_free(cache);
    kw_ks_key_clear(&key);
    kw_ks_names_free(&names);
    if (outside > 0)
        fprintf(stderr, "%d windows of p or q outside the secure heap\n", outside);
    return outside > 0 ? 20 : 0;
}

static void test_factors_stay_secure(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the scan reads freed (poisoned) memory and ASan's shadow regions */
#endif
    if (!CRYPTO_secure_malloc_initialized())
        assert_true(kw_ks_hygiene_secure_heap(3, 3 * 1704) >= 0);
    assert_non_null(mkdtemp(key_dir));
    /* The key is made and used in children of a process that never held it. */
    assert_int_equal(in_child(child_write_key), 0);
    int rc = in_child(child_factors);
    char path[64];
    snprintf(path, sizeof(path), "%s/k.key", key_dir);
    unlink(path);
    rmdir(key_dir);
    assert_int_equal(rc, 0);
}

/* out = in^d mod n (RSA_NO_PADDING) or the PKCS#1 SHA-256 signature of in (32 bytes). */
static size_t rsa_private(EVP_PKEY *k, int raw, const uint8_t *in, size_t inlen, uint8_t *out)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
    size_t outlen = 512;
    assert_non_null(c);
    if (raw) {
        assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING), 1);
        assert_int_equal(EVP_PKEY_decrypt(c, out, &outlen, in, inlen), 1);
    } else {
        assert_int_equal(EVP_PKEY_sign_init(c), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
        assert_int_equal(EVP_PKEY_sign(c, out, &outlen, in, inlen), 1);
    }
    EVP_PKEY_CTX_free(c);
    return outlen;
}

/* The secure-heap key's CRT step (hygiene_rsa.c: both halves in one x2 exponentiation, n's
 * context cached) gives OpenSSL's own results: raw decryptions of random blocks (including 0, 1
 * and n - 1) and deterministic PKCS#1 signatures, for RSA-2048 (the AVX-512 IFMA size) and 3072. */
static void test_rsa_crt_matches_openssl(void **state)
{
    (void)state;
    if (!CRYPTO_secure_malloc_initialized())
        assert_true(kw_ks_hygiene_secure_heap(3, 3 * 1704) >= 0);
    kw_ks_hygiene_rsa_cache_factors(0);
    const unsigned bits[2] = {2048, 3072};
    for (int b = 0; b < 2; b++) {
        EVP_PKEY *ref = EVP_RSA_gen(bits[b]);
        assert_non_null(ref);
        EVP_PKEY *k = ref;
        assert_int_equal(EVP_PKEY_up_ref(ref), 1);
        assert_int_equal(kw_ks_hygiene_rsa_uncached(&k), 0);
        assert_ptr_not_equal(k, ref);
        size_t klen = bits[b] / 8;
        BIGNUM *n = NULL;
        uint8_t nbuf[384];
        assert_int_equal(EVP_PKEY_get_bn_param(ref, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        assert_int_equal(BN_bn2binpad(n, nbuf, (int)klen), (int)klen);
        BN_free(n);
        for (int i = 0; i < 60; i++) {
            uint8_t in[384], want[512], got[512];
            assert_int_equal(RAND_bytes(in, sizeof(in)), 1);
            in[0] &= 0x7f; /* below n */
            if (i == 0)
                memset(in, 0, klen);
            if (i == 1) {
                memset(in, 0, klen);
                in[klen - 1] = 1;
            }
            if (i == 2) {
                memcpy(in, nbuf, klen);
                in[klen - 1] -= 1; /* n is odd: n - 1 */
            }
            int raw = i % 2 == 0 || i < 3;
            size_t inlen = raw ? klen : 32;
            size_t wl = rsa_private(ref, raw, in, inlen, want);
            size_t gl = rsa_private(k, raw, in, inlen, got);
            assert_int_equal(gl, wl);
            assert_memory_equal(got, want, wl);
        }
        EVP_PKEY_free(k);
        EVP_PKEY_free(ref);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secure_heap_size),
        cmocka_unit_test(test_secure_heap),
        cmocka_unit_test(test_no_dumps),
        cmocka_unit_test(test_drop_privileges),
        cmocka_unit_test(test_factors_stay_secure),
        cmocka_unit_test(test_rsa_crt_matches_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
