/*
 * keyward keygen: makes a test PKI by running the shipped scripts/make-pki.sh (openssl only):
 * a CA, the key server's and edges' TLS identities, and site keys of every supported type with
 * their certificates. Refuses to overwrite an existing PKI without --force (the script checks).
 * One implementation for the CLI, the tests and `make demo`.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "commands.h"

static const char keygen_help[] =
    "usage: keyward keygen --out DIR [--force]\n"
    "Makes a test PKI in DIR with openssl (runs make-pki.sh, found in $KEYWARD_SHARE_DIR,\n"
    "<prefix>/share/keyward or the source tree's scripts/):\n"
    "  ca.crt/.key, keyserver.crt/.key, edge.crt/.key, edge2.crt/.key, rogue*.crt/.key,\n"
    "  site-ca.crt, keys/<name>.key+.crt (for the key server only), certs/<name>.crt (edges)\n"
    "  for rsa2048 rsa3072 rsa4096 ecdsa-p256 ecdsa-p384 ecdsa-p521 ed25519.\n"
    "  --force              replace the PKI if DIR already holds one (without it, keygen\n"
    "                       refuses: a key server still using the old CA would refuse every\n"
    "                       client with the new certificates)\n";

int kw_cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int force = 0;
    int status = KW_EXIT_OK;
    for (;;) {
        int ch = kw_cli_getopt(NULL, argc, argv, "hfo:", opts, keygen_help, &status);
        if (ch == KW_CLI_OPT_END)
            break;
        if (ch == KW_CLI_OPT_EXIT)
            return status;
        if (ch == 'f')
            force = 1;
        else /* 'o' */
            out = optarg;
    }
    if (out == NULL) {
        kw_cli_error("keygen needs --out DIR (where to write the PKI)");
        return KW_EXIT_USAGE;
    }
    char script[PATH_MAX];
    if (kw_cli_find_script("make-pki.sh", script, sizeof(script)) != 0) {
        kw_cli_error("cannot find make-pki.sh: set KEYWARD_SHARE_DIR to the directory holding it "
                     "(the source tree's scripts/)");
        return KW_EXIT_FAIL;
    }
    if (setenv("KW_PKI_PROG", "keyward keygen", 1) != 0) { /* names us in its messages */
        kw_cli_error("cannot set the environment: %s", strerror(errno));
        return KW_EXIT_FAIL;
    }
    fflush(stdout);
    if (force)
        execlp("sh", "sh", script, "--force", out, (char *)NULL);
    else
        execlp("sh", "sh", script, out, (char *)NULL);
    kw_cli_error("cannot run sh %s: %s", script, strerror(errno));
    return KW_EXIT_FAIL;
}
