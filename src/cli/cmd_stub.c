/*
 * `keyward stub --cert SITE.crt [--out FILE]`: writes the key stub file (include/keyward/stub.h)
 * for the certificate's public key: what an edge keeps instead of the private key, loaded by the
 * keyward provider (nginx ssl_certificate_key, openssl s_server -key, HAProxy). `--pubkey PEM`
 * takes a public key file instead of a certificate. The stub holds nothing secret.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "keyward/stub.h"

#include "commands.h"
#include "kw_hex.h"

static void stub_usage(FILE *out)
{
    fprintf(out, "usage: keyward stub --cert SITE.crt [--out FILE]\n"
                 "       keyward stub --pubkey PUBLIC.pem [--out FILE]\n"
                 "Writes a key stub (-----BEGIN KEYWARD KEY-----) naming the certificate's key on\n"
                 "the key server; use it where a program wants the private key file.\n");
}

/* The public key of the first certificate (PEM or DER) in path, or of a PEM public key. */
static EVP_PKEY *read_public(const char *path, int is_cert)
{
    BIO *in = BIO_new_file(path, "rb");
    EVP_PKEY *pub = NULL;
    X509 *x = NULL;
    if (in == NULL)
        return NULL;
    if (!is_cert) {
        pub = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    } else {
        x = PEM_read_bio_X509(in, NULL, NULL, NULL);
        if (x == NULL && BIO_reset(in) == 0)
            x = d2i_X509_bio(in, NULL);
        pub = x == NULL ? NULL : X509_get_pubkey(x);
    }
    X509_free(x);
    BIO_free(in);
    return pub;
}

static int write_stub(EVP_PKEY *pub, const char *out_path)
{
    BIO *out = out_path != NULL ? BIO_new_file(out_path, "w") : BIO_new_fp(stdout, BIO_NOCLOSE);
    int rc;
    if (out == NULL) {
        fprintf(stderr, "keyward stub: cannot write %s\n", out_path);
        return KW_EIO;
    }
    rc = kw_stub_write_pem(out, pub);
    if (BIO_flush(out) != 1 && rc == 0)
        rc = KW_EIO;
    BIO_free(out);
    return rc;
}

int kw_cmd_stub(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cert", required_argument, NULL, 'c'},
        {"pubkey", required_argument, NULL, 'p'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cert = NULL;
    const char *pubkey = NULL;
    const char *out_path = NULL;
    uint8_t digest[KW_DIGEST_LEN];
    char hex[2 * KW_DIGEST_LEN + 1];
    EVP_PKEY *pub;
    int rc;
    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "c:p:o:h", opts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'c':
            cert = optarg;
            break;
        case 'p':
            pubkey = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'h':
            stub_usage(stdout);
            return 0;
        default:
            stub_usage(stderr);
            return 2;
        }
    }
    if ((cert == NULL) == (pubkey == NULL) || optind != argc) {
        stub_usage(stderr);
        return 2;
    }
    pub = read_public(cert != NULL ? cert : pubkey, cert != NULL);
    if (pub == NULL) {
        fprintf(stderr, "keyward stub: cannot read a %s from %s\n",
                cert != NULL ? "certificate" : "PEM public key", cert != NULL ? cert : pubkey);
        ERR_print_errors_fp(stderr);
        return 1;
    }
    rc = kw_keyid_from_pkey(pub, digest, NULL);
    if (rc == 0)
        rc = write_stub(pub, out_path);
    EVP_PKEY_free(pub);
    if (rc != 0) {
        fprintf(stderr, "keyward stub: %s\n", kw_strerror(rc));
        return 1;
    }
    kw_hex_encode(digest, KW_DIGEST_LEN, hex);
    if (out_path != NULL)
        fprintf(stderr, "keyward stub: wrote %s for key sha256=%s\n", out_path, hex);
    return 0;
}
