/*
 * Fuzz target for the YAML config loaders of keyward-keyserver (src/keyserver/config/config_yaml.c
 * and config_file.c: the schema-checked event reader) and keyward-proxy (src/proxy/proxy_yaml.c:
 * the document walker). Any input is either loaded or refused with a "NAME:LINE: reason" error;
 * nothing may crash, leak or read outside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "keyward/error.h"
#include "proxy_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    kw_ks_config_t ks;
    kw_ks_config_defaults(&ks);
    err[0] = '\0';
    if (kw_ks_config_load_buffer(&ks, "fuzz.yaml", data, size, err, sizeof(err)) == KW_ECONFIG &&
        strncmp(err, "fuzz.yaml:", 10) != 0)
        __builtin_trap(); /* every refusal says where: "FILE:LINE: reason" */
    kw_ks_config_free(&ks);

    kw_proxy_config_t px;
    kw_proxy_config_init(&px);
    (void)kw_proxy_config_load_yaml_buffer(&px, "fuzz.yaml", data, size, err, sizeof(err));
    kw_proxy_config_free(&px);
    return 0;
}
