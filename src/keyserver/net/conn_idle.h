/*
 * Memory of idle connections (issue 16): a connection that has read something holds buffers —
 * its plaintext reassembly and reply buffers (conn.c), OpenSSL's record buffers and the two memory
 * BIOs' buffers, about 57 KiB together. Such connections are on the server's list of holders; a
 * sweep every KW_CONN_IDLE_SWEEP_MS releases the buffers of those quiet for KW_CONN_IDLE_RELEASE_MS
 * with nothing in flight or buffered (they are allocated again on the next read), and takes them
 * off the list. A held idle edge connection then costs its SSL object, its peer's certificate and
 * the connection struct.
 */
#ifndef KW_CONN_IDLE_H
#define KW_CONN_IDLE_H

#include "net/conn.h"
#include "net/server.h"

#define KW_CONN_IDLE_RELEASE_MS 1000u
#define KW_CONN_IDLE_SWEEP_MS   500u

/* Starts the sweep timer (unreferenced: it keeps no loop alive). Loop thread. */
void kw_ks_conn_idle_start(kw_ks_server_t *s);

/* Closes the sweep timer (kw_ks_server_stop). */
void kw_ks_conn_idle_stop(kw_ks_server_t *s);

/* c read bytes: it holds buffers now (put on the list once). */
void kw_ks_conn_idle_note(kw_ks_conn_t *c);

/* c is closing: off the list. */
void kw_ks_conn_idle_forget(kw_ks_conn_t *c);

/* Releases c's buffers now if nothing is in flight or buffered; returns 1 when it did. */
int kw_ks_conn_idle_release(kw_ks_conn_t *c);

#endif /* KW_CONN_IDLE_H */
