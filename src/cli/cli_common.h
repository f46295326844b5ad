/*
 * Shared parts of the keyward CLI: the common options (key servers, the edge's mTLS identity,
 * the key to use), creating the client, reading and writing files, the signature algorithms,
 * and turning errors into messages that say what to do next.
 */
#ifndef KW_CLI_COMMON_H
#define KW_CLI_COMMON_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "keyward/keyid.h"

#define KW_EXIT_OK    0
#define KW_EXIT_FAIL  1
#define KW_EXIT_USAGE 2

enum kw_cli_opt_id {
    KW_OPT_SERVER = 1000,
    KW_OPT_CERT,
    KW_OPT_KEY,
    KW_OPT_CA,
    KW_OPT_TIMEOUT,
    KW_OPT_KEY_CERT,
    KW_OPT_KEY_ID,
    KW_OPT_PAD,
};

/* getopt_long entries shared by the commands that talk to a key server. */
#define KW_CLI_SERVER_OPTIONS                                                                      \
    {"server", required_argument, NULL, KW_OPT_SERVER},                                            \
        {"cert", required_argument, NULL, KW_OPT_CERT},                                            \
        {"key", required_argument, NULL, KW_OPT_KEY}, {"ca", required_argument, NULL, KW_OPT_CA},  \
        {"client-cert", required_argument, NULL, KW_OPT_CERT},                                     \
        {"client-key", required_argument, NULL, KW_OPT_KEY},                                       \
        {"timeout", required_argument, NULL, KW_OPT_TIMEOUT},                                      \
        {"pad", required_argument, NULL, KW_OPT_PAD},                                              \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }
#define KW_CLI_KEY_OPTIONS                                                                         \
    {"key-cert", required_argument, NULL, KW_OPT_KEY_CERT},                                        \
    {                                                                                              \
        "key-id", required_argument, NULL, KW_OPT_KEY_ID                                           \
    }

/* Help text of the options above. */
#define KW_CLI_SERVER_HELP                                                                         \
    "  --server HOST:PORT   key server (repeat, or a comma list; env KEYWARD_SERVERS)\n"           \
    "  --cert FILE          this edge's certificate for mutual TLS (also --client-cert;\n"         \
    "                       env KEYWARD_CLIENT_CERT)\n"                                            \
    "  --key FILE           its private key (also --client-key; env KEYWARD_CLIENT_KEY)\n"         \
    "  --ca FILE            CA of the key server's certificate (env KEYWARD_CA)\n"                 \
    "  --timeout MS         give up after MS milliseconds (default 5000; env\n"                    \
    "                       KEYWARD_TIMEOUT_MS)\n"                                                 \
    "  --pad N              pad request frames to N bytes (1024 = like gokeyless clients)\n"
#define KW_CLI_KEY_HELP                                                                            \
    "  --key-cert CERT      use the key of this site certificate (key id = SHA-256 of its SPKI)\n" \
    "  --key-id ID          or name the key: sha256:HEX (64 digits) or ski:HEX (40 digits)\n"

typedef struct kw_cli_opts_s {
    char servers[2048];      /* from --server flags */
    const char *env_servers; /* KEYWARD_SERVERS (or KEYWARD_SERVER), used without --server */
    const char *bad_env; /* an environment variable with a bad value, reported by kw_cli_client */
    const char *cert;
    const char *key;
    const char *ca;
    const char *key_cert;
    const char *key_id;
    unsigned timeout_ms;
    unsigned pad_to;
} kw_cli_opts_t;

/* Defaults, from the environment variables the provider reads too (KEYWARD_SERVERS,
 * KEYWARD_CLIENT_CERT, KEYWARD_CLIENT_KEY, KEYWARD_CA, KEYWARD_TIMEOUT_MS) or their old CLI
 * spellings KEYWARD_SERVER, KEYWARD_CERT, KEYWARD_KEY when the new ones are unset. */
void kw_cli_opts_init(kw_cli_opts_t *o);

/* The key servers to use: the --server flags, else the environment's; NULL when none. */
const char *kw_cli_servers(const kw_cli_opts_t *o);

/* Handles one common option. Returns 1 when handled, 0 when c is not common, -1 on a bad value
 * (already reported). */
int kw_cli_opt(kw_cli_opts_t *o, int c, const char *arg);

/* What kw_cli_getopt returns besides a command's own option. */
#define KW_CLI_OPT_END  (-1) /* no more options */
#define KW_CLI_OPT_EXIT (-2) /* the command returns *status now */

/* getopt_long for a command. Handles the common options (unless o is NULL; a bad value: status 2,
 * reported), -h/--help (help on stdout, status 0) and unknown options (help on stderr, status 2).
 * Returns the command's next own option (optarg set), KW_CLI_OPT_END, or KW_CLI_OPT_EXIT with
 * *status set. */
int kw_cli_getopt(kw_cli_opts_t *o, int argc, char **argv, const char *shortopts,
                  const struct option *longopts, const char *help, int *status);

/* Checks the connection options and creates a client. Prints what is wrong on failure. */
int kw_cli_client(const kw_cli_opts_t *o, kw_client_t **out);

/* The key a command acts on. */
typedef struct kw_cli_key_s {
    kw_keyid_kind_t kind;
    uint8_t id[KW_DIGEST_LEN];
    EVP_PKEY *pub; /* from --key-cert, else NULL; owned */
    char label[160];
} kw_cli_key_t;

/* Loads the key named by --key-cert or --key-id. Prints what is wrong on failure. */
int kw_cli_key_load(const kw_cli_opts_t *o, kw_cli_key_t *k);
void kw_cli_key_free(kw_cli_key_t *k);
/* Puts the key id item into msg (pointing into k). */
void kw_cli_key_set(const kw_cli_key_t *k, kw_msg_t *msg);

/* "keyward: " + message + newline, on stderr. */
void kw_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Explains a failed request (rc, and remote when rc is KW_EREMOTE) with a next step. */
void kw_cli_report(kw_client_t *client, const kw_cli_opts_t *o, int rc, uint8_t remote,
                   const char *what);

/* Whole file into *buf (malloc'd); at most max bytes. Prints the error. "-" is stdin. */
int kw_cli_read_file(const char *path, uint8_t **buf, size_t *len, size_t max);
/* Writes buf to path (mode 0644; "-" is stdout). Prints the error. */
int kw_cli_write_file(const char *path, const uint8_t *buf, size_t len);

/* Operations on a key: the signature algorithms of `sign` and `bench` (kw_cli_alg_find), and
 * others a command defines (decrypt). */
typedef struct kw_cli_alg_s {
    const char *name;     /* "ecdsa-sha256" */
    uint8_t opcode;       /* KWP opcode */
    const char *md;       /* digest the CLI computes, NULL: the message itself (Ed25519) */
    const char *key_type; /* "RSA", "EC" or "ED25519" */
} kw_cli_alg_t;

const kw_cli_alg_t *kw_cli_alg_find(const char *name);
/* "rsa-pkcs1-sha1|..." for help texts. */
const char *kw_cli_alg_names(void);
/* The payload to send for data: its digest, or data itself. Returns 0 or -1 (printed). */
int kw_cli_alg_payload(const kw_cli_alg_t *alg, const uint8_t *data, size_t len, uint8_t *out,
                       size_t cap, size_t *out_len);
/* Checks that alg fits the key of --key-cert (when known). Prints the mismatch. */
int kw_cli_alg_check_key(const kw_cli_alg_t *alg, const kw_cli_key_t *k);

/* The work of a command on a key, with the client made: returns the command's exit status. */
typedef int (*kw_cli_key_fn)(kw_client_t *c, const kw_cli_opts_t *o, const kw_cli_key_t *k,
                             const void *arg);

/* The end of a command that acts on a key: loads the key (--key-cert or --key-id), checks that it
 * fits alg, creates the client, runs fn(client, o, key, arg) and frees all. Returns fn's status,
 * or KW_EXIT_USAGE when a step before fn failed (reported). */
int kw_cli_with_key(const kw_cli_opts_t *o, const kw_cli_alg_t *alg, kw_cli_key_fn fn,
                    const void *arg);

/* Directory of the running executable (for finding scripts), or "." */
void kw_cli_exe_dir(char *buf, size_t len);
/* Finds a shipped script by name: $KEYWARD_SHARE_DIR, <exe>/../share/keyward,
 * <exe>/../../scripts (build tree), the source tree. Returns 0 with its path in buf, or -1. */
int kw_cli_find_script(const char *name, char *buf, size_t len);

#endif /* KW_CLI_COMMON_H */
