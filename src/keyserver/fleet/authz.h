/*
 * Per-edge authorisation: which keys an edge may use, from the `allow` rules of the configuration
 * (YAML `allow:` or `--allow 'SUBJECT=KEYSPEC[,KEYSPEC...]'`). An edge is named by its verified
 * client certificate: subject CN, a SAN DNS name, or the SHA-256 of its SubjectPublicKeyInfo.
 * With no rule configured every edge may use every key; once any rule exists, a request is
 * allowed only when a rule for this edge names its key and grants its operation. Whatever the
 * rules say, only the operations enabled on the key server (--enable-op, YAML enable_ops; opset.h)
 * are performed. The key is the one request dispatch resolved (resolve.h). See docs/fleet.md.
 *
 * Everything here runs on the loop thread. A kw_ks_edge_t is made once per connection at handshake
 * time and caches the rules that apply to it.
 */
#ifndef KW_KS_AUTHZ_H
#define KW_KS_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "keystore/keystore.h"
#include "keyward/protocol.h"
#include "engine/opset.h"
#include "engine/resolve.h"

typedef struct kw_ks_authz_s kw_ks_authz_t;

/* The identity of a connected edge and the rules that name it. Owned by its connection. */
typedef struct kw_ks_edge_s {
    char *cn;   /* subject CN (UTF-8), "" when absent; owned */
    char **dns; /* SAN DNS names, lower case; owned */
    size_t n_dns;
    uint8_t spki[KW_DIGEST_LEN]; /* SHA-256 of the certificate's SubjectPublicKeyInfo DER */
    int has_spki;
    size_t *rules; /* indexes of the rules whose subject matches this edge; owned */
    size_t n_rules;
    int denied_logged; /* a denial on this connection was logged (once per connection) */
} kw_ks_edge_t;

/*
 * Compiles the rules of cfg (cfg->allow, cfg->n_allow), the server's enabled operations
 * (cfg->enable_ops) and cfg->allow_all. Returns 0 and a new object in *out (with no rule, every
 * edge may use every key for the enabled operations), or KW_ECONFIG with the rule and reason in
 * err (an unknown operation, a rule granting an operation the server does not enable), or
 * KW_ENOMEM. A NULL object (embedded uses, tests) allows everything.
 */
int kw_ks_authz_new(const kw_ks_config_t *cfg, kw_ks_authz_t **out, char *err, size_t errlen);
void kw_ks_authz_free(kw_ks_authz_t *a);

/* Number of compiled rules (0 for NULL). */
size_t kw_ks_authz_count(const kw_ks_authz_t *a);

/*
 * Checks one rule of the config (subject fields and key specs) without compiling it. Returns 0 or
 * KW_ECONFIG with the reason in why. For config loaders that want to report the file's line.
 */
int kw_ks_authz_check_rule(const kw_ks_allow_t *rule, char *why, size_t whylen);

/*
 * Parses the flag form "EDGE=KEYSPEC[,KEYSPEC...]" (EDGE: cn:NAME, san:DNSNAME or spki:HEX) and
 * appends it to cfg->allow. Returns 0, KW_EINVAL (syntax) or KW_ENOMEM. The key specs are checked
 * by kw_ks_config_validate (kw_ks_authz_check_rule), which reports the reason.
 */
int kw_ks_allow_add_flag(kw_ks_config_t *cfg, const char *text);

/* The identity in ssl's verified peer certificate, with the rules of a (may be NULL) that name it.
 * NULL when out of memory. An SSL without a peer certificate gives an empty identity. */
kw_ks_edge_t *kw_ks_edge_new(const kw_ks_authz_t *a, SSL *ssl);

/* The same from a certificate (NULL: an empty identity). */
kw_ks_edge_t *kw_ks_edge_from_cert(const kw_ks_authz_t *a, X509 *cert);
void kw_ks_edge_free(kw_ks_edge_t *e);

/* Matches e against the rules of a (may be NULL) instead of those it was made with, after a
 * reload. Returns 0, or KW_ENOMEM with e left naming no rule (so allowed nothing under rules). */
int kw_ks_edge_rematch(kw_ks_edge_t *e, const kw_ks_authz_t *a);

typedef enum kw_ks_verdict {
    KW_KS_ALLOWED = 0,
    KW_KS_DENIED_KEY, /* no rule for the edge names the key */
    KW_KS_DENIED_OP,  /* the operation is not enabled here, or no rule naming the key grants it */
} kw_ks_verdict_t;

/* 1 when the key server performs opcode at all (a NULL: 1). */
int kw_ks_authz_op_enabled(const kw_ks_authz_t *a, uint8_t opcode);

/* Whether edge e may perform opcode with key (held here). a NULL: allowed. */
kw_ks_verdict_t kw_ks_authz_check(const kw_ks_authz_t *a, const kw_ks_edge_t *e,
                                  const kw_ks_key_t *key, uint8_t opcode);

/*
 * The same for a key this server does not hold (the request is to be forwarded upstream), named
 * by the request's one key id: only `*`, `sha256:` (a digest id), `ski:` (an SKI id) and `sni:`
 * (an SNI id, which only certificate requests have) can match. a NULL: allowed.
 */
kw_ks_verdict_t kw_ks_authz_check_remote(const kw_ks_authz_t *a, const kw_ks_edge_t *e,
                                         const kw_ks_keyid_t *id, uint8_t opcode);

/* For reload checks and logs: allow_all, the enabled set (NULL for a NULL object), the text of
 * rule i (NULL past the end). */
int kw_ks_authz_allow_all(const kw_ks_authz_t *a);
const kw_ks_opset_t *kw_ks_authz_enabled(const kw_ks_authz_t *a);
const char *kw_ks_authz_rule_text(const kw_ks_authz_t *a, size_t i);

#endif /* KW_KS_AUTHZ_H */
