/*
 * kw_prov_check: drives the keyward provider through the EVP API the way libssl does, for the
 * provider integration tests. Loads a key (a stub file via PEM_read_bio_PrivateKey, or a
 * keyward: URI via OSSL_STORE), checks it against a certificate with X509_check_private_key, and
 * runs operations whose results it verifies with the certificate's public key (default provider):
 *   sign:MD      EVP_DigestSign, RSA PKCS#1 v1.5 or ECDSA (MD e.g. SHA256)
 *   pss:MD       EVP_DigestSign, RSA-PSS, salt length = digest length
 *   rawsign:MD   EVP_PKEY_sign over a pre-computed digest
 *   ed25519      one-shot EVP_DigestSign without digest
 *   decrypt      RSA PKCS#1 v1.5 decryption of a random message
 *   rawdecrypt   RSA decryption without padding
 *   tlsdecrypt   RSA_PKCS1_WITH_TLS_PADDING: a good PMS decrypts; a bad one yields a random PMS
 *   badpss       RSA-PSS with salt length "max": must be refused
 *   stream:MD    EVP_DigestSignUpdate in three chunks, the context duplicated (EVP_MD_CTX_copy_ex,
 *                the provider's dupctx) after the first; both finals (EVP_DigestSignFinal, the
 *                size query first) give signatures that verify, over the whole message and over
 *                what each context saw
 *   noexport     no private part leaves the key: EVP_PKEY_todata of the key pair, of the private
 *                key, PEM and DER encoding of the private key and EVP_PKEY_get_bn_param("d"/"priv")
 *                all fail or carry no private parameter; the public key exports
 * With --async every operation runs inside an ASYNC job; the provider pauses the job (rather than
 * block) while the key server works, unless the reply is already in. The tool waits on the job's
 * fds with select() between pauses and prints how often each job paused.
 * Usage: kw_prov_check [--async] KEY CERT [OP...]. Exit 0 all ok, 3 key/cert mismatch, 1 other.
 */
#include <stdio.h>
#include <string.h>
#include <sys/select.h>

#include <openssl/async.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

typedef struct op_s {
    const char *name;
    EVP_PKEY *key;
    EVP_PKEY *pub;
    int ok;
    int pauses;
} op_t;

static EVP_PKEY *load_key(const char *spec)
{
    EVP_PKEY *pkey = NULL;
    if (strncmp(spec, "keyward:", 8) == 0) {
        OSSL_STORE_CTX *st = OSSL_STORE_open(spec, NULL, NULL, NULL, NULL);
        while (st != NULL && pkey == NULL && !OSSL_STORE_eof(st)) {
            OSSL_STORE_INFO *info = OSSL_STORE_load(st);
            if (info != NULL && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
                pkey = OSSL_STORE_INFO_get1_PKEY(info);
            if (info == NULL && st != NULL)
                break;
            OSSL_STORE_INFO_free(info);
        }
        OSSL_STORE_close(st);
        return pkey;
    }
    BIO *in = BIO_new_file(spec, "r");
    if (in != NULL)
        pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    BIO_free(in);
    return pkey;
}

static X509 *load_cert(const char *path)
{
    BIO *in = BIO_new_file(path, "r");
    X509 *x = in == NULL ? NULL : PEM_read_bio_X509(in, NULL, NULL, NULL);
    BIO_free(in);
    return x;
}

static int set_pss(EVP_PKEY_CTX *pctx, const char *saltlen)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_ctrl_str(pctx, "rsa_pss_saltlen", saltlen) > 0;
}

/* EVP_DigestSign with key, verified with pub. mode: 0 plain, 1 PSS, 2 PSS salt max (refused). */
static int digest_sign(op_t *op, const char *md, int mode)
{
    EVP_MD_CTX *sctx = EVP_MD_CTX_new();
    EVP_MD_CTX *vctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char msg[300];
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    int ok;
    RAND_bytes(msg, sizeof(msg));
    ok = EVP_DigestSignInit_ex(sctx, &pctx, md, NULL, NULL, op->key, NULL) == 1;
    if (ok && mode > 0)
        ok = set_pss(pctx, mode == 1 ? "digest" : "max");
    if (mode == 2) { /* must be refused, at the parameter or at signing */
        ok = !ok || EVP_DigestSign(sctx, sig, &siglen, msg, sizeof(msg)) != 1;
        EVP_MD_CTX_free(sctx);
        EVP_MD_CTX_free(vctx);
        return ok;
    }
    ok = ok && EVP_DigestSign(sctx, sig, &siglen, msg, sizeof(msg)) == 1;
    ok = ok && EVP_DigestVerifyInit_ex(vctx, &pctx, md, NULL, NULL, op->pub, NULL) == 1;
    if (ok && mode == 1)
        ok = set_pss(pctx, "digest");
    ok = ok && EVP_DigestVerify(vctx, sig, siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(sctx);
    EVP_MD_CTX_free(vctx);
    return ok;
}

/* Verifies sig over msg with pub (PKCS#1 v1.5 / ECDSA) and digest md. */
static int verify_msg(EVP_PKEY *pub, const char *md, const unsigned char *sig, size_t siglen,
                      const unsigned char *msg, size_t len)
{
    EVP_MD_CTX *vctx = EVP_MD_CTX_new();
    int ok = vctx != NULL && EVP_DigestVerifyInit_ex(vctx, NULL, md, NULL, NULL, pub, NULL) == 1 &&
             EVP_DigestVerify(vctx, sig, siglen, msg, len) == 1;
    EVP_MD_CTX_free(vctx);
    return ok;
}

/* Final of a streaming context: the size query, then the signature into sig (of cap bytes). */
static int sign_final(EVP_MD_CTX *ctx, unsigned char *sig, size_t cap, size_t *siglen)
{
    size_t need = 0;
    if (EVP_DigestSignFinal(ctx, NULL, &need) != 1 || need == 0 || need > cap)
        return 0;
    *siglen = need;
    return EVP_DigestSignFinal(ctx, sig, siglen) == 1;
}

/* Update/final in chunks with a duplicated context: the way `openssl dgst -sign` and
 * applications that hash a stream use a key. */
static int stream_sign(op_t *op, const char *md)
{
    unsigned char msg[3000];
    unsigned char sig[1024];
    unsigned char sig2[1024];
    size_t siglen = 0;
    size_t sig2len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_MD_CTX *dup = EVP_MD_CTX_new();
    RAND_bytes(msg, sizeof(msg));
    int ok = ctx != NULL && dup != NULL &&
             EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, op->key, NULL) == 1 &&
             EVP_DigestSignUpdate(ctx, msg, 1000) == 1 && EVP_MD_CTX_copy_ex(dup, ctx) == 1 &&
             EVP_DigestSignUpdate(ctx, msg + 1000, 1000) == 1 &&
             EVP_DigestSignUpdate(ctx, msg + 2000, 1000) == 1 &&
             sign_final(ctx, sig, sizeof(sig), &siglen) &&
             EVP_DigestSignUpdate(dup, msg + 1000, 500) == 1 &&
             sign_final(dup, sig2, sizeof(sig2), &sig2len);
    ok = ok && verify_msg(op->pub, md, sig, siglen, msg, sizeof(msg)) &&
         verify_msg(op->pub, md, sig2, sig2len, msg, 1500) &&
         !verify_msg(op->pub, md, sig2, sig2len, msg, sizeof(msg));
    if (ok)
        ERR_clear_error(); /* the expected failure of the last verify */
    EVP_MD_CTX_free(ctx);
    EVP_MD_CTX_free(dup);
    return ok;
}

/* 1 when params (from EVP_PKEY_todata) is NULL or holds none of the private parameter names. */
static int no_private_params(OSSL_PARAM *params)
{
    static const char *const priv[] = {
        OSSL_PKEY_PARAM_PRIV_KEY,        OSSL_PKEY_PARAM_RSA_D,
        OSSL_PKEY_PARAM_RSA_FACTOR1,     OSSL_PKEY_PARAM_RSA_FACTOR2,
        OSSL_PKEY_PARAM_RSA_EXPONENT1,   OSSL_PKEY_PARAM_RSA_EXPONENT2,
        OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    int ok = 1;
    for (size_t i = 0; params != NULL && i < sizeof(priv) / sizeof(priv[0]); i++)
        ok &= OSSL_PARAM_locate(params, priv[i]) == NULL;
    OSSL_PARAM_free(params);
    return ok;
}

static int no_export(op_t *op)
{
    OSSL_PARAM *params = NULL;
    BIGNUM *bn = NULL;
    int ok = EVP_PKEY_todata(op->key, EVP_PKEY_KEYPAIR, &params) != 1 || no_private_params(params);
    params = NULL;
    ok &= EVP_PKEY_todata(op->key, OSSL_KEYMGMT_SELECT_PRIVATE_KEY, &params) != 1 ||
          no_private_params(params);
    params = NULL;
    ok &= EVP_PKEY_todata(op->key, EVP_PKEY_PUBLIC_KEY, &params) == 1 && params != NULL;
    OSSL_PARAM_free(params);
    ok &= EVP_PKEY_get_bn_param(op->key, OSSL_PKEY_PARAM_RSA_D, &bn) != 1 && bn == NULL;
    ok &= EVP_PKEY_get_bn_param(op->key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 && bn == NULL;
    BIO *mem = BIO_new(BIO_s_mem());
    ok &= mem != NULL && PEM_write_bio_PrivateKey(mem, op->key, NULL, NULL, 0, NULL, NULL) != 1;
    BIO_free(mem);
    unsigned char *der = NULL;
    int len = i2d_PrivateKey(op->key, &der);
    ok &= len <= 0;
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

static int raw_sign(op_t *op, const char *mdname)
{
    EVP_PKEY_CTX *sctx = EVP_PKEY_CTX_new_from_pkey(NULL, op->key, NULL);
    EVP_PKEY_CTX *vctx = EVP_PKEY_CTX_new_from_pkey(NULL, op->pub, NULL);
    EVP_MD *md = EVP_MD_fetch(NULL, mdname, NULL);
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    int ok = md != NULL && RAND_bytes(dgst, EVP_MD_get_size(md)) == 1;
    ok = ok && EVP_PKEY_sign_init(sctx) == 1 && EVP_PKEY_CTX_set_signature_md(sctx, md) == 1 &&
         EVP_PKEY_sign(sctx, sig, &siglen, dgst, (size_t)EVP_MD_get_size(md)) == 1;
    ok = ok && EVP_PKEY_verify_init(vctx) == 1 && EVP_PKEY_CTX_set_signature_md(vctx, md) == 1 &&
         EVP_PKEY_verify(vctx, sig, siglen, dgst, (size_t)EVP_MD_get_size(md)) == 1;
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(sctx);
    EVP_PKEY_CTX_free(vctx);
    return ok;
}

static int encrypt_pub(EVP_PKEY *pub, int pad, const unsigned char *in, size_t inlen,
                       unsigned char *out, size_t *outlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, pad) == 1 &&
             EVP_PKEY_encrypt(ctx, out, outlen, in, inlen) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* mode 0 PKCS#1, 1 raw, 2 TLS (good PMS), 3 TLS with a PMS of the wrong version */
static int decrypt(op_t *op, int mode)
{
    unsigned char msg[512];
    unsigned char ct[1024];
    unsigned char pt[1024];
    size_t ctlen = sizeof(ct);
    size_t ptlen = sizeof(pt);
    size_t k = (size_t)EVP_PKEY_get_size(op->pub);
    size_t mlen = mode == 1 ? k : 48;
    unsigned int version = 0x0303;
    int pad = mode == 1 ? RSA_NO_PADDING : RSA_PKCS1_PADDING;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, op->key, NULL);
    int ok;
    RAND_bytes(msg, (int)mlen);
    if (mode == 1)
        msg[0] = 0; /* below the modulus */
    msg[0] = mode >= 2 ? 0x03 : msg[0];
    msg[1] = mode == 2 ? 0x03 : (mode == 3 ? 0x01 : msg[1]);
    ok = encrypt_pub(op->pub, pad, msg, mlen, ct, &ctlen) && EVP_PKEY_decrypt_init(ctx) == 1;
    if (ok && mode >= 2) {
        OSSL_PARAM params[2];
        params[0] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, &version);
        params[1] = OSSL_PARAM_construct_end();
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_WITH_TLS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_params(ctx, params) == 1;
        ptlen = 48;
    } else if (ok) {
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, pad) == 1;
    }
    ok = ok && EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen) == 1 && ptlen == mlen;
    if (ok)
        ok = (memcmp(pt, msg, mlen) == 0) == (mode != 3);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int run_op(op_t *op)
{
    const char *n = op->name;
    if (strncmp(n, "sign:", 5) == 0)
        return digest_sign(op, n + 5, 0);
    if (strncmp(n, "pss:", 4) == 0)
        return digest_sign(op, n + 4, 1);
    if (strcmp(n, "badpss") == 0)
        return digest_sign(op, "SHA256", 2);
    if (strncmp(n, "rawsign:", 8) == 0)
        return raw_sign(op, n + 8);
    if (strncmp(n, "stream:", 7) == 0)
        return stream_sign(op, n + 7);
    if (strcmp(n, "noexport") == 0)
        return no_export(op);
    if (strcmp(n, "ed25519") == 0)
        return digest_sign(op, NULL, 0);
    if (strcmp(n, "decrypt") == 0)
        return decrypt(op, 0);
    if (strcmp(n, "rawdecrypt") == 0)
        return decrypt(op, 1);
    if (strcmp(n, "tlsdecrypt") == 0)
        return decrypt(op, 2) && decrypt(op, 3);
    fprintf(stderr, "unknown operation %s\n", n);
    return 0;
}

static int job_main(void *arg)
{
    op_t *op = *(op_t **)arg;
    op->ok = run_op(op);
    return op->ok;
}

/* Runs op inside an ASYNC job, waiting on the job's fds with select() between pauses. */
static int run_async(op_t *op)
{
    ASYNC_JOB *job = NULL;
    ASYNC_WAIT_CTX *wctx = ASYNC_WAIT_CTX_new();
    int ret = 0;
    int rc = ASYNC_start_job(&job, wctx, &ret, job_main, &op, sizeof(op));
    while (rc == ASYNC_PAUSE) {
        OSSL_ASYNC_FD fds[4];
        size_t nfds = 0;
        fd_set rfds;
        int maxfd = -1;
        op->pauses++;
        ASYNC_WAIT_CTX_get_all_fds(wctx, NULL, &nfds);
        if (nfds > 0 && nfds <= 4) {
            ASYNC_WAIT_CTX_get_all_fds(wctx, fds, &nfds);
            FD_ZERO(&rfds);
            for (size_t i = 0; i < nfds; i++) {
                FD_SET(fds[i], &rfds);
                maxfd = fds[i] > maxfd ? fds[i] : maxfd;
            }
            select(maxfd + 1, &rfds, NULL, NULL, NULL);
        }
        rc = ASYNC_start_job(&job, wctx, &ret, job_main, &op, sizeof(op));
    }
    ASYNC_WAIT_CTX_free(wctx);
    return rc == ASYNC_FINISH && op->ok;
}

int main(int argc, char **argv)
{
    int async = argc > 1 && strcmp(argv[1], "--async") == 0;
    int failed = 0;
    if (argc - async < 3) {
        fprintf(stderr, "usage: kw_prov_check [--async] KEY CERT [OP...]\n");
        return 1;
    }
    EVP_PKEY *key = load_key(argv[1 + async]);
    X509 *cert = load_cert(argv[2 + async]);
    if (key == NULL || cert == NULL) {
        fprintf(stderr, "cannot load %s\n", key == NULL ? argv[1 + async] : argv[2 + async]);
        ERR_print_errors_fp(stderr);
        EVP_PKEY_free(key);
        X509_free(cert);
        return 1;
    }
    if (X509_check_private_key(cert, key) != 1) {
        fprintf(stderr, "key does not match the certificate\n");
        ERR_print_errors_fp(stderr);
        EVP_PKEY_free(key);
        X509_free(cert);
        return 3;
    }
    if (ERR_peek_error() != 0) { /* libssl reads a non-empty queue as a failed handshake */
        fprintf(stderr, "loading and matching the key left errors in the queue\n");
        ERR_print_errors_fp(stderr);
        EVP_PKEY_free(key);
        X509_free(cert);
        return 1;
    }
    printf("ok: key %s matches the certificate\n", EVP_PKEY_get0_type_name(key));
    for (int i = 3 + async; i < argc; i++) {
        op_t op = {argv[i], key, X509_get0_pubkey(cert), 0, 0};
        int ok = async ? ASYNC_is_capable() && run_async(&op) : run_op(&op);
        if (ok && strcmp(op.name, "badpss") != 0 && strcmp(op.name, "noexport") != 0 &&
            ERR_peek_error() != 0) {
            fprintf(stderr, "%s succeeded but left errors in the queue\n", op.name);
            ok = 0;
        }
        if (ok)
            printf("ok: %s%s (%d pauses)\n", op.name, async ? " async" : "", op.pauses);
        else
            fprintf(stderr, "FAILED: %s%s\n", op.name, async ? " async" : "");
        if (!ok)
            ERR_print_errors_fp(stderr);
        ERR_clear_error();
        failed |= !ok;
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    return failed;
}
