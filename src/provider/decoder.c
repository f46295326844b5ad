/*
 * Decoders for key stub files (include/keyward/stub.h), so PEM_read_bio_PrivateKey (nginx,
 * HAProxy) and OSSL_STORE "file:" loads (openssl s_server -key STUB) yield a keyward key.
 *
 * OpenSSL 3.0's own PEM-to-DER decoder passes unknown PEM labels on empty-handed, so a
 * "DER" decoder with input=pem reads the "KEYWARD KEY" PEM block and passes its DER on without a
 * type or structure (so OSSL_STORE's generic DER fallback also reaches the next step). Then one
 * DER decoder per key type (RSA, EC, ED25519) recognises the stub, builds the key and hands a
 * reference to keymgmt load. The stub is checked (key id = SHA-256 of its public key; the key
 * server knows the key, see load_check in docs/provider.md) already at the PEM step: errors raised
 * there reach the user on every load path, while OSSL_STORE drops those of the DER step.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "keyward/stub.h"
#include "provider.h"
#include "remote.h"
#include "kw_clock.h"

static OSSL_FUNC_decoder_newctx_fn dec_newctx;
static OSSL_FUNC_decoder_freectx_fn dec_freectx;
static OSSL_FUNC_decoder_does_selection_fn dec_does_selection;
static OSSL_FUNC_decoder_decode_fn pem_decode;

/* The decoder context is the provider context: decoders keep no state between calls. */
static void *dec_newctx(void *provctx)
{
    return provctx;
}

static void dec_freectx(void *vctx)
{
}

static int dec_does_selection(void *provctx, int selection)
{
    return 1; /* a stub names a key pair; public-key reads get it too */
}

/* Reads the whole DER input (a stub is small); NULL when it is larger than any stub. */
static unsigned char *read_all(kw_prov_ctx_t *pctx, OSSL_CORE_BIO *cin, size_t *len)
{
    BIO *in = BIO_new_from_core_bio(pctx->libctx, cin);
    unsigned char *buf = OPENSSL_malloc(KW_STUB_MAX_DER + 1);
    size_t n = 0;
    int r = 1;
    while (in != NULL && buf != NULL && n <= KW_STUB_MAX_DER && r > 0) {
        r = BIO_read(in, buf + n, (int)(KW_STUB_MAX_DER + 1 - n));
        n += r > 0 ? (size_t)r : 0;
    }
    BIO_free(in);
    if (buf == NULL || n == 0 || n > KW_STUB_MAX_DER) {
        OPENSSL_free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

#define KW_CHECKED_TTL_S 30

/* 1 when key was checked on the key server in the last KW_CHECKED_TTL_S seconds. */
static int recently_checked(kw_key_t *key)
{
    kw_prov_ctx_t *pctx = key->pctx;
    int64_t now = kw_clock_s();
    int hit = 0;
    pthread_mutex_lock(&pctx->lock);
    for (unsigned i = 0; i < KW_CHECKED_SLOTS && !hit; i++) {
        hit = pctx->checked_at[i] != 0 && now - pctx->checked_at[i] < KW_CHECKED_TTL_S &&
              memcmp(pctx->checked[i], key->digest, KW_DIGEST_LEN) == 0;
    }
    pthread_mutex_unlock(&pctx->lock);
    return hit;
}

static void mark_checked(kw_key_t *key)
{
    kw_prov_ctx_t *pctx = key->pctx;
    pthread_mutex_lock(&pctx->lock);
    unsigned slot = pctx->checked_next++ % KW_CHECKED_SLOTS;
    memcpy(pctx->checked[slot], key->digest, KW_DIGEST_LEN);
    pctx->checked_at[slot] = kw_clock_s();
    pthread_mutex_unlock(&pctx->lock);
}

/* A failure to ask that will not go away by itself: our own credential files or their contents,
 * or a key server that refused this edge. Refused at load even with load_check = auto. (Not a
 * key server name that does not resolve now: the client is made again on the next use.) */
static int config_failure(int reason)
{
    return reason == KW_PROV_R_LOCAL_FILE || reason == KW_PROV_R_CREDENTIALS ||
           reason == KW_PROV_R_REFUSED;
}

/*
 * Load-time check that the key server knows the key (load_check setting). Returns 1 to go on,
 * 0 to refuse (error raised). When no key server answers (auto), the key loads with a warning
 * on stderr that gives the real cause.
 */
static int check_on_key_server(kw_key_t *key)
{
    int r;
    if (key->pctx->cfg.load_check == KW_LOAD_CHECK_OFF || recently_checked(key))
        return 1;
    ERR_set_mark();
    r = kw_remote_has_key(key);
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_last_error_data(&data, &flags);
    if (r == KW_LOOKUP_FOUND || r == KW_LOOKUP_MISSING ||
        key->pctx->cfg.load_check == KW_LOAD_CHECK_STRICT || config_failure(ERR_GET_REASON(e))) {
        ERR_clear_last_mark();
        if (r == KW_LOOKUP_FOUND)
            mark_checked(key);
        return r == KW_LOOKUP_FOUND;
    }
    if (key->pctx->cfg.servers == NULL)
        fprintf(stderr,
                "keyward: warning: no key server is configured (servers = HOST:PORT in the "
                "keyward section of openssl.cnf, or KEYWARD_SERVERS), so key %s is loaded "
                "unchecked and every operation with it fails until one is\n",
                key->idtext);
    else
        fprintf(stderr,
                "keyward: warning: could not ask key server %s about key %s; loading it anyway "
                "(handshakes fail until a key server answers): %s\n",
                kw_prov_servers(key->pctx), key->idtext,
                (flags & ERR_TXT_STRING) != 0 && data != NULL ? data : "no reason given");
    ERR_pop_to_mark();
    mark_checked(key);
    return 1;
}

/* Builds the key a stub names. NULL with *fatal = 1 (raised) when the stub is bad. */
static kw_key_t *key_from_stub(kw_prov_ctx_t *pctx, const kw_stub_t *stub, int *fatal)
{
    kw_key_t *key = kw_key_from_spki(pctx, stub->spki, stub->spki_len);
    *fatal = 1;
    if (key == NULL)
        return NULL;
    if (memcmp(key->digest, stub->digest, KW_DIGEST_LEN) != 0) {
        kw_prov_raise(pctx, KW_PROV_R_BAD_KEY,
                      "key stub is inconsistent: its key id is not the SHA-256 of its public key "
                      "(%s); write it again with keyward stub --cert SITE.crt",
                      key->idtext);
        kw_key_free(key);
        return NULL;
    }
    *fatal = 0;
    return key;
}

/*
 * The key a stub in der names, checked (consistent, known to the key server). NULL with
 * *fatal = 0 when der is not a stub; NULL with *fatal = 1 (raised) when the stub is refused.
 */
static kw_key_t *checked_key(kw_prov_ctx_t *pctx, const unsigned char *der, size_t len, int *fatal)
{
    kw_stub_t stub;
    kw_key_t *key;
    *fatal = 0;
    if (der == NULL || kw_stub_decode(der, len, &stub) != 0)
        return NULL;
    key = key_from_stub(pctx, &stub, fatal);
    if (key != NULL && !check_on_key_server(key)) {
        kw_key_free(key);
        *fatal = 1;
        return NULL;
    }
    return key;
}

static int pem_decode(void *vctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                      void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    kw_prov_ctx_t *pctx = vctx;
    BIO *in = BIO_new_from_core_bio(pctx->libctx, cin);
    char *name = NULL;
    char *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    int ok = 1; /* "carry on": not ours is not an error; a refused stub is (ok = 0) */
    if (in == NULL)
        return 0;
    ERR_set_mark();
    if (PEM_read_bio(in, &name, &header, &der, &der_len) > 0 &&
        strcmp(name, KW_STUB_PEM_LABEL) == 0) {
        OSSL_PARAM params[2];
        int fatal = 0;
        kw_key_t *key;
        ERR_pop_to_mark();
        key = checked_key(pctx, der, (size_t)der_len, &fatal);
        if (key == NULL && !fatal)
            kw_prov_raise(pctx, KW_PROV_R_BAD_KEY,
                          "malformed KEYWARD KEY stub; write it again "
                          "with keyward stub --cert SITE.crt");
        kw_key_free(key);
        if (key == NULL) {
            ok = 0;
            goto end;
        }
        params[0] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)der_len);
        params[1] = OSSL_PARAM_construct_end();
        ok = data_cb(params, data_cbarg);
    } else {
        ERR_pop_to_mark();
    }
end:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(in);
    return ok;
}

static int der_decode(kw_key_type_t type, kw_prov_ctx_t *pctx, OSSL_CORE_BIO *cin,
                      OSSL_CALLBACK *data_cb, void *data_cbarg)
{
    size_t len = 0;
    unsigned char *der = read_all(pctx, cin, &len);
    int fatal = 0;
    kw_key_t *key = checked_key(pctx, der, len, &fatal);
    int ok = !fatal;
    if (key != NULL && key->type == type) {
        int objtype = OSSL_OBJECT_PKEY;
        kw_key_ref_t ref;
        OSSL_PARAM params[4];
        kw_key_ref_init(&ref, key);
        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                     (char *)kw_key_type_name(type), 0);
        params[2] =
            OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof(ref));
        params[3] = OSSL_PARAM_construct_end();
        ok = data_cb(params, data_cbarg);
    }
    kw_key_free(key);
    OPENSSL_free(der);
    return ok;
}

#define KW_DER_DECODER(name, TYPE)                                                                 \
    static OSSL_FUNC_decoder_decode_fn name##_decode;                                              \
    static int name##_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,                        \
                             OSSL_CALLBACK *data_cb, void *data_cbarg,                             \
                             OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)                      \
    {                                                                                              \
        return der_decode(TYPE, vctx, cin, data_cb, data_cbarg);                                   \
    }                                                                                              \
    const OSSL_DISPATCH kw_##name##_decoder_functions[] = {                                        \
        {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx},                                    \
        {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx},                                  \
        {OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection},                    \
        {OSSL_FUNC_DECODER_DECODE, (void (*)(void))name##_decode},                                 \
        {0, NULL},                                                                                 \
    };

KW_DER_DECODER(rsa, KW_KEY_RSA)
KW_DER_DECODER(ec, KW_KEY_EC)
KW_DER_DECODER(ed25519, KW_KEY_ED25519)

const OSSL_DISPATCH kw_pem_decoder_functions[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx},
    {OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))pem_decode},
    {0, NULL},
};
