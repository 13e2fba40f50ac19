/*
 * datadog_int.h: the pure half of the Datadog exporter, its four destinations on the
 * delivery layer (delivery.h), declared for datadog.c and its unit tests only
 * (tests/unit/test_datadog_encode.c, tests/unit/test_agent_encode.c):
 *   datadog_traces_dest        AgentPayload bodies of encoded TracerPayloads, gzip, intake
 *   datadog_stats_dest         one StatsPayload (msgpack) a body, gzip, intake
 *   datadog_agent_traces_dest  v0.4 bodies (a msgpack array of traces), a local Agent
 *   datadog_agent_stats_dest   one ClientStatsPayload a body, a local Agent
 * Each one's context is a struct datadog_wire.
 */
#ifndef O2D_DATADOG_INT_H
#define O2D_DATADOG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "o2d_buf.h"

/* The intake's limit on a compressed body (trace-agent MaxPayloadSize, saluki's
 * DEFAULT_INTAKE_COMPRESSED_SIZE_LIMIT). */
#define DATADOG_MAX_BODY_BYTES 3200000
/* Encoded TracerPayloads taken from the queue for one round of bodies; gzip makes them
 * smaller, and a body that comes out over the limit is built again in halves. */
#define DATADOG_BATCH_RAW_BYTES (8u * 1024 * 1024)
#define DATADOG_LANG_MAX        32
/* A local Agent's limit on a request body: the trace agent's default MaxRequestBytes, 25 MB
 * since Agent 7.43 (its release notes; apm_config.max_payload_size changes it, and /info
 * reports it as config.max_request_bytes). */
#define DATADOG_AGENT_MAX_BODY_BYTES (25u * 1024 * 1024)
#define DATADOG_AGENT_HDR_MAX        128
#define DATADOG_STATS_BODY_MAX       (16u * 1024 * 1024)

/* The AgentPayload fields other than tracerPayloads. Borrowed. */
struct datadog_header {
    const char *hostname;
    const char *env;
    const char *agent_version;
    double target_tps;
    double error_tps;
};

/* What the destinations need to encode a body and write its headers. */
struct datadog_wire {
    struct datadog_header h;
    char key_header[300]; /* "DD-Api-Key: <key>" (agentless): never logged */
};

extern const struct dlv_dest_type datadog_traces_dest;
extern const struct dlv_dest_type datadog_stats_dest;
extern const struct dlv_dest_type datadog_agent_traces_dest;
extern const struct dlv_dest_type datadog_agent_stats_dest;

/* An item of datadog_traces_dest: one encoded TracerPayload, its header the language
 * (TracerPayload.languageName, for X-Datadog-Reported-Languages). NULL: out of memory. */
struct dlv_item *datadog_trace_item(const uint8_t *tp, size_t len, size_t spans, const char *lang);
/* An item written in place, without the copy: begin() puts the item's fields' room
 * (DLV_ITEM_PREFIX) and the language header into b, which must be empty, and reserves `hint`
 * more bytes; the caller appends the TracerPayload's bytes; finish() hands b's storage to the
 * item (b is left empty; NULL when out of memory). lang must be the same in both calls. */
int datadog_trace_item_begin(struct o2d_buf *b, const char *lang, size_t hint);
struct dlv_item *datadog_trace_item_finish(struct o2d_buf *b, size_t spans, const char *lang);

/* The header fields of a v0.4 body (the Agent takes them per request). */
struct datadog_agent_meta {
    const char *lang;
    const char *lang_version;
    const char *lang_interpreter;
    const char *tracer_version;
    const char *container_id;
};
/* An item of datadog_agent_traces_dest: one trace's v0.4 msgpack; its header the meta
 * fields, each cut to its limit and NUL-terminated, so that items share a body only when
 * all of them are equal. */
struct dlv_item *datadog_agent_trace_item(const uint8_t *trace, size_t len, size_t spans,
                                          const struct datadog_agent_meta *m);
/* Reads the fields back out of an item made by datadog_agent_trace_item (pointers into it). */
void datadog_agent_item_meta(const struct dlv_item *it, struct datadog_agent_meta *m);
/* An item of one of the stats destinations: one payload; `lang` the header (agent mode). */
struct dlv_item *datadog_stats_item(const uint8_t *msgpack, size_t len, const char *lang);

/* Appends an AgentPayload holding `h` and the TracerPayloads of items[0..n) (field 5,
 * concatenated) to out. */
int datadog_encode_agent_payload(struct o2d_buf *out, const struct datadog_header *h,
                                 struct dlv_item *const *items, size_t n);

/*
 * Splits a trace item (an encoded TracerPayload) with two or more trace chunks (field 6) into
 * two, each with every other field and half of the chunks, in *a and *b (new items, spans
 * counted). O2D_ERR_INVALID when it cannot be parsed, O2D_ERR_TOO_LARGE when it has fewer
 * than two chunks.
 */
int datadog_split_item(const struct dlv_item *it, struct dlv_item **a, struct dlv_item **b);

#endif
