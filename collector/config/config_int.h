/*
 * config_int.h: internal to collector/config/ (nothing outside it includes this). The shape
 * of the one key table (struct key_row and the row macros the table in config.c is written
 * with), the loader's state, and what the parts of the loader call in each other:
 *   config_yaml.c  YAML text -> bounded tree, and error messages (config_yaml.h)
 *   config_env.c   ${env:NAME} expansion in values
 *   config_walk.c  the tree walked against the table, values checked and stored
 *   config_write.c the effective configuration written back from the table
 *   config.c       the table itself, defaults, whole-file checks, prepare, entry points
 */
#ifndef O2D_CONFIG_INT_H
#define O2D_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "config_yaml.h"
#include "o2d_arena.h"

#define DURATION_MAX_MS (7LL * 24 * 3600 * 1000)

enum key_type {
    KEY_SECTION,  /* a map, or null for an empty one; `off`, if any, is an int set to 1 */
    KEY_NAMES,    /* a sequence of names, checked for shape and otherwise ignored */
    KEY_STRING,   /* a char array */
    KEY_ENDPOINT, /* a char array holding host:port, [ipv6]:port or :port */
    KEY_UINT,     /* an unsigned field of 4 or 8 bytes: the value written times `scale` */
    KEY_DURATION, /* an int64_t of milliseconds */
    KEY_ENUM,     /* an int-sized field set from parse() */
    KEY_BOOL,     /* an int: true, false, 1 or 0 (o2d_config_parse_bool) */
    KEY_TAGS,     /* a char array holding DD_TAGS-style pairs, checked when read */
    KEY_STRINGS,  /* a sequence of strings into O2D_MAX_PATTERNS rows of 256 bytes */
    KEY_STRMAP,   /* a map of string to string into O2D_MAX_REMAPPINGS pairs of 128 bytes */
};

#define KEY_EMPTY_OK 1u /* KEY_STRING, KEY_ENDPOINT: "" is allowed and means off */
#define KEY_SECRET   2u /* KEY_STRING: never shown in a message */

struct key_row {
    const char *path; /* keys joined by '.'; "*" stands for any one key */
    enum key_type type;
    size_t off;                  /* into struct o2d_config, or NO_FIELD */
    size_t size;                 /* of the field */
    uint64_t min, max;           /* KEY_UINT in the unit written, KEY_DURATION in ms */
    uint64_t scale;              /* KEY_UINT: stored = written * scale */
    unsigned flags;              /* KEY_EMPTY_OK */
    int (*parse)(const char *s); /* KEY_ENUM: the value, -1 when unknown */
    const char *(*name)(int v);  /* KEY_ENUM: the inverse of parse, for writing */
    const char *choices;         /* KEY_ENUM: what parse() takes, for messages */
    size_t count_off;            /* KEY_STRINGS, KEY_STRMAP: the size_t entry count */
};

#define NO_FIELD ((size_t)-1)
#define FIELD(m) .off = offsetof(struct o2d_config, m), .size = sizeof(((struct o2d_config *)0)->m)

/* Row builders, so that the table reads one key per line. */
/* clang-format off */
#define SECTION(p)         {.path = (p), .type = KEY_SECTION, .off = NO_FIELD}
#define SECTION_FLAG(p, m) {.path = (p), .type = KEY_SECTION, FIELD(m)}
#define NAMES(p)           {.path = (p), .type = KEY_NAMES, .off = NO_FIELD}
#define ENDPOINT(p, m, fl) {.path = (p), .type = KEY_ENDPOINT, FIELD(m), .flags = (fl)}
#define UINT(p, m, lo, hi, sc) \
    {.path = (p), .type = KEY_UINT, FIELD(m), .min = (lo), .max = (hi), .scale = (sc)}
#define DURATION(p, m, lo) \
    {.path = (p), .type = KEY_DURATION, FIELD(m), .min = (lo), .max = DURATION_MAX_MS}
#define ENUM(p, m, fn, nm, ch) \
    {.path = (p), .type = KEY_ENUM, FIELD(m), .parse = (fn), .name = (nm), .choices = (ch)}
#define STRING(p, m, fl)   {.path = (p), .type = KEY_STRING, FIELD(m), .flags = (fl)}
#define BOOL(p, m)         {.path = (p), .type = KEY_BOOL, FIELD(m)}
#define TAGS(p, m)         {.path = (p), .type = KEY_TAGS, FIELD(m), .flags = KEY_EMPTY_OK}
/* m: char[O2D_MAX_PATTERNS][256] (STRINGS) or char[O2D_MAX_REMAPPINGS][2][128] (STRMAP);
 * n: the size_t that counts its entries. */
#define STRINGS(p, m, n) \
    {.path = (p), .type = KEY_STRINGS, FIELD(m), .count_off = offsetof(struct o2d_config, n)}
#define STRMAP(p, m, n) \
    {.path = (p), .type = KEY_STRMAP, FIELD(m), .count_off = offsetof(struct o2d_config, n)}
/* clang-format on */

/* The table (config.c), in the order keys are written back. */
extern const struct key_row config_key_table[];
extern const size_t config_key_table_len;

/* One load: the tree, the values expanded from it, and the configuration being filled. */
struct loader {
    struct config_err err;  /* the file's name and the caller's message buffer */
    struct o2d_arena arena; /* the tree and expanded values; released in one step */
    struct node *root;
    struct o2d_config cfg; /* the working copy, handed back only on success */
    char tags_scratch[O2D_MAX_TAGS][O2D_TAG_MAX + 1]; /* KEY_TAGS is parsed to check it */
};

static inline int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- config_env.c ---- */

/*
 * Expands ${env:NAME}, ${env:NAME:-default}, ${NAME} and $$ (a literal $) in s[0..len) into
 * *out, a string in ld->arena. `key` names the value in messages; a secret's text is never
 * quoted in one. O2D_ERR_CONFIG (or O2D_ERR_NOMEM) with the message written.
 */
int config_expand_env(struct loader *ld, unsigned long line, const char *key, const char *s,
                      size_t len, int secret, const char **out);

/* ---- config_walk.c ---- */

/* Applies every key of the map node (at `path`, "" for the top level) to ld->cfg. */
int config_walk(struct loader *ld, const struct node *map, const char *path);

/* If the row is a key directly under `path`, its last segment ("*" for any); else NULL. */
const char *config_row_leaf_under(const struct key_row *row, const char *path);

/* Milliseconds written as the largest whole unit: "0s", "5m", "1500ms". Returns out. */
const char *config_format_duration(char *out, size_t outlen, uint64_t ms);

/* ---- config_processors.c ---- */

/* After the walk: the processors each signal runs (service.pipelines, or every configured
 * processor where it fits), checked against the processors: sections. */
int config_processors_resolve(struct loader *ld);
/* In o2d_config_prepare: each configured processor's prepare (compiles its rules). */
int config_processors_prepare(struct o2d_config *cfg, char *err, size_t errlen);
void config_processors_cleanup(struct o2d_config *cfg);

/* ---- config_sampling.c ---- */

/* Reads processors.probabilistic_sampler and processors.llmobs_sampler into
 * ld->cfg.sampling and unlinks them from the tree, before config_walk. */
int config_sampling_take(struct loader *ld);

/* ---- config.c ---- */

/*
 * Whether the writer shows a section whose presence the flags alone do not decide: 0 leave
 * it out, 1 write it, 2 write it as comments; -1 when the row's flag (or its mere presence)
 * decides.
 */
int config_section_state(const struct o2d_config *cfg, const struct key_row *row);

#endif
