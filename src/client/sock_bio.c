/*
 * The client's socket BIO: OpenSSL's socket BIO, except that it writes with send(MSG_NOSIGNAL).
 * A key server that resets a connection must come back as an error code, never as SIGPIPE in
 * the host process: libkeyward runs inside programs (openssl, curl, a customer's daemon) that
 * may not ignore SIGPIPE, and a library must not change their signal dispositions.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "kwc_sock_bio.h"

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int nosig_write(BIO *b, const char *data, int len)
{
    int fd = -1;
    if (data == NULL || len < 0 || BIO_get_fd(b, &fd) < 0 || fd < 0)
        return -1;
    BIO_clear_retry_flags(b);
    ssize_t n;
    do {
        n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)n;
}

static void make_method(void)
{
    const BIO_METHOD *sock = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "keyward socket");
    if (m == NULL)
        return;
    if (BIO_meth_set_write(m, nosig_write) != 1 ||
        BIO_meth_set_read(m, BIO_meth_get_read(sock)) != 1 ||
        BIO_meth_set_puts(m, BIO_meth_get_puts(sock)) != 1 ||
        BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) != 1 ||
        BIO_meth_set_create(m, BIO_meth_get_create(sock)) != 1 ||
        BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock)) != 1) {
        BIO_meth_free(m);
        return;
    }
    nosig_method = m;
}

/* At unload (the provider module is dlclose'd during OpenSSL's cleanup, after its clients and so
 * their BIOs are freed; a linked program: after atexit handlers), so no leak is left behind. */
__attribute__((destructor)) static void free_method(void)
{
    BIO_meth_free(nosig_method);
    nosig_method = NULL;
}

BIO *kwc_sock_bio_new(int fd)
{
    if (pthread_once(&nosig_once, make_method) != 0 || nosig_method == NULL)
        return NULL;
    BIO *b = BIO_new(nosig_method);
    if (b != NULL && BIO_set_fd(b, fd, BIO_NOCLOSE) != 1) {
        BIO_free(b);
        b = NULL;
    }
    return b;
}
