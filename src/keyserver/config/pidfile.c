/*
 * --pid-file (pidfile.h): taking the flag out of argv, writing the pid once the server listens,
 * removing the file at exit.
 */
#include "config/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kw_num.h"

#define PID_FLAG "--pid-file"

int kw_ks_pidfile_take(int *argc, char **argv, const char **path, char *err, size_t errlen)
{
    const size_t flag_len = strlen(PID_FLAG);
    int out = 1;
    int i = 1;
    *path = NULL;
    while (i < *argc) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, PID_FLAG) == 0) {
            if (i + 1 >= *argc || argv[i + 1][0] == '\0') {
                snprintf(err, errlen, PID_FLAG " needs a file name");
                return -1;
            }
            *path = argv[i + 1];
            i += 2;
            continue;
        }
        if (strncmp(a, PID_FLAG "=", flag_len + 1) == 0) {
            if (a[flag_len + 1] == '\0') {
                snprintf(err, errlen, PID_FLAG " needs a file name");
                return -1;
            }
            *path = a + flag_len + 1;
            i++;
            continue;
        }
        argv[out++] = argv[i++];
    }
    while (i < *argc)
        argv[out++] = argv[i++];
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int kw_ks_pidfile_write(const char *path, char *err, size_t errlen)
{
    char line[32];
    int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write the pid file %s: %s (check --pid-file)", path,
                 strerror(errno));
        return -1;
    }
    ssize_t w = write(fd, line, (size_t)n);
    int saved = w < 0 ? errno : EIO;
    if (close(fd) != 0 || w != n) {
        snprintf(err, errlen, "cannot write the pid file %s: %s", path,
                 strerror(w == n ? errno : saved));
        (void)unlink(path);
        return -1;
    }
    return 0;
}

void kw_ks_pidfile_remove(const char *path)
{
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0'; /* the file holds "PID\n" */
    uint64_t pid = 0;
    if (kw_parse_u64(buf, UINT32_MAX, &pid) == 0 && pid == (uint64_t)getpid())
        (void)unlink(path);
}
