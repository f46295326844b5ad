/*
 * The list-valued settings of the key server configuration: PKCS#11 token entries and
 * authorisation rules; append and free (string lists: kw_strlist.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "keyward/error.h"

kw_ks_pkcs11_t *kw_ks_config_add_pkcs11(kw_ks_config_t *cfg)
{
    kw_ks_pkcs11_t *grown = realloc(cfg->pkcs11, (cfg->n_pkcs11 + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    cfg->pkcs11 = grown;
    memset(&grown[cfg->n_pkcs11], 0, sizeof(*grown));
    return &grown[cfg->n_pkcs11++];
}

kw_ks_allow_t *kw_ks_config_add_allow(kw_ks_config_t *cfg)
{
    kw_ks_allow_t *grown = realloc(cfg->allow, (cfg->n_allow + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    cfg->allow = grown;
    memset(&grown[cfg->n_allow], 0, sizeof(*grown));
    return &grown[cfg->n_allow++];
}

void kw_ks_config_free_pkcs11(kw_ks_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_pkcs11; i++) {
        free(cfg->pkcs11[i].module);
        free(cfg->pkcs11[i].token);
        free(cfg->pkcs11[i].pin_file);
        free(cfg->pkcs11[i].uri);
    }
    free(cfg->pkcs11);
    cfg->pkcs11 = NULL;
    cfg->n_pkcs11 = 0;
}

void kw_ks_config_free_allow(kw_ks_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_allow; i++) {
        free(cfg->allow[i].cn);
        free(cfg->allow[i].san);
        free(cfg->allow[i].spki);
        kw_strlist_free(&cfg->allow[i].keys, &cfg->allow[i].n_keys);
        kw_strlist_free(&cfg->allow[i].ops, &cfg->allow[i].n_ops);
    }
    free(cfg->allow);
    cfg->allow = NULL;
    cfg->n_allow = 0;
}

/* Sets the subject of rule a from "cn:NAME", "san:NAME" or "spki:HEX". */
static int allow_subject(kw_ks_allow_t *a, const char *subj, size_t len)
{
    char **slot = NULL;
    size_t skip = 0;
    if (len > 3 && strncasecmp(subj, "cn:", 3) == 0) {
        slot = &a->cn;
        skip = 3;
    } else if (len > 4 && strncasecmp(subj, "san:", 4) == 0) {
        slot = &a->san;
        skip = 4;
    } else if (len > 5 && strncasecmp(subj, "spki:", 5) == 0) {
        slot = &a->spki;
        skip = 5;
    } else {
        return KW_EINVAL;
    }
    *slot = strndup(subj + skip, len - skip);
    return *slot != NULL ? 0 : KW_ENOMEM;
}

/* Appends the comma-separated key specs of list to a. */
static int allow_keys(kw_ks_allow_t *a, const char *list)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char *one = strndup(p, len);
        if (one == NULL)
            return KW_ENOMEM;
        int rc = len == 0 ? KW_EINVAL : kw_strlist_add(&a->keys, &a->n_keys, one);
        free(one);
        if (rc != 0 || comma == NULL)
            return rc;
        p = comma + 1;
    }
}

int kw_ks_allow_add_flag(kw_ks_config_t *cfg, const char *text)
{
    const char *eq = strchr(text, '=');
    if (eq == NULL || eq == text || eq[1] == '\0')
        return KW_EINVAL;
    kw_ks_allow_t *a = kw_ks_config_add_allow(cfg);
    if (a == NULL)
        return KW_ENOMEM;
    int rc = allow_subject(a, text, (size_t)(eq - text));
    if (rc == 0)
        rc = allow_keys(a, eq + 1);
    return rc;
}
