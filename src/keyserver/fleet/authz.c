/*
 * Per-edge authorisation (authz.h): compiling the allow rules and the enabled operations, reading
 * an edge's identity from its client certificate, and deciding whether an edge may perform an
 * operation with a key. `sni:` specs match the certificate names the key store keeps per key.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include "fleet/authz.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_log.h"
#include "kw_hex.h"

typedef enum spec_kind {
    SPEC_ANY = 1, /* "*" */
    SPEC_SHA256,  /* "sha256:HEX" */
    SPEC_SKI,     /* "ski:HEX" */
    SPEC_SNI,     /* "sni:NAME" or "sni:*.DOMAIN", matched against the key's certificate names */
    SPEC_NAME,    /* "NAME", "file:NAME" or "name:NAME": the key's file base name / token label */
    SPEC_TICKETS, /* "tickets": the fleet's session-ticket keys (0xA4); no key, and "*" is not it */
} spec_kind_t;

typedef struct spec_s {
    spec_kind_t kind;
    uint8_t id[KW_DIGEST_LEN];
    char *text; /* SNI pattern (lower case) or key name; owned */
} spec_t;

typedef struct rule_s {
    char *cn;  /* NULL: any */
    char *san; /* lower case; NULL: any */
    uint8_t spki[KW_DIGEST_LEN];
    int has_spki;
    spec_t *specs;
    size_t n_specs;
    kw_ks_opset_t ops; /* what it grants: its `ops:`, else the server's enabled set */
    char *text;        /* the rule as written, for reload logs; owned */
} rule_t;

struct kw_ks_authz_s {
    rule_t *rules;
    size_t n;
    kw_ks_opset_t enabled; /* the server's operations (--enable-op) */
    int allow_all;         /* allow_all: true (no rules, on purpose) */
};

/* ---- parsing ---- */

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p != NULL && *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    return d;
}

static int parse_spki(const char *text, uint8_t out[KW_DIGEST_LEN])
{
    if (strncasecmp(text, "sha256:", 7) == 0)
        text += 7;
    return kw_hex_decode(text, out, KW_DIGEST_LEN);
}

/* A valid SNI pattern: "name.example" or "*.example" (one leading wildcard label). */
static int sni_pattern_ok(const char *p)
{
    if (*p == '\0' || strlen(p) > 253)
        return 0;
    if (p[0] == '*' && (p[1] != '.' || p[2] == '\0'))
        return 0;
    return strchr(p + 1, '*') == NULL;
}

/* Parses one key spec into s (s->text allocated when needed). Returns 0 or KW_ECONFIG. */
static int parse_spec(const char *text, spec_t *s, char *why, size_t whylen)
{
    kw_keyid_kind_t kind;
    memset(s, 0, sizeof(*s));
    if (strcmp(text, "*") == 0) {
        s->kind = SPEC_ANY;
        return 0;
    }
    if (strcmp(text, "tickets") == 0) {
        s->kind = SPEC_TICKETS;
        return 0;
    }
    if (strncasecmp(text, "sha256:", 7) == 0 || strncasecmp(text, "ski:", 4) == 0) {
        if (kw_keyid_parse(text, &kind, s->id) != 0) {
            snprintf(why, whylen, "key '%.100s': write sha256:HEX (64 digits) or ski:HEX (40)",
                     text);
            return KW_ECONFIG;
        }
        s->kind = kind == KW_KEYID_SKI ? SPEC_SKI : SPEC_SHA256;
        return 0;
    }
    const char *value = text;
    s->kind = SPEC_NAME;
    if (strncasecmp(text, "sni:", 4) == 0) {
        s->kind = SPEC_SNI;
        value = text + 4;
    } else if (strncasecmp(text, "file:", 5) == 0 || strncasecmp(text, "name:", 5) == 0) {
        value = text + 5;
    } else if (strchr(text, ':') != NULL) {
        snprintf(why, whylen,
                 "key '%.100s': unknown kind (use *, sha256:HEX, ski:HEX, sni:NAME, file:NAME)",
                 text);
        return KW_ECONFIG;
    }
    if (*value == '\0' || (s->kind == SPEC_SNI && !sni_pattern_ok(value))) {
        snprintf(why, whylen, "key '%.100s': empty or malformed name", text);
        return KW_ECONFIG;
    }
    s->text = s->kind == SPEC_SNI ? lower_dup(value) : strdup(value);
    return s->text != NULL ? 0 : KW_ENOMEM;
}

static void rule_clear(rule_t *r)
{
    free(r->text);
    free(r->cn);
    free(r->san);
    for (size_t i = 0; i < r->n_specs; i++)
        free(r->specs[i].text);
    free(r->specs);
    memset(r, 0, sizeof(*r));
}

/* Compiles cfg rule `in` into r. Returns 0, KW_ECONFIG (reason in why) or KW_ENOMEM. */
static int rule_compile(const kw_ks_allow_t *in, rule_t *r, char *why, size_t whylen)
{
    memset(r, 0, sizeof(*r));
    if (in->cn == NULL && in->san == NULL && in->spki == NULL) {
        snprintf(why, whylen, "no edge named (give cn, san or spki)");
        return KW_ECONFIG;
    }
    if (in->n_keys == 0) {
        snprintf(why, whylen, "no keys named (key names, sha256:HEX, ski:HEX, sni:NAME or *)");
        return KW_ECONFIG;
    }
    if (in->spki != NULL && parse_spki(in->spki, r->spki) != 0) {
        snprintf(why, whylen,
                 "spki '%.100s': write the SHA-256 of the edge certificate's "
                 "public key as 64 hex digits",
                 in->spki);
        return KW_ECONFIG;
    }
    r->has_spki = in->spki != NULL;
    r->cn = in->cn != NULL ? strdup(in->cn) : NULL;
    r->san = in->san != NULL ? lower_dup(in->san) : NULL;
    r->specs = calloc(in->n_keys, sizeof(*r->specs));
    if ((in->cn != NULL && r->cn == NULL) || (in->san != NULL && r->san == NULL) ||
        r->specs == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < in->n_keys; i++) {
        int rc = parse_spec(in->keys[i], &r->specs[i], why, whylen);
        if (rc != 0)
            return rc;
        r->n_specs++;
    }
    r->ops = kw_ks_opset_empty();
    for (size_t i = 0; i < in->n_ops; i++) {
        if (kw_ks_opset_add_name(&r->ops, in->ops[i]) != 0) {
            snprintf(why, whylen, "ops: unknown operation '%.64s' (known: %s)", in->ops[i],
                     KW_KS_OPSET_NAMES);
            return KW_ECONFIG;
        }
    }
    return 0;
}

/* Appends a and b to the growing string *buf (of *len bytes). 0 or KW_ENOMEM. */
static int text_add(char **buf, size_t *len, const char *a, const char *b)
{
    size_t add = strlen(a) + strlen(b);
    char *grown = realloc(*buf, *len + add + 1);
    if (grown == NULL)
        return KW_ENOMEM;
    snprintf(grown + *len, add + 1, "%s%s", a, b);
    *buf = grown;
    *len += add;
    return 0;
}

/* "cn:NAME san:NAME spki:HEX=KEY,KEY ops=OP,OP": the rule as written, to name it in logs. */
static char *rule_text(const kw_ks_allow_t *in)
{
    char *t = NULL;
    size_t len = 0;
    int rc = text_add(&t, &len, "", "");
    if (rc == 0 && in->cn != NULL)
        rc = text_add(&t, &len, "cn:", in->cn);
    if (rc == 0 && in->san != NULL)
        rc = text_add(&t, &len, len > 0 ? " san:" : "san:", in->san);
    if (rc == 0 && in->spki != NULL)
        rc = text_add(&t, &len, len > 0 ? " spki:" : "spki:", in->spki);
    for (size_t i = 0; rc == 0 && i < in->n_keys; i++)
        rc = text_add(&t, &len, i == 0 ? "=" : ",", in->keys[i]);
    for (size_t i = 0; rc == 0 && in->has_ops && i < in->n_ops; i++)
        rc = text_add(&t, &len, i == 0 ? " ops=" : ",", in->ops[i]);
    if (rc == 0 && in->has_ops && in->n_ops == 0)
        rc = text_add(&t, &len, " ops=", "(none)");
    if (rc != 0) {
        free(t);
        return NULL;
    }
    return t;
}

int kw_ks_authz_check_rule(const kw_ks_allow_t *rule, char *why, size_t whylen)
{
    rule_t r;
    int rc = rule_compile(rule, &r, why, whylen);
    rule_clear(&r);
    if (rc == KW_ENOMEM)
        snprintf(why, whylen, "out of memory");
    return rc;
}

int kw_ks_authz_validate(const kw_ks_config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_allow; i++) {
        char why[256];
        if (kw_ks_authz_check_rule(&cfg->allow[i], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "allow rule %zu: %s (see docs/fleet.md)", i + 1, why);
            return KW_ECONFIG;
        }
    }
    if (cfg->allow_all && cfg->n_allow > 0) {
        snprintf(err, errlen,
                 "allow_all (--allow-all) and allow rules contradict each other: remove one "
                 "(see docs/fleet.md)");
        return KW_ECONFIG;
    }
    kw_ks_authz_t *authz = NULL; /* enable_ops names, and rules' ops within them */
    char why[512] = "";
    int rc = kw_ks_authz_new(cfg, &authz, why, sizeof(why));
    kw_ks_authz_free(authz);
    if (rc != 0) {
        snprintf(err, errlen, "%s (see docs/fleet.md)", rc == KW_ENOMEM ? "out of memory" : why);
        return KW_ECONFIG;
    }
    return 0;
}

/* 0xA4 is performed when there are ticket keys to serve: a --ticket-secret here, or upstreams
 * that may have one. Naming it in enable_ops without either is an error. */
static int tickets_enable(const kw_ks_config_t *cfg, kw_ks_opset_t *enabled, char *err,
                          size_t errlen)
{
    int source = cfg->ticket_secret != NULL || cfg->n_upstreams > 0;
    if (!source && kw_ks_opset_has(enabled, KW_OP_TICKET_KEYS)) {
        snprintf(err, errlen,
                 "enable_ops: ticket-keys needs --ticket-secret (YAML ticket_secret) "
                 "or an upstream that has one");
        return KW_ECONFIG;
    }
    if (source)
        enabled->bits[KW_OP_TICKET_KEYS >> 6] |= (uint64_t)1 << (KW_OP_TICKET_KEYS & 63);
    return 0;
}

int kw_ks_authz_new(const kw_ks_config_t *cfg, kw_ks_authz_t **out, char *err, size_t errlen)
{
    *out = NULL;
    char why[512] = "";
    kw_ks_authz_t *a = calloc(1, sizeof(*a));
    if (a != NULL && cfg->n_allow > 0)
        a->rules = calloc(cfg->n_allow, sizeof(*a->rules));
    if (a == NULL || (cfg->n_allow > 0 && a->rules == NULL)) {
        free(a);
        return KW_ENOMEM;
    }
    a->allow_all = cfg->allow_all;
    if (kw_ks_opset_from_names(cfg->enable_ops, cfg->n_enable_ops, &a->enabled, why, sizeof(why)) !=
        0) {
        snprintf(err, errlen, "enable_ops: %s", why);
        kw_ks_authz_free(a);
        return KW_ECONFIG;
    }
    if (tickets_enable(cfg, &a->enabled, err, errlen) != 0) {
        kw_ks_authz_free(a);
        return KW_ECONFIG;
    }
    for (size_t i = 0; i < cfg->n_allow; i++) {
        const kw_ks_allow_t *in = &cfg->allow[i];
        rule_t *r = &a->rules[i];
        int rc = rule_compile(in, r, why, sizeof(why));
        a->n = i + 1; /* freed by kw_ks_authz_free even when incomplete */
        if (rc == 0 && in->has_ops && !kw_ks_opset_subset(&r->ops, &a->enabled)) {
            char ops[256];
            kw_ks_opset_t extra = r->ops;
            for (int k = 0; k < 4; k++)
                extra.bits[k] &= ~a->enabled.bits[k];
            snprintf(why, sizeof(why),
                     "ops: %s not enabled on this key server (its enable_ops / --enable-op "
                     "bound every rule)",
                     kw_ks_opset_describe(&extra, ops, sizeof(ops)));
            rc = KW_ECONFIG;
        }
        if (rc == 0 && !in->has_ops)
            r->ops = a->enabled;
        if (rc == 0 && (r->text = rule_text(in)) == NULL)
            rc = KW_ENOMEM;
        if (rc != 0) {
            snprintf(err, errlen, "allow rule %zu: %s", i + 1,
                     rc == KW_ENOMEM ? "out of memory" : why);
            kw_ks_authz_free(a);
            return rc;
        }
    }
    *out = a;
    return 0;
}

void kw_ks_authz_free(kw_ks_authz_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        rule_clear(&a->rules[i]);
    free(a->rules);
    free(a);
}

size_t kw_ks_authz_count(const kw_ks_authz_t *a)
{
    return a != NULL ? a->n : 0;
}

/* ---- the edge's identity ---- */

static int strv_add(char ***v, size_t *n, const unsigned char *s, int len)
{
    if (len <= 0 || memchr(s, 0, (size_t)len) != NULL)
        return 0; /* an embedded NUL is never a valid name */
    char *copy = strndup((const char *)s, (size_t)len);
    char **grown = copy != NULL ? realloc(*v, (*n + 1) * sizeof(**v)) : NULL;
    if (grown == NULL) {
        free(copy);
        return KW_ENOMEM;
    }
    for (char *p = copy; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    grown[(*n)++] = copy;
    *v = grown;
    return 0;
}

/* SAN DNS names of x into *v (lower case); also the CN when with_cn. */
static int cert_names(X509 *x, int with_cn, char ***v, size_t *n)
{
    int rc = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        if (gn->type == GEN_DNS)
            rc = strv_add(v, n, ASN1_STRING_get0_data(gn->d.dNSName),
                          ASN1_STRING_length(gn->d.dNSName));
    }
    GENERAL_NAMES_free(gens);
    if (rc == 0 && with_cn) {
        X509_NAME *subj = X509_get_subject_name(x);
        int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        if (idx >= 0) {
            const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
            rc = strv_add(v, n, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
        }
    }
    return rc;
}

/* The subject CN as UTF-8 (the last CN when there are several); "" when none. */
static char *cert_cn(X509 *x)
{
    X509_NAME *subj = X509_get_subject_name(x);
    int last = -1;
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    while (idx >= 0) {
        last = idx;
        idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx);
    }
    unsigned char *utf8 = NULL;
    int len =
        last >= 0
            ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, last)))
            : -1;
    char *cn = len >= 0 && utf8 != NULL && memchr(utf8, 0, (size_t)len) == NULL
                   ? strndup((char *)utf8, (size_t)len)
                   : strdup("");
    OPENSSL_free(utf8);
    return cn;
}

static int subject_matches(const rule_t *r, const kw_ks_edge_t *e)
{
    if (r->cn != NULL && strcmp(r->cn, e->cn) != 0)
        return 0;
    if (r->has_spki && (!e->has_spki || memcmp(r->spki, e->spki, KW_DIGEST_LEN) != 0))
        return 0;
    if (r->san == NULL)
        return 1;
    for (size_t i = 0; i < e->n_dns; i++)
        if (strcmp(r->san, e->dns[i]) == 0)
            return 1;
    return 0;
}

static int edge_rules(const kw_ks_authz_t *a, kw_ks_edge_t *e)
{
    if (a == NULL || a->n == 0)
        return 0;
    e->rules = calloc(a->n, sizeof(*e->rules));
    if (e->rules == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < a->n; i++)
        if (subject_matches(&a->rules[i], e))
            e->rules[e->n_rules++] = i;
    return 0;
}

kw_ks_edge_t *kw_ks_edge_new(const kw_ks_authz_t *a, SSL *ssl)
{
    return kw_ks_edge_from_cert(a, ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL);
}

kw_ks_edge_t *kw_ks_edge_from_cert(const kw_ks_authz_t *a, X509 *peer)
{
    kw_ks_edge_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    int rc = 0;
    if (peer != NULL) {
        e->cn = cert_cn(peer);
        rc = e->cn != NULL ? cert_names(peer, 0, &e->dns, &e->n_dns) : KW_ENOMEM;
        EVP_PKEY *pub = X509_get0_pubkey(peer);
        e->has_spki = pub != NULL && kw_keyid_from_pkey(pub, e->spki, NULL) == 0;
    } else {
        e->cn = strdup("");
        rc = e->cn != NULL ? 0 : KW_ENOMEM;
    }
    if (rc == 0)
        rc = edge_rules(a, e);
    if (rc != 0) {
        kw_ks_edge_free(e);
        return NULL;
    }
    return e;
}

int kw_ks_edge_rematch(kw_ks_edge_t *e, const kw_ks_authz_t *a)
{
    free(e->rules);
    e->rules = NULL;
    e->n_rules = 0;
    e->denied_logged = 0;
    return edge_rules(a, e);
}

void kw_ks_edge_free(kw_ks_edge_t *e)
{
    if (e == NULL)
        return;
    free(e->cn);
    for (size_t i = 0; i < e->n_dns; i++)
        free(e->dns[i]);
    free(e->dns);
    free(e->rules);
    free(e);
}

/* ---- key matching ---- */

int kw_ks_authz_op_enabled(const kw_ks_authz_t *a, uint8_t opcode)
{
    return a == NULL || kw_ks_opset_has(&a->enabled, opcode);
}

static int spec_matches_key(const spec_t *s, const kw_ks_key_t *key)
{
    switch (s->kind) {
    case SPEC_ANY:
        return 1;
    case SPEC_SHA256:
        return memcmp(s->id, key->digest, KW_DIGEST_LEN) == 0;
    case SPEC_SKI:
        return kw_keystore_key_has_ski(key, s->id);
    case SPEC_NAME:
        return key->name != NULL && strcmp(s->text, key->name) == 0;
    case SPEC_SNI:
        for (size_t i = 0; i < key->n_names; i++)
            if (kw_ks_sni_match(s->text, key->names[i]))
                return 1;
        return 0;
    case SPEC_TICKETS:
        return 0;
    }
    return 0;
}

/* A request's key id against a spec, for a key not held here: only what the id itself says. */
static int spec_matches_id(const spec_t *s, const kw_ks_keyid_t *id)
{
    char sni[256];
    switch (s->kind) {
    case SPEC_ANY:
        return id->kind != KW_KS_KEYID_NONE;
    case SPEC_SHA256:
        return id->kind == KW_KS_KEYID_DIGEST && id->len == KW_DIGEST_LEN &&
               memcmp(s->id, id->ptr, KW_DIGEST_LEN) == 0;
    case SPEC_SKI:
        return id->kind == KW_KS_KEYID_SKI && id->len == KW_SKI_LEN &&
               memcmp(s->id, id->ptr, KW_SKI_LEN) == 0;
    case SPEC_SNI:
        if (id->kind != KW_KS_KEYID_SNI || id->len == 0 || id->len >= sizeof(sni) ||
            memchr(id->ptr, 0, id->len) != NULL)
            return 0;
        for (size_t i = 0; i < id->len; i++) {
            uint8_t ch = id->ptr[i];
            sni[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        sni[id->len] = '\0';
        return kw_ks_sni_match(s->text, sni);
    default:
        return 0; /* a key name is only known for keys held here */
    }
}

/* The verdict over the edge's rules for opcode with key (held here) or id (a key not held). */
static kw_ks_verdict_t decide(const kw_ks_authz_t *a, const kw_ks_edge_t *e, const kw_ks_key_t *key,
                              const kw_ks_keyid_t *id, uint8_t opcode)
{
    if (!kw_ks_opset_has(&a->enabled, opcode))
        return KW_KS_DENIED_OP;
    if (a->n == 0)
        return KW_KS_ALLOWED;
    if (e == NULL)
        return KW_KS_DENIED_KEY;
    int named = 0;
    for (size_t i = 0; i < e->n_rules; i++) {
        const rule_t *r = &a->rules[e->rules[i]];
        for (size_t k = 0; k < r->n_specs; k++) {
            if (key != NULL ? !spec_matches_key(&r->specs[k], key)
                            : !spec_matches_id(&r->specs[k], id))
                continue;
            if (kw_ks_opset_has(&r->ops, opcode))
                return KW_KS_ALLOWED;
            named = 1;
            break;
        }
    }
    return named ? KW_KS_DENIED_OP : KW_KS_DENIED_KEY;
}

kw_ks_verdict_t kw_ks_authz_check(const kw_ks_authz_t *a, const kw_ks_edge_t *e,
                                  const kw_ks_key_t *key, uint8_t opcode)
{
    if (a == NULL)
        return KW_KS_ALLOWED;
    return decide(a, e, key, NULL, opcode);
}

kw_ks_verdict_t kw_ks_authz_check_remote(const kw_ks_authz_t *a, const kw_ks_edge_t *e,
                                         const kw_ks_keyid_t *id, uint8_t opcode)
{
    if (a == NULL)
        return KW_KS_ALLOWED;
    return decide(a, e, NULL, id, opcode);
}

int kw_ks_authz_allow_all(const kw_ks_authz_t *a)
{
    return a == NULL || a->allow_all;
}

const kw_ks_opset_t *kw_ks_authz_enabled(const kw_ks_authz_t *a)
{
    return a != NULL ? &a->enabled : NULL;
}

kw_ks_verdict_t kw_ks_authz_check_tickets(const kw_ks_authz_t *a, const kw_ks_edge_t *e)
{
    if (a == NULL)
        return KW_KS_ALLOWED;
    if (!kw_ks_opset_has(&a->enabled, KW_OP_TICKET_KEYS))
        return KW_KS_DENIED_OP;
    if (e == NULL)
        return KW_KS_DENIED_KEY;
    int named = 0;
    for (size_t i = 0; i < e->n_rules; i++) {
        const rule_t *r = &a->rules[e->rules[i]];
        for (size_t k = 0; k < r->n_specs; k++) {
            if (r->specs[k].kind != SPEC_TICKETS)
                continue;
            if (kw_ks_opset_has(&r->ops, KW_OP_TICKET_KEYS))
                return KW_KS_ALLOWED;
            named = 1;
        }
    }
    return named ? KW_KS_DENIED_OP : KW_KS_DENIED_KEY;
}

const char *kw_ks_authz_rule_text(const kw_ks_authz_t *a, size_t i)
{
    return a != NULL && i < a->n ? a->rules[i].text : NULL;
}
