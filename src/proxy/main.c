/*
 * keyward-proxy: a TLS-terminating reverse proxy that holds certificates but no private keys.
 * Parses the options, raises the open-file limit (every connection needs a few descriptors) and
 * caps --max-connections to it, and runs the proxy until SIGINT/SIGTERM or, drained, SIGQUIT.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

#include "kw_log.h"
#include "keyward/version.h"
#include "proxy.h"

/* Descriptors a connection may hold at once: client and backend sockets (the backend is
 * connected beside the handshake) and the provider's eventfd while a key operation is pending. */
#define KW_PROXY_FDS_PER_CONN 3
/* Descriptors the process needs besides connections: stdio, logs, key-server connections, and
 * per thread its epoll, listener, wake-up and ready eventfds. */
#define KW_PROXY_FDS_BASE       64
#define KW_PROXY_FDS_PER_THREAD 16

/* Raises the open-file limit to its hard maximum, then caps max_connections to what that limit
 * carries: a proxy that ran out of descriptors would fail clients after their handshake (a key
 * operation spent), where a capped one refuses them at accept. */
static void fit_nofile_limit(kw_proxy_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            kw_warn("cannot raise the open-file limit; many connections may fail");
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    unsigned threads = cfg->threads != 0 ? cfg->threads : uv_available_parallelism();
    unsigned long long reserve =
        KW_PROXY_FDS_BASE + (unsigned long long)KW_PROXY_FDS_PER_THREAD * threads;
    unsigned long long need =
        reserve + (unsigned long long)KW_PROXY_FDS_PER_CONN * cfg->max_connections;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        return;
    }
    unsigned long long fit = rl.rlim_cur > reserve + KW_PROXY_FDS_PER_CONN
                                 ? (rl.rlim_cur - reserve) / KW_PROXY_FDS_PER_CONN
                                 : 1;
    kw_warn("--max-connections %u needs about %llu open files, the limit is %llu: serving at most "
            "%llu connections at once (raise the limit: ulimit -n, LimitNOFILE=)",
            cfg->max_connections, need, (unsigned long long)rl.rlim_cur, fit);
    cfg->max_connections = (unsigned)fit;
}

/* --check-config anywhere on the command line (also when parsing it failed). */
static int check_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-config") == 0) {
            return 1;
        }
    }
    return 0;
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
    if (check_wanted(argc, argv)) { /* --check-config: 0 or 1, whatever failed */
        if (rc != 0) {
            fprintf(stderr, "keyward-proxy: %s\nkeyward-proxy: the configuration test failed\n",
                    err);
        } else {
            kw_log_init("keyward-proxy", cfg.log_level);
            rc = kw_proxy_check_config(&cfg, stderr);
        }
        kw_proxy_config_free(&cfg);
        return rc == 0 ? 0 : 1;
    }
    if (rc != 0) {
        fprintf(stderr, "keyward-proxy: %s\n(keyward-proxy --help lists the options)\n", err);
        kw_proxy_config_free(&cfg);
        return 2;
    }
    kw_log_init("keyward-proxy", cfg.log_level);
    fit_nofile_limit(&cfg);
    signal(SIGPIPE, SIG_IGN);
    kw_proxy_t *proxy = NULL;
    rc = kw_proxy_new(&cfg, &proxy, err, sizeof(err));
    if (rc != 0) {
        kw_error("%s", err);
        kw_proxy_config_free(&cfg);
        return 1;
    }
    if (kw_px_reload_start(proxy, argc, argv) != 0) {
        kw_warn("cannot watch SIGHUP: reloading needs a restart");
    }
    rc = kw_proxy_run(proxy);
    kw_proxy_free(proxy);
    kw_proxy_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
