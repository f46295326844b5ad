/*
 * A new key server connection's TLS side (conn_tls.c), called once by kw_ks_conn_accept.
 */
#ifndef KW_CONN_TLS_H
#define KW_CONN_TLS_H

#include "net/conn.h"

/* Fills c->peer ("?" when unknown) and c->adm's address from the accepted socket. */
void kw_ks_conn_describe_peer(kw_ks_conn_t *c);

/* Creates c->ssl in accept state over memory BIOs c->rbio/c->wbio, with the certificate check's
 * log hook. Returns 0 or KW_ENOMEM. */
int kw_ks_conn_setup_tls(kw_ks_conn_t *c);

#endif /* KW_CONN_TLS_H */
