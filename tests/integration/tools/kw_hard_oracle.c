/*
 * kw_hard_oracle: looks for a padding oracle in the key server's 0xA0 (TLS RSA decrypt). It
 * crafts ciphertexts with raw RSA on the site certificate's public key, in random order:
 *   valid    00 02 PS(non-zero) 00 || version 03 03 || 46 random bytes (a proper TLS PMS);
 *   badpad   one of: a random block below n, PS all zeros, 00 02 with no zero separator,
 *            a wrong block type (00 01), valid padding around a 47-byte message, valid padding
 *            with the wrong version bytes;
 * sends them one at a time over one connection and times each round trip. Every reply must be
 * 0xF0 with 48 bytes, and a valid ciphertext must decrypt to its own PMS. Implicit rejection must
 * also be deterministic and look like a PMS: an invalid ciphertext sent again gives the same
 * reply (a fresh random PMS each time would tell invalid from valid in two queries), a reply
 * starts with the ClientHello version bytes, and with --peer H:P (a second key server holding
 * the same key, e.g. one on a PKCS#11 token) every reply equals the peer's.
 * --op 0xa1 asks for master secrets instead (fixed client/server randoms, SHA-256 PRF): valid
 * ciphertexts give the master secret of their PMS, and the same checks apply (but the version
 * prefix, which the PRF hides).
 * Prints the latency statistics of both classes and Welch's t (reported, not asserted: timing on
 * a shared VM).
 * Usage: kw_hard_oracle --server H:P --cert F --key F --ca F --key-cert SITE.crt [--samples N]
 *        [--peer H:P] [--op 0xa0|0xa1]
 * Exit status: 0 replies indistinguishable, 1 usage/setup, 2 a reply differed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

#include "keyward/protocol.h"
#include "kw_tool.h"
#include "ops/ops_master.h"

#define K_MAX 512

static void die(const char *msg)
{
    ERR_print_errors_fp(stderr);
    kw_tool_die(msg);
}

static void rand_bytes(uint8_t *p, size_t n)
{
    if (RAND_bytes(p, (int)n) != 1)
        die("RAND_bytes");
}

static void nonzero_bytes(uint8_t *p, size_t n)
{
    rand_bytes(p, n);
    for (size_t i = 0; i < n; i++)
        while (p[i] == 0)
            rand_bytes(&p[i], 1);
}

/* Builds the k-byte plaintext block of a sample. kind 0 = valid (pms gets its 48 bytes). */
static void make_block(int kind, uint8_t *em, size_t k, uint8_t *pms)
{
    size_t mlen = kind == 5 ? 47 : KW_TLS_PMS_LEN;
    em[0] = 0x00;
    em[1] = 0x02;
    nonzero_bytes(em + 2, k - 3 - mlen);
    em[k - mlen - 1] = 0x00;
    rand_bytes(em + k - mlen, mlen);
    em[k - mlen] = 0x03;
    em[k - mlen + 1] = kind == 6 ? 0x01 : 0x03;
    switch (kind) {
    case 1: /* random block below n */
        rand_bytes(em, k);
        em[0] = 0x00;
        break;
    case 2: /* PS all zeros */
        memset(em + 2, 0, k - 3 - mlen);
        break;
    case 3: /* no zero separator */
        nonzero_bytes(em + 2, k - 2);
        break;
    case 4: /* block type 1 */
        em[1] = 0x01;
        break;
    default:
        break;
    }
    memcpy(pms, em + k - KW_TLS_PMS_LEN, KW_TLS_PMS_LEN);
}

static EVP_PKEY *load_pub(const char *cert, uint8_t digest[KW_DIGEST_LEN])
{
    EVP_PKEY *pub = kw_tool_cert_key(cert, digest);
    if (pub == NULL)
        die("cannot read --key-cert");
    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA)
        die("--key-cert must hold an RSA key");
    return pub;
}

static void raw_encrypt(EVP_PKEY *pub, const uint8_t *em, size_t k, uint8_t *ct)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    size_t len = K_MAX;
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) != 1 ||
        EVP_PKEY_encrypt(ctx, ct, &len, em, k) != 1 || len != k)
        die("raw RSA encryption failed");
    EVP_PKEY_CTX_free(ctx);
}

/* Fixed seeds of the 0xA1 requests. */
static const uint8_t client_random[KW_TLS_RANDOM_LEN] = "keyward oracle test client rand";
static const uint8_t server_random[KW_TLS_RANDOM_LEN] = "keyward oracle test server rand";

/* One request/reply (opcode 0xA0 or 0xA1). Returns 0 when the reply is 0xF0 with 48 bytes
 * (copied to out). */
static int round_trip(SSL *ssl, uint8_t opcode, uint32_t id, const uint8_t *digest,
                      const uint8_t *ct, size_t k, uint8_t *out)
{
    static const uint8_t version[2] = {0x03, 0x03};
    static const uint8_t prf = KW_PRF_SHA256;
    static uint8_t buf[KW_MAX_FRAME];
    kw_msg_t m = {0};
    m.id = id;
    m.has_opcode = 1;
    m.opcode = opcode;
    m.digest = kw_bytes(digest, KW_DIGEST_LEN);
    m.payload = kw_bytes(ct, k);
    m.extra = kw_bytes(version, sizeof(version));
    if (opcode == KW_OP_TLS12_MASTER) {
        m.client_random = kw_bytes(client_random, sizeof(client_random));
        m.server_random = kw_bytes(server_random, sizeof(server_random));
        m.prf_digest = kw_bytes(&prf, 1);
    }
    kw_msg_t r;
    int rc = kw_tool_call(ssl, &m, buf, &r);
    if (rc == KW_TOOL_EENCODE)
        die("encode");
    if (rc == KW_TOOL_ECLOSED)
        die("connection lost");
    if (rc != 0 || r.id != id || !r.has_opcode || r.opcode != KW_OP_RESPONSE ||
        r.payload.len != KW_TLS_PMS_LEN)
        return -1;
    memcpy(out, r.payload.ptr, KW_TLS_PMS_LEN);
    return 0;
}

/* Square root by Newton's method (tests link no libm). */
static double root(double x)
{
    if (x <= 0)
        return 0;
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 200; i++)
        r = 0.5 * (r + x / r);
    return r;
}

typedef struct stats_s {
    double sum, sumsq;
    long n;
    double *v;
} stats_t;

static void stats_add(stats_t *s, double x)
{
    s->v[s->n++] = x;
    s->sum += x;
    s->sumsq += x * x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stats_print(const char *name, stats_t *s, double *mean, double *var)
{
    *mean = s->sum / (double)s->n;
    *var = (s->sumsq - (double)s->n * *mean * *mean) / (double)(s->n - 1);
    qsort(s->v, (size_t)s->n, sizeof(double), cmp_double);
    printf("%-7s n=%ld mean=%.1f us sd=%.1f median=%.1f p10=%.1f p90=%.1f\n", name, s->n, *mean,
           root(*var), s->v[s->n / 2], s->v[s->n / 10], s->v[s->n * 9 / 10]);
}

/* What a valid ciphertext of pms must answer: the PMS itself, or (0xA1) its master secret. */
static void expected(uint8_t opcode, const uint8_t *pms, uint8_t *want)
{
    uint8_t seed[2 * KW_TLS_RANDOM_LEN];
    if (opcode == KW_OP_TLS_RSA_DECRYPT) {
        memcpy(want, pms, KW_TLS_PMS_LEN);
        return;
    }
    memcpy(seed, client_random, KW_TLS_RANDOM_LEN);
    memcpy(seed + KW_TLS_RANDOM_LEN, server_random, KW_TLS_RANDOM_LEN);
    if (!kw_ks_master_derive("SHA256", 0, pms, KW_TLS_PMS_LEN, seed, sizeof(seed), want))
        die("TLS1-PRF");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {KW_TOOL_OPTIONS,
                                       {"samples", 1, 0, 'n'},
                                       {"peer", 1, 0, 'p'},
                                       {"op", 1, 0, 'o'},
                                       {0, 0, 0, 0}};
    kw_tool_opts_t to = {0};
    long samples = 2000;
    const char *peer = NULL;
    uint8_t opcode = KW_OP_TLS_RSA_DECRYPT;
    for (;;) {
        int ch = kw_tool_getopt(argc, argv, "", lo, &to);
        if (ch == -1)
            break;
        if (ch == 'n')
            samples = strtol(optarg, NULL, 0);
        else if (ch == 'p')
            peer = optarg;
        else if (ch == 'o')
            opcode = (uint8_t)strtoul(optarg, NULL, 0);
        else
            die("see the comment at the top of kw_hard_oracle.c");
    }
    if (opcode != KW_OP_TLS_RSA_DECRYPT && opcode != KW_OP_TLS12_MASTER)
        die("--op must be 0xa0 or 0xa1");
    if (to.server == NULL || to.ca == NULL || to.key_cert == NULL || samples < 10)
        die("need --server, --ca, --key-cert (and --samples >= 10)");
    uint8_t digest[KW_DIGEST_LEN], em[K_MAX], ct[K_MAX], pms[KW_TLS_PMS_LEN], out[48], want[48];
    uint8_t again[48];
    EVP_PKEY *pub = load_pub(to.key_cert, digest);
    size_t k = (size_t)EVP_PKEY_get_size(pub);
    if (k > K_MAX)
        die("key too large");
    SSL_CTX *ctx = kw_tool_client_ctx(&to);
    int fd = -1;
    SSL *ssl = kw_tool_tls_connect(ctx, &to, NULL, &fd);
    kw_tool_opts_t po = to;
    int pfd = -1;
    SSL *pssl = NULL;
    if (peer != NULL) {
        po.server = peer;
        pssl = kw_tool_tls_connect(ctx, &po, NULL, &pfd);
    }
    stats_t st[2] = {{0, 0, 0, calloc((size_t)samples, sizeof(double))},
                     {0, 0, 0, calloc((size_t)samples, sizeof(double))}};
    long bad_form = 0, bad_pms = 0, same_as_pms = 0, repeat_differs = 0, no_version = 0;
    long peer_differs = 0;
    for (long i = 0; i < 2 * samples; i++) {
        int cls = 0;
        if (st[0].n >= samples)
            cls = 1;
        else if (st[1].n < samples)
            cls = (int)(random() & 1); /* interleaved in random order */
        int kind = cls == 0 ? 0 : 1 + (int)(random() % 6);
        make_block(kind, em, k, pms);
        raw_encrypt(pub, em, k, ct);
        expected(opcode, pms, want);
        double t0 = kw_tool_now();
        int rc = round_trip(ssl, opcode, (uint32_t)i + 1, digest, ct, k, out);
        double dt = (kw_tool_now() - t0) * 1e6; /* microseconds */
        if (rc != 0) {
            bad_form++;
            continue;
        }
        if (cls == 0 && memcmp(out, want, sizeof(out)) != 0)
            bad_pms++;
        if (cls == 1 && memcmp(out, want, sizeof(out)) == 0)
            same_as_pms++;
        if (opcode == KW_OP_TLS_RSA_DECRYPT && (out[0] != 0x03 || out[1] != 0x03))
            no_version++;
        stats_add(&st[cls], dt);
        /* Every 4th sample again and every 2nd to the peer (all would cost too much time): the
         * same answer. */
        if (i % 4 == 0 && (round_trip(ssl, opcode, (uint32_t)i + 1, digest, ct, k, again) != 0 ||
                           memcmp(out, again, sizeof(out)) != 0))
            repeat_differs++;
        if (pssl != NULL && i % 2 == 1 &&
            (round_trip(pssl, opcode, (uint32_t)i + 1, digest, ct, k, again) != 0 ||
             memcmp(out, again, sizeof(out)) != 0))
            peer_differs++;
    }
    printf("replies: %ld not 0xF0/48 bytes, %ld valid ciphertexts with a wrong %s, %ld invalid "
           "ones answered with what their embedded bytes would give\n",
           bad_form, bad_pms, opcode == KW_OP_TLS_RSA_DECRYPT ? "PMS" : "master secret",
           same_as_pms);
    printf("repeats: %ld of %ld sent again answered differently; %ld replies not starting with the "
           "version; %ld of %ld differ from the peer's%s\n",
           repeat_differs, (2 * samples + 3) / 4, no_version, peer_differs,
           pssl != NULL ? samples : 0, pssl != NULL ? "" : " (no --peer)");
    double m0, v0, m1, v1;
    stats_print("valid", &st[0], &m0, &v0);
    stats_print("badpad", &st[1], &m1, &v1);
    double t = (m0 - m1) / root(v0 / (double)st[0].n + v1 / (double)st[1].n);
    printf("welch t = %.2f (|t| > 4.5 would suggest a timing difference; reported, not asserted)\n",
           t);
    SSL_free(ssl);
    close(fd);
    if (pssl != NULL) {
        SSL_free(pssl);
        close(pfd);
    }
    SSL_CTX_free(ctx);
    EVP_PKEY_free(pub);
    return bad_form == 0 && bad_pms == 0 && same_as_pms == 0 && repeat_differs == 0 &&
                   no_version == 0 && peer_differs == 0
               ? 0
               : 2;
}
