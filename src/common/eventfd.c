/*
 * Eventfd wake-ups (kw_eventfd.h).
 */
#include "kw_eventfd.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

void kw_eventfd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(fd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
}

void kw_eventfd_drain(int fd)
{
    uint64_t v;
    ssize_t r;
    do {
        r = read(fd, &v, sizeof(v));
    } while (r < 0 && errno == EINTR);
}
