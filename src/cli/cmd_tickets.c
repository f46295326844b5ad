/*
 * keyward tickets: fetches the fleet's session-ticket keys (0xA4) and writes them for servers we
 * do not control: nginx (--format nginx --out DIR: three 80-byte ssl_session_ticket_key files)
 * or HAProxy (--format haproxy --out FILE: a tls-ticket-keys file). --watch keeps running and
 * does it again just after each rotation, then runs --exec CMD (e.g. "nginx -s reload"), or for
 * HAProxy gives it the new key over its admin socket (--haproxy-socket PATH, `set ssl tls-key`),
 * without a reload. A failed fetch is retried; the files keep the last good keys meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli_common.h"
#include "commands.h"
#include "tickets_out.h"

static const char tickets_help[] =
    "usage: keyward tickets --server HOST:PORT --cert FILE --key FILE --ca FILE\n"
    "                       --format nginx|haproxy --out PATH [--watch [--exec CMD]\n"
    "                       [--haproxy-socket PATH]]\n"
    "Writes the fleet's session-ticket keys (the key server's --ticket-secret; the edge needs an\n"
    "allow rule naming 'tickets') for nginx or HAProxy.\n" KW_CLI_SERVER_HELP
    "  --format nginx       --out DIR gets current.key, previous.key, next.key (80 bytes each);\n"
    "                       list them in that order as ssl_session_ticket_key\n"
    "  --format haproxy     --out FILE gets three base64 keys for tls-ticket-keys\n"
    "  --watch              keep running: write the keys again after each rotation\n"
    "  --exec CMD           with --watch: run CMD (sh -c) after each write, e.g.\n"
    "                       'nginx -s reload'\n"
    "  --haproxy-socket P   with --watch and --format haproxy: give HAProxy each new key\n"
    "                       on its admin socket (set ssl tls-key), no reload needed\n";

enum { OPT_FORMAT = 2000, OPT_OUT, OPT_WATCH, OPT_EXEC, OPT_HASOCK };

typedef struct tickets_opts_s {
    int haproxy; /* 0: nginx */
    const char *out;
    int watch;
    const char *exec;
    const char *hasock;
} tickets_opts_t;

static int write_set(const tickets_opts_t *t, const kw_ticket_keys_t *set)
{
    return t->haproxy ? kw_tickets_write_haproxy(set, t->out) : kw_tickets_write_nginx(set, t->out);
}

static int fetch(kw_client_t *c, const kw_cli_opts_t *o, kw_ticket_keys_t *set)
{
    uint8_t remote = 0;
    int rc = kw_ticket_keys(c, set, &remote);
    if (rc != 0)
        kw_cli_report(c, o, rc, remote, "ticket keys");
    return rc;
}

/* --exec CMD after a write: sh -c CMD, waited for. A failure is reported with what happened (exit
 * status or signal) and the watch goes on: the files hold the new keys either way, and CMD runs
 * again after the next write. */
static void run_exec(const char *cmd)
{
    fflush(stdout);
    int st = system(cmd);
    if (st == -1)
        kw_cli_error("--exec '%s' could not be run: %s; the watch goes on", cmd, strerror(errno));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        kw_cli_error("--exec '%s' failed: exit status %d; the watch goes on (it runs again after "
                     "the next write)",
                     cmd, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        kw_cli_error("--exec '%s' failed: killed by signal %d; the watch goes on (it runs again "
                     "after the next write)",
                     cmd, WTERMSIG(st));
}

/* After a write in --watch: HAProxy's socket gets the keys newer than last_epoch, and CMD runs. */
static void after_write(const tickets_opts_t *t, const kw_ticket_keys_t *set, uint64_t last_next)
{
    if (t->hasock != NULL) {
        for (int i = 0; i < KW_TICKET_EPOCHS; i++) {
            if (last_next != 0 && set->keys[i].epoch > last_next &&
                kw_tickets_haproxy_push(t->hasock, t->out, &set->keys[i]) == 0)
                printf("HAProxy took the key of epoch %llu\n",
                       (unsigned long long)set->keys[i].epoch);
        }
    }
    if (t->exec != NULL)
        run_exec(t->exec);
}

static void report(const tickets_opts_t *t, const kw_ticket_keys_t *set)
{
    printf("wrote the ticket keys of epochs %llu-%llu (current %llu, until %llu) to %s\n",
           (unsigned long long)set->keys[0].epoch, (unsigned long long)set->keys[2].epoch,
           (unsigned long long)set->keys[1].epoch, (unsigned long long)set->keys[1].not_after,
           t->out);
    fflush(stdout);
}

static int watch(kw_client_t *c, const kw_cli_opts_t *o, const tickets_opts_t *t)
{
    uint64_t last_next = 0; /* epoch of the newest key written */
    for (;;) {
        kw_ticket_keys_t set;
        unsigned wait_s = 5;
        if (fetch(c, o, &set) == 0) {
            if (set.keys[2].epoch != last_next && write_set(t, &set) == 0) {
                report(t, &set);
                after_write(t, &set, last_next);
                last_next = set.keys[2].epoch;
            }
            uint64_t now = (uint64_t)time(NULL);
            uint64_t end = set.keys[1].not_after;
            wait_s = end > now ? (unsigned)(end - now) : 0;
            wait_s += 1; /* just after the rotation, so the new current key is served */
        }
        OPENSSL_cleanse(&set, sizeof(set));
        sleep(wait_s);
    }
    return KW_EXIT_OK;
}

static int parse(int argc, char **argv, kw_cli_opts_t *o, tickets_opts_t *t, int *status)
{
    static const struct option opts[] = {KW_CLI_SERVER_OPTIONS,
                                         {"format", required_argument, NULL, OPT_FORMAT},
                                         {"out", required_argument, NULL, OPT_OUT},
                                         {"watch", no_argument, NULL, OPT_WATCH},
                                         {"exec", required_argument, NULL, OPT_EXEC},
                                         {"haproxy-socket", required_argument, NULL, OPT_HASOCK},
                                         {NULL, 0, NULL, 0}};
    const char *format = NULL;
    for (;;) {
        int ch = kw_cli_getopt(o, argc, argv, "h", opts, tickets_help, status);
        if (ch == KW_CLI_OPT_END)
            break;
        if (ch == KW_CLI_OPT_EXIT)
            return -1;
        if (ch == OPT_FORMAT)
            format = optarg;
        else if (ch == OPT_OUT)
            t->out = optarg;
        else if (ch == OPT_WATCH)
            t->watch = 1;
        else if (ch == OPT_EXEC)
            t->exec = optarg;
        else if (ch == OPT_HASOCK)
            t->hasock = optarg;
    }
    const char *bad = NULL;
    if (format == NULL || (strcmp(format, "nginx") != 0 && strcmp(format, "haproxy") != 0))
        bad = "--format must be nginx or haproxy";
    else if (t->out == NULL)
        bad = "--out is required (a directory for nginx, a file for haproxy)";
    else if ((t->exec != NULL || t->hasock != NULL) && !t->watch)
        bad = "--exec and --haproxy-socket go with --watch";
    else if (t->hasock != NULL && strcmp(format, "haproxy") != 0)
        bad = "--haproxy-socket goes with --format haproxy";
    if (bad != NULL) {
        kw_cli_error("%s", bad);
        fputs(tickets_help, stderr);
        *status = KW_EXIT_USAGE;
        return -1;
    }
    t->haproxy = strcmp(format, "haproxy") == 0;
    return 0;
}

int kw_cmd_tickets(int argc, char **argv)
{
    kw_cli_opts_t o;
    tickets_opts_t t;
    kw_client_t *c = NULL;
    int status = KW_EXIT_OK;
    memset(&t, 0, sizeof(t));
    kw_cli_opts_init(&o);
    if (parse(argc, argv, &o, &t, &status) != 0)
        return status;
    if (kw_cli_client(&o, &c) != 0)
        return KW_EXIT_USAGE;
    if (t.watch) {
        status = watch(c, &o, &t);
    } else {
        kw_ticket_keys_t set;
        status = KW_EXIT_FAIL;
        if (fetch(c, &o, &set) == 0 && write_set(&t, &set) == 0) {
            report(&t, &set);
            status = KW_EXIT_OK;
        }
        OPENSSL_cleanse(&set, sizeof(set));
    }
    kw_client_free(c);
    return status;
}
