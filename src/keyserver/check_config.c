/*
 * keyward-keyserver --check-config (check_config.h): files, TLS identity, key store, ticket
 * secret, user; a summary of what would run; exit 0 or 1.
 */
#include "check_config.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "keystore/keystore.h"
#include "keystore/ticket_keys.h"
#include "keystore/pkcs11/pkcs11_store.h"
#include "net/reload.h"
#include "net/server.h"

int kw_ks_check_take(int *argc, char **argv)
{
    int found = 0;
    int out = 1;
    int i = 1;
    for (; i < *argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--check-config") == 0) {
            found = 1;
        } else {
            argv[out++] = argv[i];
        }
    }
    for (; i < *argc; i++) {
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    return found;
}

/* A file the server reads: readable by this uid; a secret one not by every user. */
static int check_file(FILE *out, const char *what, const char *path, int secret)
{
    struct stat st;
    if (path == NULL) {
        return 0;
    }
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        fprintf(out, "keyward-keyserver: %s %s: %s (uid %u)\n", what, path, strerror(errno),
                (unsigned)getuid());
        return 1;
    }
    if (secret && (st.st_mode & S_IROTH)) {
        fprintf(out,
                "keyward-keyserver: %s %s is readable by every user (mode %03o): chmod o-r it "
                "(e.g. root:keyward 0640)\n",
                what, path, (unsigned)(st.st_mode & 0777));
        return 1;
    }
    return 0;
}

/* Every NAME.key in dir: not readable by every user (the loader checks the rest). */
static int check_keys_dir(FILE *out, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(out, "keyward-keyserver: keys directory %s: %s (uid %u)\n", dir, strerror(errno),
                (unsigned)getuid());
        return 1;
    }
    int rc = 0;
    struct dirent *e;
    for (;;) {
        e = readdir(d);
        if (e == NULL)
            break;
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".key") == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            rc |= check_file(out, "key", path, 1);
        }
    }
    closedir(d);
    return rc;
}

static int check_files(FILE *out, const kw_ks_config_t *cfg)
{
    int rc = check_file(out, "cert", cfg->cert, 0) | check_file(out, "key", cfg->key, 1) |
             check_file(out, "ca", cfg->ca, 0) |
             check_file(out, "upstream_cert", cfg->upstream_cert, 0) |
             check_file(out, "upstream_key", cfg->upstream_key, 1) |
             check_file(out, "upstream_ca", cfg->upstream_ca, 0) |
             check_file(out, "metrics_token_file", cfg->metrics_token_file, 1);
    for (size_t i = 0; i < cfg->n_keys_dirs; i++) {
        rc |= check_keys_dir(out, cfg->keys_dirs[i]);
    }
    for (size_t i = 0; i < cfg->n_pkcs11; i++) {
        rc |= check_file(out, "pkcs11 module", cfg->pkcs11[i].module, 0);
        rc |= check_file(out, "pkcs11 pin_file", cfg->pkcs11[i].pin_file, 1);
    }
    if (cfg->ticket_secret != NULL) { /* the checks of the start and of a SIGHUP */
        kw_ks_tickets_t *t = NULL;
        char err[1024] = "";
        if (kw_ks_tickets_load(cfg->ticket_secret, cfg->ticket_rotation_s, &t, err, sizeof(err)) !=
            0) {
            fprintf(out, "keyward-keyserver: %s\n", err);
            rc = 1;
        }
        kw_ks_tickets_free(t);
    }
    if (cfg->user != NULL && getpwnam(cfg->user) == NULL) {
        fprintf(out, "keyward-keyserver: user %s does not exist\n", cfg->user);
        rc = 1;
    }
    return rc;
}

static void print_summary(FILE *out, const kw_ks_config_t *cfg, const kw_keystore_t *store,
                          size_t skipped)
{
    fprintf(out, "keyward-keyserver would listen on %s with %u worker%s%s as %s\n",
            cfg->listen != NULL ? cfg->listen : "127.0.0.1:2407", cfg->workers,
            cfg->workers == 1 ? "" : "s", cfg->loop_signs ? " (the loop thread signs)" : "",
            cfg->user != NULL ? cfg->user : "this user");
    fprintf(out, "  identity %s (key %s), edges' CA %s\n", cfg->cert, cfg->key, cfg->ca);
    fprintf(out, "  %zu key%s loaded", kw_keystore_count(store),
            kw_keystore_count(store) == 1 ? "" : "s");
    for (size_t i = 0; i < cfg->n_keys_dirs; i++) {
        fprintf(out, "%s%s", i == 0 ? " from " : ", ", cfg->keys_dirs[i]);
    }
    for (size_t i = 0; i < cfg->n_pkcs11; i++) {
        fprintf(out, "%stoken %s", i == 0 && cfg->n_keys_dirs == 0 ? " from " : ", ",
                cfg->pkcs11[i].token != NULL ? cfg->pkcs11[i].token : cfg->pkcs11[i].uri);
    }
    fprintf(out, "\n");
    if (skipped > 0) {
        fprintf(out, "  warning: %zu key file%s refused (see above)\n", skipped,
                skipped == 1 ? "" : "s");
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        fprintf(out, "  upstream %s\n", cfg->upstreams[i]);
    }
    fprintf(out, "  authorisation: %s; operations beyond the TLS set: %zu; audit log %s\n",
            cfg->n_allow > 0 ? "rules" : "every edge may use every key", cfg->n_enable_ops,
            cfg->audit_log != NULL ? cfg->audit_log : "off");
    fprintf(out, "  metrics %s\n", cfg->metrics != NULL ? cfg->metrics : "off");
    if (cfg->ticket_secret != NULL)
        fprintf(out, "  session-ticket keys from %s, a new key every %u s\n", cfg->ticket_secret,
                cfg->ticket_rotation_s);
}

int kw_ks_check_config(const kw_ks_config_t *cfg, FILE *out)
{
    char err[1024] = "";
    int rc = check_files(out, cfg);
    SSL_CTX *ctx = NULL;
    if (rc == 0) {
        ctx = kw_ks_server_tls_ctx(cfg, err, sizeof(err));
        if (ctx == NULL) {
            fprintf(out, "keyward-keyserver: %s\n", err);
            rc = 1;
        }
    }
    kw_ks_p11_ctx_t *p11 = NULL;
    kw_keystore_t *store = NULL;
    size_t skipped = 0;
    if (rc == 0 && kw_ks_p11_ctx_new(&p11) != 0) {
        fprintf(out, "keyward-keyserver: out of memory\n");
        rc = 1;
    }
    if (rc == 0 && kw_ks_store_from_config(cfg, p11, &store, &skipped, err, sizeof(err)) != 0) {
        fprintf(out, "keyward-keyserver: %s\n", err);
        rc = 1;
    }
    if (rc == 0) {
        print_summary(out, cfg, store, skipped);
        fprintf(out, "keyward-keyserver: the configuration is ok\n");
    } else {
        fprintf(out, "keyward-keyserver: the configuration test failed\n");
    }
    kw_keystore_unref(store);
    kw_ks_p11_ctx_free(p11);
    SSL_CTX_free(ctx);
    return rc == 0 ? 0 : 1;
}
