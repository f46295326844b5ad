/*
 * Key server configuration from command-line flags (getopt_long), with defaults and checks.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "config.h"

enum {
    OPT_LISTEN = 256,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_KEYS,
    OPT_WORKERS,
    OPT_IDLE,
    OPT_HANDSHAKE,
    OPT_INFLIGHT,
    OPT_MAXCONN,
    OPT_LOGLEVEL,
    OPT_CTXCACHE,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"idle-timeout-ms", required_argument, NULL, OPT_IDLE},
    {"handshake-timeout-ms", required_argument, NULL, OPT_HANDSHAKE},
    {"max-inflight", required_argument, NULL, OPT_INFLIGHT},
    {"max-connections", required_argument, NULL, OPT_MAXCONN},
    {"log-level", required_argument, NULL, OPT_LOGLEVEL},
    {"ctx-cache", required_argument, NULL, OPT_CTXCACHE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

void kw_ks_config_defaults(kw_ks_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cpus > 0 ? (unsigned)cpus : 1;
    cfg->idle_timeout_ms = 60000;
    cfg->handshake_timeout_ms = 10000;
    cfg->max_inflight = 256;
    cfg->max_connections = 0;
    cfg->log_level = KW_LOG_INFO;
    cfg->ctx_cache_slots = 64;
}

void kw_ks_config_usage(FILE *out)
{
    fprintf(out,
            "usage: keyward-keyserver --cert FILE --key FILE --ca FILE [options]\n"
            "\n"
            "Serves private-key operations (KWP, Keyless SSL compatible) over mutual TLS.\n"
            "\n"
            "  --listen HOST:PORT          address to listen on (default 127.0.0.1:%d;\n"
            "                              IPv6 as [::1]:PORT)\n"
            "  --cert FILE                 the key server's own TLS certificate (PEM, required)\n"
            "  --key FILE                  its private key (PEM, required)\n"
            "  --ca FILE                   CA that signs client (edge) certificates (required)\n"
            "  --keys DIR                  directory of site keys NAME.key (+ NAME.crt chain)\n"
            "  --workers N                 private-key worker threads (default: CPU count)\n"
            "  --idle-timeout-ms MS        close connections idle this long (default 60000)\n"
            "  --handshake-timeout-ms MS   close connections not through TLS in time (10000)\n"
            "  --max-inflight N            requests in flight per connection before reading\n"
            "                              pauses (default 256)\n"
            "  --max-connections N         refuse connections beyond N (default 0: no limit)\n"
            "  --log-level LEVEL           debug, info, warn or error (default info)\n"
            "  --ctx-cache N               OpenSSL contexts cached per worker (default 64;\n"
            "                              0 makes one per operation)\n"
            "  --help                      this text\n",
            KW_DEFAULT_PORT);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || *s == '-')
        return KW_EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v > max)
        return KW_EINVAL;
    *out = v;
    return 0;
}

static int parse_level(const char *s, kw_log_level_t *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (kw_log_level_t)i;
            return 0;
        }
    }
    return KW_EINVAL;
}

static int set_str(char **slot, const char *v)
{
    char *copy = strdup(v);
    if (copy == NULL)
        return KW_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Numeric flags: bounds per option. */
static int set_number(kw_ks_config_t *cfg, int opt, const char *v)
{
    unsigned long long n = 0;
    unsigned long long max = opt == OPT_IDLE || opt == OPT_HANDSHAKE ? 86400000ULL : 1000000ULL;
    if (parse_uint(v, max, &n) != 0)
        return KW_EINVAL;
    switch (opt) {
    case OPT_WORKERS:
        cfg->workers = (unsigned)n;
        break;
    case OPT_IDLE:
        cfg->idle_timeout_ms = n;
        break;
    case OPT_HANDSHAKE:
        cfg->handshake_timeout_ms = n;
        break;
    case OPT_INFLIGHT:
        cfg->max_inflight = (unsigned)n;
        break;
    case OPT_MAXCONN:
        cfg->max_connections = (unsigned)n;
        break;
    default:
        cfg->ctx_cache_slots = (unsigned)n;
        break;
    }
    return 0;
}

static int apply_opt(kw_ks_config_t *cfg, int opt, const char *v)
{
    switch (opt) {
    case OPT_LISTEN:
        return set_str(&cfg->listen, v);
    case OPT_CERT:
        return set_str(&cfg->cert, v);
    case OPT_KEY:
        return set_str(&cfg->key, v);
    case OPT_CA:
        return set_str(&cfg->ca, v);
    case OPT_KEYS:
        return set_str(&cfg->keys_dir, v);
    case OPT_LOGLEVEL:
        return parse_level(v, &cfg->log_level);
    default:
        return set_number(cfg, opt, v);
    }
}

int kw_ks_config_parse_args(kw_ks_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (opt == OPT_HELP || opt == 'h') {
            kw_ks_config_usage(stdout);
            return 1;
        }
        if (opt == '?' || opt == ':') {
            snprintf(err, errlen, "unknown option or missing value: %s (see --help)",
                     argv[optind - 1]);
            return KW_EINVAL;
        }
        if (apply_opt(cfg, opt, optarg) != 0) {
            snprintf(err, errlen, "invalid value '%s' for %s (see --help)", optarg,
                     argv[optind - 1]);
            return KW_EINVAL;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: %s (see --help)", argv[optind]);
        return KW_EINVAL;
    }
    return 0;
}

int kw_ks_config_validate(const kw_ks_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->cert == NULL || cfg->key == NULL || cfg->ca == NULL) {
        snprintf(err, errlen,
                 "--cert, --key and --ca are required (the key server's TLS "
                 "identity and the CA of its clients)");
        return KW_ECONFIG;
    }
    if (cfg->workers < 1 || cfg->workers > 1024) {
        snprintf(err, errlen, "--workers must be between 1 and 1024");
        return KW_ECONFIG;
    }
    if (cfg->max_inflight < 1 || cfg->max_inflight > 65536) {
        snprintf(err, errlen, "--max-inflight must be between 1 and 65536");
        return KW_ECONFIG;
    }
    if (cfg->idle_timeout_ms < 1 || cfg->handshake_timeout_ms < 1) {
        snprintf(err, errlen, "timeouts must be at least 1 ms");
        return KW_ECONFIG;
    }
    return 0;
}

void kw_ks_config_free(kw_ks_config_t *cfg)
{
    free(cfg->listen);
    free(cfg->cert);
    free(cfg->key);
    free(cfg->ca);
    free(cfg->keys_dir);
    memset(cfg, 0, sizeof(*cfg));
}
