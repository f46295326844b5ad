/*
 * Releasing the buffers of idle connections (conn_idle.h): the list of connections holding
 * buffers, the sweep timer, and the release itself.
 */
#include <malloc.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "net/conn_idle.h"

void kw_ks_conn_idle_note(kw_ks_conn_t *c)
{
    kw_ks_server_t *s = c->server;
    if (kw_list_linked(&s->held, &c->held_link) || c->closing)
        return;
    kw_list_push_front(&s->held, &c->held_link);
}

void kw_ks_conn_idle_forget(kw_ks_conn_t *c)
{
    kw_ks_server_t *s = c->server;
    if (kw_list_linked(&s->held, &c->held_link))
        kw_list_remove(&s->held, &c->held_link);
}

/* A fresh, empty memory BIO like the ones setup_tls makes. */
static BIO *mem_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL)
        BIO_set_mem_eof_return(b, -1);
    return b;
}

int kw_ks_conn_idle_release(kw_ks_conn_t *c)
{
    if (c->closing || c->finishing || !c->handshake_done || c->p.inflight > 0 || c->dirty ||
        c->in_len > 0 || c->out_len > 0 || c->write_bytes > 0 || BIO_ctrl_pending(c->rbio) > 0 ||
        BIO_ctrl_pending(c->wbio) > 0 || SSL_has_pending(c->ssl))
        return 0;
    free(c->in); /* frames are consumed in place; nothing secret is left in it past in_len */
    c->in = NULL;
    c->in_cap = 0;
    if (c->out != NULL)
        OPENSSL_cleanse(c->out, c->out_cap); /* replies may have held decrypted secrets */
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
    (void)SSL_free_buffers(c->ssl); /* 0: a record is still under way; kept then */
    /* The memory BIOs keep their largest buffer: empty ones in their place (the SSL frees the
     * old pair). */
    BIO *r = mem_bio(), *w = mem_bio();
    if (r != NULL && w != NULL) {
        SSL_set_bio(c->ssl, r, w);
        c->rbio = r;
        c->wbio = w;
    } else {
        BIO_free(r);
        BIO_free(w);
    }
    return 1;
}

static void on_sweep(uv_timer_t *t)
{
    kw_ks_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    size_t released = 0;
    for (kw_link_t *k = s->held.head, *next; k != NULL; k = next) {
        next = k->next;
        kw_ks_conn_t *c = KW_LIST_ENTRY(k, kw_ks_conn_t, held_link);
        if (now - c->last_active >= KW_CONN_IDLE_RELEASE_MS && kw_ks_conn_idle_release(c)) {
            kw_list_remove(&s->held, k);
            released++;
        }
    }
    if (released > 0)
        (void)malloc_trim(0);
}

void kw_ks_conn_idle_start(kw_ks_server_t *s)
{
    uv_timer_init(s->loop, &s->idle_sweep);
    s->idle_sweep.data = s;
    uv_timer_start(&s->idle_sweep, on_sweep, KW_CONN_IDLE_SWEEP_MS, KW_CONN_IDLE_SWEEP_MS);
    uv_unref((uv_handle_t *)&s->idle_sweep);
}

void kw_ks_conn_idle_stop(kw_ks_server_t *s)
{
    uv_close((uv_handle_t *)&s->idle_sweep, NULL);
}
