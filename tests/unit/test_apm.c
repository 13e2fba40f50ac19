/*
 * test_apm.c: the string rules of translate/apm/apm_normalize.c (tag normalization examples of
 * the Datadog reference, UTF-8 repair, truncation inside multi-byte characters), top-level
 * computation, invalid UTF-8 in a translated span, start times before 2000, and the arena limit.
 */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apm.h"
#include "apm_int.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_json_out.h"

/* The wall clock the tests pass in: a little after the spans' own times. */
#define NOW_NS INT64_C(1700000001000000000)

static struct o2d_arena arena;

static int setup(void **state)
{
    (void)state;
    o2d_arena_init(&arena, 64u << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    o2d_arena_cleanup(&arena);
    return 0;
}

static const char *tagv(const char *in, int tag_value)
{
    struct apm_str out;
    assert_int_equal(apm_normalize_tag(&arena, (struct apm_str){in, strlen(in)}, tag_value, &out),
                     O2D_OK);
    return o2d_arena_strndup(&arena, out.p, out.n);
}

static void test_normalize_tag_value(void **state)
{
    (void)state;
    /* datadog-apm.md 3.15 and normalize_test.go examples. */
    assert_string_equal(tagv("  ENV ", 1), "_env");
    assert_string_equal(tagv("  USER SERVICE ", 1), "_user_service");
    assert_string_equal(tagv("prod", 1), "prod");
    assert_string_equal(tagv("a__b", 1), "a_b");
    assert_string_equal(tagv("Hello World!", 1), "hello_world");
    assert_string_equal(tagv("1abc", 1), "1abc");
    assert_string_equal(tagv("1abc", 0), "abc");
    assert_string_equal(tagv("key:Value", 0), "key:value");
    assert_string_equal(tagv("ÄÖÜ", 1), "äöü");
    assert_string_equal(tagv("test🍣x", 1), "test_x");
    assert_string_equal(tagv("", 1), "");
}

static void test_normalize_tag_long(void **state)
{
    (void)state;
    char in[300];
    memset(in, 'a', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    in[0] = 'A'; /* not on the fast path */
    assert_int_equal(strlen(tagv(in, 1)), APM_MAX_TAG_LEN);
}

static void test_normalize_name(void **state)
{
    (void)state;
    struct apm_str out;
    struct {
        const char *in, *want;
    } cases[] = {
        {"", "unnamed_operation"},
        {"!!!", "unnamed_operation"},
        {"http.server.request", "http.server.request"},
        {"Internal", "Internal"},
        {"GET /items", "GET_items"},
        {"9abc_", "abc"},
        {"a_.b", "a.b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            apm_normalize_name(&arena, (struct apm_str){cases[i].in, strlen(cases[i].in)}, &out),
            O2D_OK);
        assert_int_equal(out.n, strlen(cases[i].want));
        assert_memory_equal(out.p, cases[i].want, out.n);
    }
}

static void test_normalize_service(void **state)
{
    (void)state;
    struct apm_str out;
    assert_int_equal(apm_normalize_service(&arena, APM_STR_LIT(""), &out), O2D_OK);
    assert_int_equal(out.n, strlen("unnamed-service"));
    assert_int_equal(apm_normalize_service(&arena, APM_STR_LIT("!!"), &out), O2D_OK);
    assert_memory_equal(out.p, "unnamed-service", out.n);
    assert_int_equal(apm_normalize_peer_service(&arena, APM_STR_LIT("!!"), &out), O2D_OK);
    assert_int_equal(out.n, 0);
}

static void test_truncate_utf8(void **state)
{
    (void)state;
    /* "aé€𝄞": 1 + 2 + 3 + 4 bytes. */
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E";
    size_t n = strlen(s);
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 100), n);
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 1), 1);
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 2), 1); /* inside é */
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 3), 3);
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 4), 3); /* inside € */
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 5), 3);
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 6), 6);
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 9), 6); /* inside 𝄞 */
    assert_int_equal(apm_normalize_truncate_utf8(s, n, 0), 0);
}

static void test_utf8_repair(void **state)
{
    (void)state;
    struct apm_str s = APM_STR_LIT("ok");
    const char *before = s.p;
    assert_int_equal(apm_normalize_utf8(&arena, &s), O2D_OK);
    assert_ptr_equal(s.p, before); /* valid: untouched */
    const char bad[] = "a\xFF"
                       "b\xC3"
                       "\xED\xA0\x80"; /* stray, truncated, surrogate */
    s = (struct apm_str){bad, sizeof(bad) - 1};
    assert_int_equal(apm_normalize_utf8(&arena, &s), O2D_OK);
    assert_int_equal(o2d_utf8_valid_prefix(s.p, s.n), s.n);
    assert_string_equal(s.p, "a\xEF\xBF\xBD"
                             "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

/* ---- whole-span tests built by hand ---- */

static OtlpKeyValue *kv(const char *k, const char *v)
{
    OtlpKeyValue *p = o2d_arena_alloc(&arena, sizeof(*p));
    OtlpAnyValue *a = o2d_arena_alloc(&arena, sizeof(*a));
    opentelemetry__proto__common__v1__key_value__init(p);
    opentelemetry__proto__common__v1__any_value__init(a);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    a->string_value = (char *)v;
    p->key = (char *)k;
    p->value = a;
    return p;
}

static uint8_t trace_id[16] = {0x72, 0xdf, 0x52, 0x0a, 0xf2, 0xbd, 0xe7, 0xa5,
                               0x24, 0x00, 0x31, 0xea, 0xd7, 0x50, 0xe5, 0xf3};

static OtlpSpan *mkspan(uint8_t id, uint8_t parent, const char *name, int kind)
{
    OtlpSpan *s = o2d_arena_alloc(&arena, sizeof(*s));
    opentelemetry__proto__trace__v1__span__init(s);
    uint8_t *sid = o2d_arena_alloc(&arena, 8);
    memset(sid, 0, 8);
    sid[7] = id;
    s->trace_id = (ProtobufCBinaryData){16, trace_id};
    s->span_id = (ProtobufCBinaryData){8, sid};
    if (parent != 0) {
        uint8_t *pid = o2d_arena_alloc(&arena, 8);
        memset(pid, 0, 8);
        pid[7] = parent;
        s->parent_span_id = (ProtobufCBinaryData){8, pid};
    }
    s->name = (char *)name;
    s->kind = kind;
    s->start_time_unix_nano = 1700000000000000000ull;
    s->end_time_unix_nano = s->start_time_unix_nano + 1000;
    return s;
}

static OtlpTraceReq *mkreq(OtlpSpan **spans, size_t n, OtlpKeyValue **res, size_t nres)
{
    OtlpTraceReq *r = o2d_arena_alloc(&arena, sizeof(*r));
    OtlpResourceSpans *rs = o2d_arena_alloc(&arena, sizeof(*rs));
    OtlpResourceSpans **rsp = o2d_arena_alloc(&arena, sizeof(*rsp));
    OtlpScopeSpans *ss = o2d_arena_alloc(&arena, sizeof(*ss));
    OtlpScopeSpans **ssp = o2d_arena_alloc(&arena, sizeof(*ssp));
    OtlpResource *resource = o2d_arena_alloc(&arena, sizeof(*resource));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(r);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    opentelemetry__proto__resource__v1__resource__init(resource);
    resource->attributes = res;
    resource->n_attributes = nres;
    rs->resource = resource;
    ss->spans = spans;
    ss->n_spans = n;
    ssp[0] = ss;
    rs->scope_spans = ssp;
    rs->n_scope_spans = 1;
    rsp[0] = rs;
    r->resource_spans = rsp;
    r->n_resource_spans = 1;
    return r;
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

static int top_level(const DdSpan *s)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        if (strcmp(s->metrics[i]->key, "_top_level") == 0) {
            return s->metrics[i]->value == 1;
        }
    }
    return 0;
}

static void test_top_level(void **state)
{
    (void)state;
    OtlpSpan **spans = o2d_arena_alloc(&arena, 4 * sizeof(*spans));
    spans[0] = mkspan(1, 0, "root", 2);
    spans[1] = mkspan(2, 1, "same-service child", 3);
    spans[2] = mkspan(3, 2, "other service", 2);
    spans[2]->attributes = o2d_arena_alloc(&arena, sizeof(OtlpKeyValue *));
    spans[2]->attributes[0] = kv("service.name", "backend");
    spans[2]->n_attributes = 1;
    spans[3] = mkspan(4, 99, "orphan", 1);
    OtlpKeyValue **res = o2d_arena_alloc(&arena, sizeof(*res));
    res[0] = kv("service.name", "front");
    struct apm_config cfg = {0};
    struct apm_result out;
    const char *reason = NULL;
    assert_int_equal(apm_translate(&arena, mkreq(spans, 4, res, 1), &cfg, NOW_NS, &out, &reason),
                     O2D_OK);
    assert_int_equal(out.n_payloads, 1);
    assert_int_equal(out.payloads[0]->n_chunks, 1);
    DdTraceChunk *ch = out.payloads[0]->chunks[0];
    assert_int_equal(ch->n_spans, 4);
    assert_true(top_level(ch->spans[0]));  /* root */
    assert_false(top_level(ch->spans[1])); /* parent in chunk, same service */
    assert_true(top_level(ch->spans[2]));  /* parent's service differs */
    assert_true(top_level(ch->spans[3]));  /* parent not in chunk */
    assert_int_equal(ch->spans[0]->traceid, 2594128270069917171ull);
    assert_string_equal(meta(ch->spans[0], "_dd.p.tid"), "72df520af2bde7a5");
    assert_null(meta(ch->spans[1], "_dd.p.tid"));
}

static OtlpKeyValue *kvd(const char *k, double d)
{
    OtlpKeyValue *p = kv(k, "");
    p->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    p->value->double_value = d;
    return p;
}

static double metric(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        if (strcmp(s->metrics[i]->key, k) == 0) {
            return s->metrics[i]->value;
        }
    }
    fail_msg("no metric %s", k);
    return 0;
}

/* Doubles that no integer type holds (fuzz_apm_pb found the priority one): the priority
 * saturates to int32, NaN is 0; a status code or _dd.measured that is not an int64 is not
 * read as one. */
static void test_out_of_range_doubles(void **state)
{
    (void)state;
    static const double prio[] = {1e20, -1e20, NAN, 2.0};
    static const int32_t want[] = {INT32_MAX, INT32_MIN, 0, 2};
    for (int i = 0; i < 4; i++) {
        OtlpSpan **spans = o2d_arena_alloc(&arena, sizeof(*spans));
        spans[0] = mkspan(1, 0, "root", 2);
        spans[0]->attributes = o2d_arena_alloc(&arena, 3 * sizeof(OtlpKeyValue *));
        spans[0]->attributes[0] = kvd("sampling.priority", prio[i]);
        spans[0]->attributes[1] = kvd("http.status_code", 1e300);
        spans[0]->attributes[2] = kvd("_dd.measured", -NAN);
        spans[0]->n_attributes = 3;
        struct apm_config cfg = {0};
        struct apm_result out;
        const char *reason = NULL;
        assert_int_equal(
            apm_translate(&arena, mkreq(spans, 1, NULL, 0), &cfg, NOW_NS, &out, &reason), O2D_OK);
        const DdTraceChunk *ch = out.payloads[0]->chunks[0];
        assert_int_equal(ch->priority, want[i]);
        assert_string_equal(meta(ch->spans[0], "_dd.p.dm") ? meta(ch->spans[0], "_dd.p.dm") : "",
                            want[i] > 0 ? "-4" : "");
        /* copied as they are, not replaced by the rules' integer values */
        assert_true(isnan(metric(ch->spans[0], "_dd.measured")));
        assert_true(metric(ch->spans[0], "http.status_code") == 1e300);
        o2d_arena_reset(&arena);
    }
}

static void test_invalid_utf8_span(void **state)
{
    (void)state;
    OtlpSpan **spans = o2d_arena_alloc(&arena, sizeof(*spans));
    spans[0] = mkspan(1, 0, "bad\xFFname", 1);
    spans[0]->attributes = o2d_arena_alloc(&arena, 2 * sizeof(OtlpKeyValue *));
    spans[0]->attributes[0] = kv("k\xC3", "v\xE2\x82");
    spans[0]->attributes[1] = kv("resource.name", "res\xFE");
    spans[0]->n_attributes = 2;
    OtlpKeyValue **res = o2d_arena_alloc(&arena, sizeof(*res));
    res[0] = kv("service.name", "svc\xF0\x9F");
    struct apm_config cfg = {0};
    struct apm_result out;
    const char *reason = NULL;
    assert_int_equal(apm_translate(&arena, mkreq(spans, 1, res, 1), &cfg, NOW_NS, &out, &reason),
                     O2D_OK);
    DdSpan *s = out.payloads[0]->chunks[0]->spans[0];
    assert_string_equal(s->resource, "res\xEF\xBF\xBD");
    assert_string_equal(s->service, "svc"); /* illegal trailing run dropped */
    assert_string_equal(meta(s, "k\xEF\xBF\xBD"), "v\xEF\xBF\xBD\xEF\xBF\xBD");
    for (size_t i = 0; i < s->n_meta; i++) {
        assert_int_equal(o2d_utf8_valid_prefix(s->meta[i]->key, strlen(s->meta[i]->key)),
                         strlen(s->meta[i]->key));
        assert_int_equal(o2d_utf8_valid_prefix(s->meta[i]->value, strlen(s->meta[i]->value)),
                         strlen(s->meta[i]->value));
    }
    assert_int_equal(o2d_utf8_valid_prefix(s->name, strlen(s->name)), strlen(s->name));
}

static void test_meta_truncation_multibyte(void **state)
{
    (void)state;
    /* A value of 24999 'x' then "é": the 25000-byte cut falls inside é, which is dropped. */
    size_t n = 24999;
    char *v = o2d_arena_alloc(&arena, n + 4);
    memset(v, 'x', n);
    memcpy(v + n, "\xC3\xA9z", 4);
    OtlpSpan **spans = o2d_arena_alloc(&arena, sizeof(*spans));
    spans[0] = mkspan(1, 0, "op", 1);
    spans[0]->attributes = o2d_arena_alloc(&arena, sizeof(OtlpKeyValue *));
    spans[0]->attributes[0] = kv("long", v);
    spans[0]->n_attributes = 1;
    struct apm_config cfg = {0};
    struct apm_result out;
    const char *reason = NULL;
    assert_int_equal(apm_translate(&arena, mkreq(spans, 1, NULL, 0), &cfg, NOW_NS, &out, &reason),
                     O2D_OK);
    const char *got = meta(out.payloads[0]->chunks[0]->spans[0], "long");
    assert_non_null(got);
    assert_int_equal(strlen(got), n + 3);
    assert_memory_equal(got + n, "...", 3);
}

/* The agent's FixDuration then FixStartTime (pkg/trace/traceutil/normalize/duration.go): a start
 * before 2000 becomes now - duration, or now when that is negative; the duration stays. */
static void test_start_before_2000(void **state)
{
    (void)state;
    const uint64_t y2k = 946684800000000000ull, t = 1700000000000000000ull;
    const struct {
        uint64_t start, end;
        int64_t now, want_start, want_duration;
    } cases[] = {
        {1, 1001, NOW_NS, NOW_NS - 1000, 1000},
        {0, 0, NOW_NS, NOW_NS, 0},
        {5, 1, NOW_NS, NOW_NS, 0}, /* negative duration: 0 first, then the start */
        {y2k - 1, y2k + 999, NOW_NS, NOW_NS - 1000, 1000},
        {y2k, y2k + 1000, NOW_NS, (int64_t)y2k, 1000}, /* 2000 itself is kept */
        /* started at 1, ended now: the agent keeps the 55 years and moves the start */
        {1, t, NOW_NS, NOW_NS - (int64_t)(t - 1), (int64_t)(t - 1)},
        /* now - duration would be negative: now */
        {1, t, 1000, 1000, (int64_t)(t - 1)},
        /* past INT64_MAX as a uint64: a negative start, so garbage too */
        {(1ull << 63) + 5, (1ull << 63) + 1005, NOW_NS, NOW_NS - 1000, 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        OtlpSpan **spans = o2d_arena_alloc(&arena, sizeof(*spans));
        spans[0] = mkspan(1, 0, "op", 2);
        spans[0]->start_time_unix_nano = cases[i].start;
        spans[0]->end_time_unix_nano = cases[i].end;
        struct apm_config cfg = {0};
        struct apm_result out;
        const char *reason = NULL;
        assert_int_equal(
            apm_translate(&arena, mkreq(spans, 1, NULL, 0), &cfg, cases[i].now, &out, &reason),
            O2D_OK);
        DdSpan *s = out.payloads[0]->chunks[0]->spans[0];
        assert_int_equal(s->start, cases[i].want_start);
        assert_int_equal(s->duration, cases[i].want_duration);
    }
}

static void test_arena_too_small(void **state)
{
    (void)state;
    OtlpSpan **spans = o2d_arena_alloc(&arena, sizeof(*spans));
    spans[0] = mkspan(1, 0, "op", 2);
    OtlpTraceReq *req = mkreq(spans, 1, NULL, 0);
    struct o2d_arena small;
    o2d_arena_init(&small, 512);
    struct apm_config cfg = {0};
    struct apm_result out;
    const char *reason = NULL;
    assert_int_equal(apm_translate(&small, req, &cfg, NOW_NS, &out, &reason), O2D_ERR_TOO_LARGE);
    assert_non_null(reason);
    o2d_arena_cleanup(&small);
}

/*
 * apm_sample_rate_from_tracestate: the cases of DataDog/datadog-agent
 * pkg/trace/transform/sampling_test.go TestSamplingProbFromTracestate (and _Malformed), plus the
 * W3C and OTel syntax rules of open-telemetry/opentelemetry-collector-contrib pkg/sampling that
 * decide whether the tracestate parses at all.
 */
static void test_sample_rate_from_tracestate(void **state)
{
    (void)state;
    static const struct {
        const char *ts;
        int ok;
        double rate;
    } cases[] = {
        {"ot=th:8", 1, 0.5},
        {"ot=th:0", 1, 1.0},
        {"ot=p:1;r:1", 1, 0.5},
        {"ot=p:4;r:4", 1, 0.0625},
        {"ot=p:0", 1, 1.0},
        {"ot=rv:abcdefabcdefab", 0, 0},
        {"", 0, 0},
        {"zz=vendorcontent", 0, 0},
        {"ot=th:zz", 0, 0},
        /* th wins over p; hex digits of either case; trailing zeros omitted */
        {"ot=p:1;th:c", 1, 0.25},
        {"ot=th:C", 1, 0.25},
        {"ot=th:fffffffffffff", 1, 1.0 / 4503599627370496.0},
        {"ot=th:ffffffffffffff", 1, 1.0 / 72057594037927936.0},
        {"ot=th:fffffffffffffff", 0, 0}, /* 15 digits */
        {"ot=th:", 0, 0},
        /* other vendors and whitespace around members */
        {"dd=s:1;t.dm:-4, ot=th:8 ,", 1, 0.5},
        {" ot=th:8\t", 1, 0.5},
        /* p: first one decides; 63 is "not sampled"; not decimal gives nothing */
        {"ot=p:63", 0, 0},
        {"ot=p:99999999999999999999999", 0, 0}, /* past uint64: an error in Go */
        {"ot=p:0001", 1, 0.5},
        {"ot=p:62", 1, 1.0 / 4611686018427387904.0},
        {"ot=p:x;p:1", 0, 0},
        {"ot=p:2;p:1", 1, 0.25},
        /* syntax errors anywhere fail the whole tracestate */
        {"ot=th:8,Bad=x", 0, 0},
        {"ot=th:8,=x", 0, 0},
        {"ot=th:8;", 0, 0},
        {"ot=th:8;;p:1", 0, 0},
        {"ot=th:8;P:1", 0, 0},
        {"ot=th:8;rv:123", 0, 0},
        {"ot=th:8;rv:abcdefabcdefab", 1, 0.5},
        {"ot=th:8,ot=th:zz", 0, 0},
        /* the last ot member is the one kept */
        {"ot=th:8,ot=th:c", 1, 0.25},
        {"tenant@sys=v,ot=th:8", 1, 0.5},
        {"tenant@Sys=v,ot=th:8", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double rate = -1;
        int ok = apm_sample_rate_from_tracestate(cases[i].ts, strlen(cases[i].ts), &rate);
        if (ok != cases[i].ok || (ok && fabs(rate - cases[i].rate) > 1e-12 * cases[i].rate)) {
            fail_msg("%s: got %d %.17g, want %d %.17g", cases[i].ts, ok, rate, cases[i].ok,
                     cases[i].rate);
        }
    }
    /* 31 members parse, 32 do not (scanKeyValues refuses the 32nd item); over 1024 bytes fails */
    char buf[2048];
    size_t n = 0;
    for (int i = 0; i < 30; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "k%d=v,", i);
    }
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "ot=th:8");
    double rate;
    assert_int_equal(apm_sample_rate_from_tracestate(buf, n, &rate), 1);
    char buf2[2048];
    size_t n2 = (size_t)snprintf(buf2, sizeof(buf2), "k31=v,%s", buf);
    assert_int_equal(apm_sample_rate_from_tracestate(buf2, n2, &rate), 0);
    char val[201];
    memset(val, 'v', 200);
    val[200] = '\0';
    n = (size_t)snprintf(buf, sizeof(buf), "k0=%s,k1=%s,k2=%s,k3=%s,ot=th:8", val, val, val, val);
    assert_int_equal(apm_sample_rate_from_tracestate(buf, n, &rate), 1); /* 823 bytes */
    n = (size_t)snprintf(buf, sizeof(buf), "k0=%s,k1=%s,k2=%s,k3=%s,k4=%s,ot=th:8", val, val, val,
                         val, val);
    assert_int_equal(apm_sample_rate_from_tracestate(buf, n, &rate), 0); /* 1027 bytes */
}

/* Keys classified once (apm_names_classify): the concept, the key copied under, the flags. */
static void check_class(const char *k, int id, const char *dd, unsigned flags)
{
    struct apm_key_class kc;
    apm_names_classify(k, &kc);
    assert_int_equal(kc.n, strlen(k));
    assert_int_equal(kc.id, id);
    assert_int_equal(kc.flags, flags);
    if (dd == NULL) {
        assert_null(kc.dd.p);
    } else {
        assert_non_null(kc.dd.p);
        assert_int_equal(kc.dd.n, strlen(dd));
        assert_memory_equal(kc.dd.p, dd, kc.dd.n);
    }
    assert_int_equal(apm_names_key_id(k, strlen(k)), id);
}

static void test_key_classes(void **state)
{
    (void)state;
    check_class("service.name", AK_SERVICE_NAME, "", 0);
    check_class("span.type", AK_SPAN_TYPE, "", 0);
    check_class("http.request.method", AK_HTTP_REQUEST_METHOD, "http.method", 0);
    check_class("http.response.status_code", AK_HTTP_RESPONSE_STATUS_CODE, "http.status_code", 0);
    check_class("client.address", -1, "http.client_ip", 0);
    check_class("user_agent.original", -1, "http.useragent", 0);
    check_class("http.request.header.referrer", -1, "http.referrer", 0);
    check_class("http.route", AK_HTTP_ROUTE, NULL, 0);
    check_class("_sample_rate", AK_SAMPLE_RATE, NULL, 0);
    check_class("http.request.header.x-id", -1, NULL, APM_KEYF_HTTP_HEADER);
    check_class("http.request.header.", -1, NULL, 0);
    check_class("gen_ai.system", -1, NULL, APM_KEYF_GEN_AI);
    check_class("traceloop.span.kind", -1, NULL, APM_KEYF_GEN_AI);
    check_class("gen_ai", -1, NULL, 0);
    check_class("", -1, NULL, 0);
    check_class("service.nam", -1, NULL, 0);
    check_class("service.namex", -1, NULL, 0);
    check_class("url.path", -1, NULL, 0);
}

/* Every attributes.ContainerMappings key (translate/resource) becomes its container tag,
 * alone among other attributes or after them: apm_host.c looks the mappings up only when a
 * key could be one (it knows their prefixes). */
static void test_container_tags_each_mapping(void **state)
{
    (void)state;
    struct o2d_buf scratch;
    o2d_buf_init(&scratch, 1 << 20);
    struct apm_source src;
    memset(&src, 0, sizeof(src));
    for (size_t i = 0; i < res_n_container_mappings; i++) {
        OtlpKeyValue *attrs[3] = {kv("service.name", "svc"), kv("host.name", "h"),
                                  kv(res_container_mappings[i].otel, "v1")};
        OtlpResource res;
        opentelemetry__proto__resource__v1__resource__init(&res);
        res.attributes = attrs;
        res.n_attributes = 3;
        struct apm_str out;
        assert_int_equal(apm_host_container_tags(&arena, &res, &src, &scratch, &out), O2D_OK);
        char want[128];
        snprintf(want, sizeof(want), "%s:v1", res_container_mappings[i].dd);
        assert_int_equal(out.n, strlen(want));
        assert_memory_equal(out.p, want, out.n);
        res.n_attributes = 2; /* no mapped key: no tag */
        assert_int_equal(apm_host_container_tags(&arena, &res, &src, &scratch, &out), O2D_OK);
        assert_int_equal(out.n, 0);
    }
    o2d_buf_cleanup(&scratch);
}

/* attributes.DBTypes (DataDog/opentelemetry-mapping-go pkg/otlp/attributes/constants.go):
 * every db.system it lists and its span type, found whatever its place in apm_names.c's
 * table; anything else (a prefix, a longer name, another case) is "db". */
static void test_db_types(void **state)
{
    (void)state;
    static const char *const sql[] = {
        "adabas",    "cache",     "clickhouse", "cloudscape", "cockroachdb", "coldfusion",
        "db2",       "derby",     "edb",        "filemaker",  "firebird",    "firstsql",
        "h2",        "hanadb",    "hsqldb",     "informix",   "ingres",      "instantdb",
        "interbase", "mariadb",   "maxdb",      "mssql",      "mysql",       "netezza",
        "oracle",    "other_sql", "pervasive",  "pointbase",  "postgresql",  "progress",
        "redshift",  "sqlite",    "sybase",     "teradata",   "vertica"};
    static const char *const db[] = {"couchbase", "couchdb", "cosmosdb", "dynamodb",
                                     "geode",     "hbase",   "hive",     "neo4j"};
    static const char *const own[] = {"cassandra", "elasticsearch", "memcached",
                                      "mongodb",   "opensearch",    "redis"};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        struct apm_str t = apm_names_db_type((struct apm_str){sql[i], strlen(sql[i])});
        assert_int_equal(t.n, 3);
        assert_memory_equal(t.p, "sql", 3);
    }
    for (size_t i = 0; i < sizeof(db) / sizeof(db[0]); i++) {
        struct apm_str t = apm_names_db_type((struct apm_str){db[i], strlen(db[i])});
        assert_int_equal(t.n, 2);
        assert_memory_equal(t.p, "db", 2);
    }
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        struct apm_str t = apm_names_db_type((struct apm_str){own[i], strlen(own[i])});
        assert_int_equal(t.n, strlen(own[i]));
        assert_memory_equal(t.p, own[i], t.n);
    }
    static const char *const other[] = {"", "a", "h", "mysqlx", "mysq", "MySQL", "zzz", "postgres"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        struct apm_str t = apm_names_db_type((struct apm_str){other[i], strlen(other[i])});
        assert_int_equal(t.n, 2);
        assert_memory_equal(t.p, "db", 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_tag_value),
        cmocka_unit_test(test_normalize_tag_long),
        cmocka_unit_test(test_normalize_name),
        cmocka_unit_test(test_normalize_service),
        cmocka_unit_test(test_truncate_utf8),
        cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_top_level),
        cmocka_unit_test(test_invalid_utf8_span),
        cmocka_unit_test(test_meta_truncation_multibyte),
        cmocka_unit_test(test_start_before_2000),
        cmocka_unit_test(test_sample_rate_from_tracestate),
        cmocka_unit_test(test_arena_too_small),
        cmocka_unit_test(test_key_classes),
        cmocka_unit_test(test_db_types),
        cmocka_unit_test(test_container_tags_each_mapping),
        cmocka_unit_test(test_out_of_range_doubles),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
