/*
 * The HTTP endpoint of both daemons (--metrics HOST:PORT): /metrics, /health and /ready, served
 * by libmicrohttpd from a thread of its own, so a slow scraper or a stuck event loop never meets
 * the other. The daemon fills in the three pages (kw_httpd_pages_t); this layer does the rest:
 * GET or HEAD only (else 405), /health and /ready without a token, every other path behind the
 * bearer token of token_file when one is set (kw_bearer.h: 401 with WWW-Authenticate), 404 for a
 * path other than the three, and bounded clients (connections in all, per address, idle time).
 */
#ifndef KW_HTTPD_H
#define KW_HTTPD_H

#include <stddef.h>

#define KW_HTTPD_PER_IP 4 /* connections at once from one address */
#define KW_HTTPD_IDLE_S 3 /* a connection silent this long is closed */

typedef struct kw_httpd_s kw_httpd_t;

/* The pages, called on the HTTP thread (concurrently with the daemon's own threads). */
typedef struct kw_httpd_pages_s {
    void *ctx; /* passed to each callback */
    /* /health, /ready: 1 = 200, 0 = 503; why (NUL-terminated, "ok" on entry) is the body, a '\n'
     * added. NULL: always 200 "ok". */
    int (*health)(void *ctx, char *why, size_t len);
    int (*ready)(void *ctx, char *why, size_t len);
    /* /metrics: the Prometheus text, malloc'ed, into *body; 0, else 500 "out of memory". */
    int (*metrics)(void *ctx, char **body, size_t *len);
} kw_httpd_pages_t;

/* Serves pages (copied) on listen ("HOST:PORT" or "[V6]:PORT", kw_addr.h) with at most max_conns
 * connections at once; with token_file (may be NULL) every path but /health and /ready requires
 * its bearer token. Requests may be answered before it returns. Returns 0 and *out, or KW_ECONFIG
 * (a bad address), KW_EIO (cannot listen, cannot read the token), KW_ENOMEM, with a sentence
 * naming --metrics in err. */
int kw_httpd_start(const char *listen, const char *token_file, unsigned max_conns,
                   const kw_httpd_pages_t *pages, kw_httpd_t **out, char *err, size_t errlen);

/* Stops serving (waits for a request being answered) and frees h; NULL does nothing. */
void kw_httpd_stop(kw_httpd_t *h);

#endif /* KW_HTTPD_H */
