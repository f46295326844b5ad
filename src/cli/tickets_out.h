/*
 * Writing the fleet's ticket keys for servers we do not control (keyward tickets): nginx's
 * 80-byte ssl_session_ticket_key files and HAProxy's tls-ticket-keys file, each written to a
 * temporary file (mode 0600) and renamed into place, and HAProxy's runtime API
 * (`set ssl tls-key`). The key layouts differ: nginx name|HMAC|AES (as KWP's), HAProxy
 * name|AES|HMAC (struct tls_sess_key_256 in HAProxy 2.6).
 */
#ifndef KW_CLI_TICKETS_OUT_H
#define KW_CLI_TICKETS_OUT_H

#include <stddef.h>

#include "keyward/protocol.h"

/* nginx: DIR/current.key (epoch e), DIR/previous.key (e-1), DIR/next.key (e+1). List them in that
 * order as ssl_session_ticket_key: nginx encrypts with the first. Returns 0 or -1 (printed). */
int kw_tickets_write_nginx(const kw_ticket_keys_t *set, const char *dir);

/* HAProxy: three base64 lines e-1, e, e+1 (HAProxy encrypts with the penultimate key of the
 * file). Returns 0 or -1 (printed). */
int kw_tickets_write_haproxy(const kw_ticket_keys_t *set, const char *file);

/* The base64 line of key k in HAProxy's layout into out (at least 112 bytes). */
void kw_tickets_haproxy_b64(const kw_ticket_key_t *k, char *out, size_t cap);

/* `set ssl tls-key FILE B64` on the HAProxy admin socket at sock_path, for key k: HAProxy makes
 * it the newest key and encrypts with the one before. Returns 0 or -1 (printed). */
int kw_tickets_haproxy_push(const char *sock_path, const char *file, const kw_ticket_key_t *k);

#endif /* KW_CLI_TICKETS_OUT_H */
