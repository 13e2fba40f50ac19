/*
 * config_processors.c: the processors. One table row per processor type (its name under
 * `processors:`, the signals it fits, where its section's flag is, and its prepare,
 * cleanup, apply and describe), and the effective ordered list per signal, decided as the
 * Collector decides it: with service.pipelines, each pipeline's `processors` list runs for
 * its signal in that order, and a configured processor that no pipeline lists is off;
 * without service.pipelines, every configured processor runs for every signal it fits, in
 * the table's order. A pipeline that names a processor type we do not know, or one with no
 * section under `processors:`, is an error naming it (the Collector refuses both too).
 *
 * Adding a processor: its id in enum o2d_processor (config.h), its keys in the key table
 * (config.c, under SECTION_FLAG("processors.NAME", ...)), one row below.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "o2d.h"
#include "o2d_log.h"
#include "redact.h"

/* ---- redaction ---- */

static int redaction_prepare(struct o2d_config *cfg, char *err, size_t errlen)
{
    struct o2d_redaction_config *rc = &cfg->redaction;
    struct redact_config c = {
        .allow_all_keys = rc->allow_all_keys,
        .summary = (enum redact_summary)rc->summary,
        .hash = (enum redact_hash)rc->hash_function,
        .hmac_key = rc->hmac_key,
        .drop_message_contents = rc->drop_message_contents,
        .match_limit = rc->match_limit,
    };
#define LIST(field)                                                                                \
    do {                                                                                           \
        for (size_t i = 0; i < rc->n_##field; i++) {                                               \
            c.field[i] = rc->field[i];                                                             \
        }                                                                                          \
        c.n_##field = rc->n_##field;                                                               \
    } while (0)
    LIST(allowed_keys);
    LIST(ignored_keys);
    LIST(blocked_key_patterns);
    LIST(blocked_values);
    LIST(allowed_values);
    LIST(patterns);
#undef LIST
    char why[768];
    int rv = redact_rules_new(&rc->rules, &c, why, sizeof(why));
    if (rv != O2D_OK) {
        snprintf(err, errlen, "%s: processors.redaction.%s", cfg->source, why);
    }
    return rv;
}

static void redaction_cleanup(struct o2d_config *cfg)
{
    redact_rules_free(cfg->redaction.rules);
    cfg->redaction.rules = NULL;
}

static int redaction_apply(const struct o2d_config *cfg, struct otlp_request *req)
{
    return cfg->redaction.rules != NULL ? redact_request(cfg->redaction.rules, req) : O2D_OK;
}

static void describe_line(void *ctx, const char *s)
{
    fprintf(ctx, "#     %s\n", s);
}

static void redaction_describe(const struct o2d_config *cfg, FILE *out)
{
    if (cfg->redaction.rules != NULL) {
        redact_rules_describe(cfg->redaction.rules, describe_line, out);
    }
}

/* ---- the samplers (config_sampling.c): applied by the exporters, after the stats ---- */

/* o2d_config_prepare built both samplers from their sections; each runs only when a
 * pipeline lists it (or, without service.pipelines, when configured). */
static int apm_sampler_prepare(struct o2d_config *cfg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    cfg->sampling.apm.enabled = o2d_processor_listed(cfg, O2D_PROCESSOR_PROBABILISTIC_SAMPLER);
    return O2D_OK;
}

static void apm_sampler_describe(const struct o2d_config *cfg, FILE *out)
{
    o2d_sampling_describe_apm(&cfg->sampling, out);
}

static int llmobs_sampler_prepare(struct o2d_config *cfg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    cfg->sampling.llmobs.enabled = o2d_processor_listed(cfg, O2D_PROCESSOR_LLMOBS_SAMPLER);
    return O2D_OK;
}

static void llmobs_sampler_describe(const struct o2d_config *cfg, FILE *out)
{
    o2d_sampling_describe_llmobs(&cfg->sampling, out);
}

#define SIG(s) (1u << (s))

/* clang-format off */
const struct o2d_processor_type o2d_processor_types[O2D_PROCESSOR_COUNT] = {
    [O2D_PROCESSOR_REDACTION] = {
        .name = "redaction",
        .signals = SIG(OTLP_SIGNAL_TRACES) | SIG(OTLP_SIGNAL_LOGS) | SIG(OTLP_SIGNAL_METRICS),
        .present_off = offsetof(struct o2d_config, redaction.section),
        .prepare = redaction_prepare,
        .cleanup = redaction_cleanup,
        .apply = redaction_apply,
        .describe = redaction_describe,
    },
    [O2D_PROCESSOR_PROBABILISTIC_SAMPLER] = {
        .name = "probabilistic_sampler",
        .signals = SIG(OTLP_SIGNAL_TRACES),
        .present_off = offsetof(struct o2d_config, sampling.apm_section),
        .prepare = apm_sampler_prepare,
        .describe = apm_sampler_describe,
    },
    [O2D_PROCESSOR_LLMOBS_SAMPLER] = {
        .name = "llmobs_sampler",
        .signals = SIG(OTLP_SIGNAL_TRACES),
        .present_off = offsetof(struct o2d_config, sampling.llmobs_section),
        .prepare = llmobs_sampler_prepare,
        .describe = llmobs_sampler_describe,
    },
};
/* clang-format on */

int o2d_processor_configured(const struct o2d_config *cfg, enum o2d_processor id)
{
    int v;
    memcpy(&v, (const char *)cfg + o2d_processor_types[id].present_off, sizeof(v));
    return v != 0;
}

int o2d_processor_listed(const struct o2d_config *cfg, enum o2d_processor id)
{
    for (int s = 0; s < O2D_SIGNALS; s++) {
        for (size_t i = 0; i < cfg->processors[s].n; i++) {
            if (cfg->processors[s].ids[i] == id) {
                return 1;
            }
        }
    }
    return 0;
}

int o2d_processors_apply(const struct o2d_config *cfg, struct otlp_request *req)
{
    const struct o2d_processor_list *l = &cfg->processors[req->signal];
    for (size_t i = 0; i < l->n; i++) {
        const struct o2d_processor_type *t = &o2d_processor_types[l->ids[i]];
        if (t->apply != NULL) {
            int rv = t->apply(cfg, req);
            if (rv != O2D_OK) {
                return rv;
            }
        }
    }
    return O2D_OK;
}

/* ---- service.pipelines ---- */

static int signal_of(const char *id, size_t len)
{
    static const char *const names[O2D_SIGNALS] = {"traces", "logs", "metrics"};
    for (int s = 0; s < O2D_SIGNALS; s++) {
        if (strlen(names[s]) == len && memcmp(id, names[s], len) == 0) {
            return s;
        }
    }
    return -1;
}

static int type_of(const char *name, size_t len)
{
    for (int i = 0; i < O2D_PROCESSOR_COUNT; i++) {
        if (strlen(o2d_processor_types[i].name) == len &&
            memcmp(name, o2d_processor_types[i].name, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* One pipeline's processors list into `l`. */
static int read_list(struct loader *ld, const char *pipeline, const struct node *seq,
                     struct o2d_processor_list *l)
{
    char a[SHOW_MAX + 4];
    l->n = 0;
    if (seq == NULL || seq->kind != NODE_SEQ) {
        return O2D_OK; /* absent or null: none (the walk checked the shape) */
    }
    for (const struct node *e = seq->child; e != NULL; e = e->next) {
        /* "type/name": we run one instance per type, named or not */
        const char *slash = memchr(e->text, '/', e->len);
        size_t tlen = slash != NULL ? (size_t)(slash - e->text) : e->len;
        int id = type_of(e->text, tlen);
        if (id < 0) {
            char known[256] = "";
            for (int i = 0; i < O2D_PROCESSOR_COUNT; i++) {
                size_t used = strlen(known);
                snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
                         o2d_processor_types[i].name);
            }
            return config_fail(&ld->err, e->line,
                               "service.pipelines.%s.processors: unknown processor '%s' "
                               "(otel2dd has: %s)",
                               pipeline, config_show(a, e->text, e->len), known);
        }
        if (slash != NULL) {
            return config_fail(&ld->err, e->line,
                               "service.pipelines.%s.processors: '%s': otel2dd runs one %s "
                               "processor, configured as processors.%s (no /name)",
                               pipeline, config_show(a, e->text, e->len),
                               o2d_processor_types[id].name, o2d_processor_types[id].name);
        }
        if (!o2d_processor_configured(&ld->cfg, (enum o2d_processor)id)) {
            return config_fail(&ld->err, e->line,
                               "service.pipelines.%s.processors: '%s' is not configured: add "
                               "a processors.%s section",
                               pipeline, o2d_processor_types[id].name,
                               o2d_processor_types[id].name);
        }
        for (size_t i = 0; i < l->n; i++) {
            if (l->ids[i] == (enum o2d_processor)id) {
                return config_fail(&ld->err, e->line,
                                   "service.pipelines.%s.processors: '%s' is listed twice",
                                   pipeline, o2d_processor_types[id].name);
            }
        }
        l->ids[l->n++] = (enum o2d_processor)id;
    }
    return O2D_OK;
}

static int same_list(const struct o2d_processor_list *a, const struct o2d_processor_list *b)
{
    return a->n == b->n && memcmp(a->ids, b->ids, a->n * sizeof(a->ids[0])) == 0;
}

int config_processors_resolve(struct loader *ld)
{
    struct o2d_config *cfg = &ld->cfg;
    const struct node *pl = config_yaml_find(ld->root, "service.pipelines");
    int seen[O2D_SIGNALS] = {0};
    memset(cfg->processors, 0, sizeof(cfg->processors));
    cfg->pipelines_given = pl != NULL && pl->kind == NODE_MAP && pl->child != NULL;
    if (!cfg->pipelines_given) {
        for (int s = 0; s < O2D_SIGNALS; s++) {
            for (int id = 0; id < O2D_PROCESSOR_COUNT; id++) {
                if ((o2d_processor_types[id].signals & SIG((unsigned)s)) &&
                    o2d_processor_configured(cfg, (enum o2d_processor)id)) {
                    cfg->processors[s].ids[cfg->processors[s].n++] = (enum o2d_processor)id;
                }
            }
        }
        return O2D_OK;
    }
    char a[SHOW_MAX + 4];
    for (const struct node *k = pl->child; k != NULL && k->next != NULL; k = k->next->next) {
        const char *slash = memchr(k->text, '/', k->len);
        size_t tlen = slash != NULL ? (size_t)(slash - k->text) : k->len;
        int s = signal_of(k->text, tlen);
        if (s < 0) {
            return config_fail(&ld->err, k->line,
                               "service.pipelines: '%s' is not a pipeline of traces, logs or "
                               "metrics (type or type/name)",
                               config_show(a, k->text, k->len));
        }
        const struct node *v = k->next;
        const struct node *procs = NULL;
        if (v->kind == NODE_MAP) {
            for (const struct node *f = v->child; f != NULL && f->next != NULL; f = f->next->next) {
                if (strcmp(f->text, "processors") == 0) {
                    procs = f->next;
                }
            }
        }
        struct o2d_processor_list l;
        int rv = read_list(ld, config_show(a, k->text, k->len), procs, &l);
        if (rv != O2D_OK) {
            return rv;
        }
        for (size_t i = 0; i < l.n; i++) {
            if (!(o2d_processor_types[l.ids[i]].signals & SIG((unsigned)s))) {
                return config_fail(
                    &ld->err, k->line, "service.pipelines.%s: %s does not apply to %s",
                    config_show(a, k->text, k->len), o2d_processor_types[l.ids[i]].name, k->text);
            }
        }
        /* One pipeline per signal runs here: two of one signal must agree. */
        if (seen[s] && !same_list(&cfg->processors[s], &l)) {
            return config_fail(&ld->err, k->line,
                               "service.pipelines.%s: otel2dd runs one pipeline per signal, "
                               "and another %.*s pipeline lists other processors",
                               config_show(a, k->text, k->len), (int)tlen, k->text);
        }
        seen[s] = 1;
        cfg->processors[s] = l;
    }
    return O2D_OK;
}

int config_processors_prepare(struct o2d_config *cfg, char *err, size_t errlen)
{
    for (int id = 0; id < O2D_PROCESSOR_COUNT; id++) {
        const struct o2d_processor_type *t = &o2d_processor_types[id];
        /* Compiled when configured, listed or not: validate shows what a listing would run,
         * and a bad pattern is an error either way. */
        if (o2d_processor_configured(cfg, (enum o2d_processor)id) && t->prepare != NULL) {
            int rv = t->prepare(cfg, err, errlen);
            if (rv != O2D_OK) {
                return rv;
            }
        }
    }
    return O2D_OK;
}

void config_processors_cleanup(struct o2d_config *cfg)
{
    for (int id = 0; id < O2D_PROCESSOR_COUNT; id++) {
        if (o2d_processor_types[id].cleanup != NULL) {
            o2d_processor_types[id].cleanup(cfg);
        }
    }
}
