/*
 * Schema-checked YAML reading over libyaml's event stream: a small recursive descent (document,
 * map, value by kind) that only ever recurses into maps the schema declares, so nesting depth is
 * bounded by the schema, not by the file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "config/config_yaml.h"
#include "keyward/error.h"

#define SCHEMA_MAX 64

typedef struct reader_s {
    yaml_parser_t parser;
    const char *path;
    kw_ks_yaml_cb cb;
    void *arg;
    char *err;
    size_t errlen;
} reader_t;

__attribute__((format(printf, 3, 4))) static int fail(reader_t *r, size_t line, const char *fmt,
                                                      ...)
{
    int n = snprintf(r->err, r->errlen, "%s:%zu: ", r->path, line);
    if (n >= 0 && (size_t)n < r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return KW_ECONFIG;
}

static size_t line_of(const yaml_event_t *ev)
{
    return ev->start_mark.line + 1;
}

/* The next event; syntax errors and aliases are refused here. */
static int next(reader_t *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev))
        return fail(r, r->parser.problem_mark.line + 1, "YAML syntax error: %s%s%s",
                    r->parser.problem ? r->parser.problem : "unknown", r->parser.context ? " " : "",
                    r->parser.context ? r->parser.context : "");
    if (ev->type == YAML_ALIAS_EVENT) {
        size_t line = line_of(ev);
        yaml_event_delete(ev);
        return fail(r, line, "YAML aliases (*name) are not supported; write the value out");
    }
    return 0;
}

static int is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Hands one scalar event of key to the callback. */
static int deliver(reader_t *r, const kw_ks_yaml_key_t *key, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (is_null_scalar(ev))
        return fail(r, line_of(ev), "'%s' has no value", key->name);
    if (strlen(v) != ev->data.scalar.length)
        return fail(r, line_of(ev), "'%s': NUL characters are not allowed", key->name);
    char why[512] = "invalid value";
    if (r->cb(r->arg, KW_YAML_VALUE, key->id, v, why, sizeof(why)) != 0)
        return fail(r, line_of(ev), "'%s': %s", key->name, why);
    return 0;
}

static int signal_cb(reader_t *r, const kw_ks_yaml_key_t *key, kw_ks_yaml_event_t what, size_t line)
{
    char why[512] = "incomplete entry";
    if (r->cb(r->arg, what, key->id, NULL, why, sizeof(why)) != 0)
        return fail(r, line, "'%s': %s", key->name, why);
    return 0;
}

static int parse_map(reader_t *r, const kw_ks_yaml_key_t *schema);

static int parse_list(reader_t *r, const kw_ks_yaml_key_t *key, yaml_event_t *ev)
{
    int rc = signal_cb(r, key, KW_YAML_BEGIN, line_of(ev));
    if (rc != 0 || ev->type == YAML_SCALAR_EVENT)
        return rc != 0 ? rc : deliver(r, key, ev);
    if (ev->type != YAML_SEQUENCE_START_EVENT)
        return fail(r, line_of(ev), "'%s' must be a list of values", key->name);
    for (;;) {
        yaml_event_t item;
        rc = next(r, &item);
        if (rc != 0)
            return rc;
        if (item.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&item);
            return 0;
        }
        if (item.type == YAML_SCALAR_EVENT)
            rc = deliver(r, key, &item);
        else
            rc = fail(r, line_of(&item), "'%s': each item must be a single value", key->name);
        yaml_event_delete(&item);
        if (rc != 0)
            return rc;
    }
}

static int parse_map_list(reader_t *r, const kw_ks_yaml_key_t *key, const yaml_event_t *ev)
{
    if (ev->type != YAML_SEQUENCE_START_EVENT)
        return fail(r, line_of(ev), "'%s' must be a list of maps (lines starting '- name: ')",
                    key->name);
    for (;;) {
        yaml_event_t item;
        int rc = next(r, &item);
        if (rc != 0)
            return rc;
        size_t line = line_of(&item);
        yaml_event_type_t type = item.type;
        yaml_event_delete(&item);
        if (type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (type != YAML_MAPPING_START_EVENT)
            return fail(r, line, "each item of '%s' must be a map (name: value lines)", key->name);
        rc = signal_cb(r, key, KW_YAML_BEGIN, line);
        if (rc == 0)
            rc = parse_map(r, key->children);
        if (rc == 0)
            rc = signal_cb(r, key, KW_YAML_END, line);
        if (rc != 0)
            return rc;
    }
}

/* Reads the value of key (the event after the key's name). */
static int parse_value(reader_t *r, const kw_ks_yaml_key_t *key)
{
    yaml_event_t ev;
    int rc = next(r, &ev);
    if (rc != 0)
        return rc;
    switch (key->kind) {
    case KW_YAML_SCALAR:
        if (ev.type == YAML_SCALAR_EVENT)
            rc = deliver(r, key, &ev);
        else
            rc = fail(r, line_of(&ev), "'%s' must be a single value, not a list or a map",
                      key->name);
        break;
    case KW_YAML_LIST:
        rc = parse_list(r, key, &ev);
        break;
    case KW_YAML_MAP:
        if (ev.type == YAML_MAPPING_START_EVENT)
            rc = parse_map(r, key->children);
        else
            rc = fail(r, line_of(&ev),
                      "'%s' must be a map of settings (indented name: value "
                      "lines)",
                      key->name);
        break;
    default:
        rc = parse_map_list(r, key, &ev);
        break;
    }
    yaml_event_delete(&ev);
    return rc;
}

static int unknown_key(reader_t *r, const yaml_event_t *ev, const kw_ks_yaml_key_t *schema)
{
    char known[512] = "";
    size_t n = 0;
    for (size_t i = 0; schema[i].name != NULL && n < sizeof(known); i++) {
        int w = snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", schema[i].name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return fail(r, line_of(ev), "unknown key '%.64s' (known here: %s)",
                (const char *)ev->data.scalar.value, known);
}

/* Reads a map's keys and values up to its end (its start event has been read). */
static int parse_map(reader_t *r, const kw_ks_yaml_key_t *schema)
{
    unsigned char seen[SCHEMA_MAX] = {0};
    for (;;) {
        yaml_event_t ev;
        int rc = next(r, &ev);
        if (rc != 0)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        size_t i = 0;
        if (ev.type != YAML_SCALAR_EVENT)
            rc = fail(r, line_of(&ev), "expected a setting name");
        while (rc == 0 && schema[i].name != NULL &&
               strcmp(schema[i].name, (const char *)ev.data.scalar.value) != 0)
            i++;
        if (rc == 0 && (schema[i].name == NULL || i >= SCHEMA_MAX))
            rc = unknown_key(r, &ev, schema);
        if (rc == 0 && seen[i])
            rc = fail(r, line_of(&ev), "'%s' is given twice", schema[i].name);
        yaml_event_delete(&ev);
        if (rc == 0) {
            seen[i] = 1;
            rc = parse_value(r, &schema[i]);
        }
        if (rc != 0)
            return rc;
    }
}

/* After STREAM_START: zero or one document whose root is a map (or empty). */
static int parse_stream(reader_t *r, const kw_ks_yaml_key_t *schema)
{
    yaml_event_t ev;
    int rc = next(r, &ev);
    if (rc != 0)
        return rc;
    yaml_event_type_t type = ev.type;
    yaml_event_delete(&ev);
    if (type == YAML_STREAM_END_EVENT)
        return 0;      /* empty file */
    rc = next(r, &ev); /* the root node */
    if (rc != 0)
        return rc;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = parse_map(r, schema);
    else if (!(ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev)))
        rc = fail(r, line_of(&ev), "the file must be a map of settings (name: value lines)");
    yaml_event_delete(&ev);
    if (rc == 0)
        rc = next(r, &ev); /* document end */
    if (rc != 0)
        return rc;
    yaml_event_delete(&ev);
    rc = next(r, &ev);
    if (rc != 0)
        return rc;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = fail(r, line_of(&ev), "only one YAML document is allowed (remove the second '---')");
    yaml_event_delete(&ev);
    return rc;
}

/* Runs a prepared parser (its input already set) over the document. */
static int load(reader_t *r, const kw_ks_yaml_key_t *schema)
{
    yaml_event_t ev;
    int rc = next(r, &ev); /* stream start */
    if (rc == 0) {
        yaml_event_delete(&ev);
        rc = parse_stream(r, schema);
    }
    return rc;
}

int kw_ks_yaml_load(const char *path, const kw_ks_yaml_key_t *schema, kw_ks_yaml_cb cb, void *arg,
                    char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return KW_EIO;
    }
    reader_t r = {.path = path, .cb = cb, .arg = arg, .err = err, .errlen = errlen};
    if (!yaml_parser_initialize(&r.parser)) {
        fclose(f);
        return KW_ENOMEM;
    }
    yaml_parser_set_input_file(&r.parser, f);
    int rc = load(&r, schema);
    yaml_parser_delete(&r.parser);
    fclose(f);
    return rc;
}

int kw_ks_yaml_load_buffer(const char *name, const unsigned char *data, size_t len,
                           const kw_ks_yaml_key_t *schema, kw_ks_yaml_cb cb, void *arg, char *err,
                           size_t errlen)
{
    reader_t r = {.path = name, .cb = cb, .arg = arg, .err = err, .errlen = errlen};
    if (!yaml_parser_initialize(&r.parser))
        return KW_ENOMEM;
    yaml_parser_set_input_string(&r.parser, data, len);
    int rc = load(&r, schema);
    yaml_parser_delete(&r.parser);
    return rc;
}
