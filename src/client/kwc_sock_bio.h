/*
 * The client connection's socket BIO: sends with MSG_NOSIGNAL, so a key server that resets a
 * connection never raises SIGPIPE in the host program.
 */
#ifndef KWC_SOCK_BIO_H
#define KWC_SOCK_BIO_H

#include <openssl/bio.h>

/* A socket BIO on fd (not closed with it) that never raises SIGPIPE, or NULL. */
BIO *kwc_sock_bio_new(int fd);

#endif /* KWC_SOCK_BIO_H */
