/*
 * apm_sample.c: see apm_sample.h. The tags a kept chunk carries follow datadog-agent
 * pkg/trace/api/otlp.go (createChunks: `_dd.otlp_sr`, priority, `_dd.p.dm` -9 only on a keep),
 * pkg/trace/agent/agent.go (runSamplers: errors re-decided by the error sampler) and
 * pkg/trace/sampler (`_dd.prob_sr` of probabilistic.go, `_dd.errors_sr`). The root's
 * `_sample_rate` (the application's own rate, which apm.c read from the tracestate and the
 * stats weigh by) is left alone: this sampler runs after the stats see every span.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apm_sample.h"
#include "o2d.h"

#define PRIORITY_AUTO_KEEP 1
#define PRIORITY_KEY       "_sampling_priority_v1"

const char *apm_sample_rule_name(enum apm_sample_rule r)
{
    static const char *const names[APM_SAMPLE_RULES] = {
        "percentage", "service_rate", "priority", "error", "latency", "no_trace_id",
    };
    return (unsigned)r < APM_SAMPLE_RULES ? names[r] : "unknown";
}

static int has_metric(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        if (strcmp(s->metrics[i]->key, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *meta_of(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_meta; i++) {
        if (strcmp(s->meta[i]->key, k) == 0) {
            return s->meta[i]->value;
        }
    }
    return NULL;
}

void apm_sample_trace_id(const DdTraceChunk *ch, uint8_t out[16])
{
    memset(out, 0, 16);
    if (ch->n_spans == 0) {
        return;
    }
    const DdSpan *s = ch->spans[0];
    const char *tid = meta_of(s, "_dd.p.tid");
    uint64_t hi = 0;
    if (tid != NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(tid, &end, 16);
        hi = end != NULL && *end == '\0' && end - tid == 16 ? (uint64_t)v : 0;
    }
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(hi >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(s->traceid >> (56 - 8 * i));
    }
}

/* Removes meta key k from s (the decision maker of a chunk the error rule kept). */
static void drop_meta(DdSpan *s, const char *k)
{
    size_t j = 0;
    for (size_t i = 0; i < s->n_meta; i++) {
        if (strcmp(s->meta[i]->key, k) != 0) {
            s->meta[j++] = s->meta[i];
        }
    }
    s->n_meta = j;
}

static int set_metric(struct o2d_arena *a, DdSpan *s, const char *k, double v)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        if (strcmp(s->metrics[i]->key, k) == 0) {
            s->metrics[i]->value = v;
            return O2D_OK;
        }
    }
    Datadog__Trace__Span__MetricsEntry **np = o2d_arena_alloc(a, (s->n_metrics + 1) * sizeof(*np));
    Datadog__Trace__Span__MetricsEntry *e = o2d_arena_alloc(a, sizeof(*e));
    if (np == NULL || e == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    datadog__trace__span__metrics_entry__init(e);
    e->key = (char *)k;
    e->value = v;
    memcpy(np, s->metrics, s->n_metrics * sizeof(*np));
    np[s->n_metrics++] = e;
    s->metrics = np;
    return O2D_OK;
}

/* Sets (or, with v NULL, removes) a chunk tag; apm.c made room for `_dd.otlp_sr` and
 * `_dd.p.dm` only, so a missing key is appended in a new array. */
static int set_chunk_tag(struct o2d_arena *a, DdTraceChunk *ch, const char *k, const char *v)
{
    for (size_t i = 0; i < ch->n_tags; i++) {
        if (strcmp(ch->tags[i]->key, k) != 0) {
            continue;
        }
        if (v != NULL) {
            ch->tags[i]->value = (char *)v;
        } else {
            ch->tags[i] = ch->tags[--ch->n_tags];
        }
        return O2D_OK;
    }
    if (v == NULL) {
        return O2D_OK;
    }
    Datadog__Trace__TraceChunk__TagsEntry **np = o2d_arena_alloc(a, (ch->n_tags + 1) * sizeof(*np));
    Datadog__Trace__TraceChunk__TagsEntry *e = o2d_arena_alloc(a, sizeof(*e));
    if (np == NULL || e == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    datadog__trace__trace_chunk__tags_entry__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    memcpy(np, ch->tags, ch->n_tags * sizeof(*np));
    np[ch->n_tags++] = e;
    ch->tags = np;
    return O2D_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* traceutil.GetRoot: the last span with no parent, else the last whose parent is not in the
 * chunk, else the last span. */
static DdSpan *root_of(struct o2d_arena *a, const DdTraceChunk *ch)
{
    for (size_t i = ch->n_spans; i-- > 0;) {
        if (ch->spans[i]->parentid == 0) {
            return ch->spans[i];
        }
    }
    uint64_t *ids = o2d_arena_alloc(a, ch->n_spans * sizeof(*ids));
    if (ids == NULL) {
        return ch->spans[ch->n_spans - 1];
    }
    for (size_t i = 0; i < ch->n_spans; i++) {
        ids[i] = ch->spans[i]->spanid;
    }
    qsort(ids, ch->n_spans, sizeof(*ids), cmp_u64);
    for (size_t i = ch->n_spans; i-- > 0;) {
        uint64_t p = ch->spans[i]->parentid;
        if (bsearch(&p, ids, ch->n_spans, sizeof(*ids), cmp_u64) == NULL) {
            return ch->spans[i];
        }
    }
    return ch->spans[ch->n_spans - 1];
}

static const struct o2d_sample_rate *service_rate(const struct apm_sampler *s, const char *svc)
{
    for (size_t i = 0; svc != NULL && i < s->n_services; i++) {
        if (strcmp(s->services[i].service, svc) == 0) {
            return &s->services[i].rate;
        }
    }
    return NULL;
}

/* Decides one non-empty chunk: 1 keep, 0 drop, with the rule that decided; a kept chunk gets
 * its tags. <0 on a full arena. */
static int decide(struct o2d_arena *a, const struct apm_sampler *s, DdTraceChunk *ch,
                  enum apm_sample_rule *rule)
{
    int user = 0, error = 0, slow = 0;
    for (size_t i = 0; i < ch->n_spans; i++) {
        const DdSpan *sp = ch->spans[i];
        user |= has_metric(sp, PRIORITY_KEY);
        error |= sp->error != 0;
        slow |= s->keep_slower_than_ns > 0 && sp->duration >= s->keep_slower_than_ns;
    }
    if (user) {
        *rule = APM_SAMPLE_PRIORITY;
        return ch->priority > 0;
    }
    DdSpan *root = root_of(a, ch);
    const struct o2d_sample_rate *r = service_rate(s, root->service);
    *rule = r != NULL ? APM_SAMPLE_SERVICE_RATE : APM_SAMPLE_PERCENTAGE;
    if (r == NULL) {
        r = &s->rate;
    }
    uint8_t tid[16];
    apm_sample_trace_id(ch, tid);
    int keep;
    if (o2d_sample_id_missing(tid)) {
        *rule = APM_SAMPLE_NO_TRACE_ID;
        keep = !s->fail_closed;
    } else {
        keep = o2d_sample_keep(s->mode, s->hash_seed, tid, r);
    }
    /* "0.10": the rate as the Agent's OTLP receiver writes `_dd.otlp_sr` ('f', 2); it points
     * into the sampler, which outlives the packing. */
    int rv = set_chunk_tag(a, ch, "_dd.otlp_sr", r->text);
    if (rv == O2D_OK && keep) {
        ch->priority = PRIORITY_AUTO_KEEP;
        rv = set_metric(a, root, "_dd.prob_sr", r->percent / 100.0);
        return rv == O2D_OK ? 1 : rv;
    }
    if (rv == O2D_OK && (error && s->keep_errors)) {
        *rule = APM_SAMPLE_ERROR;
        rv = set_metric(a, root, "_dd.errors_sr", 1.0);
    } else if (rv == O2D_OK && slow) {
        *rule = APM_SAMPLE_LATENCY;
    } else {
        return rv == O2D_OK ? 0 : rv;
    }
    /* Not the probabilistic sampler's keep: no decision maker, as the Agent leaves it. */
    ch->priority = PRIORITY_AUTO_KEEP;
    drop_meta(ch->spans[0], "_dd.p.dm");
    rv = rv == O2D_OK ? set_chunk_tag(a, ch, "_dd.p.dm", NULL) : rv;
    return rv == O2D_OK ? 1 : rv;
}

int apm_sample(struct o2d_arena *a, const struct apm_sampler *s, struct apm_result *res,
               size_t **n_kept, struct apm_sample_counts *counts)
{
    size_t *kept = o2d_arena_alloc(a, (res->n_payloads + 1) * sizeof(*kept));
    if (kept == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    *n_kept = kept;
    for (size_t p = 0; p < res->n_payloads; p++) {
        DdTracerPayload *tp = res->payloads[p];
        kept[p] = tp->n_chunks;
        if (s == NULL || !s->enabled || tp->n_chunks == 0) {
            continue;
        }
        DdTraceChunk **dropped = o2d_arena_alloc(a, tp->n_chunks * sizeof(*dropped));
        if (dropped == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        size_t nk = 0, nd = 0;
        for (size_t c = 0; c < tp->n_chunks; c++) {
            DdTraceChunk *ch = tp->chunks[c];
            if (ch->n_spans == 0) {
                dropped[nd++] = ch;
                continue;
            }
            enum apm_sample_rule rule = APM_SAMPLE_PERCENTAGE;
            int keep = decide(a, s, ch, &rule);
            if (keep < 0) {
                return keep;
            }
            if (keep) {
                tp->chunks[nk++] = ch;
                counts->kept_spans[rule] += ch->n_spans;
                counts->kept_traces[rule]++;
            } else {
                dropped[nd++] = ch;
                counts->dropped_spans[rule] += ch->n_spans;
                counts->dropped_traces[rule]++;
            }
        }
        memcpy(tp->chunks + nk, dropped, nd * sizeof(*dropped));
        kept[p] = nk;
    }
    return O2D_OK;
}
