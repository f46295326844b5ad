/*
 * Signature context parameters (src/provider/sig_params.c) of keyward keys in the built
 * keyward.so, set and read through EVP_PKEY_CTX as libssl does (no key server: parameters only,
 * nothing is signed). RSA: PKCS#1 v1.5 and PSS are taken by name and by number, every other pad
 * mode is refused; the PSS salt length "digest" (or a number) is taken, "max"/"auto" refused;
 * the MGF1 digest defaults to the signature digest; the AlgorithmIdentifier is
 * sha256WithRSAEncryption with NULL parameters, and refused for PSS. EC: a pad mode is refused,
 * the AlgorithmIdentifier is ecdsa-with-SHA384. An unknown digest is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "prov_fixture.h"

typedef struct keys_s {
    prov_fixture_t f;
    EVP_PKEY *rsa; /* keyward keys, from stubs */
    EVP_PKEY *ec;
} keys_t;

static EVP_PKEY *keyward_key(OSSL_LIB_CTX *libctx, EVP_PKEY *orig)
{
    long len = 0;
    unsigned char *der = prov_fixture_stub_der(orig, &len);
    EVP_PKEY *k = der != NULL ? prov_fixture_read(libctx, KW_STUB_PEM_LABEL, der, len) : NULL;
    OPENSSL_free(der);
    EVP_PKEY_free(orig);
    return k;
}

static int setup(void **state)
{
    static keys_t k;
    setenv("KEYWARD_LOAD_CHECK", "off", 1);
    if (prov_fixture_load(&k.f) != 0)
        return -1;
    k.rsa = keyward_key(k.f.libctx, EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
    k.ec = keyward_key(k.f.libctx, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    if (k.rsa == NULL || k.ec == NULL)
        return -1;
    *state = &k;
    return 0;
}

static int teardown(void **state)
{
    keys_t *k = *state;
    if (k == NULL)
        return 0;
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ec);
    prov_fixture_unload(&k->f);
    return 0;
}

/* A signing context of the keyward provider for key, digest md. */
static EVP_PKEY_CTX *sign_ctx(keys_t *k, EVP_PKEY *key, const char *md)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(k->f.libctx, key, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)md, 0),
                       OSSL_PARAM_construct_end()};
    assert_int_equal(EVP_PKEY_CTX_set_params(c, p), 1);
    return c;
}

static int set_str(EVP_PKEY_CTX *c, const char *name, const char *value)
{
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_utf8_string(name, (char *)value, 0),
                       OSSL_PARAM_construct_end()};
    ERR_set_mark();
    int ok = EVP_PKEY_CTX_set_params(c, p);
    ERR_pop_to_mark();
    return ok;
}

static int set_int(EVP_PKEY_CTX *c, const char *name, int value)
{
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_int(name, &value), OSSL_PARAM_construct_end()};
    ERR_set_mark();
    int ok = EVP_PKEY_CTX_set_params(c, p);
    ERR_pop_to_mark();
    return ok;
}

static void get_str(EVP_PKEY_CTX *c, const char *name, char *buf, size_t cap)
{
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_utf8_string(name, buf, cap),
                       OSSL_PARAM_construct_end()};
    buf[0] = '\0';
    assert_int_equal(EVP_PKEY_CTX_get_params(c, p), 1);
}

/* The signature algorithm's NID from the AlgorithmIdentifier, or NID_undef when refused. */
static int algorithm_id(EVP_PKEY_CTX *c, int *param_type)
{
    unsigned char der[128];
    OSSL_PARAM p[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, der, sizeof(der)),
        OSSL_PARAM_construct_end()};
    ERR_set_mark();
    int ok = EVP_PKEY_CTX_get_params(c, p);
    ERR_pop_to_mark();
    if (!ok || !OSSL_PARAM_modified(&p[0]))
        return NID_undef;
    const unsigned char *q = der;
    X509_ALGOR *a = d2i_X509_ALGOR(NULL, &q, (long)p[0].return_size);
    assert_non_null(a);
    const ASN1_OBJECT *obj = NULL;
    X509_ALGOR_get0(&obj, param_type, NULL, a);
    int nid = OBJ_obj2nid(obj);
    X509_ALGOR_free(a);
    return nid;
}

static void test_rsa_pad_modes(void **state)
{
    keys_t *k = *state;
    EVP_PKEY_CTX *c = sign_ctx(k, k->rsa, "SHA256");
    char buf[64];
    get_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, buf, sizeof(buf));
    assert_string_equal(buf, OSSL_PKEY_RSA_PAD_MODE_PKCSV15); /* the default */
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, "pss"), 1);
    get_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, buf, sizeof(buf));
    assert_string_equal(buf, OSSL_PKEY_RSA_PAD_MODE_PSS);
    assert_int_equal(set_int(c, OSSL_SIGNATURE_PARAM_PAD_MODE, RSA_PKCS1_PADDING), 1);
    get_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, buf, sizeof(buf));
    assert_string_equal(buf, OSSL_PKEY_RSA_PAD_MODE_PKCSV15);
    static const char *const refused[] = {"none", "oaep", "x931", "no-such-mode"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, refused[i]), 0);
    assert_int_equal(set_int(c, OSSL_SIGNATURE_PARAM_PAD_MODE, RSA_NO_PADDING), 0);
    get_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, buf, sizeof(buf));
    assert_string_equal(buf, OSSL_PKEY_RSA_PAD_MODE_PKCSV15); /* a refusal changes nothing */
    EVP_PKEY_CTX_free(c);
}

static void test_rsa_pss_params(void **state)
{
    keys_t *k = *state;
    EVP_PKEY_CTX *c = sign_ctx(k, k->rsa, "SHA384");
    char buf[64];
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, "pss"), 1);
    get_str(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, buf, sizeof(buf));
    assert_string_equal(buf, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST);
    get_str(c, OSSL_SIGNATURE_PARAM_MGF1_DIGEST, buf, sizeof(buf));
    assert_string_equal(buf, "SHA2-384"); /* the signature digest */
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "48"), 1);
    get_str(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, buf, sizeof(buf));
    assert_string_equal(buf, "48");
    assert_int_equal(set_int(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, RSA_PSS_SALTLEN_DIGEST), 1);
    get_str(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, buf, sizeof(buf));
    assert_string_equal(buf, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST);
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "max"), 0);
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "auto"), 0);
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "-1"), 0);
    assert_int_equal(set_int(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, RSA_PSS_SALTLEN_MAX), 0);
    assert_int_equal(set_int(c, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, RSA_PSS_SALTLEN_AUTO), 0);
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_MGF1_DIGEST, "SHA256"), 1);
    get_str(c, OSSL_SIGNATURE_PARAM_MGF1_DIGEST, buf, sizeof(buf));
    assert_string_equal(buf, "SHA2-256");
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_MGF1_DIGEST, "NO-SUCH-MD"), 0);
    int type = 0;
    assert_int_equal(algorithm_id(c, &type), NID_undef); /* PSS parameters are not encoded */
    EVP_PKEY_CTX_free(c);
}

static void test_algorithm_ids(void **state)
{
    keys_t *k = *state;
    int type = 0;
    EVP_PKEY_CTX *c = sign_ctx(k, k->rsa, "SHA256");
    assert_int_equal(algorithm_id(c, &type), NID_sha256WithRSAEncryption);
    assert_int_equal(type, V_ASN1_NULL);
    EVP_PKEY_CTX_free(c);
    c = sign_ctx(k, k->ec, "SHA384");
    assert_int_equal(algorithm_id(c, &type), NID_ecdsa_with_SHA384);
    assert_int_equal(type, V_ASN1_UNDEF); /* no parameters */
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_PAD_MODE, "pss"), 0);
    assert_int_equal(set_str(c, OSSL_SIGNATURE_PARAM_DIGEST, "NO-SUCH-MD"), 0);
    EVP_PKEY_CTX_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_pad_modes),
        cmocka_unit_test(test_rsa_pss_params),
        cmocka_unit_test(test_algorithm_ids),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
