/*
 * datadog_metrics_wire.c: the pure half of the Datadog metrics exporter
 * (datadog_metrics_int.h): series points and sketches as items of the delivery layer, and
 * the two destinations that cut them into MetricPayload and SketchPayload bodies
 * (proto/datadog/agentpayload/agent_payload.proto, from DataDog/agent-payload
 * proto/metrics/agent_payload.proto).
 *
 * What a series carries follows the Agent's serializer, which the Collector's Datadog
 * exporter uses for metrics (datadog-agent pkg/serializer/internal/metrics/series.go,
 * MarshalSplitCompress / writeSerie): a resource {type "host", name <host>} always, even with
 * an empty host; tags; one point {value, timestamp}; the type; source_type_name empty;
 * the interval; the unit; metadata.origin. A sketch follows sketch_series_list.go: metric,
 * host, tags, one Dogsketch {ts, cnt, min, max, avg, sum, k, n}, metadata.origin. The origin
 * numbers are in datadog_metrics_int.h. Compression (zstd level 1, the Agent's default
 * serializer_compressor_kind and serializer_zstd_compressor_level) and the size limits are
 * the delivery layer's, configured by datadog_metrics.c.
 */
#include <string.h>

#include "datadog_metrics_int.h"
#include "datadog/agentpayload/agent_payload.pb-c.h"
#include "o2d.h"
#include "o2d_varint.h"

typedef Datadog__Agentpayload__MetricPayload__MetricSeries PbSeries;
typedef Datadog__Agentpayload__MetricPayload__MetricPoint PbPoint;
typedef Datadog__Agentpayload__MetricPayload__Resource PbResource;
typedef Datadog__Agentpayload__SketchPayload__Sketch PbSketch;
typedef Datadog__Agentpayload__SketchPayload__Sketch__Dogsketch PbDogsketch;
typedef Datadog__Agentpayload__Metadata PbMetadata;
typedef Datadog__Agentpayload__Origin PbOrigin;

/* Field 1, length-delimited: MetricPayload.series and SketchPayload.sketches alike. */
#define FIELD1_LEN_TAG 0x0a

static char *str_or_empty(const char *s)
{
    /* protobuf-c reads these and never writes them */
    return (char *)(s != NULL ? s : "");
}

static void origin_init(PbMetadata *md, PbOrigin *o)
{
    datadog__agentpayload__origin__init(o);
    o->origin_product = DATADOG_ORIGIN_PRODUCT;
    o->origin_category = DATADOG_ORIGIN_CATEGORY;
    o->origin_service = DATADOG_ORIGIN_SERVICE;
    datadog__agentpayload__metadata__init(md);
    md->origin = o;
}

static Datadog__Agentpayload__MetricPayload__MetricType series_type(enum ddm_type t)
{
    switch (t) {
    case DDM_COUNT:
        return DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__COUNT;
    case DDM_RATE:
        return DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__RATE;
    case DDM_GAUGE:
        return DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__GAUGE;
    default:
        return DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__UNSPECIFIED;
    }
}

/* A new item holding `msg` packed (no head). */
static int pack_item(const ProtobufCMessage *msg, struct dlv_item **out)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    struct dlv_item *it = dlv_item_new(len, 0, 1);
    if (it == NULL) {
        return O2D_ERR_NOMEM;
    }
    protobuf_c_message_pack(msg, it->data);
    *out = it;
    return O2D_OK;
}

int datadog_series_item(const struct ddm_series *s, struct dlv_item **out)
{
    *out = NULL;
    if (s->name == NULL || s->name[0] == '\0' || (s->ntags > 0 && s->tags == NULL)) {
        return O2D_ERR_INVALID;
    }
    PbResource host;
    datadog__agentpayload__metric_payload__resource__init(&host);
    host.type = "host";
    host.name = str_or_empty(s->host);
    PbResource *resources[1] = {&host};

    PbPoint point;
    datadog__agentpayload__metric_payload__metric_point__init(&point);
    point.value = s->value;
    point.timestamp = s->ts_s;
    PbPoint *points[1] = {&point};

    PbOrigin origin;
    PbMetadata md;
    origin_init(&md, &origin);

    PbSeries ps;
    datadog__agentpayload__metric_payload__metric_series__init(&ps);
    ps.n_resources = 1;
    ps.resources = resources;
    ps.metric = str_or_empty(s->name);
    ps.n_tags = s->ntags;
    ps.tags = (char **)s->tags;
    ps.n_points = 1;
    ps.points = points;
    ps.type = series_type(s->type);
    ps.unit = str_or_empty(s->unit);
    ps.interval = s->interval_s;
    ps.metadata = &md;
    return pack_item(&ps.base, out);
}

int datadog_sketch_item(const struct ddm_sketch *k, struct dlv_item **out)
{
    *out = NULL;
    if (k->name == NULL || k->name[0] == '\0' || (k->ntags > 0 && k->tags == NULL) ||
        (k->nbins > 0 && (k->k == NULL || k->n == NULL)) ||
        k->nbins > DATADOG_SKETCHES_MAX_RAW / 2) {
        return O2D_ERR_INVALID;
    }
    for (size_t i = 1; i < k->nbins; i++) {
        if (k->k[i] < k->k[i - 1]) {
            return O2D_ERR_INVALID;
        }
    }
    PbDogsketch ds;
    datadog__agentpayload__sketch_payload__sketch__dogsketch__init(&ds);
    ds.ts = k->ts_s;
    ds.cnt = k->cnt;
    ds.min = k->min;
    ds.max = k->max;
    ds.avg = k->avg;
    ds.sum = k->sum;
    ds.n_k = k->nbins;
    ds.k = (int32_t *)k->k;
    ds.n_n = k->nbins;
    ds.n = (uint32_t *)k->n;
    PbDogsketch *dss[1] = {&ds};

    PbOrigin origin;
    PbMetadata md;
    origin_init(&md, &origin);

    PbSketch sk;
    datadog__agentpayload__sketch_payload__sketch__init(&sk);
    sk.metric = str_or_empty(k->name);
    sk.host = str_or_empty(k->host);
    sk.n_tags = k->ntags;
    sk.tags = (char **)k->tags;
    sk.n_dogsketches = 1;
    sk.dogsketches = dss;
    sk.metadata = &md;
    return pack_item(&sk.base, out);
}

size_t datadog_metrics_item_cost(const struct dlv_item *it)
{
    size_t len = dlv_item_body_len(it);
    return 1 + o2d_varint_len(len) + len;
}

static size_t item_cost(void *ctx, const struct dlv_item *it)
{
    (void)ctx;
    return datadog_metrics_item_cost(it);
}

/* The body: each item as field 1 of the payload, in order. The payloads' other fields
 * (SketchPayload.metadata, CommonMetadata) are left out: the Agent fills none of them for
 * what it sends to these intakes. */
static int field1_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    (void)ctx;
    size_t size = 0;
    for (size_t i = 0; i < n; i++) {
        size += datadog_metrics_item_cost(items[i]);
    }
    if (size > out->max - out->len) {
        return O2D_ERR_TOO_LARGE;
    }
    int rv = o2d_buf_reserve(out, size);
    if (rv != O2D_OK) {
        return rv;
    }
    uint8_t *p = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        size_t len = dlv_item_body_len(items[i]);
        *p++ = FIELD1_LEN_TAG;
        p += o2d_put_varint(p, len);
        memcpy(p, dlv_item_body(items[i]), len);
        p += len;
    }
    out->len += size;
    return O2D_OK;
}

static void metrics_headers(void *ctx, struct dlv_item *const *items, size_t n,
                            struct dlv_headers *h)
{
    const struct datadog_metrics_wire *w = ctx;
    (void)items;
    (void)n;
    dlv_headers_add(h, w->key_header, 0);
    dlv_headers_add(h, "Content-Type: application/x-protobuf", 0);
}

const struct dlv_dest_type datadog_series_dest = {
    .name = "datadog_series",
    .request = "series",
    .unit = "points",
    .item_cost = item_cost,
    .max_items = DATADOG_SERIES_MAX_POINTS,
    .encode = field1_encode,
    .headers = metrics_headers,
};

const struct dlv_dest_type datadog_sketches_dest = {
    .name = "datadog_sketches",
    .request = "sketches",
    .unit = "points",
    .item_cost = item_cost,
    .encode = field1_encode,
    .headers = metrics_headers,
};
