/*
 * Signature algorithms of the keyward CLI (cli_common.h): the name a user types, the KWP opcode,
 * the digest the CLI computes first (the key server signs digests; Ed25519 signs the message),
 * and the key type it needs; and the end of a command that acts on a key with an algorithm
 * (kw_cli_with_key). It builds on cli_common.c, which takes nothing from here.
 */
#include <string.h>

#include "cli_common.h"

static const kw_cli_alg_t kw_cli_algs[] = {
    {"rsa-pkcs1-sha1", KW_OP_RSA_SIGN_SHA1, "SHA1", "RSA"},
    {"rsa-pkcs1-sha256", KW_OP_RSA_SIGN_SHA256, "SHA256", "RSA"},
    {"rsa-pkcs1-sha384", KW_OP_RSA_SIGN_SHA384, "SHA384", "RSA"},
    {"rsa-pkcs1-sha512", KW_OP_RSA_SIGN_SHA512, "SHA512", "RSA"},
    {"rsa-pss-sha256", KW_OP_RSA_PSS_SIGN_SHA256, "SHA256", "RSA"},
    {"rsa-pss-sha384", KW_OP_RSA_PSS_SIGN_SHA384, "SHA384", "RSA"},
    {"rsa-pss-sha512", KW_OP_RSA_PSS_SIGN_SHA512, "SHA512", "RSA"},
    {"ecdsa-sha256", KW_OP_ECDSA_SIGN_SHA256, "SHA256", "EC"},
    {"ecdsa-sha384", KW_OP_ECDSA_SIGN_SHA384, "SHA384", "EC"},
    {"ecdsa-sha512", KW_OP_ECDSA_SIGN_SHA512, "SHA512", "EC"},
    {"ed25519", KW_OP_ED25519_SIGN, NULL, "ED25519"},
};

#define N_ALGS (sizeof(kw_cli_algs) / sizeof(kw_cli_algs[0]))

const kw_cli_alg_t *kw_cli_alg_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_ALGS; i++) {
        if (strcmp(kw_cli_algs[i].name, name) == 0)
            return &kw_cli_algs[i];
    }
    return NULL;
}

const char *kw_cli_alg_names(void)
{
    return "rsa-pkcs1-sha1|sha256|sha384|sha512, rsa-pss-sha256|sha384|sha512, "
           "ecdsa-sha256|sha384|sha512, ed25519";
}

int kw_cli_alg_payload(const kw_cli_alg_t *alg, const uint8_t *data, size_t len, uint8_t *out,
                       size_t cap, size_t *out_len)
{
    if (alg->md == NULL) {
        if (len > cap) {
            kw_cli_error("the message is too large for %s: at most %zu bytes can be sent",
                         alg->name, cap);
            return -1;
        }
        memcpy(out, data, len);
        *out_len = len;
        return 0;
    }
    unsigned int n = 0;
    EVP_MD *md = EVP_MD_fetch(NULL, alg->md, NULL);
    int ok = md != NULL && (size_t)EVP_MD_get_size(md) <= cap &&
             EVP_Digest(data, len, out, &n, md, NULL) == 1;
    EVP_MD_free(md);
    if (!ok) {
        kw_cli_error("cannot compute %s of the input", alg->md);
        return -1;
    }
    *out_len = n;
    return 0;
}

int kw_cli_alg_check_key(const kw_cli_alg_t *alg, const kw_cli_key_t *k)
{
    if (k->pub == NULL || EVP_PKEY_is_a(k->pub, alg->key_type))
        return 0;
    /* the hint only where the user picked alg with --alg */
    kw_cli_error("%s needs an %s key, but %s is of type %s%s", alg->name, alg->key_type, k->label,
                 EVP_PKEY_get0_type_name(k->pub),
                 kw_cli_alg_find(alg->name) == alg ? ": pick an --alg for this key type" : "");
    return -1;
}

int kw_cli_with_key(const kw_cli_opts_t *o, const kw_cli_alg_t *alg, kw_cli_key_fn fn,
                    const void *arg)
{
    kw_cli_key_t k;
    kw_client_t *c = NULL;
    if (kw_cli_key_load(o, &k) != 0)
        return KW_EXIT_USAGE;
    int status = KW_EXIT_USAGE;
    if (kw_cli_alg_check_key(alg, &k) == 0 && kw_cli_client(o, &c) == 0)
        status = fn(c, o, &k, arg);
    kw_client_free(c);
    kw_cli_key_free(&k);
    return status;
}
