/*
 * keyward-keyserver: reads the configuration (--config file, then flags), loads the key store
 * (PEM directories and PKCS#11 tokens), starts the metrics endpoint, runs the server loop until
 * SIGTERM/SIGINT (SIGHUP reloads), then releases everything. --pid-file and --version are its own.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "check_config.h"
#include "config/config.h"
#include "config/config_load.h"
#include "fleet/authz.h"
#include "keystore/hygiene.h"
#include "keystore/keystore.h"
#include "keyward/error.h"
#include "kw_heartbeat.h"
#include "kw_log.h"
#include "keyward/version.h"
#include "obs/metrics.h"
#include "obs/ready.h"
#include "config/pidfile.h"
#include "keystore/pkcs11/pkcs11_store.h"
#include "net/reload.h"
#include "net/server.h"

/* Everything main owns besides the config, released in reverse order by cleanup(). */
typedef struct app_s {
    uv_loop_t loop;
    int loop_ok;
    kw_ks_p11_ctx_t *p11;
    kw_ks_metrics_t *metrics;
    kw_ks_metrics_http_t *http;
    kw_ks_ready_t *ready;
    kw_keystore_t *store;
    kw_heartbeat_t heartbeat; /* the loop thread's, for /health (kw_heartbeat.h) */
} app_t;

static void cleanup(app_t *a)
{
    kw_keystore_unref(a->store);
    kw_ks_metrics_http_stop(a->http);
    kw_ks_ready_free(a->ready); /* after the endpoint that uses it */
    kw_ks_metrics_free(a->metrics);
    kw_ks_p11_ctx_free(a->p11);  /* after every store: tokens hold module references */
    kw_ks_hygiene_rsa_cleanup(); /* after every store too: RSA keys use its method */
    if (a->loop_ok && uv_loop_close(&a->loop) != 0)
        kw_warn("event loop closed with handles still open");
}

/* Key store, metrics and loop. Returns 0 or logs why not. */
static int prepare(const kw_ks_config_t *cfg, app_t *a)
{
    char err[1024] = "";
    size_t skipped = 0;
    size_t nkeys = 0, key_bytes = 0;
    /* Before anything secret enters memory: no core dump nor ptrace of a process of this uid
     * while keys (and PINs) are decoded. Again after --user, whose uid change resets the flag. */
    (void)kw_ks_hygiene_no_dumps();                          /* warns on failure */
    kw_ks_hygiene_rsa_cache_factors(cfg->rsa_cache_factors); /* before keys are decoded */
    kw_ks_hygiene_warn_root(cfg->user);
    for (size_t i = 0; i < cfg->n_keys_dirs; i++) {
        nkeys += kw_ks_hygiene_count_keys(cfg->keys_dirs[i]);
        key_bytes += kw_ks_hygiene_key_bytes(cfg->keys_dirs[i]);
    }
    /* before any key is decoded; warns on failure */
    (void)kw_ks_hygiene_secure_heap(nkeys, key_bytes);
    if (kw_ks_p11_ctx_new(&a->p11) != 0)
        return KW_ENOMEM;
    int rc = kw_ks_store_from_config(cfg, a->p11, &a->store, &skipped, err, sizeof(err));
    (void)kw_ks_hygiene_secure_report(a->store != NULL ? kw_keystore_count(a->store) : 0);
    if (rc != 0) {
        kw_error("%s", err);
        return rc;
    }
    if (skipped > 0)
        kw_warn("%zu key file(s) refused (see above)", skipped);
    if (cfg->metrics != NULL) {
        a->metrics = kw_ks_metrics_new(cfg->workers);
        rc = a->metrics == NULL
                 ? KW_ENOMEM
                 : kw_ks_metrics_http_start(a->metrics, cfg->metrics, cfg->metrics_token_file,
                                            &a->http, err, sizeof(err));
        if (rc != 0) {
            kw_error("%s", rc == KW_ENOMEM ? "out of memory" : err);
            return rc;
        }
        kw_ks_store_metrics(a->metrics, a->store);
        rc = kw_ks_ready_new(cfg, a->metrics, &a->ready, err, sizeof(err));
        if (rc != 0) {
            kw_error("/ready: %s", err);
            return rc;
        }
    }
    if (uv_loop_init(&a->loop) != 0)
        return KW_ENOMEM;
    a->loop_ok = 1;
    return 0;
}

static int run(const kw_ks_config_t *cfg, int argc, char **argv, const char *pid_file)
{
    char err[1024] = "";
    static app_t app;             /* zeroed */
    static kw_ks_server_t server; /* large (read buffer): not on the stack */
    int rc = prepare(cfg, &app);
    if (rc != 0) {
        cleanup(&app);
        return 1;
    }
    server.eng.metrics = app.metrics;
    server.p11 = app.p11;
    server.on_hup = kw_ks_reload_start; /* SIGHUP: reload (reload.c) */
    server.heartbeat = &app.heartbeat;
    kw_ks_metrics_http_set_heartbeat(app.http, &app.heartbeat);
    server.argc = argc; /* SIGHUP reads the same flags and --config file again */
    server.argv = argv;
    rc = kw_ks_server_init(&server, &app.loop, cfg, app.store, err, sizeof(err));
    kw_keystore_unref(app.store); /* the server holds its own reference */
    app.store = NULL;
    if (rc == 0)
        rc = kw_ks_server_listen(&server, err, sizeof(err));
    if (rc == 0 && cfg->user != NULL)
        rc = kw_ks_hygiene_drop_privileges(cfg->user, err, sizeof(err));
    if (rc == 0)
        (void)kw_ks_hygiene_no_dumps(); /* after the uid change, which resets the flag */
    int pid_written = 0; /* once listening, as --user: that user removes it at exit */
    if (rc == 0 && pid_file != NULL) {
        rc = kw_ks_pidfile_write(pid_file, err, sizeof(err)) == 0 ? 0 : KW_EIO;
        pid_written = rc == 0;
    }
    if (rc != 0) {
        kw_error("%s", err);
        kw_ks_server_stop(&server);
    } else {
        kw_ks_metrics_http_set_ready(app.http, app.ready); /* /ready: "starting" until now */
    }
    uv_run(&app.loop, UV_RUN_DEFAULT);
    if (pid_written)
        kw_ks_pidfile_remove(pid_file);
    kw_ks_server_destroy(&server);
    cleanup(&app);
    kw_info("stopped");
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    kw_ks_config_t cfg;
    char err[1024] = "";
    const char *pid_file = NULL;
    if (kw_version_wanted(argc, argv)) {
        kw_version_print(stdout, "keyward-keyserver");
        return 0;
    }
    if (kw_ks_pidfile_take(&argc, argv, &pid_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "keyward-keyserver: %s\n", err);
        return 2;
    }
    int check = kw_ks_check_take(&argc, argv);
    signal(SIGPIPE, SIG_IGN);
    kw_ks_config_defaults(&cfg);
    int rc = kw_ks_config_load(&cfg, argc, argv, err, sizeof(err));
    if (rc == 0)
        rc = kw_ks_config_validate(&cfg, err, sizeof(err));
    if (rc == 0)
        rc = kw_ks_authz_validate(&cfg, err, sizeof(err));
    if (rc == 1) /* --help printed config.c's options; these are main's own */
        printf("  --check-config              check the configuration like nginx -t: load the\n"
               "                              identity and every key, check file permissions,\n"
               "                              print what would run, exit 0 (ok) or 1\n"
               "  --pid-file FILE             write the pid to FILE once listening (removed at\n"
               "                              exit); a command-line flag only\n"
               "  --version                   print the version and exit\n");
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "keyward-keyserver: %s\n", err);
        if (rc < 0 && check)
            fprintf(stderr, "keyward-keyserver: the configuration test failed\n");
        kw_ks_config_free(&cfg);
        return rc == 1 ? 0 : check ? 1 : 2;
    }
    kw_log_init("keyward-keyserver", cfg.log_level);
    if (check) {
        rc = kw_ks_check_config(&cfg, stderr);
        kw_ks_config_free(&cfg);
        return rc;
    }
    rc = run(&cfg, argc, argv, pid_file);
    kw_ks_config_free(&cfg);
    return rc;
}
