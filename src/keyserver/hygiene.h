/*
 * Key hygiene of the key server process: no core dumps and no ptrace by other processes of the
 * same user (PR_SET_DUMPABLE 0, RLIMIT_CORE 0), private key material in OpenSSL's secure heap
 * (mlock'ed, MADV_DONTDUMP, cleansed on free), and dropping root after the listener is bound and
 * the keys are loaded (--user NAME).
 *
 * Order in main: kw_ks_hygiene_secure_heap (before any key is loaded), load keys, bind,
 * kw_ks_hygiene_drop_privileges (when asked), kw_ks_hygiene_no_dumps (after the uid change,
 * which resets the dumpable flag).
 */
#ifndef KW_KS_HYGIENE_H
#define KW_KS_HYGIENE_H

#include <stddef.h>

/* Number of "*.key" files in dir (NULL: 0), to size the secure heap before loading them. */
size_t kw_ks_hygiene_count_keys(const char *dir);

/*
 * Starts OpenSSL's secure heap sized for nkeys private keys (a power of two, at least 1 MiB),
 * so the bignums of RSA/EC keys and Ed25519 key bytes decoded afterwards live in locked,
 * non-dumpable memory. Returns 0 (locked), 1 (heap started but mlock failed, e.g.
 * RLIMIT_MEMLOCK: a warning is logged) or a negative KW_E* (not started: warning logged).
 */
int kw_ks_hygiene_secure_heap(size_t nkeys);

/* PR_SET_DUMPABLE 0 and RLIMIT_CORE 0. Returns 0 or KW_EIO (with a warning logged). */
int kw_ks_hygiene_no_dumps(void);

/*
 * Becomes user (name or numeric uid) with its primary group and no supplementary groups, then
 * checks that root cannot be regained. Returns 0, or KW_EINVAL (unknown user) / KW_EIO with the
 * reason in err; the caller must exit on failure.
 */
int kw_ks_hygiene_drop_privileges(const char *user, char *err, size_t errlen);

#endif /* KW_KS_HYGIENE_H */
