/*
 * datadog_metrics_int.h: the pure half of the Datadog metrics exporter (datadog_metrics_wire.c),
 * declared for datadog_metrics.c and its unit tests only (tests/unit/test_metrics_encode.c):
 *   datadog_series_dest    MetricPayload bodies (protobuf), zstd, https://api.<site>/api/v2/series
 *   datadog_sketches_dest  SketchPayload bodies (protobuf), zstd, .../api/beta/sketches
 * An item is one encoded MetricSeries holding one point, or one encoded Sketch holding one
 * Dogsketch: both payloads are a repeated field 1 of those, so a body is its items, each
 * framed as field 1, and the delivery layer can pack, halve and retry them one by one.
 */
#ifndef O2D_DATADOG_METRICS_INT_H
#define O2D_DATADOG_METRICS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dd_metrics.h"
#include "delivery.h"

/* The Agent's serializer defaults, which its config calls the intake's limits ("do not
 * change the following values. Your payloads will get dropped by Datadog's intake"):
 * datadog-agent pkg/config/setup/config.go, serializer_max_series_payload_size,
 * serializer_max_series_uncompressed_payload_size, serializer_max_series_points_per_payload,
 * and, for sketches, serializer_max_payload_size and serializer_max_uncompressed_payload_size. */
#define DATADOG_SERIES_MAX_BODY   512000u
#define DATADOG_SERIES_MAX_RAW    5242880u
#define DATADOG_SERIES_MAX_POINTS 10000u
#define DATADOG_SKETCHES_MAX_BODY (2u * 1024 * 1024 + 512u * 1024)
#define DATADOG_SKETCHES_MAX_RAW  (4u * 1024 * 1024)

/* Metadata.origin of every series and sketch, as the Collector's Datadog exporter sets it
 * for what the OTLP translator made (opentelemetry-mapping-go pkg/otlp/metrics/origin.go:
 * OriginProductDatadogExporter 19, OriginSubProductOTLP 17, OriginProductDetailUnknown 0 for
 * a scope that is not a Collector receiver; contrib exporter/datadogexporter
 * internal/metrics/series.go writes the same three). In the protobuf the sub-product is
 * origin_category and the product detail origin_service (datadog-agent
 * pkg/serializer/internal/metrics/origin_mapping.go). */
#define DATADOG_ORIGIN_PRODUCT  19u
#define DATADOG_ORIGIN_CATEGORY 17u
#define DATADOG_ORIGIN_SERVICE  0u

/* What the destinations need for their headers. */
struct datadog_metrics_wire {
    char key_header[300]; /* "DD-API-KEY: <key>": never logged */
};

extern const struct dlv_dest_type datadog_series_dest;
extern const struct dlv_dest_type datadog_sketches_dest;

/* An item of datadog_series_dest: s as a MetricSeries with one point, a host resource
 * (name "" when s->host is NULL, as the Agent's serializer writes it) and the origin. *out
 * NULL and O2D_ERR_NOMEM when out of memory; O2D_ERR_INVALID when s has no name. */
int datadog_series_item(const struct ddm_series *s, struct dlv_item **out);
/* An item of datadog_sketches_dest: k as a Sketch with one Dogsketch and the origin.
 * O2D_ERR_INVALID when it has no name or its bins are not as the agent sketch keeps them
 * (keys going down; a key may repeat: the agent sketch splits a count past its bin width
 * into several bins of one key). */
int datadog_sketch_item(const struct ddm_sketch *k, struct dlv_item **out);

/* Bytes an item takes in a body: its field 1 tag, its length and itself. */
size_t datadog_metrics_item_cost(const struct dlv_item *it);

#endif
