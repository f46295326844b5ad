/*
 * keyward-proxy's guard on what an established client can make the proxy do besides carrying
 * application data: TLS messages that carry none (a KeyUpdate, a renegotiation attempt answered
 * with a no_renegotiation alert) are counted through the SSL message callback, and a client that
 * sends more than KW_PROXY_CTL_MAX of them within KW_PROXY_CTL_WINDOW_MS is cut off: the rest of
 * its buffered input is dropped at once, so even one read's worth of such records is not worked
 * through, and the data path closes the connection.
 */
#include <openssl/ssl.h>

#include "proxy.h"

static void on_tls_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
    (void)version;
    (void)buf;
    (void)len;
    (void)ssl;
    kw_px_conn_t *c = arg;
    /* Received handshake messages (after the handshake: KeyUpdate; a TLS 1.2 renegotiation
     * ClientHello is dropped before it is parsed) and the alerts we send (its refusal). */
    int ctl = (!write_p && content_type == SSL3_RT_HANDSHAKE) ||
              (write_p && content_type == SSL3_RT_ALERT);
    if (!ctl || c->flooded) {
        return;
    }
    uint64_t now = uv_now(&c->worker->loop);
    if (now - c->ctl_since >= KW_PROXY_CTL_WINDOW_MS) {
        c->ctl_since = now;
        c->ctl_count = 0;
    }
    if (++c->ctl_count > KW_PROXY_CTL_MAX) {
        c->flooded = 1;
        (void)BIO_reset(c->rbio); /* SSL_read stops after this record: nothing left to read */
    }
}

void kw_px_guard_start(kw_px_conn_t *c)
{
    c->ctl_since = uv_now(&c->worker->loop);
    SSL_set_msg_callback_arg(c->ssl, c);
    SSL_set_msg_callback(c->ssl, on_tls_msg);
}
