/*
 * config_walk.c: the tree from config_yaml.c walked against the key table (config.c). Each
 * key is looked up by its path ("*" in a row stands for any one key); an unknown one is an
 * error that lists the keys expected there or suggests the nearest. Each value is expanded
 * (config_env.c), checked against its row's type and bounds and stored at the row's offset
 * in struct o2d_config; a section that lists its parts turns off those it leaves out. This
 * file knows struct key_row only, never which keys exist: those are the table's.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "o2d.h"

#define PATH_BUF 512

/* ---- matching keys against the table ---- */

/* Does the pattern pat[0..plen) ("a.*.b") name the path ("a.x.b")? */
static int pattern_matches(const char *pat, size_t plen, const char *path)
{
    size_t alen = strlen(path);
    size_t i = 0;
    size_t j = 0;
    for (;;) {
        if (i == plen || j == alen) {
            return i == plen && j == alen;
        }
        size_t pe = i;
        while (pe < plen && pat[pe] != '.') {
            pe++;
        }
        size_t ae = j;
        while (ae < alen && path[ae] != '.') {
            ae++;
        }
        int star = pe - i == 1 && pat[i] == '*';
        if (!star && (pe - i != ae - j || memcmp(pat + i, path + j, pe - i) != 0)) {
            return 0;
        }
        i = pe < plen ? pe + 1 : pe;
        j = ae < alen ? ae + 1 : ae;
    }
}

/* If the row is a key directly under `path`, its last segment ("*" for any); else NULL. */
const char *config_row_leaf_under(const struct key_row *row, const char *path)
{
    const char *dot = strrchr(row->path, '.');
    if (dot == NULL) {
        return path[0] == '\0' ? row->path : NULL;
    }
    return pattern_matches(row->path, (size_t)(dot - row->path), path) ? dot + 1 : NULL;
}

static const struct key_row *find_row(const char *path, const struct node *key)
{
    const struct key_row *any = NULL;
    if (key->len == 0 || strlen(key->text) != key->len || strchr(key->text, '.') != NULL) {
        return NULL;
    }
    for (size_t i = 0; i < config_key_table_len; i++) {
        const char *leaf = config_row_leaf_under(&config_key_table[i], path);
        if (leaf == NULL) {
            continue;
        }
        if (strcmp(leaf, key->text) == 0) {
            return &config_key_table[i];
        }
        if (strcmp(leaf, "*") == 0) {
            any = &config_key_table[i];
        }
    }
    return any;
}

/* Levenshtein distance, for "did you mean"; long words are simply far apart. */
static size_t edit_distance(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    size_t row[SHOW_MAX + 1];
    if (alen > SHOW_MAX || blen > SHOW_MAX) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= blen; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= alen; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}

static int unknown_key(struct loader *ld, const char *path, const struct node *key)
{
    char k[SHOW_MAX + 4];
    char where[PATH_BUF + 8];
    char expected[512];
    size_t elen = 0;
    const char *best = NULL;
    size_t best_d = 3; /* suggest within an edit distance of 2 */

    expected[0] = '\0';
    for (size_t i = 0; i < config_key_table_len; i++) {
        const char *leaf = config_row_leaf_under(&config_key_table[i], path);
        if (leaf == NULL || strcmp(leaf, "*") == 0) {
            continue;
        }
        size_t d = edit_distance(key->text, key->len, leaf);
        if (d < best_d) {
            best_d = d;
            best = leaf;
        }
        int n = snprintf(expected + elen, sizeof(expected) - elen, "%s%s", elen ? ", " : "", leaf);
        if (n > 0 && (size_t)n < sizeof(expected) - elen) {
            elen += (size_t)n;
        }
    }
    if (path[0] != '\0') {
        snprintf(where, sizeof(where), "under %s", path);
    } else {
        snprintf(where, sizeof(where), "at the top level");
    }
    config_show(k, key->text, key->len);
    if (best != NULL) {
        return config_fail(&ld->err, key->line, "unknown key '%s' %s; did you mean '%s'?", k, where,
                           best);
    }
    return config_fail(&ld->err, key->line, "unknown key '%s' %s; expected one of: %s", k, where,
                       expected);
}

/* ---- values ---- */

static void store_uint(struct o2d_config *cfg, const struct key_row *row, uint64_t v)
{
    char *field = (char *)cfg + row->off;
    if (row->size == sizeof(uint64_t)) {
        uint64_t x = v;
        memcpy(field, &x, sizeof(x));
    } else if (row->size == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, sizeof(x));
    }
}

/* Decimal digits only, as YAML 1.2 and the Collector read a plain integer; saturates. */
static int parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0') {
        return -1;
    }
    for (; *s; s++) {
        if (!is_digit(*s)) {
            return -1;
        }
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A Go-style duration restricted to whole numbers of ms, s, m and h ("1m30s"), or a bare
 * 0; in milliseconds, saturating. */
static int parse_duration(const char *s, uint64_t *ms)
{
    uint64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*s == '\0') {
        return -1;
    }
    while (*s) {
        uint64_t n = 0;
        uint64_t unit;
        if (!is_digit(*s)) {
            return -1;
        }
        for (; is_digit(*s); s++) {
            unsigned d = (unsigned)(*s - '0');
            n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
        }
        if (s[0] == 'm' && s[1] == 's') {
            unit = 1;
            s += 2;
        } else if (*s == 's' || *s == 'm' || *s == 'h') {
            unit = *s == 's' ? 1000 : *s == 'm' ? 60000 : 3600000;
            s++;
        } else {
            return -1;
        }
        n = n > UINT64_MAX / unit ? UINT64_MAX : n * unit;
        total = total > UINT64_MAX - n ? UINT64_MAX : total + n;
    }
    *ms = total;
    return 0;
}

const char *config_format_duration(char *out, size_t outlen, uint64_t ms)
{
    if (ms == 0) {
        snprintf(out, outlen, "0s");
    } else if (ms % 3600000 == 0) {
        snprintf(out, outlen, "%lluh", (unsigned long long)(ms / 3600000));
    } else if (ms % 60000 == 0) {
        snprintf(out, outlen, "%llum", (unsigned long long)(ms / 60000));
    } else if (ms % 1000 == 0) {
        snprintf(out, outlen, "%llus", (unsigned long long)(ms / 1000));
    } else {
        snprintf(out, outlen, "%llums", (unsigned long long)ms);
    }
    return out;
}

/* host:port, [ipv6]:port or :port, port 0..65535 (0 asks the system for a free port). */
static int endpoint_valid(const char *s)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close == s + 1 || close[1] != ':') {
            return 0;
        }
        for (const char *p = s + 1; p < close; p++) {
            if (!(is_alpha(*p) || is_digit(*p) || *p == ':' || *p == '.' || *p == '%')) {
                return 0;
            }
        }
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return 0;
        }
        for (const char *p = s; p < colon; p++) {
            if (!(is_alpha(*p) || is_digit(*p) || *p == '.' || *p == '-' || *p == '_')) {
                return 0;
            }
        }
    }
    uint64_t port;
    size_t digits = strlen(colon + 1);
    return digits >= 1 && digits <= 5 && parse_uint(colon + 1, &port) == 0 && port <= 65535;
}

int o2d_config_parse_bool(const char *s)
{
    /* ddtrace's asbool takes "true" and "1" in any case and reads anything else as false;
     * we take its two spellings of each and refuse the rest, because "yes" or "on" would
     * mean false under ddtrace and true to a YAML 1.1 reader: neither guess is safe. */
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        return 1;
    }
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        return 0;
    }
    return -1;
}

/* Follows dd-trace-py ddtrace/internal/utils/formats.py parse_tags_str. */
int o2d_config_parse_tags(const char *s, char kv[O2D_MAX_TAGS][O2D_TAG_MAX + 1], size_t *n,
                          char *why, size_t whylen)
{
    char a[SHOW_MAX + 4];
    char sep = strchr(s, ',') != NULL ? ',' : ' ';
    *n = 0;
    while (*s) {
        const char *end = strchr(s, sep);
        const char *next = end != NULL ? end + 1 : s + strlen(s);
        if (end == NULL) {
            end = next;
        }
        while (s < end && is_blank((unsigned char)*s)) {
            s++;
        }
        while (end > s && is_blank((unsigned char)end[-1])) {
            end--;
        }
        size_t len = (size_t)(end - s);
        const char *colon = memchr(s, ':', len);
        const char *kend = colon != NULL ? colon : end;
        const char *v = colon != NULL ? colon + 1 : end;
        while (kend > s && is_blank((unsigned char)kend[-1])) {
            kend--;
        }
        while (v < end && is_blank((unsigned char)*v)) {
            v++;
        }
        size_t klen = (size_t)(kend - s);
        size_t vlen = (size_t)(end - v);
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                snprintf(why, whylen, "'%s' holds a control character", config_show(a, s, len));
                return O2D_ERR_CONFIG;
            }
        }
        if (klen > 0) {
            if (klen + 1 + vlen > O2D_TAG_MAX) {
                snprintf(why, whylen, "'%s' is longer than %d bytes", config_show(a, s, len),
                         O2D_TAG_MAX);
                return O2D_ERR_CONFIG;
            }
            size_t i = 0;
            /* A later key replaces an earlier one, as in ddtrace's dict. */
            while (i < *n && !(strncmp(kv[i], s, klen) == 0 && kv[i][klen] == ':')) {
                i++;
            }
            if (i == O2D_MAX_TAGS) {
                snprintf(why, whylen, "more than %d key:value pairs", O2D_MAX_TAGS);
                return O2D_ERR_CONFIG;
            }
            memcpy(kv[i], s, klen);
            kv[i][klen] = ':';
            memcpy(kv[i] + klen + 1, v, vlen);
            kv[i][klen + 1 + vlen] = '\0';
            if (i == *n) {
                (*n)++;
            }
        }
        s = next;
    }
    return O2D_OK;
}

/* What a row takes, for messages: "<key> must be <this>". */
static const char *expectation(const struct key_row *row, char *out, size_t outlen)
{
    char lo[32];
    char hi[32];
    switch (row->type) {
    case KEY_SECTION:
        return "a map";
    case KEY_NAMES:
        return "a sequence of names";
    case KEY_STRING:
        return "a string";
    case KEY_ENDPOINT:
        return row->flags & KEY_EMPTY_OK
                   ? "host:port, [ipv6]:port or :port (port 0-65535), or empty for off"
                   : "host:port, [ipv6]:port or :port (port 0-65535)";
    case KEY_UINT:
        return row->min > 0 ? "a positive integer" : "a non-negative integer";
    case KEY_DURATION:
        snprintf(out, outlen, "a duration from %s to %s such as 500ms, 30s, 5m or 1h",
                 config_format_duration(lo, sizeof(lo), row->min),
                 config_format_duration(hi, sizeof(hi), row->max));
        return out;
    case KEY_ENUM:
        snprintf(out, outlen, "one of %s", row->choices);
        return out;
    case KEY_BOOL:
        return "true, false, 1 or 0";
    case KEY_TAGS:
        return "key:value pairs separated by commas or blanks";
    case KEY_STRINGS:
        return "a sequence of strings";
    case KEY_STRMAP:
        return "a map of names to names";
    }
    return "a value";
}

static int store_text(struct loader *ld, const struct key_row *row, const struct node *key,
                      unsigned long line, const char *v)
{
    char a[SHOW_MAX + 4];
    size_t len = strlen(v);
    if (len >= row->size) {
        return config_fail(&ld->err, line, "%s must be shorter than %zu bytes, got '%s'", key->text,
                           row->size,
                           row->flags & KEY_SECRET ? "<secret>" : config_show(a, v, len));
    }
    memcpy((char *)&ld->cfg + row->off, v, len + 1);
    return O2D_OK;
}

static int apply_value(struct loader *ld, const struct key_row *row, const struct node *key,
                       const struct node *v)
{
    char a[SHOW_MAX + 4];
    char what[128];
    char lower[32];
    unsigned long line = v->is_null ? key->line : v->line;
    const char *s;
    uint64_t n;

    if (v->kind != NODE_SCALAR) {
        return config_fail(&ld->err, key->line, "%s must be %s, got %s", key->text,
                           expectation(row, what, sizeof(what)), config_kind_name(v));
    }
    if (!v->is_null && strlen(v->text) != v->len) {
        return config_fail(&ld->err, line, "%s must not contain a NUL byte", key->text);
    }
    int rc = config_expand_env(ld, line, key->text, v->is_null ? "" : v->text,
                               v->is_null ? 0 : v->len, (row->flags & KEY_SECRET) != 0, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    if (row->flags & KEY_SECRET) {
        snprintf(a, sizeof(a), "<secret>");
    } else {
        config_show(a, s, strlen(s));
    }
    switch (row->type) {
    case KEY_ENDPOINT:
        if (!(s[0] == '\0' && (row->flags & KEY_EMPTY_OK)) && !endpoint_valid(s)) {
            return config_fail(&ld->err, line, "%s must be %s, got '%s'", key->text,
                               expectation(row, what, sizeof(what)), a);
        }
        return store_text(ld, row, key, line, s);
    case KEY_STRING:
        if (s[0] == '\0' && !(row->flags & KEY_EMPTY_OK)) {
            return config_fail(&ld->err, line, "%s must not be empty", key->text);
        }
        return store_text(ld, row, key, line, s);
    case KEY_UINT:
        if (parse_uint(s, &n) != 0) {
            return config_fail(&ld->err, line, "%s must be %s, got '%s'", key->text,
                               expectation(row, what, sizeof(what)), a);
        }
        if (n < row->min || n > row->max) {
            return config_fail(&ld->err, line, "%s must be between %llu and %llu, got '%s'",
                               key->text, (unsigned long long)row->min,
                               (unsigned long long)row->max, a);
        }
        store_uint(&ld->cfg, row, n * row->scale);
        return O2D_OK;
    case KEY_DURATION:
        if (parse_duration(s, &n) != 0 || n < row->min || n > row->max) {
            return config_fail(&ld->err, line, "%s must be %s, got '%s'", key->text,
                               expectation(row, what, sizeof(what)), a);
        }
        store_uint(&ld->cfg, row, n);
        return O2D_OK;
    case KEY_ENUM: {
        size_t len = strlen(s);
        int e = -1;
        /* Case does not matter, as for the Collector's levels. */
        if (len < sizeof(lower)) {
            for (size_t i = 0; i <= len; i++) {
                lower[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
            }
            e = row->parse(lower);
        }
        if (e < 0) {
            return config_fail(&ld->err, line, "%s must be %s, got '%s'", key->text,
                               expectation(row, what, sizeof(what)), a);
        }
        store_uint(&ld->cfg, row, (uint64_t)e);
        return O2D_OK;
    }
    case KEY_BOOL: {
        int b = o2d_config_parse_bool(s);
        if (b < 0) {
            return config_fail(&ld->err, line, "%s must be %s, got '%s'", key->text,
                               expectation(row, what, sizeof(what)), a);
        }
        store_uint(&ld->cfg, row, (uint64_t)b);
        return O2D_OK;
    }
    case KEY_TAGS: {
        char why[160];
        size_t count;
        if (o2d_config_parse_tags(s, ld->tags_scratch, &count, why, sizeof(why)) != O2D_OK) {
            return config_fail(&ld->err, line, "%s: %s", key->text, why);
        }
        return store_text(ld, row, key, line, s);
    }
    case KEY_SECTION:
    case KEY_NAMES:
    case KEY_STRINGS:
    case KEY_STRMAP:
        break;
    }
    return config_fail(&ld->err, line, "%s: internal error: no reader for this key", key->text);
}

/* One scalar of a list or map, env-expanded, into dst[0..size). */
static int store_item(struct loader *ld, const char *path, const struct node *e, char *dst,
                      size_t size, int secret)
{
    char a[SHOW_MAX + 4];
    const char *s;
    if (e->kind != NODE_SCALAR || e->is_null) {
        return config_fail(&ld->err, e->line, "%s must hold strings, got %s in it", path,
                           config_kind_name(e));
    }
    if (strlen(e->text) != e->len) {
        return config_fail(&ld->err, e->line, "%s must not contain a NUL byte", path);
    }
    int rc = config_expand_env(ld, e->line, path, e->text, e->len, secret, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    size_t len = strlen(s);
    if (len == 0 || len >= size) {
        return config_fail(&ld->err, e->line, "%s entries must be 1 to %zu bytes, got '%s'", path,
                           size - 1, secret ? "<secret>" : config_show(a, s, len));
    }
    memcpy(dst, s, len + 1);
    return O2D_OK;
}

/* traces.ignore_resources: a sequence of regular expressions (compiled in prepare). */
static int apply_strings(struct loader *ld, const struct key_row *row, const char *path,
                         const struct node *key, const struct node *v)
{
    char(*rows)[256] = (char(*)[256])((char *)&ld->cfg + row->off);
    size_t *count = (size_t *)((char *)&ld->cfg + row->count_off);
    *count = 0;
    if (v->kind == NODE_SCALAR && v->is_null) {
        return O2D_OK;
    }
    if (v->kind != NODE_SEQ) {
        return config_fail(&ld->err, key->line, "%s must be a sequence of strings, got %s", path,
                           config_kind_name(v));
    }
    for (const struct node *e = v->child; e != NULL; e = e->next) {
        if (*count == O2D_MAX_PATTERNS) {
            return config_fail(&ld->err, e->line, "%s takes at most %d entries", path,
                               O2D_MAX_PATTERNS);
        }
        int rc =
            store_item(ld, path, e, rows[*count], sizeof(rows[0]), (row->flags & KEY_SECRET) != 0);
        if (rc != O2D_OK) {
            return rc;
        }
        (*count)++;
    }
    return O2D_OK;
}

/* traces.span_name_remappings: a map of operation name to new name. */
static int apply_strmap(struct loader *ld, const struct key_row *row, const char *path,
                        const struct node *key, const struct node *v)
{
    char(*pairs)[2][128] = (char(*)[2][128])((char *)&ld->cfg + row->off);
    size_t *count = (size_t *)((char *)&ld->cfg + row->count_off);
    *count = 0;
    if (v->kind == NODE_SCALAR && v->is_null) {
        return O2D_OK;
    }
    if (v->kind != NODE_MAP) {
        return config_fail(&ld->err, key->line, "%s must be a map of names to names, got %s", path,
                           config_kind_name(v));
    }
    for (const struct node *k = v->child; k != NULL && k->next != NULL; k = k->next->next) {
        size_t i = *count;
        if (i == O2D_MAX_REMAPPINGS) {
            return config_fail(&ld->err, k->line, "%s takes at most %d entries", path,
                               O2D_MAX_REMAPPINGS);
        }
        int rc = store_item(ld, path, k, pairs[i][0], sizeof(pairs[i][0]), 0);
        if (rc == O2D_OK) {
            rc = store_item(ld, path, k->next, pairs[i][1], sizeof(pairs[i][1]), 0);
        }
        if (rc != O2D_OK) {
            return rc;
        }
        (*count)++;
    }
    return O2D_OK;
}

static int check_names(struct loader *ld, const char *path, const struct node *key,
                       const struct node *v)
{
    if (v->kind == NODE_SCALAR && v->is_null) {
        return O2D_OK;
    }
    if (v->kind != NODE_SEQ) {
        return config_fail(&ld->err, key->line, "%s must be a sequence of names, got %s", path,
                           config_kind_name(v));
    }
    for (const struct node *e = v->child; e != NULL; e = e->next) {
        if (e->kind != NODE_SCALAR || e->is_null) {
            return config_fail(&ld->err, e->line, "%s must be a sequence of names, got %s in it",
                               path, config_kind_name(e));
        }
    }
    return O2D_OK;
}

static int apply_section(struct loader *ld, const struct key_row *row, const char *path,
                         const struct node *key, const struct node *v)
{
    if (!(v->kind == NODE_MAP || (v->kind == NODE_SCALAR && v->is_null))) {
        return config_fail(&ld->err, key->line, "%s must be a map, got %s", path,
                           config_kind_name(v));
    }
    if (row->off != NO_FIELD) {
        store_uint(&ld->cfg, row, 1);
    }
    /* As in the Collector, a section that lists its parts turns off those it leaves out
     * (protocols without grpc: no gRPC). */
    for (size_t i = 0; i < config_key_table_len; i++) {
        const struct key_row *r = &config_key_table[i];
        if (r->type == KEY_SECTION && r->off != NO_FIELD &&
            config_row_leaf_under(r, path) != NULL) {
            store_uint(&ld->cfg, r, 0);
        }
    }
    return v->kind == NODE_MAP ? config_walk(ld, v, path) : O2D_OK;
}

int config_walk(struct loader *ld, const struct node *map, const char *path)
{
    char a[SHOW_MAX + 4];
    char child[PATH_BUF];
    for (const struct node *k = map->child; k != NULL && k->next != NULL; k = k->next->next) {
        const struct node *v = k->next;
        int rc;
        if (k->kind != NODE_SCALAR || k->is_null) {
            return config_fail(&ld->err, k->line, "keys %s%s must be names, got %s",
                               path[0] ? "under " : "", path[0] ? path : "at the top level",
                               config_kind_name(k));
        }
        for (const struct node *p = map->child; p != k; p = p->next->next) {
            if (p->kind == NODE_SCALAR && p->len == k->len &&
                memcmp(p->text, k->text, k->len) == 0) {
                return config_fail(&ld->err, k->line, "duplicate key '%s' %s%s (first at line %lu)",
                                   config_show(a, k->text, k->len), path[0] ? "under " : "",
                                   path[0] ? path : "at the top level", p->line);
            }
        }
        const struct key_row *row = find_row(path, k);
        if (row == NULL) {
            return unknown_key(ld, path, k);
        }
        int n = snprintf(child, sizeof(child), "%s%s%s", path, path[0] ? "." : "", k->text);
        if (n < 0 || (size_t)n >= sizeof(child)) {
            return config_fail(&ld->err, k->line, "key '%s' makes a path longer than %d bytes",
                               config_show(a, k->text, k->len), PATH_BUF - 1);
        }
        switch (row->type) {
        case KEY_SECTION:
            rc = apply_section(ld, row, child, k, v);
            break;
        case KEY_NAMES:
            rc = check_names(ld, child, k, v);
            break;
        case KEY_STRINGS:
            rc = apply_strings(ld, row, child, k, v);
            break;
        case KEY_STRMAP:
            rc = apply_strmap(ld, row, child, k, v);
            break;
        default:
            rc = apply_value(ld, row, k, v);
            break;
        }
        if (rc != O2D_OK) {
            return rc;
        }
    }
    return O2D_OK;
}
