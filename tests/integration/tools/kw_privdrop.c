/*
 * kw_privdrop: a key user deployed as Debian runs servers (DESIGN.md §6): set up as root, then
 * fork a worker that drops to nobody/nogroup (and, with --nproc0, may not create threads, as
 * HAProxy's workers), and sign there.
 *   kw_privdrop --server S --cert F --key F --ca F --key-cert SITE.crt [--requests N]
 *               [--provider STUB] [--nproc0] [--drop-first] [--use-before-fork]
 * Without --provider: a libkeyward client made with kw_client_new in the parent; the child signs
 * with kw_client_call and with kw_client_submit + kw_request_wait (ECDSA or RSA PKCS#1 SHA-256
 * by the certificate's key type), each signature verified with the certificate's key.
 * With --provider: OPENSSL_CONF's keyward provider is configured in the parent (as root) and the
 * stub STUB loaded there (PEM_read_bio_PrivateKey, as nginx does); the child signs through it
 * with EVP_DigestSign.
 * --use-before-fork: the parent signs once before forking. --pause-ms N: wait N ms between
 * requests (idle connections); "stats:" lines give the client's per-server counters. --drop-first:
 * drop privileges before anything else (no fork): a server misconfigured to read its credentials as
 * the worker user; the tool then prints what went wrong, for the tests to check the messages. The
 * child checks that it really cannot open --key (else the test proves nothing) and, with
 * --nproc0, that pthread_create fails; then (client, --nproc0) that an asynchronous caller is
 * told why: kw_request_notify returns KW_ETHREAD, kw_request_fd fails the request with it. Prints
 * "ok: ..." lines; exit 0 when every request worked, 1 when one failed (errors on stderr), 2 on bad
 * usage or a setup the test cannot trust.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_tool.h"

#define NOBODY 65534

static kw_tool_opts_t opts;
static const char *stub_path;
static unsigned n_requests = 10;
static int nproc0;
static int drop_first;
static int use_before_fork;
static unsigned pause_ms;
static kw_client_t *client;
static EVP_PKEY *site_pub;
static EVP_PKEY *stub_key;
static uint8_t site_id[KW_DIGEST_LEN];

static void *noop(void *arg)
{
    return arg;
}

/* Becomes nobody/nogroup; with nproc0 also without the right to create threads. */
static int drop_privileges(void)
{
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
        fprintf(stderr, "cannot drop privileges: %s\n", strerror(errno));
        return -1;
    }
    int fd = open(opts.key, O_RDONLY);
    if (fd >= 0) {
        close(fd);
        fprintf(stderr, "as nobody, %s is still readable: make it root-only (0600)\n", opts.key);
        return -1;
    }
    printf("ok: running as nobody; %s is unreadable (%s)\n", opts.key, strerror(errno));
    if (nproc0) {
        struct rlimit rl = {0, 0};
        pthread_t t;
        if (setrlimit(RLIMIT_NPROC, &rl) != 0) {
            fprintf(stderr, "setrlimit(RLIMIT_NPROC, 0): %s\n", strerror(errno));
            return -1;
        }
        int rc = pthread_create(&t, NULL, noop, NULL);
        if (rc == 0) {
            pthread_join(t, NULL);
            fprintf(stderr, "RLIMIT_NPROC 0 did not stop pthread_create\n");
            return -1;
        }
        printf("ok: RLIMIT_NPROC 0: pthread_create fails (%s)\n", strerror(rc));
    }
    return 0;
}

static int is_rsa(void)
{
    return EVP_PKEY_is_a(site_pub, "RSA");
}

/* One signature through the client (blocking call, or submit + wait), verified. */
static int client_sign(unsigned seq)
{
    uint8_t dgst[32];
    uint8_t sig[1024];
    size_t len = 0;
    uint8_t remote = 0;
    char text[64];
    kw_msg_t m;
    int n = snprintf(text, sizeof(text), "privdrop %d %u", (int)getpid(), seq);
    EVP_Digest(text, (size_t)n, dgst, NULL, EVP_sha256(), NULL);
    kw_tool_sign_msg(&m, is_rsa() ? KW_OP_RSA_SIGN_SHA256 : KW_OP_ECDSA_SIGN_SHA256, site_id, dgst);
    int rc;
    if (seq % 2 == 0) {
        rc = kw_client_call(client, &m, sig, sizeof(sig), &len, &remote);
    } else {
        kw_request_t *r = NULL;
        const uint8_t *p = NULL;
        rc = kw_client_submit(client, &m, &r);
        if (rc == 0) {
            kw_request_wait(r);
            rc = kw_request_result(r, &p, &len, &remote);
            if (rc == 0 && len <= sizeof(sig))
                memcpy(sig, p, len);
        }
        kw_request_free(r);
    }
    if (rc != 0) {
        char last[512];
        kw_client_last_error(client, last, sizeof(last));
        fprintf(stderr, "sign failed: %s (remote 0x%02x); last error: %s\n", kw_strerror(rc),
                remote, last);
        return -1;
    }
    if (!kw_tool_verify(site_pub, sig, len, dgst, sizeof(dgst))) {
        fprintf(stderr, "signature does not verify\n");
        return -1;
    }
    return 0;
}

/* One signature through the provider's key, verified. */
static int provider_sign(unsigned seq)
{
    char text[64];
    uint8_t sig[1024];
    size_t len = sizeof(sig);
    int n = snprintf(text, sizeof(text), "privdrop provider %d %u", (int)getpid(), seq);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, stub_key) == 1 &&
             EVP_DigestSign(md, sig, &len, (const uint8_t *)text, (size_t)n) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        fprintf(stderr, "provider signature failed:\n");
        ERR_print_errors_fp(stderr);
        return -1;
    }
    md = EVP_MD_CTX_new();
    ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, site_pub) == 1 &&
         EVP_DigestVerify(md, sig, len, (const uint8_t *)text, (size_t)n) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        fprintf(stderr, "provider signature does not verify\n");
    if (ERR_peek_error() != 0) {
        fprintf(stderr, "errors left in OpenSSL's queue:\n");
        ERR_print_errors_fp(stderr);
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* Without threads: an asynchronous caller is told why (KW_ETHREAD and the errno), the request it
 * asked about still completes for a blocking wait (notify), or fails with that reason (fd). */
static int async_refused(void)
{
    kw_msg_t m;
    kw_request_t *r = NULL;
    char last[512];
    int efd = eventfd(0, EFD_CLOEXEC);
    memset(&m, 0, sizeof(m));
    m.opcode = KW_OP_PING;
    m.has_opcode = 1;
    m.payload = kw_bytes("async", 5);
    /* kw_request_notify: refused with KW_ETHREAD; the request is still the caller's to wait for */
    if (efd < 0 || kw_client_submit(client, &m, &r) != 0)
        return -1;
    int rc = kw_request_notify(r, efd);
    kw_client_last_error(client, last, sizeof(last));
    kw_request_wait(r);
    int res = kw_request_result(r, NULL, NULL, NULL);
    kw_request_free(r);
    int ok = rc == KW_ETHREAD && res == 0 &&
             strstr(last, "cannot start the key-server I/O thread: Resource temporarily "
                          "unavailable (RLIMIT_NPROC?)") != NULL;
    /* kw_request_fd: nobody would complete it, so it fails now with that reason */
    int res2 = -1;
    if (ok && kw_client_submit(client, &m, &r) == 0) {
        struct pollfd p = {.fd = kw_request_fd(r), .events = POLLIN, .revents = 0};
        if (poll(&p, 1, 3000) == 1 && kw_request_done(r))
            res2 = kw_request_result(r, NULL, NULL, NULL);
        kw_request_free(r);
    }
    close(efd);
    if (!ok || res2 != KW_ETHREAD) {
        fprintf(stderr,
                "async caller without threads: notify %d, then %d; fd %d; last error '%s'\n", rc,
                res, res2, last);
        return -1;
    }
    printf("ok: an async caller is told: %s\n", last);
    return 0;
}

static int sign_all(const char *who)
{
    unsigned failed = 0;
    double worst = 0;
    for (unsigned i = 0; i < n_requests; i++) {
        if (pause_ms > 0 && i > 0)
            usleep(pause_ms * 1000u);
        double t0 = kw_tool_now();
        failed += (stub_path != NULL ? provider_sign(i) : client_sign(i)) != 0;
        if (kw_tool_now() - t0 > worst)
            worst = kw_tool_now() - t0;
    }
    if (failed > 0) {
        fprintf(stderr, "%s: %u of %u signatures failed\n", who, failed, n_requests);
        return 1;
    }
    printf("ok: %s: %u signatures verified (slowest %.1f ms)\n", who, n_requests, worst * 1e3);
    if (client != NULL) {
        kw_server_stats_t st[4];
        size_t n = kw_client_stats(client, st, 4);
        for (size_t i = 0; i < n && i < 4; i++)
            printf("stats: %s up %d completed %llu failures %llu\n", st[i].address, st[i].up,
                   (unsigned long long)st[i].completed, (unsigned long long)st[i].failures);
    }
    return 0;
}

/* The parent's set-up, as root: the client or the provider and its key. */
static int setup(void)
{
    if (stub_path == NULL)
        return kw_tool_client_new(&opts, 3000, &client);
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1) {
        fprintf(stderr, "loading OPENSSL_CONF failed:\n");
        ERR_print_errors_fp(stderr);
        return -1;
    }
    BIO *in = BIO_new_file(stub_path, "r");
    stub_key = in != NULL ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (stub_key == NULL) {
        fprintf(stderr, "loading the stub %s failed:\n", stub_path);
        ERR_print_errors_fp(stderr);
        return -1;
    }
    ERR_clear_error();
    return 0;
}

static int parse_args(int argc, char **argv)
{
    const kw_tool_arg_t args[] = {
        {"requests", .u = &n_requests},
        {"provider", .s = &stub_path},
        {"nproc0", .flag = &nproc0},
        {"drop-first", .flag = &drop_first},
        {"use-before-fork", .flag = &use_before_fork},
        {"pause-ms", .u = &pause_ms},
        {.name = NULL},
    };
    kw_tool_parse(argc, argv, args, &opts, "see the comment atop " __FILE__);
    return opts.key_cert != NULL && opts.key != NULL && n_requests > 0 ? 0 : -1;
}

/* The site certificate's key (the first use of OpenSSL, which loads OPENSSL_CONF). */
static int load_site_cert(void)
{
    site_pub = kw_tool_cert_key(opts.key_cert, site_id);
    if (site_pub == NULL)
        fprintf(stderr, "cannot read the certificate %s\n", opts.key_cert);
    return site_pub != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        fprintf(stderr, "usage: see the comment atop %s\n", __FILE__);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        fprintf(stderr, "kw_privdrop must start as root\n");
        return 2;
    }
    if (drop_first) { /* everything as the worker user (OpenSSL's configuration included): the
                         set-up itself must say what fails */
        if (drop_privileges() != 0 || load_site_cert() != 0)
            return 2;
        return setup() != 0 ? 1 : sign_all("unprivileged from the start");
    }
    if (load_site_cert() != 0 || setup() != 0)
        return 1;
    if (use_before_fork && sign_all("parent, before fork") != 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        if (drop_privileges() != 0)
            _exit(2);
        int st = sign_all("child as nobody");
        if (st == 0 && nproc0 && stub_path == NULL)
            st = async_refused() != 0 || sign_all("child as nobody, after an async caller");
        fflush(stdout);
        _exit(st);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        fprintf(stderr, "child did not exit normally (status 0x%x)\n", st);
        return 1;
    }
    kw_client_free(client);
    EVP_PKEY_free(stub_key);
    EVP_PKEY_free(site_pub);
    return WEXITSTATUS(st);
}
