/*
 * apm.h: OTLP spans -> Datadog APM spans, as Datadog's own OTLP ingest maps them today
 * (DataDog/datadog-agent pkg/trace/transform, "V2" operation and resource names; see
 * ../shared/reference/datadog-apm.md section 3). Pure: no I/O, no clock, no globals.
 *
 * The output is the intake's own message types (protobuf-c, the .proto files in
 * proto/datadog/trace), allocated in the request's arena: one TracerPayload per ResourceSpans, one
 * TraceChunk per trace id in it. The exporter writes them as bytes (apm_pb.h, one pass) before
 * the arena is reset, and the stats concentrator reads them (stats.h).
 */
#ifndef APM_H
#define APM_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "datadog/trace/tracer_payload.pb-c.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "res_ecs.h"

typedef Datadog__Trace__TracerPayload DdTracerPayload;
typedef Datadog__Trace__TraceChunk DdTraceChunk;
typedef Datadog__Trace__Span DdSpan;

struct sql_cache;

struct apm_remap {
    const char *from;
    const char *to;
};

/* One of exporters.datadog.tags (DD_TAGS); value "" for a key written without ':'. */
struct apm_tag {
    const char *key;
    const char *value;
};

/*
 * What the translation did with one input, for the preview's per-attribute table
 * (collector/preview). Told only when apm_config.recorder is set, which the export path never
 * does: there it costs one NULL check per attribute.
 */
enum apm_rec_what {
    APM_REC_TAG = 0,    /* copied to meta[target] */
    APM_REC_METRIC,     /* copied to metrics[target] */
    APM_REC_FIELD,      /* filled the span's field or tag `target` (service, env, version...) */
    APM_REC_SHADOWED,   /* not copied: meta/metrics[target] already set by a source before it */
    APM_REC_RESERVED,   /* not copied: a key the mapping reads for service/name/resource/type */
    APM_REC_DEFAULT,    /* target filled by a default, no attribute (detail says which) */
    APM_REC_OBFUSCATED, /* target's value obfuscated (detail: how) */
};
enum apm_rec_source {
    APM_REC_SPAN = 0, /* span attribute */
    APM_REC_RESOURCE, /* resource attribute */
    APM_REC_SCOPE,    /* instrumentation scope attribute */
    APM_REC_CONFIG,   /* configuration or the mapping's own default */
};
struct apm_recorder {
    /* span_id: the OTLP span's id as a big-endian number; attr NULL for APM_REC_CONFIG. */
    void (*note)(void *ctx, uint64_t span_id, enum apm_rec_source src, const char *attr,
                 enum apm_rec_what what, const char *target, const char *detail);
    void *ctx;
};

/* Options that change the mapping, named as the datadogexporter names them. Borrowed. */
struct apm_config {
    /* traces.span_name_as_resource_name: the OTel span name becomes the operation name
     * (disables V2 names, as in the exporter). */
    int span_name_as_resource_name;
    /* traces.span_name_remappings: operation name -> new name (disables V2 names). */
    const struct apm_remap *remappings;
    size_t n_remappings;
    /* traces.ignore_resources: a trace chunk whose root span's resource matches any of these
     * is dropped, and left out of stats (the agent's Blacklister tests the root). Compiled
     * with REG_EXTENDED | REG_NOSUB. */
    const regex_t *ignore_resources;
    size_t n_ignore_resources;
    /* traces.compute_top_level_by_span_kind (default off). */
    int compute_top_level_by_span_kind;
    /* DD_SERVICE, DD_ENV, DD_VERSION: used for spans whose resource lacks them; NULL = none. */
    const char *default_service;
    const char *default_env;
    const char *default_version;
    /* Host used when the resource names none and the task is not on Fargate; NULL = "". */
    const char *fallback_hostname;
    /* exporters.datadog.tags / DD_TAGS: added to every span's meta unless the span already
     * has the key (a span's own attributes win, as ddtrace's span tags win over DD_TAGS). */
    const struct apm_tag *tags;
    size_t n_tags;
    /* The ECS task otel2dd runs in (exporters/ecs_meta.c), NULL when unknown: its tags join
     * `_dd.tags.container` of the resources res_ecs_tags_for gives them to, as the agent's
     * tagger adds a container's tags there. */
    const struct res_ecs *ecs;
    /* NULL except for the preview: told what became of each attribute (apm_recorder). */
    const struct apm_recorder *recorder;
    /* 1: the caller vouches that every string of the request (keys, values, names, scope,
     * tracestate, event and link fields) is valid UTF-8 (the decoder checked it while
     * decoding), so translation skips its own validation and repair passes; 0: it checks each
     * string it copies, replacing invalid bytes with U+FFFD. The output is the same for valid
     * input either way. */
    int input_utf8_valid;
    /* traces.obfuscation.cache: SQL obfuscation results kept across requests (sql_cache.h,
     * thread-safe); borrowed, NULL = every query is obfuscated. */
    struct sql_cache *sql_cache;
};

struct apm_result {
    DdTracerPayload **payloads; /* in the arena */
    size_t n_payloads;
    /* per payload: 1 when its resource has a non-empty `_dd.stats_computed` (a Datadog
     * tracer in OTLP mode computed the stats itself): the agent then computes none for it
     * (Payload.ClientComputedStats in pkg/trace/api/otlp.go receiveResourceSpansV2). */
    unsigned char *client_computed_stats; /* in the arena */
    size_t spans;                         /* Datadog spans produced */
    size_t ignored;                       /* spans dropped with their chunk by ignore_resources */
};

/*
 * Translates every span of `req` (validated by otlp_decode) into `out`, allocating from `a`.
 * now_ns is the wall clock (ns since the epoch) that replaces a start before 2000, as the
 * agent's normalizer does; the caller reads it, so that this stays free of clocks.
 * O2D_OK, or O2D_ERR_TOO_LARGE when the arena's limit is reached (with *reason).
 */
int apm_translate(struct o2d_arena *a, const OtlpTraceReq *req, const struct apm_config *cfg,
                  int64_t now_ns, struct apm_result *out, const char **reason);

#endif
