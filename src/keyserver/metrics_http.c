/*
 * The /metrics HTTP endpoint, served by libmicrohttpd from its own thread (so a slow scraper never
 * touches the key server's event loop): GET or HEAD /metrics answers the Prometheus text format,
 * any other path 404, any other method 405.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "keyward/error.h"
#include "keyward/log.h"
#include "metrics.h"
#include "server.h"

struct kw_ks_metrics_http_s {
    struct MHD_Daemon *daemon;
    kw_ks_metrics_t *metrics;
};

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
    if (strcmp(url, "/metrics") != 0)
        return reply_text(conn, MHD_HTTP_NOT_FOUND, (char *)"not found: try /metrics\n", 24,
                          MHD_RESPMEM_PERSISTENT);
    char *body = NULL;
    size_t len = 0;
    if (kw_ks_metrics_render(h->metrics, &body, &len) != 0)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, (char *)"out of memory\n", 14,
                          MHD_RESPMEM_PERSISTENT);
    return reply_text(conn, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE);
}

/* "HOST:PORT" or "[V6]:PORT" into addr. */
/* HOST:PORT or [V6]:PORT, parsed like --listen (kw_ks_parse_listen). */
static int parse_addr(const char *text, struct sockaddr_storage *addr, socklen_t *addrlen)
{
    int rc = kw_ks_parse_listen(text, addr);
    if (rc != 0)
        return rc;
    *addrlen =
        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return 0;
}

int kw_ks_metrics_http_start(kw_ks_metrics_t *m, const char *listen, kw_ks_metrics_http_t **out,
                             char *err, size_t errlen)
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "cannot serve metrics on %s (address in use or not local?)", listen);
        free(h);
        return KW_EIO;
    }
    kw_info("metrics at http://%s/metrics", listen);
    *out = h;
    return 0;
}

void kw_ks_metrics_http_stop(kw_ks_metrics_http_t *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
