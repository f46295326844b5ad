/*
 * The /metrics HTTP endpoint, served by libmicrohttpd from its own thread (so a slow scraper never
 * touches the key server's event loop): GET or HEAD /metrics answers the Prometheus text format,
 * /health 200 while the process serves (liveness), /ready 200 or 503 with the reason (readiness:
 * obs/ready.h), any other path 404, any other method 405. /health and /ready need no token (load
 * balancers and orchestrators probe them; they tell only "ok" or what is missing). With a token
 * (--metrics-token-file) every request needs "Authorization: Bearer TOKEN" (compared in constant
 * time), else 401. Slow clients are bounded: KW_METRICS_PER_IP connections per address,
 * KW_METRICS_CONNS in all, and KW_METRICS_IDLE_S without a byte closes a connection.
 */
#include <errno.h>
#include <stdatomic.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "kw_addr.h"
#include "obs/metrics.h"
#include "obs/ready.h"

#define KW_METRICS_CONNS  64 /* connections at once */
#define KW_METRICS_PER_IP 4  /* ... from one address */
#define KW_METRICS_IDLE_S 3  /* a connection silent this long is closed */
#define KW_TOKEN_MAX      512

struct kw_ks_metrics_http_s {
    struct MHD_Daemon *daemon;
    kw_ks_metrics_t *metrics;
    int has_token;
    uint8_t token_hash[32];              /* SHA-256 of the bearer token */
    struct kw_ks_ready_s *_Atomic ready; /* set after the start (main.c) */
};

/* 1 when the request carries "Authorization: Bearer <the token>" (or no token is required).
 * Hashes compared with CRYPTO_memcmp: no timing on the token's bytes or length. */
static int authorised(const kw_ks_metrics_http_t *h, struct MHD_Connection *conn)
{
    if (!h->has_token)
        return 1;
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    uint8_t got[32];
    unsigned int n = 0;
    if (EVP_Digest(v + 7, strlen(v + 7), got, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return 0;
    return CRYPTO_memcmp(got, h->token_hash, 32) == 0;
}

static enum MHD_Result reply_401(struct MHD_Connection *conn)
{
    static const char body[] = "a bearer token is required (Authorization: Bearer TOKEN)\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"keyward\"");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
    MHD_destroy_response(r);
    return ret;
}

/* Reads the token (the file's first line, without surrounding blanks) and keeps its hash. */
static int load_token(kw_ks_metrics_http_t *h, const char *path, char *err, size_t errlen)
{
    char line[KW_TOKEN_MAX + 2] = "";
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "--metrics-token-file %s: %s", path, strerror(errno));
        return KW_EIO;
    }
    int ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    size_t len = ok ? strlen(line) : 0;
    while (len > 0 && strchr(" \t\r\n", line[len - 1]) != NULL)
        line[--len] = '\0';
    const char *tok = line + strspn(line, " \t");
    size_t tlen = strlen(tok);
    unsigned int n = 0;
    int rc = 0;
    if (tlen < 16 || tlen > KW_TOKEN_MAX) {
        snprintf(err, errlen,
                 "--metrics-token-file %s: the first line must hold a token of 16 to %d "
                 "characters (e.g. openssl rand -hex 32)",
                 path, KW_TOKEN_MAX);
        rc = KW_ECONFIG;
    } else if (EVP_Digest(tok, tlen, h->token_hash, &n, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "--metrics-token-file: cannot hash the token");
        rc = KW_ECONFIG;
    }
    OPENSSL_cleanse(line, sizeof(line));
    h->has_token = rc == 0;
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, char *body,
                                  size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
                                                  : "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    kw_ks_metrics_http_t *h = cls;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = h;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* ignore request bodies */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, (char *)"GET or HEAD only\n", 17,
                          MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/health") == 0)
        return reply_text(conn, MHD_HTTP_OK, (char *)"ok\n", 3, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/ready") == 0) {
        char why[512] = "starting";
        struct kw_ks_ready_s *r = atomic_load(&h->ready);
        int ok = r != NULL && kw_ks_ready_check(r, why, sizeof(why) - 1);
        size_t n = strlen(why);
        why[n++] = '\n';
        char *body = malloc(n);
        if (body == NULL)
            return MHD_NO;
        memcpy(body, why, n);
        return reply_text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, n,
                          MHD_RESPMEM_MUST_FREE);
    }
    if (!authorised(h, conn))
        return reply_401(conn);
    if (strcmp(url, "/metrics") != 0)
        return reply_text(conn, MHD_HTTP_NOT_FOUND,
                          (char *)"not found: try /metrics, /health or /ready\n", 43,
                          MHD_RESPMEM_PERSISTENT);
    char *body = NULL;
    size_t len = 0;
    if (kw_ks_metrics_render(h->metrics, &body, &len) != 0)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, (char *)"out of memory\n", 14,
                          MHD_RESPMEM_PERSISTENT);
    return reply_text(conn, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE);
}

/* HOST:PORT or [V6]:PORT, parsed like --listen (kw_addr.h). */
static int parse_addr(const char *text, struct sockaddr_storage *addr, socklen_t *addrlen)
{
    char why[256];
    return kw_addr_resolve(text, 1, addr, addrlen, why, sizeof(why));
}

int kw_ks_metrics_http_start(kw_ks_metrics_t *m, const char *listen, const char *token_file,
                             kw_ks_metrics_http_t **out, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    if (listen == NULL || parse_addr(listen, &addr, &addrlen) != 0) {
        snprintf(err, errlen, "--metrics %s: expected HOST:PORT or [IPV6]:PORT",
                 listen != NULL ? listen : "(null)");
        return KW_ECONFIG;
    }
    kw_ks_metrics_http_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return KW_ENOMEM;
    h->metrics = m;
    if (token_file != NULL) {
        int rc = load_token(h, token_file, err, errlen);
        if (rc != 0) {
            free(h);
            return rc;
        }
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)KW_METRICS_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                 (unsigned)KW_METRICS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)KW_METRICS_IDLE_S, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "cannot serve metrics on %s (address in use or not local?)", listen);
        free(h);
        return KW_EIO;
    }
    kw_info("metrics at http://%s/metrics (%s)", listen,
            h->has_token ? "bearer token required" : "no token: keep it on a private interface");
    *out = h;
    return 0;
}

void kw_ks_metrics_http_stop(kw_ks_metrics_http_t *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    OPENSSL_cleanse(h, sizeof(*h));
    free(h);
}

void kw_ks_metrics_http_set_ready(kw_ks_metrics_http_t *h, struct kw_ks_ready_s *ready)
{
    if (h != NULL)
        atomic_store(&h->ready, ready);
}
