/*
 * keyward-keyserver --check-config, like `nginx -t`: the configuration is parsed and validated as
 * for a start, then every file is checked (readable by this user; private keys and PINs not
 * readable by every user), the TLS identity and CA are loaded, the key store is loaded (PEM
 * directories and PKCS#11 tokens), --user must exist, and what would run is printed. Nothing is
 * listened on. The flag belongs to main (a process matter): it is taken out of argv before the
 * configuration is parsed, like --pid-file.
 */
#ifndef KW_KS_CHECK_CONFIG_H
#define KW_KS_CHECK_CONFIG_H

#include <stdio.h>

#include "config/config.h"

/* Removes every "--check-config" (before any "--") from argv, updating *argc; 1 if there was one.
 */
int kw_ks_check_take(int *argc, char **argv);

/* Checks cfg as described above, printing to out. Returns 0 (it would start) or 1. */
int kw_ks_check_config(const kw_ks_config_t *cfg, FILE *out);

#endif /* KW_KS_CHECK_CONFIG_H */
