/*
 * mtr_int.h: what the files of translate/metrics share and nothing else includes.
 */
#ifndef MTR_INT_H
#define MTR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_arena.h"
#include "otlp.h"

/* ---- mtr_cache.c: the cumulative-to-delta cache (ttlcache.go) ---- */

struct mtr_cache;

/* A series' identity: a 128-bit hash of name, sorted tags, host and what is cached. */
struct mtr_key {
    uint64_t h1, h2;
};

struct mtr_cache *mtr_cache_new(size_t max_entries, int64_t ttl_s);
void mtr_cache_free(struct mtr_cache *c);

/* putAndGetMonotonic: *drop when ts is not after the cached one (cache kept); otherwise the
 * point is cached and *dx is val - previous (per second when rate), *first when there was no
 * previous, or a reset. */
void mtr_cache_monotonic(struct mtr_cache *c, struct mtr_key k, uint64_t now_ns, uint64_t start,
                         uint64_t ts, double val, int rate, double *dx, int *first, int *drop);
/* putAndGetDiff: returns 1 with *dx when there is a previous point of the same run; a point
 * strictly older than the cached one is not cached. */
int mtr_cache_diff(struct mtr_cache *c, struct mtr_key k, uint64_t now_ns, uint64_t start,
                   uint64_t ts, double val, double *dx);
/* putAndCheckExtrema: whether the min (is_min) or max is from the last window. */
int mtr_cache_extrema(struct mtr_cache *c, struct mtr_key k, uint64_t now_ns, uint64_t start,
                      uint64_t ts, double v, int is_min);

void mtr_cache_stats(struct mtr_cache *c, size_t *entries, uint64_t *ev_ttl, uint64_t *ev_cap);

/* ---- mtr_points.c: the four kinds of decoded data point seen one way ---- */

struct mtr_buckets {
    int32_t offset;
    const uint64_t *counts;
    size_t n;
};

/* Points into the decoded request; valid as long as it is. */
struct mtr_point {
    OtlpKeyValue *const *attrs;
    size_t nattrs;
    uint64_t start_ns, time_ns;
    uint32_t flags;
    double value; /* number: as_double or as_int; 0 when neither */
    uint64_t count;
    int has_sum, has_min, has_max;
    double sum, min, max;
    const uint64_t *bucket_counts; /* histogram */
    size_t nbucket_counts;
    const double *bounds;
    size_t nbounds;
    int32_t scale; /* exponential histogram */
    uint64_t zero_count;
    struct mtr_buckets pos, neg;
    const OtlpQuantile *const *quantiles; /* summary */
    size_t nquantiles;
};

void mtr_point_number(const OtlpNumberPoint *src, struct mtr_point *p);
void mtr_point_histogram(const OtlpHistogramPoint *src, struct mtr_point *p);
void mtr_point_exp(const OtlpExpHistogramPoint *src, struct mtr_point *p);
void mtr_point_summary(const OtlpSummaryPoint *src, struct mtr_point *p);

/* ---- mtr_remap.c: the Collector exporter's renames and copies (metrics_remapping.go) ---- */

/* Metrics the remapping adds to a scope, built in the arena, mapped after the scope's own. */
struct mtr_added {
    const OtlpMetric **m;
    size_t n, cap;
};

/* runtimeMetricsMappings: the Datadog runtime metric copies of m, appended to *out. */
int mtr_remap_runtime(struct o2d_arena *a, const OtlpMetric *m, struct mtr_added *out);
/* remapMetrics: the Datadog copies of system, container, kafka and jvm metrics. */
int mtr_remap_copies(struct o2d_arena *a, const OtlpMetric *m, struct mtr_added *out);
/* renameMetrics: the name m is mapped under (otel.*, otelcol_*), or name itself; NULL when the
 * arena is full. */
const char *mtr_remap_name(struct o2d_arena *a, const char *name);

/* ---- mtr.c ---- */

/* Whether pcommon's AsString() of v is s. */
int mtr_value_is(const OtlpAnyValue *v, const char *s);

#endif
