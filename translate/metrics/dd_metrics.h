/*
 * dd_metrics.h: what OTLP metrics become for Datadog, between the translator (which makes
 * these from an OTLP request) and the wire encoders (which pack them into the protobuf
 * MetricPayload of /api/v2/series and SketchPayload of /api/beta/sketches). One point each:
 * Datadog's own translator also emits one series per point.
 *
 * Every pointer here is borrowed from whoever made the batch (an arena, usually) and lives as
 * long as the batch.
 */
#ifndef O2D_DD_METRICS_H
#define O2D_DD_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* MetricPayload.MetricType (DataDog/agent-payload proto/metrics/agent_payload.proto). */
enum ddm_type {
    DDM_UNSPECIFIED = 0,
    DDM_COUNT = 1,
    DDM_RATE = 2,
    DDM_GAUGE = 3,
};

/* One point of one series. */
struct ddm_series {
    const char *name;
    enum ddm_type type;
    const char *const *tags; /* "key:value", as Datadog formats them */
    size_t ntags;
    const char *host; /* NULL: no host resource (an ECS Fargate task, say) */
    int64_t ts_s;     /* the point's time, seconds (nanoseconds / 1e9, truncated) */
    double value;
    int64_t interval_s; /* 0 unless a rate */
    const char *unit;   /* NULL: none */
};

/* One sketch point: the agent sketch's bins (datadog-agent pkg/util/quantile: gamma
 * 1 + 1/64, keys signed, counts per key), with the exact count, min, max, avg and sum. */
struct ddm_sketch {
    const char *name;
    const char *const *tags;
    size_t ntags;
    const char *host; /* NULL: none */
    int64_t ts_s;
    int64_t cnt;
    double min, max, avg, sum;
    const int32_t *k;  /* keys, ascending */
    const uint32_t *n; /* counts, one per key */
    size_t nbins;
};

/* What one request became. */
struct ddm_batch {
    const struct ddm_series *series;
    size_t nseries;
    const struct ddm_sketch *sketches;
    size_t nsketches;
};

#endif
