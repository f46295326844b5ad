/*
 * Key hygiene of the key server process: no core dumps and no ptrace by other processes of the
 * same user (PR_SET_DUMPABLE 0, RLIMIT_CORE 0), private key material in OpenSSL's secure heap
 * (mlock'ed, MADV_DONTDUMP, cleansed on free) and RSA keys that keep p and q there during
 * operations too (hygiene_rsa.c), and dropping root after the listener is bound and
 * the keys are loaded (--user NAME).
 *
 * Order in main: kw_ks_hygiene_no_dumps, kw_ks_hygiene_secure_heap (both before any key or PIN
 * is read), load keys, bind, kw_ks_hygiene_drop_privileges (when asked), kw_ks_hygiene_no_dumps
 * again (the uid change resets the dumpable flag). Key files readable by group or others are
 * warned about as they are loaded (kw_ks_hygiene_check_key_file), and so is running as root
 * without --user (kw_ks_hygiene_warn_root).
 */
#ifndef KW_KS_HYGIENE_H
#define KW_KS_HYGIENE_H

#include <stddef.h>

#include <openssl/evp.h>

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
 * Replaces the RSA private key *pkey (decoded by the default provider) with an equivalent key whose
 * operations never cache p and q outside the secure heap (hygiene_rsa.c), unless
 * kw_ks_hygiene_rsa_cache_factors(1) was called. Other key types are left alone. Call it once the
 * key is otherwise checked: comparing the new key with a provider key (EVP_PKEY_eq) would export
 * a copy into ordinary memory. Returns 0 or KW_ECRYPTO (*pkey unchanged).
 */
int kw_ks_hygiene_rsa_uncached(EVP_PKEY **pkey);

/* on = 1: leave RSA keys as decoded (faster, p and q cached in ordinary memory). Default 0. */
void kw_ks_hygiene_rsa_cache_factors(int on);

/* Frees what kw_ks_hygiene_rsa_uncached keeps (after every key store is freed). */
void kw_ks_hygiene_rsa_cleanup(void);

/* Warns when the process runs as root and user (--user) is NULL: it will keep root. */
void kw_ks_hygiene_warn_root(const char *user);

/*
 * Warns when the open key file fd (path, for the message) is readable or writable by group or
 * others. Returns 1 when it warned, 0 when the mode is fine (or fstat failed, also logged).
 */
int kw_ks_hygiene_check_key_file(int fd, const char *path);

/*
 * Becomes user (name or numeric uid) with its primary group and no supplementary groups, then
 * checks that root cannot be regained. Returns 0, or KW_EINVAL (unknown user) / KW_EIO with the
 * reason in err; the caller must exit on failure.
 */
int kw_ks_hygiene_drop_privileges(const char *user, char *err, size_t errlen);

#endif /* KW_KS_HYGIENE_H */
