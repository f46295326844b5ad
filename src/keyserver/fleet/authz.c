/*
 * Per-edge authorisation (authz.h), the rules: compiling the allow rules and the enabled
 * operations from the configuration (authz_check.c reads an edge's identity and decides).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include "fleet/authz.h"
#include "fleet/authz_int.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_log.h"
#include "kw_hex.h"

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
        if (rc == 0) {
            r->text = rule_text(in);
            if (r->text == NULL)
                rc = KW_ENOMEM;
        }
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
