/*
 * preview_lints.c: the lints page: per service, what in the telemetry held makes Datadog's
 * view worse, with a count and one example span for each:
 *   no_service_name   the resource has no service.name (the span gets DD_SERVICE or the
 *                     agent's "otlpresourcenoservicename")
 *   no_env, no_version  neither the resource nor DD_ENV / DD_VERSION say it
 *   content_not_captured  an llm or embedding span whose event has no input and no output
 *                     (instrumentations ship with message content capture off:
 *                     OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, TRACELOOP_TRACE_CONTENT)
 *   genai_unmatched   gen_ai.* attributes on a span no LLM Obs kind matched (it stays APM-only)
 *   clock_skew        a child that starts before its parent or ends after it (by more than
 *                     1 ms): the two processes' clocks disagree
 *   parent_missing    a parent span id whose span never arrived (trace quiet for 30 s)
 * Only the newest PV_LINT_TRACES traces are read, so the page stays cheap whatever is held.
 */
#include <jansson.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "o2d_time.h"
#include "preview_view.h"

#define PV_LINT_TRACES   200
#define PV_LINT_SERVICES 64
#define PV_SKEW_NS       1000000ull
#define PV_QUIET_MS      30000

enum lint {
    L_NO_SERVICE,
    L_NO_ENV,
    L_NO_VERSION,
    L_CONTENT,
    L_GENAI_UNMATCHED,
    L_SKEW,
    L_PARENT_MISSING,
    L_N
};
static const char *const lint_names[L_N] = {
    "no_service_name", "no_env",     "no_version",     "content_not_captured",
    "genai_unmatched", "clock_skew", "parent_missing",
};

struct lint_row {
    char service[PV_SUMMARY_STR];
    uint64_t spans;
    uint64_t count[L_N];
    uint8_t ex_trace[L_N][16];
    uint64_t ex_span[L_N];
};

static const OtlpKeyValue *attr(OtlpKeyValue *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kv[i]->key, key) == 0) {
            return kv[i];
        }
    }
    return NULL;
}

static const char *res_service(const OtlpResource *r)
{
    const OtlpKeyValue *kv =
        r != NULL ? attr(r->attributes, r->n_attributes, "service.name") : NULL;
    return kv != NULL && kv->value != NULL &&
                   kv->value->value_case ==
                       OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
               ? kv->value->string_value
               : NULL;
}

static struct lint_row *row_for(struct lint_row *rows, size_t *n, const char *svc)
{
    char cut[PV_SUMMARY_STR];
    size_t len = strlen(svc);
    len = len < PV_SUMMARY_STR - 1 ? len : PV_SUMMARY_STR - 1;
    len = o2d_utf8_valid_prefix(svc, len);
    memcpy(cut, svc, len);
    cut[len] = '\0';
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(rows[i].service, cut) == 0) {
            return &rows[i];
        }
    }
    if (*n >= PV_LINT_SERVICES) {
        return &rows[PV_LINT_SERVICES]; /* the overflow row: "(other services)" */
    }
    struct lint_row *r = &rows[(*n)++];
    memset(r, 0, sizeof(*r));
    memcpy(r->service, cut, len + 1);
    return r;
}

static void hit(struct lint_row *r, enum lint l, const uint8_t *tid, uint64_t sid)
{
    if (r->count[l]++ == 0) {
        memcpy(r->ex_trace[l], tid, 16);
        r->ex_span[l] = sid;
    }
}

static int has_genai_attr(const OtlpSpan *s)
{
    for (size_t i = 0; i < s->n_attributes; i++) {
        if (strncmp(s->attributes[i]->key, "gen_ai.", 7) == 0) {
            return 1;
        }
    }
    return 0;
}

/* An llm or embedding event with neither input nor output content. */
static int content_missing(struct preview *pv, struct pv_view *v, struct pv_vspan *s)
{
    if (s->kind != LLMOBS_LLM && s->kind != LLMOBS_EMBEDDING) {
        return 0;
    }
    struct o2d_buf b;
    o2d_buf_init(&b, PV_LLMOBS_MAX_EVENT + 4096);
    int missing = 0;
    if (pv_view_llm_event(pv, v, s, &b) == O2D_OK) {
        json_t *ev = json_loadb((const char *)b.data, b.len, 0, NULL);
        json_t *meta = json_object_get(ev, "meta");
        json_t *in = json_object_get(meta, "input"), *out = json_object_get(meta, "output");
        missing = json_object_size(in) == 0 && json_object_size(out) == 0;
        json_decref(ev);
    }
    o2d_buf_cleanup(&b);
    return missing;
}

static void lint_trace(struct preview *pv, struct pv_view *v, struct lint_row *rows, size_t *n,
                       int64_t now_ms)
{
    const struct o2d_config *c = pv->cfg;
    for (size_t i = 0; i < v->n; i++) {
        struct pv_vspan *s = &v->spans[i];
        const OtlpResource *res = s->rs->resource;
        const char *svc = res_service(res);
        struct lint_row *r = row_for(rows, n, svc != NULL ? svc : "(no service.name)");
        r->spans++;
        OtlpKeyValue *const *ra = res != NULL ? res->attributes : NULL;
        size_t rn = res != NULL ? res->n_attributes : 0;
        if (svc == NULL || svc[0] == '\0') {
            hit(r, L_NO_SERVICE, v->trace_id, s->id);
        }
        if (attr(ra, rn, "deployment.environment.name") == NULL &&
            attr(ra, rn, "deployment.environment") == NULL &&
            (c->datadog.apm.default_env == NULL || c->datadog.apm.default_env[0] == '\0')) {
            hit(r, L_NO_ENV, v->trace_id, s->id);
        }
        if (attr(ra, rn, "service.version") == NULL &&
            (c->datadog.apm.default_version == NULL || c->datadog.apm.default_version[0] == '\0')) {
            hit(r, L_NO_VERSION, v->trace_id, s->id);
        }
        if (s->kind == LLMOBS_NONE && has_genai_attr(s->span)) {
            hit(r, L_GENAI_UNMATCHED, v->trace_id, s->id);
        }
        if (content_missing(pv, v, s)) {
            hit(r, L_CONTENT, v->trace_id, s->id);
        }
        struct pv_vspan *p = pv_view_find(v, s->parent);
        if (p != NULL &&
            (s->span->start_time_unix_nano + PV_SKEW_NS < p->span->start_time_unix_nano ||
             s->span->end_time_unix_nano > p->span->end_time_unix_nano + PV_SKEW_NS)) {
            hit(r, L_SKEW, v->trace_id, s->id);
        }
        if (s->orphan && now_ms - v->copy.summary.last_ms > PV_QUIET_MS) {
            hit(r, L_PARENT_MISSING, v->trace_id, s->id);
        }
    }
}

int pv_lints_json(struct preview *pv, struct o2d_buf *b)
{
    struct pv_trace *list = NULL;
    size_t n_list = 0;
    if (pv_list(pv, &list, &n_list) != O2D_OK) {
        return O2D_ERR_NOMEM;
    }
    struct lint_row *rows = o2d_calloc(PV_LINT_SERVICES + 1, sizeof(*rows));
    if (rows == NULL) {
        o2d_free(list);
        return O2D_ERR_NOMEM;
    }
    snprintf(rows[PV_LINT_SERVICES].service, PV_SUMMARY_STR, "(other services)");
    size_t n_rows = 0;
    int64_t now_ms = o2d_now_ms();
    size_t read = 0;
    for (size_t i = 0; i < n_list && read < PV_LINT_TRACES; i++, read++) {
        struct pv_view v;
        if (pv_view_load(pv, list[i].trace_id, &v, NULL) == O2D_OK) {
            lint_trace(pv, &v, rows, &n_rows, now_ms);
        }
        pv_view_free(&v);
    }
    int rv =
        o2d_buf_printf(b, "{\"traces_read\":%zu,\"traces_held\":%zu,\"services\":[", read, n_list);
    size_t total = n_rows + (rows[PV_LINT_SERVICES].spans > 0 ? 1 : 0);
    for (size_t i = 0; i < total && rv == O2D_OK; i++) {
        const struct lint_row *r = i < n_rows ? &rows[i] : &rows[PV_LINT_SERVICES];
        rv = o2d_buf_append_str(b, i ? ",{\"service\":" : "{\"service\":");
        rv = rv ? rv : o2d_json_append_string(b, r->service, strlen(r->service));
        rv = rv ? rv
                : o2d_buf_printf(b, ",\"spans\":%llu,\"lints\":[", (unsigned long long)r->spans);
        int k = 0;
        for (int l = 0; l < L_N && rv == O2D_OK; l++) {
            if (r->count[l] == 0) {
                continue;
            }
            rv = o2d_buf_printf(b, "%s{\"lint\":\"%s\",\"spans\":%llu,\"trace_id\":\"",
                                k++ ? "," : "", lint_names[l], (unsigned long long)r->count[l]);
            rv = rv ? rv : o2d_hex_append(b, r->ex_trace[l], 16);
            rv = rv ? rv
                    : o2d_buf_printf(b, "\",\"span_id\":\"%016llx\"}",
                                     (unsigned long long)r->ex_span[l]);
        }
        rv = rv ? rv : o2d_buf_append_str(b, "]}");
    }
    rv = rv ? rv : o2d_buf_append_str(b, "]}");
    o2d_free(rows);
    o2d_free(list);
    return rv;
}
