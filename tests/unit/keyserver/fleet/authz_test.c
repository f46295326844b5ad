/*
 * Authorisation tests (src/keyserver/fleet/authz.c): the --allow flag form and rule checks, edge
 * identities from generated client certificates (CN, SAN DNS names in lower case and none over
 * 253 bytes, SPKI hash, several fields of one rule together), key matching by file name, sha256,
 * SKI and certificate names (exact and wildcard on either side) in a real key store, and the
 * checks for keys held upstream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fleet/authz.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_hex.h"

typedef struct fixture_s {
    char dir[64];
    kw_keystore_t *store;
    X509 *edge_a; /* CN=edge-a, SAN DNS:Edge-A.example.net */
    X509 *edge_b; /* CN=edge-b, no SAN */
    X509 *edge_c; /* CN=edge-c */
    const kw_ks_key_t *site1, *wild, *nocert;
} fixture_t;

/* What main.c and reload.c check: the settings, then the allow rules and enabled operations. */
static int validate_all(const kw_ks_config_t *cfg, char *err, size_t errlen)
{
    int rc = kw_ks_config_validate(cfg, err, errlen);
    return rc != 0 ? rc : kw_ks_authz_validate(cfg, err, errlen);
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

/* A self-signed certificate for key with CN cn and SAN san ("DNS:a,DNS:b" or NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    if (san != NULL) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void write_site(const char *dir, const char *name, const char *cn, const char *san)
{
    char path[256];
    EVP_PKEY *k = ec_key();
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    BIO *b = BIO_new_file(path, "w");
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    BIO_free(b);
    if (cn != NULL) {
        X509 *x = make_cert(k, cn, san);
        snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
        b = BIO_new_file(path, "w");
        assert_non_null(b);
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
        BIO_free(b);
        X509_free(x);
    }
    EVP_PKEY_free(k);
}

static X509 *edge_cert(const char *cn, const char *san)
{
    EVP_PKEY *k = ec_key();
    X509 *x = make_cert(k, cn, san);
    EVP_PKEY_free(k);
    return x;
}

static const kw_ks_key_t *by_name(const kw_keystore_t *s, const char *name)
{
    for (size_t i = 0; i < kw_keystore_count(s); i++)
        if (strcmp(kw_keystore_get(s, i)->name, name) == 0)
            return kw_keystore_get(s, i);
    fail_msg("no key %s", name);
    return NULL;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kw_authz_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    write_site(f->dir, "site1", "www.example.com", "DNS:www.example.com,DNS:api.example.com");
    write_site(f->dir, "wild", "wild", "DNS:*.shop.example");
    write_site(f->dir, "nocert", NULL, NULL);
    char err[256];
    size_t skipped = 9;
    assert_int_equal(kw_keystore_load(f->dir, &f->store, &skipped, err, sizeof(err)), 0);
    assert_int_equal(skipped, 0);
    f->site1 = by_name(f->store, "site1");
    f->wild = by_name(f->store, "wild");
    f->nocert = by_name(f->store, "nocert");
    f->edge_a = edge_cert("edge-a", "DNS:Edge-A.example.net");
    f->edge_b = edge_cert("edge-b", NULL);
    f->edge_c = edge_cert("edge-c", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    kw_keystore_unref(f->store);
    X509_free(f->edge_a);
    X509_free(f->edge_b);
    X509_free(f->edge_c);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void hex_of(const uint8_t *b, size_t n, const char *prefix, char *out, size_t cap)
{
    char hex[2 * KW_DIGEST_LEN + 1];
    kw_hex_encode(b, n, hex);
    snprintf(out, cap, "%s%s", prefix, hex);
}

/* May edge e sign (ECDSA SHA-256) with key? */
static int allowed(const kw_ks_authz_t *a, const kw_ks_edge_t *e, const kw_ks_key_t *key)
{
    return kw_ks_authz_check(a, e, key, KW_OP_ECDSA_SIGN_SHA256) == KW_KS_ALLOWED;
}

/* May edge e use the key named by id (kind, bytes) held upstream, for opcode? */
static int remote(const kw_ks_authz_t *a, const kw_ks_edge_t *e, kw_ks_keyid_kind_t kind,
                  const void *p, size_t len, uint8_t opcode)
{
    kw_ks_keyid_t id = {kind, p, len};
    return kw_ks_authz_check_remote(a, e, &id, opcode) == KW_KS_ALLOWED;
}

/* Compiles the rules added to cfg so far. */
static kw_ks_authz_t *compile(kw_ks_config_t *cfg)
{
    char err[256] = "";
    kw_ks_authz_t *a = NULL;
    assert_int_equal(validate_all(cfg, err, sizeof(err)), 0);
    assert_int_equal(kw_ks_authz_new(cfg, &a, err, sizeof(err)), 0);
    assert_non_null(a);
    return a;
}

static void base_config(kw_ks_config_t *cfg)
{
    kw_ks_config_defaults(cfg);
    cfg->cert = strdup("c");
    cfg->key = strdup("k");
    cfg->ca = strdup("a");
}

static void test_flag_form(void **state)
{
    (void)state;
    kw_ks_config_t cfg;
    char why[256];
    base_config(&cfg);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "cn:edge-a=file:site1,sni:*.shop.example"), 0);
    assert_int_equal(cfg.n_allow, 1);
    assert_string_equal(cfg.allow[0].cn, "edge-a");
    assert_int_equal(cfg.allow[0].n_keys, 2);
    assert_string_equal(cfg.allow[0].keys[1], "sni:*.shop.example");
    assert_int_equal(kw_ks_authz_check_rule(&cfg.allow[0], why, sizeof(why)), 0);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "san:h.example=*"), 0);
    assert_string_equal(cfg.allow[1].san, "h.example");
    const char *bad_syntax[] = {"edge-a=*", "cn:x=", "=*", "cn:x", "cn:x=a,,b", "dn:x=*", "cn:=*"};
    for (size_t i = 0; i < sizeof(bad_syntax) / sizeof(bad_syntax[0]); i++)
        assert_int_equal(kw_ks_allow_add_flag(&cfg, bad_syntax[i]), KW_EINVAL);
    kw_ks_config_free(&cfg);

    const char *bad_keys[] = {"sha256:12", "ski:zz", "bogus:x", "sni:a*.b",
                              "sni:*.",    "sni:",   "file:"};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        char text[64];
        base_config(&cfg);
        snprintf(text, sizeof(text), "cn:e=%s", bad_keys[i]);
        assert_int_equal(kw_ks_allow_add_flag(&cfg, text), 0);
        assert_int_equal(validate_all(&cfg, why, sizeof(why)), KW_ECONFIG);
        assert_non_null(strstr(why, "allow rule 1"));
        kw_ks_config_free(&cfg);
    }
    base_config(&cfg);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "spki:abcd=*"), 0);
    assert_int_equal(validate_all(&cfg, why, sizeof(why)), KW_ECONFIG);
    assert_non_null(strstr(why, "spki"));
    kw_ks_config_free(&cfg);
}

static void test_no_rules_allow_everything(void **state)
{
    fixture_t *f = *state;
    kw_ks_config_t cfg;
    kw_ks_authz_t *a = (kw_ks_authz_t *)1;
    char err[64];
    base_config(&cfg);
    assert_int_equal(kw_ks_authz_new(&cfg, &a, err, sizeof(err)), 0);
    assert_non_null(a);
    assert_int_equal(kw_ks_authz_count(a), 0);
    assert_false(kw_ks_authz_allow_all(a));
    kw_ks_edge_t *e = kw_ks_edge_from_cert(a, f->edge_c);
    assert_non_null(e);
    assert_string_equal(e->cn, "edge-c");
    assert_int_equal(allowed(a, e, f->site1), 1);
    assert_int_equal(allowed(NULL, e, f->site1), 1);
    assert_true(
        remote(a, e, KW_KS_KEYID_DIGEST, f->site1->digest, KW_DIGEST_LEN, KW_OP_TLS12_MASTER));
    /* The legacy decryptions are off by default, rules or not. */
    assert_int_equal(kw_ks_authz_check(a, e, f->site1, KW_OP_RSA_DECRYPT), KW_KS_DENIED_OP);
    assert_int_equal(kw_ks_authz_check(a, e, f->site1, KW_OP_RSA_DECRYPT_RAW), KW_KS_DENIED_OP);
    assert_false(
        remote(a, e, KW_KS_KEYID_DIGEST, f->site1->digest, KW_DIGEST_LEN, KW_OP_RSA_DECRYPT_RAW));
    kw_ks_edge_free(e);
    kw_ks_authz_free(a);
    kw_ks_config_free(&cfg);
}

static void test_edges_and_keys(void **state)
{
    fixture_t *f = *state;
    kw_ks_config_t cfg;
    char rule[200];
    uint8_t spki_b[KW_DIGEST_LEN];
    base_config(&cfg);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "cn:edge-a=file:site1"), 0);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "san:edge-a.EXAMPLE.net=sni:*.shop.example"), 0);
    assert_int_equal(kw_keyid_from_pkey(X509_get0_pubkey(f->edge_b), spki_b, NULL), 0);
    char spki[100];
    char key_id[100];
    hex_of(spki_b, KW_DIGEST_LEN, "spki:sha256:", spki, sizeof(spki));
    hex_of(f->nocert->digest, KW_DIGEST_LEN, "sha256:", key_id, sizeof(key_id));
    snprintf(rule, sizeof(rule), "%s=%s", spki, key_id);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, rule), 0);
    /* Several fields of one rule must all match: edge-b has no SAN, so this rule is not its. */
    kw_ks_allow_t *r = kw_ks_config_add_allow(&cfg);
    r->cn = strdup("edge-b");
    r->san = strdup("nothing.example");
    assert_int_equal(kw_strlist_add(&r->keys, &r->n_keys, "*"), 0);
    kw_ks_authz_t *a = compile(&cfg);
    assert_int_equal(kw_ks_authz_count(a), 4);

    kw_ks_edge_t *ea = kw_ks_edge_from_cert(a, f->edge_a);
    kw_ks_edge_t *eb = kw_ks_edge_from_cert(a, f->edge_b);
    kw_ks_edge_t *ec = kw_ks_edge_from_cert(a, f->edge_c);
    kw_ks_edge_t *none = kw_ks_edge_from_cert(a, NULL);
    assert_int_equal(ea->n_dns, 1);
    assert_string_equal(ea->dns[0], "edge-a.example.net");
    assert_int_equal(ea->n_rules, 2);
    assert_int_equal(eb->n_rules, 1);
    assert_int_equal(ec->n_rules, 0);
    assert_string_equal(none->cn, "");

    assert_true(allowed(a, ea, f->site1)); /* file: */
    assert_true(allowed(a, ea, f->wild));  /* san + sni wildcard */
    assert_false(allowed(a, ea, f->nocert));
    assert_true(allowed(a, eb, f->nocert)); /* spki + sha256 */
    assert_false(allowed(a, eb, f->site1));
    assert_false(allowed(a, ec, f->site1));
    assert_false(allowed(a, none, f->site1));
    assert_false(allowed(a, NULL, f->site1));
    kw_ks_edge_free(ea);
    kw_ks_edge_free(eb);
    kw_ks_edge_free(ec);
    kw_ks_edge_free(none);
    kw_ks_authz_free(a);
    kw_ks_config_free(&cfg);
}

/* edge-a with one rule naming `spec`: may it use key? */
static int allowed_by(fixture_t *f, const char *spec, const kw_ks_key_t *key)
{
    kw_ks_config_t cfg;
    char rule[200];
    base_config(&cfg);
    snprintf(rule, sizeof(rule), "cn:edge-a=%s", spec);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, rule), 0);
    kw_ks_authz_t *a = compile(&cfg);
    kw_ks_edge_t *e = kw_ks_edge_from_cert(a, f->edge_a);
    int ok = allowed(a, e, key);
    kw_ks_edge_free(e);
    kw_ks_authz_free(a);
    kw_ks_config_free(&cfg);
    return ok;
}

static void test_key_specs(void **state)
{
    fixture_t *f = *state;
    char spec[100];
    assert_true(allowed_by(f, "*", f->nocert));
    assert_true(allowed_by(f, "site1", f->site1)); /* a bare name is a key name */
    assert_true(allowed_by(f, "name:site1", f->site1));
    assert_false(allowed_by(f, "file:site", f->site1));
    hex_of(f->site1->ski, KW_SKI_LEN, "ski:", spec, sizeof(spec));
    assert_true(allowed_by(f, spec, f->site1));
    assert_false(allowed_by(f, spec, f->wild));
    assert_true(allowed_by(f, "sni:API.example.com", f->site1)); /* SAN, any case */
    assert_true(allowed_by(f, "sni:*.example.com", f->site1));   /* pattern wildcard */
    assert_false(allowed_by(f, "sni:*.com", f->site1));          /* one label only */
    assert_true(allowed_by(f, "sni:www.shop.example", f->wild)); /* certificate wildcard */
    assert_false(allowed_by(f, "sni:a.b.shop.example", f->wild));
    assert_false(allowed_by(f, "sni:www.example.com", f->nocert)); /* no certificate: no names */
    assert_true(allowed_by(f, "sni:wild", f->wild));               /* the CN counts too */
}

static void test_remote_keys(void **state)
{
    fixture_t *f = *state;
    kw_ks_config_t cfg;
    char rule[300];
    char id[100];
    base_config(&cfg);
    hex_of(f->site1->digest, KW_DIGEST_LEN, "sha256:", id, sizeof(id));
    snprintf(rule, sizeof(rule), "cn:edge-a=file:wild,%s,sni:*.example.com", id);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, rule), 0);
    kw_ks_authz_t *a = compile(&cfg);
    kw_ks_edge_t *e = kw_ks_edge_from_cert(a, f->edge_a);
    const uint8_t op = KW_OP_ECDSA_SIGN_SHA256;
    assert_false(remote(a, e, KW_KS_KEYID_NONE, NULL, 0, op)); /* names no key */
    assert_true(remote(a, e, KW_KS_KEYID_DIGEST, f->site1->digest, KW_DIGEST_LEN, op));
    /* the digest rule does not match the same bytes as another kind of id */
    assert_false(remote(a, e, KW_KS_KEYID_SKI, f->site1->digest, KW_SKI_LEN, op));
    /* file: needs a local key */
    assert_false(remote(a, e, KW_KS_KEYID_DIGEST, f->wild->digest, KW_DIGEST_LEN, op));
    assert_true(remote(a, e, KW_KS_KEYID_SNI, "WWW.example.com", 15, KW_OP_GET_CERT_CHAIN));
    kw_ks_edge_t *other = kw_ks_edge_from_cert(a, f->edge_c);
    assert_false(remote(a, other, KW_KS_KEYID_SNI, "WWW.example.com", 15, KW_OP_GET_CERT_CHAIN));
    kw_ks_edge_free(other);
    kw_ks_edge_free(e);
    kw_ks_authz_free(a);
    kw_ks_config_free(&cfg);
}

/* enable_ops and a rule's ops: the server's set bounds every rule; a rule's ops narrow it. */
static void test_ops(void **state)
{
    fixture_t *f = *state;
    kw_ks_config_t cfg;
    char err[512] = "";
    kw_ks_authz_t *a = NULL;
    base_config(&cfg);
    assert_int_equal(kw_strlist_add(&cfg.enable_ops, &cfg.n_enable_ops, "rsa-decrypt"), 0);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "cn:edge-a=file:site1"), 0);
    kw_ks_allow_t *r = kw_ks_config_add_allow(&cfg); /* edge-b: signatures only, on every key */
    r->cn = strdup("edge-b");
    assert_int_equal(kw_strlist_add(&r->keys, &r->n_keys, "*"), 0);
    r->has_ops = 1;
    assert_int_equal(kw_strlist_add(&r->ops, &r->n_ops, "signatures"), 0);
    a = compile(&cfg);
    kw_ks_edge_t *ea = kw_ks_edge_from_cert(a, f->edge_a);
    kw_ks_edge_t *eb = kw_ks_edge_from_cert(a, f->edge_b);
    assert_int_equal(kw_ks_authz_check(a, ea, f->site1, KW_OP_RSA_DECRYPT), KW_KS_ALLOWED);
    assert_int_equal(kw_ks_authz_check(a, ea, f->site1, KW_OP_RSA_DECRYPT_RAW), KW_KS_DENIED_OP);
    assert_int_equal(kw_ks_authz_check(a, ea, f->wild, KW_OP_RSA_DECRYPT), KW_KS_DENIED_KEY);
    assert_int_equal(kw_ks_authz_check(a, eb, f->wild, KW_OP_ED25519_SIGN), KW_KS_ALLOWED);
    assert_int_equal(kw_ks_authz_check(a, eb, f->wild, KW_OP_RSA_DECRYPT), KW_KS_DENIED_OP);
    assert_int_equal(kw_ks_authz_check(a, eb, f->wild, KW_OP_TLS12_MASTER), KW_KS_DENIED_OP);
    assert_int_equal(kw_ks_authz_check(a, eb, f->wild, KW_OP_GET_CERT_CHAIN), KW_KS_DENIED_OP);
    assert_string_equal(kw_ks_authz_rule_text(a, 1), "cn:edge-b=* ops=signatures");
    kw_ks_edge_free(ea);
    kw_ks_edge_free(eb);
    kw_ks_authz_free(a);
    /* A rule may not grant what the server does not enable; unknown names are refused. */
    kw_strlist_free(&cfg.enable_ops, &cfg.n_enable_ops);
    assert_int_equal(kw_strlist_add(&r->ops, &r->n_ops, "rsa-raw-decrypt"), 0);
    assert_int_equal(kw_ks_authz_new(&cfg, &a, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "allow rule 2: ops: rsa-decrypt-raw not enabled"));
    assert_int_equal(validate_all(&cfg, err, sizeof(err)), KW_ECONFIG);
    kw_strlist_free(&r->ops, &r->n_ops);
    assert_int_equal(kw_strlist_add(&cfg.enable_ops, &cfg.n_enable_ops, "rsa-sign"), 0);
    assert_int_equal(kw_ks_authz_new(&cfg, &a, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "unknown operation 'rsa-sign'"));
    kw_ks_config_free(&cfg);
}

/* The key spec `tickets` alone grants 0xA4; `*` does not, no rules means nobody, and 0xA4 is
 * enabled only with a ticket secret or an upstream (issue 19). */
static void test_tickets(void **state)
{
    fixture_t *f = *state;
    kw_ks_config_t cfg;
    char err[512] = "";
    kw_ks_authz_t *a = NULL;
    base_config(&cfg);
    cfg.ticket_secret = strdup("/nonexistent/secret"); /* authz only looks at whether it is set */
    assert_int_equal(kw_ks_authz_new(&cfg, &a, err, sizeof(err)), 0);
    kw_ks_edge_t *e = kw_ks_edge_from_cert(a, f->edge_a);
    assert_int_equal(kw_ks_authz_check_tickets(a, e), KW_KS_DENIED_KEY); /* no rules: nobody */
    kw_ks_edge_free(e);
    kw_ks_authz_free(a);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "cn:edge-a=file:site1,tickets"), 0);
    assert_int_equal(kw_ks_allow_add_flag(&cfg, "cn:edge-b=*"), 0);
    a = compile(&cfg);
    kw_ks_edge_t *ea = kw_ks_edge_from_cert(a, f->edge_a);
    kw_ks_edge_t *eb = kw_ks_edge_from_cert(a, f->edge_b);
    kw_ks_edge_t *ec = kw_ks_edge_from_cert(a, f->edge_c);
    assert_int_equal(kw_ks_authz_check_tickets(a, ea), KW_KS_ALLOWED);
    assert_int_equal(kw_ks_authz_check_tickets(a, eb), KW_KS_DENIED_KEY); /* "*" is not it */
    assert_int_equal(kw_ks_authz_check_tickets(a, ec), KW_KS_DENIED_KEY);
    assert_int_equal(kw_ks_authz_check_tickets(a, NULL), KW_KS_DENIED_KEY);
    assert_int_equal(kw_ks_authz_check_tickets(NULL, ec), KW_KS_ALLOWED);
    /* `tickets` is no key: it does not grant site1's operations by itself */
    assert_int_equal(kw_ks_authz_check(a, ea, f->wild, KW_OP_ECDSA_SIGN_SHA256), KW_KS_DENIED_KEY);
    kw_ks_edge_free(ea);
    kw_ks_edge_free(eb);
    kw_ks_edge_free(ec);
    kw_ks_authz_free(a);
    /* Without a secret or an upstream 0xA4 is off, and enable_ops cannot turn it on. */
    free(cfg.ticket_secret);
    cfg.ticket_secret = NULL;
    a = compile(&cfg);
    ea = kw_ks_edge_from_cert(a, f->edge_a);
    assert_int_equal(kw_ks_authz_check_tickets(a, ea), KW_KS_DENIED_OP);
    kw_ks_edge_free(ea);
    kw_ks_authz_free(a);
    assert_int_equal(kw_strlist_add(&cfg.enable_ops, &cfg.n_enable_ops, "ticket-keys"), 0);
    assert_int_equal(kw_ks_authz_new(&cfg, &a, err, sizeof(err)), KW_ECONFIG);
    assert_non_null(strstr(err, "ticket-keys needs --ticket-secret"));
    kw_ks_config_free(&cfg);
}

/* The key ids of a request must name one key (resolve.c). */
static void test_resolve(void **state)
{
    fixture_t *f = *state;
    kw_msg_t msg;
    kw_ks_resolved_t r;
    memset(&msg, 0, sizeof(msg));
    assert_int_equal(kw_ks_resolve(f->store, &msg, 1, &r), 0);
    assert_null(r.key);
    assert_int_equal(r.n_ids, 0);
    msg.digest = kw_bytes(f->site1->digest, KW_DIGEST_LEN);
    msg.ski = kw_bytes(f->site1->ski, KW_SKI_LEN);
    msg.sni = kw_bytes("API.example.com", 15);
    assert_int_equal(kw_ks_resolve(f->store, &msg, 1, &r), 0);
    assert_ptr_equal(r.key, f->site1);
    assert_int_equal(r.n_ids, 3);
    msg.ski = kw_bytes(f->wild->ski, KW_SKI_LEN); /* the SKI of another key */
    assert_int_equal(kw_ks_resolve(f->store, &msg, 1, &r), KW_ERR_FORMAT);
    msg.ski.present = 0;
    msg.sni = kw_bytes("x.shop.example", 14); /* a name of another key's certificate */
    assert_int_equal(kw_ks_resolve(f->store, &msg, 1, &r), KW_ERR_FORMAT);
    assert_int_equal(kw_ks_resolve(f->store, &msg, 0, &r), 0); /* not an id for key operations */
    assert_ptr_equal(r.key, f->site1);
    /* A digest not held here beside an SKI held here: different keys. */
    uint8_t other[KW_DIGEST_LEN] = {1, 2, 3};
    memset(&msg, 0, sizeof(msg));
    msg.digest = kw_bytes(other, KW_DIGEST_LEN);
    msg.ski = kw_bytes(f->nocert->ski, KW_SKI_LEN);
    assert_int_equal(kw_ks_resolve(f->store, &msg, 0, &r), KW_ERR_FORMAT);
    /* Ids of a key not held here: one is kept (to forward), several are counted. */
    msg.ski.present = 0;
    assert_int_equal(kw_ks_resolve(f->store, &msg, 0, &r), 0);
    assert_null(r.key);
    assert_int_equal(r.n_ids, 1);
    assert_int_equal(r.id.kind, KW_KS_KEYID_DIGEST);
    msg.sni = kw_bytes("nowhere.example", 15);
    assert_int_equal(kw_ks_resolve(f->store, &msg, 1, &r), 0);
    assert_null(r.key);
    assert_int_equal(r.n_ids, 2);
    /* The copy forwarded carries the one id (and, for key operations, the SNI as it came). */
    kw_ks_keyid_t id = {KW_KS_KEYID_DIGEST, other, KW_DIGEST_LEN};
    msg.ski = kw_bytes(f->nocert->ski, KW_SKI_LEN);
    kw_msg_t fwd = kw_ks_resolve_forward_msg(&msg, &id, 1);
    assert_true(fwd.digest.present);
    assert_false(fwd.ski.present);
    assert_false(fwd.sni.present);
    fwd = kw_ks_resolve_forward_msg(&msg, &id, 0);
    assert_true(fwd.sni.present);
    assert_false(fwd.ski.present);
}

/* An edge's SAN names: lower case; one that cannot be a DNS name (over 253 bytes) is not kept. */
static void test_edge_dns_names(void **state)
{
    (void)state;
    char san[400];
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    snprintf(san, sizeof(san), "DNS:Ok.Example,DNS:%s", long_name);
    X509 *x = edge_cert("edge-long", san);
    assert_non_null(x);
    kw_ks_edge_t *e = kw_ks_edge_from_cert(NULL, x);
    assert_non_null(e);
    assert_int_equal(e->n_dns, 1);
    assert_string_equal(e->dns[0], "ok.example");
    kw_ks_edge_free(e);
    X509_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_form),      cmocka_unit_test(test_no_rules_allow_everything),
        cmocka_unit_test(test_edges_and_keys), cmocka_unit_test(test_key_specs),
        cmocka_unit_test(test_remote_keys),    cmocka_unit_test(test_ops),
        cmocka_unit_test(test_resolve),        cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_edge_dns_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
