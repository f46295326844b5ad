/*
 * The key server's whole command line (config_load.h): the --config file first, then the flags
 * over it. The one place that ties the flag parser (config.c) to the file reader (config_file.c).
 */
#include "config/config_load.h"

int kw_ks_config_load(kw_ks_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    const char *path = NULL;
    if (kw_ks_config_find_file(argc, argv, &path) == 0 && path != NULL) {
        int rc = kw_ks_config_load_file(cfg, path, err, errlen);
        if (rc != 0)
            return rc;
    }
    return kw_ks_config_parse_args(cfg, argc, argv, err, errlen);
}
