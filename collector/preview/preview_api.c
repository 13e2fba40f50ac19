/*
 * preview_api.c: the preview's JSON APIs. A trace's pieces are copied out of the store, then
 * decoded and translated here, on the preview server's thread, with the exporters' own pure
 * translators and configuration: the APM span is apm_translate()'s for the same request
 * piece (one chunk per trace and resource, as the exporter packs it), and the LLM Obs event
 * is llmobs_span_write()'s, with the parent and LLM Obs trace the trace buffer would give it
 * once the whole trace is there (its nearest LLM Obs ancestor; the trace id derived from the
 * LLM Obs root, llmobs_trace_id()).
 *
 *   GET /api/traces?service=&env=&error=true|false&q=&limit=1..500   newest first
 *   GET /api/traces/<trace id hex32>                                  waterfall
 *   GET /api/traces/<hex32>/spans/<span id hex16>                     three columns
 *   GET /api/traces/<hex32>/spans/<hex16>/apm.json | llmobs.json      what is sent, as is
 *   GET /api/traces/<hex32>/llm                                       the LLM Obs tree
 *   GET /api/status, /api/lints
 *
 * Times and durations in nanoseconds are JSON strings: JavaScript loses precision past 2^53,
 * and a sender's span can last past 2^63 ns, which no JSON integer reader takes. Every string
 * comes from senders and is written with o2d_json_append_string (escaped,
 * UTF-8 repaired); pages put it in the DOM as text. What one answer holds is capped
 * (PV_MAX_*). A parameter the route does not take, or a bad value, is a 400.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apm.h"
#include "llmobs.h"
#include "llmobs_buffer.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_json_out.h"
#include "o2d_time.h"
#include "pb_json.h"
#include "preview_int.h"
#include "preview_view.h"

#define PV_MAX_LIST       500         /* rows of one trace list */
#define PV_MAX_PARAM      256         /* bytes of a filter value */
#define PV_MAX_ANSWER     (64u << 20) /* one answer's JSON */
#define PV_MAX_WATERFALL  5000        /* rows of one waterfall */
#define PV_MAX_LLM_EVENTS 1000        /* events of one LLM view */
#define PV_MAX_HOPS       256         /* parent links followed from one span */

/* ---- helpers ---- */

static int jstr(struct o2d_buf *b, const char *s)
{
    return o2d_json_append_string(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

static int jhex(struct o2d_buf *b, const uint8_t *p, size_t n)
{
    int rv = o2d_buf_append_byte(b, '"');
    rv = rv ? rv : o2d_hex_append(b, p, n);
    return rv ? rv : o2d_buf_append_byte(b, '"');
}

static int jhex64(struct o2d_buf *b, uint64_t v)
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++) {
        be[i] = (uint8_t)(v >> (56 - 8 * i));
    }
    return jhex(b, be, 8);
}

/* Case-insensitive substring: the free-text filter. */
static int contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0) {
        return 1;
    }
    for (const char *p = hay; *p != '\0'; p++) {
        if (strncasecmp(p, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

struct param_check {
    const char *const *allowed;
    int bad;
};

static void check_param(void *arg, const char *name)
{
    struct param_check *pc = arg;
    for (const char *const *a = pc->allowed; a != NULL && *a != NULL; a++) {
        if (strcmp(*a, name) == 0) {
            return;
        }
    }
    pc->bad = 1;
}

/* 1 when every parameter is one of `allowed` (NULL-terminated; NULL: none). */
static int params_ok(const struct preview_query *q, const char *const *allowed)
{
    struct param_check pc = {allowed, 0};
    if (q != NULL && q->each != NULL) {
        q->each(q->ctx, check_param, &pc);
    }
    return !pc.bad;
}

static const char *param(const struct preview_query *q, const char *name)
{
    return q != NULL && q->get != NULL ? q->get(q->ctx, name) : NULL;
}

static unsigned int error_json(struct o2d_buf *b, unsigned int code, const char *msg)
{
    o2d_buf_reset(b);
    if (o2d_buf_append_str(b, "{\"error\":") != O2D_OK || jstr(b, msg) != O2D_OK ||
        o2d_buf_append_str(b, "}") != O2D_OK) {
        return 500;
    }
    return code;
}

/* ---- the trace list ---- */

static unsigned int api_list(struct preview *pv, const struct preview_query *q, struct o2d_buf *b)
{
    static const char *const allowed[] = {"service", "env", "error", "q", "limit", NULL};
    if (!params_ok(q, allowed)) {
        return error_json(b, 400, "unknown query parameter (service, env, error, q, limit)");
    }
    const char *service = param(q, "service"), *env = param(q, "env"), *text = param(q, "q");
    const char *err = param(q, "error"), *lim = param(q, "limit");
    if ((service != NULL && strlen(service) > PV_MAX_PARAM) ||
        (env != NULL && strlen(env) > PV_MAX_PARAM) ||
        (text != NULL && strlen(text) > PV_MAX_PARAM)) {
        return error_json(b, 400, "a filter is longer than 256 bytes");
    }
    int want_error = -1;
    if (err != NULL && err[0] != '\0') {
        if (strcmp(err, "true") == 0) {
            want_error = 1;
        } else if (strcmp(err, "false") == 0) {
            want_error = 0;
        } else {
            return error_json(b, 400, "error must be true or false");
        }
    }
    long limit = 100;
    if (lim != NULL) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (lim[0] == '\0' || *end != '\0' || limit < 1 || limit > PV_MAX_LIST) {
            return error_json(b, 400, "limit must be an integer from 1 to 500");
        }
    }
    struct pv_trace *rows = NULL;
    size_t n = 0;
    if (pv_list(pv, &rows, &n) != O2D_OK) {
        return error_json(b, 500, "out of memory");
    }
    struct preview_stats st;
    preview_stats(pv, &st);
    int rv = o2d_buf_printf(b, "{\"held\":%zu,\"bytes\":%llu,\"max_bytes\":%llu,\"traces\":[", n,
                            (unsigned long long)st.bytes, (unsigned long long)st.max_bytes);
    size_t shown = 0, matched = 0;
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        const struct pv_trace *t = &rows[i];
        if ((service != NULL && service[0] != '\0' && strcmp(service, t->service) != 0) ||
            (env != NULL && env[0] != '\0' && strcmp(env, t->env) != 0) ||
            (want_error >= 0 && t->error != want_error)) {
            continue;
        }
        if (text != NULL && text[0] != '\0' && !contains(t->service, text) &&
            !contains(t->env, text) && !contains(t->root, text)) {
            char hex[33];
            for (int k = 0; k < 16; k++) {
                snprintf(hex + 2 * k, 3, "%02x", t->trace_id[k]);
            }
            if (!contains(hex, text)) {
                continue;
            }
        }
        matched++;
        if (shown >= (size_t)limit) {
            continue;
        }
        rv = o2d_buf_append_str(b, shown++ ? ",{\"trace_id\":" : "{\"trace_id\":");
        rv = rv ? rv : jhex(b, t->trace_id, 16);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"service\":");
        rv = rv ? rv : jstr(b, t->service);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"env\":");
        rv = rv ? rv : jstr(b, t->env);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"root\":");
        rv = rv ? rv : jstr(b, t->root);
        rv = rv ? rv
                : o2d_buf_printf(
                      b,
                      ",\"start_ns\":\"%llu\",\"duration_ns\":\"%llu\",\"spans\":%u,"
                      "\"error\":%s,\"llmobs\":%s,\"has_root\":%s,\"seq\":%llu,"
                      "\"export\":",
                      (unsigned long long)t->start_ns,
                      (unsigned long long)(t->end_ns > t->start_ns ? t->end_ns - t->start_ns : 0),
                      t->spans, t->error ? "true" : "false", t->llm ? "true" : "false",
                      t->has_root ? "true" : "false", (unsigned long long)t->seq);
        rv = rv ? rv : jstr(b, pv_state_word(pv, PV_DEST_TRACES, t->last_origin));
        if (rv == O2D_OK && t->llm) {
            rv = o2d_buf_append_str(b, ",\"llmobs_export\":");
            rv = rv ? rv : jstr(b, pv_llm_trace_word(pv, t->trace_id));
        }
        rv = rv ? rv : o2d_buf_append_str(b, "}");
    }
    rv = rv ? rv : o2d_buf_printf(b, "],\"matched\":%zu}", matched);
    o2d_free(rows);
    return rv == O2D_OK ? 200 : error_json(b, 500, "answer too large");
}

/* ---- one trace, translated ---- */

void pv_view_free(struct pv_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        llmobs_span_free(v->spans[i].llm);
    }
    o2d_free(v->spans);
    o2d_free(v->slots);
    o2d_free(v->logs);
    pv_copy_free(&v->copy);
    o2d_arena_cleanup(&v->arena);
    memset(v, 0, sizeof(*v));
}

static uint64_t id64(const ProtobufCBinaryData *b)
{
    uint64_t v = 0;
    for (size_t i = 0; i < b->len && i < 8; i++) {
        v = v << 8 | b->data[i];
    }
    return b->len == 8 ? v : 0;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    return x ^ (x >> 33);
}

/* The span id -> index table (open addressing, at most half full). */
static int index_spans(struct pv_view *v)
{
    size_t cap = 16;
    while (cap < 2 * v->n) {
        cap *= 2;
    }
    v->slots = o2d_calloc(cap, sizeof(*v->slots));
    if (v->slots == NULL) {
        return O2D_ERR_NOMEM;
    }
    v->cap = cap;
    for (size_t i = 0; i < v->n; i++) {
        if (v->spans[i].id == 0) {
            continue;
        }
        size_t k = mix(v->spans[i].id) & (cap - 1);
        while (v->slots[k] != 0 && v->spans[v->slots[k] - 1].id != v->spans[i].id) {
            k = (k + 1) & (cap - 1);
        }
        if (v->slots[k] == 0) { /* a repeated id keeps its first span */
            v->slots[k] = (uint32_t)i + 1;
        }
    }
    return O2D_OK;
}

struct pv_vspan *pv_view_find(struct pv_view *v, uint64_t id)
{
    if (id == 0 || v->cap == 0) {
        return NULL;
    }
    for (size_t k = mix(id) & (v->cap - 1); v->slots[k] != 0; k = (k + 1) & (v->cap - 1)) {
        if (v->spans[v->slots[k] - 1].id == id) {
            return &v->spans[v->slots[k] - 1];
        }
    }
    return NULL;
}

/* The LLM Obs parent (nearest LLM Obs ancestor held) and root of every LLM Obs span. */
static void resolve_llm(struct pv_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        struct pv_vspan *s = &v->spans[i];
        if (s->kind == LLMOBS_NONE) {
            continue;
        }
        s->llm_parent = 0;
        struct pv_vspan *p = pv_view_find(v, s->parent);
        for (size_t hops = 0; p != NULL && hops < PV_MAX_HOPS; hops++) {
            if (p->kind != LLMOBS_NONE) {
                s->llm_parent = p->id;
                break;
            }
            p = pv_view_find(v, p->parent);
        }
    }
    for (size_t i = 0; i < v->n; i++) {
        struct pv_vspan *s = &v->spans[i];
        if (s->kind == LLMOBS_NONE) {
            continue;
        }
        struct pv_vspan *r = s;
        for (size_t hops = 0; r->llm_parent != 0 && hops < PV_MAX_HOPS; hops++) {
            struct pv_vspan *up = pv_view_find(v, r->llm_parent);
            if (up == NULL) {
                break;
            }
            r = up;
        }
        s->llm_root = r->id;
    }
}

/* Depth in the waterfall: parents held, bounded against cycles. */
static void depths(struct pv_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        int d = 0;
        struct pv_vspan *p = pv_view_find(v, v->spans[i].parent);
        while (p != NULL && d < PV_MAX_HOPS) {
            d++;
            p = pv_view_find(v, p->parent);
        }
        v->spans[i].depth = d;
        v->spans[i].orphan = v->spans[i].parent != 0 && pv_view_find(v, v->spans[i].parent) == NULL;
    }
}

int pv_view_load(struct preview *pv, const uint8_t trace_id[16], struct pv_view *v,
                 const struct apm_recorder *rec)
{
    memset(v, 0, sizeof(*v));
    o2d_arena_init(&v->arena, 8 * pv->max_bytes + (16u << 20));
    int rv = pv_copy_trace(pv, trace_id, &v->copy);
    if (rv != O2D_OK) {
        return rv;
    }
    memcpy(v->trace_id, trace_id, 16);
    size_t total = 0;
    for (size_t i = 0; i < v->copy.n; i++) {
        total += v->copy.pieces[i]->spans;
    }
    v->spans = o2d_calloc(total > 0 ? total : 1, sizeof(*v->spans));
    v->logs = o2d_calloc(v->copy.n > 0 ? v->copy.n : 1, sizeof(*v->logs));
    if (v->spans == NULL || v->logs == NULL) {
        return O2D_ERR_NOMEM;
    }
    struct apm_config acfg = pv->cfg->datadog.apm;
    acfg.recorder = rec;
    int64_t now_ns = o2d_realtime_ns();
    for (size_t i = 0; i < v->copy.n; i++) {
        const struct pv_piece *p = v->copy.pieces[i];
        struct otlp_request req;
        const char *reason = NULL;
        rv = otlp_decode(&v->arena, p->is_logs ? OTLP_SIGNAL_LOGS : OTLP_SIGNAL_TRACES,
                         OTLP_ENC_PROTOBUF, p->data, p->len, &req, &reason);
        if (rv != O2D_OK) {
            return rv;
        }
        if (p->is_logs) {
            v->logs[v->n_logs++] = req.msg.logs;
            continue;
        }
        size_t first = v->n;
        const OtlpTraceReq *tr = req.msg.traces;
        for (size_t r = 0; r < tr->n_resource_spans; r++) {
            const OtlpResourceSpans *rs = tr->resource_spans[r];
            for (size_t k = 0; k < rs->n_scope_spans; k++) {
                const OtlpScopeSpans *ss = rs->scope_spans[k];
                for (size_t m = 0; m < ss->n_spans && v->n < total; m++) {
                    struct pv_vspan *s = &v->spans[v->n++];
                    s->span = ss->spans[m];
                    s->rs = rs;
                    s->ss = ss;
                    s->piece = i;
                    s->origin = p->origin;
                    s->id = id64(&s->span->span_id);
                    s->parent = id64(&s->span->parent_span_id);
                    s->kind = llmobs_classify(s->span);
                }
            }
        }
        struct apm_result res;
        memset(&res, 0, sizeof(res));
        if (apm_translate(&v->arena, tr, &acfg, now_ns, &res, &reason) == O2D_OK) {
            for (size_t a = 0; a < res.n_payloads; a++) {
                const DdTracerPayload *tp = res.payloads[a];
                for (size_t c = 0; c < tp->n_chunks; c++) {
                    for (size_t d = 0; d < tp->chunks[c]->n_spans; d++) {
                        DdSpan *dd = tp->chunks[c]->spans[d];
                        for (size_t x = first; x < v->n; x++) {
                            if (v->spans[x].id == dd->spanid && v->spans[x].dd == NULL) {
                                v->spans[x].dd = dd;
                                v->spans[x].payload = tp;
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    if (index_spans(v) != O2D_OK) {
        return O2D_ERR_NOMEM;
    }
    resolve_llm(v);
    depths(v);
    return O2D_OK;
}

/* Builds (once) and writes the LLM Obs event of s into out. 0 when s is no LLM Obs span. */
int pv_view_llm_event(struct preview *pv, struct pv_view *v, struct pv_vspan *s,
                      struct o2d_buf *out)
{
    if (s->kind == LLMOBS_NONE) {
        return O2D_ERR_NOT_FOUND;
    }
    if (s->llm == NULL) {
        int rv = llmobs_span_build(s->rs->resource, s->ss->scope, s->span, s->kind,
                                   &pv->cfg->datadog.llmobs.map, &s->llm);
        if (rv != O2D_OK) {
            return rv;
        }
        for (size_t i = 0; i < v->n_logs; i++) {
            const OtlpLogsReq *lr = v->logs[i];
            for (size_t r = 0; r < lr->n_resource_logs; r++) {
                for (size_t k = 0; k < lr->resource_logs[r]->n_scope_logs; k++) {
                    const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl =
                        lr->resource_logs[r]->scope_logs[k];
                    for (size_t m = 0; m < sl->n_log_records; m++) {
                        const OtlpLogRecord *lrec = sl->log_records[m];
                        if (id64(&lrec->span_id) == s->id) {
                            llmobs_span_add_log(s->llm, lrec);
                        }
                    }
                }
            }
        }
    }
    char tid[33];
    llmobs_trace_id(v->trace_id, s->llm_root, tid);
    return llmobs_span_write(s->llm, tid, s->llm_parent, PV_LLMOBS_MAX_EVENT, out);
}

static int json_span_row(struct o2d_buf *b, const struct pv_vspan *s)
{
    int rv = o2d_buf_append_str(b, "{\"span_id\":");
    rv = rv ? rv : jhex64(b, s->id);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"parent_id\":");
    rv = rv ? rv : jhex64(b, s->parent);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"name\":");
    rv = rv ? rv : jstr(b, s->span->name);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"service\":");
    rv = rv ? rv : jstr(b, s->dd != NULL ? s->dd->service : "");
    rv = rv ? rv : o2d_buf_append_str(b, ",\"operation\":");
    rv = rv ? rv : jstr(b, s->dd != NULL ? s->dd->name : "");
    rv = rv ? rv : o2d_buf_append_str(b, ",\"resource\":");
    rv = rv ? rv : jstr(b, s->dd != NULL ? s->dd->resource : "");
    rv = rv ? rv : o2d_buf_append_str(b, ",\"type\":");
    rv = rv ? rv : jstr(b, s->dd != NULL ? s->dd->type : "");
    const char *kind = llmobs_kind_name(s->kind);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"llmobs_kind\":");
    rv = rv ? rv : (kind != NULL ? jstr(b, kind) : o2d_buf_append_str(b, "null"));
    rv =
        rv ? rv
           : o2d_buf_printf(
                 b,
                 ",\"start_ns\":\"%llu\",\"duration_ns\":\"%llu\",\"depth\":%d,"
                 "\"error\":%s,\"orphan\":%s,\"apm\":%s}",
                 (unsigned long long)s->span->start_time_unix_nano,
                 (unsigned long long)(s->span->end_time_unix_nano >= s->span->start_time_unix_nano
                                          ? s->span->end_time_unix_nano -
                                                s->span->start_time_unix_nano
                                          : 0),
                 s->depth, s->span->status != NULL && s->span->status->code == 2 ? "true" : "false",
                 s->orphan ? "true" : "false", s->dd != NULL ? "true" : "false");
    return rv;
}

/* Waterfall order: each span after its parent, siblings by start. */
static int cmp_start(const void *a, const void *b)
{
    const struct pv_vspan *const *x = a, *const *y = b;
    uint64_t p = (*x)->span->start_time_unix_nano, q = (*y)->span->start_time_unix_nano;
    return p < q ? -1 : p > q;
}

/*
 * The waterfall's rows: depth first from the roots (no parent, or a parent not held),
 * children by start time, at most PV_MAX_WATERFALL rows (*shown says how many), then any
 * span a cycle of parents kept from every root. Iterative: a chain of a hundred thousand
 * spans must not overflow the stack.
 */
static int emit_tree(struct o2d_buf *b, struct pv_view *v, struct pv_vspan **sorted, size_t *shown)
{
    size_t n = v->n;
    const uint32_t none = UINT32_MAX;
    uint32_t *first = o2d_malloc((n + 1) * sizeof(*first)); /* per span; [n]: the roots */
    uint32_t *next = o2d_malloc((n + 1) * sizeof(*next));
    uint32_t *stack = o2d_malloc((n + 1) * sizeof(*stack));
    uint8_t *done = o2d_calloc(n + 1, 1);
    int rv = O2D_ERR_NOMEM;
    if (first == NULL || next == NULL || stack == NULL || done == NULL) {
        goto out;
    }
    for (size_t i = 0; i <= n; i++) {
        first[i] = none;
    }
    /* pushed in reverse start order, so that each list runs by start */
    for (size_t k = n; k-- > 0;) {
        size_t i = (size_t)(sorted[k] - v->spans);
        struct pv_vspan *p = pv_view_find(v, sorted[k]->parent);
        size_t parent = p != NULL && p != sorted[k] ? (size_t)(p - v->spans) : n;
        next[i] = first[parent];
        first[parent] = (uint32_t)i;
    }
    rv = O2D_OK;
    size_t count = 0;
    /* k = n: the roots; then each span in start order not reached yet (cycles) */
    for (size_t k = n + 1; k-- > 0 && rv == O2D_OK && count < PV_MAX_WATERFALL;) {
        size_t top = 0;
        if (k == n) {
            for (uint32_t c = first[n]; c != none; c = next[c]) {
                stack[top++] = c;
            }
        } else {
            size_t i = (size_t)(sorted[n - 1 - k] - v->spans);
            if (done[i]) {
                continue;
            }
            stack[top++] = (uint32_t)i;
        }
        /* a list's entries pushed in reverse, so that the earliest pops first */
        for (size_t a = 0, z = top; a + 1 < z; a++, z--) {
            uint32_t t = stack[a];
            stack[a] = stack[z - 1];
            stack[z - 1] = t;
        }
        while (top > 0 && rv == O2D_OK && count < PV_MAX_WATERFALL) {
            uint32_t i = stack[--top];
            if (done[i]) {
                continue;
            }
            done[i] = 1;
            rv = o2d_buf_append_str(b, count++ ? "," : "");
            rv = rv ? rv : json_span_row(b, &v->spans[i]);
            size_t mark = top;
            for (uint32_t c = first[i]; c != none && top < n; c = next[c]) {
                if (!done[c]) {
                    stack[top++] = c;
                }
            }
            for (size_t a = mark, z = top; a + 1 < z; a++, z--) {
                uint32_t t = stack[a];
                stack[a] = stack[z - 1];
                stack[z - 1] = t;
            }
        }
    }
    *shown = count;
out:
    o2d_free(first);
    o2d_free(next);
    o2d_free(stack);
    o2d_free(done);
    return rv;
}

static unsigned int api_trace(struct preview *pv, const uint8_t tid[16], struct o2d_buf *b)
{
    struct pv_view v;
    int rv = pv_view_load(pv, tid, &v, NULL);
    if (rv == O2D_ERR_NOT_FOUND) {
        pv_view_free(&v);
        return error_json(b, 404, "trace not held (never received, or evicted)");
    }
    if (rv != O2D_OK) {
        pv_view_free(&v);
        return error_json(b, 500, "trace could not be decoded");
    }
    struct pv_vspan **sorted = o2d_malloc((v.n ? v.n : 1) * sizeof(*sorted));
    if (sorted == NULL) {
        pv_view_free(&v);
        return error_json(b, 500, "out of memory");
    }
    for (size_t i = 0; i < v.n; i++) {
        sorted[i] = &v.spans[i];
    }
    qsort(sorted, v.n, sizeof(*sorted), cmp_start);
    rv = o2d_buf_append_str(b, "{\"trace_id\":");
    rv = rv ? rv : jhex(b, tid, 16);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"service\":");
    rv = rv ? rv : jstr(b, v.copy.summary.service);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"env\":");
    rv = rv ? rv : jstr(b, v.copy.summary.env);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"root\":");
    rv = rv ? rv : jstr(b, v.copy.summary.root);
    rv = rv ? rv
            : o2d_buf_printf(
                  b, ",\"start_ns\":\"%llu\",\"duration_ns\":\"%llu\",\"llmobs\":%s,",
                  (unsigned long long)v.copy.summary.start_ns,
                  (unsigned long long)(v.copy.summary.end_ns > v.copy.summary.start_ns
                                           ? v.copy.summary.end_ns - v.copy.summary.start_ns
                                           : 0),
                  v.copy.summary.llm ? "true" : "false");
    rv = rv ? rv : o2d_buf_append_str(b, "\"export\":");
    rv = rv ? rv : pv_state_json(pv, PV_DEST_TRACES, v.copy.summary.last_origin, b);
    if (rv == O2D_OK && v.copy.summary.llm) {
        rv = o2d_buf_append_str(b, ",\"llmobs_export\":");
        rv = rv ? rv : jstr(b, pv_llm_trace_word(pv, v.trace_id));
    }
    rv = rv ? rv : o2d_buf_append_str(b, ",\"spans\":[");
    size_t shown = 0;
    rv = rv ? rv : emit_tree(b, &v, sorted, &shown);
    rv = rv ? rv : o2d_buf_printf(b, "],\"spans_held\":%zu,\"spans_shown\":%zu}", v.n, shown);
    o2d_free(sorted);
    pv_view_free(&v);
    return rv == O2D_OK ? 200 : error_json(b, 500, "answer too large");
}

/* ---- one span: the three columns ---- */

static unsigned int api_span(struct preview *pv, const uint8_t tid[16], uint64_t sid,
                             const char *what, struct o2d_buf *b)
{
    struct pv_attr_table tab;
    pv_attr_table_init(&tab);
    struct pv_view v;
    int rv = pv_view_load(pv, tid, &v, pv_attr_recorder(&tab, sid));
    unsigned int code = 200;
    if (rv != O2D_OK) {
        code = error_json(b, rv == O2D_ERR_NOT_FOUND ? 404 : 500,
                          rv == O2D_ERR_NOT_FOUND ? "trace not held (never received, or evicted)"
                                                  : "trace could not be decoded");
        goto out;
    }
    struct pv_vspan *s = pv_view_find(&v, sid);
    if (s == NULL) {
        code = error_json(b, 404, "span not held in this trace");
        goto out;
    }
    if (what != NULL && strcmp(what, "apm.json") == 0) {
        if (s->dd == NULL) {
            code = error_json(b, 404, "no APM span (dropped by ignore_resources)");
        } else if (pb_json_print(b, &s->dd->base) != O2D_OK) {
            code = error_json(b, 500, "answer too large");
        }
        goto out;
    }
    if (what != NULL && strcmp(what, "llmobs.json") == 0) {
        rv = pv_view_llm_event(pv, &v, s, b);
        if (rv != O2D_OK) {
            code = error_json(b, 404, "this span is not an LLM Obs span");
        }
        goto out;
    }
    if (what != NULL) {
        code = error_json(b, 404, "no such page");
        goto out;
    }
    rv = o2d_buf_append_str(b, "{\"trace_id\":");
    rv = rv ? rv : jhex(b, tid, 16);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"span\":");
    rv = rv ? rv : json_span_row(b, s);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"otlp\":{\"resource\":");
    rv = rv ? rv
            : (s->rs->resource != NULL ? pb_json_print(b, &s->rs->resource->base)
                                       : o2d_buf_append_str(b, "null"));
    rv = rv ? rv : o2d_buf_append_str(b, ",\"scope\":");
    rv = rv ? rv
            : (s->ss->scope != NULL ? pb_json_print(b, &s->ss->scope->base)
                                    : o2d_buf_append_str(b, "null"));
    rv = rv ? rv : o2d_buf_append_str(b, ",\"span\":");
    rv = rv ? rv : pb_json_print(b, &s->span->base);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"log_records\":[");
    size_t nl = 0;
    for (size_t i = 0; i < v.n_logs && rv == O2D_OK; i++) {
        const OtlpLogsReq *lr = v.logs[i];
        for (size_t r = 0; r < lr->n_resource_logs && rv == O2D_OK; r++) {
            for (size_t k = 0; k < lr->resource_logs[r]->n_scope_logs && rv == O2D_OK; k++) {
                const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl =
                    lr->resource_logs[r]->scope_logs[k];
                for (size_t m = 0; m < sl->n_log_records && rv == O2D_OK; m++) {
                    if (id64(&sl->log_records[m]->span_id) == sid) {
                        rv = o2d_buf_append_str(b, nl++ ? "," : "");
                        rv = rv ? rv : pb_json_print(b, &sl->log_records[m]->base);
                    }
                }
            }
        }
    }
    rv = rv ? rv : o2d_buf_append_str(b, "]},\"apm\":");
    rv = rv ? rv : (s->dd != NULL ? pb_json_print(b, &s->dd->base) : o2d_buf_append_str(b, "null"));
    rv = rv ? rv : o2d_buf_append_str(b, ",\"llmobs\":");
    if (rv == O2D_OK && s->kind != LLMOBS_NONE) {
        size_t before = b->len;
        if (pv_view_llm_event(pv, &v, s, b) != O2D_OK) {
            b->len = before;
            rv = o2d_buf_append_str(b, "null");
        }
        rv = rv ? rv : o2d_buf_append_str(b, ",\"llmobs_parent_id\":");
        rv = rv ? rv : jhex64(b, s->llm_parent);
    } else if (rv == O2D_OK) {
        rv = o2d_buf_append_str(b, "null");
    }
    rv = rv ? rv : o2d_buf_append_str(b, ",\"attributes\":");
    rv = rv ? rv : pv_attr_table_json(&tab, s, pv->cfg, b);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"export\":{\"apm\":");
    rv = rv ? rv : pv_state_json(pv, PV_DEST_TRACES, s->origin, b);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"llmobs\":");
    rv = rv ? rv
            : (s->kind != LLMOBS_NONE ? pv_llm_state_json(pv, v.trace_id, s->id, b)
                                      : o2d_buf_append_str(b, "null"));
    rv = rv ? rv : o2d_buf_append_str(b, "}}");
    if (rv != O2D_OK) {
        code = error_json(b, 500, "answer too large");
    }
out:
    pv_view_free(&v);
    pv_attr_table_cleanup(&tab);
    return code;
}

/* ---- the LLM Obs tree ---- */

static unsigned int api_llm(struct preview *pv, const uint8_t tid[16], struct o2d_buf *b)
{
    struct pv_view v;
    int rv = pv_view_load(pv, tid, &v, NULL);
    if (rv != O2D_OK) {
        unsigned int code =
            error_json(b, rv == O2D_ERR_NOT_FOUND ? 404 : 500,
                       rv == O2D_ERR_NOT_FOUND ? "trace not held" : "trace could not be decoded");
        pv_view_free(&v);
        return code;
    }
    rv = o2d_buf_append_str(b, "{\"trace_id\":");
    rv = rv ? rv : jhex(b, tid, 16);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"events\":[");
    size_t k = 0;
    for (size_t i = 0; i < v.n && rv == O2D_OK; i++) {
        struct pv_vspan *s = &v.spans[i];
        if (s->kind == LLMOBS_NONE || k >= PV_MAX_LLM_EVENTS) {
            continue;
        }
        size_t before = b->len;
        rv = o2d_buf_append_str(b, k ? ",{\"span_id\":" : "{\"span_id\":");
        rv = rv ? rv : jhex64(b, s->id);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"llmobs_parent_id\":");
        rv = rv ? rv : jhex64(b, s->llm_parent);
        rv = rv ? rv : o2d_buf_append_str(b, ",\"event\":");
        if (rv == O2D_OK && pv_view_llm_event(pv, &v, s, b) != O2D_OK) {
            b->len = before;
            continue;
        }
        rv = rv ? rv : o2d_buf_append_str(b, "}");
        k++;
    }
    rv = rv ? rv : o2d_buf_append_str(b, "]}");
    pv_view_free(&v);
    return rv == O2D_OK ? 200 : error_json(b, 500, "answer too large");
}

/* ---- status ---- */

static unsigned int api_status(struct preview *pv, struct o2d_buf *b)
{
    struct preview_stats st;
    preview_stats(pv, &st);
    const struct o2d_config *c = pv->cfg;
    int rv = o2d_buf_printf(
        b,
        "{\"dry_run\":%s,\"uptime_s\":%lld,\"preview\":{\"traces\":%llu,\"bytes\":%llu,"
        "\"max_bytes\":%llu,\"spans_captured\":%llu,\"skipped_busy\":%llu,"
        "\"skipped_too_large\":%llu,\"evicted_traces\":%llu,\"log_records_joined\":%llu},"
        "\"destination\":",
        c->datadog.enabled ? "false" : "true", (long long)(o2d_now_ms() - pv->started_ms) / 1000,
        (unsigned long long)st.traces, (unsigned long long)st.bytes,
        (unsigned long long)st.max_bytes, (unsigned long long)st.spans_captured,
        (unsigned long long)st.skipped_busy, (unsigned long long)st.skipped_large,
        (unsigned long long)st.evicted_traces, (unsigned long long)st.logs_joined);
    /* The site and Agent URL only: the API key is never part of any answer. */
    const char *dest = !c->datadog.enabled                    ? "none (dry run: nothing is sent)"
                       : c->datadog.agent_endpoint[0] != '\0' ? c->datadog.agent_endpoint
                                                              : c->datadog.site;
    rv = rv ? rv : jstr(b, dest);
    rv = rv ? rv : o2d_buf_append_str(b, ",\"exporters\":");
    if (rv == O2D_OK) {
        rv = pv->status_fn != NULL ? pv->status_fn(pv->status_ctx, b)
                                   : o2d_buf_append_str(b, "null");
    }
    rv = rv ? rv : o2d_buf_append_str(b, "}");
    return rv == O2D_OK ? 200 : error_json(b, 500, "answer too large");
}

/* ---- routing ---- */

/* The API key is never part of an answer: should it show anywhere (an attribute, an intake's
 * answer quoting the request), it is overwritten. */
static void redact_key(struct preview *pv, struct o2d_buf *b)
{
    const char *key = pv->cfg->datadog.api_key;
    size_t kn = strlen(key);
    if (kn < 8 || b->data == NULL) {
        return;
    }
    for (size_t i = 0; i + kn <= b->len; i++) {
        if (memcmp(b->data + i, key, kn) == 0) {
            memset(b->data + i, '*', kn);
            i += kn - 1;
        }
    }
}

unsigned int preview_api(struct preview *pv, const char *path, const struct preview_query *q,
                         uint8_t **body, size_t *len, const char **ctype)
{
    struct o2d_buf b;
    o2d_buf_init(&b, PV_MAX_ANSWER);
    unsigned int code;
    *ctype = "application/json; charset=utf-8";
    static const char traces[] = "/api/traces";
    size_t tl = sizeof(traces) - 1;
    if (strcmp(path, traces) == 0) {
        code = api_list(pv, q, &b);
    } else if (strcmp(path, "/api/status") == 0) {
        code = params_ok(q, NULL) ? api_status(pv, &b) : error_json(&b, 400, "no parameters here");
    } else if (strcmp(path, "/api/lints") == 0) {
        code = !params_ok(q, NULL)               ? error_json(&b, 400, "no parameters here")
               : pv_lints_json(pv, &b) == O2D_OK ? 200
                                                 : error_json(&b, 500, "answer too large");
    } else if (strncmp(path, traces, tl) == 0 && path[tl] == '/') {
        const char *rest = path + tl + 1;
        uint8_t tid[16];
        uint8_t sid[8];
        size_t n = strcspn(rest, "/");
        if (!params_ok(q, NULL)) {
            code = error_json(&b, 400, "no parameters here");
        } else if (n != 32 || !pv_parse_hex(rest, 32, tid)) {
            code = error_json(&b, 400, "a trace id is 32 lowercase hex digits");
        } else if (rest[32] == '\0') {
            code = api_trace(pv, tid, &b);
        } else if (strcmp(rest + 32, "/llm") == 0) {
            code = api_llm(pv, tid, &b);
        } else if (strncmp(rest + 32, "/spans/", 7) == 0) {
            const char *s = rest + 39;
            size_t sn = strcspn(s, "/");
            if (sn != 16 || !pv_parse_hex(s, 16, sid)) {
                code = error_json(&b, 400, "a span id is 16 lowercase hex digits");
            } else {
                uint64_t id = 0;
                for (int i = 0; i < 8; i++) {
                    id = id << 8 | sid[i];
                }
                const char *what = s[16] == '/' ? s + 17 : NULL;
                code = s[16] != '\0' && s[16] != '/' ? error_json(&b, 404, "no such page")
                                                     : api_span(pv, tid, id, what, &b);
            }
        } else {
            code = error_json(&b, 404, "no such page");
        }
    } else {
        code = error_json(&b, 404, "no such API");
    }
    redact_key(pv, &b);
    *body = o2d_buf_take(&b, len);
    o2d_buf_cleanup(&b);
    return code;
}
