/*
 * llmobs_buffer.h: the LLM Obs trace buffer. An LLM Obs span's parent is its nearest LLM Obs
 * ancestor, found by walking the OTel parent chain through spans that are not LLM Obs (HTTP
 * handlers, ASGI receive/send, DB calls); and each LLM Obs root starts an LLM Obs trace whose
 * id is derived deterministically from the OTel trace id and the root's span id (so every
 * instance computes the same id). Spans arrive child-first and across requests, and message
 * log records may arrive before their span, so spans wait here until their chain is settled
 * (the local root arrived) or a deadline passes.
 *
 * Pure and single-threaded: the caller locks and passes the clock in. Bounded in spans and
 * bytes; a bound that forces an early decision is counted, nothing is dropped silently.
 */
#ifndef LLMOBS_BUFFER_H
#define LLMOBS_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "llmobs.h"

struct llmobs_buffer;

struct llmobs_buffer_config {
    int64_t deadline_ns;   /* exporters.datadog.llmobs.trace_buffer.timeout, default 10 s */
    size_t max_spans;      /* LLM Obs spans and skeletons held, default 100,000 */
    size_t max_bytes;      /* bytes held, default 64 MiB */
    size_t max_event_size; /* per-event limit passed to llmobs_span_write (5,000,000) */
    /* exporters.datadog.llmobs.log_join_window, default 3 s; 0: spans are not held for
     * their log records. How long an llm span that awaits its content as log records
     * (llmobs_span_awaits_logs) is held after it arrived, unless the records come sooner. */
    int64_t log_window_ns;
};

int llmobs_buffer_new(struct llmobs_buffer **out, const struct llmobs_buffer_config *cfg);
void llmobs_buffer_free(struct llmobs_buffer *b);

/*
 * Records one span of a trace. `llm` is the built LLM Obs span (ownership moves to the
 * buffer, even on error) or NULL for a span that is not LLM Obs: its ids are kept as a
 * skeleton only when its trace has LLM Obs spans (or the same call batch says so, see
 * llmobs_buffer_note_trace), so that chains through it resolve.
 */
int llmobs_buffer_add_span(struct llmobs_buffer *b, const struct llmobs_ids *ids,
                           struct llmobs_span *llm, int64_t now_ns);

/*
 * llmobs_buffer_add_span for n spans, in order: llm[i] may be NULL; every llm[i] is taken
 * (set to NULL) even on error, and the spans after a failed one are not added. Cheaper than
 * n calls when spans of one trace come together, as in a request: the trace is looked up
 * once per run and its span map grown once.
 */
int llmobs_buffer_add_spans(struct llmobs_buffer *b, const struct llmobs_ids *ids,
                            struct llmobs_span **llm, size_t n, int64_t now_ns);

/* Says that `trace_id` has LLM Obs spans, before its non-LLM spans of the same request are
 * added (a request's spans come in any order). */
int llmobs_buffer_note_trace(struct llmobs_buffer *b, const uint8_t trace_id[16], int64_t now_ns);

/* A gen_ai log record (llmobs_log_is_genai): joined to its span now if it is held, else held
 * until the span arrives or the deadline passes (then counted as unmatched). A span held for
 * its log records (log_window_ns) leaves at the next poll once its output has come. */
int llmobs_buffer_add_log(struct llmobs_buffer *b, const OtlpLogRecord *r, int64_t now_ns);

/*
 * Writes every event that is ready at now_ns (all of them when `force`, at shutdown) and
 * forgets it: emit borrows one event's JSON object. Returns O2D_OK or emit's first error
 * (the events not yet emitted stay).
 */
int llmobs_buffer_poll(struct llmobs_buffer *b, int64_t now_ns, int force,
                       int (*emit)(void *ctx, const uint8_t *json, size_t len), void *ctx);
/*
 * llmobs_buffer_poll with the event handed in its buffer, for a caller that keeps the bytes
 * without copying them: out->data[0..front) is left for the caller (uninitialised), the event
 * is out->data[front..out->len). emit may take the storage (o2d_buf_take, owned by the caller
 * from then on); the buffer then gives the next event storage of its own, reserved once for
 * the size llmobs_span_write_size() gives.
 */
typedef int (*llmobs_emit_buf_fn)(void *ctx, struct o2d_buf *out, size_t front);
int llmobs_buffer_poll_buf(struct llmobs_buffer *b, int64_t now_ns, int force, size_t front,
                           llmobs_emit_buf_fn emit, void *ctx);
/* Inside poll's emit only: the OTel trace id and span id of the event being emitted. */
void llmobs_buffer_emitting(const struct llmobs_buffer *b, uint8_t trace_id[16], uint64_t *span_id);

struct llmobs_buffer_counters {
    uint64_t spans_held; /* gauge: LLM Obs spans waiting */
    uint64_t bytes_held; /* gauge */
    uint64_t events_emitted;
    uint64_t settled_by_root;     /* emitted because the chain resolved */
    uint64_t settled_by_deadline; /* emitted at the deadline with the chain as far as known */
    uint64_t forced_by_bound;     /* emitted early because max_spans/max_bytes was reached */
    uint64_t logs_joined;
    uint64_t logs_unmatched;         /* log records not joined: the sum of the four reasons below */
    uint64_t logs_unmatched_late;    /* their span had been written already */
    uint64_t logs_unmatched_not_llm; /* their span is not an LLM Obs span */
    uint64_t logs_unmatched_no_span; /* their span did not come within the timeout */
    uint64_t logs_unmatched_dropped; /* given up by a bound, or at shutdown */
    uint64_t held_for_logs;          /* llm spans held for their log records (log_window_ns) */
    uint64_t hold_expired; /* of those, released at the window's end, content still missing */
};
void llmobs_buffer_get_counters(const struct llmobs_buffer *b, struct llmobs_buffer_counters *out);

/* The LLM Obs trace id for root span `root_span_id` of OTel trace `trace_id`: 32 lowercase
 * hex characters (+ NUL) from a SHA-256 of the 16 + 8 bytes. */
void llmobs_trace_id(const uint8_t trace_id[16], uint64_t root_span_id, char out[33]);

#endif
