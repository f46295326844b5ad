/*
 * --pid-file FILE: the key server's pid, written once it listens and removed at exit, so an
 * operator signals this key server (kill -HUP "$(cat FILE)") and not every one on the host.
 * The flag belongs to main (a process matter, not a setting): it is taken out of argv before the
 * configuration is parsed, so SIGHUP's re-read of the flags never sees it.
 */
#ifndef KW_KS_PIDFILE_H
#define KW_KS_PIDFILE_H

#include <stddef.h>

/* Removes "--pid-file FILE" / "--pid-file=FILE" (the last one wins) from argv, before any "--",
 * updating *argc; *path is FILE or NULL. Returns 0, or -1 with err when the value is missing. */
int kw_ks_pidfile_take(int *argc, char **argv, const char **path, char *err, size_t errlen);

/* Writes this process's pid and a newline to path. Returns 0, or -1 with err naming the file. */
int kw_ks_pidfile_write(const char *path, char *err, size_t errlen);

/* Removes path if it still holds this process's pid (a newer instance may have replaced it). */
void kw_ks_pidfile_remove(const char *path);

#endif /* KW_KS_PIDFILE_H */
