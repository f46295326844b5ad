/*
 * keyward-proxy YAML files: a mapping whose keys are the long flag names (with '_' or '-'),
 * values scalars or sequences of scalars; `certs` (or `cert`) items may also be mappings
 * {cert: FILE, key: KEY}. The reader knows no option: it hands every value to the sink it is
 * given (proxy_config.c's setter), as the command line does, and sits on src/common's kw_yaml.
 */
#ifndef KW_PROXY_YAML_H
#define KW_PROXY_YAML_H

#include <stddef.h>

typedef struct kw_proxy_yaml_sink_s {
    /* Sets option key to value (a list option appends). 0, or non-zero with a reason in why. */
    int (*set)(void *arg, const char *key, const char *value, char *why, size_t whylen);
    /* 1 when option key takes a list. */
    int (*is_list)(const char *key);
    void *arg;
} kw_proxy_yaml_sink_t;

/* Reads path into sink. Returns 0, or KW_ECONFIG / KW_ENOMEM with "FILE:LINE: reason" (or why
 * the file cannot be read) in err. */
int kw_proxy_yaml_load(const char *path, const kw_proxy_yaml_sink_t *sink, char *err,
                       size_t errlen);

/* The same for len bytes of YAML in memory, named name in errors. */
int kw_proxy_yaml_load_buffer(const char *name, const unsigned char *data, size_t len,
                              const kw_proxy_yaml_sink_t *sink, char *err, size_t errlen);

#endif /* KW_PROXY_YAML_H */
