/*
 * Loading the key server's configuration from its command line, a --config file included.
 */
#ifndef KW_KS_CONFIG_LOAD_H
#define KW_KS_CONFIG_LOAD_H

#include "config/config.h"

/*
 * The whole command line: when argv has --config FILE, the file is read first
 * (kw_ks_config_load_file) and the other flags then override it. Returns like
 * kw_ks_config_parse_args (KW_ECONFIG / KW_EIO for a bad or unreadable file, with "FILE:LINE:
 * reason" in err).
 */
int kw_ks_config_load(kw_ks_config_t *cfg, int argc, char **argv, char *err, size_t errlen);

#endif /* KW_KS_CONFIG_LOAD_H */
