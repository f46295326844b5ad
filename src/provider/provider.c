/*
 * keyward.so entry point: OSSL_provider_init reads the settings from the provider's openssl.cnf
 * section (environment variables override them, for tests and containers), creates the provider
 * context and answers OpenSSL's queries for algorithms. The key server client is created on the
 * first key use, not here: programs that load the provider but never use a keyward key (and
 * nginx's master before it forks) pay nothing.
 */
#include "provider.h"

#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "keyward/error.h"
#include "kw_file.h"
#include "master.h"
#include "kw_num.h"

static OSSL_FUNC_provider_teardown_fn kw_prov_teardown;
static OSSL_FUNC_provider_gettable_params_fn kw_prov_gettable_params;
static OSSL_FUNC_provider_get_params_fn kw_prov_get_params;
static OSSL_FUNC_provider_query_operation_fn kw_prov_query;
static OSSL_FUNC_provider_get_reason_strings_fn kw_prov_reason_strings;

#define RSA_NAMES     "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define EC_NAMES      "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define ED25519_NAMES "ED25519:1.3.101.112"
#define DECODER_PROPS KW_PROV_PROPS ",input=der,structure=keyward"

static const OSSL_ALGORITHM kw_keymgmt[] = {
    {RSA_NAMES, KW_PROV_PROPS, kw_rsa_keymgmt_functions, "RSA key on a keyward key server"},
    {EC_NAMES, KW_PROV_PROPS, kw_ec_keymgmt_functions, "EC key on a keyward key server"},
    {ED25519_NAMES, KW_PROV_PROPS, kw_ed25519_keymgmt_functions,
     "Ed25519 key on a keyward key server"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM kw_signature[] = {
    {RSA_NAMES, KW_PROV_PROPS, kw_rsa_signature_functions, "RSA PKCS#1 / PSS on a key server"},
    {"ECDSA", KW_PROV_PROPS, kw_ecdsa_signature_functions, "ECDSA on a key server"},
    {ED25519_NAMES, KW_PROV_PROPS, kw_ed25519_signature_functions, "Ed25519 on a key server"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM kw_asym_cipher[] = {
    {RSA_NAMES, KW_PROV_PROPS, kw_rsa_asym_cipher_functions, "RSA decryption on a key server"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM kw_store[] = {
    {"keyward", KW_PROV_PROPS, kw_store_functions, "keyward:sha256=HEX / keyward:ski=HEX"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM kw_decoder[] = {
    {"DER", KW_PROV_PROPS ",input=pem", kw_pem_decoder_functions, "KEYWARD KEY PEM to DER"},
    {RSA_NAMES, DECODER_PROPS, kw_rsa_decoder_functions, "keyward RSA key stub"},
    {EC_NAMES, DECODER_PROPS, kw_ec_decoder_functions, "keyward EC key stub"},
    {ED25519_NAMES, DECODER_PROPS, kw_ed25519_decoder_functions, "keyward Ed25519 key stub"},
    {NULL, NULL, NULL, NULL},
};

/* Offered only in master-secret mode; libssl picks it with default_properties = ?keyward.prf=yes.
 */
static const OSSL_ALGORITHM kw_kdf[] = {
    {"TLS1-PRF", KW_PROV_PROPS ",keyward.prf=yes", kw_tls1_prf_functions,
     "TLS 1.2 PRF: master secrets of master-secret mode from the key server"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ITEM kw_reasons[] = {
    {KW_PROV_R_CONFIG, "keyward configuration"},
    {KW_PROV_R_UNREACHABLE, "key server unreachable"},
    {KW_PROV_R_KEY_NOT_FOUND, "key not found on key server"},
    {KW_PROV_R_REMOTE, "key server error"},
    {KW_PROV_R_UNSUPPORTED, "not supported by keyward"},
    {KW_PROV_R_BAD_KEY, "bad keyward key"},
    {KW_PROV_R_NO_PRIVATE, "no private key"},
    {KW_PROV_R_INTERNAL, "keyward internal error"},
    {KW_PROV_R_NOT_EXPORTABLE, "private key not exportable"},
    {KW_PROV_R_LOCAL_FILE, "cannot read a local file"},
    {KW_PROV_R_CREDENTIALS, "bad keyward client credentials"},
    {KW_PROV_R_REFUSED, "key server refused the connection"},
    {KW_PROV_R_NO_THREAD, "cannot start a thread"},
    {KW_PROV_R_NOT_AUTHORISED, "key not authorised for this edge"},
    {0, NULL},
};

const char *kw_prov_servers(const kw_prov_ctx_t *pctx)
{
    return pctx->cfg.servers != NULL ? pctx->cfg.servers : "(none)";
}

/* The reason code for a failed kw_client_new. */
static int client_new_reason(int rc)
{
    switch (rc) {
    case KW_EIO:
        return KW_PROV_R_LOCAL_FILE;
    case KW_ETLS:
        return KW_PROV_R_CREDENTIALS;
    default:
        return KW_PROV_R_CONFIG;
    }
}

kw_client_t *kw_prov_client(kw_prov_ctx_t *pctx)
{
    kw_client_config_t cc;
    char err[512] = "";
    kw_client_t *client;
    int rc = 0;
    if (pctx->cfg.cred_err[0] != '\0') {
        kw_prov_raise(pctx, KW_PROV_R_LOCAL_FILE,
                      "%s (when the provider was loaded, as uid %u); keyward reads its "
                      "credentials when OpenSSL loads its configuration, before a server drops "
                      "privileges: keep them root-only and readable by the user that starts the "
                      "server",
                      pctx->cfg.cred_err, (unsigned)pctx->load_uid);
        return NULL;
    }
    pthread_mutex_lock(&pctx->lock);
    client = pctx->client;
    if (client == NULL && pctx->cfg.servers == NULL) {
        rc = KW_ECONFIG;
        snprintf(err, sizeof(err), "no key servers configured");
    } else if (client == NULL) {
        memset(&cc, 0, sizeof(cc));
        cc.servers = pctx->cfg.servers;
        /* The bytes read at load; the file names only name them in messages. */
        cc.cert_file = pctx->cfg.client_cert;
        cc.key_file = pctx->cfg.client_key;
        cc.ca_file = pctx->cfg.ca;
        cc.cert_pem = (const char *)pctx->cfg.cert_pem;
        cc.cert_pem_len = pctx->cfg.cert_pem_len;
        cc.key_pem = (const char *)pctx->cfg.key_pem;
        cc.key_pem_len = pctx->cfg.key_pem_len;
        cc.ca_pem = (const char *)pctx->cfg.ca_pem;
        cc.ca_pem_len = pctx->cfg.ca_pem_len;
        cc.timeout_ms = pctx->cfg.timeout_ms;
        rc = kw_client_new(&cc, &client, err, sizeof(err));
        pctx->client = rc == 0 ? client : NULL;
    }
    pthread_mutex_unlock(&pctx->lock);
    if (rc == KW_ECONFIG) {
        kw_prov_raise(pctx, KW_PROV_R_CONFIG,
                      "cannot start the keyward client: %s; set servers, client_cert, "
                      "client_key and ca in the keyward section of openssl.cnf or KEYWARD_SERVERS, "
                      "KEYWARD_CLIENT_CERT, KEYWARD_CLIENT_KEY, KEYWARD_CA",
                      err);
        return NULL;
    }
    if (rc != 0) {
        kw_prov_raise(pctx, client_new_reason(rc), "cannot start the keyward client: %s (%s)", err,
                      kw_strerror(rc));
        return NULL;
    }
    return client;
}

/* Setting value: the environment variable when set, else the openssl.cnf value. */
static char *setting(const char *env, const char *cnf)
{
    const char *v = getenv(env);
    if (v == NULL || *v == '\0')
        v = cnf;
    return v == NULL || *v == '\0' ? NULL : OPENSSL_strdup(v);
}

static int parse_bool(const char *v)
{
    return v != NULL && (strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0 ||
                         strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* Reads the provider's openssl.cnf section. Returns 1, or 0 when a value is malformed. */
static int read_settings(kw_prov_ctx_t *pctx, OSSL_FUNC_core_get_params_fn *get_params)
{
    const char *v[7] = {NULL};
    static const char *const names[7] = {"servers",    "client_cert", "client_key",        "ca",
                                         "timeout_ms", "load_check",  "master_secret_mode"};
    OSSL_PARAM params[8];
    char *s;
    for (int i = 0; i < 7; i++)
        params[i] = OSSL_PARAM_construct_utf8_ptr(names[i], (char **)&v[i], 0);
    params[7] = OSSL_PARAM_construct_end();
    if (get_params != NULL && !get_params(pctx->handle, params))
        return 0;
    pctx->cfg.servers = setting("KEYWARD_SERVERS", v[0]);
    pctx->cfg.client_cert = setting("KEYWARD_CLIENT_CERT", v[1]);
    pctx->cfg.client_key = setting("KEYWARD_CLIENT_KEY", v[2]);
    pctx->cfg.ca = setting("KEYWARD_CA", v[3]);
    s = setting("KEYWARD_TIMEOUT_MS", v[4]);
    if (s == NULL || kw_parse_uint(s, 0, UINT_MAX, &pctx->cfg.timeout_ms) != 0)
        pctx->cfg.timeout_ms = 0; /* unset or not a number: the client's default */
    OPENSSL_free(s);
    s = setting("KEYWARD_LOAD_CHECK", v[5]);
    pctx->cfg.load_check = KW_LOAD_CHECK_AUTO;
    if (s != NULL && (strcasecmp(s, "off") == 0 || strcasecmp(s, "no") == 0))
        pctx->cfg.load_check = KW_LOAD_CHECK_OFF;
    else if (s != NULL && strcasecmp(s, "strict") == 0)
        pctx->cfg.load_check = KW_LOAD_CHECK_STRICT;
    OPENSSL_free(s);
    s = setting("KEYWARD_MASTER_SECRET_MODE", v[6]);
    pctx->cfg.master_secret_mode = parse_bool(s);
    OPENSSL_free(s);
    return 1;
}

/* One credential file into memory; on failure the first reason goes to cred_err. */
static void read_credential(kw_prov_ctx_t *pctx, const char *path, const char *what, uint8_t **buf,
                            size_t *len)
{
    char why[sizeof(pctx->cfg.cred_err)];
    if (path == NULL || pctx->cfg.cred_err[0] != '\0')
        return;
    if (kw_file_read(path, what, KW_FILE_MAX, buf, len, why, sizeof(why)) != 0)
        snprintf(pctx->cfg.cred_err, sizeof(pctx->cfg.cred_err), "%s", why);
}

/*
 * Reads client_cert, client_key and ca now, while the provider is being configured: servers load
 * their configuration in a root master and fork workers that run as another user and could not
 * read root-only files. A file that cannot be read is reported now, on stderr (the server's log
 * at start), and again by every key operation.
 */
static void read_credentials(kw_prov_ctx_t *pctx)
{
    read_credential(pctx, pctx->cfg.client_cert, "client_cert", &pctx->cfg.cert_pem,
                    &pctx->cfg.cert_pem_len);
    read_credential(pctx, pctx->cfg.client_key, "client_key", &pctx->cfg.key_pem,
                    &pctx->cfg.key_pem_len);
    read_credential(pctx, pctx->cfg.ca, "ca", &pctx->cfg.ca_pem, &pctx->cfg.ca_pem_len);
    if (pctx->cfg.cred_err[0] != '\0')
        fprintf(stderr,
                "keyward: error: %s; every key operation through keyward will fail in this "
                "process (uid %u). The provider reads its credentials once, when OpenSSL loads "
                "its configuration (in a server's master, as root); keep them root-only and "
                "load the configuration before dropping privileges\n",
                pctx->cfg.cred_err, (unsigned)geteuid());
}

static void ctx_free(kw_prov_ctx_t *pctx)
{
    if (pctx == NULL)
        return;
    kw_ms_table_free(pctx->ms_table);
    kw_client_free(pctx->client);
    OSSL_LIB_CTX_free(pctx->libctx);
    OPENSSL_free(pctx->cfg.servers);
    OPENSSL_free(pctx->cfg.client_cert);
    OPENSSL_free(pctx->cfg.client_key);
    OPENSSL_free(pctx->cfg.ca);
    OPENSSL_free(pctx->cfg.cert_pem);
    OPENSSL_clear_free(pctx->cfg.key_pem, pctx->cfg.key_pem_len + 1);
    OPENSSL_free(pctx->cfg.ca_pem);
    pthread_mutex_destroy(&pctx->lock);
    OPENSSL_free(pctx);
}

static void kw_prov_teardown(void *provctx)
{
    ctx_free(provctx);
}

static const OSSL_PARAM *kw_prov_gettable_params(void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
        OSSL_PARAM_END,
    };
    return gettable;
}

static int kw_prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "keyward: keys on a key server"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, KW_PROV_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, KW_PROV_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ALGORITHM *kw_prov_query(void *provctx, int operation_id, int *no_cache)
{
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return kw_keymgmt;
    case OSSL_OP_SIGNATURE:
        return kw_signature;
    case OSSL_OP_ASYM_CIPHER:
        return kw_asym_cipher;
    case OSSL_OP_STORE:
        return kw_store;
    case OSSL_OP_DECODER:
        return kw_decoder;
    case OSSL_OP_KDF:
        return ((kw_prov_ctx_t *)provctx)->cfg.master_secret_mode ? kw_kdf : NULL;
    default:
        return NULL;
    }
}

static const OSSL_ITEM *kw_prov_reason_strings(void *provctx)
{
    return kw_reasons;
}

static const OSSL_DISPATCH kw_provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))kw_prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))kw_prov_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))kw_prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))kw_prov_query},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))kw_prov_reason_strings},
    {0, NULL},
};

/* Picks the core functions we use out of in. */
static OSSL_FUNC_core_get_params_fn *core_functions(kw_prov_ctx_t *pctx, const OSSL_DISPATCH *in)
{
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    for (; in != NULL && in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            pctx->new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            pctx->set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            pctx->vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        default:
            break;
        }
    }
    return get_params;
}

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    kw_prov_ctx_t *pctx = OPENSSL_zalloc(sizeof(*pctx));
    OSSL_FUNC_core_get_params_fn *get_params;
    if (pctx == NULL)
        return 0;
    pctx->handle = handle;
    pthread_mutex_init(&pctx->lock, NULL);
    get_params = core_functions(pctx, in);
    pctx->libctx = OSSL_LIB_CTX_new_from_dispatch(handle, in);
    if (pctx->libctx == NULL || !read_settings(pctx, get_params)) {
        ctx_free(pctx);
        return 0;
    }
    pctx->load_uid = geteuid();
    read_credentials(pctx);
    *out = kw_provider_functions;
    *provctx = pctx;
    return 1;
}
