/*
 * test_mtr.c: the OTLP metrics translator (translate/metrics/mtr.c) on requests packed as an
 * SDK packs them, decoded by otlp_decode, each case naming the Datadog rule it follows
 * (datadog-agent pkg/opentelemetry-mapping-go/otlp/metrics); the output is rendered one line per
 * series or sketch and compared. Hostile input: bounds out of order, counts that do not match
 * the bounds or do not add up, NaN bounds, and 10^6 distinct series against a bounded cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mtr.h"
#include "o2d.h"
#include "o2d_buf.h"
#include "otlp.h"

/* ---- a protobuf writer, enough for OTLP metrics ---- */

static void pw_varint(struct o2d_buf *b, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        assert_int_equal(o2d_buf_append_byte(b, (uint8_t)(c | (v ? 0x80 : 0))), O2D_OK);
    } while (v);
}
static void pw_tag(struct o2d_buf *b, unsigned f, unsigned wt)
{
    pw_varint(b, (uint64_t)f << 3 | wt);
}
static void pw_u(struct o2d_buf *b, unsigned f, uint64_t v)
{
    pw_tag(b, f, 0);
    pw_varint(b, v);
}
static void pw_f64(struct o2d_buf *b, unsigned f, uint64_t v)
{
    pw_tag(b, f, 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(o2d_buf_append_byte(b, (uint8_t)(v >> (8 * i))), O2D_OK);
    }
}
static void pw_d(struct o2d_buf *b, unsigned f, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    pw_f64(b, f, v);
}
static void pw_bytes(struct o2d_buf *b, unsigned f, const void *p, size_t n)
{
    pw_tag(b, f, 2);
    pw_varint(b, n);
    assert_int_equal(o2d_buf_append(b, p, n), O2D_OK);
}
static void pw_str(struct o2d_buf *b, unsigned f, const char *s)
{
    pw_bytes(b, f, s, strlen(s));
}
static void pw_sub(struct o2d_buf *b, unsigned f, struct o2d_buf *sub)
{
    pw_bytes(b, f, sub->data, sub->len);
    o2d_buf_reset(sub);
}
/* KeyValue{key, AnyValue{string_value}} */
static void pw_attr(struct o2d_buf *b, unsigned f, const char *k, const char *v)
{
    struct o2d_buf kv, av;
    o2d_buf_init(&kv, 1 << 20);
    o2d_buf_init(&av, 1 << 20);
    pw_str(&kv, 1, k);
    pw_str(&av, 1, v);
    pw_sub(&kv, 2, &av);
    pw_sub(b, f, &kv);
    o2d_buf_cleanup(&kv);
    o2d_buf_cleanup(&av);
}

#define S  1000000000ull
#define T0 (1700000000ull * S)

/* One request: one resource, one scope, and the metrics already packed in `metrics`. */
static void pack_request(struct o2d_buf *out, struct o2d_buf *metrics)
{
    struct o2d_buf sm, rm, scope;
    o2d_buf_init(&sm, 1 << 28);
    o2d_buf_init(&rm, 1 << 28);
    o2d_buf_init(&scope, 1 << 20);
    pw_str(&scope, 1, "lib");
    pw_str(&scope, 2, "1.2");
    pw_sub(&sm, 1, &scope);
    assert_int_equal(o2d_buf_append(&sm, metrics->data, metrics->len), O2D_OK);
    pw_sub(&rm, 2, &sm);
    pw_sub(out, 1, &rm);
    o2d_buf_cleanup(&sm);
    o2d_buf_cleanup(&rm);
    o2d_buf_cleanup(&scope);
    o2d_buf_reset(metrics);
}

/* Metric{name, <kind>{points, temporality, monotonic}} into m (field 2 of ScopeMetrics). */
static void pack_metric(struct o2d_buf *m, const char *name, unsigned kind, struct o2d_buf *pts,
                        int temporality, int monotonic)
{
    struct o2d_buf md, met;
    o2d_buf_init(&md, 1 << 28);
    o2d_buf_init(&met, 1 << 28);
    assert_int_equal(o2d_buf_append(&md, pts->data, pts->len), O2D_OK);
    if (temporality) {
        pw_u(&md, 2, (uint64_t)temporality);
    }
    if (monotonic) {
        pw_u(&md, 3, 1);
    }
    pw_str(&met, 1, name);
    pw_sub(&met, kind, &md);
    pw_sub(m, 2, &met);
    o2d_buf_cleanup(&md);
    o2d_buf_cleanup(&met);
    o2d_buf_reset(pts);
}

enum { GAUGE = 5, SUM = 7, HIST = 9, EXPHIST = 10, SUMMARY = 11 };
enum { DELTA = 1, CUMUL = 2 };

/* NumberDataPoint (field 1 of the points) */
static void number_point(struct o2d_buf *pts, uint64_t start, uint64_t ts, double v, uint32_t flags,
                         const char *attr)
{
    struct o2d_buf p;
    o2d_buf_init(&p, 1 << 20);
    if (start) {
        pw_f64(&p, 2, start);
    }
    pw_f64(&p, 3, ts);
    pw_d(&p, 4, v);
    if (attr) {
        pw_attr(&p, 7, "k", attr);
    }
    if (flags) {
        pw_u(&p, 8, flags);
    }
    pw_sub(pts, 1, &p);
    o2d_buf_cleanup(&p);
}

static void hist_point(struct o2d_buf *pts, uint64_t start, uint64_t ts, uint64_t count, double sum,
                       const uint64_t *bc, size_t nbc, const double *bd, size_t nbd,
                       const double *min, const double *max)
{
    struct o2d_buf p, packed;
    o2d_buf_init(&p, 1 << 20);
    o2d_buf_init(&packed, 1 << 20);
    if (start) {
        pw_f64(&p, 2, start);
    }
    pw_f64(&p, 3, ts);
    pw_f64(&p, 4, count);
    pw_d(&p, 5, sum);
    for (size_t i = 0; i < nbc; i++) { /* packed, as SDKs send it */
        for (int j = 0; j < 8; j++) {
            o2d_buf_append_byte(&packed, (uint8_t)(bc[i] >> (8 * j)));
        }
    }
    if (nbc) {
        pw_sub(&p, 6, &packed);
    }
    for (size_t i = 0; i < nbd; i++) { /* not packed: a parser must take both */
        pw_d(&p, 7, bd[i]);
    }
    if (min) {
        pw_d(&p, 11, *min);
    }
    if (max) {
        pw_d(&p, 12, *max);
    }
    pw_sub(pts, 1, &p);
    o2d_buf_cleanup(&p);
    o2d_buf_cleanup(&packed);
}

/* ---- running the translator ---- */

static const char *const RTAGS[] = {"service:svc", "env:prod"};

static int resource_fixture(void *ctx, const OtlpResource *res, struct o2d_arena *a,
                            const char *const **tags, size_t *ntags, const char **host)
{
    (void)res;
    (void)a;
    *tags = RTAGS;
    *ntags = 2;
    *host = ctx;
    return O2D_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void render_tags(struct o2d_buf *o, const char *const *tags, size_t n)
{
    const char **s = malloc((n + 1) * sizeof(*s));
    memcpy(s, tags, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_str);
    o2d_buf_append_byte(o, '[');
    for (size_t i = 0; i < n; i++) {
        if (strncmp(s[i], "instrumentation_scope", 21) == 0 || strncmp(s[i], "service:", 8) == 0 ||
            strncmp(s[i], "env:", 4) == 0) {
            continue; /* the same on every line */
        }
        o2d_buf_printf(o, "%s%s", o->data[o->len - 1] == '[' ? "" : ",", s[i]);
    }
    o2d_buf_append_byte(o, ']');
    free(s);
}

static const char *const TYPES[] = {"unspecified", "count", "rate", "gauge"};

/* One line per series and sketch, in order. */
static char *render(const struct ddm_batch *b)
{
    struct o2d_buf o;
    o2d_buf_init(&o, 1 << 26);
    for (size_t i = 0; i < b->nseries; i++) {
        const struct ddm_series *s = &b->series[i];
        o2d_buf_printf(&o, "%s %s %lld %.17g ", s->name, TYPES[s->type], (long long)s->ts_s,
                       s->value);
        render_tags(&o, s->tags, s->ntags);
        o2d_buf_append_byte(&o, '\n');
    }
    for (size_t i = 0; i < b->nsketches; i++) {
        const struct ddm_sketch *s = &b->sketches[i];
        o2d_buf_printf(&o, "sketch %s %lld cnt=%lld min=%.6g max=%.6g sum=%.6g avg=%.6g ", s->name,
                       (long long)s->ts_s, (long long)s->cnt, s->min, s->max, s->sum, s->avg);
        render_tags(&o, s->tags, s->ntags);
        uint64_t total = 0;
        for (size_t j = 0; j < s->nbins; j++) {
            total += s->n[j];
        }
        o2d_buf_printf(&o, " bins=%zu/%llu\n", s->nbins, (unsigned long long)total);
    }
    o2d_buf_append_byte(&o, '\0');
    return (char *)o.data;
}

struct run {
    struct mtr_translator *t;
    struct o2d_arena a;
    struct mtr_result res;
};

static char *translate(struct run *r, struct o2d_buf *req, uint64_t now)
{
    struct otlp_request or ;
    const char *reason;
    o2d_arena_reset(&r->a);
    assert_int_equal(otlp_decode(&r->a, OTLP_SIGNAL_METRICS, OTLP_ENC_PROTOBUF, req->data, req->len,
                                 & or, &reason),
                     O2D_OK);
    assert_int_equal(
        mtr_translate(r->t, or.msg.metrics, now, resource_fixture, "h1", &r->a, &r->res), O2D_OK);
    o2d_buf_reset(req);
    return render(&r->res.batch);
}

static void run_init(struct run *r, const struct mtr_config *cfg)
{
    const char *reason = NULL;
    r->t = mtr_new(cfg, T0, &reason);
    assert_non_null(r->t);
    o2d_arena_init(&r->a, 1u << 30);
}

static void run_cleanup(struct run *r)
{
    mtr_free(r->t);
    o2d_arena_cleanup(&r->a);
}

#define EXPECT(got, want)                                                                          \
    do {                                                                                           \
        char *g_ = (got);                                                                          \
        assert_string_equal(g_, want);                                                             \
        free(g_);                                                                                  \
    } while (0)

/* metrics_translator.go mapToDDFormat: gauge raw; delta sum -> count; cumulative
 * non-monotonic -> gauge; unspecified temporality dropped; isSkippable (NaN) and
 * NoRecordedValue points skipped (nan_metrics_test.go, TestMapNumberMetrics). */
static void test_numbers(void **state)
{
    (void)state;
    struct mtr_config cfg;
    mtr_config_default(&cfg);
    struct run r;
    run_init(&r, &cfg);
    struct o2d_buf pts, m, req;
    o2d_buf_init(&pts, 1 << 20);
    o2d_buf_init(&m, 1 << 20);
    o2d_buf_init(&req, 1 << 20);
    number_point(&pts, 0, T0 + 5 * S, 1.5, 0, "a");
    number_point(&pts, 0, T0 + 6 * S, NAN, 0, "a");
    number_point(&pts, 0, T0 + 7 * S, 9, 1, "a");
    pack_metric(&m, "g", GAUGE, &pts, 0, 0);
    number_point(&pts, T0, T0 + 5 * S, 3, 0, NULL);
    pack_metric(&m, "d", SUM, &pts, DELTA, 1);
    number_point(&pts, T0, T0 + 5 * S, -4, 0, "");
    pack_metric(&m, "updown", SUM, &pts, CUMUL, 0);
    number_point(&pts, T0, T0 + 5 * S, 4, 0, NULL);
    pack_metric(&m, "unspec", SUM, &pts, 0, 0);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0), "g gauge 1700000005 1.5 [k:a]\n"
                                    "d count 1700000005 3 []\n"
                                    "updown gauge 1700000005 -4 [k:n/a]\n");
    assert_int_equal(r.res.dropped[MTR_DROP_NAN_INF], 1);
    assert_int_equal(r.res.dropped[MTR_DROP_NO_VALUE], 1);
    assert_int_equal(r.res.dropped[MTR_DROP_TEMPORALITY], 1);
    assert_int_equal(r.res.points, 6);
    assert_string_equal(r.res.batch.series[0].host, "h1");
    assert_int_equal(r.res.batch.series[0].ntags, 5); /* 2 resource, 2 scope, 1 point */
    o2d_buf_cleanup(&pts);
    o2d_buf_cleanup(&m);
    o2d_buf_cleanup(&req);
    run_cleanup(&r);
}

/* ttlcache.go putAndGetMonotonic + mapNumberMonotonicMetrics + shouldConsumeInitialValue
 * (TestMapCumulativeMonotonic*, TestInitialCumulMonoValueMode*). */
static void test_cumulative_monotonic(void **state)
{
    (void)state;
    struct mtr_config cfg;
    mtr_config_default(&cfg);
    struct run r;
    run_init(&r, &cfg);
    struct o2d_buf pts, m, req;
    o2d_buf_init(&pts, 1 << 20);
    o2d_buf_init(&m, 1 << 20);
    o2d_buf_init(&req, 1 << 20);
    /* auto: started before the collector: the first point is not reported */
    number_point(&pts, T0 - S, T0 + 10 * S, 10, 0, NULL);
    pack_metric(&m, "old", SUM, &pts, CUMUL, 1);
    /* auto: started after the collector: reported as its value */
    number_point(&pts, T0 + S, T0 + 10 * S, 10, 0, NULL);
    pack_metric(&m, "new", SUM, &pts, CUMUL, 1);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0), "new count 1700000010 10 []\n");
    /* the differences; an older or equal point dropped; a reset (value down) not reported */
    number_point(&pts, T0 - S, T0 + 20 * S, 15, 0, NULL);
    number_point(&pts, T0 - S, T0 + 20 * S, 16, 0, NULL);
    number_point(&pts, T0 - S, T0 + 30 * S, 3, 0, NULL);
    number_point(&pts, T0 - S, T0 + 40 * S, 7, 0, NULL);
    pack_metric(&m, "old", SUM, &pts, CUMUL, 1);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0), "old count 1700000020 5 []\nold count 1700000040 4 []\n");
    assert_int_equal(r.res.dropped[MTR_DROP_OUT_OF_ORDER], 1);
    /* a new start time is a reset: re-cached, not diffed, and not the request's first point */
    number_point(&pts, T0 + 40 * S, T0 + 50 * S, 100, 0, NULL);
    pack_metric(&m, "old", SUM, &pts, CUMUL, 1);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0), "old count 1700000050 100 []\n");
    /* raw_value: the cumulative value as a gauge */
    run_cleanup(&r);
    cfg.cumul_mode = MTR_CUMUL_RAW_VALUE;
    run_init(&r, &cfg);
    number_point(&pts, T0 - S, T0 + 10 * S, 10, 0, NULL);
    pack_metric(&m, "old", SUM, &pts, CUMUL, 1);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0), "old gauge 1700000010 10 []\n");
    /* rateAsGaugeMetrics: per-second gauge of the difference, first point never */
    number_point(&pts, T0, T0 + 10 * S, 10, 0, NULL);
    number_point(&pts, T0, T0 + 20 * S, 30, 0, NULL);
    pack_metric(&m, "kafka.net.bytes_in.rate", SUM, &pts, CUMUL, 1);
    run_cleanup(&r);
    cfg.cumul_mode = MTR_CUMUL_TO_DELTA;
    cfg.initial_mode = MTR_INITIAL_KEEP;
    run_init(&r, &cfg);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0), "kafka.net.bytes_in.rate gauge 1700000020 2 []\n");
    o2d_buf_cleanup(&pts);
    o2d_buf_cleanup(&m);
    o2d_buf_cleanup(&req);
    run_cleanup(&r);
}

/* default_mapper.go MapHistogramMetrics/getSketchBuckets (hist/simple-delta_dist-cs.json:
 * buckets (-inf,0] and (0,+inf] both collapse onto key 0, as the infinite bound is replaced;
 * cnt, sum, avg exact; min/max from the point), getLegacyBuckets with formatFloat bound tags
 * (hist/simple-delta_counters-nocs.json), aggregation metrics (send_aggregation_metrics). */
static void test_histograms(void **state)
{
    (void)state;
    struct mtr_config cfg;
    mtr_config_default(&cfg);
    cfg.send_aggregation_metrics = 1;
    struct run r;
    run_init(&r, &cfg);
    struct o2d_buf pts, m, req;
    o2d_buf_init(&pts, 1 << 20);
    o2d_buf_init(&m, 1 << 20);
    o2d_buf_init(&req, 1 << 20);
    const uint64_t bc[] = {2, 18};
    const double bd[] = {0};
    double mn = -3, mx = 7;
    hist_point(&pts, T0, T0 + 5 * S, 20, 3.14, bc, 2, bd, 1, &mn, &mx);
    pack_metric(&m, "h", HIST, &pts, DELTA, 0);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0),
           "h.count count 1700000005 20 []\n"
           "h.sum count 1700000005 3.1400000000000001 []\n"
           "h.min gauge 1700000005 -3 []\n"
           "h.max gauge 1700000005 7 []\n"
           "sketch h 1700000005 cnt=20 min=-3 max=7 sum=3.14 avg=0.157 [] bins=1/20\n");
    /* no buckets: one (-inf, +inf) bucket on key -1 (hist/single-bucket-delta-no-min-max) */
    hist_point(&pts, T0, T0 + 5 * S, 20, 3.141592653589793, NULL, 0, NULL, 0, NULL, NULL);
    pack_metric(&m, "doubleHist.singlebucket.test", HIST, &pts, DELTA, 0);
    pack_request(&req, &m);
    char *got = translate(&r, &req, T0);
    assert_non_null(strstr(got, "sketch doubleHist.singlebucket.test 1700000005 cnt=20 "
                                "min=-9.94185e-10 max=-9.94185e-10 sum=3.14159 avg=0.15708"));
    free(got);
    assert_int_equal(r.res.batch.sketches[0].k[0], -1);
    run_cleanup(&r);

    cfg.hist_mode = MTR_HIST_COUNTERS;
    cfg.send_aggregation_metrics = 0;
    run_init(&r, &cfg);
    const uint64_t bc3[] = {1, 2, 3};
    const double bd2[] = {0.5, 1};
    hist_point(&pts, T0, T0 + 5 * S, 6, 2, bc3, 3, bd2, 2, NULL, NULL);
    pack_metric(&m, "h", HIST, &pts, DELTA, 0);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0),
           "h.bucket count 1700000005 1 [lower_bound:-inf,upper_bound:0.5]\n"
           "h.bucket count 1700000005 2 [lower_bound:0.5,upper_bound:1.0]\n"
           "h.bucket count 1700000005 3 [lower_bound:1.0,upper_bound:inf]\n");
    /* cumulative: nothing the first time, the bucket differences after */
    const uint64_t c1[] = {1, 1, 1}, c2[] = {1, 4, 2};
    hist_point(&pts, T0, T0 + 5 * S, 3, 2, c1, 3, bd2, 2, NULL, NULL);
    pack_metric(&m, "hc", HIST, &pts, CUMUL, 0);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0), "");
    hist_point(&pts, T0, T0 + 15 * S, 7, 5, c2, 3, bd2, 2, NULL, NULL);
    pack_metric(&m, "hc", HIST, &pts, CUMUL, 0);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0),
           "hc.bucket count 1700000015 0 [lower_bound:-inf,upper_bound:0.5]\n"
           "hc.bucket count 1700000015 3 [lower_bound:0.5,upper_bound:1.0]\n"
           "hc.bucket count 1700000015 1 [lower_bound:1.0,upper_bound:inf]\n");
    o2d_buf_cleanup(&pts);
    o2d_buf_cleanup(&m);
    o2d_buf_cleanup(&req);
    run_cleanup(&r);
}

/* Hostile histograms: bounds out of order and counts/bounds mismatch are dropped (Datadog
 * fails the request); counts that do not add up to count keep the point's count; NaN bounds do
 * not crash. */
static void test_hostile_histograms(void **state)
{
    (void)state;
    struct mtr_config cfg;
    mtr_config_default(&cfg);
    struct run r;
    run_init(&r, &cfg);
    struct o2d_buf pts, m, req;
    o2d_buf_init(&pts, 1 << 20);
    o2d_buf_init(&m, 1 << 20);
    o2d_buf_init(&req, 1 << 20);
    const uint64_t bc[] = {1, 5, 1};
    const double unordered[] = {10, 1};
    hist_point(&pts, T0, T0 + 5 * S, 7, 1, bc, 3, unordered, 2, NULL, NULL);
    hist_point(&pts, T0, T0 + 5 * S, 7, 1, bc, 3, unordered, 1, NULL, NULL);
    const double nanb[] = {NAN, 5};
    hist_point(&pts, T0, T0 + 5 * S, 7, 1, bc, 3, nanb, 2, NULL, NULL);
    const double ok[] = {1, 10};
    hist_point(&pts, T0, T0 + 5 * S, 1000, 1, bc, 3, ok, 2, NULL, NULL);
    pack_metric(&m, "h", HIST, &pts, DELTA, 0);
    pack_request(&req, &m);
    char *got = translate(&r, &req, T0);
    assert_int_equal(r.res.dropped[MTR_DROP_MALFORMED], 2);
    assert_non_null(strstr(got, "cnt=1000 "));
    free(got);
    /* a point that is not protobuf: the request is refused by its decoding, before any
     * translation (translate/otlp decodes every point) */
    o2d_buf_append(&pts, "\x0a\x03\xff\xff\xff", 5);
    pack_metric(&m, "h", HIST, &pts, DELTA, 0);
    pack_request(&req, &m);
    struct otlp_request bad;
    const char *why = NULL;
    assert_int_equal(
        otlp_decode(&r.a, OTLP_SIGNAL_METRICS, OTLP_ENC_PROTOBUF, req.data, req.len, &bad, &why),
        O2D_ERR_INVALID);
    assert_non_null(why);
    o2d_buf_reset(&req);
    o2d_buf_cleanup(&pts);
    o2d_buf_cleanup(&m);
    o2d_buf_cleanup(&req);
    run_cleanup(&r);
}

/* 10^6 distinct cumulative series through a cache of 10^4: it stays at its bound and counts
 * what it evicted; then the TTL empties it. */
static void test_cache_bounded(void **state)
{
    (void)state;
    struct mtr_config cfg;
    mtr_config_default(&cfg);
    cfg.max_cache_entries = 10000;
    cfg.delta_ttl_s = 60;
    struct run r;
    run_init(&r, &cfg);
    struct o2d_buf pts, m, req;
    o2d_buf_init(&pts, 1 << 26);
    o2d_buf_init(&m, 1 << 26);
    o2d_buf_init(&req, 1 << 26);
    char v[32];
    for (int batch = 0; batch < 100; batch++) {
        for (int i = 0; i < 10000; i++) {
            snprintf(v, sizeof(v), "%d", batch * 10000 + i);
            number_point(&pts, T0 - S, T0 + 10 * S, 1, 0, v);
        }
        pack_metric(&m, "c", SUM, &pts, CUMUL, 1);
        pack_request(&req, &m);
        free(translate(&r, &req, T0 + (uint64_t)batch));
    }
    struct mtr_stats st;
    mtr_get_stats(r.t, &st);
    assert_int_equal(st.cache_entries, 10000);
    assert_int_equal(st.evicted_capacity, 990000);
    number_point(&pts, T0 - S, T0 + 10 * S, 1, 0, "x");
    pack_metric(&m, "c", SUM, &pts, CUMUL, 1);
    pack_request(&req, &m);
    free(translate(&r, &req, T0 + 61 * S + 200));
    mtr_get_stats(r.t, &st);
    assert_int_equal(st.cache_entries, 1);
    assert_int_equal(st.evicted_ttl, 10000);
    o2d_buf_cleanup(&pts);
    o2d_buf_cleanup(&m);
    o2d_buf_cleanup(&req);
    run_cleanup(&r);
}

/* ---- the Collector exporter's remapping (metrics_remapping.go, runtime_metric_mappings.go) ----
 */

/* KeyValue{key, AnyValue{bytes_value}} */
static void pw_attr_bytes(struct o2d_buf *b, unsigned f, const char *k, const uint8_t *v, size_t n)
{
    struct o2d_buf kv, av;
    o2d_buf_init(&kv, 1 << 20);
    o2d_buf_init(&av, 1 << 20);
    pw_str(&kv, 1, k);
    pw_bytes(&av, 7, v, n);
    pw_sub(&kv, 2, &av);
    pw_sub(b, f, &kv);
    o2d_buf_cleanup(&kv);
    o2d_buf_cleanup(&av);
}

/* A NumberDataPoint with one attribute: a string, or (val NULL) the bytes bv[0..nbv). */
static void kv_point(struct o2d_buf *pts, uint64_t ts, double v, const char *key, const char *val,
                     const uint8_t *bv, size_t nbv)
{
    struct o2d_buf p;
    o2d_buf_init(&p, 1 << 20);
    pw_f64(&p, 3, ts);
    pw_d(&p, 4, v);
    if (val != NULL) {
        pw_attr(&p, 7, key, val);
    } else {
        pw_attr_bytes(&p, 7, key, bv, nbv);
    }
    pw_sub(pts, 1, &p);
    o2d_buf_cleanup(&p);
}

/* system.cpu.utilization {idle 0.5, user NaN} and process.runtime.go.goroutines 3. */
static void remap_request(struct o2d_buf *req)
{
    struct o2d_buf pts, m;
    o2d_buf_init(&pts, 1 << 20);
    o2d_buf_init(&m, 1 << 20);
    kv_point(&pts, T0 + 5 * S, 0.5, "state", "idle", NULL, 0);
    kv_point(&pts, T0 + 5 * S, NAN, "state", "user", NULL, 0);
    pack_metric(&m, "system.cpu.utilization", GAUGE, &pts, 0, 0);
    number_point(&pts, 0, T0 + 5 * S, 3, 0, NULL);
    pack_metric(&m, "process.runtime.go.goroutines", GAUGE, &pts, 0, 0);
    pack_request(req, &m);
    o2d_buf_cleanup(&pts);
    o2d_buf_cleanup(&m);
}

/* WithRemapping (renames and copies) and the runtime mappings, each on its own; the copies'
 * points are not counted again (a NaN copied is one point dropped, not two). */
static void test_remap_switches(void **state)
{
    (void)state;
    static const char *const want[] = {
        "otel.system.cpu.utilization gauge 1700000005 0.5 [state:idle]\n"
        "otel.process.runtime.go.goroutines gauge 1700000005 3 []\n"
        "system.cpu.idle gauge 1700000005 50 [state:idle]\n"
        "runtime.go.num_goroutine gauge 1700000005 3 []\n",
        "system.cpu.utilization gauge 1700000005 0.5 [state:idle]\n"
        "process.runtime.go.goroutines gauge 1700000005 3 []\n"
        "runtime.go.num_goroutine gauge 1700000005 3 []\n",
        "system.cpu.utilization gauge 1700000005 0.5 [state:idle]\n"
        "process.runtime.go.goroutines gauge 1700000005 3 []\n",
    };
    for (int i = 0; i < 3; i++) {
        struct mtr_config cfg;
        mtr_config_default(&cfg);
        assert_true(cfg.remapping && cfg.runtime_remapping); /* the Collector exporter's */
        cfg.remapping = i == 0;
        cfg.runtime_remapping = i < 2;
        struct run r;
        run_init(&r, &cfg);
        struct o2d_buf req;
        o2d_buf_init(&req, 1 << 20);
        remap_request(&req);
        EXPECT(translate(&r, &req, T0), want[i]);
        assert_int_equal(r.res.points, 3);
        assert_int_equal(r.res.dropped[MTR_DROP_NAN_INF], 1);
        o2d_buf_cleanup(&req);
        run_cleanup(&r);
    }
}

/* copyMetricWithAttr's filter reads Str() (only a string attribute matches), the runtime
 * mappings AsString() (bytes as base64): bytes whose base64 is "free" are not the state free
 * for system.mem.usable, bytes whose base64 is "heap" are the type heap for jvm.heap_memory. */
static void test_remap_attribute_values(void **state)
{
    (void)state;
    static const uint8_t b64_free[] = {0x7e, 0xb7, 0x9e}, b64_heap[] = {0x85, 0xe6, 0xa9};
    struct mtr_config cfg;
    mtr_config_default(&cfg);
    struct run r;
    run_init(&r, &cfg);
    struct o2d_buf pts, m, req;
    o2d_buf_init(&pts, 1 << 20);
    o2d_buf_init(&m, 1 << 20);
    o2d_buf_init(&req, 1 << 20);
    kv_point(&pts, T0 + 5 * S, 1048576, "state", NULL, b64_free, sizeof(b64_free));
    pack_metric(&m, "system.memory.usage", GAUGE, &pts, 0, 0);
    kv_point(&pts, T0 + 5 * S, 10, "type", NULL, b64_heap, sizeof(b64_heap));
    pack_metric(&m, "process.runtime.jvm.memory.usage", GAUGE, &pts, 0, 0);
    pack_request(&req, &m);
    EXPECT(translate(&r, &req, T0),
           "otel.system.memory.usage gauge 1700000005 1048576 [state:free]\n"
           "otel.process.runtime.jvm.memory.usage gauge 1700000005 10 "
           "[type:heap]\n"
           "system.mem.total gauge 1700000005 1 [state:free]\n"
           "jvm.heap_memory gauge 1700000005 10 []\n");
    o2d_buf_cleanup(&pts);
    o2d_buf_cleanup(&m);
    o2d_buf_cleanup(&req);
    run_cleanup(&r);
}

/* Every allocation of the copies can be refused: the translation then fails whole with
 * O2D_ERR_TOO_LARGE, never half-built, until the arena is large enough. */
static void test_remap_arena_full(void **state)
{
    (void)state;
    struct mtr_config cfg;
    mtr_config_default(&cfg);
    struct run r;
    run_init(&r, &cfg);
    struct o2d_buf req;
    o2d_buf_init(&req, 1 << 20);
    remap_request(&req);
    struct otlp_request or ;
    const char *reason;
    assert_int_equal(
        otlp_decode(&r.a, OTLP_SIGNAL_METRICS, OTLP_ENC_PROTOBUF, req.data, req.len, & or, &reason),
        O2D_OK);
    struct o2d_arena out;
    int rv = O2D_ERR_TOO_LARGE;
    size_t limit;
    for (limit = 0; limit < 1u << 20 && rv != O2D_OK; limit += 16) {
        o2d_arena_init(&out, limit);
        rv = mtr_translate(r.t, or.msg.metrics, T0, resource_fixture, "h1", &out, &r.res);
        assert_true(rv == O2D_OK || rv == O2D_ERR_TOO_LARGE);
        if (rv == O2D_OK) {
            assert_int_equal(r.res.batch.nseries, 4);
            assert_string_equal(r.res.batch.series[2].name, "system.cpu.idle");
        }
        o2d_arena_cleanup(&out);
    }
    assert_int_equal(rv, O2D_OK);
    assert_true(limit > 256);
    o2d_buf_cleanup(&req);
    run_cleanup(&r);
}

static void test_config(void **state)
{
    (void)state;
    struct mtr_config cfg;
    const char *reason = NULL;
    mtr_config_default(&cfg);
    cfg.hist_mode = MTR_HIST_NOBUCKETS;
    assert_null(mtr_new(&cfg, 0, &reason));
    assert_string_equal(reason, "no buckets mode and no send count sum are incompatible");
    assert_string_equal(mtr_drop_name(MTR_DROP_OUT_OF_ORDER), "out_of_order");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),          cmocka_unit_test(test_cumulative_monotonic),
        cmocka_unit_test(test_histograms),       cmocka_unit_test(test_hostile_histograms),
        cmocka_unit_test(test_cache_bounded),    cmocka_unit_test(test_config),
        cmocka_unit_test(test_remap_switches),   cmocka_unit_test(test_remap_attribute_values),
        cmocka_unit_test(test_remap_arena_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
