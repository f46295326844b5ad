/*
 * Key server configuration from command-line flags (getopt_long), with defaults and checks. The
 * YAML config file (config_file.c) goes through kw_ks_config_set, i.e. the same setters.
 */
#include <getopt.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "config/config.h"
#include "config/opset.h"
#include "kw_num.h"

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
    OPT_CONFIG,
    OPT_P11_MODULE,
    OPT_P11_TOKEN,
    OPT_P11_PIN,
    OPT_METRICS,
    OPT_AUDIT,
    OPT_UPSTREAM,
    OPT_REQ_TIMEOUT,
    OPT_UPSTREAM_CERT, /* fleet: chaining and authorisation (docs/fleet.md) */
    OPT_UPSTREAM_KEY,
    OPT_UPSTREAM_CA,
    OPT_UPSTREAM_TIMEOUT,
    OPT_ALLOW,
    OPT_USER,      /* hygiene: drop root after binding and loading keys */
    OPT_ENABLE_OP, /* least privilege: operations beyond the TLS-safe default (opset.h) */
    OPT_ALLOW_ALL,
    OPT_RSA_CACHE, /* hygiene: let OpenSSL cache p and q outside the secure heap */
};

/* Connection limits, fairness, rate limits, audit durability and the metrics listener
 * (docs/security.md): their own block, so lists that grow above stay apart. */
enum {
    OPT_AUDIT_FSYNC = 512,
    OPT_FRAME_TIMEOUT,
    OPT_RATE_LIMIT,
    OPT_RATE_BURST,
    OPT_MAX_HANDSHAKES,
    OPT_MAX_HANDSHAKES_IP,
    OPT_METRICS_TOKEN,
    OPT_TICKET_SECRET, /* fleet session tickets (keystore/ticket_keys.h) */
    OPT_TICKET_ROTATION,
};

static const struct option long_opts[] = {
    {"audit-fsync", optional_argument, NULL, OPT_AUDIT_FSYNC},
    {"frame-timeout-ms", required_argument, NULL, OPT_FRAME_TIMEOUT},
    {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
    {"rate-burst", required_argument, NULL, OPT_RATE_BURST},
    {"max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES},
    {"max-handshakes-per-ip", required_argument, NULL, OPT_MAX_HANDSHAKES_IP},
    {"metrics-token-file", required_argument, NULL, OPT_METRICS_TOKEN},
    {"ticket-secret", required_argument, NULL, OPT_TICKET_SECRET},
    {"ticket-rotation-s", required_argument, NULL, OPT_TICKET_ROTATION},
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
    {"config", required_argument, NULL, OPT_CONFIG},
    {"pkcs11-module", required_argument, NULL, OPT_P11_MODULE},
    {"pkcs11-token", required_argument, NULL, OPT_P11_TOKEN},
    {"pkcs11-pin-file", required_argument, NULL, OPT_P11_PIN},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"audit-log", required_argument, NULL, OPT_AUDIT},
    {"upstream", required_argument, NULL, OPT_UPSTREAM},
    {"request-timeout-ms", required_argument, NULL, OPT_REQ_TIMEOUT},
    {"upstream-cert", required_argument, NULL, OPT_UPSTREAM_CERT},
    {"upstream-key", required_argument, NULL, OPT_UPSTREAM_KEY},
    {"upstream-ca", required_argument, NULL, OPT_UPSTREAM_CA},
    {"upstream-timeout-ms", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"user", required_argument, NULL, OPT_USER},
    {"enable-op", required_argument, NULL, OPT_ENABLE_OP},
    {"allow-all", no_argument, NULL, OPT_ALLOW_ALL},
    {"rsa-cache-factors", required_argument, NULL, OPT_RSA_CACHE},
    {NULL, 0, NULL, 0},
};

/* --workers auto: one worker per CPU this process may run on (its affinity mask: taskset,
 * cgroup cpusets); on one CPU the loop thread signs itself (a worker there would only take turns
 * with the loop on that CPU, at two context switches per hand-off). */
static void workers_auto(kw_ks_config_t *cfg)
{
    cpu_set_t set;
    long cpus = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        cpus = CPU_COUNT(&set);
    if (cpus <= 0)
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cpus > 1 ? (unsigned)cpus : 1;
    cfg->loop_signs = cpus <= 1;
}

void kw_ks_config_defaults(kw_ks_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    workers_auto(cfg);
    cfg->idle_timeout_ms = 60000;
    cfg->handshake_timeout_ms = 10000;
    cfg->frame_timeout_ms = 10000;
    cfg->max_handshakes = 256;
    cfg->max_handshakes_per_ip = 64;
    cfg->max_inflight = 256;
    cfg->max_connections = 0;
    cfg->log_level = KW_LOG_INFO;
    cfg->ctx_cache_slots = 64;
    cfg->ticket_rotation_s = 3600;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    uint64_t v = 0;
    if (kw_parse_u64(s, max, &v) != 0)
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
    if (opt == OPT_WORKERS && strcmp(v, "auto") == 0) {
        workers_auto(cfg);
        return 0;
    }
    unsigned long long max = opt == OPT_IDLE || opt == OPT_HANDSHAKE || opt == OPT_REQ_TIMEOUT ||
                                     opt == OPT_UPSTREAM_TIMEOUT
                                 ? 86400000ULL
                                 : 1000000ULL;
    if (parse_uint(v, max, &n) != 0)
        return KW_EINVAL;
    switch (opt) {
    case OPT_WORKERS: /* 0: the loop signs, one worker for tokens */
        cfg->workers = n > 0 ? (unsigned)n : 1;
        cfg->loop_signs = n == 0;
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
    case OPT_REQ_TIMEOUT:
        cfg->request_timeout_ms = n;
        break;
    case OPT_UPSTREAM_TIMEOUT:
        cfg->upstream_timeout_ms = n;
        break;
    default:
        cfg->ctx_cache_slots = (unsigned)n;
        break;
    }
    return 0;
}

/* The --pkcs11-* flags fill one token entry (the first). */
static int set_pkcs11(kw_ks_config_t *cfg, int opt, const char *v)
{
    if (cfg->n_pkcs11 == 0 && kw_ks_config_add_pkcs11(cfg) == NULL)
        return KW_ENOMEM;
    kw_ks_pkcs11_t *p = &cfg->pkcs11[0];
    if (opt == OPT_P11_MODULE)
        return set_str(&p->module, v);
    if (opt == OPT_P11_TOKEN)
        return set_str(&p->token, v);
    return set_str(&p->pin_file, v);
}

/* Empties the list an option fills (before the first command-line use of a list flag, or when a
 * config file gives the list). */
static void clear_list(kw_ks_config_t *cfg, int opt)
{
    if (opt == OPT_KEYS)
        kw_strlist_free(&cfg->keys_dirs, &cfg->n_keys_dirs);
    else if (opt == OPT_UPSTREAM)
        kw_strlist_free(&cfg->upstreams, &cfg->n_upstreams);
    else if (opt == OPT_P11_MODULE || opt == OPT_P11_TOKEN || opt == OPT_P11_PIN)
        kw_ks_config_free_pkcs11(cfg);
    else if (opt == OPT_ALLOW)
        kw_ks_config_free_allow(cfg);
    else if (opt == OPT_ENABLE_OP)
        kw_strlist_free(&cfg->enable_ops, &cfg->n_enable_ops);
}

/* Bit of a list option in the "already cleared by the command line" mask; 0 for other options. */
static unsigned list_bit(int opt)
{
    switch (opt) {
    case OPT_KEYS:
        return 1u;
    case OPT_UPSTREAM:
        return 2u;
    case OPT_P11_MODULE:
    case OPT_P11_TOKEN:
    case OPT_P11_PIN:
        return 4u;
    case OPT_ALLOW:
        return 8u;
    case OPT_ENABLE_OP:
        return 16u;
    default:
        return 0u;
    }
}

/* yes/no, true/false, on/off, 1/0; NULL (a flag without a value): yes. */
static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (s == NULL || strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return KW_EINVAL;
}

static int set_u64(uint64_t *slot, const char *v, unsigned long long max)
{
    unsigned long long n = 0;
    if (parse_uint(v, max, &n) != 0)
        return KW_EINVAL;
    *slot = n;
    return 0;
}

static int set_unsigned(unsigned *slot, const char *v, unsigned long long max)
{
    unsigned long long n = 0;
    if (parse_uint(v, max, &n) != 0)
        return KW_EINVAL;
    *slot = (unsigned)n;
    return 0;
}

/* The options of the second enum block; 1 when opt is not one of them. */
static int apply_limit_opt(kw_ks_config_t *cfg, int opt, const char *v)
{
    switch (opt) {
    case OPT_AUDIT_FSYNC:
        return parse_bool(v, &cfg->audit_fsync);
    case OPT_FRAME_TIMEOUT:
        return set_u64(&cfg->frame_timeout_ms, v, 86400000ULL);
    case OPT_RATE_LIMIT:
        return set_unsigned(&cfg->rate_limit, v, 1000000ULL);
    case OPT_RATE_BURST:
        return set_unsigned(&cfg->rate_burst, v, 1000000ULL);
    case OPT_MAX_HANDSHAKES:
        return set_unsigned(&cfg->max_handshakes, v, 1000000ULL);
    case OPT_MAX_HANDSHAKES_IP:
        return set_unsigned(&cfg->max_handshakes_per_ip, v, 1000000ULL);
    case OPT_METRICS_TOKEN:
        return set_str(&cfg->metrics_token_file, v);
    case OPT_TICKET_SECRET:
        return set_str(&cfg->ticket_secret, v);
    case OPT_TICKET_ROTATION:
        if (set_unsigned(&cfg->ticket_rotation_s, v, 604800ULL) != 0 || cfg->ticket_rotation_s == 0)
            return KW_EINVAL;
        return 0;
    default:
        return 1;
    }
}

static int apply_opt(kw_ks_config_t *cfg, int opt, const char *v)
{
    int rc = apply_limit_opt(cfg, opt, v);
    if (rc != 1)
        return rc;
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
        return kw_strlist_add(&cfg->keys_dirs, &cfg->n_keys_dirs, v);
    case OPT_UPSTREAM:
        return kw_strlist_add(&cfg->upstreams, &cfg->n_upstreams, v);
    case OPT_CONFIG:
        return set_str(&cfg->config_file, v);
    case OPT_METRICS:
        return set_str(&cfg->metrics, v);
    case OPT_AUDIT:
        return set_str(&cfg->audit_log, v);
    case OPT_UPSTREAM_CERT:
        return set_str(&cfg->upstream_cert, v);
    case OPT_UPSTREAM_KEY:
        return set_str(&cfg->upstream_key, v);
    case OPT_UPSTREAM_CA:
        return set_str(&cfg->upstream_ca, v);
    case OPT_USER:
        return set_str(&cfg->user, v);
    case OPT_RSA_CACHE:
        if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
            cfg->rsa_cache_factors = 1;
        else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
            cfg->rsa_cache_factors = 0;
        else
            return KW_EINVAL;
        return 0;
    case OPT_ALLOW:
        return kw_ks_allow_add_flag(cfg, v);
    case OPT_ENABLE_OP: {
        kw_ks_opset_t probe = kw_ks_opset_empty();
        if (kw_ks_opset_add_name(&probe, v) != 0)
            return KW_EINVAL;
        return kw_strlist_add(&cfg->enable_ops, &cfg->n_enable_ops, v);
    }
    case OPT_ALLOW_ALL:
        cfg->allow_all = 1;
        return 0;
    case OPT_P11_MODULE:
    case OPT_P11_TOKEN:
    case OPT_P11_PIN:
        return set_pkcs11(cfg, opt, v);
    case OPT_LOGLEVEL:
        return parse_level(v, &cfg->log_level);
    default:
        return set_number(cfg, opt, v);
    }
}

int kw_ks_config_parse_args(kw_ks_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    int opt, idx = -1;
    unsigned cleared = 0; /* a list flag replaces the config file's list */
    optind = 1;
    opterr = 0;
    for (;;) {
        opt = getopt_long(argc, argv, "h", long_opts, &idx);
        if (opt == -1)
            break;
        if (opt == OPT_HELP || opt == 'h') {
            kw_ks_config_usage(stdout);
            return 1;
        }
        if (opt == '?' || opt == ':') {
            snprintf(err, errlen, "unknown option or missing value: %s (see --help)",
                     argv[optind - 1]);
            return KW_EINVAL;
        }
        if ((list_bit(opt) & ~cleared) != 0) {
            clear_list(cfg, opt);
            cleared |= list_bit(opt);
        }
        if (apply_opt(cfg, opt, optarg) != 0) {
            /* the option by its name: argv[optind - 1] is the value when it came apart */
            const char *hint = opt == OPT_ENABLE_OP ? "; known operations: " KW_KS_OPSET_NAMES
                               : opt == OPT_ALLOW
                                   ? "; expected EDGE=KEY[,KEY...] with EDGE cn:NAME, san:DNSNAME "
                                     "or spki:HEX (e.g. --allow cn:edge=sni:example.com)"
                                   : "";
            snprintf(err, errlen, "invalid value '%s' for --%s (see --help)%s",
                     optarg != NULL ? optarg : "", idx >= 0 ? long_opts[idx].name : "?", hint);
            return KW_EINVAL;
        }
        idx = -1;
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
        snprintf(err, errlen, "--workers must be auto or between 0 and 1024");
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
    for (size_t i = 0; i < cfg->n_pkcs11; i++) {
        const kw_ks_pkcs11_t *p = &cfg->pkcs11[i];
        if (p->uri == NULL && (p->module == NULL || p->token == NULL || p->pin_file == NULL)) {
            snprintf(err, errlen,
                     "--pkcs11-module, --pkcs11-token and --pkcs11-pin-file go "
                     "together (or give a pkcs11: URI in the config file)");
            return KW_ECONFIG;
        }
    }
    if ((cfg->upstream_cert == NULL) != (cfg->upstream_key == NULL)) {
        snprintf(err, errlen, "--upstream-cert and --upstream-key go together");
        return KW_ECONFIG;
    }
    return 0;
}

int kw_ks_config_find_file(int argc, char **argv, const char **path)
{
    int opt;
    optind = 1;
    opterr = 0;
    *path = NULL;
    for (;;) {
        opt = getopt_long(argc, argv, "h", long_opts, NULL);
        if (opt == -1)
            break;
        if (opt == OPT_HELP || opt == 'h')
            return 1;
        if (opt == OPT_CONFIG)
            *path = optarg;
    }
    return 0;
}

int kw_ks_config_set(kw_ks_config_t *cfg, const char *flag, const char *value, char *why,
                     size_t whylen)
{
    const struct option *o = long_opts;
    while (o->name != NULL && strcmp(o->name, flag) != 0)
        o++;
    if (o->name == NULL || o->has_arg == no_argument) {
        snprintf(why, whylen, "no such setting");
        return KW_EINVAL;
    }
    if (value == NULL) {
        clear_list(cfg, o->val);
        return 0;
    }
    int rc = apply_opt(cfg, o->val, value);
    if (rc == KW_ENOMEM)
        snprintf(why, whylen, "out of memory");
    else if (rc != 0)
        snprintf(why, whylen, "invalid value '%.200s' (see --%s in keyward-keyserver --help)",
                 value, flag);
    return rc;
}

void kw_ks_config_free(kw_ks_config_t *cfg)
{
    free(cfg->config_file);
    free(cfg->listen);
    free(cfg->cert);
    free(cfg->key);
    free(cfg->ca);
    free(cfg->metrics);
    free(cfg->metrics_token_file);
    free(cfg->audit_log);
    free(cfg->ticket_secret);
    free(cfg->upstream_cert);
    free(cfg->upstream_key);
    free(cfg->upstream_ca);
    free(cfg->user);
    kw_strlist_free(&cfg->keys_dirs, &cfg->n_keys_dirs);
    kw_strlist_free(&cfg->upstreams, &cfg->n_upstreams);
    kw_ks_config_free_pkcs11(cfg);
    kw_ks_config_free_allow(cfg);
    kw_strlist_free(&cfg->enable_ops, &cfg->n_enable_ops);
    memset(cfg, 0, sizeof(*cfg));
}
