/*
 * keyward-proxy certificate refresh: a timer on worker 0 checks every minute (or
 * KEYWARD_PROXY_REFRESH_CHECK_MS) whether a --cert-from-keyserver leaf has less than a third of
 * its lifetime left or was last fetched --cert-recheck-s seconds ago; the chains due are fetched
 * again on libuv's thread pool (the fetch and the key lookup block), and a newer certificate
 * replaces the old one for new handshakes. An older one (a key server not yet renewed) is not.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "proxy.h"
#include "proxy_fetch.h"
#include "kw_num.h"

#define KW_PROXY_REFRESH_CHECK_MS 60000u

static void refresh_work(uv_work_t *req)
{
    kw_proxy_t *p = req->data;
    time_t now = time(NULL);
    for (size_t i = 0; i < p->tls.nsites; i++) {
        const kw_proxy_site_t *s = &p->tls.sites[i];
        char err[1024];
        if (!kw_proxy_site_due(s, now, p->cfg->cert_recheck_s)) {
            continue;
        }
        if (kw_proxy_fetch_site(&p->tls, s->fetch_name, &p->refresh_new[i], err, sizeof(err)) !=
            0) {
            kw_warn("certificate for %s: fetching it again failed: %s", s->fetch_name, err);
            kw_proxy_site_clear(&p->refresh_new[i]);
        }
    }
}

/* Logs and installs the refetched site n for site i when its leaf is newer; n ends up holding
 * whatever is to be freed. */
static void refresh_one(kw_proxy_t *p, size_t i, kw_proxy_site_t *n, time_t now)
{
    kw_proxy_site_t *cur = &p->tls.sites[i];
    const char *name = cur->fetch_name;
    if (X509_cmp(n->leaf, cur->leaf) == 0 || n->not_before < cur->not_before) {
        cur->fetched_at = now;
        if (kw_proxy_site_expiring(cur, now)) {
            kw_warn("certificate for %s expires soon and the key server has no newer one", name);
        } else if (X509_cmp(n->leaf, cur->leaf) != 0) {
            kw_warn("the key server offers an older certificate for %s; keeping the current one",
                    name);
        }
        return;
    }
    char subject[256] = "?";
    X509_NAME_oneline(X509_get_subject_name(n->leaf), subject, sizeof(subject));
    if (kw_px_tickets_setup_ctx(p->tickets, n->ctx, n->leaf) != 0) {
        kw_warn("certificate for %s: cannot set up its session tickets; keeping the current one",
                name);
        return;
    }
    kw_proxy_tls_swap(&p->tls, i, n);
    kw_info("certificate for %s renewed from the key server: %s, key %s", name, subject,
            p->tls.sites[i].key_desc);
}

static void refresh_done(uv_work_t *req, int status)
{
    kw_proxy_t *p = req->data;
    time_t now = time(NULL);
    (void)status;
    for (size_t i = 0; i < p->tls.nsites; i++) {
        kw_proxy_site_t *n = &p->refresh_new[i];
        if (n->ctx == NULL) {
            continue;
        }
        refresh_one(p, i, n, now);
        kw_proxy_site_clear(n); /* the old site, or the unused copy */
    }
    p->refresh_busy = 0;
}

static void on_refresh_timer(uv_timer_t *t)
{
    kw_proxy_t *p = t->data;
    time_t now = time(NULL);
    int due = 0;
    for (size_t i = 0; i < p->tls.nsites; i++) {
        due = due || kw_proxy_site_due(&p->tls.sites[i], now, p->cfg->cert_recheck_s);
    }
    if (!due || p->refresh_busy) {
        return;
    }
    p->refresh_work.data = p;
    if (uv_queue_work(t->loop, &p->refresh_work, refresh_work, refresh_done) == 0) {
        p->refresh_busy = 1;
    }
}

int kw_px_refresh_start(kw_proxy_t *p)
{
    int fetched = 0;
    for (size_t i = 0; i < p->tls.nsites; i++) {
        fetched = fetched || p->tls.sites[i].fetch_name != NULL;
    }
    if (!fetched) {
        return 0;
    }
    p->refresh_new = calloc(p->tls.nsites, sizeof(*p->refresh_new));
    if (p->refresh_new == NULL) {
        return KW_ENOMEM;
    }
    unsigned ms = KW_PROXY_REFRESH_CHECK_MS;
    const char *env = getenv("KEYWARD_PROXY_REFRESH_CHECK_MS");
    if (env != NULL && kw_parse_uint(env, 1, UINT_MAX, &ms) != 0) {
        ms = KW_PROXY_REFRESH_CHECK_MS;
    }
    if (uv_timer_init(&p->workers[0].loop, &p->refresh_timer) != 0) {
        return KW_EIO;
    }
    p->refresh_timer.data = p;
    p->refresh_on = 1;
    return uv_timer_start(&p->refresh_timer, on_refresh_timer, ms, ms) == 0 ? 0 : KW_EIO;
}

void kw_px_refresh_stop(kw_proxy_t *p)
{
    if (p->refresh_on) {
        p->refresh_on = 0;
        uv_close((uv_handle_t *)&p->refresh_timer, NULL);
    }
}
