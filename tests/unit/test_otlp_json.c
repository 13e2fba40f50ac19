/*
 * test_otlp_json.c: otlp_json_decode() against the JSON the OpenTelemetry JS SDK sends
 * (fixtures in tests/data/json/), the proto3 JSON variants OTLP allows (snake_case names, enum
 * names, 64-bit integers as strings, non-finite doubles), and one table of malformed bodies,
 * each with its exact status and reason. Decoded messages are packed and unpacked again with
 * protobuf-c, which walks every pointer and count the decoder set.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "o2d.h"
#include "otlp.h"

#define ARENA_LIMIT (16u * 1024 * 1024)

static struct o2d_arena arena;

static int setup(void **state)
{
    (void)state;
    o2d_arena_init(&arena, ARENA_LIMIT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    o2d_arena_cleanup(&arena);
    return 0;
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/json/%s", O2D_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    char *buf = malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static int decode_n(enum otlp_signal sig, const char *body, size_t len, void **msg,
                    const char **reason)
{
    o2d_arena_reset(&arena);
    o2d_arena_set_limit(&arena, ARENA_LIMIT);
    return otlp_json_decode(&arena, sig, (const uint8_t *)body, len, msg, reason);
}

static void *decode_ok(enum otlp_signal sig, const char *body)
{
    void *msg = NULL;
    const char *reason = "unset";
    int rv = decode_n(sig, body, strlen(body), &msg, &reason);
    if (rv != O2D_OK) {
        fail_msg("decoding %s failed: %d %s", body, rv, reason);
    }
    assert_null(reason);
    assert_non_null(msg);
    return msg;
}

/* Packs, unpacks with protobuf-c and packs again: both encodings must be identical. */
static void check_roundtrip(const void *msg)
{
    const ProtobufCMessage *m = msg;
    size_t size = protobuf_c_message_get_packed_size(m);
    uint8_t *a = malloc(size + 1);
    uint8_t *b = malloc(size + 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(protobuf_c_message_pack(m, a), size);
    ProtobufCMessage *u = protobuf_c_message_unpack(m->descriptor, NULL, size, a);
    assert_non_null(u);
    assert_int_equal(protobuf_c_message_get_packed_size(u), size);
    assert_int_equal(protobuf_c_message_pack(u, b), size);
    assert_memory_equal(a, b, size);
    protobuf_c_message_free_unpacked(u, NULL);
    free(a);
    free(b);
}

static void assert_bytes(ProtobufCBinaryData bd, const char *hex)
{
    size_t n = strlen(hex) / 2;
    assert_int_equal(bd.len, n);
    for (size_t i = 0; i < n; i++) {
        unsigned byte;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
        assert_int_equal(bd.data[i], byte);
    }
}

static const OtlpKeyValue *find_attr(OtlpKeyValue **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key) == 0) {
            return kvs[i];
        }
    }
    fail_msg("attribute %s missing", key);
    return NULL;
}

static void test_js_sdk_traces(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("traces_js_sdk.json", &len);
    void *msg;
    const char *reason;
    assert_int_equal(decode_n(OTLP_SIGNAL_TRACES, body, len, &msg, &reason), O2D_OK);
    free(body);
    OtlpTraceReq *req = msg;

    assert_int_equal(req->n_resource_spans, 1);
    OtlpResourceSpans *rs = req->resource_spans[0];
    assert_string_equal(rs->schema_url, "https://opentelemetry.io/schemas/1.21.0");
    assert_non_null(rs->resource);
    assert_int_equal(rs->resource->n_attributes, 3);
    assert_string_equal(rs->resource->attributes[0]->key, "service.name");
    assert_string_equal(rs->resource->attributes[0]->value->string_value, "checkout");
    assert_int_equal(rs->resource->attributes[2]->value->int_value, 4242);
    assert_int_equal(rs->n_scope_spans, 1);
    OtlpScopeSpans *ss = rs->scope_spans[0];
    assert_string_equal(ss->scope->name, "@opentelemetry/instrumentation-http");
    assert_string_equal(ss->scope->version, "0.45.1");
    assert_string_equal(ss->schema_url, "");
    assert_int_equal(ss->n_spans, 2);

    OtlpSpan *s = ss->spans[0];
    assert_bytes(s->trace_id, "5b8efff798038103d269b633813fc60c");
    assert_bytes(s->span_id, "eee19b7ec3c1b174");
    assert_bytes(s->parent_span_id, "eee19b7ec3c1b173");
    assert_string_equal(s->trace_state, "rojo=00f067aa0ba902b7");
    assert_string_equal(s->name, "GET /cart");
    assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    assert_true(s->start_time_unix_nano == 1700000000000000000ULL);
    assert_true(s->end_time_unix_nano == 1700000000250000000ULL);
    assert_int_equal(s->flags, 257);
    assert_int_equal(s->n_events, 0);
    assert_null(s->events);
    assert_int_equal(s->n_links, 0);
    assert_null(s->links);
    assert_non_null(s->status);
    assert_int_equal(s->status->code, 0);
    assert_string_equal(s->status->message, "");

    assert_int_equal(s->n_attributes, 8);
    const OtlpKeyValue *kv = find_attr(s->attributes, s->n_attributes, "http.method");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    assert_string_equal(kv->value->string_value, "GET");
    kv = find_attr(s->attributes, s->n_attributes, "http.status_code");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    assert_int_equal(kv->value->int_value, 200);
    kv = find_attr(s->attributes, s->n_attributes, "sampled");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_true(kv->value->bool_value);
    kv = find_attr(s->attributes, s->n_attributes, "ratio");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    assert_true(kv->value->double_value == 0.25);
    kv = find_attr(s->attributes, s->n_attributes, "payload");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    assert_int_equal(kv->value->bytes_value.len, 5);
    assert_memory_equal(kv->value->bytes_value.data, "hello", 5);

    kv = find_attr(s->attributes, s->n_attributes, "tags");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    const Opentelemetry__Proto__Common__V1__ArrayValue *arr = kv->value->array_value;
    assert_int_equal(arr->n_values, 3);
    assert_string_equal(arr->values[0]->string_value, "a");
    assert_int_equal(arr->values[1]->int_value, 7);
    assert_int_equal(arr->values[2]->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    assert_int_equal(arr->values[2]->array_value->n_values, 0);

    kv = find_attr(s->attributes, s->n_attributes, "headers");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    const Opentelemetry__Proto__Common__V1__KeyValueList *kvl = kv->value->kvlist_value;
    assert_int_equal(kvl->n_values, 2);
    assert_string_equal(kvl->values[0]->key, "accept");
    assert_string_equal(kvl->values[0]->value->string_value, "*/*");
    const OtlpAnyValue *deep = kvl->values[1]->value->kvlist_value->values[0]->value;
    assert_true(isinf(deep->double_value) && deep->double_value < 0);

    kv = find_attr(s->attributes, s->n_attributes, "empty");
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);

    s = ss->spans[1];
    assert_bytes(s->trace_id, "5b8efff798038103d269b633813fc60c");
    assert_int_equal(s->parent_span_id.len, 0);
    assert_int_equal(s->kind, 1);
    assert_true(s->start_time_unix_nano == 1700000000000000001ULL);
    assert_true(s->end_time_unix_nano == UINT64_MAX);
    assert_int_equal(s->n_events, 1);
    assert_true(s->events[0]->time_unix_nano == 1700000000100000000ULL);
    assert_string_equal(s->events[0]->name, "exception");
    assert_int_equal(s->events[0]->n_attributes, 1);
    assert_int_equal(s->events[0]->dropped_attributes_count, 1);
    assert_int_equal(s->n_links, 1);
    assert_bytes(s->links[0]->trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_bytes(s->links[0]->span_id, "0102030405060708");
    assert_string_equal(s->links[0]->trace_state, "a=b");
    assert_int_equal(s->links[0]->n_attributes, 1);
    assert_false(s->links[0]->attributes[0]->value->bool_value);
    assert_int_equal(s->links[0]->dropped_attributes_count, 2);
    assert_int_equal(s->links[0]->flags, 1);
    assert_int_equal(s->status->code, 2);
    assert_string_equal(s->status->message, "boom");

    check_roundtrip(req);
}

static void test_js_sdk_logs(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("logs_js_sdk.json", &len);
    void *msg;
    const char *reason;
    assert_int_equal(decode_n(OTLP_SIGNAL_LOGS, body, len, &msg, &reason), O2D_OK);
    free(body);
    OtlpLogsReq *req = msg;

    assert_int_equal(req->n_resource_logs, 1);
    OtlpResourceLogs *rl = req->resource_logs[0];
    assert_int_equal(rl->resource->n_attributes, 1);
    assert_int_equal(rl->n_scope_logs, 1);
    OtlpScopeLogs *sl = rl->scope_logs[0];
    assert_string_equal(sl->scope->name, "app-logger");
    assert_int_equal(sl->n_log_records, 2);

    OtlpLogRecord *lr = sl->log_records[0];
    assert_true(lr->time_unix_nano == 1700000000000000000ULL);
    assert_true(lr->observed_time_unix_nano == 1700000000000000123ULL);
    assert_int_equal(lr->severity_number, 9);
    assert_string_equal(lr->severity_text, "INFO");
    assert_string_equal(lr->body->string_value, "cart loaded");
    assert_int_equal(lr->n_attributes, 1);
    assert_int_equal(lr->attributes[0]->value->int_value, 3);
    assert_int_equal(lr->flags, 1);
    assert_bytes(lr->trace_id, "5b8efff798038103d269b633813fc60c");
    assert_bytes(lr->span_id, "eee19b7ec3c1b174");
    assert_string_equal(lr->event_name, "cart.load");

    lr = sl->log_records[1];
    assert_int_equal(lr->time_unix_nano, 0);
    assert_int_equal(lr->severity_number,
                     OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR);
    assert_int_equal(lr->body->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    assert_string_equal(lr->body->kvlist_value->values[0]->key, "msg");
    assert_int_equal(lr->trace_id.len, 0);
    assert_null(lr->trace_id.data);
    assert_int_equal(lr->span_id.len, 0);

    check_roundtrip(req);
}

static void test_js_sdk_metrics(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("metrics_js_sdk.json", &len);
    void *msg;
    const char *reason;
    assert_int_equal(decode_n(OTLP_SIGNAL_METRICS, body, len, &msg, &reason), O2D_OK);
    free(body);
    OtlpMetricsReq *req = msg;

    assert_int_equal(req->n_resource_metrics, 1);
    assert_int_equal(req->resource_metrics[0]->n_scope_metrics, 1);
    OtlpScopeMetrics *sm = req->resource_metrics[0]->scope_metrics[0];
    assert_string_equal(sm->scope->name, "app-meter");
    assert_int_equal(sm->n_metrics, 6);

    static const struct {
        const char *name;
        int data_case;
        size_t points;
    } want[] = {
        {"requests", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM, 2},
        {"temperature", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE, 1},
        {"latency", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM, 3},
        {"size", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM, 1},
        {"rpc", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY, 1},
        {"nodata", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA__NOT_SET, 0},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        OtlpMetric *m = sm->metrics[i];
        assert_string_equal(m->name, want[i].name);
        assert_int_equal(m->data_case, want[i].data_case);
        /* Every kind keeps its points' count at the same place. */
        size_t n =
            m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE
                ? m->gauge->n_data_points
            : m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM
                ? m->sum->n_data_points
            : m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM
                ? m->histogram->n_data_points
            : m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM
                ? m->exponential_histogram->n_data_points
            : m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY
                ? m->summary->n_data_points
                : 0;
        assert_int_equal(n, want[i].points);
        total += n;
    }
    assert_int_equal(total, 8);
    assert_string_equal(sm->metrics[0]->description, "count");
    assert_string_equal(sm->metrics[0]->unit, "1");
    /* The points themselves: numbers as strings or numbers, enums, repeated numbers. */
    const Opentelemetry__Proto__Metrics__V1__Sum *sum = sm->metrics[0]->sum;
    assert_int_equal(sum->aggregation_temporality, 2);
    assert_true(sum->is_monotonic);
    assert_int_equal(sum->data_points[0]->start_time_unix_nano, 1700000000000000000ull);
    assert_int_equal(sum->data_points[0]->time_unix_nano, 1700000010000000000ull);
    assert_int_equal(sum->data_points[0]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    assert_int_equal(sum->data_points[0]->as_int, 5);
    assert_int_equal(sum->data_points[1]->as_int, 6);
    const OtlpNumberPoint *g = sm->metrics[1]->gauge->data_points[0];
    assert_int_equal(g->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    assert_true(g->as_double == 21.5);
    const Opentelemetry__Proto__Metrics__V1__Histogram *h = sm->metrics[2]->histogram;
    assert_int_equal(h->aggregation_temporality, 1);
    const OtlpHistogramPoint *hp = h->data_points[0];
    assert_int_equal(hp->count, 3);
    assert_int_not_equal(hp->_sum_case, 0);
    assert_true(hp->sum == 12.5);
    assert_int_equal(hp->n_bucket_counts, 2);
    assert_int_equal(hp->bucket_counts[0], 1);
    assert_int_equal(hp->bucket_counts[1], 2);
    assert_int_equal(hp->n_explicit_bounds, 1);
    assert_true(hp->explicit_bounds[0] == 10);
    assert_int_equal(hp->_min_case, 0);
    assert_int_equal(h->data_points[1]->_sum_case, 0);
    const OtlpExpHistogramPoint *ep = sm->metrics[3]->exponential_histogram->data_points[0];
    assert_int_equal(ep->scale, 3);
    assert_int_equal(ep->count, 2);
    const OtlpSummaryPoint *sp = sm->metrics[4]->summary->data_points[0];
    assert_int_equal(sp->count, 1);
    assert_true(sp->sum == 1.0);

    check_roundtrip(req);
}

static void test_snake_case(void **state)
{
    (void)state;
    OtlpTraceReq *t = decode_ok(
        OTLP_SIGNAL_TRACES,
        "{\"resource_spans\":[{\"resource\":{\"attributes\":[],\"dropped_attributes_count\":4},"
        "\"schema_url\":\"s1\",\"scope_spans\":[{\"schema_url\":\"s2\",\"scope\":{\"name\":\"n\","
        "\"dropped_attributes_count\":1},\"spans\":[{\"trace_id\":\"0A0b\",\"span_id\":\"ff\","
        "\"parent_span_id\":\"01\",\"trace_state\":\"ts\",\"start_time_unix_nano\":\"5\","
        "\"end_time_unix_nano\":6,\"dropped_attributes_count\":1,\"dropped_events_count\":2,"
        "\"dropped_links_count\":3,\"links\":[{\"trace_id\":\"aa\",\"span_id\":\"bb\","
        "\"trace_state\":\"x\",\"dropped_attributes_count\":7}],\"events\":[{\"time_unix_nano\":"
        "\"9\",\"dropped_attributes_count\":8}],\"attributes\":[{\"key\":\"a\",\"value\":{"
        "\"string_value\":\"s\"}},{\"key\":\"b\",\"value\":{\"bool_value\":true}},{\"key\":\"c\","
        "\"value\":{\"int_value\":\"-3\"}},{\"key\":\"d\",\"value\":{\"double_value\":1}},"
        "{\"key\":\"e\",\"value\":{\"bytes_value\":\"AQI\"}},{\"key\":\"f\",\"value\":{"
        "\"array_value\":{\"values\":[{\"int_value\":1}]}}},{\"key\":\"g\",\"value\":{"
        "\"kvlist_value\":{\"values\":[{\"key\":\"h\"}]}}}]}]}]}]}");
    OtlpResourceSpans *rs = t->resource_spans[0];
    assert_int_equal(rs->resource->dropped_attributes_count, 4);
    assert_string_equal(rs->schema_url, "s1");
    assert_string_equal(rs->scope_spans[0]->schema_url, "s2");
    assert_int_equal(rs->scope_spans[0]->scope->dropped_attributes_count, 1);
    OtlpSpan *s = rs->scope_spans[0]->spans[0];
    assert_bytes(s->trace_id, "0a0b");
    assert_bytes(s->span_id, "ff");
    assert_bytes(s->parent_span_id, "01");
    assert_string_equal(s->trace_state, "ts");
    assert_int_equal(s->start_time_unix_nano, 5);
    assert_int_equal(s->end_time_unix_nano, 6);
    assert_int_equal(s->dropped_attributes_count, 1);
    assert_int_equal(s->dropped_events_count, 2);
    assert_int_equal(s->dropped_links_count, 3);
    assert_bytes(s->links[0]->trace_id, "aa");
    assert_bytes(s->links[0]->span_id, "bb");
    assert_string_equal(s->links[0]->trace_state, "x");
    assert_int_equal(s->links[0]->dropped_attributes_count, 7);
    assert_int_equal(s->events[0]->time_unix_nano, 9);
    assert_int_equal(s->events[0]->dropped_attributes_count, 8);
    assert_int_equal(s->n_attributes, 7);
    assert_string_equal(s->attributes[0]->value->string_value, "s");
    assert_true(s->attributes[1]->value->bool_value);
    assert_int_equal(s->attributes[2]->value->int_value, -3);
    assert_true(s->attributes[3]->value->double_value == 1.0);
    assert_bytes(s->attributes[4]->value->bytes_value, "0102");
    assert_int_equal(s->attributes[5]->value->array_value->values[0]->int_value, 1);
    assert_string_equal(s->attributes[6]->value->kvlist_value->values[0]->key, "h");
    assert_null(s->attributes[6]->value->kvlist_value->values[0]->value);
    check_roundtrip(t);

    OtlpLogsReq *l =
        decode_ok(OTLP_SIGNAL_LOGS,
                  "{\"resource_logs\":[{\"schema_url\":\"u\",\"scope_logs\":[{\"log_records\":[{"
                  "\"time_unix_nano\":\"1\",\"observed_time_unix_nano\":\"2\",\"severity_number\":"
                  "\"SEVERITY_NUMBER_WARN\",\"severity_text\":\"W\",\"dropped_attributes_count\":3,"
                  "\"trace_id\":\"00ff\",\"span_id\":\"ABCD\",\"event_name\":\"ev\"}]}]}]}");
    OtlpLogRecord *lr = l->resource_logs[0]->scope_logs[0]->log_records[0];
    assert_string_equal(l->resource_logs[0]->schema_url, "u");
    assert_int_equal(lr->time_unix_nano, 1);
    assert_int_equal(lr->observed_time_unix_nano, 2);
    assert_int_equal(lr->severity_number, 13);
    assert_string_equal(lr->severity_text, "W");
    assert_int_equal(lr->dropped_attributes_count, 3);
    assert_bytes(lr->trace_id, "00ff");
    assert_bytes(lr->span_id, "abcd");
    assert_string_equal(lr->event_name, "ev");
    check_roundtrip(l);

    OtlpMetricsReq *m =
        decode_ok(OTLP_SIGNAL_METRICS,
                  "{\"resource_metrics\":[{\"scope_metrics\":[{\"metrics\":[{\"name\":\"a\","
                  "\"exponential_histogram\":{\"data_points\":[{},{}]}}]}]}]}");
    OtlpMetric *mm = m->resource_metrics[0]->scope_metrics[0]->metrics[0];
    assert_int_equal(mm->data_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    assert_int_equal(mm->exponential_histogram->n_data_points, 2);
    check_roundtrip(m);
}

#define ONE_SPAN(fields) "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{" fields "}]}]}]}"
#define ONE_ATTR(value)  ONE_SPAN("\"attributes\":[{\"key\":\"k\",\"value\":" value "}]")
#define ONE_LOG(fields)  "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{" fields "}]}]}]}"
#define ONE_METRIC(fields)                                                                         \
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{" fields "}]}]}]}"

static OtlpSpan *one_span(const char *body)
{
    OtlpTraceReq *t = decode_ok(OTLP_SIGNAL_TRACES, body);
    assert_int_equal(t->n_resource_spans, 1);
    assert_int_equal(t->resource_spans[0]->n_scope_spans, 1);
    assert_int_equal(t->resource_spans[0]->scope_spans[0]->n_spans, 1);
    check_roundtrip(t);
    return t->resource_spans[0]->scope_spans[0]->spans[0];
}

static OtlpAnyValue *one_attr(const char *body)
{
    OtlpSpan *s = one_span(body);
    assert_int_equal(s->n_attributes, 1);
    return s->attributes[0]->value;
}

static void test_enum_names(void **state)
{
    (void)state;
    OtlpSpan *s = one_span(ONE_SPAN("\"kind\":\"SPAN_KIND_CLIENT\","
                                    "\"status\":{\"code\":\"STATUS_CODE_ERROR\"}"));
    assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
    assert_int_equal(s->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    /* Enums are open in proto3: an unknown number is kept, as protobuf-c keeps it. */
    s = one_span(ONE_SPAN("\"kind\":9"));
    assert_int_equal(s->kind, 9);
    OtlpLogsReq *l =
        decode_ok(OTLP_SIGNAL_LOGS, ONE_LOG("\"severityNumber\":\"SEVERITY_NUMBER_FATAL4\""));
    assert_int_equal(l->resource_logs[0]->scope_logs[0]->log_records[0]->severity_number, 24);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    void *msg;
    const char *reason;
    OtlpTraceReq *t = decode_ok(OTLP_SIGNAL_TRACES, "{}");
    assert_int_equal(t->n_resource_spans, 0);
    assert_null(t->resource_spans);
    OtlpLogsReq *l = decode_ok(OTLP_SIGNAL_LOGS, "{\"resourceLogs\":[]}");
    assert_int_equal(l->n_resource_logs, 0);
    OtlpMetricsReq *m = decode_ok(OTLP_SIGNAL_METRICS, " { \"resourceMetrics\" : null } ");
    assert_int_equal(m->n_resource_metrics, 0);
    assert_int_equal(decode_n(OTLP_SIGNAL_TRACES, "", 0, &msg, &reason), O2D_OK);
    assert_int_equal(((OtlpTraceReq *)msg)->n_resource_spans, 0);

    OtlpSpan *s = one_span(ONE_SPAN("\"status\":{}"));
    assert_non_null(s->status);
    assert_int_equal(s->status->code, 0);
    s = one_span(ONE_SPAN("\"status\":{\"code\":2}"));
    assert_int_equal(s->status->code, 2);
    assert_string_equal(s->status->message, "");

    /* null is absent: defaults everywhere, no message allocated for the status. */
    s = one_span(ONE_SPAN("\"traceId\":null,\"name\":null,\"kind\":null,\"status\":null,"
                          "\"attributes\":null,\"events\":null,\"startTimeUnixNano\":null"));
    assert_int_equal(s->trace_id.len, 0);
    assert_string_equal(s->name, "");
    assert_int_equal(s->kind, 0);
    assert_null(s->status);
    assert_int_equal(s->n_attributes, 0);
    assert_int_equal(s->start_time_unix_nano, 0);

    /* A camelCase null falls back to the snake_case name. */
    s = one_span(ONE_SPAN("\"spanId\":null,\"span_id\":\"01\""));
    assert_bytes(s->span_id, "01");

    /* Absent value: NULL, like a KeyValue without field 2 on the wire. */
    s = one_span(ONE_SPAN("\"attributes\":[{\"key\":\"k\"},{}]"));
    assert_null(s->attributes[0]->value);
    assert_string_equal(s->attributes[1]->key, "");
}

/* jansson's object kept the last value of a repeated key; the streaming decoder does too. */
static void test_repeated_keys(void **state)
{
    (void)state;
    OtlpSpan *s = one_span(ONE_SPAN("\"name\":5,\"name\":\"second\",\"kind\":2,\"kind\":null"));
    assert_string_equal(s->name, "second");
    assert_int_equal(s->kind, 0);
    OtlpTraceReq *req =
        decode_ok(OTLP_SIGNAL_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{}]}]}],"
                                      "\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{}]}]}]}");
    assert_int_equal(req->resource_spans[0]->scope_spans[0]->n_spans, 1);
    /* the lowerCamelCase name wins over the proto name wherever each comes */
    s = one_span(ONE_SPAN("\"start_time_unix_nano\":1,\"startTimeUnixNano\":2,"
                          "\"end_time_unix_nano\":3,\"endTimeUnixNano\":null"));
    assert_int_equal(s->start_time_unix_nano, 2);
    assert_int_equal(s->end_time_unix_nano, 3);
}

static void test_numbers(void **state)
{
    (void)state;
    OtlpAnyValue *v = one_attr(ONE_ATTR("{\"intValue\":\"-9223372036854775808\"}"));
    assert_true(v->int_value == INT64_MIN);
    v = one_attr(ONE_ATTR("{\"intValue\":\"9223372036854775807\"}"));
    assert_true(v->int_value == INT64_MAX);
    v = one_attr(ONE_ATTR("{\"intValue\":-9223372036854775808}"));
    assert_true(v->int_value == INT64_MIN);
    v = one_attr(ONE_ATTR("{\"intValue\":1e3}"));
    assert_int_equal(v->int_value, 1000);
    v = one_attr(ONE_ATTR("{\"intValue\":\"007\"}"));
    assert_int_equal(v->int_value, 7);
    v = one_attr(ONE_ATTR("{\"doubleValue\":\"NaN\"}"));
    assert_true(isnan(v->double_value));
    v = one_attr(ONE_ATTR("{\"doubleValue\":\"Infinity\"}"));
    assert_true(isinf(v->double_value) && v->double_value > 0);
    v = one_attr(ONE_ATTR("{\"doubleValue\":-2.5e-3}"));
    assert_true(v->double_value == -2.5e-3);
    v = one_attr(ONE_ATTR("{\"doubleValue\":3}"));
    assert_true(v->double_value == 3.0);

    OtlpSpan *s = one_span(ONE_SPAN("\"startTimeUnixNano\":\"18446744073709551615\","
                                    "\"endTimeUnixNano\":9223372036854775807,"
                                    "\"flags\":\"4294967295\",\"droppedLinksCount\":4294967295,"
                                    "\"droppedEventsCount\":2.0"));
    assert_true(s->start_time_unix_nano == UINT64_MAX);
    assert_true(s->end_time_unix_nano == (uint64_t)INT64_MAX);
    assert_true(s->flags == UINT32_MAX);
    assert_true(s->dropped_links_count == UINT32_MAX);
    assert_int_equal(s->dropped_events_count, 2);
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *b64;
        const char *hex;
    } cases[] = {
        {"", ""},
        {"AA==", "00"},
        {"AA", "00"},
        {"AAE=", "0001"},
        {"AAE", "0001"},
        {"AAEC", "000102"},
        {"aGVsbG8gd29ybGQ=", "68656c6c6f20776f726c64"},
        {"+/8=", "fbff"},
        {"-_8", "fbff"},
        {"////", "ffffff"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), ONE_ATTR("{\"bytesValue\":\"%s\"}"), cases[i].b64);
        OtlpAnyValue *v = one_attr(body);
        assert_int_equal(v->value_case,
                         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
        assert_bytes(v->bytes_value, cases[i].hex);
    }
}

/* `depth` AnyValues nested through arrayValue (or kvlistValue), as one attribute's value. */
static char *nested_attr(unsigned depth, int kvlist)
{
    size_t cap = 64 + depth * 64;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n =
        (size_t)snprintf(buf, cap, "%s", ONE_SPAN("\"attributes\":[{\"key\":\"k\",\"value\":"));
    /* ONE_SPAN closes the span; keep only its opening part. */
    n = strlen(buf) - strlen("}]}]}]}");
    buf[n] = '\0';
    for (unsigned i = 1; i < depth; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s",
                              kvlist ? "{\"kvlistValue\":{\"values\":[{\"key\":\"x\",\"value\":"
                                     : "{\"arrayValue\":{\"values\":[");
    }
    n += (size_t)snprintf(buf + n, cap - n, "{\"intValue\":1}");
    for (unsigned i = 1; i < depth; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s", kvlist ? "}]}}" : "]}}");
    }
    snprintf(buf + n, cap - n, "}]}]}]}]}");
    return buf;
}

static void test_depth(void **state)
{
    (void)state;
    for (int kvlist = 0; kvlist <= 1; kvlist++) {
        void *msg;
        const char *reason;
        char *body = nested_attr(OTLP_MAX_ANYVALUE_DEPTH, kvlist);
        OtlpAnyValue *v = one_attr(body);
        for (unsigned i = 1; i < OTLP_MAX_ANYVALUE_DEPTH; i++) {
            v = kvlist ? v->kvlist_value->values[0]->value : v->array_value->values[0];
        }
        assert_int_equal(v->int_value, 1);
        free(body);

        body = nested_attr(OTLP_MAX_ANYVALUE_DEPTH + 1, kvlist);
        assert_int_equal(decode_n(OTLP_SIGNAL_TRACES, body, strlen(body), &msg, &reason),
                         O2D_ERR_INVALID);
        assert_string_equal(reason, "AnyValue nesting is too deep");
        assert_null(msg);
        free(body);
    }

    /* A log body counts like an attribute value. */
    void *msg;
    const char *reason;
    char body[4096] = ONE_LOG("\"body\":");
    size_t n = strlen(body) - strlen("}]}]}]}");
    body[n] = '\0';
    for (unsigned i = 0; i < OTLP_MAX_ANYVALUE_DEPTH; i++) {
        strcat(body, "{\"arrayValue\":{\"values\":[");
    }
    strcat(body, "{}");
    for (unsigned i = 0; i < OTLP_MAX_ANYVALUE_DEPTH; i++) {
        strcat(body, "]}}");
    }
    strcat(body, "}]}]}]}");
    assert_int_equal(decode_n(OTLP_SIGNAL_LOGS, body, strlen(body), &msg, &reason),
                     O2D_ERR_INVALID);
    assert_string_equal(reason, "AnyValue nesting is too deep");
}

struct bad_case {
    enum otlp_signal sig;
    const char *body;
    size_t len; /* 0: strlen(body) */
    int status;
    const char *reason;
};

#define T   OTLP_SIGNAL_TRACES
#define L   OTLP_SIGNAL_LOGS
#define M   OTLP_SIGNAL_METRICS
#define INV O2D_ERR_INVALID

static const struct bad_case bad_cases[] = {
    /* not JSON */
    {T, "not json", 0, INV, "body is not valid JSON"},
    {L, "{\"resourceLogs\":[", 0, INV, "body is not valid JSON"},
    {M, "{\"resourceMetrics\":[]", 0, INV, "body is not valid JSON"},
    {T, "{\"resourceSpans\":[]} x", 0, INV, "body is not valid JSON"},
    {T, ONE_SPAN("\"name\":\"\xff\xfe\""), 0, INV, "body is not valid JSON"},
    {T, ONE_SPAN("\"name\":\"\xc3\""), 0, INV, "body is not valid JSON"},
    {T, "{\"resourceSpans\":[]}\0", 21, INV, "body is not valid JSON"},
    {T, "[]", 0, INV, "body is not a JSON object"},
    {L, "\"resourceLogs\"", 0, INV, "body is not a JSON object"},
    {M, "5", 0, INV, "body is not a JSON object"},
    /* numbers jansson cannot hold */
    {T, ONE_SPAN("\"startTimeUnixNano\":18446744073709551615"), 0, INV,
     "a number in the body is out of range"},
    {T, ONE_ATTR("{\"doubleValue\":1e400}"), 0, INV, "a number in the body is out of range"},
    {T, ONE_ATTR("{\"intValue\":-99999999999999999999}"), 0, INV,
     "a number in the body is out of range"},
    /* the text is checked whole before any field: not JSON or out of range anywhere wins */
    {T, "{\"resourceSpans\":5,\"x\":[\"\\ud800\"]}", 0, INV, "body is not valid JSON"},
    {T, "{\"resourceSpans\":5,\"x\":1e400}", 0, INV, "a number in the body is out of range"},
    {T, "{\"resourceSpans\":[] 18446744073709551616}", 0, INV,
     "a number in the body is out of range"},
    {T, "{\"resourceSpans\":[],\"a\\u0000\":1}", 0, INV, "body is not valid JSON"},
    /* a string field holding NUL (otlp_pbcheck.c refuses it in protobuf too) */
    {T, ONE_SPAN("\"name\":\"a\\u0000b\""), 0, INV, "a string holds a NUL character"},
    {L, ONE_LOG("\"body\":{\"stringValue\":\"\\u0000\"}"), 0, INV,
     "a string holds a NUL character"},
    /* a repeated key keeps its last value; fields are checked in a fixed order */
    {T, "{\"resourceSpans\":[],\"resourceSpans\":5}", 0, INV, "resourceSpans is not an array"},
    {T, ONE_SPAN("\"name\":\"n\",\"kind\":\"x\",\"name\":5"), 0, INV, "span name is not a string"},
    {T, ONE_SPAN("\"attributes\":[{\"key\":1}],\"traceId\":\"x\""), 0, INV,
     "span traceId is not a hex string"},
    /* wrong types, top down: traces */
    {T, "{\"resourceSpans\":5}", 0, INV, "resourceSpans is not an array"},
    {T, "{\"resourceSpans\":{}}", 0, INV, "resourceSpans is not an array"},
    {T, "{\"resourceSpans\":[5]}", 0, INV, "resourceSpans entry is not an object"},
    {T, "{\"resourceSpans\":[null]}", 0, INV, "resourceSpans entry is not an object"},
    {T, "{\"resourceSpans\":[{\"resource\":[]}]}", 0, INV, "resource is not an object"},
    {T, "{\"resourceSpans\":[{\"resource\":{\"attributes\":{}}}]}", 0, INV,
     "resource attributes is not an array"},
    {T, "{\"resourceSpans\":[{\"resource\":{\"droppedAttributesCount\":-1}}]}", 0, INV,
     "resource droppedAttributesCount is not a valid uint32"},
    {T, "{\"resourceSpans\":[{\"schemaUrl\":1}]}", 0, INV,
     "resourceSpans schemaUrl is not a string"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":\"x\"}]}", 0, INV, "scopeSpans is not an array"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[[]]}]}", 0, INV, "scopeSpans entry is not an object"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":\"x\"}]}]}", 0, INV,
     "scope is not an object"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":{\"name\":5}}]}]}", 0, INV,
     "scope name is not a string"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":{\"version\":true}}]}]}", 0, INV,
     "scope version is not a string"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":{\"attributes\":5}}]}]}", 0, INV,
     "scope attributes is not an array"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[{\"schemaUrl\":[]}]}]}", 0, INV,
     "scopeSpans schemaUrl is not a string"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":5}]}]}", 0, INV, "spans is not an array"},
    {T, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\"s\"]}]}]}", 0, INV,
     "span is not an object"},
    {T, ONE_SPAN("\"name\":5"), 0, INV, "span name is not a string"},
    {T, ONE_SPAN("\"traceState\":{}"), 0, INV, "span traceState is not a string"},
    {T, ONE_SPAN("\"attributes\":{}"), 0, INV, "span attributes is not an array"},
    {T, ONE_SPAN("\"attributes\":[5]"), 0, INV, "attribute is not an object"},
    {T, ONE_SPAN("\"attributes\":[{\"key\":5}]"), 0, INV, "attribute key is not a string"},
    {T, ONE_SPAN("\"events\":{}"), 0, INV, "span events is not an array"},
    {T, ONE_SPAN("\"events\":[1]"), 0, INV, "span event is not an object"},
    {T, ONE_SPAN("\"events\":[{\"name\":1}]"), 0, INV, "span event name is not a string"},
    {T, ONE_SPAN("\"events\":[{\"timeUnixNano\":\"-1\"}]"), 0, INV,
     "span event timeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"events\":[{\"attributes\":\"a\"}]"), 0, INV,
     "span event attributes is not an array"},
    {T, ONE_SPAN("\"events\":[{\"droppedAttributesCount\":0.5}]"), 0, INV,
     "span event droppedAttributesCount is not a valid uint32"},
    {T, ONE_SPAN("\"links\":5"), 0, INV, "span links is not an array"},
    {T, ONE_SPAN("\"links\":[true]"), 0, INV, "span link is not an object"},
    {T, ONE_SPAN("\"links\":[{\"traceId\":\"abc\"}]"), 0, INV,
     "span link traceId is not a hex string"},
    {T, ONE_SPAN("\"links\":[{\"spanId\":\"zz\"}]"), 0, INV,
     "span link spanId is not a hex string"},
    {T, ONE_SPAN("\"links\":[{\"traceState\":1}]"), 0, INV, "span link traceState is not a string"},
    {T, ONE_SPAN("\"links\":[{\"attributes\":{}}]"), 0, INV,
     "span link attributes is not an array"},
    {T, ONE_SPAN("\"links\":[{\"droppedAttributesCount\":\"x\"}]"), 0, INV,
     "span link droppedAttributesCount is not a valid uint32"},
    {T, ONE_SPAN("\"links\":[{\"flags\":4294967296}]"), 0, INV,
     "span link flags is not a valid fixed32"},
    {T, ONE_SPAN("\"status\":5"), 0, INV, "span status is not an object"},
    {T, ONE_SPAN("\"status\":{\"message\":5}"), 0, INV, "span status message is not a string"},
    {T, ONE_SPAN("\"status\":{\"code\":\"ERROR\"}"), 0, INV,
     "span status code is not a valid StatusCode"},
    {T, ONE_SPAN("\"status\":{\"code\":true}"), 0, INV,
     "span status code is not a valid StatusCode"},
    /* ids */
    {T, ONE_SPAN("\"traceId\":\"5b8efff798038103d269b633813fc60g\""), 0, INV,
     "span traceId is not a hex string"},
    {T, ONE_SPAN("\"traceId\":\"5b8efff798038103d269b633813fc60\""), 0, INV,
     "span traceId is not a hex string"},
    {T, ONE_SPAN("\"traceId\":\"W4796YA4EDPSabYzgT/GDA==\""), 0, INV,
     "span traceId is not a hex string"},
    {T, ONE_SPAN("\"traceId\":12"), 0, INV, "span traceId is not a hex string"},
    {T, ONE_SPAN("\"spanId\":\"eee19b7ec3c1b17 \""), 0, INV, "span spanId is not a hex string"},
    {T, ONE_SPAN("\"parentSpanId\":\"0x01\""), 0, INV, "span parentSpanId is not a hex string"},
    /* enums */
    {T, ONE_SPAN("\"kind\":\"SERVER\""), 0, INV, "span kind is not a valid SpanKind"},
    {T, ONE_SPAN("\"kind\":\"2\""), 0, INV, "span kind is not a valid SpanKind"},
    {T, ONE_SPAN("\"kind\":1.5"), 0, INV, "span kind is not a valid SpanKind"},
    {T, ONE_SPAN("\"kind\":2147483648"), 0, INV, "span kind is not a valid SpanKind"},
    /* integers */
    {T, ONE_SPAN("\"startTimeUnixNano\":-1"), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":\"-1\""), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":1.5"), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":\"1.5\""), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":\"\""), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":\" 1\""), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":\"1e3\""), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":\"18446744073709551616\""), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":1e20"), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"startTimeUnixNano\":true"), 0, INV,
     "span startTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"endTimeUnixNano\":[]"), 0, INV, "span endTimeUnixNano is not a valid fixed64"},
    {T, ONE_SPAN("\"flags\":-1"), 0, INV, "span flags is not a valid fixed32"},
    {T, ONE_SPAN("\"flags\":\"4294967296\""), 0, INV, "span flags is not a valid fixed32"},
    {T, ONE_SPAN("\"droppedAttributesCount\":4294967296"), 0, INV,
     "span droppedAttributesCount is not a valid uint32"},
    {T, ONE_SPAN("\"droppedEventsCount\":\"-0\""), 0, INV,
     "span droppedEventsCount is not a valid uint32"},
    {T, ONE_SPAN("\"droppedLinksCount\":{}"), 0, INV,
     "span droppedLinksCount is not a valid uint32"},
    /* AnyValue */
    {T, ONE_ATTR("5"), 0, INV, "AnyValue is not an object"},
    {T, ONE_ATTR("\"v\""), 0, INV, "AnyValue is not an object"},
    {T, ONE_ATTR("{\"stringValue\":\"a\",\"intValue\":1}"), 0, INV,
     "AnyValue has more than one type"},
    {T, ONE_ATTR("{\"boolValue\":true,\"bytes_value\":\"\"}"), 0, INV,
     "AnyValue has more than one type"},
    {T, ONE_ATTR("{\"stringValue\":5}"), 0, INV, "AnyValue stringValue is not a string"},
    {T, ONE_ATTR("{\"boolValue\":\"true\"}"), 0, INV, "AnyValue boolValue is not a boolean"},
    {T, ONE_ATTR("{\"boolValue\":1}"), 0, INV, "AnyValue boolValue is not a boolean"},
    {T, ONE_ATTR("{\"intValue\":1.5}"), 0, INV, "AnyValue intValue is not a valid int64"},
    {T, ONE_ATTR("{\"intValue\":\"abc\"}"), 0, INV, "AnyValue intValue is not a valid int64"},
    {T, ONE_ATTR("{\"intValue\":\"-\"}"), 0, INV, "AnyValue intValue is not a valid int64"},
    {T, ONE_ATTR("{\"intValue\":\"9223372036854775808\"}"), 0, INV,
     "AnyValue intValue is not a valid int64"},
    {T, ONE_ATTR("{\"intValue\":\"-9223372036854775809\"}"), 0, INV,
     "AnyValue intValue is not a valid int64"},
    {T, ONE_ATTR("{\"intValue\":9.3e18}"), 0, INV, "AnyValue intValue is not a valid int64"},
    {T, ONE_ATTR("{\"doubleValue\":\"nan\"}"), 0, INV, "AnyValue doubleValue is not a number"},
    {T, ONE_ATTR("{\"doubleValue\":\"1.5\"}"), 0, INV, "AnyValue doubleValue is not a number"},
    {T, ONE_ATTR("{\"doubleValue\":false}"), 0, INV, "AnyValue doubleValue is not a number"},
    {T, ONE_ATTR("{\"bytesValue\":5}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"A\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"AAAAA\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"AA=\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"A===\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"=\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"AA==AA==\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"aGV sbG8=\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"bytesValue\":\"aGVs*G8=\"}"), 0, INV, "AnyValue bytesValue is not base64"},
    {T, ONE_ATTR("{\"arrayValue\":[]}"), 0, INV, "AnyValue arrayValue is not an object"},
    {T, ONE_ATTR("{\"arrayValue\":{\"values\":{}}}"), 0, INV, "ArrayValue values is not an array"},
    {T, ONE_ATTR("{\"arrayValue\":{\"values\":[1]}}"), 0, INV, "AnyValue is not an object"},
    {T, ONE_ATTR("{\"kvlistValue\":5}"), 0, INV, "AnyValue kvlistValue is not an object"},
    {T, ONE_ATTR("{\"kvlistValue\":{\"values\":\"x\"}}"), 0, INV,
     "KeyValueList values is not an array"},
    {T, ONE_ATTR("{\"kvlistValue\":{\"values\":[[]]}}"), 0, INV, "attribute is not an object"},
    /* logs */
    {L, "{\"resourceLogs\":5}", 0, INV, "resourceLogs is not an array"},
    {L, "{\"resourceLogs\":[1]}", 0, INV, "resourceLogs entry is not an object"},
    {L, "{\"resourceLogs\":[{\"resource\":5}]}", 0, INV, "resource is not an object"},
    {L, "{\"resourceLogs\":[{\"schemaUrl\":5}]}", 0, INV, "resourceLogs schemaUrl is not a string"},
    {L, "{\"resourceLogs\":[{\"scopeLogs\":{}}]}", 0, INV, "scopeLogs is not an array"},
    {L, "{\"resourceLogs\":[{\"scopeLogs\":[5]}]}", 0, INV, "scopeLogs entry is not an object"},
    {L, "{\"resourceLogs\":[{\"scopeLogs\":[{\"schemaUrl\":5}]}]}", 0, INV,
     "scopeLogs schemaUrl is not a string"},
    {L, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":{}}]}]}", 0, INV,
     "logRecords is not an array"},
    {L, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[5]}]}]}", 0, INV,
     "log record is not an object"},
    {L, ONE_LOG("\"timeUnixNano\":\"x\""), 0, INV,
     "log record timeUnixNano is not a valid fixed64"},
    {L, ONE_LOG("\"observedTimeUnixNano\":-5"), 0, INV,
     "log record observedTimeUnixNano is not a valid fixed64"},
    {L, ONE_LOG("\"severityNumber\":\"INFO\""), 0, INV,
     "log record severityNumber is not a valid SeverityNumber"},
    {L, ONE_LOG("\"severityText\":9"), 0, INV, "log record severityText is not a string"},
    {L, ONE_LOG("\"body\":\"hello\""), 0, INV, "AnyValue is not an object"},
    {L, ONE_LOG("\"body\":{\"stringValue\":\"a\",\"boolValue\":true}"), 0, INV,
     "AnyValue has more than one type"},
    {L, ONE_LOG("\"attributes\":{}"), 0, INV, "log record attributes is not an array"},
    {L, ONE_LOG("\"droppedAttributesCount\":-1"), 0, INV,
     "log record droppedAttributesCount is not a valid uint32"},
    {L, ONE_LOG("\"flags\":1.25"), 0, INV, "log record flags is not a valid fixed32"},
    {L, ONE_LOG("\"traceId\":\"xy\""), 0, INV, "log record traceId is not a hex string"},
    {L, ONE_LOG("\"spanId\":\"123\""), 0, INV, "log record spanId is not a hex string"},
    {L, ONE_LOG("\"eventName\":[]"), 0, INV, "log record eventName is not a string"},
    /* metrics */
    {M, "{\"resourceMetrics\":{}}", 0, INV, "resourceMetrics is not an array"},
    {M, "{\"resourceMetrics\":[\"x\"]}", 0, INV, "resourceMetrics entry is not an object"},
    {M, "{\"resourceMetrics\":[{\"schemaUrl\":5}]}", 0, INV,
     "resourceMetrics schemaUrl is not a string"},
    {M, "{\"resourceMetrics\":[{\"scopeMetrics\":5}]}", 0, INV, "scopeMetrics is not an array"},
    {M, "{\"resourceMetrics\":[{\"scopeMetrics\":[5]}]}", 0, INV,
     "scopeMetrics entry is not an object"},
    {M, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"scope\":[]}]}]}", 0, INV,
     "scope is not an object"},
    {M, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"schemaUrl\":5}]}]}", 0, INV,
     "scopeMetrics schemaUrl is not a string"},
    {M, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":{}}]}]}", 0, INV,
     "metrics is not an array"},
    {M, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[5]}]}]}", 0, INV,
     "metric is not an object"},
    {M, ONE_METRIC("\"name\":5"), 0, INV, "metric name is not a string"},
    {M, ONE_METRIC("\"description\":5"), 0, INV, "metric description is not a string"},
    {M, ONE_METRIC("\"unit\":5"), 0, INV, "metric unit is not a string"},
    {M, ONE_METRIC("\"metadata\":5"), 0, INV, "metric metadata is not an array"},
    {M, ONE_METRIC("\"gauge\":5"), 0, INV, "metric data is not an object"},
    {M, ONE_METRIC("\"summary\":[]"), 0, INV, "metric data is not an object"},
    {M, ONE_METRIC("\"sum\":{\"dataPoints\":{}}"), 0, INV, "metric dataPoints is not an array"},
    {M, ONE_METRIC("\"histogram\":{\"dataPoints\":[{},5]}"), 0, INV,
     "metric data point is not an object"},
    {M, ONE_METRIC("\"gauge\":{},\"sum\":{}"), 0, INV, "metric has more than one data type"},
    {M, ONE_METRIC("\"exponential_histogram\":{},\"histogram\":{}"), 0, INV,
     "metric has more than one data type"},
};

static void test_bad_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        void *msg = (void *)1;
        const char *reason = NULL;
        size_t len = c->len ? c->len : strlen(c->body);
        int rv = decode_n(c->sig, c->body, len, &msg, &reason);
        if (rv != c->status || reason == NULL || strcmp(reason, c->reason) != 0) {
            fail_msg("case %zu %s: got %d \"%s\", want %d \"%s\"", i, c->body, rv,
                     reason ? reason : "(null)", c->status, c->reason);
        }
        assert_null(msg);
    }
}

/* Every arena limit below what the fixture needs fails cleanly as too large, never crashes. */
static void test_arena_limit(void **state)
{
    (void)state;
    static const struct {
        enum otlp_signal sig;
        const char *file;
    } fixtures[] = {
        {OTLP_SIGNAL_TRACES, "traces_js_sdk.json"},
        {OTLP_SIGNAL_LOGS, "logs_js_sdk.json"},
        {OTLP_SIGNAL_METRICS, "metrics_js_sdk.json"},
    };
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        size_t len;
        char *body = read_fixture(fixtures[f].file, &len);
        void *msg;
        const char *reason;
        assert_int_equal(decode_n(fixtures[f].sig, body, len, &msg, &reason), O2D_OK);
        size_t need = arena.used;
        for (size_t limit = 0; limit < need; limit += 16) {
            o2d_arena_reset(&arena);
            o2d_arena_set_limit(&arena, limit);
            int rv = otlp_json_decode(&arena, fixtures[f].sig, (const uint8_t *)body, len, &msg,
                                      &reason);
            assert_int_equal(rv, O2D_ERR_TOO_LARGE);
            assert_string_equal(reason, "decoded request exceeds the memory limit");
            assert_null(msg);
        }
        o2d_arena_reset(&arena);
        o2d_arena_set_limit(&arena, need);
        assert_int_equal(
            otlp_json_decode(&arena, fixtures[f].sig, (const uint8_t *)body, len, &msg, &reason),
            O2D_OK);
        free(body);
    }

    /* A small body that expands: many empty data points against a small limit. */
    size_t n = 20000;
    char *body = malloc(256 + n * 3);
    assert_non_null(body);
    size_t off = (size_t)sprintf(body, ONE_METRIC("\"gauge\":{\"dataPoints\":["));
    off -= strlen("}]}]}]}");
    for (size_t i = 0; i < n; i++) {
        memcpy(body + off, &",{}"[i == 0], 3 - (i == 0));
        off += 3 - (i == 0);
    }
    sprintf(body + off, "]}}]}]}]}");
    void *msg;
    const char *reason;
    o2d_arena_reset(&arena);
    o2d_arena_set_limit(&arena, 64 * 1024);
    assert_int_equal(otlp_json_decode(&arena, OTLP_SIGNAL_METRICS, (const uint8_t *)body,
                                      strlen(body), &msg, &reason),
                     O2D_ERR_TOO_LARGE);
    assert_string_equal(reason, "decoded request exceeds the memory limit");
    OtlpMetricsReq *m = decode_ok(OTLP_SIGNAL_METRICS, body);
    assert_int_equal(m->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->n_data_points, n);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_js_sdk_traces),  cmocka_unit_test(test_js_sdk_logs),
        cmocka_unit_test(test_js_sdk_metrics), cmocka_unit_test(test_snake_case),
        cmocka_unit_test(test_enum_names),     cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_repeated_keys),  cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_base64),         cmocka_unit_test(test_depth),
        cmocka_unit_test(test_bad_input),      cmocka_unit_test(test_arena_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
