/*
 * Key hygiene: core dumps off, private keys in OpenSSL's secure heap, privilege drop. See
 * hygiene.h for the order in which main calls these.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
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

#define KW_SECURE_HEAP_MIN     (1u << 20)
#define KW_SECURE_HEAP_MAX     (1u << 30)
#define KW_SECURE_HEAP_PER_KEY (64u << 10) /* an RSA-4096 key's bignums with room to spare */

size_t kw_ks_hygiene_count_keys(const char *dir)
{
    size_t n = 0;
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".key") == 0)
            n++;
    }
    closedir(d);
    return n;
}

int kw_ks_hygiene_secure_heap(size_t nkeys)
{
    size_t size = KW_SECURE_HEAP_MIN;
    while (size < KW_SECURE_HEAP_MAX && size / KW_SECURE_HEAP_PER_KEY < nkeys + 4)
        size *= 2;
    int rc = CRYPTO_secure_malloc_init(size, 16);
    if (rc == 0) {
        kw_warn("cannot start OpenSSL's secure heap (%zu KiB): private keys stay in ordinary "
                "memory",
                size >> 10);
        return KW_ENOMEM;
    }
    if (rc == 2) {
        kw_warn("secure heap of %zu KiB could not be locked in memory (raise RLIMIT_MEMLOCK, "
                "e.g. LimitMEMLOCK= in systemd): keys may be swapped out",
                size >> 10);
        return 1;
    }
    kw_debug("secure heap: %zu KiB, locked, excluded from core dumps", size >> 10);
    return 0;
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

int kw_ks_hygiene_check_key_file(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        kw_warn("cannot stat key file %s: %s", path, strerror(errno));
        return 0;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
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
        char *end = NULL;
        unsigned long v = strtoul(user, &end, 10);
        if (*user != '\0' && *end == '\0')
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
