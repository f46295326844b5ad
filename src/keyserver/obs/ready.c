/*
 * /ready (ready.h): keys loaded (the metrics' key gauge, kept by every reload) and, with
 * upstreams, a ping (0xF1) answered by one of them within a second.
 */
#include "obs/ready.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/client.h"
#include "keyward/error.h"

#define KW_KS_READY_PING_MS 1000

struct kw_ks_ready_s {
    kw_ks_metrics_t *metrics;
    kw_client_t *upstreams; /* NULL without --upstream */
    char servers[512];
};

int kw_ks_ready_new(const kw_ks_config_t *cfg, kw_ks_metrics_t *m, kw_ks_ready_t **out, char *err,
                    size_t errlen)
{
    kw_ks_ready_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    r->metrics = m;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        size_t used = strlen(r->servers);
        snprintf(r->servers + used, sizeof(r->servers) - used, "%s%s", i > 0 ? "," : "",
                 cfg->upstreams[i]);
    }
    if (cfg->n_upstreams > 0) {
        kw_client_config_t cc;
        memset(&cc, 0, sizeof(cc));
        cc.servers = r->servers;
        cc.cert_file = cfg->upstream_cert != NULL ? cfg->upstream_cert : cfg->cert;
        cc.key_file = cfg->upstream_key != NULL ? cfg->upstream_key : cfg->key;
        cc.ca_file = cfg->upstream_ca != NULL ? cfg->upstream_ca : cfg->ca;
        cc.timeout_ms = KW_KS_READY_PING_MS;
        cc.connect_timeout_ms = KW_KS_READY_PING_MS;
        int rc = kw_client_new(&cc, &r->upstreams, err, errlen);
        if (rc != 0) {
            free(r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

void kw_ks_ready_free(kw_ks_ready_t *r)
{
    if (r == NULL) {
        return;
    }
    kw_client_free(r->upstreams);
    free(r);
}

int kw_ks_ready_check(kw_ks_ready_t *r, char *why, size_t len)
{
    uint64_t keys = kw_ks_metrics_keys(r->metrics);
    if (keys == 0 && r->upstreams == NULL) {
        snprintf(why, len, "no keys loaded");
        return 0;
    }
    char failed[384];
    if (r->upstreams != NULL && kw_client_ping(r->upstreams, NULL, failed, sizeof(failed)) != 0) {
        snprintf(why, len, "no upstream answers (%s): %s", r->servers, failed);
        return 0;
    }
    snprintf(why, len, "%llu keys%s%s", (unsigned long long)keys,
             r->upstreams != NULL ? ", upstream reachable: " : "",
             r->upstreams != NULL ? r->servers : "");
    return 1;
}
