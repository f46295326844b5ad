/*
 * kw_log: one line per event on stderr, "2024-05-01T12:00:00.123Z program[pid] LEVEL: message".
 * Thread-safe: each line is formatted into a local buffer and written with one write(2) under a
 * mutex, so lines from threads never interleave. The threshold comes from kw_log_init, and the
 * KW_LOG_LEVEL environment variable (debug|info|warn|error) overrides it when set, so an operator
 * can turn on debug output without changing flags. Without kw_log_init (a library inside another
 * program, such as the provider) the program name is "keyward" and the threshold is warn.
 * Line breaks and control bytes inside a message are neutralised: one event is one line.
 */
#include "kw_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define KW_LOG_LINE_MAX 2048

static pthread_mutex_t kw_log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t kw_log_once = PTHREAD_ONCE_INIT;
static char kw_log_program[64] = "keyward";
static kw_log_level_t kw_log_threshold = KW_LOG_WARN;

static const char *const kw_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

/* Level named by KW_LOG_LEVEL, or -1 when unset or unknown. */
static int env_level(void)
{
    const char *v = getenv("KW_LOG_LEVEL");
    if (v == NULL)
        return -1;
    if (strcasecmp(v, "debug") == 0)
        return KW_LOG_DEBUG;
    if (strcasecmp(v, "info") == 0)
        return KW_LOG_INFO;
    if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0)
        return KW_LOG_WARN;
    if (strcasecmp(v, "error") == 0)
        return KW_LOG_ERROR;
    return -1;
}

static void apply_env(void)
{
    int lvl = env_level();
    if (lvl >= 0)
        kw_log_threshold = (kw_log_level_t)lvl;
}

void kw_log_init(const char *program, kw_log_level_t threshold)
{
    pthread_once(&kw_log_once, apply_env);
    pthread_mutex_lock(&kw_log_lock);
    if (program != NULL) {
        const char *slash = strrchr(program, '/');
        snprintf(kw_log_program, sizeof(kw_log_program), "%s", slash ? slash + 1 : program);
    }
    kw_log_threshold = threshold;
    apply_env();
    pthread_mutex_unlock(&kw_log_lock);
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf. */
static void format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* One event, one line: embedded line breaks become spaces, other control bytes '?', so text from
 * the network cannot forge log lines. */
static void sanitize(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r')
            s[i] = ' ';
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            s[i] = '?';
    }
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void kw_log(kw_log_level_t level, const char *fmt, ...)
{
    int saved_errno = errno;
    pthread_once(&kw_log_once, apply_env);
    if ((int)level < KW_LOG_DEBUG || level > KW_LOG_ERROR)
        level = KW_LOG_ERROR;
    char line[KW_LOG_LINE_MAX];
    char stamp[32];
    format_time(stamp, sizeof(stamp));
    pthread_mutex_lock(&kw_log_lock);
    if (level < kw_log_threshold) {
        pthread_mutex_unlock(&kw_log_lock);
        errno = saved_errno;
        return;
    }
    int n = snprintf(line, sizeof(line), "%s %s[%ld] %s: ", stamp, kw_log_program, (long)getpid(),
                     kw_level_names[level]);
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used < sizeof(line)) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
        va_end(ap);
        used += n < 0 ? 0 : (size_t)n;
    }
    if (used > sizeof(line) - 2)
        used = sizeof(line) - 2; /* truncated: keep room for the newline */
    while (used > 0 && line[used - 1] == '\n')
        used--;
    sanitize(line, used);
    line[used++] = '\n';
    write_all(line, used);
    pthread_mutex_unlock(&kw_log_lock);
    errno = saved_errno;
}
