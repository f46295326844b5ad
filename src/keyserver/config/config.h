/*
 * Key server configuration: the settings struct, its defaults, the command-line flags that fill
 * it and its validation. A YAML --config file (config_file.c) fills the same struct through the
 * same setters as the flags; flags given on the command line override the file.
 */
#ifndef KW_KS_CONFIG_H
#define KW_KS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kw_log.h"
#include "kw_strlist.h"

/* One PKCS#11 token to serve keys from (the --pkcs11-* flags, or one `pkcs11:` entry of the
 * config file); strings owned, any may be NULL (uri supplies what the others do not). */
typedef struct kw_ks_pkcs11_s {
    char *module;
    char *token;
    char *pin_file;
    char *uri; /* RFC 7512 pkcs11: URI */
} kw_ks_pkcs11_t;

/* An authorisation rule (YAML `allow:` entry {cn, san, spki, keys}, or --allow EDGE=KEYS): the
 * edges it is for (every field given must match the client certificate: subject CN, a SAN DNS
 * name, SHA-256 of its SPKI as [sha256:]HEX) and the keys they may use: "*", "sha256:HEX",
 * "ski:HEX", "sni:NAME" / "sni:*.DOMAIN", "file:NAME" or a bare key NAME. Enforced by authz.c. */
typedef struct kw_ks_allow_s {
    char *cn;
    char *san;
    char *spki;
    char **keys; /* key names, "sha256:HEX" ids, or "*" */
    size_t n_keys;
    char **ops; /* YAML `ops:`: the operations it grants (opset.h names) */
    size_t n_ops;
    int has_ops; /* `ops:` given (else: the server's enabled operations) */
} kw_ks_allow_t;

typedef struct kw_ks_config_s {
    char *config_file; /* --config; owned, may be NULL */
    char *listen;      /* "HOST:PORT" or "[V6]:PORT"; owned */
    char *cert;        /* own TLS identity; owned */
    char *key;
    char *ca;         /* CA of client certificates; owned */
    char **keys_dirs; /* PEM site key directories (--keys, repeatable); owned */
    size_t n_keys_dirs;
    kw_ks_pkcs11_t *pkcs11; /* tokens; owned */
    size_t n_pkcs11;
    char **upstreams; /* --upstream HOST:PORT, YAML `upstreams:` (upstream.c) */
    size_t n_upstreams;
    kw_ks_allow_t *allow; /* --allow, YAML `allow:` (authz.c) */
    size_t n_allow;
    int allow_all;     /* --allow-all, YAML `allow_all: true`: no rules, on purpose */
    char **enable_ops; /* --enable-op, YAML `enable_ops:`: added to the default set (opset.h) */
    size_t n_enable_ops;
    char *audit_log;              /* --audit-log FILE, YAML `audit_log` (audit.c) */
    int audit_fsync;              /* --audit-fsync, YAML `audit_fsync`: fdatasync before replying */
    char *upstream_cert;          /* --upstream-cert, YAML `upstream_cert`; NULL: cert */
    char *upstream_key;           /* --upstream-key, YAML `upstream_key`; NULL: key */
    char *upstream_ca;            /* --upstream-ca, YAML `upstream_ca`; NULL: ca */
    uint64_t upstream_timeout_ms; /* --upstream-timeout-ms, YAML `upstream_timeout_ms`; 0: 3000 */
    char *metrics;                /* --metrics HOST:PORT; NULL: no metrics endpoint */
    char *metrics_token_file;     /* --metrics-token-file: bearer token required; NULL: none */
    char *user;                   /* --user NAME, YAML `user`; NULL: keep the uid (hygiene.c) */
    uint64_t request_timeout_ms;  /* a job queued longer is answered 0x08 unrun; 0: never */
    unsigned workers;             /* worker threads (--workers N; auto: the CPUs we may run on) */
    int loop_signs; /* the loop thread signs keys in memory, no hand-off (--workers 0, or auto on
                       one CPU); workers is then 1, for PKCS#11 tokens */
    uint64_t idle_timeout_ms;
    uint64_t handshake_timeout_ms;
    uint64_t frame_timeout_ms; /* a frame must complete this long after its first byte; 0: off */
    unsigned rate_limit;       /* operations per second per edge (rate.c); 0: no limit */
    unsigned rate_burst;       /* bucket size; 0: rate_limit */
    unsigned max_inflight;     /* per connection */
    unsigned max_connections;  /* authenticated edges; 0: unlimited */
    unsigned max_handshakes;   /* connections still in their TLS handshake; 0: unlimited */
    unsigned max_handshakes_per_ip; /* the same per source address; 0: unlimited */
    kw_log_level_t log_level;
    unsigned ctx_cache_slots; /* per worker; 0 disables the OpenSSL context cache */

    /* --rsa-cache-factors yes, YAML `rsa_cache_factors`: p and q cached outside the secure heap
     * (hygiene_rsa.c); read at start only */
    int rsa_cache_factors;

    /* --ticket-secret FILE, YAML `ticket_secret`: fleet session-ticket keys are derived from it
     * and served with 0xA4 (keystore/ticket_keys.h); NULL: none. --ticket-rotation-s N, YAML
     * `ticket_rotation_s`: the epoch length (default 3600, 1..604800). */
    char *ticket_secret;
    unsigned ticket_rotation_s;
} kw_ks_config_t;

/* Fills cfg with the defaults (--workers auto: the CPUs this process may run on). */
void kw_ks_config_defaults(kw_ks_config_t *cfg);

/*
 * Parses argv into cfg (which holds defaults). Returns 0, 1 when --help was given (usage already
 * printed to stdout), or KW_EINVAL with the reason in err.
 */
int kw_ks_config_parse_args(kw_ks_config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* Finds --config FILE in argv (any spelling getopt accepts) without acting on other flags: *path
 * (NULL: none). Returns 1 when --help is among the flags (then no file is read), else 0. */
int kw_ks_config_find_file(int argc, char **argv, const char **path);

/* Reads a YAML config file into cfg (config_file.c). Returns 0, KW_EIO or KW_ECONFIG. */
int kw_ks_config_load_file(kw_ks_config_t *cfg, const char *path, char *err, size_t errlen);
/* The same for len bytes of YAML in memory, named name in errors. */
int kw_ks_config_load_buffer(kw_ks_config_t *cfg, const char *name, const unsigned char *data,
                             size_t len, char *err, size_t errlen);

/*
 * Sets one setting by its flag name ("workers", "keys", ...) as if the flag had been given:
 * list flags append; value NULL empties a list flag. Returns 0 or a negative KW_E* with the reason
 * in why.
 */
int kw_ks_config_set(kw_ks_config_t *cfg, const char *flag, const char *value, char *why,
                     size_t whylen);

/* Appends an empty entry and returns it (NULL when out of memory). */
kw_ks_pkcs11_t *kw_ks_config_add_pkcs11(kw_ks_config_t *cfg);
kw_ks_allow_t *kw_ks_config_add_allow(kw_ks_config_t *cfg);

/*
 * Parses the flag form "EDGE=KEYSPEC[,KEYSPEC...]" (EDGE: cn:NAME, san:DNSNAME or spki:HEX) and
 * appends it to cfg->allow (config_lists.c). Returns 0, KW_EINVAL (syntax) or KW_ENOMEM. The key
 * specs are checked by kw_ks_authz_validate (fleet/authz.h), which reports the reason.
 */
int kw_ks_allow_add_flag(kw_ks_config_t *cfg, const char *text);

/* Frees the token entries / the allow rules, leaving them empty (config_lists.c; string lists:
 * kw_strlist_free). */
void kw_ks_config_free_pkcs11(kw_ks_config_t *cfg);
void kw_ks_config_free_allow(kw_ks_config_t *cfg);

/* Checks required settings and ranges (the allow rules: kw_ks_authz_validate, fleet/authz.h).
 * Returns 0 or KW_ECONFIG with the reason in err. */
int kw_ks_config_validate(const kw_ks_config_t *cfg, char *err, size_t errlen);

void kw_ks_config_usage(FILE *out);

/* Frees the strings of cfg (not cfg itself). */
void kw_ks_config_free(kw_ks_config_t *cfg);

#endif /* KW_KS_CONFIG_H */
