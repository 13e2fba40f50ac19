/*
 * preview_attrs.c: the per-attribute table of the span page: for every attribute of the
 * span, its resource and its scope, what the APM translation did with it, as its recorder
 * told it (translate/apm/apm.h, struct apm_recorder: copied as tag or metric, read for a
 * field, shadowed by a source before it, reserved), checked against the finished APM span
 * (a value that differs was truncated or normalized; a tag that is gone was removed by the
 * normalizer), and where its value shows in the LLM Obs event (found by walking the event
 * JSON: the LLM Obs translator keeps no side channel, so the table says "value found at").
 * Defaults that filled a field with no attribute (DD_SERVICE, DD_ENV, DD_TAGS, the agent's
 * own default service) get rows of their own.
 */
#include <jansson.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "preview_view.h"

static void on_note(void *ctx, uint64_t span_id, enum apm_rec_source src, const char *attr,
                    enum apm_rec_what what, const char *target, const char *detail)
{
    struct pv_attr_table *t = ctx;
    if (span_id != t->span_id) {
        return;
    }
    if (t->notes == NULL || t->n >= PV_ATTR_NOTES_MAX) {
        t->dropped++;
        return;
    }
    struct pv_attr_note *n = &t->notes[t->n++];
    n->src = src;
    n->what = what;
    n->detail = detail;
    snprintf(n->attr, sizeof(n->attr), "%s", attr != NULL ? attr : "");
    snprintf(n->target, sizeof(n->target), "%s", target != NULL ? target : "");
}

void pv_attr_table_init(struct pv_attr_table *t)
{
    memset(t, 0, sizeof(*t));
    t->notes = o2d_calloc(PV_ATTR_NOTES_MAX, sizeof(*t->notes));
    t->rec.note = on_note;
    t->rec.ctx = t;
}

void pv_attr_table_cleanup(struct pv_attr_table *t)
{
    o2d_free(t->notes);
    t->notes = NULL;
}

const struct apm_recorder *pv_attr_recorder(struct pv_attr_table *t, uint64_t span_id)
{
    t->span_id = span_id;
    return &t->rec;
}

static const char *const what_names[] = {
    [APM_REC_TAG] = "tag",
    [APM_REC_METRIC] = "metric",
    [APM_REC_FIELD] = "field",
    [APM_REC_SHADOWED] = "not copied",
    [APM_REC_RESERVED] = "reserved",
    [APM_REC_DEFAULT] = "default",
    [APM_REC_OBFUSCATED] = "obfuscated",
};
static const char *const src_names[] = {
    [APM_REC_SPAN] = "span",
    [APM_REC_RESOURCE] = "resource",
    [APM_REC_SCOPE] = "scope",
    [APM_REC_CONFIG] = "config",
};

static const char *meta_of(const DdSpan *dd, const char *k)
{
    for (size_t i = 0; dd != NULL && i < dd->n_meta; i++) {
        if (strcmp(dd->meta[i]->key, k) == 0) {
            return dd->meta[i]->value;
        }
    }
    return NULL;
}

static int metric_of(const DdSpan *dd, const char *k)
{
    for (size_t i = 0; dd != NULL && i < dd->n_metrics; i++) {
        if (strcmp(dd->metrics[i]->key, k) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- the LLM Obs side: where a value shows in the event ---- */

#define PV_PATH_MAX 160

struct finder {
    const OtlpAnyValue *v;
    char found[PV_PATH_MAX];
    int n_found;
};

static int value_matches(const OtlpAnyValue *v, json_t *j)
{
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return json_is_string(j) && v->string_value[0] != '\0' &&
               strcmp(json_string_value(j), v->string_value) == 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return (json_is_integer(j) && json_integer_value(j) == v->int_value) ||
               (json_is_real(j) && json_real_value(j) == (double)v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return json_is_number(j) && json_number_value(j) == v->double_value;
    default:
        return 0;
    }
}

static void find_in(struct finder *f, json_t *j, char *path, size_t len, int depth)
{
    if (f->n_found > 0 || depth > 12) {
        return;
    }
    if (value_matches(f->v, j)) {
        snprintf(f->found, sizeof(f->found), "%s", len > 0 ? path + 1 : "(event)");
        f->n_found++;
        return;
    }
    if (json_is_object(j)) {
        const char *k;
        json_t *c;
        json_object_foreach(j, k, c)
        {
            int w = snprintf(path + len, PV_PATH_MAX - len, ".%s", k);
            if (w > 0 && (size_t)w < PV_PATH_MAX - len) {
                find_in(f, c, path, len + (size_t)w, depth + 1);
            }
            path[len] = '\0';
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *c;
        json_array_foreach(j, i, c)
        {
            int w = snprintf(path + len, PV_PATH_MAX - len, "[%zu]", i);
            if (w > 0 && (size_t)w < PV_PATH_MAX - len) {
                find_in(f, c, path, len + (size_t)w, depth + 1);
            }
            path[len] = '\0';
        }
    }
}

/* "meta.model_name" when kv's value shows in the event, else "" (tags are left out: every
 * resource attribute may show there, which says nothing). */
static void find_llm(json_t *event, const OtlpKeyValue *kv, char out[PV_PATH_MAX])
{
    out[0] = '\0';
    if (event == NULL || kv->value == NULL) {
        return;
    }
    struct finder f = {.v = kv->value};
    char path[PV_PATH_MAX] = "";
    const char *k;
    json_t *c;
    json_object_foreach(event, k, c)
    {
        if (strcmp(k, "tags") == 0 || strcmp(k, "span_id") == 0 || strcmp(k, "trace_id") == 0 ||
            strcmp(k, "parent_id") == 0) {
            continue;
        }
        int w = snprintf(path, sizeof(path), ".%s", k);
        find_in(&f, c, path, (size_t)w, 1);
        if (f.n_found) {
            break;
        }
    }
    if (f.n_found) {
        snprintf(out, PV_PATH_MAX, "%s", f.found);
    }
}

/* ---- rows ---- */

static int jstr(struct o2d_buf *b, const char *s)
{
    return o2d_json_append_string(b, s, strlen(s));
}

/* What the finished span says about a note's target: "" when it is as copied. */
static const char *outcome(const struct pv_attr_note *n, const OtlpKeyValue *kv, const DdSpan *dd)
{
    if (dd == NULL) {
        return "the APM span was dropped (ignore_resources)";
    }
    if (n->what == APM_REC_TAG) {
        const char *m = meta_of(dd, n->target);
        if (m == NULL) {
            return "removed by the normalizer (an invalid value)";
        }
        if (kv != NULL && kv->value != NULL &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            strcmp(m, kv->value->string_value) != 0) {
            size_t ml = strlen(m);
            return ml < strlen(kv->value->string_value) &&
                           strncmp(m, kv->value->string_value, ml) == 0
                       ? "truncated"
                       : "value changed (normalized, obfuscated or made valid UTF-8)";
        }
    } else if (n->what == APM_REC_METRIC && !metric_of(dd, n->target)) {
        return "removed";
    }
    return "";
}

static int row(struct o2d_buf *b, int *first, const char *src, const char *key,
               const OtlpKeyValue *kv, const struct pv_attr_table *t, enum apm_rec_source rsrc,
               const DdSpan *dd, json_t *event)
{
    int rv = o2d_buf_append_str(b, *first ? "{\"source\":" : ",{\"source\":");
    *first = 0;
    rv = rv ? rv : jstr(b, src);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"attribute\":");
    rv = rv ? rv : jstr(b, key);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"apm\":[");
    int k = 0;
    for (size_t i = 0; i < t->n && rv == O2D_OK; i++) {
        const struct pv_attr_note *n = &t->notes[i];
        if (n->src != rsrc || strcmp(n->attr, key) != 0) {
            continue;
        }
        rv = o2d_buf_append_str(b, k++ ? ",{\"what\":" : "{\"what\":");
        rv = rv ? rv : jstr(b, what_names[n->what]);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"target\":");
        rv = rv ? rv : jstr(b, n->target);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"detail\":");
        rv = rv ? rv : jstr(b, n->detail != NULL ? n->detail : "");
        rv = rv ? rv : o2d_buf_append_str(b, ",\"outcome\":");
        rv = rv ? rv : jstr(b, outcome(n, kv, dd));
        rv = rv ? rv : o2d_buf_append_str(b, "}");
    }
    if (rv == O2D_OK && k == 0 && rsrc == APM_REC_SPAN && dd != NULL && kv != NULL &&
        kv->value != NULL &&
        kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        /* read by the name rules (operation, resource) rather than copied */
        rv = o2d_buf_append_str(b, "{\"what\":\"not copied\",\"target\":\"\",\"detail\":");
        rv = rv ? rv : jstr(b, "read by the mapping only");
        rv = rv ? rv : o2d_buf_append_str(b, ",\"outcome\":\"\"}");
    }
    char found[PV_PATH_MAX];
    find_llm(event, kv, found);
    rv = rv ? rv : o2d_buf_append_str(b, "],\"llmobs\":");
    rv = rv ? rv : jstr(b, found[0] != '\0' ? found : "");
    if (rv == O2D_OK && dd != NULL && kv != NULL && kv->value != NULL &&
        kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
        kv->value->string_value[0] != '\0') {
        const char *v = kv->value->string_value;
        const char *where = strstr(dd->resource, v) != NULL ? "resource"
                            : strstr(dd->name, v) != NULL   ? "operation name"
                                                            : NULL;
        if (where != NULL && strlen(v) >= 2) {
            rv = o2d_buf_append_str(b, ",\"used_in\":");
            rv = rv ? rv : jstr(b, where);
        }
    }
    return rv ? rv : o2d_buf_append_str(b, "}");
}

int pv_attr_table_json(const struct pv_attr_table *t, const struct pv_vspan *s,
                       const struct o2d_config *cfg, struct o2d_buf *b)
{
    (void)cfg;
    json_t *event = NULL;
    if (s->llm != NULL) {
        /* pv_view_llm_event ran before (the span page writes the event first) */
        struct o2d_buf tmp;
        o2d_buf_init(&tmp, PV_LLMOBS_MAX_EVENT + 4096);
        char tid[33] = "00000000000000000000000000000000";
        if (llmobs_span_write(s->llm, tid, s->llm_parent, PV_LLMOBS_MAX_EVENT, &tmp) == O2D_OK) {
            event = json_loadb((const char *)tmp.data, tmp.len, 0, NULL);
        }
        o2d_buf_cleanup(&tmp);
    }
    int first = 1;
    int rv = o2d_buf_append_str(b, "[");
    for (size_t i = 0; i < s->span->n_attributes && rv == O2D_OK; i++) {
        const OtlpKeyValue *kv = s->span->attributes[i];
        rv = row(b, &first, "span", kv->key, kv, t, APM_REC_SPAN, s->dd, event);
    }
    const OtlpResource *res = s->rs->resource;
    for (size_t i = 0; res != NULL && i < res->n_attributes && rv == O2D_OK; i++) {
        const OtlpKeyValue *kv = res->attributes[i];
        rv = row(b, &first, "resource", kv->key, kv, t, APM_REC_RESOURCE, s->dd, event);
    }
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = s->ss->scope;
    for (size_t i = 0; sc != NULL && i < sc->n_attributes && rv == O2D_OK; i++) {
        const OtlpKeyValue *kv = sc->attributes[i];
        rv = row(b, &first, "scope", kv->key, kv, t, APM_REC_SCOPE, s->dd, event);
    }
    for (size_t i = 0; i < t->n && rv == O2D_OK; i++) {
        const struct pv_attr_note *n = &t->notes[i];
        if (n->src != APM_REC_CONFIG) {
            continue;
        }
        rv = o2d_buf_append_str(b, first ? "{\"source\":" : ",{\"source\":");
        first = 0;
        rv = rv ? rv : jstr(b, src_names[n->src]);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"attribute\":\"\",\"apm\":[{\"what\":");
        rv = rv ? rv : jstr(b, what_names[n->what]);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"target\":");
        rv = rv ? rv : jstr(b, n->target);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"detail\":");
        rv = rv ? rv : jstr(b, n->detail != NULL ? n->detail : "");
        rv = rv ? rv : o2d_buf_append_str(b, ",\"outcome\":\"\"}],\"llmobs\":\"\"}");
    }
    json_decref(event);
    return rv ? rv : o2d_buf_append_str(b, "]");
}
