/*
 * test_stats.c: the APM stats concentrator on hand-built TracerPayloads: buckets by end time,
 * eligibility, the aggregation key, counters, flush timing, the 4000-entry split, the group
 * cap, and the msgpack StatsPayload decoded back with msgpack-c key by key.
 *
 * With O2D_STATS_DUMP=<path> in the environment, sample_payload_dump also writes a sample
 * StatsPayload there for tests/e2e/test_stats_independent.py, which decodes it with Python's
 * msgpack and protobuf and checks it against the same known input.
 */
#include <math.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "datadog/sketches/ddsketch.pb-c.h"
#include "ddsketch.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "stats.h"
#include "stats_int.h"

#define SEC 1000000000LL
#define T0  (1700000000LL * SEC) /* a bucket boundary */

/* ---- building payloads ---- */

static struct o2d_arena arena;

static void *alloc(size_t n)
{
    void *p = o2d_arena_alloc(&arena, n);
    assert_non_null(p);
    memset(p, 0, n);
    return p;
}

static char *dup(const char *s)
{
    return o2d_arena_strndup(&arena, s, strlen(s));
}

static DdSpan *span(const char *service, const char *name, const char *resource, uint64_t parent,
                    int64_t start, int64_t duration, int error)
{
    DdSpan *s = alloc(sizeof(*s));
    datadog__trace__span__init(s);
    s->service = dup(service);
    s->name = dup(name);
    s->resource = dup(resource);
    s->type = dup("web");
    s->traceid = 1;
    s->spanid = 2;
    s->parentid = parent;
    s->start = start;
    s->duration = duration;
    s->error = error;
    return s;
}

static DdSpan *meta(DdSpan *s, const char *k, const char *v)
{
    Datadog__Trace__Span__MetaEntry **m = alloc((s->n_meta + 1) * sizeof(*m));
    if (s->n_meta > 0) {
        memcpy(m, s->meta, s->n_meta * sizeof(*m));
    }
    m[s->n_meta] = alloc(sizeof(**m));
    datadog__trace__span__meta_entry__init(m[s->n_meta]);
    m[s->n_meta]->key = dup(k);
    m[s->n_meta]->value = dup(v);
    s->meta = m;
    s->n_meta++;
    return s;
}

static DdSpan *metric(DdSpan *s, const char *k, double v)
{
    Datadog__Trace__Span__MetricsEntry **m = alloc((s->n_metrics + 1) * sizeof(*m));
    if (s->n_metrics > 0) {
        memcpy(m, s->metrics, s->n_metrics * sizeof(*m));
    }
    m[s->n_metrics] = alloc(sizeof(**m));
    datadog__trace__span__metrics_entry__init(m[s->n_metrics]);
    m[s->n_metrics]->key = dup(k);
    m[s->n_metrics]->value = v;
    s->metrics = m;
    s->n_metrics++;
    return s;
}

static DdSpan *top(DdSpan *s)
{
    return metric(s, "_top_level", 1);
}

static DdTracerPayload *payload(const char *env, const char *host, const char *version)
{
    DdTracerPayload *tp = alloc(sizeof(*tp));
    datadog__trace__tracer_payload__init(tp);
    tp->env = dup(env);
    tp->hostname = dup(host);
    tp->appversion = dup(version);
    return tp;
}

static DdTraceChunk *chunk(DdTracerPayload *tp, const char *origin)
{
    DdTraceChunk **cs = alloc((tp->n_chunks + 1) * sizeof(*cs));
    if (tp->n_chunks > 0) {
        memcpy(cs, tp->chunks, tp->n_chunks * sizeof(*cs));
    }
    DdTraceChunk *c = alloc(sizeof(*c));
    datadog__trace__trace_chunk__init(c);
    c->origin = dup(origin);
    cs[tp->n_chunks] = c;
    tp->chunks = cs;
    tp->n_chunks++;
    return c;
}

static void add(DdTraceChunk *c, DdSpan *s)
{
    /* capacity doubles at powers of two */
    if ((c->n_spans & (c->n_spans - 1)) == 0) {
        DdSpan **ss = alloc((c->n_spans ? c->n_spans * 2 : 1) * sizeof(*ss));
        if (c->n_spans > 0) {
            memcpy(ss, c->spans, c->n_spans * sizeof(*ss));
        }
        c->spans = ss;
    }
    c->spans[c->n_spans++] = s;
}

static void tp_tag(DdTracerPayload *tp, const char *k, const char *v)
{
    Datadog__Trace__TracerPayload__TagsEntry **t = alloc((tp->n_tags + 1) * sizeof(*t));
    if (tp->n_tags > 0) {
        memcpy(t, tp->tags, tp->n_tags * sizeof(*t));
    }
    t[tp->n_tags] = alloc(sizeof(**t));
    datadog__trace__tracer_payload__tags_entry__init(t[tp->n_tags]);
    t[tp->n_tags]->key = dup(k);
    t[tp->n_tags]->value = dup(v);
    tp->tags = t;
    tp->n_tags++;
}

/* ---- collecting and reading the output ---- */

#define MAX_OUT 16
struct out {
    size_t n;
    msgpack_unpacked u[MAX_OUT];
    uint8_t *raw[MAX_OUT];
    size_t len[MAX_OUT];
};

static int collect(void *ctx, const uint8_t *p, size_t len)
{
    struct out *o = ctx;
    assert_true(o->n < MAX_OUT);
    size_t off = 0;
    /* the unpacked strings point into the bytes, which emit only borrows: keep a copy */
    o->raw[o->n] = malloc(len);
    assert_non_null(o->raw[o->n]);
    memcpy(o->raw[o->n], p, len);
    msgpack_unpacked_init(&o->u[o->n]);
    assert_int_equal(msgpack_unpack_next(&o->u[o->n], (const char *)o->raw[o->n], len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len); /* exactly one object */
    o->len[o->n] = len;
    o->n++;
    return O2D_OK;
}

static void out_free(struct out *o)
{
    for (size_t i = 0; i < o->n; i++) {
        msgpack_unpacked_destroy(&o->u[i]);
        free(o->raw[i]);
    }
    o->n = 0;
}

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
    assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        assert_int_equal(k->type, MSGPACK_OBJECT_STR);
        if (k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0) {
            return &m->via.map.ptr[i].val;
        }
    }
    fail_msg("no key %s", key);
    return NULL;
}

static void assert_str(const msgpack_object *o, const char *want)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    if (o->via.str.size != strlen(want) || memcmp(o->via.str.ptr, want, o->via.str.size) != 0) {
        fail_msg("got \"%.*s\", want \"%s\"", (int)o->via.str.size, o->via.str.ptr, want);
    }
}

static uint64_t get_u(const msgpack_object *m, const char *key)
{
    const msgpack_object *o = get(m, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return o->via.u64;
}

static const msgpack_object *arr(const msgpack_object *m, const char *key, uint32_t *n)
{
    const msgpack_object *o = get(m, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    *n = o->via.array.size;
    return o->via.array.ptr;
}

/* All grouped stats of all outputs, flattened, with their bucket start and client payload. */
struct flat {
    const msgpack_object *g, *client;
    uint64_t start;
};

static size_t flatten(const struct out *o, struct flat *f, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++) {
        uint32_t nc, nb, ng;
        const msgpack_object *cs = arr(&o->u[i].data, "Stats", &nc);
        for (uint32_t c = 0; c < nc; c++) {
            const msgpack_object *bs = arr(&cs[c], "Stats", &nb);
            for (uint32_t b = 0; b < nb; b++) {
                const msgpack_object *gs = arr(&bs[b], "Stats", &ng);
                for (uint32_t g = 0; g < ng; g++) {
                    assert_true(n < max);
                    f[n].g = &gs[g];
                    f[n].client = &cs[c];
                    f[n].start = get_u(&bs[b], "Start");
                    n++;
                }
            }
        }
    }
    return n;
}

static int str_is(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* The group whose resource is `resource` (and, when not NULL, kind). */
static const struct flat *find(const struct flat *f, size_t n, const char *resource)
{
    for (size_t i = 0; i < n; i++) {
        if (str_is(get(f[i].g, "Resource"), resource)) {
            return &f[i];
        }
    }
    fail_msg("no group %s", resource);
    return NULL;
}

static size_t count(const struct flat *f, size_t n, const char *resource)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += str_is(get(f[i].g, "Resource"), resource);
    }
    return k;
}

static Datadog__Sketches__DDSketch *summary(const msgpack_object *g, const char *key)
{
    const msgpack_object *o = get(g, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
    Datadog__Sketches__DDSketch *s =
        datadog__sketches__ddsketch__unpack(NULL, o->via.bin.size, (const uint8_t *)o->via.bin.ptr);
    assert_non_null(s);
    return s;
}

static double sketch_count(const Datadog__Sketches__DDSketch *s)
{
    double n = s->zerocount;
    for (size_t i = 0; s->positivevalues != NULL && i < s->positivevalues->n_contiguousbincounts;
         i++) {
        n += s->positivevalues->contiguousbincounts[i];
    }
    return n;
}

static struct stats_config config(void)
{
    struct stats_config cfg = {
        .bucket_ns = 10 * SEC,
        .max_groups_per_bucket = 100000,
        .compute_stats_by_span_kind = 1,
        .peer_tags_aggregation = 1,
        .agent_env = "agentenv",
        .agent_hostname = "collector-1",
        .agent_version = "otel2dd/test",
    };
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    o2d_arena_init(&arena, 256u << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    o2d_arena_cleanup(&arena);
    return 0;
}

/* ---- tests ---- */

static void buckets_by_end_time_and_flush_timing(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("prod", "host-a", "1.0");
    DdTraceChunk *ch = chunk(tp, "");
    /* starts in [T0, T0+10s) but ends in the next bucket */
    add(ch, top(span("svc", "op", "late", 0, T0 + 5 * SEC, 7 * SEC, 0)));
    add(ch, top(span("svc", "op", "early", 0, T0 + 1 * SEC, 1 * SEC, 0)));
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);

    struct out o = {0};
    /* Not before now >= start + 2 widths. */
    assert_int_equal(stats_flush(c, T0 + 20 * SEC - 1, 0, collect, &o), O2D_OK);
    assert_int_equal(o.n, 0);
    assert_int_equal(stats_flush(c, T0 + 20 * SEC, 0, collect, &o), O2D_OK);
    assert_int_equal(o.n, 1);
    struct flat f[8];
    size_t n = flatten(&o, f, 8);
    assert_int_equal(n, 1);
    assert_str(get(f[0].g, "Resource"), "early");
    assert_int_equal(f[0].start, T0);
    out_free(&o);
    /* The later bucket only when forced (shutdown). */
    assert_int_equal(stats_flush(c, T0 + 20 * SEC, 0, collect, &o), O2D_OK);
    assert_int_equal(o.n, 0);
    assert_int_equal(stats_flush(c, T0 + 20 * SEC, 1, collect, &o), O2D_OK);
    assert_int_equal(o.n, 1);
    n = flatten(&o, f, 8);
    assert_int_equal(n, 1);
    assert_str(get(f[0].g, "Resource"), "late");
    assert_int_equal(f[0].start, T0 + 10 * SEC);
    out_free(&o);
    /* Nothing left. */
    assert_int_equal(stats_flush(c, T0 + 100 * SEC, 1, collect, &o), O2D_OK);
    assert_int_equal(o.n, 0);

    /* After a flush at now, a span that ended long ago counts in the oldest open bucket,
     * align(now) - width (concentrator.go). */
    tp = payload("prod", "host-a", "1.0");
    add(chunk(tp, ""), top(span("svc", "op", "old", 0, T0, SEC, 0)));
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    assert_int_equal(stats_flush(c, T0 + 105 * SEC, 1, collect, &o), O2D_OK);
    n = flatten(&o, f, 8);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].start, T0 + 90 * SEC);
    out_free(&o);

    struct stats_counters k;
    stats_get_counters(c, &k);
    assert_int_equal(k.spans_counted, 3);
    assert_int_equal(k.payloads, 3);
    assert_int_equal(k.groups_dropped, 0);
    stats_concentrator_free(c);

    /* now_ns at creation is the first floor. */
    cfg.now_ns = T0 + 55 * SEC;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    tp = payload("prod", "host-a", "1.0");
    add(chunk(tp, ""), top(span("svc", "op", "before-start", 0, T0, SEC, 0)));
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    assert_int_equal(stats_flush(c, T0 + 55 * SEC, 1, collect, &o), O2D_OK);
    n = flatten(&o, f, 8);
    assert_int_equal(f[0].start, T0 + 50 * SEC);
    out_free(&o);
    stats_concentrator_free(c);
}

static void eligibility(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    for (int by_kind = 0; by_kind <= 1; by_kind++) {
        cfg.compute_stats_by_span_kind = by_kind;
        assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
        DdTracerPayload *tp = payload("prod", "h", "");
        DdTraceChunk *ch = chunk(tp, "");
        add(ch, metric(span("s", "o", "top", 1, T0, 10, 0), "_top_level", 1));
        add(ch, metric(span("s", "o", "ddtop", 1, T0, 10, 0), "_dd.top_level", 1));
        add(ch, metric(span("s", "o", "measured", 1, T0, 10, 0), "_dd.measured", 1));
        add(ch, metric(span("s", "o", "top0", 1, T0, 10, 0), "_top_level", 0));
        add(ch, meta(span("s", "o", "server", 1, T0, 10, 0), "span.kind", "server"));
        add(ch, meta(span("s", "o", "client", 1, T0, 10, 0), "span.kind", "CLIENT"));
        add(ch, meta(span("s", "o", "consumer", 1, T0, 10, 0), "span.kind", "consumer"));
        add(ch, meta(span("s", "o", "producer", 1, T0, 10, 0), "span.kind", "producer"));
        add(ch, meta(span("s", "o", "internal", 1, T0, 10, 0), "span.kind", "internal"));
        add(ch, span("s", "o", "plain", 1, T0, 10, 0));
        add(ch, metric(top(span("s", "o", "partial", 1, T0, 10, 0)), "_dd.partial_version", 0));
        add(ch, metric(top(span("s", "o", "notpartial", 1, T0, 10, 0)), "_dd.partial_version", -1));
        assert_int_equal(stats_add_payload(c, tp), O2D_OK);
        struct out o = {0};
        assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
        struct flat f[32];
        size_t n = flatten(&o, f, 32);
        assert_int_equal(count(f, n, "top"), 1);
        assert_int_equal(count(f, n, "ddtop"), 1);
        assert_int_equal(count(f, n, "measured"), 1);
        assert_int_equal(count(f, n, "notpartial"), 1);
        assert_int_equal(count(f, n, "top0"), 0);
        assert_int_equal(count(f, n, "internal"), 0);
        assert_int_equal(count(f, n, "plain"), 0);
        assert_int_equal(count(f, n, "partial"), 0);
        assert_int_equal(count(f, n, "server"), by_kind);
        assert_int_equal(count(f, n, "client"), by_kind);
        assert_int_equal(count(f, n, "consumer"), by_kind);
        assert_int_equal(count(f, n, "producer"), by_kind);
        assert_int_equal(n, 4 + 4 * by_kind);
        /* TopLevelHits only for top-level spans */
        assert_int_equal(get_u(find(f, n, "top")->g, "TopLevelHits"), 1);
        assert_int_equal(get_u(find(f, n, "ddtop")->g, "TopLevelHits"), 1);
        assert_int_equal(get_u(find(f, n, "measured")->g, "TopLevelHits"), 0);
        if (by_kind) {
            assert_int_equal(get_u(find(f, n, "client")->g, "TopLevelHits"), 0);
            assert_str(get(find(f, n, "client")->g, "SpanKind"), "CLIENT");
        }
        out_free(&o);
        stats_concentrator_free(c);
    }
}

static void aggregation_key_splits_groups(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("prod", "h", "1");
    DdTraceChunk *ch = chunk(tp, "");
    /* status codes: metric first, then meta, invalid -> 0 */
    add(ch, metric(top(span("s", "o", "status", 0, T0, 10, 0)), "http.status_code", 200));
    add(ch, metric(top(span("s", "o", "status", 0, T0, 10, 0)), "http.status_code", 200));
    add(ch, metric(top(span("s", "o", "status", 0, T0, 10, 1)), "http.status_code", 500));
    add(ch, meta(top(span("s", "o", "status", 0, T0, 10, 0)), "http.status_code", "404"));
    add(ch, meta(top(span("s", "o", "status", 0, T0, 10, 0)), "http.status_code", "abc"));
    add(ch, meta(metric(top(span("s", "o", "status", 0, T0, 10, 0)), "http.status_code", 201),
                 "http.status_code", "404"));
    /* span kinds */
    add(ch, meta(top(span("s", "o", "kind", 0, T0, 10, 0)), "span.kind", "server"));
    add(ch, meta(top(span("s", "o", "kind", 0, T0, 10, 0)), "span.kind", "internal"));
    add(ch, top(span("s", "o", "kind", 0, T0, 10, 0)));
    /* trace root */
    add(ch, top(span("s", "o", "root", 0, T0, 10, 0)));
    add(ch, top(span("s", "o", "root", 7, T0, 10, 0)));
    add(ch, top(span("s", "o", "root", 8, T0, 10, 0)));
    /* peer tags: client spans, by value; server spans ignore them */
    DdSpan *p1 = meta(meta(span("s", "o", "peer", 1, T0, 10, 0), "span.kind", "client"),
                      "db.system", "postgresql");
    meta(p1, "peer.service", "users-db");
    meta(p1, "out.host", "10.1.2.3");
    add(ch, p1);
    add(ch, meta(meta(span("s", "o", "peer", 1, T0, 10, 0), "span.kind", "client"), "db.system",
                 "mysql"));
    add(ch, meta(meta(span("s", "o", "peer", 1, T0, 10, 0), "span.kind", "client"), "db.system",
                 "mysql"));
    add(ch, meta(meta(span("s", "o", "peerserver", 1, T0, 10, 0), "span.kind", "server"),
                 "db.system", "mysql"));
    add(ch, meta(top(span("s2", "o", "baseservice", 1, T0, 10, 0)), "_dd.base_service", "s"));
    /* gRPC status */
    add(ch, meta(top(span("s", "o", "grpc", 0, T0, 10, 0)), "rpc.grpc.status_code", "NOT_FOUND"));
    add(ch, metric(top(span("s", "o", "grpc", 0, T0, 10, 0)), "rpc.grpc.status_code", 5));
    add(ch, meta(top(span("s", "o", "grpc", 0, T0, 10, 0)), "grpc.code", "StatusCode.OK"));
    /* type, service, name */
    DdSpan *ty = top(span("s", "o", "typed", 0, T0, 10, 0));
    ty->type = dup("db");
    add(ch, ty);
    add(ch, top(span("s", "o", "typed", 0, T0, 10, 0)));
    add(ch, top(span("other", "o", "typed", 0, T0, 10, 0)));
    add(ch, top(span("s", "o2", "typed", 0, T0, 10, 0)));
    /* synthetics: the chunk origin */
    add(chunk(tp, "synthetics-browser"), top(span("s", "o", "synth", 0, T0, 10, 0)));
    add(chunk(tp, "rum"), top(span("s", "o", "synth", 0, T0, 10, 0)));
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);

    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    struct flat f[64];
    size_t n = flatten(&o, f, 64);

    assert_int_equal(count(f, n, "status"), 5); /* 200, 500, 404, 0, and 201 over its meta */
    for (size_t i = 0; i < n; i++) {
        if (!str_is(get(f[i].g, "Resource"), "status")) {
            continue;
        }
        uint64_t code = get_u(f[i].g, "HTTPStatusCode");
        uint64_t hits = get_u(f[i].g, "Hits");
        uint64_t errs = get_u(f[i].g, "Errors");
        switch (code) {
        case 200:
            assert_int_equal(hits, 2);
            break;
        case 500:
            assert_int_equal(errs, 1);
            break;
        case 404:
        case 0:
        case 201:
            assert_int_equal(hits, 1);
            break;
        default:
            fail_msg("status %llu", (unsigned long long)code);
        }
    }
    assert_int_equal(count(f, n, "kind"), 3);
    assert_int_equal(count(f, n, "root"), 2);
    for (size_t i = 0; i < n; i++) {
        if (str_is(get(f[i].g, "Resource"), "root")) {
            const msgpack_object *r = get(f[i].g, "IsTraceRoot");
            assert_int_equal(r->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
            assert_int_equal(get_u(f[i].g, "Hits"), r->via.u64 == 1 ? 1 : 2);
        }
    }
    assert_int_equal(count(f, n, "peer"), 2);
    for (size_t i = 0; i < n; i++) {
        if (!str_is(get(f[i].g, "Resource"), "peer")) {
            continue;
        }
        uint32_t np;
        const msgpack_object *pt = arr(f[i].g, "PeerTags", &np);
        if (get_u(f[i].g, "Hits") == 2) {
            assert_int_equal(np, 1);
            assert_str(&pt[0], "db.system:mysql");
        } else {
            assert_int_equal(np, 3);
            assert_str(&pt[0], "db.system:postgresql");
            assert_str(&pt[1], "out.host:blocked-ip-address");
            assert_str(&pt[2], "peer.service:users-db");
        }
    }
    uint32_t np;
    arr(find(f, n, "peerserver")->g, "PeerTags", &np);
    assert_int_equal(np, 0);
    const msgpack_object *bs = arr(find(f, n, "baseservice")->g, "PeerTags", &np);
    assert_int_equal(np, 1);
    assert_str(&bs[0], "_dd.base_service:s");
    assert_int_equal(count(f, n, "grpc"), 2);
    for (size_t i = 0; i < n; i++) {
        if (str_is(get(f[i].g, "Resource"), "grpc")) {
            const msgpack_object *g = get(f[i].g, "GRPCStatusCode");
            assert_true(str_is(g, "5") || str_is(g, "0"));
            assert_int_equal(get_u(f[i].g, "Hits"), str_is(g, "5") ? 2 : 1);
        }
    }
    assert_int_equal(count(f, n, "typed"), 4);
    assert_int_equal(count(f, n, "synth"), 2);
    for (size_t i = 0; i < n; i++) {
        if (str_is(get(f[i].g, "Resource"), "synth")) {
            assert_int_equal(get(f[i].g, "Synthetics")->type, MSGPACK_OBJECT_BOOLEAN);
        }
    }
    out_free(&o);

    /* Peer tags aggregation off: one group for all client spans of a resource. */
    stats_concentrator_free(c);
    cfg.peer_tags_aggregation = 0;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    n = flatten(&o, f, 64);
    assert_int_equal(count(f, n, "peer"), 1);
    out_free(&o);
    stats_concentrator_free(c);
}

static void counters_and_summaries(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("", "", "");
    DdTraceChunk *ch = chunk(tp, "");
    uint64_t total = 0;
    for (int i = 1; i <= 100; i++) {
        int64_t d = i * 1000000LL;
        add(ch, top(span("s", "o", "r", 0, T0, d, i % 10 == 0)));
        total += (uint64_t)d;
    }
    /* a measured, non-top-level span in the same group */
    add(ch, metric(span("s", "o", "r", 0, T0, 1000, 0), "_dd.measured", 1));
    total += 1000;
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    struct flat f[4];
    size_t n = flatten(&o, f, 4);
    assert_int_equal(n, 1);
    const msgpack_object *g = f[0].g;
    assert_int_equal(get_u(g, "Hits"), 101);
    assert_int_equal(get_u(g, "Errors"), 10);
    assert_int_equal(get_u(g, "TopLevelHits"), 100);
    assert_int_equal(get_u(g, "Duration"), total);
    Datadog__Sketches__DDSketch *ok = summary(g, "OkSummary");
    Datadog__Sketches__DDSketch *err = summary(g, "ErrorSummary");
    assert_true(sketch_count(ok) == 91);
    assert_true(sketch_count(err) == 10);
    datadog__sketches__ddsketch__free_unpacked(ok, NULL);
    datadog__sketches__ddsketch__free_unpacked(err, NULL);
    /* env and hostname fall back to the configured ones */
    assert_str(get(f[0].client, "Env"), "agentenv");
    assert_str(get(f[0].client, "Hostname"), "collector-1");
    out_free(&o);
    stats_concentrator_free(c);
}

/* The sum of one counter over the groups of a resource. */
static uint64_t sum_u(const struct flat *f, size_t n, const char *resource, const char *key)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        if (str_is(get(f[i].g, "Resource"), resource)) {
            t += get_u(f[i].g, key);
        }
    }
    return t;
}

/*
 * weight.go and statsraw.go: every counter of a chunk is weighted by 1/_sample_rate of the
 * chunk's root (traceutil.GetRoot), rounded half away from zero when packed; the sketches are
 * not weighted; a rate outside (0, 1] weighs 1.
 */
static void sample_rate_weights_counters(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("", "", "");
    /* root at 0.3 (weight 3.333...): three spans, one an error, 10 ns each */
    DdTraceChunk *a = chunk(tp, "");
    DdSpan *root = metric(top(span("s", "o", "r-a", 0, T0, 10, 0)), "_sample_rate", 0.3);
    root->spanid = 1;
    add(a, root);
    for (int i = 0; i < 2; i++) {
        DdSpan *child = metric(top(span("s", "o", "r-a", 1, T0, 10, i)), "_sample_rate", 1);
        child->spanid = (uint64_t)(10 + i);
        add(a, child);
    }
    /* no span has a parent of 0: the root is the span whose parent is not in the chunk, here
     * the 40th of 50 (more than the 32 searched without a set); its rate 0.5 gives weight 2,
     * the others' 0.1 is not the root's */
    DdTraceChunk *b = chunk(tp, "");
    for (int i = 0; i < 50; i++) {
        uint64_t id = 1000 + (uint64_t)i;
        DdSpan *sp = top(span("s", "o", "r-b", i == 39 ? 77 : i == 49 ? 1000 : id + 1, T0, 10, 0));
        sp->spanid = id;
        metric(sp, "_sample_rate", i == 39 ? 0.5 : 0.1);
        add(b, sp);
    }
    /* a rate of 0 or above 1 weighs 1 */
    DdTraceChunk *z = chunk(tp, "");
    add(z, metric(top(span("s", "o", "r-z", 0, T0, 10, 0)), "_sample_rate", 0));
    DdTraceChunk *big = chunk(tp, "");
    add(big, metric(top(span("s", "o", "r-big", 0, T0, 10, 0)), "_sample_rate", 2));
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    struct flat f[8];
    size_t n = flatten(&o, f, 8);
    assert_int_equal(n, 5); /* r-a's root and children differ in IsTraceRoot */
    assert_int_equal(sum_u(f, n, "r-a", "Hits"), 3 + 7); /* 3.333 + 6.667 */
    assert_int_equal(sum_u(f, n, "r-a", "TopLevelHits"), 3 + 7);
    assert_int_equal(sum_u(f, n, "r-a", "Errors"), 3);         /* 3.333 */
    assert_int_equal(sum_u(f, n, "r-a", "Duration"), 33 + 67); /* 10 ns x 3.333, 20 x 3.333 */
    double okn = 0;
    for (size_t i = 0; i < n; i++) {
        if (str_is(get(f[i].g, "Resource"), "r-a")) {
            Datadog__Sketches__DDSketch *ok = summary(f[i].g, "OkSummary");
            okn += sketch_count(ok);
            datadog__sketches__ddsketch__free_unpacked(ok, NULL);
        }
    }
    assert_true(okn == 2);
    const msgpack_object *g = find(f, n, "r-b")->g;
    assert_int_equal(get_u(g, "Hits"), 100);
    assert_int_equal(get_u(g, "Duration"), 1000);
    assert_int_equal(get_u(find(f, n, "r-z")->g, "Hits"), 1);
    assert_int_equal(get_u(find(f, n, "r-big")->g, "Hits"), 1);
    out_free(&o);
    stats_concentrator_free(c);
}

static void payload_key_and_container_tags(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *a = payload("prod", "h1", "1.0");
    a->containerid = dup("cid-1");
    a->languagename = dup("python");
    tp_tag(a, "_dd.tags.container",
           "task_arn:arn:x, image_tag:2.3,ecs_cluster_name:c1,task_arn:arn:x");
    tp_tag(a, "_dd.git.commit.sha", "abc123");
    add(chunk(a, ""), top(span("s", "o", "r", 0, T0, 10, 0)));
    DdTracerPayload *b = payload("prod", "h1", "2.0");
    add(chunk(b, ""), top(span("s", "o", "r", 0, T0, 10, 0)));
    DdTracerPayload *a2 = payload("prod", "h1", "1.0");
    a2->containerid = dup("cid-1");
    a2->languagename = dup("python");
    tp_tag(a2, "_dd.tags.container",
           "task_arn:arn:x, image_tag:2.3,ecs_cluster_name:c1,task_arn:arn:x");
    tp_tag(a2, "_dd.git.commit.sha", "abc123");
    add(chunk(a2, ""), top(span("s", "o", "r", 0, T0, 10, 0)));
    assert_int_equal(stats_add_payload(c, a), O2D_OK);
    assert_int_equal(stats_add_payload(c, b), O2D_OK);
    assert_int_equal(stats_add_payload(c, a2), O2D_OK);
    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    assert_int_equal(o.n, 1);
    uint32_t nc;
    const msgpack_object *cs = arr(&o.u[0].data, "Stats", &nc);
    assert_int_equal(nc, 2);
    int seen = 0;
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t nb, ng, nt;
        const msgpack_object *bk = arr(&cs[i], "Stats", &nb);
        assert_int_equal(nb, 1);
        const msgpack_object *gs = arr(&bk[0], "Stats", &ng);
        assert_int_equal(ng, 1);
        const msgpack_object *tags = arr(&cs[i], "Tags", &nt);
        if (str_is(get(&cs[i], "Version"), "1.0")) {
            seen |= 1;
            assert_int_equal(get_u(gs, "Hits"), 2);
            assert_str(get(&cs[i], "ContainerID"), "cid-1");
            assert_str(get(&cs[i], "Lang"), "python");
            assert_str(get(&cs[i], "GitCommitSha"), "abc123");
            assert_str(get(&cs[i], "ImageTag"), "2.3");
            assert_int_equal(nt, 3);
            assert_str(&tags[0], "ecs_cluster_name:c1");
            assert_str(&tags[1], "image_tag:2.3");
            assert_str(&tags[2], "task_arn:arn:x");
        } else {
            seen |= 2;
            assert_str(get(&cs[i], "Version"), "2.0");
            assert_int_equal(get_u(gs, "Hits"), 1);
            assert_str(get(&cs[i], "ContainerID"), "");
            assert_int_equal(nt, 0);
        }
    }
    assert_int_equal(seen, 3);
    out_free(&o);
    stats_concentrator_free(c);
}

static void split_at_4000_entries(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("prod", "h", "1");
    DdTraceChunk *ch = chunk(tp, "");
    char res[32];
    for (int i = 0; i < 9000; i++) {
        snprintf(res, sizeof(res), "r%d", i);
        /* two buckets so that a client payload spans several */
        add(ch, top(span("s", "o", res, 0, T0 + (i % 2) * 10 * SEC, 10, 0)));
    }
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    assert_int_equal(o.n, 3);
    static struct flat f[9000];
    size_t total = 0;
    for (size_t i = 0; i < o.n; i++) {
        const msgpack_object *sp = get(&o.u[i].data, "SplitPayload");
        assert_int_equal(sp->type, MSGPACK_OBJECT_BOOLEAN);
        assert_true(sp->via.boolean);
        struct out one = {.n = 1};
        one.u[0] = o.u[i];
        size_t n = flatten(&one, f, 9000);
        assert_int_equal(n, i < 2 ? 4000 : 1000);
        total += n;
    }
    assert_int_equal(total, 9000);
    out_free(&o);
    struct stats_counters k;
    stats_get_counters(c, &k);
    assert_int_equal(k.payloads, 3);

    /* at most 4000: one payload, not split */
    tp = payload("prod", "h", "1");
    ch = chunk(tp, "");
    for (int i = 0; i < 4000; i++) {
        snprintf(res, sizeof(res), "r%d", i);
        add(ch, top(span("s", "o", res, 0, T0, 10, 0)));
    }
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    assert_int_equal(o.n, 1);
    assert_false(get(&o.u[0].data, "SplitPayload")->via.boolean);
    out_free(&o);
    stats_concentrator_free(c);
}

static void group_cap_is_counted(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    cfg.max_groups_per_bucket = 10;
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("prod", "h", "1");
    DdTraceChunk *ch = chunk(tp, "");
    char res[32];
    for (int i = 0; i < 15; i++) {
        snprintf(res, sizeof(res), "r%d", i);
        add(ch, top(span("s", "o", res, 0, T0, 10, 0)));
    }
    /* existing groups still count */
    add(ch, top(span("s", "o", "r0", 0, T0, 10, 0)));
    /* another bucket has its own cap */
    add(ch, top(span("s", "o", "r14", 0, T0 + 10 * SEC, 10, 0)));
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    struct stats_counters k;
    stats_get_counters(c, &k);
    assert_int_equal(k.groups_dropped, 5);
    assert_int_equal(k.spans_counted, 12);
    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    struct flat f[16];
    assert_int_equal(flatten(&o, f, 16), 11);
    assert_int_equal(get_u(find(f, 11, "r0")->g, "Hits"), 2);
    out_free(&o);
    stats_concentrator_free(c);
}

static void keys_types_and_order(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("prod", "h", "1.2");
    add(chunk(tp, ""), top(span("svc", "http.server.request", "GET /", 0, T0, 1500, 0)));
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    assert_int_equal(o.n, 1);

    static const char *const top_keys[] = {"AgentHostname", "AgentEnv",       "Stats",
                                           "AgentVersion",  "ClientComputed", "SplitPayload"};
    static const char *const client_keys[] = {
        "Hostname",     "Env",      "Version",          "Stats",   "Lang",        "TracerVersion",
        "RuntimeID",    "Sequence", "AgentAggregation", "Service", "ContainerID", "Tags",
        "GitCommitSha", "ImageTag"};
    static const char *const bucket_keys[] = {"Start", "Duration", "Stats", "AgentTimeShift"};
    static const char *const group_keys[] = {
        "Service",      "Name",           "Resource",     "HTTPStatusCode", "Type",
        "DBType",       "Hits",           "Errors",       "Duration",       "OkSummary",
        "ErrorSummary", "Synthetics",     "TopLevelHits", "SpanKind",       "PeerTags",
        "IsTraceRoot",  "GRPCStatusCode", "HTTPMethod",   "HTTPEndpoint"};
    const msgpack_object *sp = &o.u[0].data;
#define CHECK_KEYS(obj, keys)                                                                      \
    do {                                                                                           \
        assert_int_equal((obj)->type, MSGPACK_OBJECT_MAP);                                         \
        assert_int_equal((obj)->via.map.size, sizeof(keys) / sizeof(keys[0]));                     \
        for (size_t i_ = 0; i_ < sizeof(keys) / sizeof(keys[0]); i_++) {                           \
            assert_str(&(obj)->via.map.ptr[i_].key, keys[i_]);                                     \
        }                                                                                          \
    } while (0)
    CHECK_KEYS(sp, top_keys);
    assert_str(get(sp, "AgentHostname"), "collector-1");
    assert_str(get(sp, "AgentEnv"), "agentenv");
    assert_str(get(sp, "AgentVersion"), "otel2dd/test");
    assert_int_equal(get(sp, "ClientComputed")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_false(get(sp, "ClientComputed")->via.boolean);
    uint32_t n;
    const msgpack_object *cl = arr(sp, "Stats", &n);
    assert_int_equal(n, 1);
    CHECK_KEYS(cl, client_keys);
    assert_str(get(cl, "Hostname"), "h");
    assert_str(get(cl, "Env"), "prod");
    assert_str(get(cl, "Version"), "1.2");
    assert_int_equal(get_u(cl, "Sequence"), 0);
    const msgpack_object *bk = arr(cl, "Stats", &n);
    assert_int_equal(n, 1);
    CHECK_KEYS(bk, bucket_keys);
    assert_int_equal(get_u(bk, "Start"), T0);
    assert_int_equal(get_u(bk, "Duration"), 10 * SEC);
    assert_int_equal(get_u(bk, "AgentTimeShift"), 0);
    const msgpack_object *g = arr(bk, "Stats", &n);
    assert_int_equal(n, 1);
    CHECK_KEYS(g, group_keys);
    assert_str(get(g, "Service"), "svc");
    assert_str(get(g, "Name"), "http.server.request");
    assert_str(get(g, "Resource"), "GET /");
    assert_str(get(g, "Type"), "web");
    assert_str(get(g, "DBType"), "");
    assert_int_equal(get_u(g, "HTTPStatusCode"), 0);
    assert_int_equal(get_u(g, "Hits"), 1);
    assert_int_equal(get_u(g, "Errors"), 0);
    assert_int_equal(get_u(g, "Duration"), 1500);
    assert_int_equal(get_u(g, "TopLevelHits"), 1);
    assert_int_equal(get_u(g, "IsTraceRoot"), 1);
    assert_int_equal(get(g, "OkSummary")->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(get(g, "ErrorSummary")->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(get(g, "Synthetics")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_str(get(g, "SpanKind"), "");
    assert_str(get(g, "GRPCStatusCode"), "");
    arr(g, "PeerTags", &n);
    assert_int_equal(n, 0);
    Datadog__Sketches__DDSketch *ok = summary(g, "OkSummary");
    assert_int_equal(ok->positivevalues->n_contiguousbincounts, 1);
    /* 1500 truncated to 10 bits is 1500 (0b10111011100): its bin */
    assert_int_equal(ok->positivevalues->contiguousbinindexoffset, ddsketch_index(1500));
    datadog__sketches__ddsketch__free_unpacked(ok, NULL);
    out_free(&o);
    stats_concentrator_free(c);
}

static void peer_ip_quantization(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"10.0.0.1", "blocked-ip-address"},
        {"10.0.0.1:5432", "blocked-ip-address:5432"},
        {"127.0.0.1", "127.0.0.1"},
        {"169.254.169.254", "169.254.169.254"},
        {"ip-10-1-2-3.ec2.internal", "ip-blocked-ip-address.ec2.internal"},
        {"http://10.0.0.1:80/path", "http://blocked-ip-address:80/path"},
        {"https://10.0.0.1/x", "https://blocked-ip-address/x"},
        {"db.example.com", "db.example.com"},
        {"db.example.com:5432", "db.example.com:5432"},
        {"10.0.0.1,10.0.0.2,db", "blocked-ip-address,db"},
        {"2001:db8::1", "blocked-ip-address"},
        {"[2001:db8::1]:443", "blocked-ip-address:443"},
        {"::1", "::1"},
        {"1.2.3", "1.2.3"},
        {"256.1.1.1", "256.1.1.1"},
        {"01.2.3.4", "01.2.3.4"},
        /* scheme words without "://", and "://" without a scheme: no prefix */
        {"http:10.0.0.1", "http:10.0.0.1"},
        {"ftp.10.0.0.1:21", "ftp.10.0.0.1:21"},
        {"db://10.0.0.1", "db://10.0.0.1"},
        /* the first occurrence of a scheme decides; text before it is not kept */
        {"x https://10.0.0.1:443", "https://blocked-ip-address:443"},
        {"dnspoll:///10.0.0.1", "dnspoll:///blocked-ip-address"},
        {"", ""},
        /* without a digit or ':' (looked for eight bytes at a time) nothing changes, not
         * even duplicates; with one, duplicates go */
        {"a/b;c/d;e/f;g", "a/b;c/d;e/f;g"},
        {"dup.example.org,dup.example.org", "dup.example.org,dup.example.org"},
        {"db1.example.org,db1.example.org", "db1.example.org"},
        {"abcdefghi9,abcdefghi9", "abcdefghi9"},
        {"////////0////////,////////0////////", "////////0////////"},
        {";;;;;;;;;;;;;;;;:,;;;;;;;;;;;;;;;;:", ";;;;;;;;;;;;;;;;:"},
        /* bytes 0xB0 and 0xB9 are no digits */
        {"h\xc3\xa9llo-\xb0\xb9.example,h\xc3\xa9llo-\xb0\xb9.example",
         "h\xc3\xa9llo-\xb0\xb9.example,h\xc3\xa9llo-\xb0\xb9.example"},
        /* the host's first byte, after a '[' */
        {"[fe80::1]:80", "blocked-ip-address:80"},
        {"[db]:80", "[db]:80"},
        {"[zz]:80", "[zz]:80"},
        {"[", "["},
        {"[1", "[1"},
        {"ip-zz", "ip-zz"},
        {"zz,10.0.0.1,zz", "zz,blocked-ip-address"},
        {",10.0.0.1,", ",blocked-ip-address"},
    };
    struct o2d_buf b;
    o2d_buf_init(&b, 4096);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        o2d_buf_reset(&b);
        assert_int_equal(stats_quantize_peer_ips(&b, cases[i][0], strlen(cases[i][0])), O2D_OK);
        if (b.len != strlen(cases[i][1]) || memcmp(b.data, cases[i][1], b.len) != 0) {
            fail_msg("%s -> %.*s, want %s", cases[i][0], (int)b.len, b.data, cases[i][1]);
        }
    }
    o2d_buf_cleanup(&b);
}

static void grpc_codes(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"5", "5"},         {"NOT_FOUND", "5"}, {"NotFound", "5"}, {"StatusCode.NOT_FOUND", "5"},
        {"Canceled", "1"},  {"ok", "0"},        {"bogus", ""},     {"-1", ""},
        {"4294967296", ""},
    };
    char out[12];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stats_grpc_code_from_string(cases[i][0], out);
        assert_string_equal(out, cases[i][1]);
    }
}

static int failing_emit(void *ctx, const uint8_t *p, size_t len)
{
    (void)p;
    (void)len;
    ++*(int *)ctx;
    return O2D_ERR_BUSY;
}

static void emit_error_and_allocation_failures(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    DdTracerPayload *tp = payload("prod", "h", "1");
    DdTraceChunk *ch = chunk(tp, "");
    char res[32];
    for (int i = 0; i < 50; i++) {
        snprintf(res, sizeof(res), "r%d", i % 7);
        DdSpan *s =
            top(span("s", "o", res, 0, T0 + (i % 3) * 10 * SEC, 1000 + i * 1000000, i % 5 == 0));
        meta(meta(s, "span.kind", "client"), "db.system", i % 2 ? "pg" : "mysql");
        add(ch, s);
    }
    /* emit errors are returned, the buckets are forgotten anyway */
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    int calls = 0;
    assert_int_equal(stats_flush(c, 0, 1, failing_emit, &calls), O2D_ERR_BUSY);
    assert_int_equal(calls, 1);
    struct out o = {0};
    assert_int_equal(stats_flush(c, 0, 1, collect, &o), O2D_OK);
    assert_int_equal(o.n, 0);
    stats_concentrator_free(c);

    /* Every allocation failing in turn: an error, never a crash or a leak (ASan). */
    for (long n = 0; n < 400; n++) {
        o2d_alloc_fail_after(n);
        int rv = stats_concentrator_new(&c, &cfg);
        if (rv == O2D_OK) {
            rv = stats_add_payload(c, tp);
            (void)rv;
            rv = stats_flush(c, 0, 1, collect, &o);
            (void)rv;
            out_free(&o);
        } else {
            assert_int_equal(rv, O2D_ERR_NOMEM);
            assert_null(c);
        }
        long failures = o2d_alloc_failures();
        o2d_alloc_fail_after(-1);
        stats_concentrator_free(c);
        c = NULL;
        if (failures == 0) {
            break;
        }
    }
    o2d_alloc_fail_after(-1);
}

/*
 * The sample for the independent Python check: one group of 5000 log-uniform durations
 * (1 us .. 100 s) without errors and 1000 error durations 50 ms + 7919 ns * i, all ending at
 * T0 + 5 s. The Python test computes the same lists.
 */
static void sample_payload_dump(void **state)
{
    (void)state;
    const char *path = getenv("O2D_STATS_DUMP");
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("prod", "sample-host", "9.9.9");
    DdTraceChunk *ch = chunk(tp, "");
    for (int i = 0; i < 5000; i++) {
        int64_t d = (int64_t)floor(1e3 * pow(1e8, i / 4999.0));
        add(ch, top(meta(span("sample", "op", "GET /sample", 0, T0 + 5 * SEC - d, d, 0),
                         "span.kind", "server")));
    }
    for (int i = 0; i < 1000; i++) {
        int64_t d = 50000000 + 7919LL * i;
        add(ch, top(meta(span("sample", "op", "GET /sample", 0, T0 + 5 * SEC - d, d, 1),
                         "span.kind", "server")));
    }
    assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    struct out o = {0};
    assert_int_equal(stats_flush(c, T0 + 20 * SEC, 0, collect, &o), O2D_OK);
    assert_int_equal(o.n, 1);
    if (path != NULL && path[0] != '\0') {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(o.raw[0], 1, o.len[0], f), o.len[0]);
        assert_int_equal(fclose(f), 0);
    }
    out_free(&o);
    stats_concentrator_free(c);
}

/* Rough cost of stats_add_payload per span on a typical mix (printed, not asserted). */
static void cost_per_span(void **state)
{
    (void)state;
    struct stats_config cfg = config();
    struct stats_concentrator *c;
    assert_int_equal(stats_concentrator_new(&c, &cfg), O2D_OK);
    DdTracerPayload *tp = payload("prod", "h", "1");
    DdTraceChunk *ch = chunk(tp, "");
    char res[32];
    const int n = 1000;
    for (int i = 0; i < n; i++) {
        snprintf(res, sizeof(res), "GET /api/v1/items/%d", i % 20);
        DdSpan *s = span("checkout-service", "http.server.request", res, i % 4 ? 1 : 0, T0,
                         1000000 + i * 1000, i % 50 == 0);
        meta(s, "span.kind", i % 4 ? "client" : "server");
        meta(s, "http.method", "GET");
        meta(s, "http.route", "/api/v1/items/{id}");
        meta(s, "component", "fastapi");
        meta(s, "db.system", "postgresql");
        meta(s, "peer.service", "items-db");
        meta(s, "otel.library.name", "opentelemetry.instrumentation.fastapi");
        meta(s, "env", "prod");
        meta(s, "version", "1.0");
        metric(s, "http.status_code", 200);
        metric(s, "_sampling_priority_v1", 1);
        if (i % 4 == 0) {
            top(s);
        }
        add(ch, s);
    }
    const int rounds = 2000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int r = 0; r < rounds; r++) {
        assert_int_equal(stats_add_payload(c, tp), O2D_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("stats_add_payload: %.1f ns per span (%d spans, 10 meta + 2 metrics each, 3/4 client "
           "spans with peer tags)\n",
           ns / ((double)n * rounds), n * rounds);
    struct stats_counters k;
    stats_get_counters(c, &k);
    assert_int_equal(k.spans_counted, (uint64_t)n * rounds);
    stats_concentrator_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(buckets_by_end_time_and_flush_timing, setup, teardown),
        cmocka_unit_test_setup_teardown(eligibility, setup, teardown),
        cmocka_unit_test_setup_teardown(aggregation_key_splits_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(counters_and_summaries, setup, teardown),
        cmocka_unit_test_setup_teardown(sample_rate_weights_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(payload_key_and_container_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(split_at_4000_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(group_cap_is_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_types_and_order, setup, teardown),
        cmocka_unit_test(peer_ip_quantization),
        cmocka_unit_test(grpc_codes),
        cmocka_unit_test_setup_teardown(emit_error_and_allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(sample_payload_dump, setup, teardown),
        cmocka_unit_test_setup_teardown(cost_per_span, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
