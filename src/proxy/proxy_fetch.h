/*
 * keyward-proxy certificate distribution (--cert-from-keyserver, proxy_fetch.c): chains fetched
 * from the key servers with KWP 0xA2 become sites of the proxy's TLS (proxy_tls.h), at start and
 * again when the refresher (proxy_refresh.c) finds them due. Builds on proxy_tls; proxy_tls knows
 * nothing of it.
 */
#ifndef KW_PROXY_FETCH_H
#define KW_PROXY_FETCH_H

#include <time.h>

#include "proxy_tls.h"

/* Fetches every --cert-from-keyserver chain into tls (after kw_proxy_tls_init, which made room
 * for them); a name the key servers do not know stops the start like a missing certificate file
 * would. Returns 0, or a KW_E* code with a sentence in err (tls is then cleaned up). */
int kw_proxy_fetch_sites(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg, char *err,
                         size_t errlen);

/* The chain for NAME (an SNI name or sha256:HEX) from the key servers, as a site.
 * Blocking (up to the key-server timeout). Returns 0 or a KW_E* code with a sentence in err. */
int kw_proxy_fetch_site(kw_proxy_tls_t *tls, const char *name, kw_proxy_site_t *site, char *err,
                        size_t errlen);

/* The key-server client for kw_proxy_fetch_site (into tls->client), from cfg's key servers and
 * identity. Returns 0 or a KW_E* code with a sentence in err. */
int kw_proxy_fetch_client_new(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg, char *err,
                              size_t errlen);

/* 1 when a fetched site's leaf has less than a third of its lifetime left at now. */
int kw_proxy_site_expiring(const kw_proxy_site_t *site, time_t now);

/* 1 when a fetched site should be fetched again at now: it is expiring, or recheck_s (not 0)
 * seconds have passed since it was last fetched (the key server may have a newer one). */
int kw_proxy_site_due(const kw_proxy_site_t *site, time_t now, unsigned recheck_s);

#endif /* KW_PROXY_FETCH_H */
