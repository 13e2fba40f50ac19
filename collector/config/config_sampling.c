/*
 * config_sampling.c: reads processors.probabilistic_sampler and processors.llmobs_sampler
 * (config_sampling.h) out of the tree before config_walk() sees it: their values are
 * percentages (decimals, which the key table has no type for) and maps of them. Key names and
 * defaults of the first follow the Collector's probabilisticsamplerprocessor (config.go:
 * sampling_percentage, hash_seed, mode, sampling_precision, fail_closed); `equalizing` mode,
 * attribute_source, from_attribute and sampling_priority (logs) are refused. Ours:
 * keep_error_traces, keep_traces_slower_than, service_rates; and for LLM Obs ml_app_rates.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "config_sampling.h"
#include "o2d.h"

#define APM_KEY    "processors.probabilistic_sampler"
#define LLMOBS_KEY "processors.llmobs_sampler"

void o2d_sampling_defaults(struct o2d_sampling_config *s)
{
    memset(s, 0, sizeof(*s));
    s->apm_percent = 0; /* the Collector's default: a section without it keeps by rule only */
    s->apm_mode = O2D_SAMPLE_PROPORTIONAL;
    s->apm_precision = O2D_SAMPLE_PRECISION_DEFAULT;
    s->apm_fail_closed = 1;
    s->apm_keep_errors = 1;
    s->llmobs_percent = 100;
    s->llmobs_mode = O2D_SAMPLE_PROPORTIONAL;
    s->llmobs_precision = O2D_SAMPLE_PRECISION_DEFAULT;
    s->llmobs_keep_errors = 1;
}

/* A scalar's text with ${env:...} expanded. */
static int scalar(struct loader *ld, const char *path, const struct node *k, const struct node *v,
                  const char **out)
{
    if (v->kind != NODE_SCALAR || v->is_null) {
        return config_fail(&ld->err, k->line, "%s must be a value, got %s", path,
                           v->kind == NODE_SCALAR ? "null" : config_kind_name(v));
    }
    return config_expand_env(ld, v->line, path, v->text, v->len, 0, out);
}

static int percent_value(struct loader *ld, const char *path, const struct node *k,
                         const struct node *v, double *out)
{
    const char *s;
    int rc = scalar(ld, path, k, v, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    char *end = NULL;
    double d = strtod(s, &end);
    char a[SHOW_MAX + 4];
    if (end == s || *end != '\0' || !isfinite(d) || d < 0 || d > 100) {
        return config_fail(&ld->err, v->line,
                           "%s must be a percentage from 0 to 100 (10 or 12.5), got '%s'", path,
                           config_show(a, s, strlen(s)));
    }
    *out = d;
    return O2D_OK;
}

static int bool_value(struct loader *ld, const char *path, const struct node *k,
                      const struct node *v, int *out)
{
    const char *s;
    int rc = scalar(ld, path, k, v, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    int b = o2d_config_parse_bool(s);
    char a[SHOW_MAX + 4];
    if (b < 0) {
        return config_fail(&ld->err, v->line, "%s must be true or false, got '%s'", path,
                           config_show(a, s, strlen(s)));
    }
    *out = b;
    return O2D_OK;
}

static int seed_value(struct loader *ld, const char *path, const struct node *k,
                      const struct node *v, uint32_t *out)
{
    const char *s;
    int rc = scalar(ld, path, k, v, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    char *end = NULL;
    unsigned long long u = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    char a[SHOW_MAX + 4];
    if (end == NULL || *end != '\0' || u > UINT32_MAX) {
        return config_fail(&ld->err, v->line,
                           "%s must be an integer from 0 to 4294967295, got '%s'", path,
                           config_show(a, s, strlen(s)));
    }
    *out = (uint32_t)u;
    return O2D_OK;
}

static int mode_value(struct loader *ld, const char *path, const struct node *k,
                      const struct node *v, enum o2d_sample_mode *out)
{
    const char *s;
    int rc = scalar(ld, path, k, v, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    char a[SHOW_MAX + 4];
    if (strcmp(s, "proportional") == 0) {
        *out = O2D_SAMPLE_PROPORTIONAL;
    } else if (strcmp(s, "hash_seed") == 0) {
        *out = O2D_SAMPLE_HASH_SEED;
    } else if (strcmp(s, "equalizing") == 0) {
        return config_fail(&ld->err, v->line,
                           "%s: equalizing is not supported (it needs the tracestate "
                           "thresholds of an upstream sampler); use proportional or hash_seed",
                           path);
    } else {
        return config_fail(&ld->err, v->line, "%s must be proportional or hash_seed, got '%s'",
                           path, config_show(a, s, strlen(s)));
    }
    return O2D_OK;
}

static int precision_value(struct loader *ld, const char *path, const struct node *k,
                           const struct node *v, int *out)
{
    const char *s;
    int rc = scalar(ld, path, k, v, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    char *end = NULL;
    long p = s[0] >= '0' && s[0] <= '9' ? strtol(s, &end, 10) : 0;
    char a[SHOW_MAX + 4];
    if (end == NULL || *end != '\0' || p < 1 || p > O2D_SAMPLE_PRECISION_MAX) {
        return config_fail(&ld->err, v->line,
                           "%s must be a number of hex digits from 1 to %d, got '%s'", path,
                           O2D_SAMPLE_PRECISION_MAX, config_show(a, s, strlen(s)));
    }
    *out = (int)p;
    return O2D_OK;
}

/* 250ms, 2s, 1.5s, 1m: a positive number and a unit. */
static int duration_value(struct loader *ld, const char *path, const struct node *k,
                          const struct node *v, int64_t *out_ms)
{
    const char *s;
    int rc = scalar(ld, path, k, v, &s);
    if (rc != O2D_OK) {
        return rc;
    }
    char *end = NULL;
    double d = strtod(s, &end);
    double scale = -1;
    if (end != s && end != NULL) {
        scale = strcmp(end, "ms") == 0  ? 1
                : strcmp(end, "s") == 0 ? 1000
                : strcmp(end, "m") == 0 ? 60000
                : strcmp(end, "h") == 0 ? 3600000
                : strcmp(s, "0") == 0   ? 0
                                        : -1;
    }
    char a[SHOW_MAX + 4];
    if (scale < 0 || !isfinite(d) || d < 0 || d * scale > (double)DURATION_MAX_MS) {
        return config_fail(&ld->err, v->line,
                           "%s must be a duration such as 500ms or 2s (0 = off), got '%s'", path,
                           config_show(a, s, strlen(s)));
    }
    *out_ms = (int64_t)llround(d * scale);
    return O2D_OK;
}

/* A map of name -> percentage (service_rates, ml_app_rates). */
static int rates_value(struct loader *ld, const char *path, const struct node *k,
                       const struct node *v, char names[][O2D_SAMPLE_NAME_MAX], double *pct,
                       size_t *n)
{
    *n = 0;
    if (v->kind == NODE_SCALAR && v->is_null) {
        return O2D_OK;
    }
    if (v->kind != NODE_MAP) {
        return config_fail(&ld->err, k->line, "%s must be a map of name: percentage, got %s", path,
                           config_kind_name(v));
    }
    char a[SHOW_MAX + 4];
    char sub[512];
    for (const struct node *e = v->child; e != NULL && e->next != NULL; e = e->next->next) {
        if (e->kind != NODE_SCALAR || e->is_null || e->len == 0 || e->len >= O2D_SAMPLE_NAME_MAX ||
            strlen(e->text) != e->len) {
            return config_fail(&ld->err, e->line, "%s: names must be 1 to %d bytes", path,
                               O2D_SAMPLE_NAME_MAX - 1);
        }
        if (*n == O2D_SAMPLE_MAX_RATES) {
            return config_fail(&ld->err, e->line, "%s: at most %d entries", path,
                               O2D_SAMPLE_MAX_RATES);
        }
        for (size_t i = 0; i < *n; i++) {
            if (strcmp(names[i], e->text) == 0) {
                return config_fail(&ld->err, e->line, "%s: duplicate name '%s'", path,
                                   config_show(a, e->text, e->len));
            }
        }
        snprintf(sub, sizeof(sub), "%s.%s", path, e->text);
        int rc = percent_value(ld, sub, e, e->next, &pct[*n]);
        if (rc != O2D_OK) {
            return rc;
        }
        memcpy(names[*n], e->text, e->len + 1);
        (*n)++;
    }
    return O2D_OK;
}

static int unknown(struct loader *ld, const char *path, const struct node *k, const char *known)
{
    char a[SHOW_MAX + 4];
    return config_fail(&ld->err, k->line, "unknown key '%s' under %s; expected one of: %s",
                       config_show(a, k->text, k->len), path, known);
}

static int key_is(const struct node *k, const char *name)
{
    return k->kind == NODE_SCALAR && !k->is_null && strlen(name) == k->len &&
           memcmp(k->text, name, k->len) == 0;
}

/* The map's keys before k: is k one of them? */
static int duplicate(struct loader *ld, const char *path, const struct node *map,
                     const struct node *k)
{
    char a[SHOW_MAX + 4];
    for (const struct node *p = map->child; p != k; p = p->next->next) {
        if (p->kind == NODE_SCALAR && p->len == k->len && memcmp(p->text, k->text, k->len) == 0) {
            return config_fail(&ld->err, k->line, "duplicate key '%s' under %s (first at line %lu)",
                               config_show(a, k->text, k->len), path, p->line);
        }
    }
    return O2D_OK;
}

/* The keys both samplers take (the Collector's, and keep_error_traces), and what was read of
 * the seed and the mode. */
struct shared_keys {
    const char *section;
    double *percent;
    enum o2d_sample_mode *mode;
    int *precision;
    uint32_t *seed;
    int *keep_errors;
    int seed_set, mode_set;
    const struct node *seed_key;
};

/* A key of one sampler's own: O2D_OK with *taken set when it is one, or an error. */
typedef int (*own_key_fn)(struct loader *ld, const char *path, const struct node *k,
                          const struct node *v, int *taken);

/* One sampler's section: the shared keys, then its own, then the Collector's rule for the
 * seed: hash_seed mode when a seed is set and no mode is named, and a seed only with it. */
static int read_sampler(struct loader *ld, const struct node *map, struct shared_keys *sh,
                        own_key_fn own, const char *known)
{
    char path[256];
    for (const struct node *k = map != NULL ? map->child : NULL; k != NULL && k->next != NULL;
         k = k->next->next) {
        const struct node *v = k->next;
        int rc, taken = 1;
        snprintf(path, sizeof(path), "%s.%.*s", sh->section, (int)(k->len < 64 ? k->len : 64),
                 k->text);
        if ((rc = duplicate(ld, sh->section, map, k)) != O2D_OK) {
            return rc;
        }
        if (key_is(k, "sampling_percentage")) {
            rc = percent_value(ld, path, k, v, sh->percent);
        } else if (key_is(k, "hash_seed")) {
            rc = seed_value(ld, path, k, v, sh->seed);
            sh->seed_set = 1;
            sh->seed_key = k;
        } else if (key_is(k, "mode")) {
            rc = mode_value(ld, path, k, v, sh->mode);
            sh->mode_set = 1;
        } else if (key_is(k, "sampling_precision")) {
            rc = precision_value(ld, path, k, v, sh->precision);
        } else if (key_is(k, "keep_error_traces")) {
            rc = bool_value(ld, path, k, v, sh->keep_errors);
        } else if ((rc = own(ld, path, k, v, &taken)) == O2D_OK && !taken) {
            rc = unknown(ld, sh->section, k, known);
        }
        if (rc != O2D_OK) {
            return rc;
        }
    }
    if (sh->seed_set && !sh->mode_set) {
        *sh->mode = O2D_SAMPLE_HASH_SEED;
    }
    if (sh->seed_set && *sh->mode != O2D_SAMPLE_HASH_SEED) {
        return config_fail(&ld->err, sh->seed_key->line,
                           "%s.hash_seed is used only with mode: hash_seed", sh->section);
    }
    return O2D_OK;
}

static int apm_own_key(struct loader *ld, const char *path, const struct node *k,
                       const struct node *v, int *taken)
{
    struct o2d_sampling_config *s = &ld->cfg.sampling;
    *taken = 1;
    if (key_is(k, "fail_closed")) {
        return bool_value(ld, path, k, v, &s->apm_fail_closed);
    }
    if (key_is(k, "keep_traces_slower_than")) {
        return duration_value(ld, path, k, v, &s->apm_slow_ms);
    }
    if (key_is(k, "service_rates")) {
        return rates_value(ld, path, k, v, s->services, s->service_percent, &s->n_services);
    }
    *taken = 0;
    return O2D_OK;
}

static int llmobs_own_key(struct loader *ld, const char *path, const struct node *k,
                          const struct node *v, int *taken)
{
    struct o2d_sampling_config *s = &ld->cfg.sampling;
    *taken = key_is(k, "ml_app_rates");
    return *taken ? rates_value(ld, path, k, v, s->apps, s->app_percent, &s->n_apps) : O2D_OK;
}

static int read_apm(struct loader *ld, const struct node *map)
{
    struct o2d_sampling_config *s = &ld->cfg.sampling;
    struct shared_keys sh = {.section = APM_KEY,
                             .percent = &s->apm_percent,
                             .mode = &s->apm_mode,
                             .precision = &s->apm_precision,
                             .seed = &s->apm_seed,
                             .keep_errors = &s->apm_keep_errors};
    s->apm_section = 1;
    return read_sampler(ld, map, &sh, apm_own_key,
                        "sampling_percentage, hash_seed, mode, sampling_precision, fail_closed, "
                        "keep_error_traces, keep_traces_slower_than, service_rates");
}

static int read_llmobs(struct loader *ld, const struct node *map)
{
    struct o2d_sampling_config *s = &ld->cfg.sampling;
    struct shared_keys sh = {.section = LLMOBS_KEY,
                             .percent = &s->llmobs_percent,
                             .mode = &s->llmobs_mode,
                             .precision = &s->llmobs_precision,
                             .seed = &s->llmobs_seed,
                             .keep_errors = &s->llmobs_keep_errors};
    s->llmobs_section = 1;
    return read_sampler(ld, map, &sh, llmobs_own_key,
                        "sampling_percentage, ml_app_rates, keep_error_traces, hash_seed, mode, "
                        "sampling_precision");
}

int config_sampling_take(struct loader *ld)
{
    /* The file alone decides: without the sections, no sampler (the embedded default). */
    o2d_sampling_defaults(&ld->cfg.sampling);
    const struct node *root = ld->root;
    if (root == NULL || root->kind != NODE_MAP) {
        return O2D_OK;
    }
    struct node *procs = NULL;
    for (struct node *k = root->child; k != NULL && k->next != NULL; k = k->next->next) {
        if (key_is(k, "processors") && k->next->kind == NODE_MAP) {
            procs = k->next;
            break;
        }
    }
    if (procs == NULL) {
        return O2D_OK;
    }
    /* Each of our sections is read, then unlinked: config_walk sees the others only. */
    struct node **link = &procs->child;
    while (*link != NULL && (*link)->next != NULL) {
        struct node *k = *link;
        const struct node *v = k->next;
        int ours = key_is(k, "probabilistic_sampler") || key_is(k, "llmobs_sampler");
        if (!ours) {
            link = &k->next->next;
            continue;
        }
        if (!(v->kind == NODE_MAP || (v->kind == NODE_SCALAR && v->is_null))) {
            return config_fail(&ld->err, k->line, "processors.%s must be a map, got %s", k->text,
                               config_kind_name(v));
        }
        int rc = key_is(k, "probabilistic_sampler")
                     ? read_apm(ld, v->kind == NODE_MAP ? v : NULL)
                     : read_llmobs(ld, v->kind == NODE_MAP ? v : NULL);
        if (rc != O2D_OK) {
            return rc;
        }
        *link = k->next->next;
    }
    procs->last = NULL;
    for (struct node *n = procs->child; n != NULL; n = n->next) {
        procs->last = n;
    }
    return O2D_OK;
}

void o2d_sampling_prepare(struct o2d_sampling_config *s)
{
    s->apm = (struct apm_sampler){
        .enabled = s->apm_section,
        .mode = s->apm_mode,
        .hash_seed = s->apm_seed,
        .fail_closed = s->apm_fail_closed,
        .rate = o2d_sample_rate_prec(s->apm_mode, s->apm_percent, s->apm_precision),
        .keep_errors = s->apm_keep_errors,
        .keep_slower_than_ns = s->apm_slow_ms * 1000000,
        .services = s->service_rates,
        .n_services = s->n_services,
    };
    for (size_t i = 0; i < s->n_services; i++) {
        s->service_rates[i].service = s->services[i];
        s->service_rates[i].rate =
            o2d_sample_rate_prec(s->apm_mode, s->service_percent[i], s->apm_precision);
    }
    s->llmobs = (struct llmobs_sampler){
        .enabled = s->llmobs_section,
        .mode = s->llmobs_mode,
        .hash_seed = s->llmobs_seed,
        .rate = o2d_sample_rate_prec(s->llmobs_mode, s->llmobs_percent, s->llmobs_precision),
        .keep_errors = s->llmobs_keep_errors,
        .apps = s->app_rates,
        .n_apps = s->n_apps,
    };
    for (size_t i = 0; i < s->n_apps; i++) {
        s->app_rates[i].ml_app = s->apps[i];
        s->app_rates[i].rate =
            o2d_sample_rate_prec(s->llmobs_mode, s->app_percent[i], s->llmobs_precision);
    }
}

static const char *mode_name(enum o2d_sample_mode m)
{
    return m == O2D_SAMPLE_HASH_SEED ? "hash_seed" : "proportional";
}

void o2d_sampling_describe_apm(const struct o2d_sampling_config *s, FILE *out)
{
    char d[32];
    fputs("#     stats count every span; then a trace is kept by, in order:\n", out);
    fputs("#     its spans' own sampling.priority (0 drops, above 0 keeps)\n", out);
    if (s->apm_keep_errors) {
        fputs("#     an error span (keep_error_traces)\n", out);
    }
    if (s->apm_slow_ms > 0) {
        fprintf(out, "#     a span of %s or more (keep_traces_slower_than)\n",
                config_format_duration(d, sizeof(d), (uint64_t)s->apm_slow_ms));
    }
    for (size_t i = 0; i < s->n_services; i++) {
        fprintf(out, "#     service %s: %.10g%% of its traces\n", s->services[i],
                s->service_percent[i]);
    }
    fprintf(out, "#     else %.10g%% of traces, by trace id (%s)\n", s->apm_percent,
            mode_name(s->apm_mode));
}

void o2d_sampling_describe_llmobs(const struct o2d_sampling_config *s, FILE *out)
{
    fputs("#     whole traces, by OTel trace id, before the trace buffer\n", out);
    if (s->llmobs_keep_errors) {
        fputs("#     an LLM Obs span in error keeps its trace (keep_error_traces)\n", out);
    }
    for (size_t i = 0; i < s->n_apps; i++) {
        fprintf(out, "#     ml_app %s: %.10g%% of its traces\n", s->apps[i], s->app_percent[i]);
    }
    fprintf(out, "#     else %.10g%% (%s)\n", s->llmobs_percent, mode_name(s->llmobs_mode));
}

/* A name as a double-quoted YAML key (names may hold ':' or '#'). */
static void write_name(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', out);
        }
        fputc(*s, out);
    }
    fputc('"', out);
}

static void write_rates(FILE *out, const char *key, const char names[][O2D_SAMPLE_NAME_MAX],
                        const double *pct, size_t n)
{
    fprintf(out, "    %s:%s\n", key, n == 0 ? " {}" : "");
    for (size_t i = 0; i < n; i++) {
        fputs("      ", out);
        write_name(out, names[i]);
        fprintf(out, ": %.10g\n", pct[i]);
    }
}

void o2d_sampling_write_yaml(const struct o2d_sampling_config *s, FILE *out)
{
    if (!s->apm_section && !s->llmobs_section) {
        return;
    }
    fputs("processors:\n", out);
    if (s->apm_section) {
        fputs("  probabilistic_sampler:             # APM traces; stats still count every span\n",
              out);
        fprintf(out, "    sampling_percentage: %.10g\n", s->apm_percent);
        fprintf(out, "    mode: %s\n", mode_name(s->apm_mode));
        if (s->apm_mode == O2D_SAMPLE_HASH_SEED) {
            fprintf(out, "    hash_seed: %u\n", s->apm_seed);
        } else {
            fprintf(out, "    sampling_precision: %d\n", s->apm_precision);
        }
        fprintf(out, "    fail_closed: %s\n", s->apm_fail_closed ? "true" : "false");
        fprintf(out, "    keep_error_traces: %s\n", s->apm_keep_errors ? "true" : "false");
        char d[32];
        fprintf(out, "    keep_traces_slower_than: %s\n",
                config_format_duration(d, sizeof(d), (uint64_t)s->apm_slow_ms));
        write_rates(out, "service_rates", s->services, s->service_percent, s->n_services);
    }
    if (s->llmobs_section) {
        fputs("  llmobs_sampler:                    # LLM Observability, per ml_app\n", out);
        fprintf(out, "    sampling_percentage: %.10g\n", s->llmobs_percent);
        fprintf(out, "    mode: %s\n", mode_name(s->llmobs_mode));
        if (s->llmobs_mode == O2D_SAMPLE_HASH_SEED) {
            fprintf(out, "    hash_seed: %u\n", s->llmobs_seed);
        } else {
            fprintf(out, "    sampling_precision: %d\n", s->llmobs_precision);
        }
        fprintf(out, "    keep_error_traces: %s\n", s->llmobs_keep_errors ? "true" : "false");
        write_rates(out, "ml_app_rates", s->apps, s->app_percent, s->n_apps);
    }
}
