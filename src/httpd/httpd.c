/*
 * The daemons' HTTP endpoint (kw_httpd.h) on libmicrohttpd: one internal polling thread answers
 * every request. Routing, in this order: a method other than GET or HEAD is 405; /health and
 * /ready are answered by the daemon's callbacks with no token; any other path needs the bearer
 * token when one is set (401 with WWW-Authenticate, kw_bearer.h); then /metrics is the daemon's
 * Prometheus text and anything else 404.
 */
#include "kw_httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "keyward/error.h"
#include "kw_addr.h"
#include "kw_bearer.h"
#include "kw_log.h"

#define TEXT       "text/plain; charset=utf-8"
#define PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define WHY_MAX    600 /* a /health or /ready body */

struct kw_httpd_s {
    struct MHD_Daemon *daemon;
    kw_httpd_pages_t pages;
    kw_bearer_t token; /* --metrics-token-file (kw_bearer.h) */
};

/* Queues status with body (len bytes, freed by libmicrohttpd when mode says so) as type. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE) {
            free(body);
        }
        return MHD_NO;
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A fixed text body (a string literal). */
static enum MHD_Result reply_const(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return reply(conn, status, (char *)text, strlen(text), MHD_RESPMEM_PERSISTENT, TEXT);
}

static enum MHD_Result reply_401(struct MHD_Connection *conn)
{
    static const char body[] = KW_BEARER_401_BODY;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TEXT) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, KW_BEARER_CHALLENGE) !=
            MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
    MHD_destroy_response(r);
    return ret;
}

/* /health or /ready: check's verdict (NULL: ok) as 200 or 503, its why and '\n' the body. */
static enum MHD_Result reply_check(struct MHD_Connection *conn,
                                   int (*check)(void *, char *, size_t), void *ctx)
{
    char why[WHY_MAX] = "ok";
    int ok = check == NULL || check(ctx, why, sizeof(why) - 1);
    why[sizeof(why) - 2] = '\0'; /* room for the '\n' whatever the callback wrote */
    size_t n = strlen(why);
    why[n++] = '\n';
    char *body = malloc(n);
    if (body == NULL) {
        return MHD_NO;
    }
    memcpy(body, why, n);
    return reply(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, n,
                 MHD_RESPMEM_MUST_FREE, TEXT);
}

static enum MHD_Result reply_metrics(struct MHD_Connection *conn, const kw_httpd_pages_t *pages)
{
    char *body = NULL;
    size_t len = 0;
    if (pages->metrics == NULL || pages->metrics(pages->ctx, &body, &len) != 0) {
        free(body);
        return reply_const(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    return reply(conn, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE, PROMETHEUS);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    kw_httpd_t *h = cls;
    (void)version;
    (void)upload;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = h;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* request bodies are ignored */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return reply_const(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD only\n");
    }
    if (strcmp(url, "/health") == 0) {
        return reply_check(conn, h->pages.health, h->pages.ctx);
    }
    if (strcmp(url, "/ready") == 0) {
        return reply_check(conn, h->pages.ready, h->pages.ctx);
    }
    if (!kw_bearer_allows(&h->token,
                          MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"))) {
        return reply_401(conn);
    }
    if (strcmp(url, "/metrics") != 0) {
        return reply_const(conn, MHD_HTTP_NOT_FOUND,
                           "not found: try /metrics, /health or /ready\n");
    }
    return reply_metrics(conn, &h->pages);
}

static void httpd_free(kw_httpd_t *h)
{
    OPENSSL_cleanse(h, sizeof(*h));
    free(h);
}

int kw_httpd_start(const char *listen, const char *token_file, unsigned max_conns,
                   const kw_httpd_pages_t *pages, kw_httpd_t **out, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    char why[256] = "no address";
    if (listen == NULL || kw_addr_resolve(listen, 1, &addr, &addrlen, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--metrics %s: %s", listen != NULL ? listen : "(null)", why);
        return KW_ECONFIG;
    }
    kw_httpd_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    h->pages = *pages;
    if (token_file != NULL) {
        int rc = kw_bearer_load(&h->token, token_file, err, errlen);
        if (rc != 0) {
            httpd_free(h);
            return rc;
        }
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (addr.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    h->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, max_conns,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)KW_HTTPD_PER_IP,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)KW_HTTPD_IDLE_S, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "--metrics %s: cannot listen there (address in use or not local?)",
                 listen);
        httpd_free(h);
        return KW_EIO;
    }
    kw_info("metrics at http://%s/metrics (%s), liveness at /health, readiness at /ready", listen,
            h->token.set ? "bearer token required" : "no token: keep it on a private interface");
    *out = h;
    return 0;
}

void kw_httpd_stop(kw_httpd_t *h)
{
    if (h == NULL) {
        return;
    }
    MHD_stop_daemon(h->daemon);
    httpd_free(h);
}
