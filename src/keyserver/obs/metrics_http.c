/*
 * The /metrics HTTP endpoint, served by libmicrohttpd from its own thread (so a slow scraper never
 * touches the key server's event loop): GET or HEAD /metrics answers the Prometheus text format,
 * /health 200 while the loop thread beats (liveness; 503 "event loop stalled for N ms" when its
 * heartbeat is older than 2 s: kw_heartbeat.h), /ready 200 or 503 with the reason (readiness:
 * "starting" until the listener is bound, "stopping", a stalled loop, then obs/ready.h), any
 * other path 404, any other method 405. /health and /ready need no token (load
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

#include "keyward/error.h"
#include "kw_log.h"
#include "kw_addr.h"
#include "kw_bearer.h"
#include "kw_heartbeat.h"
#include "obs/metrics.h"
#include "obs/ready.h"

#define KW_METRICS_CONNS  64 /* connections at once */
#define KW_METRICS_PER_IP 4  /* ... from one address */
#define KW_METRICS_IDLE_S 3  /* a connection silent this long is closed */

struct kw_ks_metrics_http_s {
    struct MHD_Daemon *daemon;
    kw_ks_metrics_t *metrics;
    kw_bearer_t token;                   /* --metrics-token-file (kw_bearer.h) */
    struct kw_ks_ready_s *_Atomic ready; /* set after the start (main.c) */
    kw_heartbeat_t *_Atomic heartbeat;   /* the loop's (main.c); NULL: not watched */
};

static enum MHD_Result reply_401(struct MHD_Connection *conn)
{
    static const char body[] = KW_BEARER_401_BODY;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, KW_BEARER_CHALLENGE);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
    MHD_destroy_response(r);
    return ret;
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

/* A reply whose body is the line text (a copy, with '\n'). */
static enum MHD_Result reply_line(struct MHD_Connection *conn, unsigned status, const char *text)
{
    size_t n = strlen(text);
    char *body = malloc(n + 1);
    if (body == NULL)
        return MHD_NO;
    memcpy(body, text, n);
    body[n] = '\n';
    return reply_text(conn, status, body, n + 1, MHD_RESPMEM_MUST_FREE);
}

/* Liveness: 200 "ok", or 503 and why when the loop's heartbeat is stale (kw_heartbeat.h). */
static enum MHD_Result reply_health(struct MHD_Connection *conn, const kw_heartbeat_t *hb)
{
    char why[128];
    if (hb == NULL || kw_heartbeat_alive(hb, why, sizeof(why)))
        return reply_text(conn, MHD_HTTP_OK, (char *)"ok\n", 3, MHD_RESPMEM_PERSISTENT);
    return reply_line(conn, MHD_HTTP_SERVICE_UNAVAILABLE, why);
}

/* /ready: "starting" until the listener is bound, "stopping" once the loop stops taking
 * connections, the stall while the loop is stuck (as /health), else ready.c's check. */
static int ready_now(kw_ks_metrics_http_t *h, char *why, size_t len)
{
    struct kw_ks_ready_s *r = atomic_load(&h->ready);
    const kw_heartbeat_t *hb = atomic_load(&h->heartbeat);
    if (r == NULL) {
        snprintf(why, len, "starting");
        return 0;
    }
    if (hb != NULL && !kw_heartbeat_started(hb)) {
        snprintf(why, len, "stopping");
        return 0;
    }
    if (hb != NULL && !kw_heartbeat_alive(hb, why, len))
        return 0;
    return kw_ks_ready_check(r, why, len);
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
        return reply_health(conn, atomic_load(&h->heartbeat));
    if (strcmp(url, "/ready") == 0) {
        char why[512];
        int ok = ready_now(h, why, sizeof(why));
        return reply_line(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why);
    }
    if (!kw_bearer_allows(&h->token,
                          MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization")))
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
        int rc = kw_bearer_load(&h->token, token_file, err, errlen);
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
            h->token.set ? "bearer token required" : "no token: keep it on a private interface");
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

void kw_ks_metrics_http_set_heartbeat(kw_ks_metrics_http_t *h, kw_heartbeat_t *hb)
{
    if (h != NULL)
        atomic_store(&h->heartbeat, hb);
}

void kw_ks_metrics_http_set_ready(kw_ks_metrics_http_t *h, struct kw_ks_ready_s *ready)
{
    if (h != NULL)
        atomic_store(&h->ready, ready);
}
