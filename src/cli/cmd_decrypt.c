/*
 * keyward decrypt: RSA PKCS#1 v1.5 decryption (KWP opcode 0x01) with a key only the key server
 * holds, e.g. of `openssl pkeyutl -encrypt -pubin -inkey PUB.pem`'s output.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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

static int decrypt(kw_client_t *c, const kw_cli_opts_t *o, const kw_cli_key_t *k, const char *in,
                   const char *out)
{
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    uint8_t pt[KW_RSA_MAX_BYTES];
    size_t pt_len = 0;
    uint8_t remote = 0;
    kw_msg_t msg;
    if (kw_cli_read_file(in, &ct, &ct_len, KW_RSA_MAX_BYTES) != 0)
        return KW_EXIT_FAIL;
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
    int status = kw_cli_write_file(out, pt, pt_len) == 0 ? KW_EXIT_OK : KW_EXIT_FAIL;
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
    const char *in = NULL;
    const char *out = NULL;
    kw_cli_opts_init(&o);
    for (;;) {
        int ch = getopt_long(argc, argv, "h", opts, NULL);
        if (ch == -1)
            break;
        int h = kw_cli_opt(&o, ch, optarg);
        if (h < 0)
            return KW_EXIT_USAGE;
        if (h > 0)
            continue;
        if (ch == 'i') {
            in = optarg;
        } else if (ch == 'o') {
            out = optarg;
        } else if (ch == 'h') {
            fputs(decrypt_help, stdout);
            return KW_EXIT_OK;
        } else {
            fputs(decrypt_help, stderr);
            return KW_EXIT_USAGE;
        }
    }
    if (in == NULL || out == NULL) {
        kw_cli_error("decrypt needs --in FILE and --out FILE");
        return KW_EXIT_USAGE;
    }
    kw_cli_key_t k;
    kw_client_t *c = NULL;
    if (kw_cli_key_load(&o, &k) != 0)
        return KW_EXIT_USAGE;
    int status = KW_EXIT_USAGE;
    if (k.pub != NULL && !EVP_PKEY_is_a(k.pub, "RSA"))
        kw_cli_error("decrypt needs an RSA key, but %s is of type %s", k.label,
                     EVP_PKEY_get0_type_name(k.pub));
    else if (kw_cli_client(&o, &c) == 0)
        status = decrypt(c, &o, &k, in, out);
    kw_client_free(c);
    kw_cli_key_free(&k);
    return status;
}
