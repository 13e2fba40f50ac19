/*
 * llmobs_exporter_int.h: the pure half of the LLM Obs exporter (llmobs_wire.c), declared for
 * llmobs_exporter.c and its unit tests only: span events as items of the delivery layer,
 * wrapped in the envelopes Datadog's tracers send; the destination's bodies are JSON arrays
 * of them under the intake's limit. Nothing outside exporters/llmobs_*.c and
 * tests/unit/test_llmobs_encode.c includes this.
 */
#ifndef O2D_LLMOBS_EXPORTER_INT_H
#define O2D_LLMOBS_EXPORTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "o2d.h"
#include "o2d_buf.h"

/* dd-trace-py DEFAULT_EVP_PAYLOAD_SIZE_LIMIT ("actual server limit is 5.1 MB"): a request
 * body is at most this; the writer cuts a batch before an event would pass it. */
#define LLMOBS_MAX_BODY_BYTES (5u << 20)
/* DEFAULT_EVP_EVENT_SIZE_LIMIT: llmobs_span_write() truncates an event's I/O past this. */
#define LLMOBS_MAX_EVENT_BYTES 5000000u
#define LLMOBS_TRACER_VERSION  "otel2dd/" O2D_VERSION

/* The destination's context: what the envelopes and headers say. */
struct llmobs_wire {
    char tracer_version[64];
    char key_header[300]; /* "DD-API-KEY: <key>": never logged; in agent mode the EVP
                             proxy's subdomain header instead */
};

/* The destination: one event an item, bodies of envelopes, no compression. */
extern const struct dlv_dest_type llmobs_dest;

/* Bytes one event of event_len bytes takes in a body, its envelope and separator included. */
size_t llmobs_exporter_envelope_size(const char *tracer_version, size_t event_len);

/* Appends {"_dd.stage":"raw","_dd.tracer_version":<v>,"event_type":"span","spans":[<ev>]}. */
int llmobs_exporter_append_envelope(struct o2d_buf *out, const char *tracer_version,
                                    const uint8_t *ev, size_t len);

#endif
