/*
 * preview.h: the local preview (extensions.preview, issue 12): a store of the most recent
 * traces, bounded in bytes, and the pages and JSON APIs that show, for each span, the OTLP
 * span as received, the Datadog APM span and the LLM Obs event it becomes, what happened to
 * each attribute, and its export state.
 *
 * The hot path pays for the store only: preview_capture() copies each trace's spans, as
 * protobuf, out of the request (the pipeline calls it only when the preview is on: a NULL
 * check otherwise). Translation for display happens when a page asks, with the same pure
 * translators and configuration the exporters use, so that what is shown is what is, or
 * would be, sent. The export state comes from the delivery layer's observers
 * (preview_observe), which touch only atomics.
 */
#ifndef O2D_PREVIEW_H
#define O2D_PREVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "delivery.h"
#include "o2d_buf.h"
#include "otlp.h"

struct preview;

/* Borrows cfg (the effective configuration; it outlives the preview). Serves nothing yet. */
int preview_new(struct preview **out, const struct o2d_config *cfg);
/* Stops the server if started and frees everything; NULL is a no-op. */
void preview_free(struct preview *pv);

/* Keeps the spans of a traces request and the gen_ai log records of a logs request (their
 * trace must be held already). Never blocks: when the store is busy the request is skipped
 * and counted. Borrows req for the call. */
void preview_capture(struct preview *pv, const struct otlp_request *req);

/* A dlv_observer_fn: ctx is the struct preview. Lock-free. Events of the traces destination
 * are kept by ingest request; those of the llmobs destination by item id, for the events
 * preview_llmobs_queued told of. */
void preview_observe(void *ctx, const struct dlv_event *ev);
/* An llmobs_queued_fn (llmobs_exporter.h): the LLM Obs event of span (trace_id, span_id) was
 * queued as item item_id. Lock-free; the oldest such states are forgotten past PV_LLM_SLOTS. */
void preview_llmobs_queued(void *ctx, uint64_t item_id, const uint8_t trace_id[16],
                           uint64_t span_id);

/* The status page's view of the exporters: appends one JSON object (the pipeline's queue and
 * counter snapshots). Called on the preview server's thread. */
typedef int (*preview_status_fn)(void *ctx, struct o2d_buf *out);
void preview_set_status(struct preview *pv, preview_status_fn fn, void *ctx);

/* Binds cfg's extensions.preview.endpoint and starts serving; logs "listening". */
int preview_start(struct preview *pv, char *err, size_t errlen);
uint16_t preview_port(const struct preview *pv);
/* Stops serving (idempotent; NULL is a no-op): after it no page reads the status source. */
void preview_stop(struct preview *pv);

/* What the store holds, for tests and the status page. */
struct preview_stats {
    uint64_t traces;         /* held now */
    uint64_t bytes;          /* held now, bookkeeping included */
    uint64_t max_bytes;      /* the bound */
    uint64_t spans_captured; /* since start */
    uint64_t skipped_busy;   /* requests not kept: the store was busy */
    uint64_t skipped_large;  /* trace pieces not kept: larger than the whole bound */
    uint64_t evicted_traces; /* the oldest, to make room */
    uint64_t logs_joined;    /* gen_ai log records kept with their trace */
};
void preview_stats(struct preview *pv, struct preview_stats *st);

/*
 * One JSON API answer (the server's, exposed for tests): `path` is the URL path, `get(ctx,
 * name)` reads a query parameter (NULL: absent), `each(ctx, fn, arg)` lists them all.
 * Returns the HTTP status; *body is the JSON (owned, o2d_malloc) or NULL.
 */
struct preview_query {
    const char *(*get)(void *ctx, const char *name);
    /* Calls fn(arg, name) for every parameter; returns how many there were. */
    int (*each)(void *ctx, void (*fn)(void *arg, const char *name), void *arg);
    void *ctx;
};
unsigned int preview_api(struct preview *pv, const char *path, const struct preview_query *q,
                         uint8_t **body, size_t *len, const char **ctype);

#endif
