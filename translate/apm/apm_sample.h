/*
 * apm_sample.h: trace sampling of translated APM chunks (processors.probabilistic_sampler),
 * after apm_translate and before anything is packed: the caller computes stats from every
 * chunk, and packs only the kept ones. Pure: no clock, no globals.
 *
 * A chunk (one trace id of one request) is decided as a whole, in this order:
 *  1. a user decision (`sampling.priority`, which apm.c made `_sampling_priority_v1`, decision
 *     maker -4) wins: kept when its priority is above 0 (the Collector's sampler honours
 *     sampling.priority the same way);
 *  2. keep_error_traces: a chunk with an error span is kept;
 *  3. keep_traces_slower_than: a chunk with a span at least that long is kept;
 *  4. otherwise the percentage of the chunk's root service (service_rates), else
 *     sampling_percentage, tested on the 128-bit trace id (o2d_sample.h).
 * A kept chunk carries what Datadog's OTLP ingest and its samplers set
 * (datadog-agent pkg/trace/api/otlp.go createChunks, pkg/trace/agent runSamplers,
 * pkg/trace/sampler): by a percentage, priority 1 (auto keep), `_dd.p.dm` -9 (the
 * probabilistic sampler), chunk tag `_dd.otlp_sr` the rate with two decimals, and the root's
 * `_dd.prob_sr` metric the rate (as the Agent's probabilistic sampler marks what it keeps;
 * `_sample_rate`, the application's rate that the stats weigh by, is not touched); by the
 * error or latency rule, priority 1 with no decision maker (the Agent's error sampler sets
 * none) and the root's `_dd.errors_sr` 1 for errors.
 */
#ifndef APM_SAMPLE_H
#define APM_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "apm.h"
#include "o2d_arena.h"
#include "o2d_sample.h"

enum apm_sample_rule {
    APM_SAMPLE_PERCENTAGE,   /* sampling_percentage */
    APM_SAMPLE_SERVICE_RATE, /* service_rates */
    APM_SAMPLE_PRIORITY,     /* the span's own sampling.priority */
    APM_SAMPLE_ERROR,        /* keep_error_traces */
    APM_SAMPLE_LATENCY,      /* keep_traces_slower_than */
    APM_SAMPLE_NO_TRACE_ID,  /* an all-zero trace id: fail_closed decides */
    APM_SAMPLE_RULES
};

/* A closed set of names, safe as metric labels: "percentage", "service_rate", ... */
const char *apm_sample_rule_name(enum apm_sample_rule r);

struct apm_sample_service {
    const char *service; /* the root span's Datadog service, as translated */
    struct o2d_sample_rate rate;
};

/* The sampler's settings (borrowed; kept chunks point at its rates' text, so it must outlive
 * their packing). enabled 0: apm_sample keeps everything untouched. */
struct apm_sampler {
    int enabled;
    enum o2d_sample_mode mode;
    uint32_t hash_seed;
    int fail_closed; /* drop a chunk whose trace id is all zeros */
    struct o2d_sample_rate rate;
    int keep_errors;
    int64_t keep_slower_than_ns; /* 0: off */
    const struct apm_sample_service *services;
    size_t n_services;
};

/* Spans and traces decided, by rule and outcome (added to by apm_sample). */
struct apm_sample_counts {
    uint64_t kept_spans[APM_SAMPLE_RULES];
    uint64_t dropped_spans[APM_SAMPLE_RULES];
    uint64_t kept_traces[APM_SAMPLE_RULES];
    uint64_t dropped_traces[APM_SAMPLE_RULES];
};

/*
 * Decides every chunk of res (from apm_translate, in arena a). Each payload's chunks are
 * reordered so that the kept ones come first, in their order; (*n_kept)[i] (in the arena) is
 * how many payload i keeps: pack chunks[0, n_kept), compute stats from chunks[0, n_chunks).
 * Chunks ignore_resources emptied count nowhere. O2D_OK or O2D_ERR_TOO_LARGE (arena full).
 */
int apm_sample(struct o2d_arena *a, const struct apm_sampler *s, struct apm_result *res,
               size_t **n_kept, struct apm_sample_counts *counts);

/* The 16-byte trace id of a chunk: `_dd.p.tid` of its first span (the high 64 bits, which
 * apm.c sets) and the spans' trace id (the low 64 bits), big-endian. */
void apm_sample_trace_id(const DdTraceChunk *ch, uint8_t out[16]);

#endif
