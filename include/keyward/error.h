/*
 * keyward status codes: every libkeyward function returns 0 or a negative KW_E* value;
 * kw_strerror() turns one into a sentence a user can act on.
 */
#ifndef KEYWARD_ERROR_H
#define KEYWARD_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define KW_OK        0
#define KW_EINVAL    (-1)  /* bad argument */
#define KW_ENOMEM    (-2)  /* out of memory */
#define KW_ESHORT    (-3)  /* need more bytes (not an error for stream parsers) */
#define KW_EFORMAT   (-4)  /* malformed frame or item */
#define KW_EVERSION  (-5)  /* unsupported protocol version */
#define KW_ETOOBIG   (-6)  /* does not fit the frame or buffer */
#define KW_ETIMEDOUT (-7)  /* no reply within the timeout */
#define KW_ECONN     (-8)  /* cannot connect / connection lost */
#define KW_ETLS      (-9)  /* TLS setup or handshake failed */
#define KW_EREMOTE   (-10) /* the key server answered with an error (see the remote code) */
#define KW_ENOKEY    (-11) /* no such key */
#define KW_ECRYPTO   (-12) /* a cryptographic operation failed */
#define KW_EIO       (-13) /* file or system I/O error */
#define KW_ECLOSED   (-14) /* object is shutting down */
#define KW_ECONFIG   (-15) /* invalid configuration */
#define KW_EBUSY     (-16) /* limit reached, try later */
#define KW_EDENIED   (-17) /* not authorised */
#define KW_ETHREAD   (-18) /* a thread was needed and could not be created (RLIMIT_NPROC?) */

const char *kw_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARD_ERROR_H */
