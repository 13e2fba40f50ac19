/*
 * datadog_int.h: the pure half of the Datadog exporter (datadog.c), declared for its unit
 * tests only: building AgentPayload bodies from already encoded TracerPayloads, and the
 * split that keeps each compressed body under the intake's limit; in agent mode, v0.4
 * bodies from encoded traces. Nothing outside exporters/datadog.c and its unit tests
 * (tests/unit/test_datadog_encode.c, tests/unit/test_agent_encode.c) includes this.
 */
#ifndef O2D_DATADOG_INT_H
#define O2D_DATADOG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

/* The intake's limit on a compressed body (trace-agent MaxPayloadSize, saluki's
 * DEFAULT_INTAKE_COMPRESSED_SIZE_LIMIT). */
#define DATADOG_MAX_BODY_BYTES 3200000
/* Encoded TracerPayloads taken from the queue for one flush; gzip makes them smaller, and a
 * batch whose body comes out over the limit is split in two until it fits. */
#define DATADOG_BATCH_RAW_BYTES (8u * 1024 * 1024)
#define DATADOG_LANG_MAX        32
/* A local Agent's limit on a request body: the trace agent's default MaxRequestBytes, 25 MB
 * since Agent 7.43 (its release notes; apm_config.max_payload_size changes it, and /info
 * reports it as config.max_request_bytes). */
#define DATADOG_AGENT_MAX_BODY_BYTES (25u * 1024 * 1024)
#define DATADOG_AGENT_HDR_MAX        128

/* One encoded TracerPayload on the queue. */
struct datadog_item {
    struct datadog_item *next;
    uint8_t *bytes; /* owned (o2d_malloc) */
    size_t len;
    size_t spans;
    char lang[DATADOG_LANG_MAX]; /* TracerPayload.languageName, "" if none */
    /* Agent mode: the item is one trace (bytes: its v0.4 msgpack, apm_msgpack.h), and these
     * are its TracerPayload's fields that v0.4 carries as request headers. */
    char lang_version[DATADOG_LANG_MAX];
    char lang_interpreter[DATADOG_LANG_MAX];
    char tracer_version[DATADOG_AGENT_HDR_MAX];
    char container_id[DATADOG_AGENT_HDR_MAX];
};

/* The AgentPayload fields other than tracerPayloads. Borrowed. */
struct datadog_header {
    const char *hostname;
    const char *env;
    const char *agent_version;
    double target_tps;
    double error_tps;
};

/* Appends an AgentPayload holding `h` and items[0..n) (field 5, concatenated) to out. */
int datadog_encode_agent_payload(struct o2d_buf *out, const struct datadog_header *h,
                                 struct datadog_item *const *items, size_t n);

/* gzip (level 1) of in[0..len) into out, never past out->max: O2D_ERR_TOO_LARGE then. */
int datadog_gzip(const uint8_t *in, size_t len, struct o2d_buf *out);

/*
 * Splits an encoded TracerPayload with two or more trace chunks (field 6) into two, each
 * with every other field and half of the chunks, in *a and *b (new items, spans counted).
 * O2D_ERR_INVALID when it cannot be parsed, O2D_ERR_TOO_LARGE when it has fewer than two
 * chunks.
 */
int datadog_split_item(const struct datadog_item *it, struct datadog_item **a,
                       struct datadog_item **b);
void datadog_item_free(struct datadog_item *it);

/* One body ready to send; emit takes ownership of gz (o2d_free) and counts its fate. */
typedef void (*datadog_emit_fn)(void *ctx, uint8_t *gz, size_t gz_len, size_t spans,
                                size_t payloads, const char *languages);

/*
 * Encodes items[0..n) into gzip-compressed AgentPayload bodies of at most max_body bytes,
 * split on TracerPayload boundaries, a TracerPayload alone too big split by its chunks, and
 * emits each. A single chunk that alone is over the limit is dropped and its spans added to
 * *too_large_spans. Returns O2D_OK or the first allocation error; the spans of bodies that
 * could not be built are then added to *failed_spans (the others were emitted).
 */
int datadog_build_bodies(const struct datadog_header *h, struct datadog_item *const *items,
                         size_t n, size_t max_body, datadog_emit_fn emit, void *ctx,
                         size_t *too_large_spans, size_t *failed_spans);

/* One v0.4 body ready to send (agent mode): emit takes ownership of body (o2d_free). `meta`
 * is any item of the body: all of them have the same header fields. */
typedef void (*datadog_agent_emit_fn)(void *ctx, uint8_t *body, size_t len, size_t spans,
                                      size_t traces, const struct datadog_item *meta);

/*
 * Agent mode: builds v0.4 bodies (a msgpack array of traces) of at most max_body bytes from
 * items[0..n), each one trace, and emits each. A body holds only items with the same header
 * fields (language, its version, tracer version, container id: the Agent takes them per
 * request; the interpreter too), in their order; a trace alone over max_body is dropped and its
 * spans added to *too_large_spans. Returns O2D_OK or the first allocation error; the spans of
 * bodies that could not be built are then added to *failed_spans.
 */
int datadog_agent_build_bodies(struct datadog_item *const *items, size_t n, size_t max_body,
                               datadog_agent_emit_fn emit, void *ctx, size_t *too_large_spans,
                               size_t *failed_spans);

#endif
