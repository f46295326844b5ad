/*
 * The version every keyward program reports with --version: the CMake project version (one
 * place: CMakeLists.txt's project()) and the OpenSSL it runs with.
 */
#ifndef KEYWARD_VERSION_H
#define KEYWARD_VERSION_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0" */
const char *kw_version(void);

/* 1 when argv holds "--version" before any "--"; the programs check this before their options. */
int kw_version_wanted(int argc, char **argv);

/* Prints "PROGRAM 0.1.0 (OpenSSL 3.0.13)" and a newline to out. */
void kw_version_print(FILE *out, const char *program);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARD_VERSION_H */
