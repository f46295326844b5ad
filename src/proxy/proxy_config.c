/*
 * keyward-proxy options: one table names every option once, with its kind and help text; the
 * command-line parser, the YAML loader (proxy_yaml.c, which is handed the setter) and --help
 * are all driven by it.
 */
#include "proxy_config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "proxy_yaml.h"
#include "kw_num.h"
#include "kw_guard.h"

typedef enum opt_kind {
    OPT_STR,
    OPT_UINT,
    OPT_BOOL,
    OPT_LIST,
    OPT_CERT,
    OPT_LOGLEVEL,
    OPT_CONFIG,
    OPT_HELP,
    OPT_CHECK,
} opt_kind_t;

typedef struct opt_def {
    const char *name; /* long flag and YAML key ('-' in flags, '_' in YAML) */
    opt_kind_t kind;
    size_t offset;
    const char *arg;
    const char *help;
} opt_def_t;

#define OFF(field) offsetof(kw_proxy_config_t, field)

static const opt_def_t opts[] = {
    {"config", OPT_CONFIG, 0, "FILE", "YAML file with the options below (flags override it)"},
    {"check-config", OPT_CHECK, 0, NULL,
     "check the configuration like nginx -t: load every certificate and key, check file "
     "permissions, print what would run, exit 0 (ok) or 1 (command line only)"},
    {"listen", OPT_STR, OFF(listen), "HOST:PORT",
     "where clients connect (default " KW_PROXY_DEFAULT_LISTEN ")"},
    {"cert", OPT_CERT, 0, "CERT[,KEY]",
     "site certificate chain, repeatable; SNI picks, the first is the default. KEY is a keyward: "
     "URI, a key stub or a PEM key; without it the key server's key for CERT is used"},
    {"cert-from-keyserver", OPT_LIST, OFF(cert_from_keyserver), "NAME",
     "fetch this site's certificate chain from the key servers (0xA2) at start and again before "
     "it expires, repeatable; NAME is an SNI name or sha256:HEX (the key id); the key is the key "
     "server's"},
    {"cert-recheck-s", OPT_UINT, OFF(cert_recheck_s), "SECONDS",
     "ask the key servers this often whether a fetched certificate has been renewed, and serve a "
     "newer one at once (default 600; 0: only when it nears its end)"},
    {"backend", OPT_STR, OFF(backend), "HOST:PORT", "where plaintext goes (required)"},
    {"keyserver", OPT_LIST, OFF(keyservers), "HOST:PORT",
     "key server, repeatable (needed unless every KEY is local)"},
    {"client-cert", OPT_STR, OFF(client_cert), "FILE",
     "this edge's certificate for the key servers"},
    {"client-key", OPT_STR, OFF(client_key), "FILE", "its private key"},
    {"ca", OPT_STR, OFF(ca), "FILE", "CA that signed the key servers' certificates"},
    {"provider", OPT_STR, OFF(provider), "PATH",
     "keyward.so (default: ../lib/keyward.so next to "
     "this binary, then OpenSSL's module directory)"},
    {"proxy-protocol", OPT_BOOL, OFF(proxy_protocol), NULL,
     "send a PROXY protocol v2 header with the client's address to the backend"},
    {"no-master-secret", OPT_BOOL, OFF(no_master_secret), NULL,
     "TLS 1.2 RSA key exchange: get the pre-master secret from the key server (0xA0) instead of "
     "only the master secret (0xA1, the default)"},
    {"reuse-port", OPT_BOOL, OFF(reuse_port), NULL,
     "share --listen with processes already listening there (SO_REUSEPORT), e.g. to take over "
     "from a proxy being drained with SIGQUIT; without it an address in use is refused"},
    {"alpn", OPT_LIST, OFF(alpn), "LIST",
     "ALPN protocols to accept and pass through, e.g. "
     "h2,http/1.1 (default: no ALPN)"},
    {"tickets-from-keyserver", OPT_BOOL, OFF(tickets_from_keyserver), NULL,
     "session tickets with the fleet's keys from the key servers (0xA4; the key server needs "
     "--ticket-secret and an allow rule naming 'tickets'), so sessions resume at every edge "
     "without a key operation"},
    {"session-context", OPT_STR, OFF(session_context), "nginx|haproxy|TEXT",
     "session-id context, which must match for a session to resume: nginx (derived from the "
     "certificates as nginx does), haproxy, or a text (default: keyward-proxy)"},
    {"threads", OPT_UINT, OFF(threads), "N", "event loop threads (default: one per core)"},
    {"handshake-timeout-ms", OPT_UINT, OFF(handshake_timeout_ms), "MS",
     "cut connections whose handshake and backend connect take longer (default 10000)"},
    {"idle-timeout-ms", OPT_UINT, OFF(idle_timeout_ms), "MS",
     "close connections idle this long (default 60000)"},
    {"drain-timeout-ms", OPT_UINT, OFF(drain_timeout_ms), "MS",
     "on SIGQUIT, let open connections finish for up to this long, then cut them (default "
     "30000)"},
    {"max-connections", OPT_UINT, OFF(max_connections), "N",
     "connections served at once; more are closed at accept (default 10000)"},
    {"keyserver-timeout-ms", OPT_UINT, OFF(keyserver_timeout_ms), "MS",
     "per key operation, retries included (default 5000)"},
    {"metrics", OPT_STR, OFF(metrics), "HOST:PORT",
     "serve Prometheus metrics at http://HOST:PORT/metrics, liveness at /health (503 when an event "
     "loop is stalled) and readiness at /ready (503 and why until the proxy can serve: loops "
     "running, certificates loaded, a key server answering) (keep it on a private interface)"},
    {"metrics-token-file", OPT_STR, OFF(metrics_token_file), "FILE",
     "/metrics requires 'Authorization: Bearer' and the file's first line (default: no token; "
     "read once at start; keep it unreadable by other users, e.g. root:keyward 0640); /health "
     "and /ready need no token"},
    {"log-level", OPT_LOGLEVEL, OFF(log_level), "LEVEL",
     "debug, info, warn or error (default info)"},
    {"help", OPT_HELP, 0, NULL, "this text"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

void kw_proxy_config_init(kw_proxy_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->handshake_timeout_ms = KW_PROXY_DEFAULT_HS_TIMEOUT;
    cfg->idle_timeout_ms = KW_PROXY_DEFAULT_IDLE_TIMEOUT;
    cfg->drain_timeout_ms = KW_PROXY_DEFAULT_DRAIN_TIMEOUT;
    cfg->max_connections = KW_PROXY_DEFAULT_MAX_CONNS;
    cfg->keyserver_timeout_ms = KW_PROXY_DEFAULT_KS_TIMEOUT;
    cfg->cert_recheck_s = KW_PROXY_DEFAULT_CERT_RECHECK_S;
    cfg->log_level = KW_LOG_INFO;
}

static void strlist_clear(kw_strlist_t *l)
{
    kw_strlist_free(&l->v, &l->n);
}

static void certs_clear(kw_proxy_config_t *cfg)
{
    for (size_t i = 0; i < cfg->ncerts; i++) {
        free(cfg->certs[i].cert);
        free(cfg->certs[i].key);
    }
    free(cfg->certs);
    cfg->certs = NULL;
    cfg->ncerts = 0;
}

void kw_proxy_config_free(kw_proxy_config_t *cfg)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].kind == OPT_STR) {
            char **field = (char **)((char *)cfg + opts[i].offset);
            free(*field);
            *field = NULL;
        }
    }
    strlist_clear(&cfg->keyservers);
    strlist_clear(&cfg->alpn);
    strlist_clear(&cfg->cert_from_keyserver);
    certs_clear(cfg);
}

static const opt_def_t *find_opt(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const char *a = opts[i].name;
        const char *b = name;
        while (*a != '\0' && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            return &opts[i];
        }
    }
    return NULL;
}

int kw_proxy_config_is_list(const char *name)
{
    const opt_def_t *o = find_opt(name);
    return o != NULL && (o->kind == OPT_LIST || o->kind == OPT_CERT);
}

static int set_uint(unsigned *out, const char *name, const char *value, char *err, size_t errlen)
{
    if (kw_parse_uint(value, 0, UINT_MAX, out) != 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a whole number", name, value);
        return KW_ECONFIG;
    }
    return 0;
}

static int set_bool(int *out, const char *name, const char *value, char *err, size_t errlen)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    if (value == NULL) {
        *out = 1;
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    snprintf(err, errlen, "%s: \"%s\" is not true or false", name, value);
    return KW_ECONFIG;
}

static int set_loglevel(kw_log_level_t *out, const char *value, char *err, size_t errlen)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, names[i]) == 0) {
            *out = (kw_log_level_t)i;
            return 0;
        }
    }
    snprintf(err, errlen, "log-level: \"%s\" is not debug, info, warn or error", value);
    return KW_ECONFIG;
}

/* Appends each comma-separated, non-empty element of value. */
static int list_append(kw_strlist_t *l, const char *value)
{
    const char *p = value;
    while (*p != '\0') {
        size_t len = strcspn(p, ", ");
        if (len > 0 && kw_strlist_addn(&l->v, &l->n, p, len) != 0) {
            return KW_ENOMEM;
        }
        p += len;
        p += strspn(p, ", ");
    }
    return 0;
}

/* "CERT" or "CERT,KEY". The key part may itself contain no comma. */
static int cert_append(kw_proxy_config_t *cfg, const char *value, char *err, size_t errlen)
{
    const char *comma = strchr(value, ',');
    size_t certlen = comma != NULL ? (size_t)(comma - value) : strlen(value);
    if (certlen == 0 || (comma != NULL && comma[1] == '\0')) {
        snprintf(err, errlen, "cert: \"%s\" should be CERT or CERT,KEY", value);
        return KW_ECONFIG;
    }
    kw_proxy_cert_t *certs = realloc(cfg->certs, (cfg->ncerts + 1) * sizeof(*certs));
    if (certs == NULL) {
        return KW_ENOMEM;
    }
    cfg->certs = certs;
    kw_proxy_cert_t *c = &cfg->certs[cfg->ncerts];
    c->cert = strndup(value, certlen);
    c->key = comma != NULL ? strdup(comma + 1) : NULL;
    if (c->cert == NULL || (comma != NULL && c->key == NULL)) {
        free(c->cert);
        free(c->key);
        return KW_ENOMEM;
    }
    cfg->ncerts++;
    return 0;
}

int kw_proxy_config_set(kw_proxy_config_t *cfg, const char *name, const char *value, char *err,
                        size_t errlen)
{
    const opt_def_t *o = find_opt(name);
    if (o == NULL || o->kind == OPT_CONFIG || o->kind == OPT_HELP || o->kind == OPT_CHECK) {
        snprintf(err, errlen, "unknown option \"%s\" (see keyward-proxy --help)", name);
        return KW_ECONFIG;
    }
    if (value == NULL && o->kind != OPT_BOOL) {
        snprintf(err, errlen, "%s needs a value (%s)", o->name, o->arg);
        return KW_ECONFIG;
    }
    void *field = (char *)cfg + o->offset;
    int rc = 0;
    switch (o->kind) {
    case OPT_STR:
        free(*(char **)field);
        *(char **)field = strdup(value);
        rc = *(char **)field != NULL ? 0 : KW_ENOMEM;
        break;
    case OPT_UINT:
        rc = set_uint(field, o->name, value, err, errlen);
        break;
    case OPT_BOOL:
        rc = set_bool(field, o->name, value, err, errlen);
        break;
    case OPT_LIST:
        rc = list_append(field, value);
        break;
    case OPT_CERT:
        rc = cert_append(cfg, value, err, errlen);
        break;
    case OPT_LOGLEVEL:
        rc = set_loglevel(field, value, err, errlen);
        break;
    default:
        rc = KW_ECONFIG;
        break;
    }
    if (rc == KW_ENOMEM) {
        snprintf(err, errlen, "out of memory");
    }
    return rc;
}

static int yaml_set(void *arg, const char *key, const char *value, char *why, size_t whylen)
{
    return kw_proxy_config_set(arg, key, value, why, whylen);
}

int kw_proxy_config_load_yaml(kw_proxy_config_t *cfg, const char *path, char *err, size_t errlen)
{
    kw_proxy_yaml_sink_t sink = {yaml_set, kw_proxy_config_is_list, cfg};
    return kw_proxy_yaml_load(path, &sink, err, errlen);
}

int kw_proxy_config_load_yaml_buffer(kw_proxy_config_t *cfg, const char *name,
                                     const unsigned char *data, size_t len, char *err,
                                     size_t errlen)
{
    kw_proxy_yaml_sink_t sink = {yaml_set, kw_proxy_config_is_list, cfg};
    return kw_proxy_yaml_load_buffer(name, data, len, &sink, err, errlen);
}

/* A list option given on the command line replaces what the file said, once. */
static void cli_replace_list(kw_proxy_config_t *cfg, const opt_def_t *o)
{
    unsigned bit = 1u << (unsigned)(o - opts);
    if (cfg->cli_lists & bit) {
        return;
    }
    cfg->cli_lists |= bit;
    if (o->kind == OPT_CERT) {
        certs_clear(cfg);
    } else if (o->kind == OPT_LIST) {
        strlist_clear((kw_strlist_t *)((char *)cfg + o->offset));
    }
}

static void build_longopts(struct option *lo)
{
    for (size_t i = 0; i < NOPTS; i++) {
        lo[i].name = opts[i].name;
        lo[i].has_arg = opts[i].arg != NULL ? required_argument : no_argument;
        lo[i].flag = NULL;
        lo[i].val = 256 + (int)i;
    }
    memset(&lo[NOPTS], 0, sizeof(lo[NOPTS]));
}

static int find_config_arg(int argc, char **argv, const struct option *lo, const char **path,
                           char *err, size_t errlen)
{
    opterr = 0;
    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "h", lo, NULL);
        if (c == -1) {
            break;
        }
        if (c == '?' || c == ':') {
            snprintf(err, errlen, "unknown option or missing value: %s",
                     optind - 1 < argc ? argv[optind - 1] : "?");
            return KW_ECONFIG;
        }
        if (c >= 256 && opts[c - 256].kind == OPT_CONFIG) {
            *path = optarg;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        return KW_ECONFIG;
    }
    return 0;
}

int kw_proxy_config_from_args(kw_proxy_config_t *cfg, int argc, char **argv, int *help, char *err,
                              size_t errlen)
{
    struct option lo[NOPTS + 1];
    const char *path = NULL;
    build_longopts(lo);
    *help = 0;
    int rc = find_config_arg(argc, argv, lo, &path, err, errlen);
    if (rc == 0 && path != NULL) {
        rc = kw_proxy_config_load_yaml(cfg, path, err, errlen);
    }
    optind = 1;
    while (rc == 0) {
        int c = getopt_long(argc, argv, "h", lo, NULL);
        if (c == -1) {
            break;
        }
        if (c == 'h' || (c >= 256 && opts[c - 256].kind == OPT_HELP)) {
            *help = 1;
            continue;
        }
        if (c >= 256 && opts[c - 256].kind == OPT_CHECK) {
            cfg->check_config = 1;
            continue;
        }
        if (c < 256 || opts[c - 256].kind == OPT_CONFIG) {
            continue;
        }
        const opt_def_t *o = &opts[c - 256];
        cli_replace_list(cfg, o);
        rc = kw_proxy_config_set(cfg, o->name, o->arg != NULL ? optarg : NULL, err, errlen);
    }
    optind = 1;
    return rc;
}

/* --cert-from-keyserver: "sha256:" and 64 hex digits, or a DNS name of at most 255 bytes. */
static int check_fetch_names(const kw_proxy_config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->cert_from_keyserver.n; i++) {
        const char *n = cfg->cert_from_keyserver.v[i];
        int ok;
        if (strncmp(n, "sha256:", 7) == 0) {
            ok = strlen(n + 7) == 64 && strspn(n + 7, "0123456789abcdefABCDEF") == 64;
        } else {
            ok = strlen(n) <= 255 &&
                 strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_*") ==
                     strlen(n);
        }
        if (!ok) {
            snprintf(err, errlen,
                     "cert-from-keyserver: \"%s\" is neither a DNS name nor sha256:<64 hex digits>",
                     n);
            return KW_ECONFIG;
        }
    }
    return 0;
}

int kw_proxy_config_check(const kw_proxy_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->ncerts == 0 && cfg->cert_from_keyserver.n == 0) {
        snprintf(err, errlen,
                 "no certificate: give at least one --cert CERT[,KEY] or --cert-from-keyserver "
                 "NAME");
        return KW_ECONFIG;
    }
    KW_GUARD(check_fetch_names(cfg, err, errlen));
    if (cfg->backend == NULL) {
        snprintf(err, errlen, "no backend: give --backend HOST:PORT");
        return KW_ECONFIG;
    }
    int remote = cfg->cert_from_keyserver.n > 0;
    for (size_t i = 0; i < cfg->ncerts; i++) {
        if (cfg->certs[i].key == NULL || strncmp(cfg->certs[i].key, "keyward:", 8) == 0) {
            remote = 1;
        }
    }
    if (remote && cfg->keyservers.n == 0) {
        snprintf(err, errlen,
                 "a certificate without a local key needs a key server: give "
                 "--keyserver HOST:PORT (and --client-cert/--client-key/--ca)");
        return KW_ECONFIG;
    }
    if (cfg->keyservers.n > 0 &&
        (cfg->client_cert == NULL || cfg->client_key == NULL || cfg->ca == NULL)) {
        snprintf(err, errlen,
                 "key servers need mutual TLS: give --client-cert, --client-key "
                 "and --ca");
        return KW_ECONFIG;
    }
    if (cfg->handshake_timeout_ms == 0 || cfg->idle_timeout_ms == 0 || cfg->max_connections == 0) {
        snprintf(err, errlen, "timeouts and --max-connections must be above 0");
        return KW_ECONFIG;
    }
    for (size_t i = 0; i < cfg->alpn.n; i++) {
        if (strlen(cfg->alpn.v[i]) > 255) {
            snprintf(err, errlen, "alpn: protocol names are at most 255 bytes");
            return KW_ECONFIG;
        }
    }
    return 0;
}

/* Prints text from column 35, wrapped before column 100. */
static void print_wrapped(FILE *out, const char *text)
{
    size_t col = 35;
    while (*text != '\0') {
        size_t word = strcspn(text, " ");
        if (col > 35 && col + 1 + word > 100) {
            fprintf(out, "\n%35s", "");
            col = 35;
        } else if (col > 35) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, text);
        col += word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

void kw_proxy_usage(FILE *out)
{
    fprintf(out, "usage: keyward-proxy --cert CERT[,KEY] --backend HOST:PORT "
                 "[--keyserver HOST:PORT ...] [options]\n"
                 "       keyward-proxy --version\n"
                 "TLS-terminating reverse proxy whose private keys stay on keyward key "
                 "servers.\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg != NULL ? " " : "",
                 opts[i].arg != NULL ? opts[i].arg : "");
        fprintf(out, "  %-32s ", left);
        print_wrapped(out, opts[i].help);
    }
    fprintf(out, "\nThe same options go in a YAML file (--config) with '_' or '-' in the names.\n"
                 "SIGHUP reloads the configuration and certificates; SIGQUIT drains; "
                 "SIGINT/SIGTERM stop.\nSee docs/proxy.md.\n");
}
