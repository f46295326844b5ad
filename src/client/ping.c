/*
 * kw_client_ping (client.h): one blocking ping (0xF1) whose payload must come back unchanged,
 * and on failure the reason as one sentence. The daemons' /ready probes and `keyward ping` use it.
 */
#include <stdio.h>
#include <string.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "kw_guard.h"

#define KW_PING_PAYLOAD "keyward ping"

/* why: kw_strerror(rc), the key server's error name for KW_EREMOTE, then the connection-level
 * failure when there is one, each after ": ". */
static void say_why(kw_client_t *client, int rc, uint8_t remote, char *why, size_t len)
{
    char detail[256] = "";
    if (why == NULL || len == 0)
        return;
    kw_client_last_error(client, detail, sizeof(detail));
    const char *parts[3] = {kw_strerror(rc), rc == KW_EREMOTE ? kw_remote_error_name(remote) : "",
                            detail};
    size_t used = 0;
    for (size_t i = 0; i < 3 && used < len; i++) {
        if (parts[i][0] == '\0')
            continue;
        int n = snprintf(why + used, len - used, "%s%s", used > 0 ? ": " : "", parts[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int kw_client_ping(kw_client_t *client, uint8_t *remote_err, char *why, size_t why_len)
{
    kw_msg_t msg;
    uint8_t echo[sizeof(KW_PING_PAYLOAD)];
    size_t n = 0;
    uint8_t remote = 0;
    KW_ENSURE(client != NULL, KW_EINVAL);
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_PING;
    msg.has_opcode = 1;
    msg.payload = kw_bytes(KW_PING_PAYLOAD, sizeof(KW_PING_PAYLOAD) - 1);
    int rc = kw_client_call(client, &msg, echo, sizeof(echo), &n, &remote);
    if (rc == 0 && (n != sizeof(KW_PING_PAYLOAD) - 1 || memcmp(echo, KW_PING_PAYLOAD, n) != 0))
        rc = KW_EFORMAT;
    if (remote_err != NULL)
        *remote_err = remote;
    if (rc != 0)
        say_why(client, rc, remote, why, why_len);
    return rc;
}
