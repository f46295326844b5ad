/*
 * Whole-file reads (kw_file.h).
 */
#include "kw_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keyward/error.h"

int kw_file_read(const char *path, const char *what, size_t max, uint8_t **buf, size_t *len,
                 char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
        return KW_EIO;
    }
    size_t cap = 4096;
    size_t n = 0;
    uint8_t *b = OPENSSL_malloc(cap + 1);
    int e = b == NULL ? ENOMEM : 0;
    while (e == 0) {
        if (n == cap) {
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            uint8_t *nb = ncap > cap ? OPENSSL_clear_realloc(b, cap + 1, ncap + 1) : NULL;
            if (nb == NULL) {
                e = ncap > cap ? ENOMEM : EFBIG;
                break;
            }
            b = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, b + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            e = errno;
        else if (got == 0)
            break;
        else
            n += (size_t)got;
        if (n > max)
            e = EFBIG;
    }
    close(fd);
    if (e != 0) {
        if (e == EFBIG)
            snprintf(err, errlen, "cannot read %s %s: larger than %zu bytes", what, path, max);
        else
            snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(e));
        OPENSSL_clear_free(b, cap + 1);
        return KW_EIO;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}
