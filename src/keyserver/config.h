/*
 * Key server configuration: the settings struct, its defaults, the command-line flags that fill
 * it and its validation. A YAML --config file can fill the same struct later; nothing outside
 * this file parses settings.
 */
#ifndef KW_KS_CONFIG_H
#define KW_KS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keyward/log.h"

typedef struct kw_ks_config_s {
    char *listen; /* "HOST:PORT" or "[V6]:PORT"; owned */
    char *cert;   /* own TLS identity; owned */
    char *key;
    char *ca;       /* CA of client certificates; owned */
    char *keys_dir; /* PEM site keys; owned, may be NULL */
    unsigned workers;
    uint64_t idle_timeout_ms;
    uint64_t handshake_timeout_ms;
    unsigned max_inflight;    /* per connection */
    unsigned max_connections; /* 0: unlimited */
    kw_log_level_t log_level;
    unsigned ctx_cache_slots; /* per worker; 0 disables the OpenSSL context cache */
} kw_ks_config_t;

/* Fills cfg with the defaults (workers = number of online CPUs). */
void kw_ks_config_defaults(kw_ks_config_t *cfg);

/*
 * Parses argv into cfg (which holds defaults). Returns 0, 1 when --help was given (usage already
 * printed to stdout), or KW_EINVAL with the reason in err.
 */
int kw_ks_config_parse_args(kw_ks_config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* Checks required settings and ranges. Returns 0 or KW_ECONFIG with the reason in err. */
int kw_ks_config_validate(const kw_ks_config_t *cfg, char *err, size_t errlen);

void kw_ks_config_usage(FILE *out);

/* Frees the strings of cfg (not cfg itself). */
void kw_ks_config_free(kw_ks_config_t *cfg);

#endif /* KW_KS_CONFIG_H */
