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
 * One sender thread polls the buffer every 100 ms (every event at flush), copies the events
 * it releases onto a queue, cuts them into JSON arrays of envelopes under the intake's 5 MiB
 * limit (the pure half, llmobs_exporter_int.h) and hands the bodies to the shared HTTP client,
 * which retries. The queue's byte budget covers events waiting and bodies in flight: when it
 * is spent, the buffer keeps its events (it is bounded on its own) and submit answers "retry
 * later". Which span becomes which event, and when it is ready, is translate/llmobs*.c's
 * business.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datadog.h"
#include "http_client.h"
#include "llmobs.h"
#include "llmobs_buffer.h"
#include "llmobs_exporter.h"
#include "llmobs_exporter_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "o2d_log.h"
#include "o2d_time.h"

#define LO_TRACER_VERSION "otel2dd/" O2D_VERSION
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
/* The pure half: envelopes and bodies.                                                     */

static const char envelope_head[] = "{\"_dd.stage\":\"raw\",\"_dd.tracer_version\":";
static const char envelope_mid[] = ",\"event_type\":\"span\",\"spans\":[";
static const char envelope_tail[] = "]}";

size_t llmobs_exporter_envelope_size(const char *tracer_version, size_t event_len)
{
    /* The version is a plain ASCII literal: quoted, it takes two more bytes. One byte for
     * the "," or "]" that follows the envelope in the body. */
    return sizeof(envelope_head) - 1 + strlen(tracer_version) + 2 + sizeof(envelope_mid) - 1 +
           event_len + sizeof(envelope_tail) - 1 + 1;
}

int llmobs_exporter_append_envelope(struct o2d_buf *out, const char *tracer_version,
                                    const uint8_t *ev, size_t len)
{
    size_t before = out->len;
    int rv = o2d_buf_append(out, envelope_head, sizeof(envelope_head) - 1);
    if (rv == O2D_OK) {
        rv = o2d_json_append_string(out, tracer_version, strlen(tracer_version));
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append(out, envelope_mid, sizeof(envelope_mid) - 1);
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append(out, ev, len);
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append(out, envelope_tail, sizeof(envelope_tail) - 1);
    }
    if (rv != O2D_OK) {
        out->len = before;
    }
    return rv;
}

/* The size of the body that starts with events[i] (what the loop below will put in it). */
static size_t body_size(const char *tracer_version, struct llmobs_exporter_event *const *events,
                        size_t i, size_t n, size_t max_body)
{
    size_t size = 1;
    for (; i < n; i++) {
        size_t sz = llmobs_exporter_envelope_size(tracer_version, events[i]->len);
        if (sz > max_body - 1) {
            continue;
        }
        if (size + sz > max_body) {
            break;
        }
        size += sz;
    }
    return size;
}

int llmobs_exporter_build_bodies(const char *tracer_version,
                                 struct llmobs_exporter_event *const *events, size_t n,
                                 size_t max_body, llmobs_exporter_body_fn emit, void *ctx,
                                 size_t *too_large, size_t *failed)
{
    struct o2d_buf body;
    o2d_buf_init(&body, max_body);
    size_t in_body = 0; /* events in `body` */
    size_t size = 1;    /* the body's size once closed: "[" + envelopes and their "," / "]" */
    int rv = O2D_OK;
    size_t i = 0;
    for (; i < n; i++) {
        size_t sz = llmobs_exporter_envelope_size(tracer_version, events[i]->len);
        if (sz > max_body - 1) {
            (*too_large)++;
            continue;
        }
        if (in_body > 0 && size + sz > max_body) {
            rv = o2d_buf_append_byte(&body, ']');
            if (rv != O2D_OK) {
                break;
            }
            size_t len;
            uint8_t *b = o2d_buf_take(&body, &len);
            emit(ctx, b, len, in_body);
            in_body = 0;
            size = 1;
        }
        if (in_body == 0) {
            /* the whole body at once: grown from nothing, a 4 MB body was copied and
             * faulted in a dozen times (a failure here shows in the append below) */
            (void)o2d_buf_reserve(&body, body_size(tracer_version, events, i, n, max_body));
        }
        rv = o2d_buf_append_byte(&body, in_body == 0 ? '[' : ',');
        if (rv == O2D_OK) {
            rv = llmobs_exporter_append_envelope(&body, tracer_version, events[i]->json,
                                                 events[i]->len);
        }
        if (rv != O2D_OK) {
            break;
        }
        in_body++;
        size += sz;
    }
    if (rv == O2D_OK && in_body > 0) {
        rv = o2d_buf_append_byte(&body, ']');
        if (rv == O2D_OK) {
            size_t len;
            uint8_t *b = o2d_buf_take(&body, &len);
            emit(ctx, b, len, in_body);
            in_body = 0;
        }
    }
    if (rv != O2D_OK) {
        /* The body being built, and every event after it, are lost. */
        *failed += in_body + (i < n ? n - i : 0);
    }
    o2d_buf_cleanup(&body);
    return rv;
}

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
    o2d_free(bt->llm);
    o2d_free(bt->traces);
    o2d_free(bt);
}

size_t llmobs_exporter_batch_llm_spans(const struct llmobs_exporter_batch *bt)
{
    return bt != NULL ? bt->n_llm : 0;
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
    if (bt->n_llm == 0 && !skeletons) {
        rv = O2D_OK;
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
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
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
                                            (enum llmobs_kind)kinds[i], map, llm);
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
    llmobs_builder_free(own);
    o2d_free(kinds);
    llmobs_exporter_batch_free(bt);
    return rv;
}

int llmobs_exporter_batch_add(struct llmobs_buffer *b, struct llmobs_exporter_batch *bt,
                              int64_t now_ns)
{
    if (bt == NULL) {
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

struct lo_exporter {
    struct exporter base;
    const struct datadog_config *cfg;
    char site[128];
    char url[DATADOG_URL_MAX + 32];
    char key_header[300]; /* "DD-API-KEY: <key>": never logged; in agent mode the EVP
                             proxy's subdomain header instead */
    struct http_client *http;
    int own_http;
    size_t queue_max;
    int64_t max_elapsed_ms;
    /* Rejections are logged at most once a minute. Touched only by the HTTP client's thread
     * (the completion callbacks). */
    struct http_rejection_log rejections;

    /* The trace buffer is single-threaded: receivers add, the sender polls. Lock order:
     * buf_mu before mu. */
    pthread_mutex_t buf_mu;
    struct llmobs_buffer *buf;
    atomic_int buf_holds; /* hint, read without buf_mu: the buffer holds LLM Obs spans */

    /* Builders (buffers and jansson arena of span builds) reused across requests: made per
     * request, their allocation and first growth cost as much as a build. */
    pthread_mutex_t bl_mu;
    struct llmobs_builder *builders[LO_BUILDERS];
    size_t n_builders;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    struct llmobs_exporter_event *head;
    struct llmobs_exporter_event *tail;
    size_t queue_bytes; /* events waiting + bodies in flight */
    size_t queued_events;
    int inflight;
    size_t inflight_events;
    uint64_t buffer_held; /* spans_held after the last poll */
    int poll_busy;        /* the last poll left events for lack of room */
    uint64_t polled_gen;  /* the flush request the last forced poll served */
    int64_t next_poll_ms;
    uint64_t flush_req;
    uint64_t flush_done;
    int stop;
    pthread_t sender;
    int sender_started;
    int started;
    atomic_int stopping;

    atomic_uint_fast64_t spans_seen;
    atomic_uint_fast64_t spans_refused;
    atomic_uint_fast64_t logs_seen;
    atomic_uint_fast64_t events_queued;
    atomic_uint_fast64_t events_sent;
    atomic_uint_fast64_t events_retried;
    atomic_uint_fast64_t events_dropped[LLMOBS_DROP_N];
    atomic_uint_fast64_t bodies_sent;
    atomic_uint_fast64_t bytes_sent;
};

struct lo_sent {
    struct lo_exporter *d;
    size_t events;
    size_t body_len;
};

static const char *const drop_reason_names[LLMOBS_DROP_N] = {
    [LLMOBS_DROP_REJECTED_4XX] = "rejected_4xx",
    [LLMOBS_DROP_RETRIES_EXHAUSTED] = "retries_exhausted",
    [LLMOBS_DROP_TOO_LARGE] = "too_large",
    [LLMOBS_DROP_SHUTDOWN] = "shutdown",
};

const char *llmobs_exporter_drop_reason_name(int reason)
{
    if (reason < 0 || reason >= LLMOBS_DROP_N) {
        return "unknown";
    }
    return drop_reason_names[reason];
}

void llmobs_exporter_intake_base(const struct datadog_config *cfg, char *out, size_t n)
{
    datadog_base_url(cfg->llmobs.endpoint, "llmobs-intake.", cfg->site, out, n);
}

static void drop(struct lo_exporter *d, int reason, size_t events)
{
    atomic_fetch_add(&d->events_dropped[reason], events);
}

static void on_done(void *ctx, const struct http_result *r)
{
    struct lo_sent *s = ctx;
    struct lo_exporter *d = s->d;
    if (r->attempts > 1) {
        atomic_fetch_add(&d->events_retried, s->events * (size_t)(r->attempts - 1));
    }
    switch (r->outcome) {
    case HTTP_DONE_OK:
        atomic_fetch_add(&d->events_sent, s->events);
        atomic_fetch_add(&d->bodies_sent, 1);
        atomic_fetch_add(&d->bytes_sent, s->body_len);
        break;
    case HTTP_DONE_REJECTED:
        drop(d, LLMOBS_DROP_REJECTED_4XX, s->events);
        http_log_rejection(&d->rejections, d->site, "llmobs", "events", s->events, r);
        break;
    case HTTP_DONE_EXHAUSTED:
        drop(d, LLMOBS_DROP_RETRIES_EXHAUSTED, s->events);
        http_log_gave_up("llmobs", "events", s->events, r);
        break;
    case HTTP_DONE_SHUTDOWN:
        drop(d, LLMOBS_DROP_SHUTDOWN, s->events);
        break;
    }
    pthread_mutex_lock(&d->mu);
    d->queue_bytes -= s->body_len;
    d->inflight--;
    d->inflight_events -= s->events;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    o2d_free(s);
}

/* One body to the HTTP client; its completion counts it. */
static void emit_body(void *ctx, uint8_t *body, size_t len, size_t events)
{
    struct lo_exporter *d = ctx;
    struct lo_sent *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        o2d_free(body);
        drop(d, LLMOBS_DROP_RETRIES_EXHAUSTED, events);
        o2d_logf(O2D_LOG_ERROR, "out of memory: an llmobs payload was not sent");
        return;
    }
    s->d = d;
    s->events = events;
    s->body_len = len;
    pthread_mutex_lock(&d->mu);
    d->queue_bytes += len;
    d->inflight++;
    d->inflight_events += events;
    pthread_mutex_unlock(&d->mu);
    const char *headers[] = {
        d->key_header,
        "Content-Type: application/json",
    };
    struct http_request q = {
        .method = "POST",
        .url = d->url,
        .headers = headers,
        .n_headers = sizeof(headers) / sizeof(headers[0]),
        .body = body,
        .body_len = len,
        .timeout_ms = LO_ATTEMPT_TIMEOUT_MS,
        .max_elapsed_ms = d->max_elapsed_ms,
        .name = "llmobs",
        .done = on_done,
        .ctx = s,
    };
    int rv = http_client_submit(d->http, &q);
    if (rv != O2D_OK) {
        struct http_result r = {.outcome = HTTP_DONE_SHUTDOWN, .status = rv, .error = ""};
        on_done(s, &r);
    }
}

/* The events one poll releases, put on the queue in one step after it (a poll releases
 * thousands: two lock round trips each showed in the profile). */
struct poll_batch {
    size_t room; /* the queue's budget left when the poll began */
    struct llmobs_exporter_event *head, *tail;
    size_t n, bytes;
};

/* The buffer hands over one ready event (under buf_mu): copy it into the batch, or say
 * "busy" so that it stays in the buffer while the queue is over its budget. */
static int emit_event(void *ctx, const uint8_t *json, size_t len)
{
    struct poll_batch *pb = ctx;
    /* Full as the queue was when the poll began plus what it took: only this thread adds to
     * the queue, so it can only have more room by now. */
    if (pb->bytes >= pb->room) {
        return O2D_ERR_BUSY;
    }
    struct llmobs_exporter_event *ev = o2d_malloc(sizeof(*ev) + len);
    if (ev == NULL) {
        return O2D_ERR_NOMEM;
    }
    ev->next = NULL;
    ev->len = len;
    memcpy(ev->json, json, len);
    if (pb->tail != NULL) {
        pb->tail->next = ev;
    } else {
        pb->head = ev;
    }
    pb->tail = ev;
    pb->n++;
    pb->bytes += len;
    return O2D_OK;
}

/* At shutdown: what the buffer still holds is counted as lost. */
static int count_event(void *ctx, const uint8_t *json, size_t len)
{
    (void)json;
    (void)len;
    drop(ctx, LLMOBS_DROP_SHUTDOWN, 1);
    return O2D_OK;
}

/* Polls the buffer (under no other lock); returns the LLM Obs spans it still holds. */
static uint64_t poll_buffer(struct lo_exporter *d, int force, int *busy)
{
    struct llmobs_buffer_counters c;
    struct poll_batch pb = {.head = NULL};
    pthread_mutex_lock(&d->mu);
    pb.room = d->queue_bytes < d->queue_max ? d->queue_max - d->queue_bytes : 0;
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_lock(&d->buf_mu);
    int rv = llmobs_buffer_poll(d->buf, o2d_now_ns(), force, emit_event, &pb);
    llmobs_buffer_get_counters(d->buf, &c);
    atomic_store(&d->buf_holds, c.spans_held > 0);
    pthread_mutex_unlock(&d->buf_mu);
    if (pb.n > 0) {
        pthread_mutex_lock(&d->mu);
        if (d->tail != NULL) {
            d->tail->next = pb.head;
        } else {
            d->head = pb.head;
        }
        d->tail = pb.tail;
        d->queue_bytes += pb.bytes;
        d->queued_events += pb.n;
        pthread_mutex_unlock(&d->mu);
        atomic_fetch_add(&d->events_queued, pb.n);
    }
    *busy = rv == O2D_ERR_BUSY;
    if (rv != O2D_OK && rv != O2D_ERR_BUSY) {
        o2d_logf(O2D_LOG_ERROR, "llmobs: cannot take events from the trace buffer: %s",
                 o2d_strerror(rv));
    }
    return c.spans_held;
}

/* Sends events taken off the queue (under no lock) and frees them. */
static void send_events(struct lo_exporter *d, struct llmobs_exporter_event *list, size_t n,
                        size_t bytes)
{
    struct llmobs_exporter_event *stack[64] = {0};
    struct llmobs_exporter_event **evs = n <= 64 ? stack : o2d_malloc(n * sizeof(*evs));
    size_t too_large = 0;
    size_t failed = 0;
    if (evs == NULL) {
        failed = n;
    } else {
        size_t i = 0;
        for (struct llmobs_exporter_event *ev = list; ev != NULL; ev = ev->next) {
            evs[i++] = ev;
        }
        llmobs_exporter_build_bodies(LO_TRACER_VERSION, evs, n, LLMOBS_MAX_BODY_BYTES, emit_body, d,
                                     &too_large, &failed);
        if (evs != stack) {
            o2d_free(evs);
        }
    }
    if (too_large > 0) {
        drop(d, LLMOBS_DROP_TOO_LARGE, too_large);
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_ERROR, "llmobs event over the intake's size limit: dropped");
        o2d_log_uint(&l, "events", too_large);
        o2d_log_uint(&l, "limit_bytes", LLMOBS_MAX_BODY_BYTES);
        o2d_log_end(&l);
    }
    if (failed > 0) {
        drop(d, LLMOBS_DROP_RETRIES_EXHAUSTED, failed);
        o2d_logf(O2D_LOG_ERROR, "out of memory building an llmobs payload: %zu events lost",
                 failed);
    }
    while (list != NULL) {
        struct llmobs_exporter_event *nx = list->next;
        o2d_free(list);
        list = nx;
    }
    pthread_mutex_lock(&d->mu);
    d->queue_bytes -= bytes;
    pthread_mutex_unlock(&d->mu);
}

static void *sender_main(void *arg)
{
    struct lo_exporter *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        int64_t now = o2d_now_ms();
        int flushing = d->flush_done != d->flush_req;
        /* A flush polls at once, and again as soon as the queue has room for what a poll
         * could not take. */
        int poll_now = now >= d->next_poll_ms ||
                       (flushing && (d->polled_gen != d->flush_req ||
                                     (d->poll_busy && d->queue_bytes < d->queue_max)));
        if (poll_now) {
            uint64_t gen = d->flush_req;
            d->next_poll_ms = now + LO_POLL_INTERVAL_MS;
            pthread_mutex_unlock(&d->mu);
            int busy = 0;
            uint64_t held = poll_buffer(d, flushing, &busy);
            pthread_mutex_lock(&d->mu);
            d->buffer_held = held;
            d->poll_busy = busy;
            if (flushing) {
                d->polled_gen = gen;
            }
        }
        if (d->head != NULL && d->inflight < LO_MAX_INFLIGHT) {
            struct llmobs_exporter_event *list = d->head;
            struct llmobs_exporter_event *last = NULL;
            size_t n = 0;
            size_t bytes = 0;
            size_t body = 1;
            for (struct llmobs_exporter_event *ev = d->head; ev != NULL; ev = ev->next) {
                size_t sz = llmobs_exporter_envelope_size(LO_TRACER_VERSION, ev->len);
                if (n > 0 && body + sz > LLMOBS_MAX_BODY_BYTES) {
                    break;
                }
                n++;
                bytes += ev->len;
                body += sz;
                last = ev;
            }
            d->head = last->next;
            if (d->head == NULL) {
                d->tail = NULL;
            }
            last->next = NULL;
            d->queued_events -= n;
            pthread_mutex_unlock(&d->mu);
            send_events(d, list, n, bytes);
            pthread_mutex_lock(&d->mu);
            continue;
        }
        if (flushing && d->head == NULL && d->buffer_held == 0 && d->polled_gen == d->flush_req) {
            d->flush_done = d->flush_req;
            pthread_cond_broadcast(&d->cond);
            continue;
        }
        if (poll_now) {
            continue; /* what the poll released may be sendable at once */
        }
        struct timespec ts;
        ts = o2d_timespec_from_ms(d->next_poll_ms);
        pthread_cond_timedwait(&d->cond, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

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
    d->next_poll_ms = o2d_now_ms() + LO_POLL_INTERVAL_MS;
    if (pthread_create(&d->sender, NULL, sender_main, d) != 0) {
        return O2D_ERR_SYSTEM;
    }
    d->sender_started = 1;
    d->started = 1;
    const struct datadog_llmobs_config *lc = &d->cfg->llmobs;
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "llmobs exporter started");
    o2d_log_cstr(&l, "site", d->site);
    o2d_log_cstr(&l, "intake", d->url);
    o2d_log_cstr(&l, "ml_app", lc->ml_app[0] != '\0' ? lc->ml_app : "(service.name)");
    o2d_log_uint(&l, "queue_max_bytes", d->queue_max);
    o2d_log_int(&l, "trace_buffer_timeout_ms", lc->buffer_timeout_ms);
    o2d_log_end(&l);
    return O2D_OK;
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

static int queue_full(struct lo_exporter *d)
{
    pthread_mutex_lock(&d->mu);
    int full = d->queue_bytes >= d->queue_max;
    pthread_mutex_unlock(&d->mu);
    return full;
}

static int submit_traces(struct lo_exporter *d, const OtlpTraceReq *req)
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
    int rv = llmobs_exporter_batch_build_with(bl, req, &d->cfg->llmobs.map, holds, &bt);
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
    size_t n_llm = bt->n_llm;
    pthread_mutex_lock(&d->buf_mu);
    rv = llmobs_exporter_batch_add(d->buf, bt, o2d_now_ns());
    struct llmobs_buffer_counters c;
    llmobs_buffer_get_counters(d->buf, &c);
    atomic_store(&d->buf_holds, c.spans_held > 0);
    pthread_mutex_unlock(&d->buf_mu);
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

static int submit_logs(struct lo_exporter *d, const OtlpLogsReq *req)
{
    size_t n = count_genai_logs(req);
    if (n == 0) {
        return O2D_OK;
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
    atomic_fetch_add(&d->logs_seen, n);
    return rv;
}

/* Refuses only requests that have something for LLM Obs, and only while the queue is full. */
static int lo_admit(struct exporter *e, const struct otlp_request *req)
{
    struct lo_exporter *d = e->ctx;
    if (atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
        return O2D_ERR_SHUTDOWN;
    }
    if (!queue_full(d)) {
        return O2D_OK;
    }
    size_t n = 0;
    if (req->signal == OTLP_SIGNAL_TRACES && req->msg.traces != NULL) {
        n = count_llm(req->msg.traces);
        atomic_fetch_add(&d->spans_refused, n);
    } else if (req->signal == OTLP_SIGNAL_LOGS && req->msg.logs != NULL) {
        n = count_genai_logs(req->msg.logs);
    }
    return n > 0 ? O2D_ERR_BUSY : O2D_OK;
}

static int lo_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    struct lo_exporter *d = e->ctx;
    (void)transport;
    if (atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
        return O2D_ERR_SHUTDOWN;
    }
    int rv = O2D_OK;
    if (req->signal == OTLP_SIGNAL_TRACES && req->msg.traces != NULL) {
        rv = submit_traces(d, req->msg.traces);
    } else if (req->signal == OTLP_SIGNAL_LOGS && req->msg.logs != NULL) {
        rv = submit_logs(d, req->msg.logs);
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
    if (!d->sender_started) {
        return O2D_OK;
    }
    struct timespec ts;
    ts = o2d_timespec_from_ms(deadline_ms);
    pthread_mutex_lock(&d->mu);
    uint64_t gen = ++d->flush_req;
    pthread_cond_broadcast(&d->cond);
    int done;
    for (;;) {
        done = d->flush_done >= gen && d->inflight == 0;
        if (done || o2d_now_ms() >= deadline_ms) {
            break;
        }
        pthread_cond_timedwait(&d->cond, &d->mu, &ts);
    }
    size_t queued = d->queued_events;
    size_t inflight_events = d->inflight_events;
    uint64_t held = d->buffer_held;
    int inflight = d->inflight;
    pthread_mutex_unlock(&d->mu);
    if (!done) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "llmobs: flush deadline passed before everything was delivered");
        o2d_log_uint(&l, "spans_in_trace_buffer", held);
        o2d_log_uint(&l, "events_queued", queued);
        o2d_log_uint(&l, "events_in_flight", inflight_events);
        o2d_log_int(&l, "requests_in_flight", inflight);
        o2d_log_end(&l);
        return O2D_ERR_TIMEOUT;
    }
    return O2D_OK;
}

void llmobs_exporter_counters(const struct exporter *e, struct llmobs_exporter_counters *out)
{
    struct lo_exporter *d = e->ctx;
    memset(out, 0, sizeof(*out));
    out->spans_seen = atomic_load(&d->spans_seen);
    out->spans_refused = atomic_load(&d->spans_refused);
    out->logs_seen = atomic_load(&d->logs_seen);
    out->events_queued = atomic_load(&d->events_queued);
    out->events_sent = atomic_load(&d->events_sent);
    out->events_retried = atomic_load(&d->events_retried);
    for (int i = 0; i < LLMOBS_DROP_N; i++) {
        out->events_dropped[i] = atomic_load(&d->events_dropped[i]);
    }
    out->bodies_sent = atomic_load(&d->bodies_sent);
    out->bytes_sent = atomic_load(&d->bytes_sent);
    if (d->buf != NULL) {
        pthread_mutex_lock(&d->buf_mu);
        llmobs_buffer_get_counters(d->buf, &out->buffer);
        pthread_mutex_unlock(&d->buf_mu);
    }
}

static void log_totals(const struct exporter *e)
{
    struct llmobs_exporter_counters c;
    llmobs_exporter_counters(e, &c);
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "llmobs exporter totals");
    o2d_log_uint(&l, "spans_seen", c.spans_seen);
    o2d_log_uint(&l, "spans_refused", c.spans_refused);
    o2d_log_uint(&l, "logs_seen", c.logs_seen);
    o2d_log_uint(&l, "events_queued", c.events_queued);
    o2d_log_uint(&l, "events_sent", c.events_sent);
    o2d_log_uint(&l, "events_retried", c.events_retried);
    for (int i = 0; i < LLMOBS_DROP_N; i++) {
        char key[64];
        snprintf(key, sizeof(key), "events_dropped_%s", drop_reason_names[i]);
        o2d_log_uint(&l, key, c.events_dropped[i]);
    }
    o2d_log_uint(&l, "bodies_sent", c.bodies_sent);
    o2d_log_uint(&l, "bytes_sent", c.bytes_sent);
    o2d_log_uint(&l, "buffer_spans_held", c.buffer.spans_held);
    o2d_log_uint(&l, "buffer_settled_by_root", c.buffer.settled_by_root);
    o2d_log_uint(&l, "buffer_settled_by_deadline", c.buffer.settled_by_deadline);
    o2d_log_uint(&l, "buffer_forced_by_bound", c.buffer.forced_by_bound);
    o2d_log_uint(&l, "buffer_logs_joined", c.buffer.logs_joined);
    o2d_log_uint(&l, "buffer_logs_unmatched", c.buffer.logs_unmatched);
    o2d_log_end(&l);
}

void llmobs_exporter_stop(struct exporter *e)
{
    struct lo_exporter *d = e->ctx;
    atomic_store(&d->stopping, 1);
    if (d->sender_started) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->sender, NULL);
        d->sender_started = 0;
    }
    /* Nothing sends any more: the events still queued and the LLM Obs spans the trace
     * buffer still holds are lost, and counted now so that the owner can report them
     * before destroying the exporter. */
    pthread_mutex_lock(&d->mu);
    struct llmobs_exporter_event *list = d->head;
    d->head = d->tail = NULL;
    d->queued_events = 0;
    pthread_mutex_unlock(&d->mu);
    size_t left = 0;
    size_t bytes = 0;
    while (list != NULL) {
        struct llmobs_exporter_event *ev = list;
        list = ev->next;
        left++;
        bytes += ev->len;
        o2d_free(ev);
    }
    pthread_mutex_lock(&d->mu);
    d->queue_bytes -= bytes;
    pthread_mutex_unlock(&d->mu);
    if (left > 0) {
        drop(d, LLMOBS_DROP_SHUTDOWN, left);
    }
    if (d->buf != NULL) {
        pthread_mutex_lock(&d->buf_mu);
        llmobs_buffer_poll(d->buf, o2d_now_ns(), 1, count_event, d);
        pthread_mutex_unlock(&d->buf_mu);
    }
}

static void lo_destroy(struct exporter *e)
{
    struct lo_exporter *d = e->ctx;
    llmobs_exporter_stop(e);
    /* A client of our own completes what is still retrying as "shutdown", counted by
     * on_done; a shared one has been freed by its owner already (llmobs_exporter.h). */
    if (d->own_http) {
        http_client_free(d->http);
    }
    d->http = NULL;
    if (d->started) {
        log_totals(e);
    }
    llmobs_buffer_free(d->buf);
    for (size_t i = 0; i < d->n_builders; i++) {
        llmobs_builder_free(d->builders[i]);
    }
    pthread_mutex_destroy(&d->bl_mu);
    pthread_mutex_destroy(&d->buf_mu);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cond);
    o2d_free(d);
}

/* The metrics endpoint's view (exporter.h): one output, and the trace buffer, whose bounds
 * are computed as llmobs_exporter_new set them. */
static void lo_metrics(const struct exporter *e, struct exporter_metrics *m)
{
    struct lo_exporter *d = e->ctx;
    struct llmobs_exporter_counters c;
    llmobs_exporter_counters(e, &c);
    m->translated_kind = "llmobs";
    m->translated_spans = c.spans_seen;

    struct exporter_output_metrics *o = &m->outputs[m->n_outputs++];
    o->name = "llmobs";
    o->sent_items = c.events_sent;
    o->sent_payloads = c.bodies_sent;
    o->sent_bytes = c.bytes_sent;
    o->retried_items = c.events_retried;
    for (int i = 0; i < LLMOBS_DROP_N && o->n_drops < EXPORTER_DROP_REASONS_MAX; i++) {
        o->drops[o->n_drops].reason = drop_reason_names[i];
        o->drops[o->n_drops++].items = c.events_dropped[i];
    }
    o->has_queue = 1;
    pthread_mutex_lock(&d->mu);
    o->queue_items = d->queued_events + d->inflight_events;
    o->queue_bytes = d->queue_bytes;
    pthread_mutex_unlock(&d->mu);
    o->queue_capacity_bytes = d->queue_max;

    const struct datadog_llmobs_config *lc = &d->cfg->llmobs;
    m->has_trace_buffer = 1;
    m->trace_buffer = c.buffer;
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
};

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
    if (cfg->agent_endpoint[0] != '\0') {
        /* Agent mode: the Agent's EVP proxy forwards to the intake named by the subdomain
         * header and adds its own key (dd-trace-py ddtrace/internal/evp_proxy/constants.py,
         * ddtrace/llmobs/_writer.py). */
        datadog_base_url(cfg->agent_endpoint, "", "", base, sizeof(base));
        snprintf(d->url, sizeof(d->url), "%s/evp_proxy/v2/api/v2/llmobs", base);
        snprintf(d->key_header, sizeof(d->key_header), "X-Datadog-EVP-Subdomain: llmobs-intake");
    } else {
        llmobs_exporter_intake_base(cfg, base, sizeof(base));
        snprintf(d->url, sizeof(d->url), "%s/api/v2/llmobs", base);
        snprintf(d->key_header, sizeof(d->key_header), "DD-API-KEY: %s", cfg->api_key);
    }
    /* A quarter of the Datadog queue's budget, and room for two full bodies at least. */
    d->queue_max = cfg->queue_max_bytes > 0 ? cfg->queue_max_bytes / 4 : LO_DEFAULT_QUEUE_BYTES;
    if (d->queue_max < LO_MIN_QUEUE_BYTES) {
        d->queue_max = LO_MIN_QUEUE_BYTES;
    }
    d->max_elapsed_ms = cfg->max_elapsed_ms > 0 ? cfg->max_elapsed_ms : LO_DEFAULT_ELAPSED_MS;
    pthread_mutex_init(&d->buf_mu, NULL);
    pthread_mutex_init(&d->bl_mu, NULL);
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    const struct datadog_llmobs_config *lc = &cfg->llmobs;
    struct llmobs_buffer_config bc = {
        .deadline_ns =
            (lc->buffer_timeout_ms > 0 ? lc->buffer_timeout_ms : LO_DEFAULT_BUF_TIMEOUT) *
            1000000LL,
        .max_spans = lc->buffer_max_spans > 0 ? lc->buffer_max_spans : LO_DEFAULT_BUF_SPANS,
        .max_bytes = lc->buffer_max_bytes > 0 ? lc->buffer_max_bytes : LO_DEFAULT_BUF_BYTES,
        .max_event_size = LLMOBS_MAX_EVENT_BYTES,
    };
    int rv = llmobs_buffer_new(&d->buf, &bc);
    if (rv != O2D_OK) {
        lo_destroy(&d->base);
        return rv;
    }
    *out = &d->base;
    return O2D_OK;
}
