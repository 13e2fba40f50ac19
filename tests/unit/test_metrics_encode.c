/*
 * test_metrics_encode.c: the metrics wire (exporters/datadog_metrics_int.h) and its two
 * destinations on the delivery layer, built by dlv_build_bodies as the sender builds them:
 * every body decompresses with zstd (libzstd, not our code) and unpacks with protobuf-c as a
 * MetricPayload or SketchPayload; bodies stay within the intake's limits (series: 512,000 B
 * compressed, 5,242,880 B before, 10,000 points; sketches: 2.5 MiB and 4 MiB, the Agent's
 * serializer defaults), many points split into several bodies and every point comes out
 * exactly once, in order; each field of a point is where agent_payload.proto says; a point
 * too large alone is left out and counted. Then the exporter itself, through its entry point
 * (datadog_metrics_submit) and ->admit: a full queue refuses with O2D_ERR_BUSY, and what is
 * left at stop is counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "datadog.h"
#include "datadog/agentpayload/agent_payload.pb-c.h"
#include "datadog_metrics.h"
#include "datadog_metrics_int.h"
#include "exporter.h"
#include "o2d.h"
#include "otlp.h"

typedef Datadog__Agentpayload__MetricPayload PbPayload;
typedef Datadog__Agentpayload__MetricPayload__MetricSeries PbSeries;
typedef Datadog__Agentpayload__SketchPayload PbSketchPayload;
typedef Datadog__Agentpayload__SketchPayload__Sketch PbSketch;

#define SINK_MAX 256

struct sink {
    struct dlv_body *bodies[SINK_MAX];
    size_t n;
    size_t n_left;
    int left_reason;
};

static void collect(void *ctx, struct dlv_body *body)
{
    struct sink *s = ctx;
    assert_true(s->n < SINK_MAX);
    s->bodies[s->n++] = body;
}

static void left_out(void *ctx, const struct dlv_item *it, int reason)
{
    struct sink *s = ctx;
    (void)it;
    s->n_left++;
    s->left_reason = reason;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        dlv_body_free(s->bodies[i]);
    }
    s->n = 0;
}

/* Builds bodies as the sender does with the destination's settings (datadog_metrics.c). */
static void build(const struct dlv_dest_type *t, struct dlv_item **items, size_t n, struct sink *s,
                  struct dlv_build *out)
{
    int series = t == &datadog_series_dest;
    struct datadog_metrics_wire w;
    snprintf(w.key_header, sizeof(w.key_header), "DD-API-KEY: k");
    memset(s, 0, sizeof(*s));
    struct dlv_build b = {
        .type = t,
        .ctx = &w,
        .max_body = series ? DATADOG_SERIES_MAX_BODY : DATADOG_SKETCHES_MAX_BODY,
        .max_raw = series ? DATADOG_SERIES_MAX_RAW : DATADOG_SKETCHES_MAX_RAW,
        .batch_bytes = series ? DATADOG_SERIES_MAX_RAW : DATADOG_SKETCHES_MAX_RAW,
        .compression = DLV_COMPRESS_ZSTD,
        .emit = collect,
        .emit_ctx = s,
        .left_out = left_out,
    };
    assert_int_equal(dlv_build_bodies(&b, items, n), O2D_OK);
    *out = b;
}

/* The body decompressed by libzstd; checks the frame says the raw length. */
static uint8_t *unzstd(const struct dlv_body *b, size_t *len)
{
    unsigned long long raw = ZSTD_getFrameContentSize(b->data, b->len);
    assert_true(raw != ZSTD_CONTENTSIZE_ERROR && raw != ZSTD_CONTENTSIZE_UNKNOWN);
    assert_int_equal(raw, b->raw_len);
    uint8_t *out = malloc(raw > 0 ? raw : 1);
    assert_non_null(out);
    size_t n = ZSTD_decompress(out, raw, b->data, b->len);
    assert_false(ZSTD_isError(n));
    assert_int_equal(n, raw);
    *len = n;
    return out;
}

static void free_items(struct dlv_item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(items[i]);
    }
}

/* A series named "m.<i>" with value i, tagged; `pad` bytes of one tag make it larger. */
static struct dlv_item *series_item(size_t i, const char *host, size_t pad)
{
    char name[32];
    snprintf(name, sizeof(name), "m.%zu", i);
    char *big = malloc(pad + 8);
    assert_non_null(big);
    memcpy(big, "pad:", 4);
    memset(big + 4, 'a' + (int)(i % 26), pad);
    big[4 + pad] = '\0';
    const char *tags[] = {"service:checkout", "env:prod", "version:1.2.3", big};
    struct ddm_series s = {
        .name = name,
        .type = DDM_COUNT,
        .tags = tags,
        .ntags = pad > 0 ? 4 : 3,
        .host = host,
        .ts_s = 1700000000 + (int64_t)i,
        .value = (double)i,
        .interval_s = 0,
        .unit = NULL,
    };
    struct dlv_item *it = NULL;
    assert_int_equal(datadog_series_item(&s, &it), O2D_OK);
    assert_non_null(it);
    assert_int_equal(it->count, 1);
    assert_int_equal(it->head_len, 0);
    free(big);
    return it;
}

static void one_series_every_field(void **state)
{
    (void)state;
    const char *tags[] = {"service:web", "http.method:GET"};
    struct ddm_series s = {
        .name = "http.server.requests",
        .type = DDM_RATE,
        .tags = tags,
        .ntags = 2,
        .host = "i-0abc",
        .ts_s = 1712345678,
        .value = 2.5,
        .interval_s = 10,
        .unit = "request",
    };
    struct dlv_item *it = NULL;
    assert_int_equal(datadog_series_item(&s, &it), O2D_OK);
    struct sink sk;
    struct dlv_build b;
    build(&datadog_series_dest, &it, 1, &sk, &b);
    assert_int_equal(sk.n, 1);
    assert_int_equal(b.too_large + b.failed, 0);
    size_t len;
    uint8_t *raw = unzstd(sk.bodies[0], &len);
    assert_int_equal(len, datadog_metrics_item_cost(it));
    PbPayload *p = datadog__agentpayload__metric_payload__unpack(NULL, len, raw);
    assert_non_null(p);
    assert_int_equal(p->n_series, 1);
    PbSeries *ps = p->series[0];
    assert_string_equal(ps->metric, "http.server.requests");
    assert_int_equal(ps->type, DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__RATE);
    assert_int_equal(ps->n_tags, 2);
    assert_string_equal(ps->tags[0], "service:web");
    assert_string_equal(ps->tags[1], "http.method:GET");
    assert_int_equal(ps->n_resources, 1);
    assert_string_equal(ps->resources[0]->type, "host");
    assert_string_equal(ps->resources[0]->name, "i-0abc");
    assert_int_equal(ps->n_points, 1);
    assert_int_equal(ps->points[0]->timestamp, 1712345678);
    assert_true(ps->points[0]->value == 2.5);
    assert_int_equal(ps->interval, 10);
    assert_string_equal(ps->unit, "request");
    assert_string_equal(ps->source_type_name, "");
    assert_non_null(ps->metadata);
    assert_non_null(ps->metadata->origin);
    assert_int_equal(ps->metadata->origin->origin_product, 19);
    assert_int_equal(ps->metadata->origin->origin_category, 17);
    assert_int_equal(ps->metadata->origin->origin_service, 0);
    datadog__agentpayload__metric_payload__free_unpacked(p, NULL);
    free(raw);
    /* The other enum values, and no host: a host resource with an empty name. */
    enum ddm_type types[] = {DDM_GAUGE, DDM_COUNT, DDM_UNSPECIFIED};
    int want[] = {3, 1, 0};
    for (size_t i = 0; i < 3; i++) {
        s.type = types[i];
        s.host = NULL;
        s.unit = NULL;
        struct dlv_item *t = NULL;
        assert_int_equal(datadog_series_item(&s, &t), O2D_OK);
        PbSeries *one = (PbSeries *)protobuf_c_message_unpack(
            &datadog__agentpayload__metric_payload__metric_series__descriptor, NULL,
            dlv_item_body_len(t), dlv_item_body(t));
        assert_non_null(one);
        assert_int_equal(one->type, want[i]);
        assert_int_equal(one->n_resources, 1);
        assert_string_equal(one->resources[0]->type, "host");
        assert_string_equal(one->resources[0]->name, "");
        assert_string_equal(one->unit, "");
        protobuf_c_message_free_unpacked(&one->base, NULL);
        dlv_item_free(t);
    }
    /* Headers: the key and the content type (Content-Encoding is the layer's). */
    struct datadog_metrics_wire w;
    snprintf(w.key_header, sizeof(w.key_header), "DD-API-KEY: secret");
    struct dlv_headers h = {.n = 0, .used = 0};
    datadog_series_dest.headers(&w, &it, 1, &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.line[0], "DD-API-KEY: secret");
    assert_string_equal(h.line[1], "Content-Type: application/x-protobuf");
    sink_free(&sk);
    dlv_item_free(it);
}

/* Many series: several bodies, each within every limit; every point once, in order. */
static void check_series_split(size_t n, size_t pad, size_t min_bodies)
{
    struct dlv_item **items = calloc(n, sizeof(*items));
    assert_non_null(items);
    for (size_t i = 0; i < n; i++) {
        items[i] = series_item(i, i % 2 ? "host-a" : NULL, pad);
    }
    struct sink sk;
    struct dlv_build b;
    build(&datadog_series_dest, items, n, &sk, &b);
    assert_int_equal(b.too_large + b.failed, 0);
    assert_true(sk.n >= min_bodies);
    size_t next = 0;
    for (size_t k = 0; k < sk.n; k++) {
        const struct dlv_body *body = sk.bodies[k];
        assert_true(body->len <= DATADOG_SERIES_MAX_BODY);
        assert_true(body->raw_len <= DATADOG_SERIES_MAX_RAW);
        assert_true(body->n <= DATADOG_SERIES_MAX_POINTS);
        assert_int_equal(body->units, body->n);
        size_t len;
        uint8_t *raw = unzstd(body, &len);
        PbPayload *p = datadog__agentpayload__metric_payload__unpack(NULL, len, raw);
        assert_non_null(p);
        assert_int_equal(p->n_series, body->n);
        for (size_t i = 0; i < p->n_series; i++, next++) {
            char name[32];
            snprintf(name, sizeof(name), "m.%zu", next);
            assert_string_equal(p->series[i]->metric, name);
            assert_true(p->series[i]->points[0]->value == (double)next);
            assert_int_equal(p->series[i]->n_tags, pad > 0 ? 4 : 3);
            assert_ptr_equal(body->items[i], items[next]);
        }
        datadog__agentpayload__metric_payload__free_unpacked(p, NULL);
        free(raw);
    }
    assert_int_equal(next, n);
    sink_free(&sk);
    free_items(items, n);
    free(items);
}

static void many_series_split_by_points(void **state)
{
    (void)state;
    /* Small points: the 10,000 points limit cuts first. */
    check_series_split(25000, 0, 3);
}

static void many_series_split_by_size(void **state)
{
    (void)state;
    /* ~1.1 KB points of hardly compressible-looking tags: 5 MB before compression, and
     * the compressed limit, cut them. */
    check_series_split(12000, 1100, 3);
}

/* Random-looking tags (xorshift) compress badly: the 512,000 B compressed limit, not the
 * raw one, decides, and bodies are built again in halves until they fit. */
static void incompressible_series_halved_to_fit(void **state)
{
    (void)state;
    size_t n = 3000;
    struct dlv_item **items = calloc(n, sizeof(*items));
    assert_non_null(items);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        char tag[1100];
        memcpy(tag, "r:", 2);
        for (size_t k = 2; k < sizeof(tag) - 1; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            tag[k] = (char)('!' + (x % 90));
        }
        tag[sizeof(tag) - 1] = '\0';
        const char *tags[] = {tag};
        char name[32];
        snprintf(name, sizeof(name), "m.%zu", i);
        struct ddm_series s = {.name = name, .type = DDM_GAUGE, .tags = tags, .ntags = 1};
        assert_int_equal(datadog_series_item(&s, &items[i]), O2D_OK);
    }
    struct sink sk;
    struct dlv_build b;
    build(&datadog_series_dest, items, n, &sk, &b);
    assert_int_equal(b.too_large + b.failed, 0);
    assert_true(sk.n >= 7); /* ~3.3 MB that compresses little: at least 7 bodies */
    size_t total = 0;
    for (size_t k = 0; k < sk.n; k++) {
        assert_true(sk.bodies[k]->len <= DATADOG_SERIES_MAX_BODY);
        size_t len;
        uint8_t *raw = unzstd(sk.bodies[k], &len);
        PbPayload *p = datadog__agentpayload__metric_payload__unpack(NULL, len, raw);
        assert_non_null(p);
        total += p->n_series;
        datadog__agentpayload__metric_payload__free_unpacked(p, NULL);
        free(raw);
    }
    assert_int_equal(total, n);
    sink_free(&sk);
    free_items(items, n);
    free(items);
}

static void series_too_large_alone_is_left_out(void **state)
{
    (void)state;
    struct dlv_item *items[3];
    items[0] = series_item(0, "h", 0);
    items[1] = series_item(1, "h", DATADOG_SERIES_MAX_RAW); /* over the raw limit alone */
    items[2] = series_item(2, "h", 0);
    struct sink sk;
    struct dlv_build b;
    build(&datadog_series_dest, items, 3, &sk, &b);
    assert_int_equal(b.too_large, 1);
    assert_int_equal(sk.n_left, 1);
    assert_int_equal(sk.left_reason, DLV_DROP_TOO_LARGE);
    size_t got = 0;
    for (size_t k = 0; k < sk.n; k++) {
        got += sk.bodies[k]->n;
        for (size_t i = 0; i < sk.bodies[k]->n; i++) {
            assert_true(sk.bodies[k]->items[i] != items[1]);
        }
    }
    assert_int_equal(got, 2);
    sink_free(&sk);
    free_items(items, 3);
}

static void invalid_points_refused(void **state)
{
    (void)state;
    struct dlv_item *it = (struct dlv_item *)1;
    struct ddm_series s = {.name = NULL, .type = DDM_GAUGE};
    assert_int_equal(datadog_series_item(&s, &it), O2D_ERR_INVALID);
    assert_null(it);
    s.name = "";
    assert_int_equal(datadog_series_item(&s, &it), O2D_ERR_INVALID);
    s.name = "x";
    s.ntags = 1; /* and no tags */
    assert_int_equal(datadog_series_item(&s, &it), O2D_ERR_INVALID);
    int32_t k[] = {5, 3};
    uint32_t c[] = {1, 1};
    struct ddm_sketch sk = {.name = "d", .cnt = 2, .k = k, .n = c, .nbins = 2};
    assert_int_equal(datadog_sketch_item(&sk, &it), O2D_ERR_INVALID); /* keys going down */
    k[0] = 3;
    assert_int_equal(datadog_sketch_item(&sk, &it), O2D_OK); /* a key may repeat */
    dlv_item_free(it);
    sk.k = NULL;
    assert_int_equal(datadog_sketch_item(&sk, &it), O2D_ERR_INVALID);
}

/* A sketch named "d.<i>" with `nbins` bins: keys -nbins/2.., counts i+1. */
static struct dlv_item *sketch_item(size_t i, size_t nbins, int32_t *k, uint32_t *c)
{
    for (size_t b = 0; b < nbins; b++) {
        k[b] = (int32_t)b - (int32_t)(nbins / 2);
        c[b] = (uint32_t)(i + 1);
    }
    char name[32];
    snprintf(name, sizeof(name), "d.%zu", i);
    const char *tags[] = {"service:web", "env:prod"};
    struct ddm_sketch s = {
        .name = name,
        .tags = tags,
        .ntags = 2,
        .host = "host-a",
        .ts_s = 1700000000,
        .cnt = (int64_t)(nbins * (i + 1)),
        .min = -1.5,
        .max = 99.25,
        .avg = 3.0,
        .sum = 3.0 * (double)(nbins * (i + 1)),
        .k = k,
        .n = c,
        .nbins = nbins,
    };
    struct dlv_item *it = NULL;
    assert_int_equal(datadog_sketch_item(&s, &it), O2D_OK);
    return it;
}

static void sketches_every_field_and_split(void **state)
{
    (void)state;
    size_t n = 1500, nbins = 1000;
    int32_t *k = calloc(nbins, sizeof(*k));
    uint32_t *c = calloc(nbins, sizeof(*c));
    struct dlv_item **items = calloc(n, sizeof(*items));
    assert_true(k != NULL && c != NULL && items != NULL);
    for (size_t i = 0; i < n; i++) {
        items[i] = sketch_item(i, nbins, k, c);
    }
    struct sink sk;
    struct dlv_build b;
    build(&datadog_sketches_dest, items, n, &sk, &b);
    assert_int_equal(b.too_large + b.failed, 0);
    assert_true(sk.n >= 2); /* ~5 MB of bins before compression */
    size_t next = 0;
    for (size_t j = 0; j < sk.n; j++) {
        assert_true(sk.bodies[j]->len <= DATADOG_SKETCHES_MAX_BODY);
        assert_true(sk.bodies[j]->raw_len <= DATADOG_SKETCHES_MAX_RAW);
        size_t len;
        uint8_t *raw = unzstd(sk.bodies[j], &len);
        PbSketchPayload *p = datadog__agentpayload__sketch_payload__unpack(NULL, len, raw);
        assert_non_null(p);
        assert_int_equal(p->n_sketches, sk.bodies[j]->n);
        for (size_t i = 0; i < p->n_sketches; i++, next++) {
            PbSketch *s = p->sketches[i];
            char name[32];
            snprintf(name, sizeof(name), "d.%zu", next);
            assert_string_equal(s->metric, name);
            assert_string_equal(s->host, "host-a");
            assert_int_equal(s->n_tags, 2);
            assert_string_equal(s->tags[1], "env:prod");
            assert_int_equal(s->n_distributions, 0);
            assert_int_equal(s->n_dogsketches, 1);
            const Datadog__Agentpayload__SketchPayload__Sketch__Dogsketch *d = s->dogsketches[0];
            assert_int_equal(d->ts, 1700000000);
            assert_int_equal(d->cnt, (int64_t)(nbins * (next + 1)));
            assert_true(d->min == -1.5 && d->max == 99.25 && d->avg == 3.0);
            assert_true(d->sum == 3.0 * (double)(nbins * (next + 1)));
            assert_int_equal(d->n_k, nbins);
            assert_int_equal(d->n_n, nbins);
            assert_int_equal(d->k[0], -(int32_t)(nbins / 2)); /* sint32: negative keys */
            assert_int_equal(d->k[nbins - 1], (int32_t)nbins - 1 - (int32_t)(nbins / 2));
            assert_int_equal(d->n[7], next + 1);
            assert_int_equal(s->metadata->origin->origin_product, 19);
            assert_int_equal(s->metadata->origin->origin_category, 17);
        }
        datadog__agentpayload__sketch_payload__free_unpacked(p, NULL);
        free(raw);
    }
    assert_int_equal(next, n);
    sink_free(&sk);
    free_items(items, n);
    free(items);
    free(k);
    free(c);
}

/* ---- the exporter through its entry point ---- */

static void exporter_submit_admit_and_stop(void **state)
{
    (void)state;
    struct datadog_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.api_key, sizeof(cfg.api_key), "k");
    snprintf(cfg.site, sizeof(cfg.site), "datadoghq.com");
    /* Nothing listens on port 1: every body fails and is retried, so items stay queued. */
    snprintf(cfg.metrics.endpoint, sizeof(cfg.metrics.endpoint), "http://127.0.0.1:1/");
    cfg.metrics.enabled = 1;
    cfg.queue_max_bytes = 4 * 4096; /* 4 KiB a queue */
    cfg.flush_interval_ms = 100;
    cfg.max_elapsed_ms = 60000;
    assert_int_equal(datadog_metrics_route_of(&cfg), DATADOG_METRICS_INTAKE);
    assert_null(datadog_metrics_agent_note(&cfg));
    char base[600];
    datadog_metrics_base(&cfg, base, sizeof(base));
    assert_string_equal(base, "http://127.0.0.1:1");

    struct exporter *e = NULL;
    assert_int_equal(datadog_metrics_exporter_new(&e, &cfg, NULL), O2D_OK);
    assert_int_equal(e->type->start(e), O2D_OK);
    struct otlp_request req;
    memset(&req, 0, sizeof(req));
    req.signal = OTLP_SIGNAL_METRICS;
    req.accepted = 60;
    assert_int_equal(e->type->admit(e, &req), O2D_OK);

    struct ddm_series series[120];
    char names[120][16];
    const char *tags[] = {"service:a", "env:b"};
    for (size_t i = 0; i < 120; i++) {
        snprintf(names[i], sizeof(names[i]), "s.%zu", i);
        series[i] = (struct ddm_series){
            .name = names[i], .type = DDM_GAUGE, .tags = tags, .ntags = 2, .value = (double)i};
    }
    int32_t k[64];
    uint32_t c[64];
    for (int i = 0; i < 64; i++) {
        k[i] = i;
        c[i] = 1;
    }
    struct ddm_sketch sketches[10];
    for (size_t i = 0; i < 10; i++) {
        sketches[i] = (struct ddm_sketch){
            .name = "d", .cnt = 64, .k = k, .n = c, .nbins = 64, .min = 0, .max = 1};
    }
    struct ddm_batch b = {.series = series, .nseries = 120, .sketches = sketches, .nsketches = 10};
    assert_int_equal(datadog_metrics_submit(e, &b, 42), O2D_OK);
    /* ~8 KB of series in a 4 KiB queue: the next request is refused, as for traces. */
    assert_int_equal(e->type->admit(e, &req), O2D_ERR_BUSY);
    /* An OTLP request of another signal is not this exporter's to refuse. */
    req.signal = OTLP_SIGNAL_TRACES;
    assert_int_equal(e->type->admit(e, &req), O2D_OK);
    assert_int_equal(e->type->submit(e, "grpc", &req), O2D_OK);

    /* A batch with one bad point queues nothing. */
    struct ddm_series bad[2] = {series[0], {.name = NULL}};
    struct ddm_batch bb = {.series = bad, .nseries = 2};
    assert_int_equal(datadog_metrics_submit(e, &bb, 43), O2D_ERR_INVALID);

    struct exporter_metrics m;
    memset(&m, 0, sizeof(m));
    e->type->metrics(e, &m);
    assert_int_equal(m.n_outputs, 2);
    assert_string_equal(m.outputs[0].name, "datadog_series");
    assert_string_equal(m.outputs[1].name, "datadog_sketches");
    assert_int_equal(m.outputs[0].queue_items, 120);
    assert_int_equal(m.outputs[1].queue_items, 10);
    assert_int_equal(m.outputs[0].queue_capacity_bytes, 4096);
    uint64_t full = 0;
    for (size_t i = 0; i < m.outputs[0].n_drops; i++) {
        if (strcmp(m.outputs[0].drops[i].reason, "queue_full") == 0) {
            full = m.outputs[0].drops[i].items;
        }
    }
    assert_int_equal(full, 60);

    e->type->stop(e);
    assert_int_equal(datadog_metrics_submit(e, &b, 44), O2D_ERR_SHUTDOWN);
    req.signal = OTLP_SIGNAL_METRICS;
    assert_int_equal(e->type->admit(e, &req), O2D_ERR_SHUTDOWN);
    /* What never left is lost at stop, and counted; what the senders had taken (a queue this
     * small is sent a quarter at a time, at once) is in flight to an intake that is not
     * there, and counted when the HTTP client lets it go: every unit is one or the other. */
    memset(&m, 0, sizeof(m));
    e->type->metrics(e, &m);
    assert_int_equal(
        e->type->undelivered(e, NULL) + m.outputs[0].queue_items + m.outputs[1].queue_items, 130);
    e->type->destroy(e);
}

static void agent_mode_routes(void **state)
{
    (void)state;
    struct datadog_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.metrics.enabled = 1;
    snprintf(cfg.agent_endpoint, sizeof(cfg.agent_endpoint), "http://localhost:8126");
    assert_int_equal(datadog_metrics_route_of(&cfg), DATADOG_METRICS_NO_KEY);
    assert_non_null(strstr(datadog_metrics_agent_note(&cfg), "not sent"));
    snprintf(cfg.api_key, sizeof(cfg.api_key), "k");
    assert_int_equal(datadog_metrics_route_of(&cfg), DATADOG_METRICS_INTAKE);
    assert_non_null(strstr(datadog_metrics_agent_note(&cfg), "intake"));
    cfg.metrics.enabled = 0;
    assert_int_equal(datadog_metrics_route_of(&cfg), DATADOG_METRICS_OFF);
    char base[600];
    snprintf(cfg.site, sizeof(cfg.site), "datadoghq.eu");
    datadog_metrics_base(&cfg, base, sizeof(base));
    assert_string_equal(base, "https://api.datadoghq.eu");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_series_every_field),
        cmocka_unit_test(many_series_split_by_points),
        cmocka_unit_test(many_series_split_by_size),
        cmocka_unit_test(incompressible_series_halved_to_fit),
        cmocka_unit_test(series_too_large_alone_is_left_out),
        cmocka_unit_test(invalid_points_refused),
        cmocka_unit_test(sketches_every_field_and_split),
        cmocka_unit_test(exporter_submit_admit_and_stop),
        cmocka_unit_test(agent_mode_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
