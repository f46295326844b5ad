/*
 * kw_ticket_keys (client.h): one blocking 0xA4 request and the decoded key set. The reply buffer
 * holds secrets and is cleansed whatever happens.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "kw_guard.h"

int kw_ticket_keys(kw_client_t *client, kw_ticket_keys_t *out, uint8_t *remote_err)
{
    kw_msg_t msg;
    uint8_t buf[KW_TICKET_KEYS_LEN + 1];
    size_t len = 0;
    KW_ENSURE(client != NULL && out != NULL, KW_EINVAL);
    memset(out, 0, sizeof(*out));
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_TICKET_KEYS;
    msg.has_opcode = 1;
    int rc = kw_client_call(client, &msg, buf, sizeof(buf), &len, remote_err);
    if (rc == KW_ETOOBIG)
        rc = KW_EFORMAT;
    if (rc == 0)
        rc = kw_ticket_keys_decode(buf, len, out);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}
