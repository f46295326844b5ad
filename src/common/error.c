/*
 * kw_strerror: one sentence per keyward status code, saying what went wrong and what to do next.
 */
#include "keyward/error.h"

#include <stddef.h>

const char *kw_strerror(int code)
{
    switch (code) {
    case KW_OK:
        return "success";
    case KW_EINVAL:
        return "invalid argument: check the values passed to keyward";
    case KW_ENOMEM:
        return "out of memory: free memory or lower the load";
    case KW_ESHORT:
        return "incomplete data: more bytes are needed";
    case KW_EFORMAT:
        return "malformed KWP frame or item: the peer does not speak the keyless protocol "
               "correctly";
    case KW_EVERSION:
        return "unsupported KWP protocol version: upgrade the older side";
    case KW_ETOOBIG:
        return "data too large for the frame or buffer";
    case KW_ETIMEDOUT:
        return "no reply from the key server in time: check it is running and reachable, or "
               "raise the timeout";
    case KW_ECONN:
        return "cannot connect to the key server, or the connection was lost: check the "
               "address, port and firewall";
    case KW_ETLS:
        return "TLS handshake or setup failed: check the certificates, keys and CA of both sides";
    case KW_EREMOTE:
        return "the key server answered with an error: see its error code and log";
    case KW_ENOKEY:
        return "no such key: check the key id, or that the key server has loaded the key";
    case KW_ECRYPTO:
        return "a cryptographic operation failed: check the key type matches the operation";
    case KW_EIO:
        return "file or system I/O error: check the path and its permissions";
    case KW_ECLOSED:
        return "the object is shutting down: retry with a new one";
    case KW_ECONFIG:
        return "invalid configuration: check the configuration file and flags";
    case KW_EBUSY:
        return "limit reached: retry later or raise the limit";
    case KW_EDENIED:
        return "not authorised: the key server does not allow this client to use this key";
    case KW_ETHREAD:
        return "cannot start the key-server I/O thread (is the process limited by RLIMIT_NPROC, "
               "as HAProxy's workers are?): blocking key operations still work";
    default:
        return "unknown keyward error";
    }
}
