/*
 * A schema-checked YAML reader (libyaml's event parser) for configuration files. The caller
 * describes the allowed keys and their shapes; the reader walks the document, refuses unknown keys,
 * duplicate keys, wrong shapes, aliases and extra documents with "FILE:LINE: reason", and hands
 * every scalar value to a callback that converts and stores it (and may refuse it, with a reason
 * that gets the same FILE:LINE prefix). Values are never interpreted here.
 */
#ifndef KW_CONFIG_YAML_H
#define KW_CONFIG_YAML_H

#include <stddef.h>

typedef enum kw_ks_yaml_kind {
    KW_YAML_SCALAR = 1, /* key: value */
    KW_YAML_LIST,     /* key: [a, b] or a block sequence; a single value counts as a list of one */
    KW_YAML_MAP,      /* key: { nested keys } */
    KW_YAML_MAP_LIST, /* key: a sequence of maps, each with the nested keys */
} kw_ks_yaml_kind_t;

/* One allowed key. A schema is an array ended by an entry whose name is NULL. */
typedef struct kw_ks_yaml_key_s {
    const char *name;
    kw_ks_yaml_kind_t kind;
    int id;                                  /* handed to the callback */
    const struct kw_ks_yaml_key_s *children; /* MAP and MAP_LIST: the nested schema */
} kw_ks_yaml_key_t;

typedef enum kw_ks_yaml_event {
    KW_YAML_VALUE = 1, /* a scalar of key id (SCALAR, or one element of a LIST) */
    KW_YAML_BEGIN,     /* a LIST or a MAP_LIST item starts (value NULL) */
    KW_YAML_END,       /* a MAP_LIST item ends (value NULL): check it is complete */
} kw_ks_yaml_event_t;

/*
 * Called in document order. Returns 0, or non-zero with a reason in why (the reader prefixes it
 * with FILE:LINE of the value, or of the item for KW_YAML_END).
 */
typedef int (*kw_ks_yaml_cb)(void *arg, kw_ks_yaml_event_t ev, int id, const char *value, char *why,
                             size_t whylen);

/*
 * Reads path against schema (the top level must be a map; an empty file is an empty map).
 * Returns 0, KW_EIO when the file cannot be read, or KW_ECONFIG with "FILE:LINE: reason" in err.
 */
int kw_ks_yaml_load(const char *path, const kw_ks_yaml_key_t *schema, kw_ks_yaml_cb cb, void *arg,
                    char *err, size_t errlen);

/* The same for len bytes of YAML in memory, named name in errors (the fuzz target uses it). */
int kw_ks_yaml_load_buffer(const char *name, const unsigned char *data, size_t len,
                           const kw_ks_yaml_key_t *schema, kw_ks_yaml_cb cb, void *arg, char *err,
                           size_t errlen);

#endif /* KW_CONFIG_YAML_H */
