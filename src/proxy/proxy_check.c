/*
 * keyward-proxy --check-config, like `nginx -t`: with the configuration already parsed and
 * checked for completeness, resolves the listen and backend addresses, checks that every file is
 * readable and that no private key is readable by every user, builds the TLS contexts exactly as
 * a start would (so every key is loaded and, for remote keys, asked of the key server), prints
 * what would run, and says "ok" or why not. Nothing is listened on.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "keyward/error.h"
#include "proxy.h"
#include "kw_addr.h"
#include "proxy_fetch.h"

/* A file the proxy reads: readable by this user; secret (a private key): not by every user. */
static int check_file(FILE *out, const char *what, const char *path, int secret)
{
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        fprintf(out, "keyward-proxy: %s %s: %s (uid %u)\n", what, path, strerror(errno),
                (unsigned)getuid());
        return KW_EIO;
    }
    if (secret && (st.st_mode & S_IROTH)) {
        fprintf(out,
                "keyward-proxy: %s %s is readable by every user (mode %03o): chmod o-r it, "
                "e.g. root:keyward 0640\n",
                what, path, (unsigned)(st.st_mode & 0777));
        return KW_EIO;
    }
    return 0;
}

/* A --cert KEY that names a file holding a private key (not a stub, not a keyward: URI). */
static int is_local_key(const char *key)
{
    if (key == NULL || strncmp(key, "keyward:", 8) == 0) {
        return 0;
    }
    FILE *f = fopen(key, "r");
    if (f == NULL) {
        return 1; /* check_file says why */
    }
    char line[128];
    int secret = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "PRIVATE KEY-----") != NULL) {
            secret = 1;
            break;
        }
    }
    fclose(f);
    return secret;
}

static int check_files(FILE *out, const kw_proxy_config_t *cfg)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->ncerts; i++) {
        rc |= check_file(out, "certificate", cfg->certs[i].cert, 0);
        if (cfg->certs[i].key != NULL && strncmp(cfg->certs[i].key, "keyward:", 8) != 0) {
            rc |= check_file(out, "key", cfg->certs[i].key, is_local_key(cfg->certs[i].key));
        }
    }
    if (cfg->client_cert != NULL) {
        rc |= check_file(out, "client_cert", cfg->client_cert, 0);
    }
    if (cfg->client_key != NULL) {
        rc |= check_file(out, "client_key", cfg->client_key, 1);
    }
    if (cfg->ca != NULL) {
        rc |= check_file(out, "ca", cfg->ca, 0);
    }
    if (cfg->metrics_token_file != NULL) {
        rc |= check_file(out, "metrics_token_file", cfg->metrics_token_file, 1);
    }
    return rc != 0 ? KW_EIO : 0;
}

static void print_sites(FILE *out, const kw_proxy_tls_t *tls)
{
    for (size_t i = 0; i < tls->nsites; i++) {
        const kw_proxy_site_t *s = &tls->sites[i];
        char name[256] = "?";
        char until[32] = "?";
        struct tm tm;
        X509_NAME_oneline(X509_get_subject_name(s->leaf), name, sizeof(name));
        if (s->not_after != 0 && gmtime_r(&s->not_after, &tm) != NULL) {
            strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
        }
        fprintf(out, "  certificate %zu%s: %s, valid until %s, key %s%s%s\n", i + 1,
                i == 0 ? " (default)" : "", name, until, s->key_desc != NULL ? s->key_desc : "?",
                s->alt_desc != NULL ? "; also " : "", s->alt_desc != NULL ? s->alt_desc : "");
        if (s->not_after != 0 && s->not_after < time(NULL)) {
            fprintf(out, "  warning: certificate %zu has expired\n", i + 1);
        }
    }
}

int kw_proxy_check_config(const kw_proxy_config_t *cfg, FILE *out)
{
    char err[1024];
    struct sockaddr_storage listen_addr, backend_addr;
    socklen_t len;
    const char *listen = cfg->listen != NULL ? cfg->listen : KW_PROXY_DEFAULT_LISTEN;
    int rc = kw_addr_resolve(listen, 1, &listen_addr, &len, err, sizeof(err));
    if (rc == 0) {
        rc = kw_addr_resolve(cfg->backend, 0, &backend_addr, &len, err, sizeof(err));
    }
    if (rc != 0) {
        fprintf(out, "keyward-proxy: %s\n", err);
    }
    if (rc == 0) {
        rc = check_files(out, cfg);
    }
    kw_proxy_tls_t tls;
    memset(&tls, 0, sizeof(tls));
    if (rc == 0) {
        rc = kw_proxy_tls_init(&tls, cfg, NULL, err, sizeof(err));
        if (rc == 0) {
            rc = kw_proxy_fetch_sites(&tls, cfg, err, sizeof(err));
        }
        if (rc != 0) {
            fprintf(out, "keyward-proxy: %s\n", err);
        }
    }
    if (rc == 0) {
        char a[64], b[64];
        kw_addr_format((struct sockaddr *)&listen_addr, a, sizeof(a));
        kw_addr_format((struct sockaddr *)&backend_addr, b, sizeof(b));
        fprintf(out, "keyward-proxy would listen on %s and forward to %s%s\n", a, b,
                cfg->proxy_protocol ? " with a PROXY v2 header" : "");
        print_sites(out, &tls);
        for (size_t i = 0; i < cfg->keyservers.n; i++) {
            fprintf(out, "  key server %s\n", cfg->keyservers.v[i]);
        }
        if (cfg->keyservers.n > 0) {
            fprintf(out, "  edge identity %s (key %s), key servers' CA %s; TLS 1.2 RSA: %s\n",
                    cfg->client_cert, cfg->client_key, cfg->ca,
                    cfg->no_master_secret ? "pre-master secret (0xA0)" : "master secret (0xA1)");
        }
        fprintf(out, "  threads %u, max_connections %u, metrics %s\n", cfg->threads,
                cfg->max_connections, cfg->metrics != NULL ? cfg->metrics : "off");
        fprintf(out, "keyward-proxy: the configuration is ok\n");
    } else {
        fprintf(out, "keyward-proxy: the configuration test failed\n");
    }
    kw_proxy_tls_cleanup(&tls);
    return rc == 0 ? 0 : 1;
}
