/*
 * config_write.c: the effective configuration written back as YAML, from the key table
 * (config.c) in its order, so that the output loads back to the same values: sections
 * nested, strings quoted where YAML needs it and '$' doubled, the API key masked. Which
 * optional sections appear is the flags' decision, or config.c's for the few whose
 * meaning is decided in prepare (config_section_state). `otel2dd validate` prints this.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "o2d.h"

static int word_is(const char *s, const char *w)
{
    return strcasecmp(s, w) == 0;
}

/* Would a YAML reader take s, written plain, as something else than this string? */
static int needs_quotes(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) != NULL || is_blank(s[len - 1]) ||
        s[len - 1] == ':' || strstr(s, ": ") != NULL || strstr(s, " #") != NULL) {
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return 1;
        }
    }
    static const char *const words[] = {"true", "false", "yes",  "no", "on",   "off",
                                        "y",    "n",     "null", "~",  ".inf", ".nan"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (word_is(s, words[i])) {
            return 1;
        }
    }
    /* Anything a reader could take for a number: digits with signs, dots, exponents. */
    size_t digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_digit(s[i])) {
            digits++;
        } else if (!strchr("+-._eExXoOabcdefABCDEF", s[i])) {
            return 0;
        }
    }
    return digits > 0;
}

/* A string value: quoted when needed, '$' doubled so that ${...} in it stays text. */
static void write_string(FILE *out, const char *s)
{
    int q = needs_quotes(s);
    if (q) {
        fputc('"', out);
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '$') {
            fputs("$$", out);
        } else if (q && (c == '"' || c == '\\')) {
            fprintf(out, "\\%c", c);
        } else if (q && (c < 0x20 || c == 0x7f)) {
            fprintf(out, "\\x%02x", c);
        } else {
            fputc(c, out);
        }
    }
    if (q) {
        fputc('"', out);
    }
}

static uint64_t load_uint(const struct o2d_config *cfg, const struct key_row *row)
{
    const char *field = (const char *)cfg + row->off;
    if (row->size == sizeof(uint64_t)) {
        uint64_t x;
        memcpy(&x, field, sizeof(x));
        return x;
    }
    uint32_t x;
    memcpy(&x, field, sizeof(x));
    return x;
}

/* 0: leave the section out; 1: write it; 2: write it as comments. */
static int section_state(const struct o2d_config *cfg, const struct key_row *row)
{
    int st = config_section_state(cfg, row);
    if (st >= 0) {
        return st;
    }
    if (row->off != NO_FIELD) {
        return load_uint(cfg, row) != 0;
    }
    return 1;
}

static int has_content(const struct o2d_config *cfg, const char *path)
{
    for (size_t i = 0; i < config_key_table_len; i++) {
        const struct key_row *r = &config_key_table[i];
        const char *leaf = config_row_leaf_under(r, path);
        if (leaf == NULL || strcmp(leaf, "*") == 0 || r->type == KEY_NAMES) {
            continue;
        }
        if (r->type != KEY_SECTION) {
            return 1;
        }
        if (section_state(cfg, r) != 0 && has_content(cfg, r->path)) {
            return 1;
        }
    }
    return 0;
}

static void write_value(const struct o2d_config *cfg, const struct key_row *row, FILE *out,
                        int indent, const char *cm)
{
    const char *field = (const char *)cfg + row->off;
    char d[32];
    int iv;
    switch (row->type) {
    case KEY_STRING:
    case KEY_ENDPOINT:
    case KEY_TAGS:
        if ((row->flags & KEY_SECRET) && field[0] != '\0') {
            write_string(out, "<secret>");
        } else {
            write_string(out, field);
        }
        break;
    case KEY_UINT:
        fprintf(out, "%llu", (unsigned long long)(load_uint(cfg, row) / row->scale));
        break;
    case KEY_DURATION: {
        int64_t ms;
        memcpy(&ms, field, sizeof(ms));
        fputs(config_format_duration(d, sizeof(d), ms > 0 ? (uint64_t)ms : 0), out);
        break;
    }
    case KEY_ENUM:
        memcpy(&iv, field, sizeof(iv));
        fputs(row->name(iv), out);
        break;
    case KEY_BOOL:
        memcpy(&iv, field, sizeof(iv));
        fputs(iv ? "true" : "false", out);
        break;
    case KEY_STRINGS: {
        const char(*rows)[256] = (const char(*)[256])field;
        size_t n;
        memcpy(&n, (const char *)cfg + row->count_off, sizeof(n));
        if (n == 0) {
            fputs(" []", out);
        }
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "\n%*s%s- ", indent + 2, "", cm);
            write_string(out, (row->flags & KEY_SECRET) ? "<secret>" : rows[i]);
        }
        break;
    }
    case KEY_STRMAP: {
        const char(*pairs)[2][128] = (const char(*)[2][128])field;
        size_t n;
        memcpy(&n, (const char *)cfg + row->count_off, sizeof(n));
        if (n == 0) {
            fputs(" {}", out);
        }
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "\n%*s%s", indent + 2, "", cm);
            write_string(out, pairs[i][0]);
            fputs(": ", out);
            write_string(out, pairs[i][1]);
        }
        break;
    }
    case KEY_SECTION:
    case KEY_NAMES:
        break;
    }
}

/* service.pipelines, when the file had it: each signal's processors in order (receivers and
 * exporters are fixed here, so they are not written). Without it nothing is written, which
 * reads back as "every configured processor where it fits". */
static void write_pipelines(const struct o2d_config *cfg, FILE *out, int indent, const char *cm)
{
    static const char *const names[O2D_SIGNALS] = {"traces", "logs", "metrics"};
    if (!cfg->pipelines_given) {
        return;
    }
    fprintf(out, "%*s%spipelines:\n", indent, "", cm);
    for (int s = 0; s < O2D_SIGNALS; s++) {
        fprintf(out, "%*s%s%s:\n%*s%sprocessors: [", indent + 2, "", cm, names[s], indent + 4, "",
                cm);
        for (size_t i = 0; i < cfg->processors[s].n; i++) {
            fprintf(out, "%s%s", i ? ", " : "",
                    o2d_processor_types[cfg->processors[s].ids[i]].name);
        }
        fputs("]\n", out);
    }
}

/* The keys directly under `path`, in table order, sections recursively. */
static void write_section(const struct o2d_config *cfg, FILE *out, const char *path, int indent,
                          const char *cm)
{
    for (size_t i = 0; i < config_key_table_len; i++) {
        const struct key_row *r = &config_key_table[i];
        const char *leaf = config_row_leaf_under(r, path);
        /* "*" rows and KEY_NAMES (service.pipelines, service.extensions) hold nothing. */
        if (leaf == NULL || strcmp(leaf, "*") == 0 || r->type == KEY_NAMES) {
            continue;
        }
        if (r->type == KEY_SECTION && strcmp(r->path, "service.pipelines") == 0) {
            write_pipelines(cfg, out, indent, cm);
            continue;
        }
        if (r->type == KEY_SECTION) {
            int st = section_state(cfg, r);
            if (st == 0 || !has_content(cfg, r->path)) {
                continue;
            }
            const char *sub = st == 2 ? "# " : cm;
            fprintf(out, "%*s%s%s:\n", indent, "", sub, leaf);
            write_section(cfg, out, r->path, indent + 2, sub);
            continue;
        }
        fprintf(out, "%*s%s%s:", indent, "", cm, leaf);
        if (r->type != KEY_STRINGS && r->type != KEY_STRMAP) {
            fputc(' ', out);
        }
        write_value(cfg, r, out, indent, cm);
        fputc('\n', out);
    }
}

int o2d_config_write_yaml(const struct o2d_config *cfg, FILE *out)
{
    char a[SHOW_MAX + 4];
    fprintf(out, "# otel2dd effective configuration, from %s\n",
            config_show(a, cfg->source, strlen(cfg->source)));
    write_section(cfg, out, "", 0, "");
    o2d_sampling_write_yaml(&cfg->sampling, out);
    return ferror(out) ? O2D_ERR_SYSTEM : O2D_OK;
}
