/*
 * keyward decrypt: RSA PKCS#1 v1.5 decryption (KWP opcode 0x01) with a key only the key server
 * holds, e.g. of `openssl pkeyutl -encrypt -pubin -inkey PUB.pem`'s output.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cli_common.h"
#include "commands.h"

#define KW_RSA_MAX_BYTES 2048 /* 16384-bit keys */

static const char decrypt_help[] =
    "usage: keyward decrypt --in FILE --out FILE (--key-cert CERT | --key-id ID)\n"
    "                       --server HOST:PORT --cert FILE --key FILE --ca FILE\n"
    "Decrypts an RSA PKCS#1 v1.5 ciphertext with a key held by the key server.\n"
    "  --in FILE            the ciphertext, as many bytes as the RSA modulus ('-' = stdin)\n"
    "  --out FILE           where the plaintext goes ('-' = stdout)\n" KW_CLI_KEY_HELP
        KW_CLI_SERVER_HELP;

/* RSA PKCS#1 v1.5 decryption, the operation decrypt checks the key against. */
static const kw_cli_alg_t decrypt_alg = {"decrypt", KW_OP_RSA_DECRYPT, NULL, "RSA"};

typedef struct decrypt_args_s {
    const char *in;
    const char *out;
} decrypt_args_t;

/* kw_cli_key_fn: decrypts a->in with k into a->out. */
static int decrypt(kw_client_t *c, const kw_cli_opts_t *o, const kw_cli_key_t *k, const void *arg)
{
    const decrypt_args_t *a = arg;
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    uint8_t pt[KW_RSA_MAX_BYTES];
    size_t pt_len = 0;
    uint8_t remote = 0;
    kw_msg_t msg;
    if (kw_cli_read_file(a->in, &ct, &ct_len, KW_RSA_MAX_BYTES) != 0)
        return KW_EXIT_FAIL;
    /* With --key-cert the modulus size is known: a ciphertext of another length is not one. */
    int size = k->pub != NULL ? EVP_PKEY_get_size(k->pub) : 0;
    if (size > 0 && ct_len != (size_t)size) {
        kw_cli_error("--in %s has %zu bytes, but an RSA PKCS#1 v1.5 ciphertext for %s has "
                     "exactly %d bytes (the modulus size): give the raw ciphertext, not base64 "
                     "or hex",
                     a->in, ct_len, k->label, size);
        free(ct);
        return KW_EXIT_USAGE;
    }
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_RSA_DECRYPT;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(ct, ct_len);
    kw_cli_key_set(k, &msg);
    int rc = kw_client_call(c, &msg, pt, sizeof(pt), &pt_len, &remote);
    free(ct);
    if (rc != 0) {
        kw_cli_report(c, o, rc, remote, "decrypt");
        return KW_EXIT_FAIL;
    }
    int status = kw_cli_write_file(a->out, pt, pt_len) == 0 ? KW_EXIT_OK : KW_EXIT_FAIL;
    OPENSSL_cleanse(pt, sizeof(pt));
    return status;
}

int kw_cmd_decrypt(int argc, char **argv)
{
    static const struct option opts[] = {KW_CLI_SERVER_OPTIONS,
                                         KW_CLI_KEY_OPTIONS,
                                         {"in", required_argument, NULL, 'i'},
                                         {"out", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    kw_cli_opts_t o;
    decrypt_args_t a = {NULL, NULL};
    int status = KW_EXIT_OK;
    kw_cli_opts_init(&o);
    for (;;) {
        int ch = kw_cli_getopt(&o, argc, argv, "h", opts, decrypt_help, &status);
        if (ch == KW_CLI_OPT_END)
            break;
        if (ch == KW_CLI_OPT_EXIT)
            return status;
        if (ch == 'i')
            a.in = optarg;
        else /* 'o' */
            a.out = optarg;
    }
    if (a.in == NULL || a.out == NULL) {
        kw_cli_error("decrypt needs --in FILE and --out FILE");
        return KW_EXIT_USAGE;
    }
    return kw_cli_with_key(&o, &decrypt_alg, decrypt, &a);
}
