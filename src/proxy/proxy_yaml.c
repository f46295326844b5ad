/*
 * keyward-proxy YAML configuration: a mapping whose keys are the long flag names (with '_' or
 * '-'), values scalars or sequences of scalars; `certs` (or `cert`) items may also be mappings
 * {cert: FILE, key: KEY}. Every value goes through kw_proxy_config_set, like a flag.
 */
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "keyward/error.h"
#include "proxy_config.h"

typedef struct yaml_walk {
    kw_proxy_config_t *cfg;
    yaml_document_t *doc;
    const char *path;
    char *err;
    size_t errlen;
} yaml_walk_t;

static const char *scalar(yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad(yaml_walk_t *w, yaml_node_t *n, const char *what)
{
    snprintf(w->err, w->errlen, "%s:%lu: %s", w->path,
             n != NULL ? (unsigned long)n->start_mark.line + 1 : 0ul, what);
    return KW_ECONFIG;
}

static int set(yaml_walk_t *w, yaml_node_t *at, const char *key, const char *value)
{
    char msg[256];
    int rc = kw_proxy_config_set(w->cfg, key, value, msg, sizeof(msg));
    if (rc != 0) {
        return bad(w, at, msg);
    }
    return 0;
}

/* {cert: FILE, key: KEY} */
static int cert_mapping(yaml_walk_t *w, yaml_node_t *m)
{
    const char *cert = NULL;
    const char *key = NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(w->doc, p->key));
        const char *v = scalar(yaml_document_get_node(w->doc, p->value));
        if (k == NULL || v == NULL) {
            return bad(w, m, "certs entries are {cert: FILE, key: KEY}");
        }
        if (strcmp(k, "cert") == 0) {
            cert = v;
        } else if (strcmp(k, "key") == 0) {
            key = v;
        } else {
            return bad(w, m, "certs entries know only the keys cert and key");
        }
    }
    if (cert == NULL) {
        return bad(w, m, "a certs entry needs cert: FILE");
    }
    char spec[4096];
    int n = snprintf(spec, sizeof(spec), "%s%s%s", cert, key != NULL ? "," : "",
                     key != NULL ? key : "");
    if (n < 0 || (size_t)n >= sizeof(spec) || strchr(cert, ',') != NULL) {
        return bad(w, m, "certificate path too long or contains a comma");
    }
    return set(w, m, "cert", spec);
}

static int value_node(yaml_walk_t *w, const char *key, yaml_node_t *v)
{
    if (v->type == YAML_SCALAR_NODE) {
        return set(w, v, key, scalar(v));
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        return bad(w, v, "expected a value or a list");
    }
    if (!kw_proxy_config_is_list(key)) {
        return bad(w, v, "this option takes one value, not a list");
    }
    int is_cert = strcmp(key, "cert") == 0;
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, *i);
        int rc;
        if (item != NULL && item->type == YAML_MAPPING_NODE && is_cert) {
            rc = cert_mapping(w, item);
        } else if (scalar(item) != NULL) {
            rc = set(w, item, key, scalar(item));
        } else {
            rc = bad(w, item, "list items must be plain values");
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int walk_root(yaml_walk_t *w)
{
    yaml_node_t *root = yaml_document_get_root_node(w->doc);
    if (root == NULL) {
        return 0; /* empty file */
    }
    if (root->type != YAML_MAPPING_NODE) {
        return bad(w, root, "the file must be a mapping of option: value");
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        const char *key = scalar(k);
        if (key == NULL || v == NULL) {
            return bad(w, k, "keys must be plain names");
        }
        /* "certs"/"keyservers" read better in a file; they are the repeatable flags. */
        if (strcmp(key, "certs") == 0) {
            key = "cert";
        } else if (strcmp(key, "keyservers") == 0) {
            key = "keyserver";
        } else if (strcmp(key, "config") == 0 || strcmp(key, "help") == 0) {
            return bad(w, k, "config and help cannot appear in a config file");
        }
        int rc = value_node(w, key, v);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Loads and walks the document of a parser whose input is set; name is used in errors. */
static int load(kw_proxy_config_t *cfg, yaml_parser_t *parser, const char *name, char *err,
                size_t errlen)
{
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc)) {
        snprintf(err, errlen, "%s:%lu: YAML error: %s", name,
                 (unsigned long)parser->problem_mark.line + 1,
                 parser->problem != NULL ? parser->problem : "unknown");
        return KW_ECONFIG;
    }
    yaml_walk_t w = {cfg, &doc, name, err, errlen};
    int rc = walk_root(&w);
    yaml_document_delete(&doc);
    return rc;
}

int kw_proxy_config_load_yaml(kw_proxy_config_t *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open config file %s: %m", path);
        return KW_ECONFIG;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    yaml_parser_set_input_file(&parser, f);
    int rc = load(cfg, &parser, path, err, errlen);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int kw_proxy_config_load_yaml_buffer(kw_proxy_config_t *cfg, const char *name,
                                     const unsigned char *data, size_t len, char *err,
                                     size_t errlen)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, data, len);
    int rc = load(cfg, &parser, name, err, errlen);
    yaml_parser_delete(&parser);
    return rc;
}
