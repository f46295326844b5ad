/*
 * The key server's YAML config file (--config FILE): the schema of its keys and their mapping onto
 * kw_ks_config_t. Keys that mirror a command-line flag are applied through the flag's own setter
 * (kw_ks_config_set), so a value means the same in the file and on the command line and is checked
 * by the same code; PKCS#11 entries and allow rules, which have no flag form, are filled here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_yaml.h"
#include "keyward/error.h"
#include "config/opset.h"

enum {
    K_FLAG = 0x100, /* ids below this are not flags */
    K_PKCS11 = 1,
    K_P11_MODULE,
    K_P11_TOKEN,
    K_P11_PIN,
    K_P11_URI,
    K_ALLOW,
    K_ALLOW_CN,
    K_ALLOW_SAN,
    K_ALLOW_SPKI,
    K_ALLOW_KEYS,
    K_ALLOW_OPS,
    K_LIMITS,
    K_ALLOW_ALL,
};

/* Flag-backed keys: the YAML name and the flag it stands for. */
static const struct {
    const char *key;
    const char *flag;
} flag_keys[] = {
    {"listen", "listen"},
    {"cert", "cert"},
    {"key", "key"},
    {"ca", "ca"},
    {"keys", "keys"},
    {"workers", "workers"},
    {"log_level", "log-level"},
    {"ctx_cache", "ctx-cache"},
    {"metrics", "metrics"},
    {"audit_log", "audit-log"},
    {"upstreams", "upstream"},
    {"max_connections", "max-connections"},
    {"max_inflight", "max-inflight"},
    {"request_timeout_ms", "request-timeout-ms"},
    {"idle_timeout_ms", "idle-timeout-ms"},
    {"handshake_timeout_ms", "handshake-timeout-ms"},
    {"upstream_cert", "upstream-cert"},
    {"upstream_key", "upstream-key"},
    {"upstream_ca", "upstream-ca"},
    {"upstream_timeout_ms", "upstream-timeout-ms"},
    {"user", "user"},
    {"enable_ops", "enable-op"},              /* 21 */
    {"audit_fsync", "audit-fsync"},           /* 22 */
    {"frame_timeout_ms", "frame-timeout-ms"}, /* 23 */
    {"rate_limit", "rate-limit"},
    {"rate_burst", "rate-burst"},
    {"max_handshakes", "max-handshakes"}, /* 26 */
    {"max_handshakes_per_ip", "max-handshakes-per-ip"},
    {"metrics_token_file", "metrics-token-file"}, /* 28 */
    {"rsa_cache_factors", "rsa-cache-factors"},   /* 29 */
    {"ticket_secret", "ticket-secret"},           /* 30 */
    {"ticket_rotation_s", "ticket-rotation-s"},   /* 31 */
};

#define FLAG_ID(i) (K_FLAG + (i))

static const kw_ks_yaml_key_t pkcs11_keys[] = {
    {"module", KW_YAML_SCALAR, K_P11_MODULE, NULL},
    {"token", KW_YAML_SCALAR, K_P11_TOKEN, NULL},
    {"pin_file", KW_YAML_SCALAR, K_P11_PIN, NULL},
    {"uri", KW_YAML_SCALAR, K_P11_URI, NULL},
    {NULL, 0, 0, NULL},
};

static const kw_ks_yaml_key_t allow_keys[] = {
    {"cn", KW_YAML_SCALAR, K_ALLOW_CN, NULL},     {"san", KW_YAML_SCALAR, K_ALLOW_SAN, NULL},
    {"spki", KW_YAML_SCALAR, K_ALLOW_SPKI, NULL}, {"keys", KW_YAML_LIST, K_ALLOW_KEYS, NULL},
    {"ops", KW_YAML_LIST, K_ALLOW_OPS, NULL},     {NULL, 0, 0, NULL},
};

static const kw_ks_yaml_key_t limit_keys[] = {
    {"max_connections", KW_YAML_SCALAR, FLAG_ID(11), NULL},
    {"max_inflight", KW_YAML_SCALAR, FLAG_ID(12), NULL},
    {"request_timeout_ms", KW_YAML_SCALAR, FLAG_ID(13), NULL},
    {"idle_timeout_ms", KW_YAML_SCALAR, FLAG_ID(14), NULL},
    {"handshake_timeout_ms", KW_YAML_SCALAR, FLAG_ID(15), NULL},
    {"frame_timeout_ms", KW_YAML_SCALAR, FLAG_ID(23), NULL},
    {"rate_limit", KW_YAML_SCALAR, FLAG_ID(24), NULL},
    {"rate_burst", KW_YAML_SCALAR, FLAG_ID(25), NULL},
    {"max_handshakes", KW_YAML_SCALAR, FLAG_ID(26), NULL},
    {"max_handshakes_per_ip", KW_YAML_SCALAR, FLAG_ID(27), NULL},
    {NULL, 0, 0, NULL},
};

static const kw_ks_yaml_key_t top_keys[] = {
    {"listen", KW_YAML_SCALAR, FLAG_ID(0), NULL},
    {"cert", KW_YAML_SCALAR, FLAG_ID(1), NULL},
    {"key", KW_YAML_SCALAR, FLAG_ID(2), NULL},
    {"ca", KW_YAML_SCALAR, FLAG_ID(3), NULL},
    {"keys", KW_YAML_LIST, FLAG_ID(4), NULL},
    {"workers", KW_YAML_SCALAR, FLAG_ID(5), NULL},
    {"log_level", KW_YAML_SCALAR, FLAG_ID(6), NULL},
    {"ctx_cache", KW_YAML_SCALAR, FLAG_ID(7), NULL},
    {"metrics", KW_YAML_SCALAR, FLAG_ID(8), NULL},
    {"audit_log", KW_YAML_SCALAR, FLAG_ID(9), NULL},
    {"upstreams", KW_YAML_LIST, FLAG_ID(10), NULL},
    {"upstream_cert", KW_YAML_SCALAR, FLAG_ID(16), NULL},
    {"upstream_key", KW_YAML_SCALAR, FLAG_ID(17), NULL},
    {"upstream_ca", KW_YAML_SCALAR, FLAG_ID(18), NULL},
    {"upstream_timeout_ms", KW_YAML_SCALAR, FLAG_ID(19), NULL},
    {"user", KW_YAML_SCALAR, FLAG_ID(20), NULL},
    {"enable_ops", KW_YAML_LIST, FLAG_ID(21), NULL},
    {"allow_all", KW_YAML_SCALAR, K_ALLOW_ALL, NULL},
    {"audit_fsync", KW_YAML_SCALAR, FLAG_ID(22), NULL},
    {"frame_timeout_ms", KW_YAML_SCALAR, FLAG_ID(23), NULL},
    {"rate_limit", KW_YAML_SCALAR, FLAG_ID(24), NULL},
    {"rate_burst", KW_YAML_SCALAR, FLAG_ID(25), NULL},
    {"max_handshakes", KW_YAML_SCALAR, FLAG_ID(26), NULL},
    {"max_handshakes_per_ip", KW_YAML_SCALAR, FLAG_ID(27), NULL},
    {"metrics_token_file", KW_YAML_SCALAR, FLAG_ID(28), NULL},
    {"rsa_cache_factors", KW_YAML_SCALAR, FLAG_ID(29), NULL},
    {"ticket_secret", KW_YAML_SCALAR, FLAG_ID(30), NULL},
    {"ticket_rotation_s", KW_YAML_SCALAR, FLAG_ID(31), NULL},
    {"pkcs11", KW_YAML_MAP_LIST, K_PKCS11, pkcs11_keys},
    {"allow", KW_YAML_MAP_LIST, K_ALLOW, allow_keys},
    {"limits", KW_YAML_MAP, K_LIMITS, limit_keys},
    {NULL, 0, 0, NULL},
};

static int set_field(char **slot, const char *v, char *why, size_t whylen)
{
    if (v == NULL || *v == '\0') {
        snprintf(why, whylen, "must not be empty");
        return KW_ECONFIG;
    }
    char *copy = strdup(v);
    if (copy == NULL) {
        snprintf(why, whylen, "out of memory");
        return KW_ENOMEM;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

static int pkcs11_event(kw_ks_config_t *cfg, kw_ks_yaml_event_t ev, int id, const char *v,
                        char *why, size_t whylen)
{
    if (ev == KW_YAML_BEGIN)
        return kw_ks_config_add_pkcs11(cfg) == NULL ? KW_ENOMEM : 0;
    kw_ks_pkcs11_t *p = &cfg->pkcs11[cfg->n_pkcs11 - 1];
    if (ev == KW_YAML_END) {
        if (p->uri == NULL && (p->module == NULL || p->token == NULL || p->pin_file == NULL)) {
            snprintf(why, whylen, "each entry needs module, token and pin_file, or a uri");
            return KW_ECONFIG;
        }
        if (p->uri != NULL && strncmp(p->uri, "pkcs11:", 7) != 0) {
            snprintf(why, whylen, "uri must be an RFC 7512 URI starting 'pkcs11:'");
            return KW_ECONFIG;
        }
        return 0;
    }
    switch (id) {
    case K_P11_MODULE:
        return set_field(&p->module, v, why, whylen);
    case K_P11_TOKEN:
        return set_field(&p->token, v, why, whylen);
    case K_P11_PIN:
        return set_field(&p->pin_file, v, why, whylen);
    default:
        return set_field(&p->uri, v, why, whylen);
    }
}

static int allow_event(kw_ks_config_t *cfg, kw_ks_yaml_event_t ev, int id, const char *v, char *why,
                       size_t whylen)
{
    if (ev == KW_YAML_BEGIN && id == K_ALLOW)
        return kw_ks_config_add_allow(cfg) == NULL ? KW_ENOMEM : 0;
    kw_ks_allow_t *a = &cfg->allow[cfg->n_allow - 1];
    if (ev == KW_YAML_BEGIN) { /* the keys or ops list starts */
        if (id == K_ALLOW_OPS)
            a->has_ops = 1;
        return 0;
    }
    if (ev == KW_YAML_END) {
        if (a->cn == NULL && a->san == NULL && a->spki == NULL) {
            snprintf(why, whylen, "each rule needs cn, san or spki (which edges it is for)");
            return KW_ECONFIG;
        }
        if (a->n_keys == 0) {
            snprintf(why, whylen, "each rule needs keys (key names, sha256:HEX ids, or \"*\")");
            return KW_ECONFIG;
        }
        return 0;
    }
    switch (id) {
    case K_ALLOW_CN:
        return set_field(&a->cn, v, why, whylen);
    case K_ALLOW_SAN:
        return set_field(&a->san, v, why, whylen);
    case K_ALLOW_SPKI:
        return set_field(&a->spki, v, why, whylen);
    case K_ALLOW_OPS: {
        kw_ks_opset_t probe = kw_ks_opset_empty();
        if (kw_ks_opset_add_name(&probe, v) != 0) {
            snprintf(why, whylen, "unknown operation '%.64s' (known: %s)", v, KW_KS_OPSET_NAMES);
            return KW_ECONFIG;
        }
        return kw_strlist_add(&a->ops, &a->n_ops, v) == 0 ? 0 : KW_ENOMEM;
    }
    default:
        return kw_strlist_add(&a->keys, &a->n_keys, v) == 0 ? 0 : KW_ENOMEM;
    }
}

static int on_event(void *arg, kw_ks_yaml_event_t ev, int id, const char *value, char *why,
                    size_t whylen)
{
    kw_ks_config_t *cfg = arg;
    if (id >= K_FLAG) {
        size_t i = (size_t)(id - K_FLAG);
        if (ev == KW_YAML_BEGIN) /* a list in the file replaces the default list */
            return kw_ks_config_set(cfg, flag_keys[i].flag, NULL, why, whylen);
        if (ev != KW_YAML_VALUE)
            return 0;
        return kw_ks_config_set(cfg, flag_keys[i].flag, value, why, whylen);
    }
    if (id >= K_PKCS11 && id <= K_P11_URI)
        return pkcs11_event(cfg, ev, id, value, why, whylen);
    if (id >= K_ALLOW && id <= K_ALLOW_OPS)
        return allow_event(cfg, ev, id, value, why, whylen);
    if (id == K_ALLOW_ALL && ev == KW_YAML_VALUE) {
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
            cfg->allow_all = value[0] == 't';
            return 0;
        }
        snprintf(why, whylen, "write true or false");
        return KW_ECONFIG;
    }
    return 0;
}

int kw_ks_config_load_file(kw_ks_config_t *cfg, const char *path, char *err, size_t errlen)
{
    return kw_ks_yaml_load(path, top_keys, on_event, cfg, err, errlen);
}

int kw_ks_config_load_buffer(kw_ks_config_t *cfg, const char *name, const unsigned char *data,
                             size_t len, char *err, size_t errlen)
{
    return kw_ks_yaml_load_buffer(name, data, len, top_keys, on_event, cfg, err, errlen);
}
