/*
 * The list-valued settings of the key server configuration: string lists (key directories,
 * upstreams, a rule's keys), PKCS#11 token entries and authorisation rules; append and free.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "keyward/error.h"

int kw_ks_strlist_add(char ***v, size_t *n, const char *s)
{
    char *copy = strdup(s);
    char **grown = copy != NULL ? realloc(*v, (*n + 1) * sizeof(**v)) : NULL;
    if (grown == NULL) {
        free(copy);
        return KW_ENOMEM;
    }
    grown[*n] = copy;
    *v = grown;
    (*n)++;
    return 0;
}

void kw_ks_strlist_free(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

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
        kw_ks_strlist_free(&cfg->allow[i].keys, &cfg->allow[i].n_keys);
        kw_ks_strlist_free(&cfg->allow[i].ops, &cfg->allow[i].n_ops);
    }
    free(cfg->allow);
    cfg->allow = NULL;
    cfg->n_allow = 0;
}
