/*
 * The compiled authorisation rules (private to fleet/authz*.c): authz.c builds them from the
 * configuration, authz_check.c matches an edge and a key against them.
 */
#ifndef KW_KS_AUTHZ_INT_H
#define KW_KS_AUTHZ_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/authz.h"
#include "keyward/keyid.h"

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

#endif
