/*
 * redact_otlp.c: the redaction walk over one decoded OTLP request, in place. Attribute maps
 * (resource, scope, span, span event, span link, log record, metric data point) get the key
 * rules and the value patterns in the Collector's order (processor.go processAttrs); a log
 * body gets them as the Collector's processLogBody does (a map's keys too). Beyond the
 * Collector: string leaves inside array and map values are redacted too, message keys
 * (redact_json.c) are read as JSON of messages, and the attributes of gen_ai.* span events
 * and the bodies of gen_ai.* log events are message contents.
 *
 * Removing an attribute compacts the pointer array in place; new strings and the summary
 * attributes come from the request's arena (protobuf-c's free is a no-op there).
 */
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "o2d_arena.h"
#include "redact_int.h"

typedef Opentelemetry__Proto__Common__V1__KeyValueList OtlpKvList;
typedef Opentelemetry__Proto__Common__V1__ArrayValue OtlpArray;

#define STR  OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define ARR  OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE
#define KVL  OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE
#define IVAL OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE

/* What one attribute map's pass did, for the summary attributes. */
struct tally {
    const char **redacted; /* keys removed (arena) */
    size_t n_redacted;
    const char **masked; /* keys whose value changed */
    size_t n_masked;
    const char **allowed; /* keys whose value allowed_values let through */
    size_t n_allowed;
    size_t n_ignored;
};

enum {
    CTX_GENAI_EVENT = 1, /* a gen_ai.* event: its content keys are messages */
    CTX_BODY = 2,        /* a log body's map: key rules apply as to attributes */
};

static int in_list(const char (*list)[256], size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The processor's own summary attributes pass the allow list (Collector makeAllowList), so
 * that a second pass, or a second collector, keeps them. */
static int is_summary_key(const char *key)
{
    static const char *const names[] = {
        "redaction.redacted.keys",       "redaction.redacted.count",
        "redaction.masked.keys",         "redaction.masked.count",
        "redaction.allowed.keys",        "redaction.allowed.count",
        "redaction.ignored.count",       "redaction.body.redacted.keys",
        "redaction.body.redacted.count", "redaction.body.masked.keys",
        "redaction.body.masked.count",   "redaction.body.allowed.keys",
        "redaction.body.allowed.count",  "redaction.body.ignored.count",
    };
    if (strncmp(key, "redaction.", 10) != 0) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(key, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int key_blocked(struct redact_run *run, const char *key)
{
    const struct redact_rules *r = run->r;
    for (size_t i = 0; i < r->n_blocked_keys; i++) {
        if (redact_re_matches(run, r->blocked_keys[i], key, strlen(key))) {
            return 1;
        }
    }
    return 0;
}

static int value_allowed(struct redact_run *run, const char *s, size_t len)
{
    const struct redact_rules *r = run->r;
    for (size_t i = 0; i < r->n_allowed_values; i++) {
        if (redact_re_matches(run, r->allowed_values[i], s, len)) {
            return 1;
        }
    }
    return 0;
}

static int is_message_key_in(const char *key, int ctx)
{
    if (redact_is_message_key(key)) {
        return 1;
    }
    /* OTel GenAI <= 1.36 events: gen_ai.user.message {content}, gen_ai.choice {message},
     * tool_calls with their arguments */
    return (ctx & CTX_GENAI_EVENT) &&
           (strcmp(key, "content") == 0 || strcmp(key, "message") == 0 ||
            strcmp(key, "tool_calls") == 0 || strcmp(key, "arguments") == 0);
}

static int note(struct redact_run *run, const char ***list, size_t *n, size_t cap, const char *key)
{
    if (*list == NULL) {
        *list = o2d_arena_alloc(run->a, cap * sizeof(**list));
        if (*list == NULL) {
            return O2D_ERR_NOMEM;
        }
    }
    (*list)[(*n)++] = key;
    return O2D_OK;
}

static int walk_any(struct redact_run *run, OtlpAnyValue *v, int depth, int drop, int ctx,
                    int *changed);

/* A string value under `key`: message contents, or the value patterns. */
static int redact_string(struct redact_run *run, OtlpAnyValue *v, int message, int drop,
                         int *changed)
{
    const char *out;
    int c = 0;
    size_t len = strlen(v->string_value);
    int rv;
    if (drop && run->r->drop_message_contents) {
        if (len == 0) {
            return O2D_OK;
        }
        out = REDACT_CONTENT_MARK;
        c = 1;
        redact_count(run->r, REDACT_MAX_PATTERNS + REDACT_CTR_CONTENTS, 1);
        rv = O2D_OK;
    } else if (message) {
        rv = redact_message(run, v->string_value, len, &out, &c);
    } else {
        rv = redact_patterns(run, v->string_value, len, &out, &c);
    }
    if (rv == O2D_OK && c) {
        v->string_value = (char *)out;
        *changed = 1;
    }
    return rv;
}

/* Masks a blocked key's whole value: it becomes a string, as the Collector's SetStr. */
static int mask_value(struct redact_run *run, OtlpAnyValue *v)
{
    const char *s = v->value_case == STR ? v->string_value : "";
    const char *out;
    int rv = redact_mask_whole(run, s, strlen(s), &out);
    if (rv == O2D_OK) {
        v->value_case = STR;
        v->string_value = (char *)out;
        redact_count(run->r, REDACT_MAX_PATTERNS + REDACT_CTR_KEYS_MASKED, 1);
    }
    return rv;
}

/*
 * One attribute map (or a body's map with CTX_BODY): ignored keys pass, keys not allowed are
 * removed, allowed values pass, blocked keys are masked, other values redacted.
 */
static int process_map(struct redact_run *run, OtlpKeyValue **kvs, size_t *n, int ctx, int depth,
                       int drop, struct tally *t)
{
    const struct redact_rules *r = run->r;
    size_t keep = 0;
    int rv = O2D_OK;
    for (size_t i = 0; i < *n; i++) {
        OtlpKeyValue *kv = kvs[i];
        const char *key = kv->key != NULL ? kv->key : "";
        OtlpAnyValue *v = kv->value;
        if (in_list(r->ignored_keys, r->n_ignored_keys, key)) {
            t->n_ignored++;
            kvs[keep++] = kv;
            continue;
        }
        if (!r->allow_all_keys && !in_list(r->allowed_keys, r->n_allowed_keys, key) &&
            !is_summary_key(key)) {
            if ((rv = note(run, &t->redacted, &t->n_redacted, *n, key)) != O2D_OK) {
                return rv;
            }
            redact_count(r, REDACT_MAX_PATTERNS + REDACT_CTR_KEYS_REMOVED, 1);
            continue;
        }
        kvs[keep++] = kv;
        if (v == NULL) {
            continue;
        }
        if (v->value_case == STR && r->n_allowed_values > 0 &&
            value_allowed(run, v->string_value, strlen(v->string_value))) {
            if ((rv = note(run, &t->allowed, &t->n_allowed, *n, key)) != O2D_OK) {
                return rv;
            }
            continue;
        }
        int changed = 0;
        if (r->n_blocked_keys > 0 && key_blocked(run, key)) {
            rv = mask_value(run, v);
            changed = 1;
        } else {
            int message = is_message_key_in(key, ctx);
            int child_drop = (drop || message) && !redact_is_structural_key(key);
            if (v->value_case == STR) {
                rv = redact_string(run, v, message, child_drop && drop, &changed);
            } else {
                rv = walk_any(run, v, depth + 1, child_drop, ctx, &changed);
            }
        }
        if (rv != O2D_OK) {
            return rv;
        }
        if (changed && (rv = note(run, &t->masked, &t->n_masked, *n, key)) != O2D_OK) {
            return rv;
        }
    }
    *n = keep;
    return O2D_OK;
}

/* Inside a value: arrays and maps down to their strings. `drop`: message contents. */
static int walk_any(struct redact_run *run, OtlpAnyValue *v, int depth, int drop, int ctx,
                    int *changed)
{
    if (v == NULL || depth > OTLP_MAX_ANYVALUE_DEPTH + 2) {
        return O2D_OK;
    }
    switch (v->value_case) {
    case STR:
        return redact_string(run, v, 0, drop, changed);
    case ARR: {
        OtlpArray *a = v->array_value;
        for (size_t i = 0; a != NULL && i < a->n_values; i++) {
            int rv = walk_any(run, a->values[i], depth + 1, drop, ctx, changed);
            if (rv != O2D_OK) {
                return rv;
            }
        }
        return O2D_OK;
    }
    case KVL: {
        OtlpKvList *l = v->kvlist_value;
        if (l == NULL) {
            return O2D_OK;
        }
        if (ctx & CTX_BODY) {
            struct tally t = {0};
            size_t before = l->n_values;
            int rv = process_map(run, l->values, &l->n_values, ctx, depth, drop, &t);
            if (t.n_masked > 0 || l->n_values != before) {
                *changed = 1;
            }
            return rv;
        }
        for (size_t i = 0; i < l->n_values; i++) {
            OtlpKeyValue *kv = l->values[i];
            int d = drop && !(kv->key != NULL && redact_is_structural_key(kv->key));
            int rv = walk_any(run, kv->value, depth + 1, d, ctx, changed);
            if (rv != O2D_OK) {
                return rv;
            }
        }
        return O2D_OK;
    }
    default:
        return O2D_OK;
    }
}

/* ---- summary attributes (the Collector's addMetaAttrs) ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static OtlpKeyValue *new_kv(struct o2d_arena *a, const char *key)
{
    OtlpKeyValue *kv = o2d_arena_alloc(a, sizeof(*kv));
    OtlpAnyValue *v = o2d_arena_alloc(a, sizeof(*v));
    if (kv == NULL || v == NULL) {
        return NULL;
    }
    OtlpKeyValue kvi = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    OtlpAnyValue vi = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    *kv = kvi;
    *v = vi;
    kv->key = (char *)key;
    kv->value = v;
    return kv;
}

static int add_int(struct o2d_arena *a, OtlpKeyValue **out, size_t *n, const char *key, int64_t val)
{
    OtlpKeyValue *kv = new_kv(a, key);
    if (kv == NULL) {
        return O2D_ERR_NOMEM;
    }
    kv->value->value_case = IVAL;
    kv->value->int_value = val;
    out[(*n)++] = kv;
    return O2D_OK;
}

static int add_keys(struct o2d_arena *a, OtlpKeyValue **out, size_t *n, const char *key,
                    const char **keys, size_t nk)
{
    qsort(keys, nk, sizeof(*keys), cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < nk; i++) {
        len += strlen(keys[i]) + 1;
    }
    char *s = o2d_arena_alloc(a, len);
    OtlpKeyValue *kv = new_kv(a, key);
    if (s == NULL || kv == NULL) {
        return O2D_ERR_NOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < nk; i++) {
        size_t k = strlen(keys[i]);
        if (i > 0) {
            s[at++] = ',';
        }
        memcpy(s + at, keys[i], k);
        at += k;
    }
    s[at] = '\0';
    kv->value->value_case = STR;
    kv->value->string_value = s;
    out[(*n)++] = kv;
    return O2D_OK;
}

/* Appends redaction.[body.]{redacted,masked,allowed}.{keys,count} and ignored.count. */
static int add_summary(struct redact_run *run, OtlpKeyValue ***kvs, size_t *n,
                       const struct tally *t, int body)
{
    const struct redact_rules *r = run->r;
    if (r->summary == REDACT_SUMMARY_SILENT ||
        (t->n_redacted == 0 && t->n_masked == 0 && t->n_allowed == 0 && t->n_ignored == 0)) {
        return O2D_OK;
    }
    OtlpKeyValue **grown = o2d_arena_alloc(run->a, (*n + 7) * sizeof(*grown));
    if (grown == NULL) {
        return O2D_ERR_NOMEM;
    }
    if (*n > 0) {
        memcpy(grown, *kvs, *n * sizeof(*grown));
    }
    int dbg = r->summary == REDACT_SUMMARY_DEBUG;
    int rv = O2D_OK;
    struct {
        const char *keys_name, *count_name;
        const char **keys;
        size_t nk;
    } parts[3] = {
        {body ? "redaction.body.redacted.keys" : "redaction.redacted.keys",
         body ? "redaction.body.redacted.count" : "redaction.redacted.count", t->redacted,
         t->n_redacted},
        {body ? "redaction.body.masked.keys" : "redaction.masked.keys",
         body ? "redaction.body.masked.count" : "redaction.masked.count", t->masked, t->n_masked},
        {body ? "redaction.body.allowed.keys" : "redaction.allowed.keys",
         body ? "redaction.body.allowed.count" : "redaction.allowed.count", t->allowed,
         t->n_allowed},
    };
    for (int i = 0; i < 3 && rv == O2D_OK; i++) {
        if (parts[i].nk == 0) {
            continue;
        }
        if (dbg) {
            rv = add_keys(run->a, grown, n, parts[i].keys_name, parts[i].keys, parts[i].nk);
        }
        if (rv == O2D_OK) {
            rv = add_int(run->a, grown, n, parts[i].count_name, (int64_t)parts[i].nk);
        }
    }
    if (rv == O2D_OK && t->n_ignored > 0) {
        rv = add_int(run->a, grown, n,
                     body ? "redaction.body.ignored.count" : "redaction.ignored.count",
                     (int64_t)t->n_ignored);
    }
    *kvs = grown;
    return rv;
}

static int attrs(struct redact_run *run, OtlpKeyValue ***kvs, size_t *n, int ctx)
{
    struct tally t = {0};
    int rv = process_map(run, *kvs, n, ctx, 0, 0, &t);
    return rv == O2D_OK ? add_summary(run, kvs, n, &t, 0) : rv;
}

/* ---- per signal ---- */

static int is_genai_name(const char *name)
{
    return name != NULL && strncmp(name, "gen_ai.", 7) == 0;
}

static int traces(struct redact_run *run, OtlpTraceReq *req)
{
    int rv = O2D_OK;
    for (size_t i = 0; rv == O2D_OK && i < req->n_resource_spans; i++) {
        OtlpResourceSpans *rs = req->resource_spans[i];
        if (rs->resource != NULL) {
            rv = attrs(run, &rs->resource->attributes, &rs->resource->n_attributes, 0);
        }
        for (size_t j = 0; rv == O2D_OK && j < rs->n_scope_spans; j++) {
            OtlpScopeSpans *ss = rs->scope_spans[j];
            if (ss->scope != NULL) {
                rv = attrs(run, &ss->scope->attributes, &ss->scope->n_attributes, 0);
            }
            for (size_t k = 0; rv == O2D_OK && k < ss->n_spans; k++) {
                OtlpSpan *sp = ss->spans[k];
                rv = attrs(run, &sp->attributes, &sp->n_attributes, 0);
                for (size_t e = 0; rv == O2D_OK && e < sp->n_events; e++) {
                    Opentelemetry__Proto__Trace__V1__Span__Event *ev = sp->events[e];
                    rv = attrs(run, &ev->attributes, &ev->n_attributes,
                               is_genai_name(ev->name) ? CTX_GENAI_EVENT : 0);
                }
                for (size_t l = 0; rv == O2D_OK && l < sp->n_links; l++) {
                    Opentelemetry__Proto__Trace__V1__Span__Link *ln = sp->links[l];
                    rv = attrs(run, &ln->attributes, &ln->n_attributes, 0);
                }
            }
        }
    }
    return rv;
}

/* A log record is a gen_ai event when its event_name (or its event.name attribute) says so. */
static int log_is_genai(const OtlpLogRecord *lr)
{
    if (is_genai_name(lr->event_name)) {
        return 1;
    }
    for (size_t i = 0; i < lr->n_attributes; i++) {
        const OtlpKeyValue *kv = lr->attributes[i];
        if (kv->key != NULL && strcmp(kv->key, "event.name") == 0 && kv->value != NULL &&
            kv->value->value_case == STR && is_genai_name(kv->value->string_value)) {
            return 1;
        }
    }
    return 0;
}

static int log_body(struct redact_run *run, OtlpLogRecord *lr, int genai)
{
    OtlpAnyValue *b = lr->body;
    if (b == NULL) {
        return O2D_OK;
    }
    struct tally t = {0};
    int changed = 0;
    int rv;
    int drop = genai && run->r->drop_message_contents;
    if (b->value_case == STR) {
        rv = redact_string(run, b, genai, 0, &changed);
    } else if (b->value_case == KVL && b->kvlist_value != NULL) {
        OtlpKvList *l = b->kvlist_value;
        rv = process_map(run, l->values, &l->n_values, CTX_BODY | (genai ? CTX_GENAI_EVENT : 0), 0,
                         drop, &t);
    } else {
        rv = walk_any(run, b, 0, drop, CTX_BODY | (genai ? CTX_GENAI_EVENT : 0), &changed);
    }
    if (rv == O2D_OK && changed && (rv = note(run, &t.masked, &t.n_masked, 1, "body")) != O2D_OK) {
        return rv;
    }
    return rv == O2D_OK ? add_summary(run, &lr->attributes, &lr->n_attributes, &t, 1) : rv;
}

static int logs(struct redact_run *run, OtlpLogsReq *req)
{
    int rv = O2D_OK;
    for (size_t i = 0; rv == O2D_OK && i < req->n_resource_logs; i++) {
        OtlpResourceLogs *rl = req->resource_logs[i];
        if (rl->resource != NULL) {
            rv = attrs(run, &rl->resource->attributes, &rl->resource->n_attributes, 0);
        }
        for (size_t j = 0; rv == O2D_OK && j < rl->n_scope_logs; j++) {
            OtlpScopeLogs *sl = rl->scope_logs[j];
            if (sl->scope != NULL) {
                rv = attrs(run, &sl->scope->attributes, &sl->scope->n_attributes, 0);
            }
            for (size_t k = 0; rv == O2D_OK && k < sl->n_log_records; k++) {
                OtlpLogRecord *lr = sl->log_records[k];
                int genai = log_is_genai(lr);
                rv = attrs(run, &lr->attributes, &lr->n_attributes, genai ? CTX_GENAI_EVENT : 0);
                if (rv == O2D_OK) {
                    rv = log_body(run, lr, genai);
                }
            }
        }
    }
    return rv;
}

#define POINTS(kind, field)                                                                        \
    for (size_t p = 0; rv == O2D_OK && m->field != NULL && p < m->field->n_data_points; p++) {     \
        rv = attrs(run, &m->field->data_points[p]->attributes,                                     \
                   &m->field->data_points[p]->n_attributes, 0);                                    \
    }

static int metrics(struct redact_run *run, OtlpMetricsReq *req)
{
    int rv = O2D_OK;
    for (size_t i = 0; rv == O2D_OK && i < req->n_resource_metrics; i++) {
        OtlpResourceMetrics *rm = req->resource_metrics[i];
        if (rm->resource != NULL) {
            rv = attrs(run, &rm->resource->attributes, &rm->resource->n_attributes, 0);
        }
        for (size_t j = 0; rv == O2D_OK && j < rm->n_scope_metrics; j++) {
            OtlpScopeMetrics *sm = rm->scope_metrics[j];
            if (sm->scope != NULL) {
                rv = attrs(run, &sm->scope->attributes, &sm->scope->n_attributes, 0);
            }
            for (size_t k = 0; rv == O2D_OK && k < sm->n_metrics; k++) {
                OtlpMetric *m = sm->metrics[k];
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    POINTS(gauge, gauge);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    POINTS(sum, sum);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    POINTS(histogram, histogram);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    POINTS(exponential_histogram, exponential_histogram);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    POINTS(summary, summary);
                    break;
                default:
                    break;
                }
            }
        }
    }
    return rv;
}

int redact_request(const struct redact_rules *r, struct otlp_request *req)
{
    if (req->arena == NULL) {
        return O2D_ERR_INTERNAL;
    }
    struct redact_run run;
    int rv = redact_run_init(&run, r, req->arena);
    if (rv != O2D_OK) {
        return rv;
    }
    switch (req->signal) {
    case OTLP_SIGNAL_TRACES:
        rv = req->msg.traces != NULL ? traces(&run, req->msg.traces) : O2D_OK;
        break;
    case OTLP_SIGNAL_LOGS:
        rv = req->msg.logs != NULL ? logs(&run, req->msg.logs) : O2D_OK;
        break;
    case OTLP_SIGNAL_METRICS:
        rv = req->msg.metrics != NULL ? metrics(&run, req->msg.metrics) : O2D_OK;
        break;
    }
    redact_run_cleanup(&run);
    return rv;
}

int redact_text(const struct redact_rules *r, struct o2d_arena *a, const char *key, const char *s,
                const char **out)
{
    struct redact_run run;
    int rv = redact_run_init(&run, r, a);
    if (rv != O2D_OK) {
        return rv;
    }
    int changed = 0;
    *out = s;
    if (key != NULL && redact_is_message_key(key)) {
        rv = redact_message(&run, s, strlen(s), out, &changed);
    } else {
        rv = redact_patterns(&run, s, strlen(s), out, &changed);
    }
    redact_run_cleanup(&run);
    return rv;
}
