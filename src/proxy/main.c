/*
 * keyward-proxy: a TLS-terminating reverse proxy that holds certificates but no private keys.
 * Parses the options, raises the open-file limit (every connection needs a few descriptors),
 * and runs the proxy until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

#include "keyward/log.h"
#include "keyward/version.h"
#include "proxy.h"

static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            kw_warn("cannot raise the open-file limit; many connections may fail");
        }
    }
}

int main(int argc, char **argv)
{
    kw_proxy_config_t cfg;
    char err[1024];
    int help = 0;
    if (kw_version_wanted(argc, argv)) {
        kw_version_print(stdout, "keyward-proxy");
        return 0;
    }
    kw_proxy_config_init(&cfg);
    int rc = kw_proxy_config_from_args(&cfg, argc, argv, &help, err, sizeof(err));
    if (rc == 0 && help) {
        kw_proxy_usage(stdout);
        kw_proxy_config_free(&cfg);
        return 0;
    }
    if (rc == 0) {
        rc = kw_proxy_config_check(&cfg, err, sizeof(err));
    }
    if (rc != 0) {
        fprintf(stderr, "keyward-proxy: %s\n(keyward-proxy --help lists the options)\n", err);
        kw_proxy_config_free(&cfg);
        return 2;
    }
    kw_log_init("keyward-proxy", cfg.log_level);
    raise_nofile_limit();
    signal(SIGPIPE, SIG_IGN);
    kw_proxy_t *proxy = NULL;
    rc = kw_proxy_new(&cfg, &proxy, err, sizeof(err));
    if (rc != 0) {
        kw_error("%s", err);
        kw_proxy_config_free(&cfg);
        return 1;
    }
    rc = kw_proxy_run(proxy);
    kw_proxy_free(proxy);
    kw_proxy_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
