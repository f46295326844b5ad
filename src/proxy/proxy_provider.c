/*
 * The proxy's private OpenSSL library context: writes an openssl.cnf that loads the default
 * provider and keyward.so with this proxy's key servers, mTLS identity and timeout, loads it
 * into a fresh OSSL_LIB_CTX and deletes the file. The user's OPENSSL_CONF is never involved.
 * Unless --no-master-secret, the provider runs in master-secret mode and the context prefers its
 * TLS1-PRF (docs/master-secret.md), so a TLS 1.2 pre-master secret never leaves the key server.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/provider.h>

#include "keyward/error.h"
#include "kw_tls.h"
#include "proxy_tls.h"

/* keyward.so: --provider, else ../lib/keyward.so next to this binary, else OpenSSL's module
 * directory (the name "keyward"). */
static void provider_path(const kw_proxy_config_t *cfg, char *out, size_t outlen)
{
    if (cfg->provider != NULL) {
        snprintf(out, outlen, "%s", cfg->provider);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            int n2 = snprintf(out, outlen, "%s/../lib/keyward.so", exe);
            if (n2 > 0 && (size_t)n2 < outlen && access(out, R_OK) == 0) {
                return;
            }
        }
    }
    snprintf(out, outlen, "keyward");
}

/* Values are written double-quoted; refuse what quoting cannot carry. */
static int quotable(const char *v)
{
    return v != NULL && strpbrk(v, "\"\\\n\r$") == NULL;
}

static int write_conf(FILE *f, const kw_proxy_config_t *cfg, const char *module)
{
    int ms = !cfg->no_master_secret;
    fprintf(f, "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n");
    if (ms) {
        fprintf(f, "alg_section = algorithm_sect\n");
    }
    fprintf(f, "[provider_sect]\ndefault = default_sect\nkeyward = keyward_sect\n"
               "[default_sect]\nactivate = 1\n[keyward_sect]\n");
    /* No path: no module line, so OpenSSL turns the name into keyward.so in its module directory
     * (OPENSSL_MODULES or `openssl version -m`); a module line without a path would be taken as
     * the file name itself ("keyward", no ".so") and fail. */
    if (strcmp(module, "keyward") != 0) {
        fprintf(f, "module = \"%s\"\n", module);
    }
    fprintf(f, "activate = 1\nservers = \"");
    for (size_t i = 0; i < cfg->keyservers.n; i++) {
        fprintf(f, "%s%s", i > 0 ? "," : "", cfg->keyservers.v[i]);
    }
    fprintf(f, "\"\nclient_cert = \"%s\"\nclient_key = \"%s\"\nca = \"%s\"\ntimeout_ms = %u\n",
            cfg->client_cert, cfg->client_key, cfg->ca, cfg->keyserver_timeout_ms);
    if (ms) {
        /* '?': a preference; every other algorithm still comes from the default provider. */
        fprintf(f, "master_secret_mode = yes\n[algorithm_sect]\n"
                   "default_properties = ?keyward.prf=yes\n");
    }
    return ferror(f) ? KW_EIO : 0;
}

static int check_values(const kw_proxy_config_t *cfg, const char *module, char *err, size_t errlen)
{
    int ok = quotable(module) && quotable(cfg->client_cert) && quotable(cfg->client_key) &&
             quotable(cfg->ca);
    for (size_t i = 0; i < cfg->keyservers.n; i++) {
        ok = ok && quotable(cfg->keyservers.v[i]);
    }
    if (!ok) {
        snprintf(err, errlen,
                 "paths and key server names must not contain quotes, "
                 "backslashes, '$' or line breaks");
        return KW_ECONFIG;
    }
    return 0;
}

/* The generated configuration lives in an anonymous memory file (memfd), loaded through its
 * /proc/self/fd path: nothing is written to disk and no temporary name can be raced. */
static int load_conf(OSSL_LIB_CTX *libctx, const kw_proxy_config_t *cfg, const char *module,
                     char *err, size_t errlen)
{
    int fd = memfd_create("keyward-proxy.cnf", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create the provider configuration in memory: %m");
        return KW_EIO;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    FILE *f = fdopen(dup(fd), "w");
    int rc = f != NULL ? write_conf(f, cfg, module) : KW_EIO;
    if (f != NULL && fclose(f) != 0) {
        rc = KW_EIO;
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot write the provider configuration");
    } else if (!OSSL_LIB_CTX_load_config(libctx, path)) {
        char ossl[512];
        kw_tls_error("", ossl, sizeof(ossl));
        snprintf(err, errlen, "cannot load the keyward provider %s (use --provider PATH)%s", module,
                 ossl);
        rc = KW_ECONFIG;
    }
    close(fd);
    return rc;
}

/* The edge identity is checked here, before the provider gets it: a bad file is then named by the
 * proxy's own flags, not by the provider's openssl.cnf settings and variables (issue 17). */
static int check_identity(const kw_proxy_config_t *cfg, char *err, size_t errlen)
{
    char why[512];
    SSL_CTX *ctx =
        kw_tls_client_ctx(NULL, cfg->client_cert, cfg->client_key, cfg->ca, why, sizeof(why));
    if (ctx == NULL) {
        snprintf(err, errlen,
                 "the identity towards the key servers (--client-cert %s, --client-key %s, --ca "
                 "%s; YAML client_cert, client_key, ca) is unusable: %s",
                 cfg->client_cert, cfg->client_key, cfg->ca, why);
        return KW_ECONFIG;
    }
    SSL_CTX_free(ctx);
    return 0;
}

int kw_proxy_libctx_new(const kw_proxy_config_t *cfg, OSSL_LIB_CTX **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->keyservers.n == 0) {
        return 0;
    }
    char module[PATH_MAX];
    provider_path(cfg, module, sizeof(module));
    int rc = check_values(cfg, module, err, errlen);
    if (rc == 0) {
        rc = check_identity(cfg, err, errlen);
    }
    if (rc != 0) {
        return rc;
    }
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    rc = load_conf(libctx, cfg, module, err, errlen);
    if (rc == 0 && !OSSL_PROVIDER_available(libctx, "keyward")) {
        snprintf(err, errlen,
                 "the keyward provider %s did not load (give its path with --provider)", module);
        rc = KW_ECONFIG;
    }
    if (rc != 0) {
        OSSL_LIB_CTX_free(libctx);
        return rc;
    }
    *out = libctx;
    return 0;
}
