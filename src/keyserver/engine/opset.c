/*
 * Operation sets (opset.h): a 256-bit set of opcodes, its names and groups, and how it is shown
 * in logs.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "keyward/error.h"
#include "keyward/protocol.h"
#include "engine/opset.h"

static const uint8_t signature_ops[] = {
    KW_OP_RSA_SIGN_MD5SHA1,    KW_OP_RSA_SIGN_SHA1,       KW_OP_RSA_SIGN_SHA224,
    KW_OP_RSA_SIGN_SHA256,     KW_OP_RSA_SIGN_SHA384,     KW_OP_RSA_SIGN_SHA512,
    KW_OP_ECDSA_SIGN_MD5SHA1,  KW_OP_ECDSA_SIGN_SHA1,     KW_OP_ECDSA_SIGN_SHA224,
    KW_OP_ECDSA_SIGN_SHA256,   KW_OP_ECDSA_SIGN_SHA384,   KW_OP_ECDSA_SIGN_SHA512,
    KW_OP_ED25519_SIGN,        KW_OP_RSA_PSS_SIGN_SHA256, KW_OP_RSA_PSS_SIGN_SHA384,
    KW_OP_RSA_PSS_SIGN_SHA512,
};

/* Everything an edge can ask for by name (signatures, the keyward opcodes, the legacy ones). */
static const uint8_t other_ops[] = {
    KW_OP_TLS_RSA_DECRYPT, KW_OP_TLS12_MASTER,    KW_OP_GET_CERT_CHAIN, KW_OP_LIST_KEYS, KW_OP_PING,
    KW_OP_RSA_DECRYPT,     KW_OP_RSA_DECRYPT_RAW,
};

static void add(kw_ks_opset_t *s, uint8_t op)
{
    s->bits[op >> 6] |= (uint64_t)1 << (op & 63);
}

kw_ks_opset_t kw_ks_opset_empty(void)
{
    kw_ks_opset_t s;
    memset(&s, 0, sizeof(s));
    return s;
}

static void add_signatures(kw_ks_opset_t *s)
{
    for (size_t i = 0; i < sizeof(signature_ops); i++)
        add(s, signature_ops[i]);
}

kw_ks_opset_t kw_ks_opset_default(void)
{
    kw_ks_opset_t s = kw_ks_opset_empty();
    add_signatures(&s);
    add(&s, KW_OP_TLS_RSA_DECRYPT);
    add(&s, KW_OP_TLS12_MASTER);
    add(&s, KW_OP_GET_CERT_CHAIN);
    add(&s, KW_OP_LIST_KEYS);
    add(&s, KW_OP_PING);
    return s;
}

int kw_ks_opset_has(const kw_ks_opset_t *set, uint8_t opcode)
{
    return (set->bits[opcode >> 6] >> (opcode & 63)) & 1;
}

/* The opcode named name (an operation an edge can ask for), or -1. */
static int op_by_name(const char *name)
{
    if (strcasecmp(name, "rsa-raw-decrypt") == 0)
        return KW_OP_RSA_DECRYPT_RAW;
    for (size_t i = 0; i < sizeof(signature_ops); i++)
        if (strcasecmp(name, kw_opcode_name(signature_ops[i])) == 0)
            return signature_ops[i];
    for (size_t i = 0; i < sizeof(other_ops); i++)
        if (strcasecmp(name, kw_opcode_name(other_ops[i])) == 0)
            return other_ops[i];
    return -1;
}

int kw_ks_opset_add_name(kw_ks_opset_t *set, const char *name)
{
    if (strcasecmp(name, "default") == 0) {
        kw_ks_opset_t d = kw_ks_opset_default();
        for (int i = 0; i < 4; i++)
            set->bits[i] |= d.bits[i];
        return 0;
    }
    if (strcasecmp(name, "signatures") == 0) {
        add_signatures(set);
        return 0;
    }
    int op = op_by_name(name);
    if (op < 0)
        return KW_EINVAL;
    add(set, (uint8_t)op);
    return 0;
}

int kw_ks_opset_from_names(char *const *v, size_t n, kw_ks_opset_t *out, char *why, size_t whylen)
{
    *out = kw_ks_opset_default();
    for (size_t i = 0; i < n; i++) {
        if (kw_ks_opset_add_name(out, v[i]) != 0) {
            snprintf(why, whylen, "unknown operation '%.64s' (known: %s)", v[i], KW_KS_OPSET_NAMES);
            return KW_EINVAL;
        }
    }
    return 0;
}

int kw_ks_opset_subset(const kw_ks_opset_t *a, const kw_ks_opset_t *b)
{
    for (int i = 0; i < 4; i++)
        if ((a->bits[i] & ~b->bits[i]) != 0)
            return 0;
    return 1;
}

int kw_ks_opset_equal(const kw_ks_opset_t *a, const kw_ks_opset_t *b)
{
    return kw_ks_opset_subset(a, b) && kw_ks_opset_subset(b, a);
}

kw_ks_opset_t kw_ks_opset_and(const kw_ks_opset_t *a, const kw_ks_opset_t *b)
{
    kw_ks_opset_t s;
    for (int i = 0; i < 4; i++)
        s.bits[i] = a->bits[i] & b->bits[i];
    return s;
}

static void append(char *out, size_t cap, const char *word)
{
    size_t len = strlen(out);
    if (len + 1 < cap)
        snprintf(out + len, cap - len, "%s%s", len > 0 ? ", " : "", word);
}

char *kw_ks_opset_describe(const kw_ks_opset_t *set, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    out[0] = '\0';
    kw_ks_opset_t d = kw_ks_opset_default();
    kw_ks_opset_t rest = *set;
    if (kw_ks_opset_subset(&d, set)) {
        append(out, cap, "default");
        for (int i = 0; i < 4; i++)
            rest.bits[i] &= ~d.bits[i];
    }
    for (unsigned op = 0; op < 256; op++)
        if (kw_ks_opset_has(&rest, (uint8_t)op))
            append(out, cap, kw_opcode_name((uint8_t)op));
    if (out[0] == '\0')
        snprintf(out, cap, "none");
    return out;
}
