/*
 * Per-edge authorisation (authz.h), the checks: reading an edge's identity from its client
 * certificate and deciding whether an edge may perform an operation with a key. `sni:` specs
 * match the certificate names the key store keeps per key. The rules come from authz.c.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include "fleet/authz.h"
#include "fleet/authz_int.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_strlist.h"
#include "kw_tls.h"

/* ---- the edge's identity ---- */

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
        rc = e->cn != NULL ? kw_tls_cert_dns_names(peer, 0, &e->dns, &e->n_dns) : KW_ENOMEM;
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
    kw_strlist_free(&e->dns, &e->n_dns);
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
        return id->kind == KW_KS_KEYID_SNI && kw_ks_sni_lower(id->ptr, id->len, sni) == 0 &&
               kw_ks_sni_match(s->text, sni);
    default:
        return 0; /* a key name is only known for keys held here */
    }
}

/* What a request asks about: a key held here, a key id (a key not held), or the tickets. */
typedef struct target_s {
    const kw_ks_key_t *key;
    const kw_ks_keyid_t *id;
    int tickets;
} target_t;

static int spec_matches(const spec_t *s, const target_t *t)
{
    if (t->tickets)
        return s->kind == SPEC_TICKETS;
    return t->key != NULL ? spec_matches_key(s, t->key) : spec_matches_id(s, t->id);
}

/* The verdict over the edge's rules for opcode on t. Without authorisation (a NULL) everything
 * is allowed; without rules every enabled key operation is; the tickets are given only to an
 * edge a rule names for them. */
static kw_ks_verdict_t decide(const kw_ks_authz_t *a, const kw_ks_edge_t *e, const target_t *t,
                              uint8_t opcode)
{
    if (a == NULL)
        return KW_KS_ALLOWED;
    if (!kw_ks_opset_has(&a->enabled, opcode))
        return KW_KS_DENIED_OP;
    if (a->n == 0 && !t->tickets)
        return KW_KS_ALLOWED;
    if (e == NULL)
        return KW_KS_DENIED_KEY;
    int named = 0;
    for (size_t i = 0; i < e->n_rules; i++) {
        const rule_t *r = &a->rules[e->rules[i]];
        for (size_t k = 0; k < r->n_specs; k++) {
            if (!spec_matches(&r->specs[k], t))
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
    target_t t = {key, NULL, 0};
    return decide(a, e, &t, opcode);
}

kw_ks_verdict_t kw_ks_authz_check_remote(const kw_ks_authz_t *a, const kw_ks_edge_t *e,
                                         const kw_ks_keyid_t *id, uint8_t opcode)
{
    target_t t = {NULL, id, 0};
    return decide(a, e, &t, opcode);
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
    target_t t = {NULL, NULL, 1};
    return decide(a, e, &t, KW_OP_TICKET_KEYS);
}

const char *kw_ks_authz_rule_text(const kw_ks_authz_t *a, size_t i)
{
    return a != NULL && i < a->n ? a->rules[i].text : NULL;
}
