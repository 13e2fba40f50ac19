/*
 * llmobs_exporter.c: the LLM Observability exporter (llmobs_exporter.h).
 *
 * submit() runs on the receiving thread. Traces: every span is classified
 * (llmobs_classify); the LLM Obs spans are built into owned events outside any lock, then,
 * under the buffer's lock, their traces are noted and every span of the request is added to
 * the trace buffer (LLM Obs spans with their event, the others as id skeletons that let a
 * chain reach its root). Logs: gen_ai records go to the buffer, which joins them to their
 * span. Nothing that points into the request's arena is kept.
 *
 * The delivery layer (delivery.h) sends: the destination's tick polls the buffer every
 * 100 ms (every event at a flush) and queues the events it releases while the queue has
 * room; bodies are JSON arrays of envelopes under the intake's 5 MiB limit (llmobs_wire.c).
 * When the queue's budget is spent, the buffer keeps its events (it is bounded on its own)
 * and admit answers "retry later" to requests with LLM Obs spans. Which span becomes which
 * event, and when it is ready, is translate/llmobs's business.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog.h"
#include "delivery.h"
#include "ecs_meta.h"
#include "http_client.h"
#include "llmobs.h"
#include "llmobs_buffer.h"
#include "llmobs_exporter.h"
#include "llmobs_exporter_int.h"
#include "llmobs_inputs.h"
#include "llmobs_sample.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"

/* What one poll moves to the queue must fit its budget with bodies in flight: at 200 ms,
 * 40k events/s (60 MB/s of JSON) filled the 16 MiB default at every poll and requests were
 * refused (tests/bench/RESULTS-llmobs.md). */
#define LO_POLL_INTERVAL_MS    100
#define LO_MAX_INFLIGHT        4 /* bodies in flight (retries included) */
#define LO_ATTEMPT_TIMEOUT_MS  15000
#define LO_DEFAULT_QUEUE_BYTES (16u * 1024 * 1024)
#define LO_MIN_QUEUE_BYTES     (2 * LLMOBS_MAX_BODY_BYTES)
#define LO_DEFAULT_ELAPSED_MS  300000
#define LO_DEFAULT_BUF_TIMEOUT 10000
#define LO_DEFAULT_BUF_SPANS   100000
#define LO_DEFAULT_BUF_BYTES   (64u * 1024 * 1024)
#define LO_BUILDERS            8 /* kept for the receiving threads; more are made and freed */

/* ---------------------------------------------------------------------------------------- */
/* Requests -> the trace buffer.                                                            */

struct llmobs_exporter_batch {
    /* Two arrays, as llmobs_buffer_add_spans takes them. */
    struct llmobs_ids *ids;
    struct llmobs_span **llm; /* owned until added; NULL for a skeleton */
    size_t n;
    size_t n_llm;
    uint8_t (*traces)[16]; /* distinct trace ids of the LLM Obs spans */
    size_t n_traces;
    /* processors.llmobs_sampler: LLM Obs spans left out of the buffer, and kept, by rule */
    uint64_t sampled_out[LLMOBS_SAMPLE_RULES];
    uint64_t sampled_in[LLMOBS_SAMPLE_RULES];
    uint8_t *dropped; /* per span of the request, in order: an LLM Obs span sampled out */
    size_t n_dropped;
};

/* Written out so that the compiler makes it one load and a byte swap (the loop was not):
 * two of these for every span of every request. */
static uint64_t be64(const uint8_t *p, size_t len)
{
    if (len != 8) {
        return 0;
    }
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

/* OTLP SpanFlags: bit 8 says whether bit 9 (the parent is remote) is known. */
#define SPAN_FLAGS_HAS_IS_REMOTE 0x100u
#define SPAN_FLAGS_IS_REMOTE     0x200u

static void span_ids(const OtlpSpan *s, struct llmobs_ids *ids)
{
    memset(ids, 0, sizeof(*ids));
    if (s->trace_id.len == 16) {
        memcpy(ids->trace_id, s->trace_id.data, 16);
    }
    ids->span_id = be64(s->span_id.data, s->span_id.len);
    ids->parent_span_id = be64(s->parent_span_id.data, s->parent_span_id.len);
    ids->parent_is_remote =
        (s->flags & SPAN_FLAGS_HAS_IS_REMOTE) != 0 && (s->flags & SPAN_FLAGS_IS_REMOTE) != 0;
}

static int cmp_trace(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

void llmobs_exporter_batch_free(struct llmobs_exporter_batch *bt)
{
    if (bt == NULL) {
        return;
    }
    for (size_t i = 0; i < bt->n; i++) {
        llmobs_span_free(bt->llm[i]);
    }
    o2d_free(bt->ids);
    o2d_free(bt->dropped);
    o2d_free(bt->llm);
    o2d_free(bt->traces);
    o2d_free(bt);
}

static int span_is_error(const OtlpSpan *s)
{
    return s->status != NULL &&
           s->status->code ==
               OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
}

static const uint8_t *span_trace_id(const OtlpSpan *s)
{
    static const uint8_t zero[16];
    return s->trace_id.len == 16 ? s->trace_id.data : zero;
}

/* processors.llmobs_sampler: an LLM Obs span of a trace the sampler drops becomes a plain
 * span (kinds[i] = LLMOBS_NONE): nothing is built and, its trace having no LLM Obs span left,
 * the buffer keeps no skeleton of it either. Every LLM Obs span of one trace id in the
 * request gets the same decision (its ml_app's rate; an error anywhere in it keeps it). */
static int sample_spans(const OtlpTraceReq *req, const struct llmobs_config *map, uint8_t *kinds,
                        size_t n_spans, struct llmobs_exporter_batch *bt)
{
    uint8_t(*errs)[16] = o2d_malloc(bt->n_llm * sizeof(*errs));
    bt->dropped = o2d_calloc(n_spans, 1);
    if (errs == NULL || bt->dropped == NULL) {
        o2d_free(errs);
        return O2D_ERR_NOMEM;
    }
    size_t n_errs = 0, i = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++, i++) {
                if (kinds[i] != LLMOBS_NONE && span_is_error(ss->spans[j])) {
                    memcpy(errs[n_errs++], span_trace_id(ss->spans[j]), 16);
                }
            }
        }
    }
    qsort(errs, n_errs, sizeof(*errs), cmp_trace);
    i = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        const char *ml_app = NULL;
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++, i++) {
                if (kinds[i] == LLMOBS_NONE) {
                    continue;
                }
                if (ml_app == NULL) {
                    ml_app = llmobs_ml_app(rs->resource, map);
                }
                const uint8_t *tid = span_trace_id(ss->spans[j]);
                int err = n_errs > 0 && bsearch(tid, errs, n_errs, 16, cmp_trace) != NULL;
                enum llmobs_sample_rule rule;
                if (llmobs_sample_keep(map->sampler, tid, ml_app, err, &rule)) {
                    bt->sampled_in[rule]++;
                } else {
                    bt->sampled_out[rule]++;
                    kinds[i] = LLMOBS_NONE;
                    bt->dropped[i] = 1;
                    bt->n_dropped++;
                    bt->n_llm--;
                }
            }
        }
    }
    o2d_free(errs);
    return O2D_OK;
}

void llmobs_exporter_batch_sampled(const struct llmobs_exporter_batch *bt, uint64_t *out,
                                   uint64_t *in)
{
    for (int r = 0; r < LLMOBS_SAMPLE_RULES; r++) {
        out[r] += bt != NULL ? bt->sampled_out[r] : 0;
        in[r] += bt != NULL ? bt->sampled_in[r] : 0;
    }
}

int llmobs_exporter_batch_build(const OtlpTraceReq *req, const struct llmobs_config *map,
                                int skeletons, struct llmobs_exporter_batch **out)
{
    return llmobs_exporter_batch_build_with(NULL, req, map, skeletons, out);
}

int llmobs_exporter_batch_build_with(struct llmobs_builder *bl, const OtlpTraceReq *req,
                                     const struct llmobs_config *map, int skeletons,
                                     struct llmobs_exporter_batch **out)
{
    return llmobs_exporter_batch_build_ecs(bl, req, map, NULL, skeletons, out);
}

int llmobs_exporter_batch_build_ecs(struct llmobs_builder *bl, const OtlpTraceReq *req,
                                    const struct llmobs_config *map, const struct res_ecs *ecs,
                                    int skeletons, struct llmobs_exporter_batch **out)
{
    *out = NULL;
    if (req == NULL) {
        return O2D_OK;
    }
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            n += rs->scope_spans[k]->n_spans;
        }
    }
    if (n == 0) {
        return O2D_OK;
    }
    int rv = O2D_ERR_NOMEM;
    struct llmobs_builder *own = NULL;
    struct llmobs_exporter_batch *bt = o2d_calloc(1, sizeof(*bt));
    uint8_t *kinds = o2d_malloc(n);
    if (bt == NULL || kinds == NULL) {
        goto out;
    }
    size_t i = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++, i++) {
                kinds[i] = (uint8_t)llmobs_classify(ss->spans[j]);
                bt->n_llm += kinds[i] != LLMOBS_NONE;
            }
        }
    }
    if (map->sampler != NULL && map->sampler->enabled && bt->n_llm > 0) {
        rv = sample_spans(req, map, kinds, n, bt);
        if (rv != O2D_OK) {
            goto out;
        }
    }
    if (bt->n_llm == 0 && !skeletons) {
        rv = O2D_OK;
        if (bt->sampled_out[LLMOBS_SAMPLE_PERCENTAGE] + bt->sampled_out[LLMOBS_SAMPLE_ML_APP_RATE] >
            0) {
            *out = bt; /* no span, only what the sampler counted */
            bt = NULL;
        }
        goto out;
    }
    bt->ids = o2d_malloc(n * sizeof(*bt->ids));
    bt->llm = o2d_calloc(n, sizeof(*bt->llm));
    bt->traces = bt->n_llm > 0 ? o2d_malloc(bt->n_llm * sizeof(*bt->traces)) : NULL;
    if (bt->ids == NULL || bt->llm == NULL || (bt->n_llm > 0 && bt->traces == NULL)) {
        goto out;
    }
    /* one scratch for all the request's LLM Obs spans */
    if (bl == NULL && bt->n_llm > 0) {
        if (llmobs_builder_new(&own) != O2D_OK) {
            goto out;
        }
        bl = own;
    }
    i = 0;
    llmobs_builder_begin(bl);
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        /* the task's tags for this resource's events, after DD_TAGS */
        const struct llmobs_config *rmap = map;
        struct llmobs_config with_ecs;
        const char *tagv[LLMOBS_MAX_USER_TAGS];
        const char *const *et;
        size_t en;
        if (res_ecs_tags_for(ecs, rs->resource, &et, &en)) {
            with_ecs = *map;
            size_t nt = 0;
            for (size_t t = 0; t < map->n_tags && nt < LLMOBS_MAX_USER_TAGS; t++) {
                tagv[nt++] = map->tags[t];
            }
            for (size_t t = 0; t < en && nt < LLMOBS_MAX_USER_TAGS; t++) {
                tagv[nt++] = et[t];
            }
            with_ecs.tags = tagv;
            with_ecs.n_tags = nt;
            rmap = &with_ecs;
        }
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++, i++) {
                struct llmobs_ids *ids = &bt->ids[bt->n];
                struct llmobs_span **llm = &bt->llm[bt->n];
                span_ids(ss->spans[j], ids);
                bt->n++;
                if (kinds[i] == LLMOBS_NONE) {
                    continue;
                }
                rv = llmobs_span_build_with(bl, rs->resource, ss->scope, ss->spans[j],
                                            (enum llmobs_kind)kinds[i], rmap, llm);
                if (rv != O2D_OK) {
                    goto out;
                }
                /* a trace's spans mostly come together: skip the repeats sorting would */
                if (bt->n_traces == 0 ||
                    memcmp(bt->traces[bt->n_traces - 1], ids->trace_id, 16) != 0) {
                    memcpy(bt->traces[bt->n_traces++], ids->trace_id, 16);
                }
            }
        }
    }
    if (bt->n_traces > 1) {
        qsort(bt->traces, bt->n_traces, sizeof(*bt->traces), cmp_trace);
        size_t u = 1;
        for (size_t t = 1; t < bt->n_traces; t++) {
            if (memcmp(bt->traces[t], bt->traces[u - 1], 16) != 0) {
                memcpy(bt->traces[u++], bt->traces[t], 16);
            }
        }
        bt->n_traces = u;
    }
    *out = bt;
    bt = NULL;
    rv = O2D_OK;
out:
    llmobs_builder_end(bl);
    llmobs_builder_free(own);
    o2d_free(kinds);
    llmobs_exporter_batch_free(bt);
    return rv;
}

int llmobs_exporter_batch_add(struct llmobs_buffer *b, struct llmobs_exporter_batch *bt,
                              int64_t now_ns)
{
    if (bt == NULL || bt->n == 0) {
        llmobs_exporter_batch_free(bt);
        return O2D_OK;
    }
    int rv = O2D_OK;
    for (size_t t = 0; t < bt->n_traces && rv == O2D_OK; t++) {
        rv = llmobs_buffer_note_trace(b, bt->traces[t], now_ns);
    }
    if (rv == O2D_OK) {
        /* takes every span, even on error */
        rv = llmobs_buffer_add_spans(b, bt->ids, bt->llm, bt->n, now_ns);
    }
    llmobs_exporter_batch_free(bt);
    return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* The exporter.                                                                            */

/* An event about to be queued and its span (llmobs_exporter_observe). */
struct lo_pending {
    const struct dlv_item *item;
    uint8_t trace_id[16];
    uint64_t span_id;
};

struct lo_exporter {
    struct exporter base;
    const struct datadog_config *cfg;
    char site[128];
    char url[DATADOG_URL_MAX + 32];
    struct llmobs_wire wire;
    struct http_client *http;
    int own_http;
    size_t queue_max;
    int started;
    struct dlv_dest *out;

    /* The trace buffer is single-threaded: receivers add, the sender's tick polls. */
    pthread_mutex_t buf_mu;
    struct llmobs_buffer *buf;
    atomic_int buf_holds; /* hint, read without buf_mu: the buffer holds LLM Obs spans */

    /* Builders (buffers and jansson arena of span builds) reused across requests: made per
     * request, their allocation and first growth cost as much as a build. */
    pthread_mutex_t bl_mu;
    struct llmobs_builder *builders[LO_BUILDERS];
    size_t n_builders;

    atomic_uint_fast64_t spans_seen;
    atomic_uint_fast64_t spans_refused;
    atomic_uint_fast64_t logs_seen;
    atomic_uint_fast64_t sampled_out[LLMOBS_SAMPLE_RULES]; /* processors.llmobs_sampler */
    atomic_uint_fast64_t sampled_in[LLMOBS_SAMPLE_RULES];

    /* With sending_queue.storage: what the buffer holds, on disk (llmobs_inputs.h). */
    struct lo_inputs *inputs;

    struct ecs_meta *ecs; /* the task's metadata (borrowed), NULL outside ECS */

    /* llmobs_exporter_observe (the preview); NULL: nobody. The spans of the events one poll
     * released, in queue order, until the queue has told each one's item id (sender thread
     * only: only the tick queues, and the queue tells DLV_QUEUED on the queuer's thread). */
    llmobs_queued_fn obs_queued;
    dlv_observer_fn obs_fn;
    void *obs_ctx;
    struct lo_pending *pend;
    size_t n_pend, cap_pend, next_pend;
};

void llmobs_exporter_intake_base(const struct datadog_config *cfg, char *out, size_t n)
{
    datadog_base_url(cfg->llmobs.endpoint, "llmobs-intake.", cfg->site, out, n);
}

/* The events one poll releases, queued in one step after it (a poll releases thousands: a
 * lock round trip each showed in the profile). */
struct poll_batch {
    struct lo_exporter *d;
    size_t room; /* the queue's budget left when the poll began */
    struct dlv_item *head, **tailp;
    size_t bytes;
};

/* With an observer: remembers the span of an event about to be queued (under buf_mu, inside
 * the poll). Out of memory: that event has no state for the observer, nothing else. */
static void note_pending(struct lo_exporter *d, const struct dlv_item *it)
{
    if (d->obs_queued == NULL) {
        return;
    }
    if (d->n_pend == d->cap_pend) {
        size_t cap = d->cap_pend > 0 ? d->cap_pend * 2 : 64;
        struct lo_pending *p = o2d_realloc(d->pend, cap * sizeof(*p));
        if (p == NULL) {
            return;
        }
        d->pend = p;
        d->cap_pend = cap;
    }
    struct lo_pending *p = &d->pend[d->n_pend++];
    p->item = it;
    llmobs_buffer_emitting(d->buf, p->trace_id, &p->span_id);
}

/* The llmobs destination's observer when the exporter has one: a queued event's span is told
 * first, by item id, then the event is passed on. */
static void lo_observe(void *ctx, const struct dlv_event *ev)
{
    struct lo_exporter *d = ctx;
    if (ev->state == DLV_QUEUED) {
        for (size_t i = d->next_pend; i < d->n_pend; i++) {
            if (d->pend[i].item == ev->item) {
                d->obs_queued(d->obs_ctx, ev->item_id, d->pend[i].trace_id, d->pend[i].span_id);
                d->next_pend = i + 1;
                break;
            }
        }
    }
    d->obs_fn(d->obs_ctx, ev);
}

/* The buffer hands over one ready event (under buf_mu), written after room for an item's
 * fields: its storage becomes the item (no copy). Or "busy", so that it stays in the buffer
 * while the queue is over its budget. */
static int emit_event(void *ctx, struct o2d_buf *out, size_t front)
{
    struct poll_batch *pb = ctx;
    /* Full as the queue was when the poll began plus what it took: only the tick adds to
     * the queue, so it can only have more room by now. */
    if (pb->bytes >= pb->room) {
        return O2D_ERR_BUSY;
    }
    size_t total;
    size_t len = out->len - front;
    uint8_t *storage = o2d_buf_take(out, &total);
    struct dlv_item *it = dlv_item_adopt(storage, total, 0, 1);
    if (it == NULL) {
        return O2D_ERR_NOMEM;
    }
    *pb->tailp = it;
    pb->tailp = &it->next;
    pb->bytes += len;
    note_pending(pb->d, it);
    return O2D_OK;
}

/* At shutdown: what the buffer still holds is counted as lost. */
static int count_event(void *ctx, const uint8_t *json, size_t len)
{
    (void)json;
    (void)len;
    dlv_dest_drop(ctx, DLV_DROP_SHUTDOWN, 1);
    return O2D_OK;
}

/* The destination's tick: polls the buffer and queues what it releases. */
static int poll_tick(void *ctx, struct dlv_dest *out, int force)
{
    struct lo_exporter *d = ctx;
    struct llmobs_buffer_counters c;
    struct poll_batch pb = {.d = d, .room = dlv_dest_room(out), .head = NULL};
    pb.tailp = &pb.head;
    int64_t poll_ms = o2d_now_ms();
    pthread_mutex_lock(&d->buf_mu);
    int rv = llmobs_buffer_poll_buf(d->buf, o2d_now_ns(), force, DLV_ITEM_PREFIX, emit_event, &pb);
    llmobs_buffer_get_counters(d->buf, &c);
    atomic_store(&d->buf_holds, c.spans_held > 0);
    pthread_mutex_unlock(&d->buf_mu);
    int qrv = dlv_dest_enqueue(out, pb.head, 0);
    d->n_pend = 0;
    d->next_pend = 0;
    if (d->inputs != NULL && rv == O2D_OK && qrv == O2D_OK) {
        /* everything due was released and is queued (on disk): its inputs are done */
        lo_inputs_released(d->inputs, poll_ms, force && c.spans_held == 0);
    }
    if (rv != O2D_OK && rv != O2D_ERR_BUSY) {
        o2d_logf(O2D_LOG_ERROR, "llmobs: cannot take events from the trace buffer: %s",
                 o2d_strerror(rv));
    }
    return rv == O2D_ERR_BUSY && c.spans_held > 0;
}

static void replay_input(void *ctx, uint64_t seq, enum lo_input_kind kind,
                         const struct otlp_request *req, const struct llmobs_ids *ids,
                         size_t n_ids);

static int lo_start(struct exporter *e)
{
    struct lo_exporter *d = e->ctx;
    if (d->http == NULL) {
        int rv = http_client_new(&d->http, NULL);
        if (rv != O2D_OK) {
            return rv;
        }
        d->own_http = 1;
    }
    struct dlv_dest_config dc = {
        .url = d->url,
        .where = d->site,
        .queue_max_bytes = d->queue_max,
        .max_body = LLMOBS_MAX_BODY_BYTES,
        /* compressed, the intake's limit still holds on the JSON before compression */
        .max_raw = LLMOBS_MAX_BODY_BYTES,
        .flush_interval_ms = 0, /* the buffer decides when an event is ready */
        .tick = poll_tick,
        .tick_ctx = d,
        .tick_ms = LO_POLL_INTERVAL_MS,
        .max_elapsed_ms =
            d->cfg->max_elapsed_ms > 0 ? d->cfg->max_elapsed_ms : LO_DEFAULT_ELAPSED_MS,
        .attempt_timeout_ms = LO_ATTEMPT_TIMEOUT_MS,
        .max_inflight = LO_MAX_INFLIGHT,
    };
    datadog_dest_tune(d->cfg, &d->cfg->llmobs_compression, DLV_COMPRESS_NONE, &dc);
    int rv = datadog_disk_queue(d->cfg, "llmobs", 4, &dc.queue);
    if (rv != O2D_OK) {
        return rv;
    }
    const struct datadog_llmobs_config *lcfg = &d->cfg->llmobs;
    /* The longest a span stays in the buffer: its deadline, and the log join window of a held
     * parent it waits for (parents leave first), which arrived before the deadline. */
    int64_t held_ms =
        (lcfg->buffer_timeout_ms > 0 ? lcfg->buffer_timeout_ms : LO_DEFAULT_BUF_TIMEOUT) +
        (lcfg->log_join_window_ms > 0 ? lcfg->log_join_window_ms : 0);
    rv = lo_inputs_open(&d->inputs, d->cfg, held_ms);
    if (rv != O2D_OK) {
        if (dc.queue != NULL) {
            dc.queue->type->free(dc.queue);
        }
        return rv;
    }
    if (d->inputs != NULL) {
        size_t n = lo_inputs_replay(d->inputs, replay_input, d);
        if (n > 0) {
            struct o2d_logline l;
            o2d_log_begin(&l, O2D_LOG_INFO, "llmobs: trace buffer inputs replayed from disk");
            o2d_log_uint(&l, "inputs", n);
            o2d_log_end(&l);
        }
    }
    rv = dlv_dest_new(&d->out, &llmobs_dest, &d->wire, &dc, d->http);
    if (rv == O2D_OK && d->obs_fn != NULL) {
        dlv_dest_observe(d->out, lo_observe, d);
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_start(d->out);
    }
    if (rv != O2D_OK) {
        return rv;
    }
    d->started = 1;
    const struct datadog_llmobs_config *lc = &d->cfg->llmobs;
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "llmobs exporter started");
    o2d_log_cstr(&l, "site", d->site);
    o2d_log_cstr(&l, "intake", d->url);
    o2d_log_cstr(&l, "ml_app", lc->ml_app[0] != '\0' ? lc->ml_app : "(service.name)");
    o2d_log_uint(&l, "queue_max_bytes", d->queue_max);
    o2d_log_int(&l, "trace_buffer_timeout_ms", lc->buffer_timeout_ms);
    o2d_log_int(&l, "log_join_window_ms", lc->log_join_window_ms);
    o2d_log_end(&l);
    return O2D_OK;
}

/* With sending_queue.storage, what goes to disk for the trace buffer: the request without
 * the LLM Obs spans the sampler dropped (their prompts never touch the disk). A shallow copy:
 * new arrays of pointers to the request's own structures, packed by lo_inputs_add_msg. */
static int add_kept_msg(struct lo_inputs *in, const OtlpTraceReq *req,
                        const struct llmobs_exporter_batch *bt, uint64_t *seq)
{
    if (bt->n_dropped == 0) {
        return lo_inputs_add_msg(in, LO_INPUT_TRACES, &req->base, seq);
    }
    size_t n_scopes = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        n_scopes += req->resource_spans[r]->n_scope_spans;
    }
    int rv = O2D_ERR_NOMEM;
    OtlpTraceReq copy = *req;
    OtlpResourceSpans *rss = o2d_calloc(req->n_resource_spans + 1, sizeof(*rss));
    OtlpResourceSpans **rsp = o2d_calloc(req->n_resource_spans + 1, sizeof(*rsp));
    OtlpScopeSpans *sss = o2d_calloc(n_scopes + 1, sizeof(*sss));
    OtlpScopeSpans **ssp = o2d_calloc(n_scopes + 1, sizeof(*ssp));
    OtlpSpan **spans = o2d_calloc(bt->n + 1, sizeof(*spans));
    if (rss == NULL || rsp == NULL || sss == NULL || ssp == NULL || spans == NULL) {
        goto out;
    }
    size_t i = 0, sc = 0, kept = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        rss[r] = *req->resource_spans[r];
        rss[r].scope_spans = &ssp[sc];
        rsp[r] = &rss[r];
        for (size_t k = 0; k < req->resource_spans[r]->n_scope_spans; k++, sc++) {
            const OtlpScopeSpans *ss = req->resource_spans[r]->scope_spans[k];
            sss[sc] = *ss;
            sss[sc].spans = &spans[kept];
            sss[sc].n_spans = 0;
            ssp[sc] = &sss[sc];
            for (size_t j = 0; j < ss->n_spans; j++, i++) {
                if (!bt->dropped[i]) {
                    spans[kept++] = ss->spans[j];
                    sss[sc].n_spans++;
                }
            }
        }
    }
    copy.resource_spans = rsp;
    rv = lo_inputs_add_msg(in, LO_INPUT_TRACES, &copy.base, seq);
out:
    o2d_free(rss);
    o2d_free(rsp);
    o2d_free(sss);
    o2d_free(ssp);
    o2d_free(spans);
    return rv;
}

static int lc_sampler_on(const struct lo_exporter *d)
{
    return d->cfg->llmobs.map.sampler != NULL && d->cfg->llmobs.map.sampler->enabled;
}

static void count_sampled(struct lo_exporter *d, const struct llmobs_exporter_batch *bt)
{
    uint64_t out[LLMOBS_SAMPLE_RULES] = {0}, in[LLMOBS_SAMPLE_RULES] = {0};
    llmobs_exporter_batch_sampled(bt, out, in);
    for (int r = 0; r < LLMOBS_SAMPLE_RULES; r++) {
        if (out[r] > 0) {
            atomic_fetch_add(&d->sampled_out[r], out[r]);
        }
        if (in[r] > 0) {
            atomic_fetch_add(&d->sampled_in[r], in[r]);
        }
    }
}

/* Classification only: whether a request refused for lack of room had LLM Obs spans. */
static size_t count_llm(const OtlpTraceReq *req)
{
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++) {
                n += llmobs_classify(ss->spans[j]) != LLMOBS_NONE;
            }
        }
    }
    return n;
}

static int submit_traces(struct lo_exporter *d, const OtlpTraceReq *req, int replay)
{
    struct llmobs_exporter_batch *bt = NULL;
    int holds = atomic_load_explicit(&d->buf_holds, memory_order_relaxed);
    struct llmobs_builder *bl = NULL;
    pthread_mutex_lock(&d->bl_mu);
    if (d->n_builders > 0) {
        bl = d->builders[--d->n_builders];
    }
    pthread_mutex_unlock(&d->bl_mu);
    if (bl == NULL && llmobs_builder_new(&bl) != O2D_OK) {
        bl = NULL; /* batch_build makes one for this request */
    }
    struct ecs_snap *snap = ecs_meta_get(d->ecs);
    int rv = llmobs_exporter_batch_build_ecs(bl, req, &d->cfg->llmobs.map, ecs_snap_task(snap),
                                             holds, &bt);
    ecs_snap_put(snap);
    if (bl != NULL) {
        pthread_mutex_lock(&d->bl_mu);
        if (d->n_builders < LO_BUILDERS) {
            d->builders[d->n_builders++] = bl;
            bl = NULL;
        }
        pthread_mutex_unlock(&d->bl_mu);
        llmobs_builder_free(bl);
    }
    if (rv != O2D_OK || bt == NULL) {
        return rv;
    }
    if (!replay) {
        count_sampled(d, bt);
    }
    if (bt->n == 0) { /* every LLM Obs span sampled out: nothing to keep, on disk either */
        llmobs_exporter_batch_free(bt);
        return O2D_OK;
    }
    uint64_t seq = 0;
    if (d->inputs != NULL && !replay) {
        /* on disk before the buffer takes it: acknowledged only once durable */
        rv = bt->n_llm > 0 ? add_kept_msg(d->inputs, req, bt, &seq)
                           : lo_inputs_add_ids(d->inputs, bt->ids, bt->n, &seq);
        if (rv != O2D_OK) {
            llmobs_exporter_batch_free(bt);
            return rv == O2D_ERR_TOO_LARGE ? rv : O2D_ERR_BUSY;
        }
    }
    size_t n_llm = bt->n_llm;
    pthread_mutex_lock(&d->buf_mu);
    rv = llmobs_exporter_batch_add(d->buf, bt, o2d_now_ns());
    struct llmobs_buffer_counters c;
    llmobs_buffer_get_counters(d->buf, &c);
    atomic_store(&d->buf_holds, c.spans_held > 0);
    pthread_mutex_unlock(&d->buf_mu);
    if (d->inputs != NULL && !replay) {
        lo_inputs_taken(d->inputs, seq, o2d_now_ms());
    }
    atomic_fetch_add(&d->spans_seen, n_llm);
    return rv;
}

static size_t count_genai_logs(const OtlpLogsReq *req)
{
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const OtlpResourceLogs *rl = req->resource_logs[r];
        for (size_t k = 0; k < rl->n_scope_logs; k++) {
            const OtlpScopeLogs *sl = rl->scope_logs[k];
            for (size_t j = 0; j < sl->n_log_records; j++) {
                n += llmobs_log_is_genai(sl->log_records[j]) != 0;
            }
        }
    }
    return n;
}

static int submit_logs(struct lo_exporter *d, const OtlpLogsReq *req, int replay)
{
    size_t n = count_genai_logs(req);
    if (n == 0) {
        return O2D_OK;
    }
    uint64_t seq = 0;
    if (d->inputs != NULL && !replay) {
        int prv = lo_inputs_add_msg(d->inputs, LO_INPUT_LOGS, &req->base, &seq);
        if (prv != O2D_OK) {
            return prv == O2D_ERR_TOO_LARGE ? prv : O2D_ERR_BUSY;
        }
    }
    int rv = O2D_OK;
    pthread_mutex_lock(&d->buf_mu);
    int64_t now = o2d_now_ns();
    for (size_t r = 0; r < req->n_resource_logs && rv == O2D_OK; r++) {
        const OtlpResourceLogs *rl = req->resource_logs[r];
        for (size_t k = 0; k < rl->n_scope_logs && rv == O2D_OK; k++) {
            const OtlpScopeLogs *sl = rl->scope_logs[k];
            for (size_t j = 0; j < sl->n_log_records && rv == O2D_OK; j++) {
                if (llmobs_log_is_genai(sl->log_records[j])) {
                    rv = llmobs_buffer_add_log(d->buf, sl->log_records[j], now);
                }
            }
        }
    }
    pthread_mutex_unlock(&d->buf_mu);
    if (d->inputs != NULL && !replay) {
        lo_inputs_taken(d->inputs, seq, o2d_now_ms());
    }
    atomic_fetch_add(&d->logs_seen, n);
    return rv;
}

/* An input an earlier run left on disk, given to the buffer again (lo_start). */
static void replay_input(void *ctx, uint64_t seq, enum lo_input_kind kind,
                         const struct otlp_request *req, const struct llmobs_ids *ids, size_t n_ids)
{
    struct lo_exporter *d = ctx;
    if (kind == LO_INPUT_TRACES) {
        (void)submit_traces(d, req->msg.traces, 1);
    } else if (kind == LO_INPUT_LOGS) {
        (void)submit_logs(d, req->msg.logs, 1);
    } else {
        struct llmobs_span **none = o2d_calloc(n_ids > 0 ? n_ids : 1, sizeof(*none));
        if (none != NULL) {
            pthread_mutex_lock(&d->buf_mu);
            (void)llmobs_buffer_add_spans(d->buf, ids, none, n_ids, o2d_now_ns());
            pthread_mutex_unlock(&d->buf_mu);
            o2d_free(none);
        }
    }
    lo_inputs_taken(d->inputs, seq, o2d_now_ms());
}

/* Refuses only requests that have something for LLM Obs, and only while the queue is full. */
static int lo_admit(struct exporter *e, const struct otlp_request *req)
{
    struct lo_exporter *d = e->ctx;
    if (d->out == NULL) {
        return O2D_ERR_SHUTDOWN;
    }
    /* Its items are made by the trace buffer's tick, for no one request: no tenant holds
     * bytes of this queue (no share to hold), so only a full queue refuses. */
    int rv = dlv_dest_admit_tenant(d->out, 0, req->tenant);
    if (rv != O2D_ERR_BUSY) {
        return rv;
    }
    size_t n = 0;
    if (req->signal == OTLP_SIGNAL_TRACES && req->msg.traces != NULL) {
        n = count_llm(req->msg.traces);
        atomic_fetch_add(&d->spans_refused, n);
        dlv_dest_drop(d->out, DLV_DROP_QUEUE_FULL, n);
    } else if (req->signal == OTLP_SIGNAL_LOGS && req->msg.logs != NULL) {
        n = count_genai_logs(req->msg.logs);
    }
    return n > 0 ? O2D_ERR_BUSY : O2D_OK;
}

static int lo_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    struct lo_exporter *d = e->ctx;
    (void)transport;
    if (d->out == NULL || dlv_dest_stopping(d->out)) {
        return O2D_ERR_SHUTDOWN;
    }
    int rv = O2D_OK;
    if (req->signal == OTLP_SIGNAL_TRACES && req->msg.traces != NULL) {
        rv = submit_traces(d, req->msg.traces, 0);
    } else if (req->signal == OTLP_SIGNAL_LOGS && req->msg.logs != NULL) {
        rv = submit_logs(d, req->msg.logs, 0);
    }
    if (rv != O2D_OK && rv != O2D_ERR_BUSY) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN, "llmobs: request not taken");
        o2d_log_cstr(&l, "signal", otlp_signal_name(req->signal));
        o2d_log_cstr(&l, "reason", o2d_strerror(rv));
        o2d_log_end(&l);
    }
    return rv;
}

static int lo_flush(struct exporter *e, int64_t deadline_ms)
{
    struct lo_exporter *d = e->ctx;
    if (!d->started) {
        return O2D_OK;
    }
    dlv_dest_flush_begin(d->out);
    int rv = dlv_dest_flush_wait(d->out, deadline_ms);
    if (rv != O2D_OK) {
        struct llmobs_buffer_counters c;
        pthread_mutex_lock(&d->buf_mu);
        llmobs_buffer_get_counters(d->buf, &c);
        pthread_mutex_unlock(&d->buf_mu);
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "llmobs: flush deadline passed with spans in the trace buffer");
        o2d_log_uint(&l, "spans_in_trace_buffer", c.spans_held);
        o2d_log_end(&l);
    }
    return rv;
}

static void lo_stop(struct exporter *e)
{
    struct lo_exporter *d = e->ctx;
    if (d->out == NULL) {
        return;
    }
    /* Nothing sends any more: the events still queued and the LLM Obs spans the trace
     * buffer still holds are lost, and counted now so that the owner can report them
     * before destroying the exporter. */
    dlv_dest_stop(d->out);
    if (d->inputs != NULL) {
        return; /* what the buffer holds is on disk: the next start gives it back */
    }
    pthread_mutex_lock(&d->buf_mu);
    llmobs_buffer_poll(d->buf, o2d_now_ns(), 1, count_event, d->out);
    pthread_mutex_unlock(&d->buf_mu);
}

static uint64_t lo_undelivered(const struct exporter *e, struct o2d_logline *l)
{
    const struct lo_exporter *d = e->ctx;
    return d->out != NULL ? dlv_dest_undelivered(d->out, l, "llmobs_events") : 0;
}

static void log_totals(struct lo_exporter *d)
{
    struct llmobs_buffer_counters c;
    llmobs_buffer_get_counters(d->buf, &c);
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "llmobs exporter totals");
    dlv_dest_log_counts(d->out, &l, "");
    o2d_log_uint(&l, "spans_seen", atomic_load(&d->spans_seen));
    o2d_log_uint(&l, "spans_refused", atomic_load(&d->spans_refused));
    o2d_log_uint(&l, "logs_seen", atomic_load(&d->logs_seen));
    o2d_log_uint(&l, "buffer_spans_held", c.spans_held);
    o2d_log_uint(&l, "buffer_settled_by_root", c.settled_by_root);
    o2d_log_uint(&l, "buffer_settled_by_deadline", c.settled_by_deadline);
    o2d_log_uint(&l, "buffer_forced_by_bound", c.forced_by_bound);
    o2d_log_uint(&l, "buffer_logs_joined", c.logs_joined);
    o2d_log_uint(&l, "buffer_logs_unmatched", c.logs_unmatched);
    o2d_log_uint(&l, "buffer_logs_unmatched_late", c.logs_unmatched_late);
    o2d_log_uint(&l, "buffer_logs_unmatched_no_span", c.logs_unmatched_no_span);
    o2d_log_uint(&l, "buffer_held_for_logs", c.held_for_logs);
    o2d_log_uint(&l, "buffer_hold_expired", c.hold_expired);
    o2d_log_end(&l);
}

static void lo_destroy(struct exporter *e)
{
    struct lo_exporter *d = e->ctx;
    lo_stop(e);
    /* A client of our own completes what is still retrying as "shutdown", counted by the
     * delivery layer; a shared one has been freed by its owner already (llmobs_exporter.h). */
    if (d->own_http) {
        http_client_free(d->http);
    }
    d->http = NULL;
    if (d->started) {
        log_totals(d);
    }
    dlv_dest_free(d->out);
    lo_inputs_close(d->inputs);
    llmobs_buffer_free(d->buf);
    for (size_t i = 0; i < d->n_builders; i++) {
        llmobs_builder_free(d->builders[i]);
    }
    pthread_mutex_destroy(&d->bl_mu);
    pthread_mutex_destroy(&d->buf_mu);
    o2d_free(d->pend);
    o2d_free(d);
}

/* The metrics endpoint's view (exporter.h): one output, and the trace buffer, whose bounds
 * are computed as llmobs_exporter_new set them. */
static void lo_metrics(const struct exporter *e, struct exporter_metrics *m)
{
    struct lo_exporter *d = e->ctx;
    m->translated_kind = "llmobs";
    m->translated_spans = atomic_load(&d->spans_seen);
    for (int r = 0; lc_sampler_on(d) && r < LLMOBS_SAMPLE_RULES; r++) {
        m->sampled[m->n_sampled].signal = "llmobs";
        m->sampled[m->n_sampled].rule = llmobs_sample_rule_name((enum llmobs_sample_rule)r);
        m->sampled[m->n_sampled].dropped = atomic_load(&d->sampled_out[r]);
        m->sampled[m->n_sampled++].kept = atomic_load(&d->sampled_in[r]);
    }
    if (d->out != NULL) {
        dlv_dest_metrics(d->out, &m->outputs[m->n_outputs++]);
    }
    const struct datadog_llmobs_config *lc = &d->cfg->llmobs;
    m->has_trace_buffer = 1;
    pthread_mutex_lock(&d->buf_mu);
    llmobs_buffer_get_counters(d->buf, &m->trace_buffer);
    pthread_mutex_unlock(&d->buf_mu);
    m->trace_buffer_capacity_spans =
        lc->buffer_max_spans > 0 ? lc->buffer_max_spans : LO_DEFAULT_BUF_SPANS;
    m->trace_buffer_capacity_bytes =
        lc->buffer_max_bytes > 0 ? lc->buffer_max_bytes : LO_DEFAULT_BUF_BYTES;
}

static const struct exporter_type llmobs_exporter_type = {
    .name = "llmobs",
    .start = lo_start,
    .admit = lo_admit,
    .submit = lo_submit,
    .flush = lo_flush,
    .destroy = lo_destroy,
    .metrics = lo_metrics,
    .stop = lo_stop,
    .undelivered = lo_undelivered,
};

void llmobs_exporter_set_ecs(struct exporter *e, struct ecs_meta *m)
{
    ((struct lo_exporter *)e->ctx)->ecs = m;
}

void llmobs_exporter_observe(struct exporter *e, llmobs_queued_fn queued, dlv_observer_fn fn,
                             void *ctx)
{
    struct lo_exporter *d = e->ctx;
    d->obs_queued = queued;
    d->obs_fn = queued != NULL ? fn : NULL;
    d->obs_ctx = ctx;
}

int llmobs_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                        struct http_client *http)
{
    struct lo_exporter *d = o2d_calloc(1, sizeof(*d));
    if (d == NULL) {
        return O2D_ERR_NOMEM;
    }
    d->base.type = &llmobs_exporter_type;
    d->base.ctx = d;
    d->cfg = cfg;
    d->http = http;
    snprintf(d->site, sizeof(d->site), "%s", cfg->site[0] != '\0' ? cfg->site : "datadoghq.com");
    char base[DATADOG_URL_MAX];
    snprintf(d->wire.tracer_version, sizeof(d->wire.tracer_version), "%s", LLMOBS_TRACER_VERSION);
    if (cfg->agent_endpoint[0] != '\0') {
        /* Agent mode: the Agent's EVP proxy forwards to the intake named by the subdomain
         * header and adds its own key (dd-trace-py ddtrace/internal/evp_proxy/constants.py,
         * ddtrace/llmobs/_writer.py). */
        datadog_base_url(cfg->agent_endpoint, "", "", base, sizeof(base));
        snprintf(d->url, sizeof(d->url), "%s/evp_proxy/v2/api/v2/llmobs", base);
        snprintf(d->wire.key_header, sizeof(d->wire.key_header),
                 "X-Datadog-EVP-Subdomain: llmobs-intake");
    } else {
        llmobs_exporter_intake_base(cfg, base, sizeof(base));
        snprintf(d->url, sizeof(d->url), "%s/api/v2/llmobs", base);
        snprintf(d->wire.key_header, sizeof(d->wire.key_header), "DD-API-KEY: %s", cfg->api_key);
    }
    /* A quarter of the Datadog queue's budget, and room for two full bodies at least. */
    d->queue_max = cfg->queue_max_bytes > 0 ? cfg->queue_max_bytes / 4 : LO_DEFAULT_QUEUE_BYTES;
    if (d->queue_max < LO_MIN_QUEUE_BYTES) {
        d->queue_max = LO_MIN_QUEUE_BYTES;
    }
    pthread_mutex_init(&d->buf_mu, NULL);
    pthread_mutex_init(&d->bl_mu, NULL);
    const struct datadog_llmobs_config *lc = &cfg->llmobs;
    struct llmobs_buffer_config bc = {
        .deadline_ns =
            (lc->buffer_timeout_ms > 0 ? lc->buffer_timeout_ms : LO_DEFAULT_BUF_TIMEOUT) *
            1000000LL,
        .max_spans = lc->buffer_max_spans > 0 ? lc->buffer_max_spans : LO_DEFAULT_BUF_SPANS,
        .max_bytes = lc->buffer_max_bytes > 0 ? lc->buffer_max_bytes : LO_DEFAULT_BUF_BYTES,
        .max_event_size = LLMOBS_MAX_EVENT_BYTES,
        .log_window_ns = lc->log_join_window_ms * 1000000LL,
    };
    int rv = llmobs_buffer_new(&d->buf, &bc);
    if (rv != O2D_OK) {
        lo_destroy(&d->base);
        return rv;
    }
    *out = &d->base;
    return O2D_OK;
}
