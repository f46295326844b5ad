/*
 * keyward sign: signs a file with a key that only the key server holds. The CLI hashes the file
 * (Ed25519: sends the message itself) and writes the signature in the form `openssl dgst -verify`
 * (RSA PKCS#1 and PSS with salt length = digest length, ECDSA DER) and `openssl pkeyutl -verify
 * -rawin` (Ed25519) accept. With --key-cert the signature is also checked locally before it is
 * written.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include "cli_common.h"
#include "commands.h"

#define KW_ED25519_MAX_MSG 65000 /* fits one KWP payload item with the other items */

static const char sign_help[] =
    "usage: keyward sign --alg ALG --in FILE --out FILE (--key-cert CERT | --key-id ID)\n"
    "                    --server HOST:PORT --cert FILE --key FILE --ca FILE\n"
    "Signs FILE with a key held by the key server; the CLI never sees the private key.\n"
    "  --alg ALG            rsa-pkcs1-sha1|sha256|sha384|sha512, rsa-pss-sha256|sha384|sha512,\n"
    "                       ecdsa-sha256|sha384|sha512, ed25519\n"
    "  --in FILE            data to sign ('-' = stdin)\n"
    "  --out FILE           where the signature goes ('-' = stdout)\n" KW_CLI_KEY_HELP
        KW_CLI_SERVER_HELP "Verify with: openssl dgst -sha256 -verify PUB.pem -signature SIG FILE\n"
    "  (PSS: add -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest;\n"
    "   ed25519: openssl pkeyutl -verify -pubin -inkey PUB.pem -rawin -in FILE -sigfile SIG)\n";

/* Checks sig over data with the certificate's public key. 1 valid, 0 not. */
static int verify_local(const kw_cli_alg_t *alg, EVP_PKEY *pub, const uint8_t *data, size_t len,
                        const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok =
        mctx != NULL && EVP_DigestVerifyInit_ex(mctx, &pctx, alg->md, NULL, NULL, pub, NULL) == 1;
    if (ok && strncmp(alg->name, "rsa-pss", 7) == 0)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(mctx, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(mctx);
    return ok;
}

typedef struct sign_args_s {
    const kw_cli_alg_t *alg;
    const char *in;
    const char *out;
} sign_args_t;

/* kw_cli_key_fn: signs a->in with k into a->out. */
static int sign(kw_client_t *c, const kw_cli_opts_t *o, const kw_cli_key_t *k, const void *arg)
{
    const sign_args_t *a = arg;
    uint8_t *data = NULL;
    size_t len = 0;
    uint8_t payload[KW_ED25519_MAX_MSG];
    size_t plen = 0;
    uint8_t sig[1024];
    size_t sig_len = 0;
    uint8_t remote = 0;
    kw_msg_t msg;
    int status = KW_EXIT_FAIL;
    size_t max = a->alg->md == NULL ? KW_ED25519_MAX_MSG : ((size_t)1 << 30);
    if (kw_cli_read_file(a->in, &data, &len, max) != 0)
        return KW_EXIT_FAIL;
    if (kw_cli_alg_payload(a->alg, data, len, payload, sizeof(payload), &plen) != 0)
        goto out;
    memset(&msg, 0, sizeof(msg));
    msg.opcode = a->alg->opcode;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(payload, plen);
    kw_cli_key_set(k, &msg);
    int rc = kw_client_call(c, &msg, sig, sizeof(sig), &sig_len, &remote);
    if (rc != 0) {
        kw_cli_report(c, o, rc, remote, "sign");
        goto out;
    }
    if (k->pub != NULL && !verify_local(a->alg, k->pub, data, len, sig, sig_len)) {
        kw_cli_error("the key server's signature does not verify with %s: the key server holds "
                     "a different key under this id, or is faulty",
                     k->label);
        goto out;
    }
    if (kw_cli_write_file(a->out, sig, sig_len) == 0)
        status = KW_EXIT_OK;
out:
    free(data);
    return status;
}

int kw_cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {KW_CLI_SERVER_OPTIONS,
                                         KW_CLI_KEY_OPTIONS,
                                         {"alg", required_argument, NULL, 'a'},
                                         {"in", required_argument, NULL, 'i'},
                                         {"out", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    kw_cli_opts_t o;
    sign_args_t a = {NULL, NULL, NULL};
    const char *alg = NULL;
    int status = KW_EXIT_OK;
    kw_cli_opts_init(&o);
    for (;;) {
        int ch = kw_cli_getopt(&o, argc, argv, "h", opts, sign_help, &status);
        if (ch == KW_CLI_OPT_END)
            break;
        if (ch == KW_CLI_OPT_EXIT)
            return status;
        if (ch == 'a')
            alg = optarg;
        else if (ch == 'i')
            a.in = optarg;
        else /* 'o' */
            a.out = optarg;
    }
    a.alg = kw_cli_alg_find(alg);
    if (a.alg == NULL || a.in == NULL || a.out == NULL) {
        if (a.alg == NULL)
            kw_cli_error(alg == NULL ? "sign needs --alg ALG (%s)" : "unknown --alg (use %s)",
                         kw_cli_alg_names());
        else
            kw_cli_error("sign needs --in FILE and --out FILE");
        return KW_EXIT_USAGE;
    }
    return kw_cli_with_key(&o, a.alg, sign, &a);
}
