/*
 * config_yaml.c: the first step of reading a configuration. libyaml's event parser builds a
 * small tree (map, sequence and scalar nodes, each with its line) in an arena, bounded in
 * input size, node count and depth; aliases and a second document are refused. Also the
 * error helpers that every step uses, so that each message names the file and the line.
 * What the keys mean is left to config_walk.c and the table in config.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "config_yaml.h"
#include "o2d.h"

/* The tree while it is being built. */
struct builder {
    const struct config_err *err;
    struct o2d_arena *arena;
    size_t nodes;
    struct node *stack[TREE_DEPTH_MAX]; /* open maps and sequences while parsing */
    size_t depth;
    int documents;
    struct node *root;
};

static void vformat_err(char *err, size_t errlen, const char *name, unsigned long line,
                        const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    int n =
        line ? snprintf(err, errlen, "%s:%lu: ", name, line) : snprintf(err, errlen, "%s: ", name);
    if (n >= 0 && (size_t)n < errlen) {
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    }
}

void config_format_err(char *err, size_t errlen, const char *name, unsigned long line,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat_err(err, errlen, name, line, fmt, ap);
    va_end(ap);
}

int config_fail(const struct config_err *e, unsigned long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat_err(e->buf, e->size, e->name, line, fmt, ap);
    va_end(ap);
    return O2D_ERR_CONFIG;
}

int config_fail_nomem(const struct config_err *e)
{
    config_fail(e, 0, "out of memory while reading the configuration");
    return O2D_ERR_NOMEM;
}

const char *config_show(char out[SHOW_MAX + 4], const char *s, size_t len)
{
    size_t n = len;
    if (n > SHOW_MAX) {
        n = SHOW_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

const char *config_kind_name(const struct node *n)
{
    switch (n->kind) {
    case NODE_MAP:
        return "a map";
    case NODE_SEQ:
        return "a sequence";
    case NODE_SCALAR:
        break;
    }
    return n->is_null ? "nothing" : "a single value";
}

static int is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return 0;
    }
    return len == 0 || (len == 1 && v[0] == '~') ||
           (len == 4 &&
            (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 || memcmp(v, "NULL", 4) == 0));
}

static int add_node(struct builder *bld, enum node_kind kind, const yaml_event_t *ev)
{
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    if (bld->nodes >= TREE_NODES_MAX) {
        return config_fail(bld->err, line, "more than %d YAML nodes", TREE_NODES_MAX);
    }
    if (kind != NODE_SCALAR && bld->depth >= TREE_DEPTH_MAX) {
        return config_fail(bld->err, line, "nested deeper than %d levels", TREE_DEPTH_MAX);
    }
    struct node *n = o2d_arena_alloc(bld->arena, sizeof(*n));
    if (n == NULL) {
        return config_fail_nomem(bld->err);
    }
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = line;
    if (kind == NODE_SCALAR) {
        n->len = ev->data.scalar.length;
        n->text = o2d_arena_strndup(bld->arena, (const char *)ev->data.scalar.value, n->len);
        if (n->text == NULL) {
            return config_fail_nomem(bld->err);
        }
        n->is_null = is_null_scalar(ev);
    }
    bld->nodes++;
    if (bld->depth == 0) {
        bld->root = n;
    } else {
        struct node *parent = bld->stack[bld->depth - 1];
        if (parent->last != NULL) {
            parent->last->next = n;
        } else {
            parent->child = n;
        }
        parent->last = n;
    }
    if (kind != NODE_SCALAR) {
        bld->stack[bld->depth++] = n;
    }
    return O2D_OK;
}

static int take_event(struct builder *bld, const yaml_event_t *ev)
{
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    char a[SHOW_MAX + 4];
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++bld->documents > 1) {
            return config_fail(bld->err, line, "only one YAML document is allowed");
        }
        return O2D_OK;
    case YAML_ALIAS_EVENT:
        /* Aliases would let a small file expand into a large tree. */
        return config_fail(bld->err, line, "YAML aliases (*%s) are not supported",
                           config_show(a, (const char *)ev->data.alias.anchor,
                                       strlen((const char *)ev->data.alias.anchor)));
    case YAML_SCALAR_EVENT:
        return add_node(bld, NODE_SCALAR, ev);
    case YAML_MAPPING_START_EVENT:
        return add_node(bld, NODE_MAP, ev);
    case YAML_SEQUENCE_START_EVENT:
        return add_node(bld, NODE_SEQ, ev);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        bld->depth--;
        return O2D_OK;
    default:
        return O2D_OK;
    }
}

static unsigned long line_at(const char *s, size_t len, size_t offset)
{
    unsigned long line = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        line += s[i] == '\n';
    }
    return line;
}

static int yaml_failed(struct builder *bld, const yaml_parser_t *p, const char *yaml, size_t len)
{
    const char *problem = p->problem ? p->problem : "cannot be parsed";
    if (p->error == YAML_MEMORY_ERROR) {
        return config_fail_nomem(bld->err);
    }
    if (p->error == YAML_READER_ERROR) {
        return config_fail(bld->err, line_at(yaml, len, p->problem_offset), "invalid YAML: %s",
                           problem);
    }
    unsigned long line = (unsigned long)p->problem_mark.line + 1;
    if (p->context != NULL) {
        return config_fail(bld->err, line, "invalid YAML: %s (%s at line %lu)", problem, p->context,
                           (unsigned long)p->context_mark.line + 1);
    }
    return config_fail(bld->err, line, "invalid YAML: %s", problem);
}

int config_yaml_parse(struct o2d_arena *arena, const struct config_err *e, const char *yaml,
                      size_t len, struct node **root)
{
    struct builder b = {.err = e, .arena = arena};
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = O2D_OK;
    int end = 0;

    *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        return config_fail_nomem(e);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    while (rc == O2D_OK && !end) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_failed(&b, &parser, yaml, len);
            break;
        }
        rc = take_event(&b, &ev);
        end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    *root = b.root;
    return rc;
}

const struct node *config_yaml_find(const struct node *n, const char *path)
{
    while (n != NULL && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        const struct node *k = NULL;
        if (n->kind != NODE_MAP) {
            return NULL;
        }
        for (k = n->child; k != NULL && k->next != NULL; k = k->next->next) {
            if (k->kind == NODE_SCALAR && k->len == len && memcmp(k->text, path, len) == 0) {
                break;
            }
        }
        n = k != NULL ? k->next : NULL;
        path += len + (dot != NULL);
    }
    return n;
}
