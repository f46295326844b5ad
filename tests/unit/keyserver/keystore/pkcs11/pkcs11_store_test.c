/*
 * PKCS#11 key store tests against a real SoftHSM2 token (skipped when SoftHSM2 is not installed):
 * a fresh token in a temporary SOFTHSM2_CONF, RSA-2048, EC P-256 and Ed25519 keys imported with
 * softhsm2-util plus an RSA-1024 key that must be skipped; loading by label and by URI; every
 * signature verified with OpenSSL; PKCS#1, raw and TLS decryption (valid padding, bad padding,
 * wrong version, wrong length: always 48 bytes, the real PMS only when valid); wrong PIN, unknown
 * token, missing module; a bad object handle is an error reply; concurrent signing; the keys of a
 * key store loaded from the token run through the PKCS#11 backend table.
 */
#include <pthread.h>
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

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "keystore/keystore.h"
#include "keystore/pkcs11/pkcs11_internal.h"
#include "keystore/tls_reject_internal.h"
#include "ops/ops.h"

#define TOKEN "kwunit"
#define PIN   "4321"

static const char *const module_paths[] = {
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
};

typedef struct fixture_s {
    char dir[64];
    char pin_file[128];
    const char *module;
    EVP_PKEY *rsa, *ec, *ed, *small;
    kw_ks_p11_ctx_t *ctx;
    kw_ks_p11_keylist_t keys;
} fixture_t;

static fixture_t fx;

static void run(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static void import_key(EVP_PKEY *pkey, const char *label, const char *id)
{
    char path[160];
    char cmd[512];
    snprintf(path, sizeof(path), "%s/%s.pem", fx.dir, label);
    BIO *b = BIO_new_file(path, "w");
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL), 1);
    BIO_free(b);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --import %s --token %s --label %s --id %s --pin %s >/dev/null", path,
             TOKEN, label, id, PIN);
    run(cmd);
    unlink(path); /* the key now exists only on the token */
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    for (size_t i = 0; i < sizeof(module_paths) / sizeof(module_paths[0]); i++)
        if (access(module_paths[i], R_OK) == 0 && fx.module == NULL)
            fx.module = module_paths[i];
    if (fx.module == NULL || system("command -v softhsm2-util >/dev/null") != 0)
        return 0; /* tests skip */
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/kwp11.XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    char path[160];
    char cmd[512];
    snprintf(path, sizeof(path), "%s/softhsm2.conf", fx.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            fx.dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label %s --pin %s --so-pin 99999 >/dev/null",
             TOKEN, PIN);
    run(cmd);
    fx.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    fx.small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_true(fx.rsa && fx.ec && fx.ed && fx.small);
    import_key(fx.rsa, "rsa", "01");
    import_key(fx.ec, "ec", "02");
    import_key(fx.ed, "ed", "03");
    import_key(fx.small, "small", "04");
    snprintf(fx.pin_file, sizeof(fx.pin_file), "%s/pin", fx.dir);
    f = fopen(fx.pin_file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", PIN);
    fclose(f);
    chmod(fx.pin_file, 0600);
    assert_int_equal(kw_ks_p11_ctx_new(&fx.ctx), 0);
    kw_ks_p11_spec_t spec = {NULL, fx.module, TOKEN, fx.pin_file};
    char err[512] = "";
    if (kw_ks_p11_load(fx.ctx, &spec, &fx.keys, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kw_ks_p11_keylist_free(&fx.keys);
    kw_ks_p11_ctx_free(fx.ctx);
    EVP_PKEY_free(fx.rsa);
    EVP_PKEY_free(fx.ec);
    EVP_PKEY_free(fx.ed);
    EVP_PKEY_free(fx.small);
    if (fx.dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.dir);
        run(cmd);
    }
    return 0;
}

#define NEED_SOFTHSM()                                                                             \
    do {                                                                                           \
        if (fx.ctx == NULL)                                                                        \
            skip();                                                                                \
    } while (0)

static const kw_ks_p11_found_t *find(EVP_PKEY *pkey)
{
    for (size_t i = 0; i < fx.keys.n; i++)
        if (EVP_PKEY_eq(fx.keys.v[i].pub, pkey) == 1)
            return &fx.keys.v[i];
    return NULL;
}

static void test_load(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    assert_int_equal(fx.keys.n, 3); /* RSA-1024 skipped */
    assert_non_null(find(fx.rsa));
    assert_non_null(find(fx.ec));
    assert_non_null(find(fx.ed));
    assert_null(find(fx.small));
    assert_string_equal(find(fx.rsa)->name, TOKEN "/rsa");
    assert_int_equal(find(fx.rsa)->key->k, 256);
}

static void sign_verify(EVP_PKEY *pkey, uint8_t opcode, const char *md, int pad, size_t dlen)
{
    uint8_t digest[64];
    uint8_t sig[512];
    size_t siglen = 0;
    assert_int_equal(RAND_bytes(digest, (int)dlen), 1);
    uint8_t rc =
        kw_ks_p11_op_run(find(pkey)->key, opcode, digest, dlen, 0, sig, sizeof(sig), &siglen);
    assert_int_equal(rc, 0);
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    assert_non_null(v);
    assert_int_equal(EVP_PKEY_verify_init(v), 1);
    if (pad != 0)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(v, pad), 1);
    if (md != NULL)
        assert_int_equal(EVP_PKEY_CTX_set_signature_md(v, EVP_get_digestbyname(md)), 1);
    if (pad == RSA_PKCS1_PSS_PADDING)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(v, RSA_PSS_SALTLEN_DIGEST), 1);
    assert_int_equal(EVP_PKEY_verify(v, sig, siglen, digest, dlen), 1);
    EVP_PKEY_CTX_free(v);
}

static void test_sign(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    sign_verify(fx.rsa, KW_OP_RSA_SIGN_SHA1, "SHA1", RSA_PKCS1_PADDING, 20);
    sign_verify(fx.rsa, KW_OP_RSA_SIGN_SHA224, "SHA224", RSA_PKCS1_PADDING, 28);
    sign_verify(fx.rsa, KW_OP_RSA_SIGN_SHA256, "SHA256", RSA_PKCS1_PADDING, 32);
    sign_verify(fx.rsa, KW_OP_RSA_SIGN_SHA384, "SHA384", RSA_PKCS1_PADDING, 48);
    sign_verify(fx.rsa, KW_OP_RSA_SIGN_SHA512, "SHA512", RSA_PKCS1_PADDING, 64);
    sign_verify(fx.rsa, KW_OP_RSA_SIGN_MD5SHA1, "MD5-SHA1", RSA_PKCS1_PADDING, 36);
    sign_verify(fx.rsa, KW_OP_RSA_PSS_SIGN_SHA256, "SHA256", RSA_PKCS1_PSS_PADDING, 32);
    sign_verify(fx.rsa, KW_OP_RSA_PSS_SIGN_SHA384, "SHA384", RSA_PKCS1_PSS_PADDING, 48);
    sign_verify(fx.rsa, KW_OP_RSA_PSS_SIGN_SHA512, "SHA512", RSA_PKCS1_PSS_PADDING, 64);
    sign_verify(fx.ec, KW_OP_ECDSA_SIGN_SHA256, NULL, 0, 32);
    sign_verify(fx.ec, KW_OP_ECDSA_SIGN_SHA384, NULL, 0, 48);
    sign_verify(fx.ec, KW_OP_ECDSA_SIGN_SHA1, NULL, 0, 20);
}

static void test_ed25519(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    const uint8_t msg[] = "TLS 1.3, server CertificateVerify";
    uint8_t sig[128];
    size_t siglen = 0;
    assert_int_equal(kw_ks_p11_op_run(find(fx.ed)->key, KW_OP_ED25519_SIGN, msg, sizeof(msg), 0,
                                      sig, sizeof(sig), &siglen),
                     0);
    assert_int_equal(siglen, 64);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit_ex(m, NULL, NULL, NULL, NULL, fx.ed, NULL), 1);
    assert_int_equal(EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)), 1);
    EVP_MD_CTX_free(m);
}

/* Encrypts in[0..k) raw (no padding) with the RSA public key. */
static void raw_encrypt(const uint8_t *em, uint8_t *c)
{
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(NULL, fx.rsa, NULL);
    size_t clen = 256;
    assert_int_equal(EVP_PKEY_encrypt_init(e), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(e, RSA_NO_PADDING), 1);
    assert_int_equal(EVP_PKEY_encrypt(e, c, &clen, em, 256), 1);
    assert_int_equal(clen, 256);
    EVP_PKEY_CTX_free(e);
}

/* A TLS PKCS#1 block with version ver around pms; bad != 0 breaks the padding in various ways. */
static void tls_block(uint8_t *em, const uint8_t *pms, unsigned ver, int bad)
{
    em[0] = 0;
    em[1] = 2;
    for (size_t i = 2; i < 256 - 49; i++) {
        do
            assert_int_equal(RAND_bytes(&em[i], 1), 1);
        while (em[i] == 0);
    }
    em[256 - 49] = 0;
    memcpy(em + 256 - 48, pms, 48);
    em[256 - 48] = (uint8_t)(ver >> 8);
    em[256 - 47] = (uint8_t)ver;
    if (bad == 1)
        em[1] = 1;
    else if (bad == 2)
        em[30] = 0; /* separator too early: message is not 48 bytes */
    else if (bad == 3)
        em[256 - 49] = 7; /* no separator before the PMS */
}

static void test_decrypt(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    const kw_ks_p11_key_t *key = find(fx.rsa)->key;
    uint8_t msg[48];
    uint8_t c[256];
    uint8_t out[512];
    size_t clen = sizeof(c);
    size_t outlen = 0;
    assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(NULL, fx.rsa, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(e), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_encrypt(e, c, &clen, msg, sizeof(msg)), 1);
    EVP_PKEY_CTX_free(e);
    assert_int_equal(
        kw_ks_p11_op_run(key, KW_OP_RSA_DECRYPT, c, clen, 0, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
    /* raw: returns the whole block, which starts 00 02 */
    assert_int_equal(
        kw_ks_p11_op_run(key, KW_OP_RSA_DECRYPT_RAW, c, clen, 0, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 256);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 2);
    assert_memory_equal(out + 256 - 48, msg, 48);
    /* bad padding on 0x01 is an error (the protocol's historical behaviour) */
    uint8_t em[256];
    tls_block(em, msg, 0x0303, 1);
    raw_encrypt(em, c);
    assert_int_equal(kw_ks_p11_op_run(key, KW_OP_RSA_DECRYPT, c, 256, 0, out, sizeof(out), &outlen),
                     KW_ERR_CRYPTO);
}

static void test_tls_decrypt(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    const kw_ks_p11_key_t *key = find(fx.rsa)->key;
    uint8_t pms[48];
    uint8_t em[256];
    uint8_t c[256];
    uint8_t out[512];
    uint8_t first[48];
    size_t outlen = 0;
    assert_int_equal(RAND_bytes(pms, sizeof(pms)), 1);
    pms[0] = 0x03;
    pms[1] = 0x03;
    tls_block(em, pms, 0x0303, 0);
    raw_encrypt(em, c);
    assert_int_equal(
        kw_ks_p11_op_run(key, KW_OP_TLS_RSA_DECRYPT, c, 256, 0x0303, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 48);
    assert_memory_equal(out, pms, 48);
    /* wrong client version: random PMS */
    assert_int_equal(
        kw_ks_p11_op_run(key, KW_OP_TLS_RSA_DECRYPT, c, 256, 0x0302, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 48);
    assert_memory_not_equal(out, pms, 48);
    for (int bad = 1; bad <= 3; bad++) {
        tls_block(em, pms, 0x0303, bad);
        raw_encrypt(em, c);
        assert_int_equal(
            kw_ks_p11_op_run(key, KW_OP_TLS_RSA_DECRYPT, c, 256, 0x0303, out, sizeof(out), &outlen),
            0);
        assert_int_equal(outlen, 48);
        assert_memory_not_equal(out, pms, 48);
        assert_int_equal(out[0], 0x03); /* the synthetic PMS starts with the version */
        assert_int_equal(out[1], 0x03);
        memcpy(first, out, 48);
        assert_int_equal(
            kw_ks_p11_op_run(key, KW_OP_TLS_RSA_DECRYPT, c, 256, 0x0303, out, sizeof(out), &outlen),
            0);
        assert_memory_equal(out, first, 48); /* deterministic: no two-query oracle */
        /* the same as for the PEM key the token's key was imported from */
        uint8_t *secret = kw_ks_ir_secret_from_pkey(fx.rsa);
        uint8_t synth[48];
        assert_non_null(secret);
        assert_int_equal(kw_ks_ir_synthetic(secret, c, 256, 0x0303, synth), 1);
        kw_ks_ir_secret_free(secret);
        assert_memory_equal(synth, first, 48);
        assert_int_equal(
            kw_ks_p11_op_run(key, KW_OP_TLS_RSA_DECRYPT, c, 256, 0x0302, out, sizeof(out), &outlen),
            0);
        assert_memory_not_equal(out, first, 48); /* the version is an input of the derivation */
    }
    /* wrong length and a ciphertext >= n: still 48 random bytes, no error */
    assert_int_equal(
        kw_ks_p11_op_run(key, KW_OP_TLS_RSA_DECRYPT, c, 100, 0x0303, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 48);
    memset(c, 0xff, sizeof(c));
    assert_int_equal(
        kw_ks_p11_op_run(key, KW_OP_TLS_RSA_DECRYPT, c, 256, 0x0303, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 48);
}

static void expect_load_error(const kw_ks_p11_spec_t *spec, int want, const char *why)
{
    kw_ks_p11_keylist_t list;
    char err[512] = "";
    assert_int_equal(kw_ks_p11_load(fx.ctx, spec, &list, err, sizeof(err)), want);
    if (strstr(err, why) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, why);
    assert_int_equal(list.n, 0);
}

static void test_load_errors(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    kw_ks_p11_spec_t no_token = {NULL, fx.module, "nosuchtoken", fx.pin_file};
    expect_load_error(&no_token, KW_ENOKEY, "no token labelled 'nosuchtoken'");
    kw_ks_p11_spec_t no_module = {NULL, "/nonexistent/libp11.so", TOKEN, fx.pin_file};
    expect_load_error(&no_module, KW_EIO, "cannot load pkcs11 module");
    kw_ks_p11_spec_t no_pinfile = {NULL, fx.module, TOKEN, "/nonexistent/pin"};
    expect_load_error(&no_pinfile, KW_EIO, "cannot read the PIN file");
    kw_ks_p11_spec_t nothing = {NULL, NULL, TOKEN, fx.pin_file};
    expect_load_error(&nothing, KW_ECONFIG, "no module given");
    kw_ks_p11_spec_t no_pin = {NULL, fx.module, TOKEN, NULL};
    expect_load_error(&no_pin, KW_ECONFIG, "no PIN given");
    kw_ks_p11_spec_t bad_uri = {"pkcs11:tokn=x", fx.module, NULL, fx.pin_file};
    expect_load_error(&bad_uri, KW_EINVAL, "unknown attribute");
}

static void test_uri_filter(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char uri[512];
    snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=ec?module-path=%s&pin-source=file:%s", TOKEN,
             fx.module, fx.pin_file);
    kw_ks_p11_spec_t spec = {uri, NULL, NULL, NULL};
    kw_ks_p11_keylist_t list;
    char err[512] = "";
    assert_int_equal(kw_ks_p11_load(fx.ctx, &spec, &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 1);
    assert_int_equal(EVP_PKEY_eq(list.v[0].pub, fx.ec), 1);
    kw_ks_p11_keylist_free(&list);
    snprintf(uri, sizeof(uri), "pkcs11:token=%s;id=%%03?pin-value=%s", TOKEN, PIN);
    spec.uri = uri;
    spec.module = fx.module;
    assert_int_equal(kw_ks_p11_load(fx.ctx, &spec, &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 1);
    assert_int_equal(EVP_PKEY_eq(list.v[0].pub, fx.ed), 1);
    kw_ks_p11_keylist_free(&list);
}

static void test_bad_handle(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    kw_ks_p11_key_t bogus = *find(fx.ec)->key;
    bogus.handle = 0x7fffff00;
    uint8_t digest[32] = {1};
    uint8_t sig[256];
    size_t siglen = 0;
    uint8_t rc =
        kw_ks_p11_op_run(&bogus, KW_OP_ECDSA_SIGN_SHA256, digest, 32, 0, sig, sizeof(sig), &siglen);
    assert_true(rc == KW_ERR_CRYPTO || rc == KW_ERR_INTERNAL);
    /* the token still works afterwards */
    sign_verify(fx.ec, KW_OP_ECDSA_SIGN_SHA256, NULL, 0, 32);
}

static void *sign_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 40; i++) {
        sign_verify(fx.ec, KW_OP_ECDSA_SIGN_SHA256, NULL, 0, 32);
        sign_verify(fx.rsa, KW_OP_RSA_PSS_SIGN_SHA256, "SHA256", RSA_PKCS1_PSS_PADDING, 32);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sign_many, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    const kw_ks_p11_token_t *t = find(fx.ec)->key->token;
    assert_true(t->n_idle >= 1 && t->n_idle <= KW_P11_POOL_MAX);
}

/* The token's keys in a key store point at the PKCS#11 backend table (not local: the loop leaves
 * them to the workers); an operation through key->backend->op_run, and through kw_ks_op_run
 * (ops/, which only calls the table), runs on the token. */
static void test_backend_table(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    assert_string_equal(kw_ks_backend_pkcs11.name, "pkcs11");
    assert_int_equal(kw_ks_backend_pkcs11.local, 0);
    kw_ks_p11_spec_t spec = {NULL, fx.module, TOKEN, fx.pin_file};
    kw_keystore_src_t src = {NULL, 0, &spec, 1, fx.ctx};
    kw_keystore_t *store = NULL;
    char err[512] = "";
    assert_int_equal(kw_keystore_load_src(&src, &store, NULL, err, sizeof(err)), 0);
    assert_int_equal(kw_keystore_count(store), 3);
    const kw_ks_key_t *ec = NULL;
    for (size_t i = 0; i < kw_keystore_count(store); i++) {
        assert_ptr_equal(kw_keystore_get(store, i)->backend, &kw_ks_backend_pkcs11);
        if (EVP_PKEY_eq(kw_keystore_get(store, i)->pkey, fx.ec) == 1)
            ec = kw_keystore_get(store, i);
    }
    assert_non_null(ec);
    kw_ks_op_cache_t *cache = kw_ks_op_cache_new(8);
    assert_non_null(cache);
    uint8_t digest[32] = {7};
    uint8_t sig[KW_OP_OUT_MAX];
    for (int via_ops = 0; via_ops < 2; via_ops++) {
        size_t siglen = 0;
        uint8_t rc =
            via_ops ? kw_ks_op_run(cache, ec, KW_OP_ECDSA_SIGN_SHA256, digest, 32, 0, sig, &siglen)
                    : ec->backend->op_run(cache, ec, KW_OP_ECDSA_SIGN_SHA256, digest, 32, 0, sig,
                                          &siglen);
        assert_int_equal(rc, 0);
        EVP_PKEY_CTX *v = EVP_PKEY_CTX_new_from_pkey(NULL, fx.ec, NULL);
        assert_non_null(v);
        assert_int_equal(EVP_PKEY_verify_init(v), 1);
        assert_int_equal(EVP_PKEY_verify(v, sig, siglen, digest, 32), 1);
        EVP_PKEY_CTX_free(v);
    }
    kw_ks_op_cache_free(cache);
    kw_keystore_unref(store);
}

/* Child mode (argv[1] == "--wrong-pin"): a fresh process, whose token is not logged in yet,
 * must refuse a wrong PIN. (In this process the token is logged in already, and Cryptoki then
 * answers CKR_USER_ALREADY_LOGGED_IN without checking the PIN.) */
static int wrong_pin_child(const char *module, const char *pin_file)
{
    kw_ks_p11_ctx_t *ctx = NULL;
    kw_ks_p11_keylist_t list;
    char err[512] = "";
    kw_ks_p11_spec_t spec = {NULL, module, TOKEN, pin_file};
    if (kw_ks_p11_ctx_new(&ctx) != 0)
        return 2;
    int rc = kw_ks_p11_load(ctx, &spec, &list, err, sizeof(err));
    kw_ks_p11_keylist_free(&list);
    kw_ks_p11_ctx_free(ctx);
    if (rc == KW_EDENIED && strstr(err, "CKR_PIN_INCORRECT") != NULL)
        return 0;
    fprintf(stderr, "wrong PIN: rc %d, %s\n", rc, err);
    return 1;
}

static void test_wrong_pin(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char bad_pin[160];
    snprintf(bad_pin, sizeof(bad_pin), "%s/badpin", fx.dir);
    FILE *f = fopen(bad_pin, "w");
    assert_non_null(f);
    fputs("0000\n", f);
    fclose(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "pkcs11_store_test", "--wrong-pin", fx.module, bad_pin,
              (char *)NULL);
        _exit(3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--wrong-pin") == 0)
        return wrong_pin_child(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),          cmocka_unit_test(test_sign),
        cmocka_unit_test(test_ed25519),       cmocka_unit_test(test_decrypt),
        cmocka_unit_test(test_tls_decrypt),   cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_uri_filter),    cmocka_unit_test(test_bad_handle),
        cmocka_unit_test(test_threads),       cmocka_unit_test(test_wrong_pin),
        cmocka_unit_test(test_backend_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
