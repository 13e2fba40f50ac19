/*
 * test_otlp_decode.c: protobuf decoding, the wire pre-scan and validation of OTLP requests,
 * with well-formed and hostile input (truncation, wrong wire types, lengths past the end,
 * deep nesting, invalid UTF-8, empty requests, invalid ids).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "otlp.h"

static const uint8_t TID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t SID[8] = {1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t ZERO[16] = {0};

/* Packs a trace request with `n` spans; span i gets trace id tids[i] (16 bytes) or TID. */
static uint8_t *pack_traces(size_t n, const uint8_t *const *tids, const size_t *tid_lens,
                            size_t *len)
{
    OtlpTraceReq req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    OtlpResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    OtlpScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    OtlpResource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    OtlpKeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    OtlpAnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    OtlpKeyValue *kvs[1] = {&kv};
    OtlpResourceSpans *rss[1] = {&rs};
    OtlpScopeSpans *sss[1] = {&ss};
    OtlpSpan spans[8];
    OtlpSpan *sp[8];
    assert_true(n <= 8);
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av.string_value = "checkout";
    kv.key = "service.name";
    kv.value = &av;
    res.attributes = kvs;
    res.n_attributes = 1;
    rs.resource = &res;
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        spans[i].trace_id.data = (uint8_t *)(tids && tids[i] ? tids[i] : TID);
        spans[i].trace_id.len = tid_lens ? tid_lens[i] : 16;
        spans[i].span_id.data = (uint8_t *)SID;
        spans[i].span_id.len = 8;
        spans[i].name = "GET /items";
        spans[i].kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
        spans[i].start_time_unix_nano = 1700000000000000000ull;
        spans[i].end_time_unix_nano = 1700000000001000000ull;
        sp[i] = &spans[i];
    }
    ss.spans = sp;
    ss.n_spans = n;
    rs.scope_spans = sss;
    rs.n_scope_spans = 1;
    req.resource_spans = rss;
    req.n_resource_spans = 1;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(*len);
    protobuf_c_message_pack(&req.base, buf);
    return buf;
}

struct fixture {
    struct o2d_arena arena;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    o2d_arena_init(&f->arena, 64 * 1024 * 1024);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    o2d_arena_cleanup(&f->arena);
    free(f);
    return 0;
}

static int decode(struct fixture *f, enum otlp_signal sig, const uint8_t *b, size_t n,
                  struct otlp_request *req, const char **reason)
{
    o2d_arena_reset(&f->arena);
    return otlp_decode(&f->arena, sig, OTLP_ENC_PROTOBUF, b, n, req, reason);
}

static void valid_request_is_counted(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *buf = pack_traces(3, NULL, NULL, &len);
    struct otlp_request req;
    const char *reason;
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, buf, len, &req, &reason), O2D_OK);
    assert_int_equal(req.accepted, 3);
    assert_int_equal(req.rejected, 0);
    assert_null(req.reject_reason);
    assert_string_equal(req.msg.traces->resource_spans[0]->scope_spans[0]->spans[2]->name,
                        "GET /items");
    free(buf);
}

static void empty_request_is_valid(void **state)
{
    struct fixture *f = *state;
    struct otlp_request req;
    const char *reason;
    for (int sig = 0; sig < 3; sig++) {
        assert_int_equal(decode(f, sig, (const uint8_t *)"", 0, &req, &reason), O2D_OK);
        assert_int_equal(req.accepted, 0);
    }
    /* JSON with no body is the same empty request. */
    o2d_arena_reset(&f->arena);
    assert_int_equal(otlp_decode(&f->arena, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON, (const uint8_t *)"",
                                 0, &req, &reason),
                     O2D_OK);
}

static void zero_and_short_ids_are_rejected_individually(void **state)
{
    struct fixture *f = *state;
    const uint8_t *tids[4] = {NULL, ZERO, NULL, TID};
    size_t lens[4] = {16, 16, 16, 5};
    size_t len;
    uint8_t *buf = pack_traces(4, tids, lens, &len);
    struct otlp_request req;
    const char *reason;
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, buf, len, &req, &reason), O2D_OK);
    assert_int_equal(req.accepted, 2);
    assert_int_equal(req.rejected, 2);
    assert_string_equal(req.reject_reason, "span trace_id must be 16 bytes and not all zero");
    OtlpScopeSpans *ss = req.msg.traces->resource_spans[0]->scope_spans[0];
    assert_int_equal(ss->n_spans, 2);
    assert_memory_equal(ss->spans[0]->trace_id.data, TID, 16);
    assert_memory_equal(ss->spans[1]->trace_id.data, TID, 16);
    free(buf);
}

static void expect_invalid(struct fixture *f, const uint8_t *b, size_t n, const char *why)
{
    struct otlp_request req;
    const char *reason = NULL;
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, b, n, &req, &reason), O2D_ERR_INVALID);
    assert_non_null(reason);
    assert_string_equal(reason, why);
}

static void every_truncation_is_refused_or_decoded(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *buf = pack_traces(2, NULL, NULL, &len);
    /* Every strict prefix either fails with a reason or (at field boundaries of the top
     * level) decodes to fewer items; none may crash or read past the end. */
    for (size_t cut = 1; cut < len; cut++) {
        uint8_t *p = malloc(cut); /* exact size so ASan sees any overread */
        memcpy(p, buf, cut);
        struct otlp_request req;
        const char *reason = NULL;
        int rv = decode(f, OTLP_SIGNAL_TRACES, p, cut, &req, &reason);
        if (rv != O2D_OK) {
            assert_int_equal(rv, O2D_ERR_INVALID);
            assert_non_null(reason);
        }
        free(p);
    }
    free(buf);
    static const uint8_t len_past_end[] = {0x0a, 0x10, 0x0a, 0x00};
    expect_invalid(f, len_past_end, sizeof(len_past_end),
                   "length-delimited field runs past the end of its message");
    static const uint8_t tag_cut[] = {0x0a, 0x02, 0x12, 0x80};
    expect_invalid(f, tag_cut, sizeof(tag_cut), "truncated message: length runs past the end");
    static const uint8_t varint_cut[] = {0x08, 0xff};
    expect_invalid(f, varint_cut, sizeof(varint_cut),
                   "truncated message: varint runs past the end");
}

static void wrong_wire_types_are_refused(void **state)
{
    struct fixture *f = *state;
    /* resource_spans (field 1, a message) sent as a varint */
    static const uint8_t a[] = {0x08, 0x01};
    expect_invalid(f, a, sizeof(a), "wrong wire type for a known field");
    /* a span's start_time_unix_nano (fixed64) sent as a varint, three levels down */
    static const uint8_t b[] = {0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0x38, 0x01};
    expect_invalid(f, b, sizeof(b), "wrong wire type for a known field");
    /* groups and wire types 6/7 */
    static const uint8_t g[] = {0x0b, 0x0c};
    expect_invalid(f, g, sizeof(g), "protobuf groups are not supported");
    static const uint8_t w7[] = {0x0f};
    expect_invalid(f, w7, sizeof(w7), "invalid wire type");
    static const uint8_t f0[] = {0x00, 0x00};
    expect_invalid(f, f0, sizeof(f0), "invalid field number");
    /* a varint of 11 bytes */
    static const uint8_t longv[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_invalid(f, longv, sizeof(longv), "malformed varint");
    /* unknown fields of every wire type are skipped */
    static const uint8_t unknown[] = {0x78, 0x01, 0x79, 1,    2,    3, 4, 5, 6, 7,
                                      8,    0x7a, 0x01, 0x00, 0x7d, 1, 2, 3, 4};
    struct otlp_request req;
    const char *reason;
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, unknown, sizeof(unknown), &req, &reason),
                     O2D_OK);
}

/* An attribute value nested `depth` times through array_value, then KeyValue and the wraps
 * of `tags` (the field tags from the KeyValue's container out to the request). */
static uint8_t *nested_in(size_t depth, const uint8_t *tags, size_t ntags, size_t *len)
{
    /* Build inside out: AnyValue{string "x"} then wrap ArrayValue{values=AnyValue}, and
     * AnyValue{array_value=ArrayValue}. */
    struct o2d_buf b, t;
    o2d_buf_init(&b, SIZE_MAX);
    o2d_buf_init(&t, SIZE_MAX);
    static const uint8_t leaf[] = {0x0a, 0x01, 'x'};
    o2d_buf_append(&b, leaf, sizeof(leaf));
    for (size_t i = 1; i < depth; i++) {
        /* ArrayValue { 1: AnyValue } then AnyValue { 5: ArrayValue } */
        for (int wrap = 0; wrap < 2; wrap++) {
            uint8_t hdr[12];
            size_t h = 0;
            hdr[h++] = wrap == 0 ? 0x0a : 0x2a;
            size_t v = b.len;
            do {
                hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
            } while (v);
            o2d_buf_reset(&t);
            o2d_buf_append(&t, hdr, h);
            o2d_buf_append(&t, b.data, b.len);
            struct o2d_buf tmp = b;
            b = t;
            t = tmp;
        }
    }
    for (size_t i = 0; i < ntags; i++) {
        uint8_t hdr[16];
        size_t h = 0;
        hdr[h++] = tags[i];
        size_t v = b.len + (i == 0 ? 3 : 0);
        do {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
        o2d_buf_reset(&t);
        o2d_buf_append(&t, hdr, h);
        if (i == 0) {
            o2d_buf_append(&t, "\x0a\x01k", 3);
        }
        o2d_buf_append(&t, b.data, b.len);
        struct o2d_buf tmp = b;
        b = t;
        t = tmp;
    }
    o2d_buf_cleanup(&t);
    return o2d_buf_take(&b, len);
}

/* span attribute value: KeyValue{key "k", value AnyValue} -> Span{attributes} -> ScopeSpans ->
 * ResourceSpans -> request. Spans also need ids to be accepted, but depth is what we test. */
static uint8_t *nested_anyvalue(size_t depth, size_t *len)
{
    static const uint8_t tags[] = {0x12, 0x4a, 0x12, 0x12, 0x0a};
    return nested_in(depth, tags, sizeof(tags), len);
}

static void deep_nesting_is_refused_before_unpacking(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *ok = nested_anyvalue(20, &len);
    struct otlp_request req;
    const char *reason;
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, ok, len, &req, &reason), O2D_OK);
    free(ok);
    /* 100,000 levels would overflow protobuf-c's recursion without the pre-scan. */
    uint8_t *deep = nested_anyvalue(100000, &len);
    expect_invalid(f, deep, len, "messages nested too deeply");
    free(deep);
}

/* The deepest place an AnyValue sits in any request: an exemplar's filtered attribute, in
 * KeyValue -> Exemplar{filtered_attributes} -> NumberDataPoint{exemplars} -> Sum{data_points}
 * -> Metric{sum} -> ScopeMetrics -> ResourceMetrics -> request. The full AnyValue depth fits
 * the pre-scan's budget; a hostile depth is refused before protobuf-c recurses. */
static void deep_metrics_exemplars(void **state)
{
    struct fixture *f = *state;
    static const uint8_t tags[] = {0x12, 0x3a, 0x2a, 0x0a, 0x3a, 0x12, 0x12, 0x0a};
    size_t len;
    struct otlp_request req;
    const char *reason = NULL;
    uint8_t *ok = nested_in(OTLP_MAX_ANYVALUE_DEPTH, tags, sizeof(tags), &len);
    assert_int_equal(decode(f, OTLP_SIGNAL_METRICS, ok, len, &req, &reason), O2D_OK);
    assert_int_equal(req.accepted, 1);
    const OtlpNumberPoint *p =
        req.msg.metrics->resource_metrics[0]->scope_metrics[0]->metrics[0]->sum->data_points[0];
    assert_int_equal(p->n_exemplars, 1);
    assert_int_equal(p->exemplars[0]->n_filtered_attributes, 1);
    assert_non_null(p->exemplars[0]->filtered_attributes[0]->value);
    free(ok);
    uint8_t *deep = nested_in(100000, tags, sizeof(tags), &len);
    assert_int_equal(decode(f, OTLP_SIGNAL_METRICS, deep, len, &req, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, "messages nested too deeply");
    free(deep);
}

static void invalid_utf8_is_carried_not_crashed(void **state)
{
    struct fixture *f = *state;
    /* Span name with invalid UTF-8 bytes: protobuf-c keeps the bytes; translation repairs
     * them where they leave (o2d_json_out). The request is accepted. */
    OtlpTraceReq req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    OtlpResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    OtlpScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    OtlpSpan s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    OtlpSpan *sp = &s;
    OtlpScopeSpans *ssp = &ss;
    OtlpResourceSpans *rsp = &rs;
    s.trace_id.data = (uint8_t *)TID;
    s.trace_id.len = 16;
    s.span_id.data = (uint8_t *)SID;
    s.span_id.len = 8;
    s.name = "bad \xc3\x28 \xff name";
    ss.spans = &sp;
    ss.n_spans = 1;
    rs.scope_spans = &ssp;
    rs.n_scope_spans = 1;
    req.resource_spans = &rsp;
    req.n_resource_spans = 1;
    uint8_t buf[256];
    size_t len = protobuf_c_message_pack(&req.base, buf);
    struct otlp_request out;
    const char *reason;
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, buf, len, &out, &reason), O2D_OK);
    assert_int_equal(out.accepted, 1);
}

/*
 * protobuf-c strings are NUL-terminated, so a string field holding a NUL byte would be cut
 * there by everything after decoding: both encodings refuse it with the same reason, and a
 * NUL in bytes (ids) or in a field we do not know is carried.
 */
static void nul_in_a_string_is_refused_in_both_encodings(void **state)
{
    struct fixture *f = *state;
    struct otlp_request out;
    const char *reason;
    size_t len;
    uint8_t *buf = pack_traces(1, NULL, NULL, &len);
    uint8_t *name = memmem(buf, len, "GET /items", 10);
    assert_non_null(name);
    name[3] = '\0';
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, buf, len, &out, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, "a string holds a NUL character");
    /* the same request without the NUL is fine */
    name[3] = ' ';
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, buf, len, &out, &reason), O2D_OK);
    free(buf);

    static const uint8_t nul_tid[16] = {0, 0, 0, 1};
    const uint8_t *tids[1] = {nul_tid};
    buf = pack_traces(1, tids, NULL, &len);
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, buf, len, &out, &reason), O2D_OK);
    assert_int_equal(out.accepted, 1);
    free(buf);

#define JSPAN(x)                                                                                   \
    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"                               \
    "\"000000010203040506070809a0b0c0d0\",\"spanId\":\"0101010101010100\"," x "}]}]}]}"
    static const struct {
        const char *body;
        int status;
    } json[] = {
        {JSPAN("\"name\":\"GE\\u0000 /items\""), O2D_ERR_INVALID},
        {JSPAN("\"attributes\":[{\"key\":\"k\\u0000\"}]"), O2D_ERR_INVALID},
        {JSPAN("\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"\\u0000\"}}]"),
         O2D_ERR_INVALID},
        {JSPAN("\"name\":\"GET /items\",\"unknown\":\"\\u0000\""), O2D_OK},
        {JSPAN("\"attributes\":[{\"key\":\"k\",\"value\":{\"bytesValue\":\"AAA=\"}}]"), O2D_OK},
    };
    for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
        o2d_arena_reset(&f->arena);
        int rv = otlp_decode(&f->arena, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON,
                             (const uint8_t *)json[i].body, strlen(json[i].body), &out, &reason);
        assert_int_equal(rv, json[i].status);
        if (rv == O2D_OK) {
            assert_int_equal(out.accepted, 1);
        } else {
            assert_string_equal(reason, "a string holds a NUL character");
        }
    }
#undef JSPAN
}

static void arena_limit_gives_too_large(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *buf = pack_traces(8, NULL, NULL, &len);
    o2d_arena_reset(&f->arena);
    o2d_arena_set_limit(&f->arena, 256);
    struct otlp_request req;
    const char *reason;
    assert_int_equal(
        otlp_decode(&f->arena, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, buf, len, &req, &reason),
        O2D_ERR_TOO_LARGE);
    assert_string_equal(reason, "decoded request exceeds the memory limit");
    o2d_arena_set_limit(&f->arena, 64 * 1024 * 1024);
    free(buf);
}

static void failed_allocations_are_errors(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *buf = pack_traces(8, NULL, NULL, &len);
    o2d_arena_cleanup(&f->arena); /* force the arena to allocate a block */
    o2d_alloc_fail_after(0);
    struct otlp_request req;
    const char *reason;
    int rv = decode(f, OTLP_SIGNAL_TRACES, buf, len, &req, &reason);
    o2d_alloc_fail_after(-1);
    assert_int_equal(rv, O2D_ERR_TOO_LARGE);
    assert_int_equal(decode(f, OTLP_SIGNAL_TRACES, buf, len, &req, &reason), O2D_OK);
    free(buf);
}

static void logs_ids_are_optional_but_sized(void **state)
{
    struct fixture *f = *state;
    OtlpLogsReq req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    OtlpResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    OtlpScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    OtlpLogRecord r[3];
    OtlpLogRecord *rp[3];
    for (int i = 0; i < 3; i++) {
        opentelemetry__proto__logs__v1__log_record__init(&r[i]);
        rp[i] = &r[i];
    }
    r[1].trace_id.data = (uint8_t *)TID;
    r[1].trace_id.len = 16;
    r[1].span_id.data = (uint8_t *)SID;
    r[1].span_id.len = 8;
    r[2].span_id.data = (uint8_t *)SID;
    r[2].span_id.len = 3;
    sl.log_records = rp;
    sl.n_log_records = 3;
    OtlpScopeLogs *slp = &sl;
    OtlpResourceLogs *rlp = &rl;
    rl.scope_logs = &slp;
    rl.n_scope_logs = 1;
    req.resource_logs = &rlp;
    req.n_resource_logs = 1;
    uint8_t buf[512];
    size_t len = protobuf_c_message_pack(&req.base, buf);
    struct otlp_request out;
    const char *reason;
    assert_int_equal(decode(f, OTLP_SIGNAL_LOGS, buf, len, &out, &reason), O2D_OK);
    assert_int_equal(out.accepted, 2);
    assert_int_equal(out.rejected, 1);
    assert_string_equal(out.reject_reason, "log record span_id must be empty or 8 bytes");
}

static void metrics_count_points(void **state)
{
    struct fixture *f = *state;
    /* ResourceMetrics{ScopeMetrics{Metric{name "m", sum{3 points}}, Metric{gauge{1}}}}; each
     * point is NumberDataPoint{as_double}, decoded. */
    static const uint8_t point[] = {0x21, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f}; /* as_double 1.5 */
    struct o2d_buf m1, m2, sm, rm, req;
    o2d_buf_init(&m1, 4096);
    o2d_buf_init(&m2, 4096);
    o2d_buf_init(&sm, 4096);
    o2d_buf_init(&rm, 4096);
    o2d_buf_init(&req, 4096);
    /* sum (field 7) = DataPoints with 3 data_points (field 1) */
    uint8_t dp[64];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        dp[n++] = 0x0a;
        dp[n++] = sizeof(point);
        memcpy(dp + n, point, sizeof(point));
        n += sizeof(point);
    }
    o2d_buf_append(&m1, "\x0a\x01m\x3a", 4);
    o2d_buf_append_byte(&m1, (uint8_t)n);
    o2d_buf_append(&m1, dp, n);
    o2d_buf_append(&m2, "\x0a\x01g\x2a", 4);
    o2d_buf_append_byte(&m2, (uint8_t)(sizeof(point) + 2));
    o2d_buf_append_byte(&m2, 0x0a);
    o2d_buf_append_byte(&m2, sizeof(point));
    o2d_buf_append(&m2, point, sizeof(point));
    o2d_buf_append_byte(&sm, 0x12);
    o2d_buf_append_byte(&sm, (uint8_t)m1.len);
    o2d_buf_append(&sm, m1.data, m1.len);
    o2d_buf_append_byte(&sm, 0x12);
    o2d_buf_append_byte(&sm, (uint8_t)m2.len);
    o2d_buf_append(&sm, m2.data, m2.len);
    o2d_buf_append_byte(&rm, 0x12);
    o2d_buf_append_byte(&rm, (uint8_t)sm.len);
    o2d_buf_append(&rm, sm.data, sm.len);
    o2d_buf_append_byte(&req, 0x0a);
    o2d_buf_append_byte(&req, (uint8_t)rm.len);
    o2d_buf_append(&req, rm.data, rm.len);
    struct otlp_request out;
    const char *reason;
    assert_int_equal(decode(f, OTLP_SIGNAL_METRICS, req.data, req.len, &out, &reason), O2D_OK);
    assert_int_equal(out.accepted, 4);
    const OtlpNumberPoint *p =
        out.msg.metrics->resource_metrics[0]->scope_metrics[0]->metrics[0]->sum->data_points[2];
    assert_int_equal(p->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    assert_true(p->as_double == 1.5);
    /* A point whose bytes are not a NumberDataPoint makes the whole request invalid, as a bad
     * span does: attributes (field 7) with a fixed64 wire type. */
    size_t at = req.len - sizeof(point);
    assert_int_equal(memcmp(req.data + at, point, sizeof(point)), 0);
    req.data[at] = 0x39;
    assert_int_equal(decode(f, OTLP_SIGNAL_METRICS, req.data, req.len, &out, &reason),
                     O2D_ERR_INVALID);
    assert_string_equal(reason, "wrong wire type for a known field");
    o2d_buf_cleanup(&m1);
    o2d_buf_cleanup(&m2);
    o2d_buf_cleanup(&sm);
    o2d_buf_cleanup(&rm);
    o2d_buf_cleanup(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(valid_request_is_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_request_is_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_and_short_ids_are_rejected_individually, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(every_truncation_is_refused_or_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_wire_types_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_nesting_is_refused_before_unpacking, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_metrics_exemplars, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_utf8_is_carried_not_crashed, setup, teardown),
        cmocka_unit_test_setup_teardown(nul_in_a_string_is_refused_in_both_encodings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(arena_limit_gives_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_allocations_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(logs_ids_are_optional_but_sized, setup, teardown),
        cmocka_unit_test_setup_teardown(metrics_count_points, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
