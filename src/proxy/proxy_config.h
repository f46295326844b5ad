/*
 * keyward-proxy configuration: every option a user gives on the command line or in a YAML file
 * (docs/proxy.md has the schema). Both sources go through one setter keyed by the option's name,
 * so a flag and its YAML key always mean the same thing.
 *
 * Ownership: a kw_proxy_config_t owns all its strings and arrays; kw_proxy_config_free releases
 * them (the struct itself belongs to the caller).
 */
#ifndef KW_PROXY_CONFIG_H
#define KW_PROXY_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "kw_log.h"
#include "kw_strlist.h"

#define KW_PROXY_DEFAULT_LISTEN         "127.0.0.1:8443"
#define KW_PROXY_DEFAULT_HS_TIMEOUT     10000u
#define KW_PROXY_DEFAULT_IDLE_TIMEOUT   60000u
#define KW_PROXY_DEFAULT_MAX_CONNS      10000u
#define KW_PROXY_DEFAULT_KS_TIMEOUT     5000u
#define KW_PROXY_DEFAULT_CERT_RECHECK_S 600u
#define KW_PROXY_DEFAULT_DRAIN_TIMEOUT  30000u

typedef struct kw_proxy_cert_s {
    char *cert; /* certificate (and chain) PEM file */
    char *key;  /* key for OSSL_STORE (keyward: URI, stub or PEM file); NULL: the key server's
                   key with the certificate's SPKI SHA-256 (keyward:sha256=HEX) */
} kw_proxy_cert_t;

typedef struct kw_proxy_config_s {
    char *listen;           /* HOST:PORT */
    char *backend;          /* HOST:PORT */
    kw_proxy_cert_t *certs; /* first one is the default */
    size_t ncerts;
    kw_strlist_t keyservers;          /* HOST:PORT each */
    kw_strlist_t alpn;                /* protocols offered, in preference order */
    kw_strlist_t cert_from_keyserver; /* SNI names or "sha256:HEX": chains fetched with 0xA2 */
    char *client_cert;                /* mTLS identity towards the key servers */
    char *client_key;
    char *ca;       /* CA of the key servers */
    char *provider; /* path of keyward.so; NULL: next to the binary */
    char *metrics;  /* HOST:PORT for /metrics, /health and /ready (proxy_metrics.c), or NULL */
    char *metrics_token_file; /* /metrics requires this bearer token (kw_bearer.h), or NULL */
    int proxy_protocol;       /* send a PROXY v2 header to the backend */
    int no_master_secret;     /* TLS 1.2 RSA key exchange: ask for the PMS (0xA0), not the master
                                 secret (0xA1); master-secret mode is the default */
    int reuse_port;           /* share the listen address with other processes on purpose */
    unsigned threads;         /* 0: one per core */
    unsigned handshake_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned drain_timeout_ms; /* SIGQUIT: open connections may finish within this */
    unsigned max_connections;
    unsigned keyserver_timeout_ms;
    unsigned
        cert_recheck_s; /* ask for a newer fetched certificate this often; 0: only near its end */
    kw_log_level_t log_level;
    int tickets_from_keyserver; /* fleet session-ticket keys from the key servers (0xA4) */
    char *session_context;      /* --session-context nginx|haproxy|TEXT; NULL: keyward-proxy's */
    unsigned cli_lists;         /* internal: list options already replaced by the command line */
    int check_config;           /* --check-config (command line only): check, print, exit */
} kw_proxy_config_t;

/* Fills in the defaults. */
void kw_proxy_config_init(kw_proxy_config_t *cfg);

void kw_proxy_config_free(kw_proxy_config_t *cfg);

/* Sets option `name` (a long flag without "--", '-' or '_' alike) to `value` (NULL for flags
 * that take none). List options append. Returns 0 or KW_ECONFIG with a sentence in err. */
int kw_proxy_config_set(kw_proxy_config_t *cfg, const char *name, const char *value, char *err,
                        size_t errlen);

/* 1 when option `name` takes a list (repeatable flag), 0 otherwise. */
int kw_proxy_config_is_list(const char *name);

/* Loads a YAML file with the same keys as the flags (lists as sequences or comma lists). */
int kw_proxy_config_load_yaml(kw_proxy_config_t *cfg, const char *path, char *err, size_t errlen);
/* The same for len bytes of YAML in memory, named name in errors (the fuzz target uses it). */
int kw_proxy_config_load_yaml_buffer(kw_proxy_config_t *cfg, const char *name,
                                     const unsigned char *data, size_t len, char *err,
                                     size_t errlen);

/*
 * Parses argv: --config FILE first (wherever it is), then every other flag on top of it; a list
 * flag on the command line replaces that list from the file. Sets *help when --help was given.
 * Returns 0 or KW_ECONFIG with a sentence in err.
 */
int kw_proxy_config_from_args(kw_proxy_config_t *cfg, int argc, char **argv, int *help, char *err,
                              size_t errlen);

/* Checks that the configuration is complete and consistent. */
int kw_proxy_config_check(const kw_proxy_config_t *cfg, char *err, size_t errlen);

/* Prints the usage text, generated from the option table. */
void kw_proxy_usage(FILE *out);

#endif /* KW_PROXY_CONFIG_H */
