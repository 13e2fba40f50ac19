/*
 * mtr.h: OTLP metrics -> Datadog series and sketches (struct ddm_batch, dd_metrics.h), as
 * Datadog's own OTLP metrics translator maps them (datadog-agent
 * pkg/opentelemetry-mapping-go/otlp/metrics), with the Collector exporter's options.
 *
 * One translator per process: it holds the configuration, its start time (for the first-point
 * rule) and the cumulative-to-delta cache that every request shares. mtr_translate() may be
 * called from several threads at once; the cache has one lock, held for one lookup at a time.
 * What a resource becomes (its tags and host) is the caller's: a function passed to each call,
 * so this folder knows nothing of the resource attribute table.
 */
#ifndef MTR_H
#define MTR_H

#include <stddef.h>
#include <stdint.h>

#include "dd_metrics.h"
#include "o2d_arena.h"
#include "otlp.h"

enum mtr_hist_mode { MTR_HIST_DISTRIBUTIONS = 0, MTR_HIST_COUNTERS, MTR_HIST_NOBUCKETS };
enum mtr_cumul_mode { MTR_CUMUL_TO_DELTA = 0, MTR_CUMUL_RAW_VALUE };
enum mtr_initial_mode { MTR_INITIAL_AUTO = 0, MTR_INITIAL_KEEP, MTR_INITIAL_DROP };
enum mtr_summary_mode { MTR_SUMMARY_GAUGES = 0, MTR_SUMMARY_NOQUANTILES };

/* exporters.datadog.metrics.* of the Collector exporter; mtr_config_default() gives its
 * defaults. */
struct mtr_config {
    enum mtr_hist_mode hist_mode;       /* histograms.mode: distributions */
    int send_aggregation_metrics;       /* histograms.send_aggregation_metrics: false */
    enum mtr_cumul_mode cumul_mode;     /* sums.cumulative_monotonic_mode: to_delta */
    enum mtr_initial_mode initial_mode; /* sums.initial_cumulative_monotonic_value: auto */
    enum mtr_summary_mode summary_mode; /* summaries.mode: gauges */
    int64_t delta_ttl_s;                /* delta_ttl: 3600 */
    int scope_metadata_as_tags;         /* instrumentation_scope_metadata_as_tags: true */
    size_t max_cache_entries;           /* ours: the delta cache's bound, 500000 */
    /* Not keys of the Collector exporter, which asks for both unless one of its feature gates
     * exporter.datadogexporter.metricremappingdisabled (no WithRemapping) or
     * exporter.datadogexporter.DisableAllMetricRemapping (neither) is set: */
    int remapping;         /* WithRemapping: otel.* renames and Datadog copies: on */
    int runtime_remapping; /* the runtime metric copies (runtime.go.*, jvm.*, ...): on */
};

void mtr_config_default(struct mtr_config *cfg);

/*
 * What a resource says for Datadog: *tags ("key:value", NULL when none) and *host (NULL: the
 * series have no host). Both allocated in `a` or static. O2D_OK, or an error that fails the
 * whole translation.
 */
typedef int (*mtr_resource_fn)(void *ctx, const OtlpResource *res, struct o2d_arena *a,
                               const char *const **tags, size_t *ntags, const char **host);

/* Why a data point gave nothing. */
enum mtr_drop {
    MTR_DROP_NAN_INF = 0,  /* NaN or an infinity as value (or histogram count/sum) */
    MTR_DROP_NO_VALUE,     /* FLAG_NO_RECORDED_VALUE */
    MTR_DROP_OUT_OF_ORDER, /* not newer than the cached point of its series */
    MTR_DROP_TEMPORALITY,  /* unspecified temporality, or a cumulative exponential histogram */
    MTR_DROP_MALFORMED,    /* counts and bounds that do not match, bounds
                              out of order */
    MTR_DROP_TOO_MANY,     /* more observations than one sketch can hold */
    MTR_DROP_N,
};

const char *mtr_drop_name(enum mtr_drop why); /* closed set, safe as a metric label */

struct mtr_result {
    struct ddm_batch batch; /* in the arena passed to mtr_translate */
    uint64_t points;        /* data points seen */
    uint64_t dropped[MTR_DROP_N];
};

struct mtr_stats {
    size_t cache_entries;
    uint64_t evicted_ttl;      /* entries older than delta_ttl removed */
    uint64_t evicted_capacity; /* entries removed because the cache was full */
};

struct mtr_translator;

/* start_ns: when the collector started (the `auto` first-point rule compares with it).
 * NULL with *reason on a configuration Datadog refuses (nobuckets without aggregation
 * metrics), or out of memory. */
struct mtr_translator *mtr_new(const struct mtr_config *cfg, uint64_t start_ns,
                               const char **reason);
void mtr_free(struct mtr_translator *t);

/*
 * Translates req (borrowed) into out->batch, allocated in `a`. now_ns is the wall clock, for the
 * cache's TTL. O2D_OK, O2D_ERR_TOO_LARGE when `a` runs out (nothing usable in out), or what
 * resource_fn returned.
 */
int mtr_translate(struct mtr_translator *t, const OtlpMetricsReq *req, uint64_t now_ns,
                  mtr_resource_fn resource_fn, void *ctx, struct o2d_arena *a,
                  struct mtr_result *out);

void mtr_get_stats(struct mtr_translator *t, struct mtr_stats *out);

#endif
