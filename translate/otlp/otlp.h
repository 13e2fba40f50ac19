/*
 * otlp.h: decoding and validating one OTLP export request, whatever transport brought it.
 *
 * The receivers hand over the request body (already decompressed, see o2d_inflate.h) with
 * its signal and encoding; otlp_decode() unpacks it into the caller's arena, checks it and
 * counts it. Spans and log records that cannot be used (an all-zero or wrong-length trace or
 * span id) are removed from the request and counted as rejected, which the receivers report
 * as an OTLP partial success; a body that cannot be decoded at all is an error with a reason.
 * Metrics are decoded completely (every data point's fields); their data points are counted,
 * and what they hold is left to the metrics translator (translate/metrics).
 */
#ifndef OTLP_H
#define OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_arena.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* Short aliases for the generated names we use everywhere. */
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest OtlpTraceReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest OtlpLogsReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest OtlpMetricsReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans OtlpResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans OtlpScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span OtlpSpan;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs OtlpResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs OtlpScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord OtlpLogRecord;
typedef Opentelemetry__Proto__Common__V1__KeyValue OtlpKeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue OtlpAnyValue;
typedef Opentelemetry__Proto__Resource__V1__Resource OtlpResource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics OtlpResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics OtlpScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric OtlpMetric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint OtlpNumberPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint OtlpHistogramPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint OtlpExpHistogramPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets OtlpExpBuckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint OtlpSummaryPoint;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile OtlpQuantile;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar OtlpExemplar;

/* Nesting of AnyValue (arrays and kvlists inside values) deeper than this is refused as
 * invalid: it is never legitimate, and protobuf-c and any recursive walker recurse on it. */
#define OTLP_MAX_ANYVALUE_DEPTH 32

/* Nesting budget for protobuf messages: the request, resource, scope and item levels, then
 * three message levels per AnyValue level (AnyValue -> KeyValueList -> KeyValue). The deepest
 * items are metrics' exemplars: request, ResourceMetrics, ScopeMetrics, Metric, Sum, data
 * point, Exemplar, KeyValue put the first AnyValue at level 8, and the 32nd at 8 + 3 * 31 =
 * 101, within the budget of 104. */
#define OTLP_MAX_MESSAGE_DEPTH (8 + 3 * OTLP_MAX_ANYVALUE_DEPTH)

enum otlp_signal {
    OTLP_SIGNAL_TRACES = 0,
    OTLP_SIGNAL_LOGS = 1,
    OTLP_SIGNAL_METRICS = 2,
};

enum otlp_encoding {
    OTLP_ENC_PROTOBUF = 0,
    OTLP_ENC_JSON = 1,
};

struct otlp_request {
    enum otlp_signal signal;
    union {
        OtlpTraceReq *traces;
        OtlpLogsReq *logs;
        OtlpMetricsReq *metrics;
    } msg;                     /* points into the arena; valid until it is reset */
    size_t accepted;           /* spans, log records or data points left in msg */
    size_t rejected;           /* removed by validation */
    const char *reject_reason; /* static; the first rejection's reason, NULL if none */
    struct o2d_arena *arena;   /* the request's arena, for translation scratch; set by ingest */
    uint64_t id;               /* this request, unique in the process; set by ingest (0: none).
                                  What it becomes keeps it to delivery (delivery.h). */
    int tenant;                /* the receivers' fairness slot of its tenant (its token's,
                                  else its first resource's service.name), for the exporters'
                                  queue shares; set by ingest; -1: none (otlp_decode's) */
    int utf8_valid;            /* 1: every string in msg is valid UTF-8 (checked while
                                  decoding); 0: some is not, or it is not known */
};

/* Tenant slots a request may name (ingest.h: INGEST_TENANT_NAMED + INGEST_TENANT_HASHED). */
#define OTLP_TENANT_SLOTS 80

/* "traces", "logs", "metrics": closed set, safe as a metric label. */
const char *otlp_signal_name(enum otlp_signal sig);
/* "spans", "log records", "data points". */
const char *otlp_item_name(enum otlp_signal sig);

/*
 * Decodes body[0..len) (borrowed; nothing keeps a pointer to it) into `a`, validates and
 * counts. Returns O2D_OK with *out filled, or O2D_ERR_INVALID with *reason saying what was
 * wrong, or O2D_ERR_TOO_LARGE when the decoded form would pass the arena's limit. An empty
 * body is a valid, empty request.
 */
int otlp_decode(struct o2d_arena *a, enum otlp_signal sig, enum otlp_encoding enc,
                const uint8_t *body, size_t len, struct otlp_request *out, const char **reason);

/*
 * OTLP/JSON (translate/otlp/otlp_json.c): proto3 JSON as OTLP defines it: lowerCamelCase names
 * (original snake_case names accepted too), trace and span ids as hex, enums as integers (or
 * their names), 64-bit integers as strings or numbers, absent fields as defaults, unknown
 * fields ignored. Produces the same protobuf-c structures otlp_decode() would, allocated in
 * `a`, and stores the top-level request in *msg. Does not validate ids beyond their hex form
 * (otlp_decode() does that for both encodings).
 */
int otlp_json_decode(struct o2d_arena *a, enum otlp_signal sig, const uint8_t *body, size_t len,
                     void **msg, const char **reason);

/*
 * Walks a protobuf message with its descriptor without allocating, and fails with a reason
 * on what protobuf-c would also refuse (truncation, lengths past the end, wrong wire types,
 * bad varints, groups) and on nesting deeper than max_depth messages, which protobuf-c does
 * not bound. Run before protobuf_c_message_unpack() so that unpacking never recurses deeply.
 */
int otlp_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                  unsigned max_depth, const char **reason);

/*
 * ExportTraceServiceRequest from protobuf bytes in one pass (otlp_pbtrace.c): the same structs,
 * refusals and reasons as otlp_pb_check() (max depth OTLP_MAX_MESSAGE_DEPTH) followed by
 * protobuf_c_message_unpack() into `a`, with *utf8_valid set to whether every string field
 * holds valid UTF-8. *out points into the arena. Does not validate ids (otlp_decode() does).
 */
int otlp_pb_decode_traces(struct o2d_arena *a, const uint8_t *body, size_t len, OtlpTraceReq **out,
                          int *utf8_valid, const char **reason);

#endif
