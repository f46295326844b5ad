/*
 * The YAML reader both binaries' configuration loaders sit on: libyaml's event parser with the
 * file or buffer set up, syntax errors and aliases refused, and every refusal worded
 * "NAME:LINE: reason". The loaders walk the events themselves (the key server against its schema,
 * the proxy against its option table); values are never interpreted here.
 */
#ifndef KW_YAML_H
#define KW_YAML_H

#include <stddef.h>
#include <stdio.h>

#include <yaml.h>

#include "kw_guard.h"

typedef struct kw_yaml_s {
    yaml_parser_t parser;
    FILE *file;       /* NULL for a buffer */
    const char *name; /* the path, or the name a buffer goes by in errors */
    char *err;
    size_t errlen;
} kw_yaml_t;

/* Opens path. Returns 0, KW_EIO ("cannot read config file PATH: reason" in err) or
 * KW_ENOMEM. kw_yaml_close releases what an opened reader holds. */
KW_WARN_UNUSED int kw_yaml_open(kw_yaml_t *y, const char *path, char *err, size_t errlen);

/* The same over len bytes in memory (they must outlive the reader), named name in errors. */
KW_WARN_UNUSED int kw_yaml_open_buffer(kw_yaml_t *y, const char *name, const unsigned char *data,
                                       size_t len, char *err, size_t errlen);

void kw_yaml_close(kw_yaml_t *y);

/* The next event (the caller deletes it with yaml_event_delete). Returns 0 or KW_ECONFIG:
 * a syntax error or an alias (*name) is refused here. */
KW_WARN_UNUSED int kw_yaml_next(kw_yaml_t *y, yaml_event_t *ev);

/* Reads up to the root node of the one document: 1 with the root's event in *root (the caller
 * reads the root node, deletes the event, then calls kw_yaml_end); 0 for an empty file (no
 * document, or a null root: the stream has then been read to its end); or KW_ECONFIG. */
KW_WARN_UNUSED int kw_yaml_root(kw_yaml_t *y, yaml_event_t *root);

/* After the root node: the document's end, then the stream's (a second document is refused).
 * Returns 0 or KW_ECONFIG. */
KW_WARN_UNUSED int kw_yaml_end(kw_yaml_t *y);

/* Writes "NAME:LINE: " and the formatted reason to err. Returns KW_ECONFIG. */
__attribute__((format(printf, 3, 4))) int kw_yaml_fail(kw_yaml_t *y, size_t line, const char *fmt,
                                                       ...);

/* The 1-based line an event starts on. */
size_t kw_yaml_line(const yaml_event_t *ev);

/* 1 when a scalar event is YAML's null (empty, ~, null) written plain. */
int kw_yaml_is_null(const yaml_event_t *ev);

/* A scalar event's text, or NULL when it is not a scalar or holds a NUL character. */
const char *kw_yaml_text(const yaml_event_t *ev);

#endif /* KW_YAML_H */
