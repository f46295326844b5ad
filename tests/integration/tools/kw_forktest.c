/*
 * kw_forktest: fork safety of the libkeyward client, the way nginx uses it (keys loaded and the
 * client used in the master, then workers forked).
 *   kw_forktest --server HOST:PORT --cert F --key F --ca F --key-cert SITE_EC.crt
 *               [--children N] [--threads T] [--requests R]
 * The parent uses the client, then keeps a thread sending requests while it forks N children
 * (so fork() lands while the I/O thread is busy). Each child checks that it holds none of the
 * parent's sockets, then runs T threads of R requests each (pings with unique payloads that must
 * echo back, and ECDSA signatures over unique digests verified with the certificate's key); child
 * 0 also forks a grandchild that does the same. The parent then checks that its own connection
 * still works (a child that had touched the parent's TLS state would have broken it).
 * --calm-fork: fork only while no thread of the test itself is running (the client's I/O thread
 * still is). For sanitizer builds: GCC 12's ASan allocator is not fork-safe (it gained
 * pthread_atfork handlers only in LLVM 18), so a child forked while another thread is inside
 * malloc can deadlock in ASan's own lock. The client's I/O thread is never inside malloc at fork()
 * (the client's atfork handler waits for it to reach epoll_wait).
 * Prints "ok: ..." lines; exits 0 only if every request of every process succeeded.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_tool.h"

#define USAGE                                                                                      \
    "kw_forktest --server S --cert F --key F --ca F --key-cert EC.crt [--children N<=256] "        \
    "[--threads T] [--requests R] [--calm-fork]"

static kw_client_t *client;
static EVP_PKEY *site_pub;
static uint8_t site_id[KW_DIGEST_LEN];
static unsigned n_threads = 4;
static unsigned n_requests = 200;
static int calm_fork;
static atomic_int stop_bg;
static atomic_ulong bg_ok;
static atomic_ulong bg_fail;

/* One ping whose payload must come back unchanged. */
static int do_ping(unsigned tag, unsigned seq)
{
    char p[48];
    uint8_t out[64];
    size_t len = 0;
    kw_msg_t m;
    int n = snprintf(p, sizeof(p), "pid %d tag %u seq %u", (int)getpid(), tag, seq);
    memset(&m, 0, sizeof(m));
    m.opcode = KW_OP_PING;
    m.has_opcode = 1;
    m.payload = kw_bytes(p, (size_t)n);
    int rc = kw_client_call(client, &m, out, sizeof(out), &len, NULL);
    if (rc != 0 || len != (size_t)n || memcmp(out, p, len) != 0) {
        fprintf(stderr, "pid %d: ping failed: %s\n", (int)getpid(), kw_strerror(rc));
        return -1;
    }
    return 0;
}

/* An ECDSA signature over a unique digest, verified locally. */
static int do_sign(unsigned tag, unsigned seq)
{
    uint8_t dgst[32];
    uint8_t sig[256];
    size_t len = 0;
    uint8_t remote = 0;
    char text[64];
    kw_msg_t m;
    int n = snprintf(text, sizeof(text), "sign %d %u %u", (int)getpid(), tag, seq);
    EVP_Digest(text, (size_t)n, dgst, NULL, EVP_sha256(), NULL);
    kw_tool_sign_msg(&m, KW_OP_ECDSA_SIGN_SHA256, site_id, dgst);
    int rc = kw_client_call(client, &m, sig, sizeof(sig), &len, &remote);
    if (rc != 0) {
        fprintf(stderr, "pid %d: sign failed: %s (remote 0x%02x)\n", (int)getpid(), kw_strerror(rc),
                remote);
        return -1;
    }
    int ok = kw_tool_verify(site_pub, sig, len, dgst, sizeof(dgst));
    if (!ok)
        fprintf(stderr, "pid %d: signature does not verify (reply mixed up?)\n", (int)getpid());
    return ok ? 0 : -1;
}

static void *worker(void *arg)
{
    unsigned tag = (unsigned)(uintptr_t)arg;
    uintptr_t fails = 0;
    for (unsigned i = 0; i < n_requests; i++)
        fails += (uintptr_t)((i % 2 == 0 ? do_ping(tag, i) : do_sign(tag, i)) != 0);
    return (void *)fails;
}

static void *background(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !atomic_load(&stop_bg); i++) {
        if (do_ping(9999, i) == 0)
            atomic_fetch_add(&bg_ok, 1);
        else
            atomic_fetch_add(&bg_fail, 1);
    }
    return NULL;
}

/* Number of sockets this process has open. */
static int count_sockets(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (d == NULL)
        return -1;
    for (e = readdir(d); e != NULL; e = readdir(d)) {
        char link[64];
        char path[300];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len > 0) {
            link[len] = '\0';
            n += strncmp(link, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

/* The work of one forked process; returns its exit status. */
static int child_run(unsigned index, int depth);

static pid_t spawn(unsigned index, int depth)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_run(index, depth));
    return pid;
}

static int reap(pid_t pid, const char *what)
{
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s (pid %d) failed (status 0x%x)\n", what, (int)pid, st);
        return -1;
    }
    return 0;
}

static int child_run(unsigned index, int depth)
{
    int socks = count_sockets();
    if (socks != 0) {
        fprintf(stderr, "child %u: %d of the parent's sockets still open\n", index, socks);
        return 1;
    }
    pthread_t t[64];
    uintptr_t fails = 0;
    unsigned nt = n_threads > 64 ? 64 : n_threads;
    for (unsigned i = 0; i < nt; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(index * 100 + i));
    pid_t grandchild = -1;
    if (index == 0 && depth == 0 && !calm_fork)
        grandchild = spawn(1000, 1); /* fork again while this child's threads are busy */
    for (unsigned i = 0; i < nt; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        fails += (uintptr_t)r;
    }
    if (index == 0 && depth == 0 && calm_fork)
        grandchild = spawn(1000, 1);
    if (grandchild > 0 && reap(grandchild, "grandchild") != 0)
        fails++;
    if (fails > 0)
        fprintf(stderr, "child %u: %lu requests failed\n", index, (unsigned long)fails);
    kw_client_free(client);
    return fails == 0 ? 0 : 1;
}

static int parent_run(unsigned children)
{
    pid_t pids[256];
    pthread_t bg;
    int failed = 0;
    for (unsigned i = 0; i < 20; i++)
        failed |= do_ping(0, i) | do_sign(0, i);
    if (failed)
        return 1;
    printf("ok: parent used the client before forking\n");
    if (!calm_fork) {
        pthread_create(&bg, NULL, background, NULL);
        usleep(20000);
    }
    for (unsigned i = 0; i < children; i++)
        pids[i] = spawn(i, 0);
    if (calm_fork)
        pthread_create(&bg, NULL, background, NULL);
    for (unsigned i = 0; i < children; i++)
        failed |= reap(pids[i], "child");
    if (!failed)
        printf("ok: %u children (+1 grandchild) x %u threads x %u requests, all verified\n",
               children, n_threads, n_requests);
    atomic_store(&stop_bg, 1);
    pthread_join(bg, NULL);
    for (unsigned i = 0; i < 50; i++)
        failed |= do_ping(1, i) | do_sign(1, i);
    if (atomic_load(&bg_fail) > 0 || failed) {
        fprintf(stderr, "parent: %lu background failures\n", atomic_load(&bg_fail));
        return 1;
    }
    printf("ok: parent kept working during and after the forks (%lu background requests)\n",
           atomic_load(&bg_ok));
    return 0;
}

int main(int argc, char **argv)
{
    kw_tool_opts_t t = {0};
    unsigned children = 4;
    const kw_tool_arg_t args[] = {
        {"children", .u = &children},
        {"threads", .u = &n_threads},
        {"requests", .u = &n_requests},
        {"calm-fork", .flag = &calm_fork},
        {.name = NULL},
    };
    kw_tool_parse(argc, argv, args, &t, USAGE);
    site_pub = t.key_cert != NULL ? kw_tool_cert_key(t.key_cert, site_id) : NULL;
    if (site_pub == NULL || children == 0 || children > 256) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 2;
    }
    if (kw_tool_client_new(&t, 0, &client) != 0)
        return 1;
    int status = parent_run(children);
    kw_client_free(client);
    EVP_PKEY_free(site_pub);
    return status;
}
