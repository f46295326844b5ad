/*
 * Key hygiene: core dumps off, private keys in OpenSSL's secure heap, privilege drop. See
 * hygiene.h for the order in which main calls these.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keystore/hygiene.h"
#include "keyward/error.h"
#include "kw_log.h"
#include "kw_num.h"

#define KW_SECURE_HEAP_MIN (1u << 20)
#define KW_SECURE_HEAP_MAX (1u << 30)
/* Besides the key files' bytes: per key, the implicit-rejection secret and allocation rounding;
 * once, the transient allocations of loading (a PEM's decoded DER) and of operations in flight. */
#define KW_SECURE_HEAP_PER_KEY 64u
#define KW_SECURE_HEAP_SLACK   (256u << 10)

static size_t heap_size;               /* 0: the secure heap was not started */
static atomic_size_t refused_for_heap; /* keys not loaded since the last report: heap full */

/* Calls fn(bytes) for every "*.key" regular file of dir; returns how many. */
static size_t each_key_file(const char *dir, size_t *bytes)
{
    size_t n = 0;
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    if (d == NULL)
        return 0;
    struct dirent *de;
    for (;;) {
        de = readdir(d);
        if (de == NULL)
            break;
        size_t len = strlen(de->d_name);
        if (len <= 4 || strcmp(de->d_name + len - 4, ".key") != 0)
            continue;
        n++;
        struct stat st;
        if (bytes != NULL && fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            *bytes += (size_t)st.st_size;
    }
    closedir(d);
    return n;
}

size_t kw_ks_hygiene_count_keys(const char *dir)
{
    return each_key_file(dir, NULL);
}

size_t kw_ks_hygiene_key_bytes(const char *dir)
{
    size_t bytes = 0;
    (void)each_key_file(dir, &bytes);
    return bytes;
}

/* KW_SECURE_HEAP_MAX_KIB (rounded down to a power of two, at least 4 KiB), else 1 GiB. */
static size_t heap_cap(void)
{
    const char *env = getenv("KW_SECURE_HEAP_MAX_KIB");
    uint64_t kib = 0;
    if (kw_parse_u64(env, KW_SECURE_HEAP_MAX >> 10, &kib) != 0 || kib < 4)
        return KW_SECURE_HEAP_MAX;
    size_t cap = 4u << 10;
    while (cap * 2 <= (size_t)kib << 10)
        cap *= 2;
    return cap;
}

size_t kw_ks_hygiene_secure_heap_need(size_t nkeys, size_t key_bytes)
{
    /* A PEM file is larger than what its key occupies in the secure heap (RSA-2048: 1.7 KB of
     * PEM, 0.9 KiB of bignums; P-256: 241 bytes, 32), and a SIGHUP reload holds the old and
     * the new store at once: twice the files, plus the slack. */
    return 2 * (key_bytes + nkeys * KW_SECURE_HEAP_PER_KEY) + KW_SECURE_HEAP_SLACK;
}

size_t kw_ks_hygiene_secure_heap_size(size_t nkeys, size_t key_bytes, size_t cap)
{
    size_t need = kw_ks_hygiene_secure_heap_need(nkeys, key_bytes);
    size_t size = KW_SECURE_HEAP_MIN;
    while (size < cap && size < need)
        size *= 2;
    return size < cap ? size : cap;
}

int kw_ks_hygiene_secure_heap(size_t nkeys, size_t key_bytes)
{
    size_t cap = heap_cap();
    size_t size = kw_ks_hygiene_secure_heap_size(nkeys, key_bytes, cap);
    size_t need = kw_ks_hygiene_secure_heap_need(nkeys, key_bytes);
    if (need > size)
        kw_warn("secure heap: %zu key file(s) of %zu KiB need about %zu KiB (room for a SIGHUP "
                "reload included) but it is capped at %zu KiB: keys that do not fit are not "
                "loaded",
                nkeys, key_bytes >> 10, need >> 10, size >> 10);
    int rc = CRYPTO_secure_malloc_init(size, 16);
    if (rc == 0) {
        kw_warn("cannot start OpenSSL's secure heap (%zu KiB): private keys stay in ordinary "
                "memory",
                size >> 10);
        return KW_ENOMEM;
    }
    heap_size = size;
    if (rc == 2) {
        kw_warn("secure heap of %zu KiB could not be locked in memory (raise RLIMIT_MEMLOCK, "
                "e.g. LimitMEMLOCK= in systemd): keys may be swapped out",
                size >> 10);
        return 1;
    }
    kw_debug("secure heap: %zu KiB for %zu key file(s), locked, excluded from core dumps",
             size >> 10, nkeys);
    return 0;
}

int kw_ks_hygiene_secure_full(size_t need)
{
    if (heap_size == 0 || !CRYPTO_secure_malloc_initialized())
        return 0;
    size_t used = CRYPTO_secure_used();
    if (used + need <= heap_size)
        return 0;
    atomic_fetch_add(&refused_for_heap, 1);
    return 1;
}

size_t kw_ks_hygiene_secure_report(size_t nkeys)
{
    size_t refused = atomic_exchange(&refused_for_heap, 0);
    if (heap_size == 0)
        return refused;
    size_t used = CRYPTO_secure_used();
    if (refused > 0)
        kw_warn("secure heap full: %zu key(s) not loaded, so that no private key sits in ordinary "
                "memory; %zu of %zu KiB used by %zu key(s) (%zu bytes each on average). The heap "
                "is sized at start from the key files (about twice their size, for SIGHUP "
                "reloads): restart the key server to size it for the new keys",
                refused, used >> 10, heap_size >> 10, nkeys, nkeys ? used / nkeys : 0);
    else if (used > heap_size / 2)
        kw_warn("secure heap: %zu of %zu KiB used by %zu key(s): a SIGHUP reload, which holds "
                "the old and the new keys at once, may not fit (restart to resize)",
                used >> 10, heap_size >> 10, nkeys);
    else
        kw_debug("secure heap: %zu of %zu KiB used by %zu key(s)", used >> 10, heap_size >> 10,
                 nkeys);
    return refused;
}

int kw_ks_hygiene_no_dumps(void)
{
    struct rlimit zero = {0, 0};
    int rc = 0;
    if (setrlimit(RLIMIT_CORE, &zero) != 0) {
        kw_warn("setrlimit(RLIMIT_CORE, 0) failed: %s", strerror(errno));
        rc = KW_EIO;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        kw_warn("prctl(PR_SET_DUMPABLE, 0) failed: %s", strerror(errno));
        rc = KW_EIO;
    }
    return rc;
}

void kw_ks_hygiene_warn_root(const char *user)
{
    if (user == NULL && geteuid() == 0)
        kw_warn("running as root without --user: after the keys are loaded and the listener is "
                "bound, nothing drops root (name an unprivileged user with --user or YAML user:)");
}

/* 1 when gid is this process's effective group or one of its supplementary groups. */
static int in_group(gid_t gid)
{
    if (gid == getegid())
        return 1;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++) {
        if (groups[i] == gid)
            return 1;
    }
    return 0;
}

int kw_ks_hygiene_check_key_file(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        kw_warn("cannot stat key file %s: %s", path, strerror(errno));
        return 0;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
        return 0;
    /* Read-only for a group this process is in (the package's root:keyward 0640): what the
     * warning advises, so no warning. */
    if ((st.st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)) == 0 && in_group(st.st_gid))
        return 0;
    kw_warn("key file %s is accessible by group or others (mode %04o): chmod 600 it (or 640 "
            "for a group the key server runs as)",
            path, (unsigned)(st.st_mode & 07777));
    return 1;
}

static int lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        uint64_t v = 0;
        if (kw_parse_u64(user, UINT32_MAX, &v) == 0)
            pw = getpwuid((uid_t)v);
    }
    if (pw == NULL) {
        snprintf(err, errlen, "--user %s: no such user (create it, or name an existing one)", user);
        return KW_EINVAL;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

int kw_ks_hygiene_drop_privileges(const char *user, char *err, size_t errlen)
{
    uid_t uid;
    gid_t gid;
    int rc = lookup_user(user, &uid, &gid, err, errlen);
    if (rc != 0)
        return rc;
    if (uid == 0) {
        snprintf(err, errlen, "--user %s is root: name an unprivileged user", user);
        return KW_EINVAL;
    }
    /* Groups first: once the uid changes, the process may no longer change them. */
    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
        snprintf(err, errlen,
                 "--user %s: cannot change user/group: %s (run as root, or drop "
                 "--user)",
                 user, strerror(errno));
        return KW_EIO;
    }
    uid_t r, e, s;
    if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid || setuid(0) == 0 ||
        seteuid(0) == 0) {
        snprintf(err, errlen, "--user %s: root could be regained after the change", user);
        return KW_EIO;
    }
    kw_info("running as user %s (uid %u, gid %u)", user, (unsigned)uid, (unsigned)gid);
    return 0;
}
