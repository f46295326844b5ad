/*
 * The provider's TLS1-PRF (src/provider/kdf_tls1_prf.c) in the built keyward.so, master-secret
 * mode on: it is offered only in that mode; for any secret that is not a handle its output equals
 * OpenSSL's own TLS1-PRF byte for byte (TLS 1.2 master secret and key block with SHA-256/384,
 * extended master secret, TLS 1.0's MD5-SHA1, several lengths, seeds given in pieces); a secret
 * with a handle's form that is not live is refused, never used as a pre-master secret; a missing
 * secret or seed is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "master.h"
#include "prov_fixture.h"

/* One derivation by the provider named in props. seeds: up to 3 pieces. 1 or 0. */
static int derive(OSSL_LIB_CTX *libctx, const char *props, const char *md, const uint8_t *secret,
                  size_t secret_len, const uint8_t *const seeds[3], const size_t seed_lens[3],
                  uint8_t *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(libctx, OSSL_KDF_NAME_TLS1_PRF, props);
    if (kdf == NULL)
        return 0;
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    OSSL_PARAM p[6];
    size_t n = 0;
    p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
    if (secret != NULL)
        p[n++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secret_len);
    for (int i = 0; i < 3; i++) {
        if (seeds[i] != NULL)
            p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seeds[i],
                                                       seed_lens[i]);
    }
    p[n] = OSSL_PARAM_construct_end();
    int ok = k != NULL && EVP_KDF_derive(k, out, outlen, p) == 1;
    EVP_KDF_CTX_free(k);
    return ok;
}

static int setup(void **state)
{
    static prov_fixture_t f;
    setenv("KEYWARD_MASTER_SECRET_MODE", "yes", 1);
    if (prov_fixture_load(&f) != 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    if (*state != NULL)
        prov_fixture_unload(*state);
    unsetenv("KEYWARD_MASTER_SECRET_MODE");
    return 0;
}

/* Without master-secret mode the provider offers no TLS1-PRF: libssl keeps OpenSSL's. */
static void test_offered_only_in_ms_mode(void **state)
{
    (void)state;
    prov_fixture_t off;
    unsetenv("KEYWARD_MASTER_SECRET_MODE");
    assert_int_equal(prov_fixture_load(&off), 0);
    ERR_set_mark();
    EVP_KDF *kdf = EVP_KDF_fetch(off.libctx, OSSL_KDF_NAME_TLS1_PRF, "provider=keyward");
    ERR_pop_to_mark();
    assert_null(kdf);
    prov_fixture_unload(&off);
    setenv("KEYWARD_MASTER_SECRET_MODE", "yes", 1);
    prov_fixture_t *f = *state;
    kdf = EVP_KDF_fetch(f->libctx, OSSL_KDF_NAME_TLS1_PRF, "provider=keyward");
    assert_non_null(kdf);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_KDF_get0_provider(kdf)), "keyward");
    EVP_KDF_free(kdf);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 13);
}

static void test_same_as_openssl(void **state)
{
    prov_fixture_t *f = *state;
    uint8_t secret[48];
    uint8_t crand[32];
    uint8_t srand[32];
    uint8_t hash[48];
    fill(secret, sizeof(secret), 3);
    fill(crand, sizeof(crand), 5);
    fill(srand, sizeof(srand), 7);
    fill(hash, sizeof(hash), 11);
    static const uint8_t ms[] = "master secret";
    static const uint8_t ems[] = "extended master secret";
    static const uint8_t kx[] = "key expansion";
    const struct {
        const char *md;
        const uint8_t *seeds[3];
        size_t lens[3];
        size_t out;
        size_t secret_len;
    } cases[] = {
        {"SHA256", {ms, crand, srand}, {13, 32, 32}, 48, 48},
        {"SHA2-384", {ms, crand, srand}, {13, 32, 32}, 48, 48},
        {"SHA256", {ems, hash, NULL}, {22, 32, 0}, 48, 48},
        {"SHA384", {ems, hash, NULL}, {22, 48, 0}, 48, 48},
        {"SHA256", {kx, srand, crand}, {13, 32, 32}, 136, 48},
        {"MD5-SHA1", {ms, crand, srand}, {13, 32, 32}, 48, 48},
        {"SHA256", {ms, crand, srand}, {13, 32, 32}, 1, 20}, /* odd lengths */
        {"SHA512", {kx, NULL, NULL}, {13, 0, 0}, 200, 47},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t got[200];
        uint8_t want[200];
        memset(got, 0xAA, sizeof(got));
        memset(want, 0x55, sizeof(want));
        assert_int_equal(derive(f->libctx, "provider=default", cases[i].md, secret,
                                cases[i].secret_len, cases[i].seeds, cases[i].lens, want,
                                cases[i].out),
                         1);
        assert_int_equal(derive(f->libctx, "provider=keyward", cases[i].md, secret,
                                cases[i].secret_len, cases[i].seeds, cases[i].lens, got,
                                cases[i].out),
                         1);
        assert_memory_equal(got, want, cases[i].out);
    }
}

/* A secret with a handle's magic prefix that the provider never issued: refused with a reason,
 * not derived locally as if it were a pre-master secret. */
static void test_dead_handle_refused(void **state)
{
    prov_fixture_t *f = *state;
    static const uint8_t magic[16] = {0x00, 0x00, 'K', 'W', '-', 'M', 'S',  '-',
                                      'H',  'A',  'N', 'D', 'L', 'E', 0x00, 0x01};
    uint8_t handle[KW_MS_HANDLE_LEN];
    uint8_t crand[32];
    uint8_t out[48];
    fill(handle, sizeof(handle), 1);
    memcpy(handle, magic, sizeof(magic));
    fill(crand, sizeof(crand), 5);
    static const uint8_t ms[] = "master secret";
    const uint8_t *seeds[3] = {ms, crand, crand};
    size_t lens[3] = {13, 32, 32};
    ERR_clear_error();
    assert_int_equal(derive(f->libctx, "provider=keyward", "SHA256", handle, sizeof(handle), seeds,
                            lens, out, 48),
                     0);
    const char *why = NULL;
    int flags = 0;
    assert_int_not_equal(ERR_peek_last_error_data(&why, &flags), 0);
    assert_non_null(why);
    assert_non_null(strstr(why, "handle"));
    ERR_clear_error();
    /* the same bytes one shorter are no handle: an ordinary secret */
    assert_int_equal(derive(f->libctx, "provider=keyward", "SHA256", handle, sizeof(handle) - 1,
                            seeds, lens, out, 48),
                     1);
    /* a handle in another use than the master secret (key expansion): refused too */
    static const uint8_t kx[] = "key expansion";
    seeds[0] = kx;
    assert_int_equal(derive(f->libctx, "provider=keyward", "SHA256", handle, sizeof(handle), seeds,
                            lens, out, 48),
                     0);
    ERR_clear_error();
}

static void test_missing_inputs(void **state)
{
    prov_fixture_t *f = *state;
    uint8_t secret[48];
    uint8_t out[48];
    fill(secret, sizeof(secret), 3);
    const uint8_t *none[3] = {NULL, NULL, NULL};
    size_t zero[3] = {0, 0, 0};
    static const uint8_t ms[] = "master secret";
    const uint8_t *seeds[3] = {ms, NULL, NULL};
    size_t lens[3] = {13, 0, 0};
    ERR_set_mark();
    assert_int_equal(
        derive(f->libctx, "provider=keyward", "SHA256", secret, 48, none, zero, out, 48), 0);
    assert_int_equal(derive(f->libctx, "provider=keyward", "SHA256", NULL, 0, seeds, lens, out, 48),
                     0);
    assert_int_equal(
        derive(f->libctx, "provider=keyward", "NO-SUCH-MD", secret, 48, seeds, lens, out, 48), 0);
    ERR_pop_to_mark();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offered_only_in_ms_mode),
        cmocka_unit_test(test_same_as_openssl),
        cmocka_unit_test(test_dead_handle_refused),
        cmocka_unit_test(test_missing_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
