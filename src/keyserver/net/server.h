/*
 * The key server: one libuv loop thread that accepts mutual-TLS connections, parses KWP frames,
 * answers cheap requests itself and hands private-key jobs to the worker pool; replies are
 * flushed once per loop iteration so many share TLS records and one socket write.
 */
#ifndef KW_SERVER_H
#define KW_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "config/config.h"
#include "keystore/keystore.h"
#include "net/state.h"

/*
 * Sets up the server (no I/O yet): TLS context from cfg, worker threads, signal handlers (SIGHUP
 * calls s->on_hup). s->eng.metrics, s->p11, s->on_hup, s->argc/argv, when the caller set them,
 * are kept. Takes a reference to store.
 * Returns 0 or a negative KW_E* with a message in err.
 */
int kw_ks_server_init(kw_ks_server_t *s, uv_loop_t *loop, const kw_ks_config_t *cfg,
                      kw_keystore_t *store, char *err, size_t errlen);

/* Binds and listens on cfg->listen. Returns 0 or a negative KW_E* with a message in err. */
int kw_ks_server_listen(kw_ks_server_t *s, char *err, size_t errlen);

/* Starts a clean shutdown: stop listening, close connections, stop workers. The loop then ends
 * once every handle is closed. Idempotent. */
void kw_ks_server_stop(kw_ks_server_t *s);

/* Frees what is left after the loop has ended. */
void kw_ks_server_destroy(kw_ks_server_t *s);

/* The server's TLS context for cfg's identity and client CA; NULL with a message in err. */
SSL_CTX *kw_ks_server_tls_ctx(const kw_ks_config_t *cfg, char *err, size_t errlen);

/* What a reload applies (reload.c builds it off the loop). */
typedef struct kw_ks_swap_s {
    SSL_CTX *ssl_ctx;     /* taken over (NULL: keep the running context) */
    kw_keystore_t *store; /* a reference is taken (NULL: keep the running store) */
    kw_ks_authz_t *authz; /* taken over when set_authz (NULL then means: no rules) */
    int set_authz;
    struct kw_ks_tickets_s *tickets; /* taken over when non-NULL; the running one is freed */
} kw_ks_swap_t;

/*
 * The one place a reload changes the running server: swaps in w's TLS context, key store (jobs in
 * flight keep theirs; connections keep their own SSL_CTX reference), allow rules and ticket secret
 * (the old one cleansed; 0xA4 derives on the loop thread, so nothing else holds it), and matches
 * every open connection's edge against the new rules at once, so a removed rule ends that edge's
 * access on connections already open. Loop thread.
 */
void kw_ks_server_swap(kw_ks_server_t *s, kw_ks_swap_t *w);

#endif /* KW_SERVER_H */
