/*
 * keyward-proxy YAML files (proxy_yaml.h): a walk over kw_yaml's events. Keys "certs" and
 * "keyservers" read better in a file and stand for the repeatable flags cert and keyserver.
 */
#include "proxy_yaml.h"

#include <stdio.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_yaml.h"

#define KEY_MAX   128
#define VALUE_MAX 4096

typedef struct walk_s {
    kw_yaml_t y;
    const kw_proxy_yaml_sink_t *sink;
} walk_t;

static int set(walk_t *w, size_t line, const char *key, const char *value)
{
    char why[256] = "invalid value";
    if (w->sink->set(w->sink->arg, key, value, why, sizeof(why)) != 0)
        return kw_yaml_fail(&w->y, line, "%s", why);
    return 0;
}

/* A scalar's text copied into buf; KW_ECONFIG when ev is not one (or does not fit). */
static int text_of(walk_t *w, const yaml_event_t *ev, char *buf, size_t cap, const char *what)
{
    const char *t = kw_yaml_text(ev);
    if (t == NULL || strlen(t) >= cap)
        return kw_yaml_fail(&w->y, kw_yaml_line(ev), "%s", what);
    memcpy(buf, t, strlen(t) + 1);
    return 0;
}

/* One pair of a certs entry {cert: FILE, key: KEY}; *end set at the entry's end. */
static int cert_pair(walk_t *w, char *cert, char *key, int *end)
{
    static const char shape[] = "certs entries are {cert: FILE, key: KEY}";
    yaml_event_t ev;
    char name[8];
    KW_GUARD(kw_yaml_next(&w->y, &ev));
    *end = ev.type == YAML_MAPPING_END_EVENT;
    int rc = *end ? 0 : text_of(w, &ev, name, sizeof(name), shape);
    size_t line = kw_yaml_line(&ev);
    yaml_event_delete(&ev);
    if (rc != 0 || *end)
        return rc;
    char *into = strcmp(name, "cert") == 0 ? cert : strcmp(name, "key") == 0 ? key : NULL;
    if (into == NULL)
        return kw_yaml_fail(&w->y, line, "certs entries know only the keys cert and key");
    KW_GUARD(kw_yaml_next(&w->y, &ev));
    rc = text_of(w, &ev, into, VALUE_MAX, shape);
    yaml_event_delete(&ev);
    return rc;
}

/* {cert: FILE, key: KEY} (its start event read), set as the flag value "FILE[,KEY]". */
static int cert_mapping(walk_t *w, size_t line)
{
    char cert[VALUE_MAX] = "";
    char key[VALUE_MAX] = "";
    int end = 0;
    while (!end)
        KW_GUARD(cert_pair(w, cert, key, &end));
    if (cert[0] == '\0')
        return kw_yaml_fail(&w->y, line, "a certs entry needs cert: FILE");
    char spec[2 * VALUE_MAX + 2];
    int n = snprintf(spec, sizeof(spec), "%s%s%s", cert, key[0] != '\0' ? "," : "", key);
    if (n < 0 || (size_t)n >= VALUE_MAX || strchr(cert, ',') != NULL)
        return kw_yaml_fail(&w->y, line, "certificate path too long or contains a comma");
    return set(w, line, "cert", spec);
}

/* The items of a sequence (its start event read) up to its end. */
static int list_items(walk_t *w, const char *key)
{
    for (;;) {
        yaml_event_t ev;
        KW_GUARD(kw_yaml_next(&w->y, &ev));
        size_t line = kw_yaml_line(&ev);
        int rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT)
            rc = 1;
        else if (ev.type == YAML_MAPPING_START_EVENT && strcmp(key, "cert") == 0)
            rc = cert_mapping(w, line);
        else if (kw_yaml_text(&ev) != NULL)
            rc = set(w, line, key, kw_yaml_text(&ev));
        else
            rc = kw_yaml_fail(&w->y, line, "list items must be plain values");
        yaml_event_delete(&ev);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
}

/* The value of key: a scalar, or a sequence for a list option. */
static int value(walk_t *w, const char *key)
{
    yaml_event_t ev;
    KW_GUARD(kw_yaml_next(&w->y, &ev));
    size_t line = kw_yaml_line(&ev);
    int rc;
    if (ev.type == YAML_SCALAR_EVENT)
        rc = kw_yaml_text(&ev) != NULL
                 ? set(w, line, key, kw_yaml_text(&ev))
                 : kw_yaml_fail(&w->y, line, "NUL characters are not allowed");
    else if (ev.type != YAML_SEQUENCE_START_EVENT)
        rc = kw_yaml_fail(&w->y, line, "expected a value or a list");
    else if (!w->sink->is_list(key))
        rc = kw_yaml_fail(&w->y, line, "this option takes one value, not a list");
    else
        rc = list_items(w, key);
    yaml_event_delete(&ev);
    return rc;
}

/* One "key: value" of the root mapping; *end set at the mapping's end. */
static int root_pair(walk_t *w, int *end)
{
    yaml_event_t ev;
    char key[KEY_MAX];
    KW_GUARD(kw_yaml_next(&w->y, &ev));
    *end = ev.type == YAML_MAPPING_END_EVENT;
    int rc = *end ? 0 : text_of(w, &ev, key, sizeof(key), "keys must be plain names");
    size_t line = kw_yaml_line(&ev);
    yaml_event_delete(&ev);
    if (rc != 0 || *end)
        return rc;
    if (strcmp(key, "certs") == 0)
        memcpy(key, "cert", sizeof("cert"));
    else if (strcmp(key, "keyservers") == 0)
        memcpy(key, "keyserver", sizeof("keyserver"));
    else if (strcmp(key, "config") == 0 || strcmp(key, "help") == 0)
        return kw_yaml_fail(&w->y, line, "config and help cannot appear in a config file");
    return value(w, key);
}

static int walk(walk_t *w)
{
    yaml_event_t root;
    int rc = kw_yaml_root(&w->y, &root);
    if (rc <= 0)
        return rc; /* an error, or an empty file */
    int is_map = root.type == YAML_MAPPING_START_EVENT;
    size_t line = kw_yaml_line(&root);
    yaml_event_delete(&root);
    if (!is_map)
        return kw_yaml_fail(&w->y, line, "the file must be a mapping of option: value");
    int end = 0;
    while (!end)
        KW_GUARD(root_pair(w, &end));
    return kw_yaml_end(&w->y);
}

int kw_proxy_yaml_load(const char *path, const kw_proxy_yaml_sink_t *sink, char *err, size_t errlen)
{
    walk_t w = {.sink = sink};
    int rc = kw_yaml_open(&w.y, path, err, errlen);
    if (rc != 0)
        return rc == KW_ENOMEM ? rc : KW_ECONFIG;
    rc = walk(&w);
    kw_yaml_close(&w.y);
    return rc;
}

int kw_proxy_yaml_load_buffer(const char *name, const unsigned char *data, size_t len,
                              const kw_proxy_yaml_sink_t *sink, char *err, size_t errlen)
{
    walk_t w = {.sink = sink};
    KW_GUARD(kw_yaml_open_buffer(&w.y, name, data, len, err, errlen));
    int rc = walk(&w);
    kw_yaml_close(&w.y);
    return rc;
}
