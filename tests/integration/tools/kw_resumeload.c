/*
 * kw_resumeload: a mixed load of new and returning TLS clients spread over several edges, for
 * bench/tickets.sh (issue 19).
 *   kw_resumeload --edges HOST:PORT[,HOST:PORT...] --ca FILE [--servername NAME] [--count N]
 *                 [--returning PCT] [--threads T] [--tls 1.2|1.3]
 * Each thread keeps a pool of up to 64 clients' latest sessions; each connection goes to a random
 * edge and, with probability PCT %, is a returning client offering its latest session (from
 * whichever edge issued it), which its new session then replaces (OpenSSL clients use a TLS 1.3
 * ticket once). Every
 * connection sends one HTTP/1.0 request and reads the reply (so TLS 1.3 tickets arrive), then
 * its session joins the pool. Prints "connections N resumed R seconds S handshakes_per_s H".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kw_tool.h"

#define POOL 64
#define USAGE                                                                                      \
    "kw_resumeload --edges HOST:PORT[,HOST:PORT...] --ca FILE [--servername NAME] [--count N] "    \
    "[--returning PCT] [--threads T] [--tls 1.2|1.3]"
#define MAX_EDG 8

typedef struct load_s {
    char *edges[MAX_EDG];
    int nedges;
    const char *sni;
    SSL_CTX *ctx;
    unsigned count; /* per thread */
    unsigned pct;
    unsigned seed;
    unsigned done, resumed, failed;
} load_t;

/* One connection; returns its session (or NULL) and counts it. */
static SSL_SESSION *one(load_t *l, SSL_SESSION *offer, unsigned *seed)
{
    int fd = kw_tool_connect(l->edges[(unsigned)rand_r(seed) % (unsigned)l->nedges], 1);
    SSL *ssl = SSL_new(l->ctx);
    SSL_SESSION *got = NULL;
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[4096];
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
        kw_tool_die("SSL_new");
    SSL_set_tlsext_host_name(ssl, l->sni);
    if (offer != NULL)
        SSL_set_session(ssl, offer);
    if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, sizeof(req) - 1) > 0) {
        while (SSL_read(ssl, buf, sizeof(buf)) > 0) {
        }
        l->done++;
        l->resumed += SSL_session_reused(ssl) == 1;
        got = SSL_get1_session(ssl);
        (void)SSL_shutdown(ssl); /* a session ended without close_notify is not resumable */
    } else {
        l->failed++;
        ERR_clear_error();
    }
    SSL_free(ssl);
    close(fd);
    return got;
}

static void *run(void *arg)
{
    load_t *l = arg;
    SSL_SESSION *pool[POOL] = {NULL};
    unsigned n = 0;
    unsigned seed = l->seed;
    for (unsigned i = 0; i < l->count; i++) {
        SSL_SESSION *offer = NULL;
        unsigned slot = n < POOL ? n : (unsigned)rand_r(&seed) % POOL; /* a new client */
        if (n > 0 && (unsigned)rand_r(&seed) % 100 < l->pct) {
            slot = (unsigned)rand_r(&seed) % n; /* a returning client: its latest session */
            offer = pool[slot];
        }
        SSL_SESSION *s = one(l, offer, &seed);
        if (s == NULL)
            continue;
        n += slot == n;
        SSL_SESSION_free(pool[slot]); /* TLS 1.3 tickets are single-use at OpenSSL clients */
        pool[slot] = s;
    }
    for (unsigned i = 0; i < n; i++)
        SSL_SESSION_free(pool[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    load_t proto;
    const char *edges = NULL, *ca = NULL, *tls = "1.3";
    unsigned threads = 2, count = 1000;
    memset(&proto, 0, sizeof(proto));
    proto.sni = "localhost";
    proto.pct = 80;
    kw_tool_opts_t common = {0};
    const kw_tool_arg_t args[] = {
        {"edges", .s = &edges},
        {"servername", .s = &proto.sni},
        {"count", .u = &count},
        {"returning", .u = &proto.pct},
        {"threads", .u = &threads},
        {"tls", .s = &tls},
        {.name = NULL},
    };
    kw_tool_parse(argc, argv, args, &common, USAGE);
    ca = common.ca;
    if (edges == NULL || ca == NULL || threads == 0 || threads > 64 || count == 0) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 1;
    }
    char *list = strdup(edges);
    for (char *save = NULL, *e = strtok_r(list, ",", &save); e != NULL && proto.nedges < MAX_EDG;
         e = strtok_r(NULL, ",", &save))
        proto.edges[proto.nedges++] = e;
    proto.ctx = SSL_CTX_new(TLS_client_method());
    if (proto.ctx == NULL || SSL_CTX_load_verify_locations(proto.ctx, ca, NULL) != 1)
        kw_tool_die("cannot load the CA");
    SSL_CTX_set_verify(proto.ctx, SSL_VERIFY_PEER, NULL);
    int v = strcmp(tls, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(proto.ctx, v);
    SSL_CTX_set_max_proto_version(proto.ctx, v);
    SSL_CTX_set_session_cache_mode(proto.ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    load_t *l = calloc(threads, sizeof(*l));
    pthread_t *tid = calloc(threads, sizeof(*tid));
    double t0 = kw_tool_now();
    for (unsigned i = 0; i < threads; i++) {
        l[i] = proto;
        l[i].count = count / threads + (i < count % threads);
        l[i].seed = 1234u + i;
        pthread_create(&tid[i], NULL, run, &l[i]);
    }
    unsigned done = 0, resumed = 0, failed = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        done += l[i].done;
        resumed += l[i].resumed;
        failed += l[i].failed;
    }
    double secs = kw_tool_now() - t0;
    printf("connections %u resumed %u failed %u seconds %.2f handshakes_per_s %.0f\n", done,
           resumed, failed, secs, done / secs);
    SSL_CTX_free(proto.ctx);
    free(l);
    free(tid);
    free(list);
    return failed > 0 ? 2 : 0;
}
