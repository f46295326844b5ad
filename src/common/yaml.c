/*
 * The YAML event reader (see kw_yaml.h).
 */
#include "kw_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "keyward/error.h"

int kw_yaml_open(kw_yaml_t *y, const char *path, char *err, size_t errlen)
{
    memset(y, 0, sizeof(*y));
    y->name = path;
    y->err = err;
    y->errlen = errlen;
    y->file = fopen(path, "rb");
    if (y->file == NULL) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return KW_EIO;
    }
    if (!yaml_parser_initialize(&y->parser)) {
        fclose(y->file);
        y->file = NULL;
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    yaml_parser_set_input_file(&y->parser, y->file);
    return 0;
}

int kw_yaml_open_buffer(kw_yaml_t *y, const char *name, const unsigned char *data, size_t len,
                        char *err, size_t errlen)
{
    memset(y, 0, sizeof(*y));
    y->name = name;
    y->err = err;
    y->errlen = errlen;
    if (!yaml_parser_initialize(&y->parser)) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    yaml_parser_set_input_string(&y->parser, data, len);
    return 0;
}

void kw_yaml_close(kw_yaml_t *y)
{
    yaml_parser_delete(&y->parser);
    if (y->file != NULL)
        fclose(y->file);
    y->file = NULL;
}

int kw_yaml_fail(kw_yaml_t *y, size_t line, const char *fmt, ...)
{
    int n = snprintf(y->err, y->errlen, "%s:%zu: ", y->name, line);
    if (n >= 0 && (size_t)n < y->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(y->err + n, y->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return KW_ECONFIG;
}

size_t kw_yaml_line(const yaml_event_t *ev)
{
    return ev->start_mark.line + 1;
}

int kw_yaml_next(kw_yaml_t *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev)) {
        const yaml_parser_t *p = &y->parser;
        return kw_yaml_fail(y, p->problem_mark.line + 1, "YAML syntax error: %s%s%s",
                            p->problem ? p->problem : "unknown", p->context ? " " : "",
                            p->context ? p->context : "");
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        size_t line = kw_yaml_line(ev);
        yaml_event_delete(ev);
        return kw_yaml_fail(y, line, "YAML aliases (*name) are not supported; write the value out");
    }
    return 0;
}

int kw_yaml_is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

const char *kw_yaml_text(const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT)
        return NULL;
    const char *v = (const char *)ev->data.scalar.value;
    return strlen(v) == ev->data.scalar.length ? v : NULL;
}

/* Reads one event for its type and line only. */
static int next_type(kw_yaml_t *y, yaml_event_type_t *type, size_t *line)
{
    yaml_event_t ev;
    KW_GUARD(kw_yaml_next(y, &ev));
    *type = ev.type;
    *line = kw_yaml_line(&ev);
    yaml_event_delete(&ev);
    return 0;
}

int kw_yaml_root(kw_yaml_t *y, yaml_event_t *root)
{
    yaml_event_type_t type;
    size_t line;
    KW_GUARD(next_type(y, &type, &line)); /* stream start */
    KW_GUARD(next_type(y, &type, &line)); /* document start, or the end of an empty stream */
    if (type == YAML_STREAM_END_EVENT)
        return 0; /* an empty file */
    KW_GUARD(kw_yaml_next(y, root));
    if (kw_yaml_is_null(root)) {
        yaml_event_delete(root);
        KW_GUARD(kw_yaml_end(y));
        return 0;
    }
    return 1;
}

int kw_yaml_end(kw_yaml_t *y)
{
    yaml_event_type_t type;
    size_t line;
    KW_GUARD(next_type(y, &type, &line)); /* document end */
    KW_GUARD(next_type(y, &type, &line));
    if (type != YAML_STREAM_END_EVENT)
        return kw_yaml_fail(y, line, "only one YAML document is allowed (remove the second '---')");
    return 0;
}
