/*
 * --version for every keyward program (include/keyward/version.h). KW_VERSION comes from the
 * CMake project version (src/common/CMakeLists.txt defines it for this file only).
 */
#include "keyward/version.h"

#include <string.h>

#include <openssl/crypto.h>

#ifndef KW_VERSION
#error "KW_VERSION must be defined by the build (src/common/CMakeLists.txt)"
#endif

const char *kw_version(void)
{
    return KW_VERSION;
}

int kw_version_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--version") == 0)
            return 1;
    }
    return 0;
}

void kw_version_print(FILE *out, const char *program)
{
    fprintf(out, "%s %s (OpenSSL %s)\n", program, KW_VERSION,
            OpenSSL_version(OPENSSL_VERSION_STRING));
}
