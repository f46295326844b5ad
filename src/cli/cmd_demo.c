/*
 * keyward demo: runs scripts/demo.sh against the build this binary belongs to: a key server on
 * loopback with a fresh PKI, and the CLI signing and decrypting through it, every result checked
 * with openssl.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "commands.h"

int kw_cmd_demo(int argc, char **argv)
{
    char script[PATH_MAX];
    char dir[PATH_MAX];
    char build[PATH_MAX + 8];
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: keyward demo\nRuns the whole system on loopback with generated keys "
               "(scripts/demo.sh) and prints what it did.\n");
        return KW_EXIT_OK;
    }
    if (kw_cli_find_script("demo.sh", script, sizeof(script)) != 0) {
        kw_cli_error("cannot find demo.sh: set KEYWARD_SHARE_DIR to the source tree's scripts/");
        return KW_EXIT_FAIL;
    }
    kw_cli_exe_dir(dir, sizeof(dir));
    snprintf(build, sizeof(build), "%s/..", dir); /* <build>/bin/keyward */
    fflush(stdout);
    execlp("sh", "sh", script, build, (char *)NULL);
    kw_cli_error("cannot run sh %s: %s", script, strerror(errno));
    return KW_EXIT_FAIL;
}
