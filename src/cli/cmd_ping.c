/*
 * keyward ping: sends KWP pings to the key server(s) and prints each round-trip time. The first
 * ping also sets up the connection (TCP, mutual TLS, health check); its time is printed apart.
 */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "kw_clock.h"
#include "kw_num.h"

static const char ping_help[] =
    "usage: keyward ping --server HOST:PORT --cert FILE --key FILE --ca FILE [--count N]\n"
    "Checks that the key server answers and prints round-trip times.\n" KW_CLI_SERVER_HELP
    "  --count N            pings to time after connecting (default 1)\n";

/* Milliseconds since t0_ns on the monotonic clock. */
static double ms_since(uint64_t t0_ns)
{
    return (double)(kw_clock_ns() - t0_ns) / 1e6;
}

static int run(kw_client_t *c, const kw_cli_opts_t *o, unsigned count)
{
    uint8_t remote = 0;
    uint64_t t0 = kw_clock_ns();
    int rc = kw_client_ping(c, &remote, NULL, 0);
    if (rc != 0) {
        kw_cli_report(c, o, rc, remote, "ping");
        return KW_EXIT_FAIL;
    }
    printf("connected to %s in %.3f ms\n", kw_cli_servers(o), ms_since(t0));
    double min = 0, max = 0, sum = 0;
    for (unsigned i = 1; i <= count; i++) {
        t0 = kw_clock_ns();
        rc = kw_client_ping(c, &remote, NULL, 0);
        double dt = ms_since(t0);
        if (rc != 0) {
            kw_cli_report(c, o, rc, remote, "ping");
            return KW_EXIT_FAIL;
        }
        printf("pong %u: time=%.3f ms\n", i, dt);
        min = i == 1 || dt < min ? dt : min;
        max = dt > max ? dt : max;
        sum += dt;
    }
    if (count > 1)
        printf("%u pings: min %.3f ms, avg %.3f ms, max %.3f ms\n", count, min, sum / count, max);
    return KW_EXIT_OK;
}

int kw_cmd_ping(int argc, char **argv)
{
    static const struct option opts[] = {
        KW_CLI_SERVER_OPTIONS, {"count", required_argument, NULL, 'n'}, {NULL, 0, NULL, 0}};
    kw_cli_opts_t o;
    kw_client_t *c = NULL;
    unsigned count = 1;
    int status = KW_EXIT_OK;
    kw_cli_opts_init(&o);
    for (;;) {
        int ch = kw_cli_getopt(&o, argc, argv, "hn:", opts, ping_help, &status);
        if (ch == KW_CLI_OPT_END)
            break;
        if (ch == KW_CLI_OPT_EXIT)
            return status;
        if (kw_parse_uint(optarg, 1, 1000000, &count) != 0) { /* ch is 'n' */
            kw_cli_error("--count needs a number from 1 to 1000000");
            fputs(ping_help, stderr);
            return KW_EXIT_USAGE;
        }
    }
    if (kw_cli_client(&o, &c) != 0)
        return KW_EXIT_USAGE;
    status = run(c, &o, count);
    kw_client_free(c);
    return status;
}
