/*
 * A connection as request dispatch sees it: the peer interface (peer/peer.h) of conn.h, each entry
 * a thin call into conn.c. "done" only schedules the connection (kw_ks_conn_schedule): the check
 * phase then writes its replies and reads on, so a completion never re-enters dispatch.
 */
#include <stddef.h>

#include "net/conn.h"

static kw_ks_conn_t *conn_of(kw_ks_peer_t *p)
{
    return KW_CONTAINER_OF(p, kw_ks_conn_t, p);
}

static int peer_reply(kw_ks_peer_t *p, uint32_t id, uint8_t opcode, const uint8_t *payload,
                      size_t len)
{
    return kw_ks_conn_reply(conn_of(p), id, opcode, payload, len);
}

static void peer_close(kw_ks_peer_t *p)
{
    kw_ks_conn_close(conn_of(p));
}

static void peer_hold(kw_ks_peer_t *p)
{
    kw_ks_conn_ref(conn_of(p));
}

static void peer_release(kw_ks_peer_t *p)
{
    kw_ks_conn_unref(conn_of(p));
}

/* A job or forward of c finished (p->inflight already lowered): c is flushed in this iteration's
 * check phase, which also reads the requests waiting in the buffers once the brake is off and
 * closes a finishing connection with nothing left (kw_ks_conn_flush); never dispatch from here. */
static void peer_done(kw_ks_peer_t *p)
{
    kw_ks_conn_schedule(conn_of(p));
}

const kw_ks_peer_type_t kw_ks_conn_peer_type = {peer_reply, peer_close, peer_hold, peer_release,
                                                peer_done};
