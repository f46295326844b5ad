/*
 * Logging to stderr: one line per event with a UTC timestamp, the level and the program name.
 * The level threshold is set once at start (KW_LOG_LEVEL env or a program's flag).
 */
#ifndef KW_LOG_H
#define KW_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kw_log_level {
    KW_LOG_DEBUG = 0,
    KW_LOG_INFO = 1,
    KW_LOG_WARN = 2,
    KW_LOG_ERROR = 3,
} kw_log_level_t;

/* Sets the program name and threshold; call from main before threads start. */
void kw_log_init(const char *program, kw_log_level_t threshold);

void kw_log(kw_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kw_debug(...) kw_log(KW_LOG_DEBUG, __VA_ARGS__)
#define kw_info(...)  kw_log(KW_LOG_INFO, __VA_ARGS__)
#define kw_warn(...)  kw_log(KW_LOG_WARN, __VA_ARGS__)
#define kw_error(...) kw_log(KW_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* KW_LOG_H */
