/*
 * The audit log (audit.h): JSON line formatting on the loop thread, a bounded double buffer
 * shared with a writer thread under one mutex, the loop thread's write of each iteration's lines
 * (kw_ks_audit_sync, before the replies go out) and the writer thread that also writes what is
 * left (rotation, shutdown). Writes are write(2) on an O_APPEND descriptor, so every flush is
 * visible to readers at once and log shippers never see half a line from us; whoever writes holds
 * write_lock, so lines reach the file in the order they were logged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "obs/audit.h"
#include "kw_clock.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_log.h"
#include "kw_hex.h"

#define KW_AUDIT_WAKE (KW_AUDIT_BUFFER_MAX / 4) /* wake the writer early past this */

struct kw_ks_audit_s {
    pthread_mutex_t write_lock; /* held by whoever swaps buffers and writes: owns spare and fd */
    pthread_mutex_t lock;       /* guards buf, len, dropped, stop, reopen */
    pthread_cond_t cond;
    char *buf; /* lines appended by the loop thread */
    size_t len;
    char *spare; /* the writer's buffer while buf fills */
    uint64_t dropped;
    int stop;
    int reopen;
    int woken;         /* the writer was signalled since its last swap */
    int fd;            /* under write_lock, after start */
    int fsync;         /* fdatasync after each write (--audit-fsync) */
    int failing;       /* the last write failed (under write_lock) */
    uint64_t reported; /* drops already reported (under write_lock) */
    char *path;
    pthread_t thread;
};

/* ---- records and formatting (loop thread) ---- */

/* Unix time in ms. */
static int64_t wall_ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kw_ks_audit_rec_init(kw_ks_audit_rec_t *r, const kw_msg_t *msg)
{
    r->start_ns = kw_clock_ns();
    r->wall_ms = wall_ms_now();
    r->opcode = msg->opcode;
    r->has_key = msg->digest.present && msg->digest.len == KW_DIGEST_LEN;
    if (r->has_key)
        memcpy(r->digest, msg->digest.ptr, KW_DIGEST_LEN);
    r->ip_len = 0;
    if (msg->client_ip.present && (msg->client_ip.len == 4 || msg->client_ip.len == 16)) {
        r->ip_len = (uint8_t)msg->client_ip.len;
        memcpy(r->ip, msg->client_ip.ptr, r->ip_len);
    }
    size_t sni = msg->sni.present ? msg->sni.len : 0;
    r->sni_len = (uint8_t)(sni < KW_AUDIT_SNI_MAX ? sni : KW_AUDIT_SNI_MAX);
    if (r->sni_len > 0)
        memcpy(r->sni, msg->sni.ptr, r->sni_len);
}

void kw_ks_audit_rec_key(kw_ks_audit_rec_t *r, const uint8_t digest[KW_DIGEST_LEN])
{
    memcpy(r->digest, digest, KW_DIGEST_LEN);
    r->has_key = 1;
}

const char *kw_ks_audit_result_name(uint8_t result)
{
    if (result == 0)
        return "ok";
    if (result == KW_ERR_NOT_AUTHORISED)
        return "denied";
    return kw_remote_error_name(result);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c < 0xC2 || c > 0xF4 || len > n)
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Appends s as a JSON string (quotes included) to out, writing no further than stop (the closing
 * quote always fits: the content is cut, never an escape). Invalid UTF-8 becomes U+FFFD. */
static void json_str(char *out, size_t *pos, size_t stop, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t p = *pos;
    out[p++] = '"';
    for (size_t i = 0; i < len;) {
        char esc[8];
        const char *piece = esc;
        size_t out_n = 1; /* bytes written */
        size_t used = 1;  /* bytes of s consumed */
        if (u[i] == '"' || u[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)u[i];
            out_n = 2;
        } else if (u[i] < 0x20 || u[i] == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
            out_n = 6;
        } else if (u[i] < 0x80) {
            esc[0] = (char)u[i];
        } else {
            used = utf8_seq(u + i, len - i);
            piece = used > 0 ? s + i : "\\ufffd";
            out_n = used > 0 ? used : 6;
            used = used > 0 ? used : 1;
        }
        if (p + out_n + 1 > stop)
            break;
        memcpy(out + p, piece, out_n);
        p += out_n;
        i += used;
    }
    out[p++] = '"';
    *pos = p;
}

/* Appends printf output, cut at cap - 1. */
static void put(char *out, size_t *pos, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *out, size_t *pos, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (*pos >= cap - 1)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(out + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos += (size_t)n < cap - *pos ? (size_t)n : cap - *pos - 1;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* "2026-11-24T16:24:38.431Z" of a Unix time in ms. */
static void format_time(int64_t wall_ms, char *out, size_t cap)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    char when[32] = "1970-01-01T00:00:00";
    if (gmtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", when, (int)(wall_ms % 1000));
}

size_t kw_ks_audit_format(const kw_ks_audit_rec_t *r, const char *edge, uint8_t result,
                          uint64_t now_ns, char *out, size_t cap)
{
    char when[40];
    char ip[INET6_ADDRSTRLEN] = "";
    char key[2 * KW_DIGEST_LEN + 1] = "";
    size_t pos = 0;
    format_time(r->wall_ms, when, sizeof(when));
    if (r->ip_len > 0)
        inet_ntop(r->ip_len == 4 ? AF_INET : AF_INET6, r->ip, ip, sizeof(ip));
    if (r->has_key)
        kw_hex_encode(r->digest, KW_DIGEST_LEN, key);
    uint64_t lat = now_ns > r->start_ns ? (now_ns - r->start_ns) / 1000u : 0;
    put(out, &pos, cap, "{\"time\":\"%s\",\"edge\":", when);
    json_str(out, &pos, min_size(cap - 400, pos + 1024), edge != NULL ? edge : "",
             edge != NULL ? strlen(edge) : 0);
    put(out, &pos, cap, ",\"client_ip\":\"%s\",\"sni\":", ip);
    json_str(out, &pos, min_size(cap - 300, pos + 1600), r->sni, r->sni_len);
    put(out, &pos, cap,
        ",\"key\":\"%s\",\"opcode\":\"%s\",\"result\":\"%s\",\"latency_us\":%llu}\n", key,
        kw_opcode_name(r->opcode), kw_ks_audit_result_name(result), (unsigned long long)lat);
    return pos;
}

size_t kw_ks_audit_format_reload(int64_t wall_ms, const char *part, const char *result, char *out,
                                 size_t cap)
{
    char when[40];
    size_t pos = 0;
    format_time(wall_ms, when, sizeof(when));
    put(out, &pos, cap, "{\"time\":\"%s\",\"event\":\"reload\",\"part\":", when);
    json_str(out, &pos, cap - 32, part, strlen(part));
    put(out, &pos, cap, ",\"result\":");
    json_str(out, &pos, cap - 8, result, strlen(result));
    put(out, &pos, cap, "}\n");
    return pos;
}

static void append_line(kw_ks_audit_t *a, const char *line, size_t n);

void kw_ks_audit_reload(kw_ks_audit_t *a, const char *part, const char *result)
{
    char line[512];
    if (a == NULL)
        return;
    append_line(a, line,
                kw_ks_audit_format_reload(wall_ms_now(), part, result, line, sizeof(line)));
    kw_ks_audit_sync(a);
}

void kw_ks_audit_log(kw_ks_audit_t *a, const kw_ks_audit_rec_t *r, const char *edge, uint8_t result)
{
    char line[KW_AUDIT_LINE_MAX];
    if (a == NULL)
        return;
    append_line(a, line, kw_ks_audit_format(r, edge, result, kw_clock_ns(), line, sizeof(line)));
}

/* Appends one formatted line to the buffer (writing the buffer first when it would overflow). */
static void append_line(kw_ks_audit_t *a, const char *line, size_t n)
{
    pthread_mutex_lock(&a->lock);
    if (a->len + n > KW_AUDIT_BUFFER_MAX) { /* write what is there rather than lose a line */
        pthread_mutex_unlock(&a->lock);
        kw_ks_audit_sync(a);
        pthread_mutex_lock(&a->lock);
    }
    if (a->len + n > KW_AUDIT_BUFFER_MAX) {
        a->dropped++;
    } else {
        memcpy(a->buf + a->len, line, n);
        a->len += n;
    }
    if (a->len >= KW_AUDIT_WAKE && !a->woken) {
        a->woken = 1;
        pthread_cond_signal(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
}

/* ---- the writer thread ---- */

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Writes all of buf; returns 0 or errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void writer_reopen(kw_ks_audit_t *a)
{
    int fd = open_log(a->path);
    if (fd < 0) {
        kw_warn("audit log %s: cannot reopen (%s); still writing to the old file", a->path,
                strerror(errno));
        return;
    }
    close(a->fd);
    a->fd = fd;
    kw_info("audit log %s reopened", a->path);
}

/* Writes one swapped-out buffer and reports drops and errors (under write_lock, outside lock). */
static void writer_flush(kw_ks_audit_t *a, const char *buf, size_t len, uint64_t dropped)
{
    if (len > 0) {
        int e = write_all(a->fd, buf, len);
        if (e == 0 && a->fsync && fdatasync(a->fd) != 0)
            e = errno;
        if (e != 0 && !a->failing)
            kw_warn("audit log %s: write failed (%s); lines are lost until it works again", a->path,
                    strerror(e));
        else if (e == 0 && a->failing)
            kw_info("audit log %s: writing again", a->path);
        a->failing = e != 0;
    }
    if (dropped > 0)
        kw_warn("audit log %s: %llu line(s) dropped: the buffer (%d bytes) was full, the disk "
                "is too slow or stalled",
                a->path, (unsigned long long)dropped, KW_AUDIT_BUFFER_MAX);
}

/* Swaps the buffers and writes what was logged (and reopens first when asked). Takes write_lock
 * and lock itself. Returns 1 when a stop was asked. */
static int swap_and_write(kw_ks_audit_t *a)
{
    pthread_mutex_lock(&a->write_lock);
    pthread_mutex_lock(&a->lock);
    char *mine = a->buf;
    size_t len = a->len;
    a->buf = a->spare;
    a->spare = mine;
    a->len = 0;
    a->woken = 0;
    uint64_t dropped = a->dropped - a->reported;
    a->reported = a->dropped;
    int stop = a->stop;
    int reopen = a->reopen;
    a->reopen = 0;
    pthread_mutex_unlock(&a->lock);
    if (reopen)
        writer_reopen(a);
    writer_flush(a, mine, len, dropped);
    pthread_mutex_unlock(&a->write_lock);
    return stop;
}

void kw_ks_audit_sync(kw_ks_audit_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    int idle = a->len == 0 && a->dropped == a->reported && !a->reopen;
    pthread_mutex_unlock(&a->lock);
    if (!idle)
        (void)swap_and_write(a);
}

static void *writer_main(void *arg)
{
    kw_ks_audit_t *a = arg;
    for (;;) {
        pthread_mutex_lock(&a->lock);
        if (!a->stop && !a->woken) {
            struct timespec deadline;
            kw_clock_deadline(&deadline, KW_AUDIT_FLUSH_MS);
            pthread_cond_timedwait(&a->cond, &a->lock, &deadline);
        }
        pthread_mutex_unlock(&a->lock);
        if (swap_and_write(a))
            break;
    }
    return NULL;
}

/* ---- lifetime ---- */

static void audit_free(kw_ks_audit_t *a)
{
    if (a->fd >= 0)
        close(a->fd);
    free(a->buf);
    free(a->spare);
    free(a->path);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->write_lock);
    free(a);
}

static int audit_sync_init(kw_ks_audit_t *a)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return KW_ENOMEM;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&a->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return KW_ENOMEM;
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        pthread_cond_destroy(&a->cond);
        return KW_ENOMEM;
    }
    if (pthread_mutex_init(&a->write_lock, NULL) != 0) {
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->cond);
        return KW_ENOMEM;
    }
    return 0;
}

int kw_ks_audit_open(const char *path, int fsync, kw_ks_audit_t **out, char *err, size_t errlen)
{
    *out = NULL;
    kw_ks_audit_t *a = calloc(1, sizeof(*a));
    if (a == NULL || audit_sync_init(a) != 0) {
        free(a);
        snprintf(err, errlen, "out of memory opening the audit log");
        return KW_ENOMEM;
    }
    a->fd = open_log(path);
    if (a->fd < 0) {
        snprintf(err, errlen,
                 "cannot open the audit log %s: %s (check --audit-log and the "
                 "directory's permissions)",
                 path, strerror(errno));
        audit_free(a);
        return KW_EIO;
    }
    a->fsync = fsync != 0;
    a->buf = malloc(KW_AUDIT_BUFFER_MAX);
    a->spare = malloc(KW_AUDIT_BUFFER_MAX);
    a->path = strdup(path);
    if (a->buf == NULL || a->spare == NULL || a->path == NULL ||
        pthread_create(&a->thread, NULL, writer_main, a) != 0) {
        snprintf(err, errlen, "cannot start the audit log writer (out of memory)");
        audit_free(a);
        return KW_ENOMEM;
    }
    *out = a;
    return 0;
}

void kw_ks_audit_close(kw_ks_audit_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    audit_free(a);
}

void kw_ks_audit_reopen(kw_ks_audit_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->reopen = 1;
    a->woken = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

uint64_t kw_ks_audit_dropped(kw_ks_audit_t *a)
{
    pthread_mutex_lock(&a->lock);
    uint64_t n = a->dropped;
    pthread_mutex_unlock(&a->lock);
    return n;
}
