/*
 * keyward, the command-line tool: a dispatch table from command names to their functions.
 */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "keyward/version.h"

typedef struct kw_command_s {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} kw_command_t;

static const kw_command_t kw_commands[] = {
    {"ping", kw_cmd_ping, "check a key server answers, and print round-trip times"},
    {"sign", kw_cmd_sign, "sign a file with a key held by the key server"},
    {"decrypt", kw_cmd_decrypt, "decrypt an RSA PKCS#1 v1.5 ciphertext with a remote key"},
    {"keygen", kw_cmd_keygen, "make a test PKI (CA, key server and edge identities, site keys)"},
    {"stub", kw_cmd_stub, "write a key stub file for a site certificate"},
    {"bench", kw_cmd_bench, "load generator: operations per second against key servers"},
    {"demo", kw_cmd_demo, "run the whole system on loopback and show what it does"},
    {"tickets", kw_cmd_tickets, "write the fleet's session-ticket keys for nginx or HAProxy"},
};

#define N_COMMANDS (sizeof(kw_commands) / sizeof(kw_commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: keyward COMMAND [options]   (keyward COMMAND --help for its options)\n"
               "       keyward --version\n\n"
               "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", kw_commands[i].name, kw_commands[i].summary);
    fprintf(f, "\nkeyward keeps private keys on key servers: edges (TLS servers) ask the key "
               "server to sign or decrypt over mutual TLS.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KW_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return KW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        kw_version_print(stdout, "keyward");
        return KW_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(cmd, kw_commands[i].name) == 0)
            return kw_commands[i].run(argc - 1, argv + 1);
    }
    kw_cli_error("unknown command '%s'", cmd);
    usage(stderr);
    return KW_EXIT_USAGE;
}
