/*
 * config_yaml.h: internal to collector/config/ (nothing outside it includes this). The
 * bounded tree that config_yaml.c builds from the YAML text, and the error helpers every
 * part of the loader uses to write "file:line: message".
 */
#ifndef O2D_CONFIG_YAML_H
#define O2D_CONFIG_YAML_H

#include <stddef.h>

#include "o2d_arena.h"

#define TREE_BYTES_MAX (16 * 1024 * 1024) /* the arena holding the tree and expanded values */
#define TREE_NODES_MAX 10000
#define TREE_DEPTH_MAX 32
#define SHOW_MAX       64 /* bytes of the user's text quoted in a message */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
    enum node_kind kind;
    int is_null;        /* a plain scalar that YAML reads as null: empty, ~ or null */
    unsigned long line; /* 1-based */
    const char *text;   /* NODE_SCALAR: in the arena, NUL-terminated after len bytes */
    size_t len;
    struct node *child; /* NODE_MAP: key, value, key, value, ... */
    struct node *last;
    struct node *next;
};

/* Where a message goes: the file it names, and the caller's buffer (NULL or size 0: none). */
struct config_err {
    const char *name;
    char *buf;
    size_t size;
};

/*
 * Reads one YAML document from yaml[0..len) into a tree allocated in `arena` (borrowed; the
 * tree lives as long as the arena). *root is NULL for a file without a document. Refuses
 * more than TREE_NODES_MAX nodes, nesting deeper than TREE_DEPTH_MAX, aliases and a second
 * document. O2D_ERR_CONFIG (or O2D_ERR_NOMEM) with the message written through `e`.
 */
int config_yaml_parse(struct o2d_arena *arena, const struct config_err *e, const char *yaml,
                      size_t len, struct node **root);

/* The node at a path of plain keys ("receivers.otlp"), or NULL. */
const struct node *config_yaml_find(const struct node *n, const char *path);

/* "a map", "a sequence", "a single value" or "nothing", for messages. */
const char *config_kind_name(const struct node *n);

/* Writes "name:line: message" into err[0..errlen); line 0 leaves the line out. */
void config_format_err(char *err, size_t errlen, const char *name, unsigned long line,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* config_format_err() through `e`; returns O2D_ERR_CONFIG. */
int config_fail(const struct config_err *e, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "out of memory while reading the configuration"; returns O2D_ERR_NOMEM. */
int config_fail_nomem(const struct config_err *e);

/* The user's text made fit for a one-line message: control bytes become '?', long text is
 * cut (not inside a UTF-8 sequence) and marked with "...". Returns out. */
const char *config_show(char out[SHOW_MAX + 4], const char *s, size_t len);

#endif
