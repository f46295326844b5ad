/*
 * Schema-checked YAML reading over src/common's kw_yaml event reader: a small recursive descent
 * (document, map, value by kind) that only ever recurses into maps the schema declares, so nesting
 * depth is bounded by the schema, not by the file.
 */
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "config/config_yaml.h"
#include "keyward/error.h"
#include "kw_yaml.h"

#define SCHEMA_MAX 64

typedef struct reader_s {
    kw_yaml_t y; /* src/common's reader: syntax errors and aliases refused, NAME:LINE errors */
    kw_ks_yaml_cb cb;
    void *arg;
} reader_t;

/* Hands one scalar event of key to the callback. */
static int deliver(reader_t *r, const kw_ks_yaml_key_t *key, const yaml_event_t *ev)
{
    const char *v = kw_yaml_text(ev);
    if (kw_yaml_is_null(ev))
        return kw_yaml_fail(&r->y, kw_yaml_line(ev), "'%s' has no value", key->name);
    if (v == NULL)
        return kw_yaml_fail(&r->y, kw_yaml_line(ev), "'%s': NUL characters are not allowed",
                            key->name);
    char why[512] = "invalid value";
    if (r->cb(r->arg, KW_YAML_VALUE, key->id, v, why, sizeof(why)) != 0)
        return kw_yaml_fail(&r->y, kw_yaml_line(ev), "'%s': %s", key->name, why);
    return 0;
}

static int signal_cb(reader_t *r, const kw_ks_yaml_key_t *key, kw_ks_yaml_event_t what, size_t line)
{
    char why[512] = "incomplete entry";
    if (r->cb(r->arg, what, key->id, NULL, why, sizeof(why)) != 0)
        return kw_yaml_fail(&r->y, line, "'%s': %s", key->name, why);
    return 0;
}

static int parse_map(reader_t *r, const kw_ks_yaml_key_t *schema);

static int parse_list(reader_t *r, const kw_ks_yaml_key_t *key, yaml_event_t *ev)
{
    int rc = signal_cb(r, key, KW_YAML_BEGIN, kw_yaml_line(ev));
    if (rc != 0 || ev->type == YAML_SCALAR_EVENT)
        return rc != 0 ? rc : deliver(r, key, ev);
    if (ev->type != YAML_SEQUENCE_START_EVENT)
        return kw_yaml_fail(&r->y, kw_yaml_line(ev), "'%s' must be a list of values", key->name);
    for (;;) {
        yaml_event_t item;
        rc = kw_yaml_next(&r->y, &item);
        if (rc != 0)
            return rc;
        if (item.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&item);
            return 0;
        }
        if (item.type == YAML_SCALAR_EVENT)
            rc = deliver(r, key, &item);
        else
            rc = kw_yaml_fail(&r->y, kw_yaml_line(&item), "'%s': each item must be a single value",
                              key->name);
        yaml_event_delete(&item);
        if (rc != 0)
            return rc;
    }
}

static int parse_map_list(reader_t *r, const kw_ks_yaml_key_t *key, const yaml_event_t *ev)
{
    if (ev->type != YAML_SEQUENCE_START_EVENT)
        return kw_yaml_fail(&r->y, kw_yaml_line(ev),
                            "'%s' must be a list of maps (lines starting '- name: ')", key->name);
    for (;;) {
        yaml_event_t item;
        int rc = kw_yaml_next(&r->y, &item);
        if (rc != 0)
            return rc;
        size_t line = kw_yaml_line(&item);
        yaml_event_type_t type = item.type;
        yaml_event_delete(&item);
        if (type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (type != YAML_MAPPING_START_EVENT)
            return kw_yaml_fail(&r->y, line, "each item of '%s' must be a map (name: value lines)",
                                key->name);
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
    int rc = kw_yaml_next(&r->y, &ev);
    if (rc != 0)
        return rc;
    switch (key->kind) {
    case KW_YAML_SCALAR:
        if (ev.type == YAML_SCALAR_EVENT)
            rc = deliver(r, key, &ev);
        else
            rc = kw_yaml_fail(&r->y, kw_yaml_line(&ev),
                              "'%s' must be a single value, not a list or a map", key->name);
        break;
    case KW_YAML_LIST:
        rc = parse_list(r, key, &ev);
        break;
    case KW_YAML_MAP:
        if (ev.type == YAML_MAPPING_START_EVENT)
            rc = parse_map(r, key->children);
        else
            rc = kw_yaml_fail(&r->y, kw_yaml_line(&ev),
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
    return kw_yaml_fail(&r->y, kw_yaml_line(ev), "unknown key '%.64s' (known here: %s)",
                        (const char *)ev->data.scalar.value, known);
}

/* Reads a map's keys and values up to its end (its start event has been read). */
static int parse_map(reader_t *r, const kw_ks_yaml_key_t *schema)
{
    unsigned char seen[SCHEMA_MAX] = {0};
    for (;;) {
        yaml_event_t ev;
        int rc = kw_yaml_next(&r->y, &ev);
        if (rc != 0)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        size_t i = 0;
        if (ev.type != YAML_SCALAR_EVENT)
            rc = kw_yaml_fail(&r->y, kw_yaml_line(&ev), "expected a setting name");
        while (rc == 0 && schema[i].name != NULL &&
               strcmp(schema[i].name, (const char *)ev.data.scalar.value) != 0)
            i++;
        if (rc == 0 && (schema[i].name == NULL || i >= SCHEMA_MAX))
            rc = unknown_key(r, &ev, schema);
        if (rc == 0 && seen[i])
            rc = kw_yaml_fail(&r->y, kw_yaml_line(&ev), "'%s' is given twice", schema[i].name);
        yaml_event_delete(&ev);
        if (rc == 0) {
            seen[i] = 1;
            rc = parse_value(r, &schema[i]);
        }
        if (rc != 0)
            return rc;
    }
}

/* Zero or one document whose root is a map (or empty), then the end of the stream. */
static int load(reader_t *r, const kw_ks_yaml_key_t *schema)
{
    yaml_event_t root;
    int rc = kw_yaml_root(&r->y, &root);
    if (rc <= 0)
        return rc; /* an empty file, or an error */
    if (root.type == YAML_MAPPING_START_EVENT)
        rc = parse_map(r, schema);
    else
        rc = kw_yaml_fail(&r->y, kw_yaml_line(&root),
                          "the file must be a map of settings (name: value lines)");
    yaml_event_delete(&root);
    return rc != 0 ? rc : kw_yaml_end(&r->y);
}

int kw_ks_yaml_load(const char *path, const kw_ks_yaml_key_t *schema, kw_ks_yaml_cb cb, void *arg,
                    char *err, size_t errlen)
{
    reader_t r = {.cb = cb, .arg = arg};
    KW_GUARD(kw_yaml_open(&r.y, path, err, errlen));
    int rc = load(&r, schema);
    kw_yaml_close(&r.y);
    return rc;
}

int kw_ks_yaml_load_buffer(const char *name, const unsigned char *data, size_t len,
                           const kw_ks_yaml_key_t *schema, kw_ks_yaml_cb cb, void *arg, char *err,
                           size_t errlen)
{
    reader_t r = {.cb = cb, .arg = arg};
    KW_GUARD(kw_yaml_open_buffer(&r.y, name, data, len, err, errlen));
    int rc = load(&r, schema);
    kw_yaml_close(&r.y);
    return rc;
}
