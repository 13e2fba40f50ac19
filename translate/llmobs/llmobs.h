/*
 * llmobs.h: gen_ai spans -> Datadog LLM Observability span events (the layout Datadog's
 * tracers send to /api/v2/llmobs; ../shared/reference/llmobs.md sections 1.3 and 7).
 * Pure: no I/O, no clock.
 *
 * Three steps, because an LLM Obs event cannot be written until its trace is settled:
 * 1. llmobs_classify() on every span: cheap; LLMOBS_NONE keeps a span APM-only.
 * 2. llmobs_span_build() for each classified span: everything the span itself says (name,
 *    kind, model, messages, tokens, metadata, error, tags, session) copied out of the
 *    request's arena into an owned llmobs_span; message content that arrives as OTLP log
 *    records is added later with llmobs_span_add_log().
 * 3. llmobs_span_write() once the LLM Obs parent and trace are known (llmobs_buffer.h).
 */
#ifndef LLMOBS_H
#define LLMOBS_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"
#include "otlp.h"

enum llmobs_kind {
    LLMOBS_NONE = 0,
    LLMOBS_LLM,
    LLMOBS_EMBEDDING,
    LLMOBS_WORKFLOW,
    LLMOBS_AGENT,
    LLMOBS_TOOL,
    LLMOBS_TASK,
    LLMOBS_RETRIEVAL,
};

/* "llm", "embedding", ...; NULL for LLMOBS_NONE. */
const char *llmobs_kind_name(enum llmobs_kind kind);

/* The span's LLM Obs kind by the first matching convention (OpenLLMetry traceloop.span.kind,
 * OpenInference openinference.span.kind, OTel GenAI gen_ai.operation.name, llm.request.type,
 * other gen_ai markers), or LLMOBS_NONE: HTTP, DB and other spans stay APM-only. */
enum llmobs_kind llmobs_classify(const OtlpSpan *s);

struct llmobs_ml_app_rule {
    const char *service; /* exporters.datadog.llmobs.ml_app_by_service key */
    const char *ml_app;
};

#define LLMOBS_MAX_USER_TAGS 32

/* Borrowed for the duration of each call. */
struct llmobs_config {
    /* ml_app, first that is set: resource attribute `datadog.ml_app`, the per-service
     * rules, ml_app (exporters.datadog.llmobs.ml_app / DD_LLMOBS_ML_APP), service.name. */
    const struct llmobs_ml_app_rule *ml_app_by_service;
    size_t n_ml_app_by_service;
    const char *ml_app;
    /* DD_SERVICE, DD_ENV, DD_VERSION defaults, as for APM; NULL = none. */
    const char *default_service;
    const char *default_env;
    const char *default_version;
    /* exporters.datadog.tags / DD_TAGS as "key:value": added to every event's tags unless
     * the event has a tag with that key already; at most LLMOBS_MAX_USER_TAGS are used. */
    const char *const *tags;
    size_t n_tags;
    /* processors.llmobs_sampler (llmobs_sample.h), applied by whoever builds spans of a
     * request (llmobs_exporter_batch_build); NULL: every span is kept. */
    const struct llmobs_sampler *sampler;
};

/* One LLM Obs span, owned (o2d_alloc), independent of any request arena. */
struct llmobs_span;

/* The ids the trace buffer works with (read-only). */
struct llmobs_ids {
    uint8_t trace_id[16];    /* OTel trace id */
    uint64_t span_id;        /* OTel span id, as an unsigned 64-bit big-endian number */
    uint64_t parent_span_id; /* 0 when the span has no parent */
    int parent_is_remote;    /* the OTel flags say the parent lives in another process */
};

/*
 * Builds the LLM Obs span for `s` (kind from llmobs_classify(), not LLMOBS_NONE) of
 * resource `res` and scope `scope` (either may be NULL). Malformed gen_ai content (bad JSON,
 * wrong types) never fails the build: it is recorded in the event's collection_errors.
 * O2D_OK, or O2D_ERR_NOMEM.
 */
int llmobs_span_build(const OtlpResource *res,
                      const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                      const OtlpSpan *s, enum llmobs_kind kind, const struct llmobs_config *cfg,
                      struct llmobs_span **out);

/* What a build needs besides its result (text buffers, the arena jansson values come from),
 * kept from one llmobs_span_build_with() to the next: the spans of a request share one,
 * instead of allocating and growing it per span. Used by one thread at a time. */
struct llmobs_builder;
int llmobs_builder_new(struct llmobs_builder **out);
void llmobs_builder_free(struct llmobs_builder *bl);
/* The spans built with bl from begin to end all come from one request, whose resources stay
 * where they are meanwhile: spans of one resource may then share work (their tags are
 * written once and copied), with the same result, and storage grown for an unusually large
 * span is given back at end rather than after each span. Outside begin .. end nothing is
 * shared. */
void llmobs_builder_begin(struct llmobs_builder *bl);
void llmobs_builder_end(struct llmobs_builder *bl);
/* llmobs_span_build() with bl's scratch (NULL: a fresh one for this span). */
int llmobs_span_build_with(struct llmobs_builder *bl, const OtlpResource *res,
                           const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                           const OtlpSpan *s, enum llmobs_kind kind,
                           const struct llmobs_config *cfg, struct llmobs_span **out);

/* The ml_app the spans of resource `res` get (the event's ml_app tag), borrowed from res or
 * cfg. */
const char *llmobs_ml_app(const OtlpResource *res, const struct llmobs_config *cfg);

/* True when a log record carries gen_ai message content (OTel GenAI <= 1.36 events such as
 * gen_ai.user.message / gen_ai.choice, or gen_ai.client.inference.operation.details) and a
 * span id to join it to. */
int llmobs_log_is_genai(const OtlpLogRecord *r);

/* Adds the messages of one such log record (matched by trace and span id) to the span's
 * input or output. Bad content goes to collection_errors. O2D_OK or O2D_ERR_NOMEM. */
int llmobs_span_add_log(struct llmobs_span *sp, const OtlpLogRecord *r);

const struct llmobs_ids *llmobs_span_ids(const struct llmobs_span *sp);

/* True while the span's message content can still come as log records: an llm span of an
 * instrumentation that sends content as OTel GenAI events (or Responses instructions alone)
 * whose output (input, when it failed) has not come yet. The trace buffer holds it for the
 * log join window while this is true. */
int llmobs_span_awaits_logs(const struct llmobs_span *sp);

/* Its own session id (gen_ai.conversation.id, session.id, OpenLLMetry's association
 * property), or NULL. */
const char *llmobs_span_session(const struct llmobs_span *sp);

/* Its ml_app (see struct llmobs_config); *explicit_ is 1 when it was set for the span's own
 * resource (datadog.ml_app), which descendants inherit but which no ancestor overrides. */
const char *llmobs_span_ml_app(const struct llmobs_span *sp, int *explicit_);
/* Bytes held, for the trace buffer's memory bound (the hold area included). */
size_t llmobs_span_size(const struct llmobs_span *sp);

/* LLMOBS_SPAN_HOLD bytes that come and go with the span, aligned for any type, zeroed when it
 * is built: whoever holds the span keeps its own record of it there (the trace buffer does)
 * instead of allocating one more block a span. */
#define LLMOBS_SPAN_HOLD 96
void *llmobs_span_hold(struct llmobs_span *sp);

/*
 * Appends the span event JSON object: `llm_trace_id` is the LLM Obs trace id (32 lowercase
 * hex), `parent_id` the span id of the nearest LLM Obs ancestor or 0 for "undefined". An
 * event larger than max_event_size gets its input and output replaced the way the tracers
 * do it ("[This value has been dropped because this span's size exceeds the 5MB size
 * limit.]", collection_errors ["dropped_io"]).
 */
int llmobs_span_write(const struct llmobs_span *sp, const char *llm_trace_id, uint64_t parent_id,
                      size_t max_event_size, struct o2d_buf *out);

/* What a span takes from its nearest LLM Obs ancestors when it is written, as Datadog's SDKs
 * do (dd-trace-py ddtrace/llmobs/_utils.py _get_session_id, _get_ml_app); NULL members:
 * nothing. */
struct llmobs_inherit {
    const char *session; /* used when the span has none of its own (member and tag) */
    const char *ml_app;  /* replaces its ml_app tag unless its own was set for it */
};

/* llmobs_span_write() with what the span inherits (inh may be NULL). */
int llmobs_span_write_inherit(const struct llmobs_span *sp, const char *llm_trace_id,
                              uint64_t parent_id, const struct llmobs_inherit *inh,
                              size_t max_event_size, struct o2d_buf *out);

/* Bytes llmobs_span_write_inherit() writes for the span at most, unless it has to drop its
 * input and output for max_event_size (then fewer): what to reserve so that the event is
 * written without growing its buffer. */
size_t llmobs_span_write_size(const struct llmobs_span *sp, const struct llmobs_inherit *inh);

void llmobs_span_free(struct llmobs_span *sp);

#endif
