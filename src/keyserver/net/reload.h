/*
 * Hot reload (SIGHUP) and the key store as the configuration describes it: the key directories
 * and PKCS#11 tokens of the config are loaded into a new store and the server's TLS identity into a
 * new context, off the event loop (libuv's thread pool), then both are swapped in on the loop
 * thread, with the ticket secret read again (--ticket-secret). Connections stay open; jobs in
 * flight keep the store they started with. A part of a reload that fails keeps its running
 * values and says why in the log (reload.c).
 */
#ifndef KW_RELOAD_H
#define KW_RELOAD_H

#include <stddef.h>

#include "config/config.h"
#include "keystore/keystore.h"
#include "obs/metrics.h"
#include "net/server.h"

/*
 * Loads the key store cfg describes (every key directory, every token; p11 may be NULL when cfg
 * has no tokens). Returns 0 with the store in *out and the number of refused key files in
 * *skipped, or a negative KW_E* with the reason in err.
 */
int kw_ks_store_from_config(const kw_ks_config_t *cfg, kw_ks_p11_ctx_t *p11, kw_keystore_t **out,
                            size_t *skipped, char *err, size_t errlen);

/* Publishes the store's key count and certificate expiries to m (NULL: nothing). */
void kw_ks_store_metrics(kw_ks_metrics_t *m, const kw_keystore_t *store);

/* Starts a reload (loop thread). A reload requested while one runs follows when it is done. */
void kw_ks_reload_start(kw_ks_server_t *s);

#endif /* KW_RELOAD_H */
