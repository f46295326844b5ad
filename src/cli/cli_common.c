/*
 * Shared parts of the keyward CLI (cli_common.h): common options, the client, the key to use,
 * files, finding shipped scripts, and error messages that say what to do next. The signature
 * algorithms and running a command on a key are above this file, in cli_alg.c.
 */
#include "cli_common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyward/error.h"
#include "kw_num.h"

void kw_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("keyward: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void add_servers(kw_cli_opts_t *o, const char *list)
{
    size_t used = strlen(o->servers);
    snprintf(o->servers + used, sizeof(o->servers) - used, "%s%s", used > 0 ? "," : "", list);
}

/* The environment variable name (the provider's), else its old CLI spelling alias (may be NULL);
 * unset and empty are the same. */
static const char *env_setting(const char *name, const char *alias)
{
    const char *v = getenv(name);
    if ((v == NULL || *v == '\0') && alias != NULL)
        v = getenv(alias);
    return v != NULL && *v != '\0' ? v : NULL;
}

#define KW_CLI_TIMEOUT_MAX 3600000u

void kw_cli_opts_init(kw_cli_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 5000;
    o->env_servers = env_setting("KEYWARD_SERVERS", "KEYWARD_SERVER");
    o->cert = env_setting("KEYWARD_CLIENT_CERT", "KEYWARD_CERT");
    o->key = env_setting("KEYWARD_CLIENT_KEY", "KEYWARD_KEY");
    o->ca = env_setting("KEYWARD_CA", NULL);
    const char *t = env_setting("KEYWARD_TIMEOUT_MS", NULL);
    if (t != NULL && kw_parse_uint(t, 1, KW_CLI_TIMEOUT_MAX, &o->timeout_ms) != 0)
        o->bad_env = "KEYWARD_TIMEOUT_MS";
}

const char *kw_cli_servers(const kw_cli_opts_t *o)
{
    return o->servers[0] != '\0' ? o->servers : o->env_servers;
}

static int parse_uint(const char *arg, const char *opt, unsigned lo, unsigned hi, unsigned *out)
{
    if (kw_parse_uint(arg, lo, hi, out) != 0) {
        kw_cli_error("%s needs a number from %u to %u, not '%s'", opt, lo, hi, arg);
        return -1;
    }
    return 0;
}

int kw_cli_opt(kw_cli_opts_t *o, int c, const char *arg)
{
    switch (c) {
    case KW_OPT_SERVER:
        add_servers(o, arg);
        return 1;
    case KW_OPT_CERT:
        o->cert = arg;
        return 1;
    case KW_OPT_KEY:
        o->key = arg;
        return 1;
    case KW_OPT_CA:
        o->ca = arg;
        return 1;
    case KW_OPT_KEY_CERT:
        o->key_cert = arg;
        return 1;
    case KW_OPT_KEY_ID:
        o->key_id = arg;
        return 1;
    case KW_OPT_TIMEOUT:
        o->bad_env = NULL; /* the flag replaces KEYWARD_TIMEOUT_MS */
        return parse_uint(arg, "--timeout", 1, KW_CLI_TIMEOUT_MAX, &o->timeout_ms) == 0 ? 1 : -1;
    case KW_OPT_PAD:
        return parse_uint(arg, "--pad", 0, 65535, &o->pad_to) == 0 ? 1 : -1;
    default:
        return 0;
    }
}

int kw_cli_getopt(kw_cli_opts_t *o, int argc, char **argv, const char *shortopts,
                  const struct option *longopts, const char *help, int *status)
{
    for (;;) {
        int ch = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (ch == -1)
            return KW_CLI_OPT_END;
        int h = o != NULL ? kw_cli_opt(o, ch, optarg) : 0;
        if (h > 0)
            continue;
        *status = h == 0 && ch == 'h' ? KW_EXIT_OK : KW_EXIT_USAGE;
        if (h < 0)
            return KW_CLI_OPT_EXIT;
        if (ch == 'h' || ch == '?') {
            fputs(help, ch == 'h' ? stdout : stderr);
            return KW_CLI_OPT_EXIT;
        }
        return ch;
    }
}

static int readable(const char *path, const char *opt)
{
    if (access(path, R_OK) == 0)
        return 0;
    kw_cli_error("cannot read %s %s: %s", opt, path, strerror(errno));
    return -1;
}

int kw_cli_client(const kw_cli_opts_t *o, kw_client_t **out)
{
    char err[512];
    kw_client_config_t cfg;
    const char *servers = kw_cli_servers(o);
    if (o->bad_env != NULL) {
        kw_cli_error("%s='%s' is not a number of milliseconds from 1 to %u: fix or unset it, or "
                     "pass --timeout MS",
                     o->bad_env, getenv(o->bad_env), KW_CLI_TIMEOUT_MAX);
        return -1;
    }
    if (servers == NULL || servers[strspn(servers, ", \t")] == '\0') {
        kw_cli_error("no key server: pass --server HOST:PORT (or set KEYWARD_SERVERS)");
        return -1;
    }
    if (o->cert == NULL || o->key == NULL || o->ca == NULL) {
        kw_cli_error("mutual TLS needs --cert, --key and --ca (this edge's certificate, its key, "
                     "and the CA of the key server's certificate), or KEYWARD_CLIENT_CERT, "
                     "KEYWARD_CLIENT_KEY and KEYWARD_CA");
        return -1;
    }
    if (readable(o->cert, "--cert") != 0 || readable(o->key, "--key") != 0 ||
        readable(o->ca, "--ca") != 0)
        return -1;
    memset(&cfg, 0, sizeof(cfg));
    cfg.servers = servers;
    cfg.cert_file = o->cert;
    cfg.key_file = o->key;
    cfg.ca_file = o->ca;
    cfg.timeout_ms = o->timeout_ms;
    cfg.connect_timeout_ms = o->timeout_ms < 2000 ? o->timeout_ms : 2000;
    cfg.pad_to = o->pad_to;
    int rc = kw_client_new(&cfg, out, err, sizeof(err));
    if (rc != 0) {
        kw_cli_error("%s", err[0] != '\0' ? err : kw_strerror(rc));
        return -1;
    }
    return 0;
}

static EVP_PKEY *cert_pubkey(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        kw_cli_error("cannot open --key-cert %s: %s", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        kw_cli_error("--key-cert %s is not a PEM certificate: give the site's certificate "
                     "(-----BEGIN CERTIFICATE-----)",
                     path);
        return NULL;
    }
    EVP_PKEY *pk = X509_get_pubkey(x);
    X509_free(x);
    if (pk == NULL)
        kw_cli_error("cannot read the public key of %s", path);
    return pk;
}

int kw_cli_key_load(const kw_cli_opts_t *o, kw_cli_key_t *k)
{
    memset(k, 0, sizeof(*k));
    if ((o->key_cert == NULL) == (o->key_id == NULL)) {
        kw_cli_error("name the key with exactly one of --key-cert SITE.crt or --key-id "
                     "sha256:HEX");
        return -1;
    }
    if (o->key_id != NULL) {
        if (kw_keyid_parse(o->key_id, &k->kind, k->id) != 0) {
            kw_cli_error("bad --key-id '%s': write sha256:HEX (64 hex digits) or ski:HEX (40)",
                         o->key_id);
            return -1;
        }
        snprintf(k->label, sizeof(k->label), "%s", o->key_id);
        return 0;
    }
    k->pub = cert_pubkey(o->key_cert);
    if (k->pub == NULL)
        return -1;
    if (kw_keyid_from_pkey(k->pub, k->id, NULL) != 0) {
        kw_cli_error("cannot compute the key id of %s", o->key_cert);
        kw_cli_key_free(k);
        return -1;
    }
    k->kind = KW_KEYID_SHA256;
    snprintf(k->label, sizeof(k->label), "the key of %s", o->key_cert);
    return 0;
}

void kw_cli_key_free(kw_cli_key_t *k)
{
    EVP_PKEY_free(k->pub);
    k->pub = NULL;
}

void kw_cli_key_set(const kw_cli_key_t *k, kw_msg_t *msg)
{
    if (k->kind == KW_KEYID_SKI)
        msg->ski = kw_bytes(k->id, KW_SKI_LEN);
    else
        msg->digest = kw_bytes(k->id, KW_DIGEST_LEN);
}

/* Advice for `decrypt`, which has no --alg: its input is a ciphertext, and only RSA fits. */
static const char *decrypt_advice(uint8_t remote)
{
    switch (remote) {
    case KW_ERR_CRYPTO:
        return "the key server could not decrypt --in with this key: check that it is an RSA "
               "PKCS#1 v1.5 ciphertext made with the public key of this site certificate "
               "(e.g. openssl pkeyutl -encrypt -pubin -inkey PUB.pem)";
    case KW_ERR_UNEXPECTED_OPCODE:
        return "decrypt needs an RSA key and this key is not RSA: name an RSA key with "
               "--key-cert or --key-id";
    default:
        return NULL;
    }
}

static const char *remote_advice(uint8_t remote, const char *what)
{
    const char *advice = strcmp(what, "decrypt") == 0 ? decrypt_advice(remote) : NULL;
    if (advice != NULL)
        return advice;
    switch (remote) {
    case KW_ERR_KEY_NOT_FOUND:
        return "the key server does not hold this key: check --key-cert/--key-id, and that the "
               "key is in the key server's --keys directory";
    case KW_ERR_CRYPTO:
        return "the key server could not use the key for this: check that --alg fits the key "
               "type (RSA, ECDSA or Ed25519) and that the input is valid for it";
    case KW_ERR_BAD_OPCODE:
        return "the key server does not support this operation: upgrade it";
    case KW_ERR_UNEXPECTED_OPCODE:
        return "the operation does not fit the key's type: use an --alg made for this key "
               "(rsa-* for RSA, ecdsa-* for EC, ed25519 for Ed25519; decrypt needs RSA)";
    case KW_ERR_FORMAT:
        return "the key server could not parse the request (is the input too large?)";
    case KW_ERR_NOT_AUTHORISED:
        return "this edge's certificate may not use this key for this operation: check the "
               "key server's allow rules (decrypt, 0x01, is off unless the key server runs with "
               "--enable-op rsa-decrypt)";
    case KW_ERR_RATE_LIMITED:
        return "the key server is rate limiting this edge: retry later";
    case KW_ERR_UPSTREAM_UNAVAILABLE:
        return "the key server forwards this key to an upstream that did not answer (down, "
               "or refusing the forwarding key server's certificate): its log says which";
    default:
        return "see the key server's log";
    }
}

void kw_cli_report(kw_client_t *client, const kw_cli_opts_t *o, int rc, uint8_t remote,
                   const char *what)
{
    char detail[300];
    kw_client_last_error(client, detail, sizeof(detail));
    const char *sep = detail[0] != '\0' ? " (" : "";
    const char *end = detail[0] != '\0' ? ")" : "";
    switch (rc) {
    case KW_EREMOTE:
        kw_cli_error("%s failed: the key server answered '%s': %s", what,
                     kw_remote_error_name(remote), remote_advice(remote, what));
        return;
    case KW_ECONN:
        kw_cli_error("%s failed: cannot reach the key server%s%s%s. Check that "
                     "keyward-keyserver is running and that --server is right.",
                     what, sep, detail, end);
        return;
    case KW_ETLS:
        kw_cli_error("%s failed: TLS with the key server failed%s%s%s. Check --cert/--key/--ca: "
                     "--ca must have signed the key server's certificate, and the key server's "
                     "--ca must have signed ours.",
                     what, sep, detail, end);
        return;
    case KW_ETIMEDOUT:
        kw_cli_error("%s failed: no answer within %u ms%s%s%s. Check that the key server is "
                     "running and reachable, or raise --timeout.",
                     what, o->timeout_ms, sep, detail, end);
        return;
    default:
        kw_cli_error("%s failed: %s", what, kw_strerror(rc));
    }
}

int kw_cli_read_file(const char *path, uint8_t **buf, size_t *len, size_t max)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    *buf = NULL;
    *len = 0;
    if (f == NULL) {
        kw_cli_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096;
    uint8_t *b = malloc(cap);
    size_t n = 0;
    while (b != NULL) {
        if (n == cap) {
            uint8_t *nb = cap >= max + 1 ? NULL : realloc(b, cap * 2);
            if (nb == NULL)
                break;
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n > max)
            break;
    }
    int bad = ferror(f) || b == NULL || n > max;
    if (f != stdin)
        fclose(f);
    if (bad) {
        kw_cli_error("cannot read %s: %s", path,
                     n > max ? "the file is too large for this operation" : strerror(errno));
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

int kw_cli_write_file(const char *path, const uint8_t *buf, size_t len)
{
    if (strcmp(path, "-") == 0)
        return fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        kw_cli_error("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            kw_cli_error("cannot write %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        kw_cli_error("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void kw_cli_exe_dir(char *buf, size_t len)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0) {
        snprintf(buf, len, ".");
        return;
    }
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(buf, len, "%s", path);
}

int kw_cli_find_script(const char *name, char *buf, size_t len)
{
    char dir[PATH_MAX];
    const char *share = getenv("KEYWARD_SHARE_DIR");
    kw_cli_exe_dir(dir, sizeof(dir));
    char cand[4][PATH_MAX + 64];
    int n = 0;
    if (share != NULL)
        snprintf(cand[n++], sizeof(cand[0]), "%s/%s", share, name);
    snprintf(cand[n++], sizeof(cand[0]), "%s/../share/keyward/%s", dir, name);
    snprintf(cand[n++], sizeof(cand[0]), "%s/../../scripts/%s", dir, name);
#ifdef KW_SOURCE_DIR
    snprintf(cand[n++], sizeof(cand[0]), "%s/scripts/%s", KW_SOURCE_DIR, name);
#endif
    for (int i = 0; i < n; i++) {
        if (access(cand[i], R_OK) == 0) {
            snprintf(buf, len, "%s", cand[i]);
            return 0;
        }
    }
    return -1;
}
