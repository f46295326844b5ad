/*
 * The state the key server's connections share (the server owns it; net/server.c sets it up and
 * tears it down, net/conn.c works in it): the loop, the configuration, the TLS context, the
 * request engine (keys, rules, jobs, workers), the list of connections, the flush list, the
 * admission budgets and the read buffer. A header of its own so a connection needs nothing of the
 * server's functions.
 */
#ifndef KW_KS_STATE_H
#define KW_KS_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "config/config.h"
#include "engine/engine.h"
#include "keystore/pkcs11/pkcs11_store.h"
#include "kw_list.h"
#include "net/admit.h"

struct kw_ks_conn_s;

#define KW_READ_BUF_LEN 65536

typedef struct kw_ks_server_s {
    uv_loop_t *loop;
    const kw_ks_config_t *cfg; /* not owned; outlives the server */
    SSL_CTX *ssl_ctx;          /* owned reference */
    uv_tcp_t listener;
    uv_check_t flush_check;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup; /* calls on_hup (reload.c), after reopening the audit log */
    void (*on_hup)(struct kw_ks_server_s *s); /* NULL: SIGHUP only reopens. Set before init */
    kw_ks_p11_ctx_t *p11; /* PKCS#11 module registry, not owned. Set before init */
    int argc;             /* the command line SIGHUP re-reads (with its --config file); */
    char **argv;          /* argv NULL: reload from cfg. Set before init, not owned */
    int reloading;        /* a reload is being built off the loop */
    int reload_pending;   /* another SIGHUP came meanwhile */
    kw_ks_engine_t eng;   /* keys, rules, jobs, workers, metrics, rate limits: what dispatch uses.
                             eng.metrics (not owned; NULL: off) is set before kw_ks_server_init */
    kw_list_t conns;      /* every open connection (kw_ks_conn_t link), newest first */
    kw_ks_admit_t admit;  /* handshake and edge budgets (admit.h) */
    struct kw_ks_conn_s *dirty; /* connections with output to flush; each entry holds a reference */
    kw_list_t held;        /* connections holding buffers (held_link), newest first, no reference
                              (conn_idle.c) */
    uv_timer_t idle_sweep; /* releases the buffers of idle connections (conn_idle.c) */
    uv_timer_t beat;       /* stamps *heartbeat every KW_HEARTBEAT_MS (server.c) */
    struct kw_heartbeat_s *heartbeat; /* /health watches it (kw_heartbeat.h); set before init,
                                         not owned; NULL: none */
    uint64_t next_conn_id;
    int listening;
    int stopping;
    uint8_t read_buf[KW_READ_BUF_LEN]; /* shared by all reads (consumed at once by the rbio) and
                                          the check phase's socket writes (conn.c drain_wbio) */
} kw_ks_server_t;

#endif /* KW_KS_STATE_H */
