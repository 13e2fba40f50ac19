/*
 * llmobs_exporter_int.h: the pure half of the LLM Obs exporter (llmobs_exporter.c), declared
 * for its unit tests only: wrapping span events in the envelopes Datadog's tracers send and
 * cutting them into request bodies under the intake's limit. Nothing outside
 * exporters/llmobs_exporter.c and tests/unit/test_llmobs_encode.c includes this.
 */
#ifndef O2D_LLMOBS_EXPORTER_INT_H
#define O2D_LLMOBS_EXPORTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

/* dd-trace-py DEFAULT_EVP_PAYLOAD_SIZE_LIMIT ("actual server limit is 5.1 MB"): a request
 * body is at most this; the writer cuts a batch before an event would pass it. */
#define LLMOBS_MAX_BODY_BYTES (5u << 20)
/* DEFAULT_EVP_EVENT_SIZE_LIMIT: llmobs_span_write() truncates an event's I/O past this. */
#define LLMOBS_MAX_EVENT_BYTES 5000000u

/* One encoded span event (a JSON object) waiting to be sent. */
struct llmobs_exporter_event {
    struct llmobs_exporter_event *next;
    size_t len;
    uint8_t json[]; /* len bytes, owned with the struct */
};

/* Bytes one event of event_len bytes takes in a body, its envelope and separator included. */
size_t llmobs_exporter_envelope_size(const char *tracer_version, size_t event_len);

/* Appends {"_dd.stage":"raw","_dd.tracer_version":<v>,"event_type":"span","spans":[<ev>]}. */
int llmobs_exporter_append_envelope(struct o2d_buf *out, const char *tracer_version,
                                    const uint8_t *ev, size_t len);

/* One body ready to send; takes ownership of body (o2d_free). */
typedef void (*llmobs_exporter_body_fn)(void *ctx, uint8_t *body, size_t len, size_t events);

/*
 * Cuts events[0..n) in order into JSON arrays of envelopes of at most max_body bytes each,
 * and hands each to emit. An event that alone does not fit is skipped and counted in
 * *too_large. Returns O2D_OK, or the first allocation error: the events of bodies that
 * could not be built are then added to *failed (the others were emitted).
 */
int llmobs_exporter_build_bodies(const char *tracer_version,
                                 struct llmobs_exporter_event *const *events, size_t n,
                                 size_t max_body, llmobs_exporter_body_fn emit, void *ctx,
                                 size_t *too_large, size_t *failed);

#endif
