/*
 * datadog_metrics.h: the Datadog metrics exporter: what the metrics translator made of a
 * request (struct ddm_batch, translate/metrics/dd_metrics.h) sent agentlessly, series to
 * https://api.<site>/api/v2/series (MetricPayload) and sketches to /api/beta/sketches
 * (SketchPayload), protobuf compressed with zstd, each a destination of the delivery layer
 * (delivery.h: queue, packing within the intake's limits, 413 split, retries, accounting,
 * disk queue in <sending_queue.storage>/series and /sketches). The pure half, items and
 * bodies, is datadog_metrics_wire.c.
 *
 * Also here: exporters.datadog.metrics, the Collector Datadog exporter's metrics settings
 * (contrib exporter/datadogexporter, pkg/datadog/config MetricsConfig), which the
 * translator reads, and where metrics go in agent mode.
 */
#ifndef O2D_DATADOG_METRICS_H
#define O2D_DATADOG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dd_metrics.h"
#include "o2d_arena.h"
#include "otlp.h"

struct exporter;
struct http_client;
struct datadog_config;

/* metrics.histograms.mode */
enum datadog_histogram_mode {
    DATADOG_HIST_DISTRIBUTIONS = 0, /* one sketch per point (default) */
    DATADOG_HIST_COUNTERS = 1,      /* a .bucket count per bucket */
    DATADOG_HIST_NOBUCKETS = 2,     /* only the aggregation metrics */
};
/* metrics.sums.cumulative_monotonic_mode */
enum datadog_cumulative_mode {
    DATADOG_CUMULATIVE_TO_DELTA = 0, /* a count of the differences (default) */
    DATADOG_CUMULATIVE_RAW_VALUE = 1,
};
/* metrics.sums.initial_cumulative_monotonic_value */
enum datadog_initial_value {
    DATADOG_INITIAL_AUTO = 0, /* default */
    DATADOG_INITIAL_DROP = 1,
    DATADOG_INITIAL_KEEP = 2,
};
/* metrics.summaries.mode */
enum datadog_summary_mode {
    DATADOG_SUMMARY_GAUGES = 0, /* .quantile gauges too (default) */
    DATADOG_SUMMARY_NOQUANTILES = 1,
};

/* exporters.datadog.metrics; defaults as the Collector exporter's CreateDefaultConfig. */
struct datadog_metrics_config {
    int enabled;          /* metrics.enabled, default true (not a Collector key) */
    char endpoint[512];   /* metrics.endpoint: base URL replacing https://api.<site> */
    uint64_t delta_ttl_s; /* metrics.delta_ttl: seconds a cumulative series is remembered, 3600 */
    int resource_attributes_as_tags;            /* default false */
    int instrumentation_scope_metadata_as_tags; /* default true */
    int histogram_mode;                         /* enum datadog_histogram_mode */
    int histogram_aggregations;                 /* histograms.send_aggregation_metrics, false */
    int cumulative_mode;                        /* enum datadog_cumulative_mode */
    int initial_value;                          /* enum datadog_initial_value */
    int summary_mode;                           /* enum datadog_summary_mode */
};

/* Where metrics go with this configuration. */
enum datadog_metrics_route {
    DATADOG_METRICS_OFF = 0,    /* metrics.enabled false */
    DATADOG_METRICS_INTAKE = 1, /* to the metrics intake with the API key */
    DATADOG_METRICS_NO_KEY = 2, /* agent mode without an API key: not sent (see .c) */
};
enum datadog_metrics_route datadog_metrics_route_of(const struct datadog_config *cfg);
/* One sentence saying what becomes of metrics in agent mode, for the start log; NULL when
 * not in agent mode. */
const char *datadog_metrics_agent_note(const struct datadog_config *cfg);

/* "https://api.<site>" or metrics.endpoint, no trailing slash. */
void datadog_metrics_base(const struct datadog_config *cfg, char *out, size_t n);

/*
 * The exporter: its destinations start in ->start. Borrows cfg for its lifetime, and `http`
 * (NULL: ->start makes one of its own), as datadog_exporter_new. OTLP requests are not its
 * input: ->submit takes none of them (the pipeline translates metrics with translate/metrics
 * and hands the batch to datadog_metrics_submit); ->admit answers for metrics requests,
 * with the request's data points as the units asked for.
 */
int datadog_metrics_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                                 struct http_client *http);

/*
 * Encodes every series point and sketch of `b` (borrowed for the call only) into items and
 * queues them, series first; `origin` is the ingest request's id (0: none). Admission (room
 * in the queues) is ->admit's, asked before: a memory queue takes what it is given.
 * O2D_OK; O2D_ERR_BUSY when a disk queue is full or its storage failed (the request is
 * refused, its sender retries); O2D_ERR_SHUTDOWN once stopping; O2D_ERR_NOMEM;
 * O2D_ERR_INVALID, logged, when a point breaks dd_metrics.h's contract (no name, bins out
 * of order): a translator bug, so nothing of the batch is queued. A point too large for a
 * body alone is counted dropped (too_large) by the delivery layer.
 */
int datadog_metrics_submit(struct exporter *e, const struct ddm_batch *b, uint64_t origin);
/* The same for a request of `tenant` (otlp_request.tenant; -1: none): its items count in the
 * tenant's share of the queues (delivery.h: dlv_dest_enqueue_tenant). */
int datadog_metrics_submit_as(struct exporter *e, const struct ddm_batch *b, uint64_t origin,
                              int tenant);

struct mtr_translator;
/* A metrics translator (translate/metrics/mtr.h) with cfg's exporters.datadog.metrics
 * settings; start_ns as mtr_new's. NULL (logged) when it cannot be made. For the exporter,
 * and for `otel2dd translate`. */
struct mtr_translator *datadog_metrics_translator_new(const struct datadog_config *cfg,
                                                      uint64_t start_ns);
/* mtr_resource_fn with ctx the const struct datadog_config *: a resource's tags (the
 * attributes.TagsFromAttributes table; task_arn on ECS Fargate; every attribute with
 * metrics.resource_attributes_as_tags) and host (the source's; none on Fargate; else the
 * configured hostname). */
int datadog_metrics_resource(void *ctx, const OtlpResource *res, struct o2d_arena *a,
                             const char *const **tags, size_t *ntags, const char **host);

#endif
