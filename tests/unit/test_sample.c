/*
 * test_sample.c: the trace sampler (o2d_sample.c, apm_sample.c, llmobs_sample.c): the hash
 * against values computed independently (FNV-1a 32 written out in Python), the kept share
 * within a binomial bound, decisions that depend on the trace id only, the rules, the tags a
 * kept chunk carries, and APM stats identical with and without sampling on the same request.
 */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apm.h"
#include "apm_sample.h"
#include "llmobs_sample.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_sample.h"
#include "otlp.h"
#include "stats.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_id(uint8_t id[16])
{
    uint64_t a = next(), b = next();
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

static void test_fnv_vectors(void **state)
{
    (void)state;
    uint8_t id[16];
    for (int i = 0; i < 16; i++) {
        id[i] = (uint8_t)i;
    }
    /* python3: FNV-1a 32 over seed.to_bytes(4, "little") + bytes(range(16)) */
    assert_int_equal(o2d_sample_fnv(0, id), 0x1995bd65u);
    assert_int_equal(o2d_sample_fnv(42, id), 0x63fa035fu);
    /* the bucket bound in float32 as the Collector computes it: 10 % -> 1638 of 16384 */
    assert_int_equal(o2d_sample_rate_of(O2D_SAMPLE_HASH_SEED, 10).threshold, 1638);
    assert_int_equal(o2d_sample_rate_of(O2D_SAMPLE_HASH_SEED, 100).threshold, 16384);
    assert_int_equal(o2d_sample_rate_of(O2D_SAMPLE_HASH_SEED, 12.5).threshold, 2048);
}

/* The randomness R into the low 56 bits of a trace id. */
static void put56(uint8_t id[16], uint64_t r)
{
    for (int i = 0; i < 7; i++) {
        id[15 - i] = (uint8_t)(r >> (8 * i));
    }
}

static void test_proportional_threshold(void **state)
{
    (void)state;
    /* pkg/sampling ProbabilityToThresholdWithPrecision, recomputed in Python: 10 % is th:e666
     * at the default precision 4, 1/3 th:aaab; precision grows with leading 0s or fs. */
    static const struct {
        double percent;
        int precision;
        uint64_t threshold;
    } v[] = {
        {10, 4, 0xe6660000000000ULL},
        {10, 14, 0xe6666666666666ULL},
        {0.1, 4, 0xffbe7700000000ULL},
        {99.99, 4, 0x68dc0000000ULL},
        {100.0 / 3, 4, 0xaaab0000000000ULL},
        {50, 4, 0x80000000000000ULL},
        {100, 4, 0},
        {0, 4, 0x100000000000000ULL},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct o2d_sample_rate t =
            o2d_sample_rate_prec(O2D_SAMPLE_PROPORTIONAL, v[i].percent, v[i].precision);
        if (t.threshold != v[i].threshold) {
            fail_msg("%g %% at precision %d: %" PRIx64 ", want %" PRIx64, v[i].percent,
                     v[i].precision, t.threshold, v[i].threshold);
        }
    }
    struct o2d_sample_rate r = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 10);
    uint8_t id[16] = {0};
    put56(id, r.threshold);
    assert_true(o2d_sample_keep(O2D_SAMPLE_PROPORTIONAL, 0, id, &r)); /* R == T: kept */
    put56(id, r.threshold - 1);
    assert_false(o2d_sample_keep(O2D_SAMPLE_PROPORTIONAL, 0, id, &r));
    /* the high 72 bits do not matter */
    memset(id, 0xff, 9);
    assert_false(o2d_sample_keep(O2D_SAMPLE_PROPORTIONAL, 0, id, &r));
    struct o2d_sample_rate all = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 100);
    struct o2d_sample_rate none = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 0);
    memset(id, 0, 16);
    assert_true(o2d_sample_keep(O2D_SAMPLE_PROPORTIONAL, 0, id, &all));
    memset(id, 0xff, 16);
    assert_false(o2d_sample_keep(O2D_SAMPLE_PROPORTIONAL, 0, id, &none));
}

/* 100,000 random ids at 10 %: kept count within 5 standard deviations (sqrt(n p (1-p)) =
 * 94.9) of 10,000, in both modes; a trace kept at 10 % is kept at 50 % too (monotone). */
static void test_share_and_monotone(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        enum o2d_sample_mode mode = m ? O2D_SAMPLE_HASH_SEED : O2D_SAMPLE_PROPORTIONAL;
        struct o2d_sample_rate r10 = o2d_sample_rate_of(mode, 10);
        struct o2d_sample_rate r50 = o2d_sample_rate_of(mode, 50);
        int kept = 0;
        for (int i = 0; i < 100000; i++) {
            uint8_t id[16];
            random_id(id);
            int k = o2d_sample_keep(mode, 7, id, &r10);
            kept += k;
            if (k) {
                assert_true(o2d_sample_keep(mode, 7, id, &r50));
            }
        }
        assert_true(abs(kept - 10000) < 475);
    }
}

/* ---- through apm_translate ---- */

#define N_TRACES 400

/* An OTLP/JSON request: N_TRACES traces of two spans each (server root, client child) of
 * service "web", every 20th with an error on its child, every 50th 3 s long; trace ids from
 * the generator seeded by `seed`. */
static const char *root_trace_state = ""; /* a W3C tracestate on every root, or "" */

static char *request_json(uint64_t seed)
{
    rng = seed;
    struct o2d_buf b;
    o2d_buf_init(&b, 8u << 20);
    o2d_buf_append_str(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                           "\"service.name\",\"value\":{\"stringValue\":\"web\"}}]},"
                           "\"scopeSpans\":[{\"scope\":{\"name\":\"t\"},\"spans\":[");
    for (int t = 0; t < N_TRACES; t++) {
        uint8_t id[16];
        random_id(id);
        char hex[33];
        for (int i = 0; i < 16; i++) {
            snprintf(hex + 2 * i, 3, "%02x", id[i]);
        }
        long long dur = t % 50 == 0 ? 3000000000LL : 10000000LL;
        o2d_buf_printf(&b,
                       "%s{\"traceId\":\"%s\",\"spanId\":\"%016x\",\"name\":\"GET /a\","
                       "\"kind\":2,\"startTimeUnixNano\":\"1700000000000000000\","
                       "\"traceState\":\"%s\",\"endTimeUnixNano\":\"%lld\"},",
                       t ? "," : "", hex, 2 * t + 1, root_trace_state, 1700000000000000000LL + dur);
        o2d_buf_printf(&b,
                       "{\"traceId\":\"%s\",\"spanId\":\"%016x\",\"parentSpanId\":\"%016x\","
                       "\"name\":\"SELECT\",\"kind\":3,\"startTimeUnixNano\":"
                       "\"1700000000000000000\",\"endTimeUnixNano\":\"1700000000005000000\"%s}",
                       hex, 2 * t + 2, 2 * t + 1, t % 20 == 0 ? ",\"status\":{\"code\":2}" : "");
    }
    o2d_buf_append_str(&b, "]}]}]}");
    o2d_buf_append_byte(&b, 0);
    return (char *)b.data; /* the buffer's storage, freed by the caller */
}

struct translated {
    struct o2d_arena arena;
    struct apm_result res;
    size_t *n_kept;
    struct apm_sample_counts counts;
};

static void translate(struct translated *t, const char *json, const struct apm_sampler *s)
{
    memset(t, 0, sizeof(*t));
    o2d_arena_init(&t->arena, 64u << 20);
    void *msg = NULL;
    const char *reason = NULL;
    assert_int_equal(otlp_json_decode(&t->arena, OTLP_SIGNAL_TRACES, (const uint8_t *)json,
                                      strlen(json), &msg, &reason),
                     O2D_OK);
    struct apm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(apm_translate(&t->arena, msg, &cfg, 1700000000000000000LL, &t->res, &reason),
                     O2D_OK);
    assert_int_equal(apm_sample(&t->arena, s, &t->res, &t->n_kept, &t->counts), O2D_OK);
}

struct stats_bytes {
    struct o2d_buf b;
};

static int collect(void *ctx, const uint8_t *msgpack, size_t len)
{
    struct stats_bytes *o = ctx;
    return o2d_buf_append(&o->b, msgpack, len);
}

static void stats_of(struct translated *t, struct stats_bytes *o)
{
    struct stats_config sc = {
        .bucket_ns = 10000000000LL,
        .max_groups_per_bucket = 1000,
        .agent_env = "none",
        .agent_hostname = "h",
        .agent_version = "v",
        .now_ns = 1700000000000000000LL,
    };
    struct stats_concentrator *c = NULL;
    assert_int_equal(stats_concentrator_new(&c, &sc), O2D_OK);
    for (size_t i = 0; i < t->res.n_payloads; i++) {
        assert_int_equal(stats_add_payload(c, t->res.payloads[i]), O2D_OK);
    }
    o2d_buf_init(&o->b, 16u << 20);
    assert_int_equal(stats_flush(c, INT64_MAX, 1, collect, o), O2D_OK);
    stats_concentrator_free(c);
}

static const char *meta(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_meta; i++) {
        if (strcmp(s->meta[i]->key, k) == 0) {
            return s->meta[i]->value;
        }
    }
    return NULL;
}

static int metric(const DdSpan *s, const char *k, double *v)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        if (strcmp(s->metrics[i]->key, k) == 0) {
            *v = s->metrics[i]->value;
            return 1;
        }
    }
    return 0;
}

static const char *chunk_tag(const DdTraceChunk *ch, const char *k)
{
    for (size_t i = 0; i < ch->n_tags; i++) {
        if (strcmp(ch->tags[i]->key, k) == 0) {
            return ch->tags[i]->value;
        }
    }
    return NULL;
}

static const DdSpan *root(const DdTraceChunk *ch)
{
    for (size_t i = 0; i < ch->n_spans; i++) {
        if (ch->spans[i]->parentid == 0) {
            return ch->spans[i];
        }
    }
    return NULL;
}

static void test_apm_rules_and_stats(void **state)
{
    (void)state;
    char *json = request_json(12345);
    struct apm_sampler s = {
        .enabled = 1,
        .mode = O2D_SAMPLE_PROPORTIONAL,
        .fail_closed = 1,
        .rate = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 10),
        .keep_errors = 1,
        .keep_slower_than_ns = 2000000000LL,
    };
    struct translated on, off;
    translate(&on, json, &s);
    translate(&off, json, NULL);
    assert_int_equal(on.res.n_payloads, 1);
    DdTracerPayload *tp = on.res.payloads[0];
    assert_int_equal(tp->n_chunks, N_TRACES);
    assert_int_equal(off.n_kept[0], N_TRACES);

    /* every error and slow trace kept; the rest by the trace id alone */
    size_t kept = on.n_kept[0];
    size_t errors = 0, slow = 0, by_rate = 0;
    for (size_t c = 0; c < tp->n_chunks; c++) {
        const DdTraceChunk *ch = tp->chunks[c];
        const DdSpan *r = root(ch);
        assert_non_null(r);
        int err = ch->spans[0]->error || ch->spans[1]->error;
        int is_slow = r->duration >= 2000000000LL;
        uint8_t id[16];
        apm_sample_trace_id(ch, id);
        int by_id = o2d_sample_keep(O2D_SAMPLE_PROPORTIONAL, 0, id, &s.rate);
        int want = by_id || err || is_slow;
        assert_int_equal(c < kept, want);
        assert_string_equal(chunk_tag(ch, "_dd.otlp_sr"), "0.10");
        if (c >= kept) {
            continue;
        }
        assert_int_equal(ch->priority, 1);
        double v = 0;
        if (by_id) {
            by_rate++;
            assert_string_equal(chunk_tag(ch, "_dd.p.dm"), "-9");
            assert_true(metric(r, "_dd.prob_sr", &v) && v == 0.1);
            assert_false(metric(r, "_sample_rate", &v)); /* the app's rate, none here */
        } else {
            /* kept by a rule: no decision maker, no sampler rate */
            assert_null(chunk_tag(ch, "_dd.p.dm"));
            assert_null(meta(ch->spans[0], "_dd.p.dm"));
            assert_false(metric(r, "_dd.prob_sr", &v));
            assert_false(metric(r, "_sample_rate", &v));
            if (err) {
                errors++;
                assert_true(metric(r, "_dd.errors_sr", &v) && v == 1);
            } else {
                slow++;
            }
        }
    }
    assert_true(errors > 0 && slow > 0 && by_rate > 0);
    assert_int_equal(on.counts.kept_traces[APM_SAMPLE_ERROR], errors);
    assert_int_equal(on.counts.kept_traces[APM_SAMPLE_LATENCY], slow);
    assert_int_equal(on.counts.kept_traces[APM_SAMPLE_PERCENTAGE], by_rate);
    assert_int_equal(on.counts.dropped_spans[APM_SAMPLE_PERCENTAGE], 2 * (N_TRACES - kept));

    /* stats from every span, byte for byte the same as without sampling */
    struct stats_bytes a, b;
    stats_of(&on, &a);
    stats_of(&off, &b);
    assert_true(a.b.len > 0);
    assert_int_equal(a.b.len, b.b.len);
    assert_memory_equal(a.b.data, b.b.data, a.b.len);
    o2d_buf_cleanup(&a.b);
    o2d_buf_cleanup(&b.b);
    o2d_arena_cleanup(&on.arena);
    o2d_arena_cleanup(&off.arena);
    o2d_free(json);
}

/* Traces the application sampled at 50 % (tracestate ot=th:8): apm.c gives their roots
 * `_sample_rate` 0.5 and the stats weigh them twice; our sampler keeps that rate as it is
 * (its own goes to `_dd.prob_sr`), so the stats stay those without our sampling. */
static void test_apm_upstream_rate(void **state)
{
    (void)state;
    root_trace_state = "ot=th:8";
    char *json = request_json(4711);
    root_trace_state = "";
    struct apm_sampler s = {
        .enabled = 1,
        .rate = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 10),
        .keep_errors = 1,
    };
    struct translated on, off;
    translate(&on, json, &s);
    translate(&off, json, NULL);
    DdTracerPayload *tp = on.res.payloads[0];
    assert_true(on.n_kept[0] > 0 && on.n_kept[0] < tp->n_chunks);
    for (size_t c = 0; c < on.n_kept[0]; c++) {
        double v = 0;
        assert_true(metric(root(tp->chunks[c]), "_sample_rate", &v) && v == 0.5);
    }
    struct stats_bytes a, b;
    stats_of(&on, &a);
    stats_of(&off, &b);
    assert_int_equal(a.b.len, b.b.len);
    assert_memory_equal(a.b.data, b.b.data, a.b.len);
    o2d_buf_cleanup(&a.b);
    o2d_buf_cleanup(&b.b);
    o2d_arena_cleanup(&on.arena);
    o2d_arena_cleanup(&off.arena);
    o2d_free(json);
}

/* Per-service rates win over sampling_percentage. */
static void test_apm_service_rate(void **state)
{
    (void)state;
    char *json = request_json(777);
    struct apm_sample_service svc = {"web", o2d_sample_rate_of(O2D_SAMPLE_HASH_SEED, 100)};
    struct apm_sampler s = {
        .enabled = 1,
        .mode = O2D_SAMPLE_HASH_SEED,
        .hash_seed = 3,
        .rate = o2d_sample_rate_of(O2D_SAMPLE_HASH_SEED, 0),
        .services = &svc,
        .n_services = 1,
    };
    struct translated t;
    translate(&t, json, &s);
    assert_int_equal(t.n_kept[0], N_TRACES);
    assert_int_equal(t.counts.kept_traces[APM_SAMPLE_SERVICE_RATE], N_TRACES);
    o2d_arena_cleanup(&t.arena);
    svc.rate = o2d_sample_rate_of(O2D_SAMPLE_HASH_SEED, 0);
    translate(&t, json, &s);
    assert_int_equal(t.n_kept[0], 0); /* errors not kept: keep_errors is off */
    assert_int_equal(t.counts.dropped_traces[APM_SAMPLE_SERVICE_RATE], N_TRACES);
    o2d_arena_cleanup(&t.arena);
    o2d_free(json);
}

/* The span's own sampling.priority decides, whatever the percentage: 0 drops, 2 keeps (and the
 * decision maker stays -4, a manual decision). */
static void test_apm_user_priority(void **state)
{
    (void)state;
    static const char json[] =
        "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"0000000000000000ffffffffffffffff\",\"spanId\":\"0000000000000001\","
        "\"name\":\"a\",\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":"
        "\"1700000000000000100\",\"attributes\":[{\"key\":\"sampling.priority\",\"value\":"
        "{\"intValue\":\"0\"}}]},"
        "{\"traceId\":\"00000000000000000000000000000001\",\"spanId\":\"0000000000000002\","
        "\"name\":\"b\",\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":"
        "\"1700000000000000100\",\"attributes\":[{\"key\":\"sampling.priority\",\"value\":"
        "{\"intValue\":\"2\"}}]}]}]}]}";
    /* By its id alone, at 50 % the first trace (randomness all ones) would be kept and the
     * second (randomness 1) dropped: the priorities turn both decisions around. */
    struct apm_sampler s = {
        .enabled = 1,
        .rate = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 50),
    };
    struct translated t;
    translate(&t, json, &s);
    DdTracerPayload *tp = t.res.payloads[0];
    assert_int_equal(tp->n_chunks, 2);
    assert_int_equal(t.n_kept[0], 1);
    assert_string_equal(tp->chunks[0]->spans[0]->resource, "b");
    assert_int_equal(tp->chunks[0]->priority, 2);
    assert_string_equal(chunk_tag(tp->chunks[0], "_dd.p.dm"), "-4");
    assert_int_equal(t.counts.dropped_traces[APM_SAMPLE_PRIORITY], 1);
    assert_int_equal(t.counts.kept_traces[APM_SAMPLE_PRIORITY], 1);
    o2d_arena_cleanup(&t.arena);
}

static void test_llmobs_keep(void **state)
{
    (void)state;
    struct llmobs_sample_app app = {"chat", o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 0)};
    struct llmobs_sampler s = {
        .enabled = 1,
        .rate = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 100),
        .keep_errors = 1,
        .apps = &app,
        .n_apps = 1,
    };
    uint8_t id[16];
    random_id(id);
    enum llmobs_sample_rule rule;
    assert_true(llmobs_sample_keep(&s, id, "other", 0, &rule));
    assert_int_equal(rule, LLMOBS_SAMPLE_PERCENTAGE);
    assert_false(llmobs_sample_keep(&s, id, "chat", 0, &rule));
    assert_int_equal(rule, LLMOBS_SAMPLE_ML_APP_RATE);
    assert_true(llmobs_sample_keep(&s, id, "chat", 1, &rule));
    assert_int_equal(rule, LLMOBS_SAMPLE_ERROR);
    s.keep_errors = 0;
    assert_false(llmobs_sample_keep(&s, id, "chat", 1, &rule));
    /* 10 % of ml_app chat: about a tenth of 20,000 ids */
    app.rate = o2d_sample_rate_of(O2D_SAMPLE_PROPORTIONAL, 10);
    int kept = 0;
    for (int i = 0; i < 20000; i++) {
        random_id(id);
        kept += llmobs_sample_keep(&s, id, "chat", 0, &rule);
    }
    assert_true(abs(kept - 2000) < 5 * 43); /* sqrt(20000 * 0.1 * 0.9) = 42.4 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv_vectors),        cmocka_unit_test(test_proportional_threshold),
        cmocka_unit_test(test_share_and_monotone), cmocka_unit_test(test_apm_rules_and_stats),
        cmocka_unit_test(test_apm_service_rate),   cmocka_unit_test(test_apm_upstream_rate),
        cmocka_unit_test(test_apm_user_priority),  cmocka_unit_test(test_llmobs_keep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
