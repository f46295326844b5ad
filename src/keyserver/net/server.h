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
#include "fleet/fleet.h"
#include "engine/job.h"
#include "keystore/keystore.h"
#include "obs/metrics.h"
#include "keystore/pkcs11/pkcs11_store.h"
#include "engine/rate.h"
#include "engine/workers.h"

struct kw_ks_conn_s;

#define KW_READ_BUF_LEN 65536

typedef struct kw_ks_server_s {
    uv_loop_t *loop;
    const kw_ks_config_t *cfg; /* not owned; outlives the server */
    SSL_CTX *ssl_ctx;          /* owned reference */
    kw_keystore_t *store;      /* owned reference; see kw_ks_server_set_store */
    uv_tcp_t listener;
    uv_check_t flush_check;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;      /* reload (reload.c) */
    kw_ks_metrics_t *metrics; /* not owned; NULL: off. Set before kw_ks_server_init */
    kw_ks_p11_ctx_t *p11;     /* PKCS#11 module registry, not owned. Set before init */
    int argc;                 /* the command line SIGHUP re-reads (with its --config file); */
    char **argv;              /* argv NULL: reload from cfg. Set before init, not owned */
    int reloading;            /* a reload is being built off the loop */
    int reload_pending;       /* another SIGHUP came meanwhile */
    kw_ks_workers_t workers;
    kw_ks_fleet_t fleet; /* authorisation, audit log, upstreams (fleet.h) */
    kw_ks_job_pool_t jobs;
    kw_ks_rate_t *rate;         /* per-edge rate limits (rate.h); NULL: none */
    struct kw_ks_conn_s *conns; /* every open connection, doubly linked */
    size_t n_conns;
    struct kw_ks_conn_s *hs_head; /* connections in their TLS handshake, oldest first (admit.c) */
    struct kw_ks_conn_s *hs_tail;
    unsigned n_handshaking;
    unsigned n_edges;           /* authenticated connections (--max-connections) */
    uint64_t admit_evicted;     /* handshaking connections closed to make room */
    uint64_t admit_logged_at;   /* uv_now of the last admission warning */
    struct kw_ks_conn_s *dirty; /* connections with output to flush; each entry holds a reference */
    uint64_t next_conn_id;
    int listening;
    int stopping;
    uint8_t read_buf[KW_READ_BUF_LEN]; /* shared by all reads: consumed at once by the rbio */
} kw_ks_server_t;

/*
 * Sets up the server (no I/O yet): TLS context from cfg, worker threads, signal handlers (SIGHUP
 * reloads). s->metrics and s->p11, when the caller set them, are kept. Takes a reference to store.
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

/* Swaps in a new key store (takes a reference; drops the old one). Jobs in flight keep theirs. */
void kw_ks_server_set_store(kw_ks_server_t *s, kw_keystore_t *store);

/* Queues c for a flush in this loop iteration's check phase. */
void kw_ks_server_mark_dirty(kw_ks_server_t *s, struct kw_ks_conn_s *c);

/* Parses "HOST:PORT" / "[V6]:PORT" (numeric or resolvable host). Returns 0 or KW_EINVAL. */
int kw_ks_parse_listen(const char *text, struct sockaddr_storage *out);

#endif /* KW_SERVER_H */
