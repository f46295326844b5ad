/*
 * Readiness (/ready on the metrics listener): the key server is ready when it holds keys (or
 * forwards to upstreams) and, with --upstream, one upstream answers a ping now. The ping goes
 * through a client of its own (the upstreams and identity of the configuration at start), so a
 * probe never touches the loop's forwarding. Liveness (/health) needs nothing here.
 */
#ifndef KW_KS_READY_H
#define KW_KS_READY_H

#include <stddef.h>

#include "config/config.h"
#include "obs/metrics.h"

typedef struct kw_ks_ready_s kw_ks_ready_t;

/* The probe for cfg (its metrics m, not owned). Returns 0 or a KW_E* code with err. */
int kw_ks_ready_new(const kw_ks_config_t *cfg, kw_ks_metrics_t *m, kw_ks_ready_t **out, char *err,
                    size_t errlen);
void kw_ks_ready_free(kw_ks_ready_t *r);

/* 1 when ready, else 0 with the reason in why. Blocks up to the ping timeout (1 s). Any thread. */
int kw_ks_ready_check(kw_ks_ready_t *r, char *why, size_t len);

#endif /* KW_KS_READY_H */
