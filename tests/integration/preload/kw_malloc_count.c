/*
 * kw_malloc_count.so: an LD_PRELOAD allocation counter for the tests that check a process's hot
 * path allocates nothing per request. It counts malloc, calloc, realloc (to a new block),
 * posix_memalign, aligned_alloc and memalign calls in every thread, then forwards to glibc's
 * own allocator (__libc_malloc, ...). On SIGUSR2 it writes "allocs N frees M\n" to the file
 * named by KW_MALLOC_COUNT_FILE (truncated each time; async-signal-safe: open, write, close),
 * so a test reads the count before and after a known number of requests. Counts only: no
 * timing, no stacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static atomic_ullong n_allocs;
static atomic_ullong n_frees;
static const char *count_file;

void *malloc(size_t size)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed); /* a resize counts too */
    return __libc_realloc(p, size);
}

void free(void *p)
{
    if (p != NULL)
        atomic_fetch_add_explicit(&n_frees, 1, memory_order_relaxed);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    void *p = __libc_memalign(align, size);
    if (p == NULL)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_memalign(align, size);
}

void *memalign(size_t align, size_t size)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_memalign(align, size);
}

/* Decimal digits of v at the end of buf; returns where they start. */
static char *put_u64(char *end, unsigned long long v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

static void put(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void on_usr2(int sig)
{
    (void)sig;
    int saved = errno;
    int fd = open(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        char buf[64];
        char *end = buf + sizeof(buf);
        char *s = put_u64(end, atomic_load(&n_allocs));
        put(fd, "allocs ", 7);
        put(fd, s, (size_t)(end - s));
        s = put_u64(end, atomic_load(&n_frees));
        put(fd, " frees ", 7);
        put(fd, s, (size_t)(end - s));
        put(fd, "\n", 1);
        close(fd);
    }
    errno = saved;
}

__attribute__((constructor)) static void setup(void)
{
    count_file = getenv("KW_MALLOC_COUNT_FILE");
    if (count_file == NULL || count_file[0] == '\0')
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGUSR2, &sa, NULL);
}
