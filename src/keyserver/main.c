/*
 * keyward-keyserver: parses the configuration, loads the key store, runs the server loop until
 * SIGTERM/SIGINT, then releases everything.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "config.h"
#include "keystore.h"
#include "keyward/error.h"
#include "keyward/log.h"
#include "server.h"

static int run(const kw_ks_config_t *cfg)
{
    char err[1024] = "";
    kw_keystore_t *store = NULL;
    size_t skipped = 0;
    if (kw_keystore_load(cfg->keys_dir, &store, &skipped, err, sizeof(err)) != 0) {
        kw_error("%s", err);
        return 1;
    }
    if (skipped > 0)
        kw_warn("%zu key file(s) refused (see above)", skipped);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        kw_keystore_unref(store);
        return 1;
    }
    static kw_ks_server_t server; /* large (read buffer): not on the stack */
    int rc = kw_ks_server_init(&server, &loop, cfg, store, err, sizeof(err));
    kw_keystore_unref(store); /* the server holds its own reference */
    if (rc == 0)
        rc = kw_ks_server_listen(&server, err, sizeof(err));
    if (rc != 0) {
        kw_error("%s", err);
        kw_ks_server_stop(&server);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    kw_ks_server_destroy(&server);
    if (uv_loop_close(&loop) != 0)
        kw_warn("event loop closed with handles still open");
    kw_info("stopped");
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    kw_ks_config_t cfg;
    char err[512] = "";
    signal(SIGPIPE, SIG_IGN);
    kw_ks_config_defaults(&cfg);
    int rc = kw_ks_config_parse_args(&cfg, argc, argv, err, sizeof(err));
    if (rc == 0)
        rc = kw_ks_config_validate(&cfg, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "keyward-keyserver: %s\n", err);
        kw_ks_config_free(&cfg);
        return rc == 1 ? 0 : 2;
    }
    kw_log_init("keyward-keyserver", cfg.log_level);
    rc = run(&cfg);
    kw_ks_config_free(&cfg);
    return rc;
}
