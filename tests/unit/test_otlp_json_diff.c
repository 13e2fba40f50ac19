/*
 * test_otlp_json_diff.c: otlp_json_decode() (streaming, translate/otlp/otlp_json.c) against the
 * tree walk it replaced (otlp_json_ref.c, jansson's parser and a walk over its tree) on many
 * bodies: the JSON fixtures, the fuzz corpus, the inputs of the golden tests, a few bodies
 * written for the corners (repeated keys, null, proto names, both names at once), and
 * variants of each made with a fixed seed: bytes cut, copied or changed (mostly no longer
 * JSON) and members or elements of every type inserted where the decoder looks (mostly still
 * JSON, wrong or repeated). For each the two must agree on the status and the reason, and
 * when they accept, on the message, compared as packed protobuf bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "o2d.h"
#include "otlp.h"

#include "otlp_json_ref.c"

#define LIMIT    (64u * 1024 * 1024)
#define VARIANTS 40

static struct o2d_arena arena_new, arena_ref;
static size_t n_compared, n_accepted;

static int setup(void **state)
{
    (void)state;
    o2d_arena_init(&arena_new, LIMIT);
    o2d_arena_init(&arena_ref, LIMIT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    o2d_arena_cleanup(&arena_new);
    o2d_arena_cleanup(&arena_ref);
    return 0;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t rnd_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd() % n);
}

static uint8_t *pack(const void *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

static void print_body(const char *body, size_t len)
{
    FILE *dump = fopen("/tmp/diff_fail.json", "wb");
    if (dump != NULL) {
        fwrite(body, 1, len, dump);
        fclose(dump);
    }
    fprintf(stderr, "body (%zu bytes): ", len);
    for (size_t i = 0; i < len && i < 600; i++) {
        unsigned char c = (unsigned char)body[i];
        fprintf(stderr, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    fprintf(stderr, "\n");
}

static void compare(enum otlp_signal sig, const char *body, size_t len)
{
    void *m_new = NULL, *m_ref = NULL;
    const char *r_new = NULL, *r_ref = NULL;
    o2d_arena_reset(&arena_new);
    o2d_arena_reset(&arena_ref);
    int rv_new = otlp_json_decode(&arena_new, sig, (const uint8_t *)body, len, &m_new, &r_new);
    int rv_ref = otlp_json_ref_decode(&arena_ref, sig, (const uint8_t *)body, len, &m_ref, &r_ref);
    n_compared++;
    if (rv_new != rv_ref || (r_new == NULL) != (r_ref == NULL) ||
        (r_new != NULL && strcmp(r_new, r_ref) != 0)) {
        print_body(body, len);
        fail_msg("signal %d: streaming %d \"%s\", reference %d \"%s\"", (int)sig, rv_new,
                 r_new ? r_new : "(null)", rv_ref, r_ref ? r_ref : "(null)");
    }
    if (rv_new != O2D_OK) {
        assert_null(m_new);
        return;
    }
    n_accepted++;
    size_t l_new, l_ref;
    uint8_t *p_new = pack(m_new, &l_new);
    uint8_t *p_ref = pack(m_ref, &l_ref);
    if (l_new != l_ref || memcmp(p_new, p_ref, l_new) != 0) {
        print_body(body, len);
        fail_msg("signal %d: messages differ (%zu and %zu packed bytes)", (int)sig, l_new, l_ref);
    }
    free(p_new);
    free(p_ref);
}

/* ---- variants ---- */

static const char *const keys[] = {"resourceSpans",
                                   "resource_spans",
                                   "resourceLogs",
                                   "resource_logs",
                                   "resourceMetrics",
                                   "resource_metrics",
                                   "resource",
                                   "scopeSpans",
                                   "scope_spans",
                                   "scopeLogs",
                                   "scope_logs",
                                   "scopeMetrics",
                                   "scope_metrics",
                                   "scope",
                                   "spans",
                                   "logRecords",
                                   "log_records",
                                   "metrics",
                                   "schemaUrl",
                                   "schema_url",
                                   "attributes",
                                   "droppedAttributesCount",
                                   "dropped_attributes_count",
                                   "name",
                                   "version",
                                   "key",
                                   "value",
                                   "values",
                                   "stringValue",
                                   "string_value",
                                   "boolValue",
                                   "intValue",
                                   "int_value",
                                   "doubleValue",
                                   "bytesValue",
                                   "bytes_value",
                                   "arrayValue",
                                   "array_value",
                                   "kvlistValue",
                                   "kvlist_value",
                                   "traceId",
                                   "trace_id",
                                   "spanId",
                                   "span_id",
                                   "parentSpanId",
                                   "traceState",
                                   "flags",
                                   "kind",
                                   "startTimeUnixNano",
                                   "start_time_unix_nano",
                                   "endTimeUnixNano",
                                   "events",
                                   "links",
                                   "droppedEventsCount",
                                   "droppedLinksCount",
                                   "dropped_links_count",
                                   "status",
                                   "code",
                                   "message",
                                   "timeUnixNano",
                                   "time_unix_nano",
                                   "observedTimeUnixNano",
                                   "severityNumber",
                                   "severity_number",
                                   "severityText",
                                   "body",
                                   "eventName",
                                   "event_name",
                                   "description",
                                   "unit",
                                   "metadata",
                                   "gauge",
                                   "sum",
                                   "histogram",
                                   "exponentialHistogram",
                                   "exponential_histogram",
                                   "summary",
                                   "dataPoints",
                                   "data_points",
                                   "aggregationTemporality",
                                   "aggregation_temporality",
                                   "isMonotonic",
                                   "is_monotonic",
                                   "asDouble",
                                   "as_double",
                                   "asInt",
                                   "as_int",
                                   "count",
                                   "min",
                                   "max",
                                   "bucketCounts",
                                   "bucket_counts",
                                   "explicitBounds",
                                   "explicit_bounds",
                                   "exemplars",
                                   "filteredAttributes",
                                   "filtered_attributes",
                                   "scale",
                                   "zeroCount",
                                   "zero_count",
                                   "zeroThreshold",
                                   "positive",
                                   "negative",
                                   "offset",
                                   "quantileValues",
                                   "quantile_values",
                                   "quantile",
                                   "unknownField"};

static const char *const values[] = {
    "null",
    "0",
    "1",
    "-1",
    "2",
    "1.5",
    "1e3",
    "1.0",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9.3e18",
    "1e20",
    "\"\"",
    "\"x\"",
    "\"0\"",
    "\"-0\"",
    "\"12\"",
    "\"18446744073709551615\"",
    "\"-9223372036854775808\"",
    "\"0102030405060708\"",
    "\"5b8efff798038103d269b633813fc60c\"",
    "\"zz\"",
    "\"abc\"",
    "\"aGVsbG8=\"",
    "\"aGVsbG8\"",
    "\"_-8=\"",
    "\"NaN\"",
    "\"Infinity\"",
    "\"-Infinity\"",
    "\"SPAN_KIND_SERVER\"",
    "\"STATUS_CODE_ERROR\"",
    "\"SEVERITY_NUMBER_INFO\"",
    "\"a\\u0000b\"",
    "\"\\u00e9\\ud83d\\ude00\"",
    "true",
    "false",
    "{}",
    "[]",
    "[{}]",
    "[null]",
    "[1]",
    "{\"stringValue\":\"s\"}",
    "{\"intValue\":\"7\"}",
    "{\"boolValue\":true,\"boolValue\":null}",
    "{\"arrayValue\":{\"values\":[{\"intValue\":1},{}]}}",
    "{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"doubleValue\":2}}]}}",
    "[{\"key\":\"k\",\"value\":{\"stringValue\":\"v\"}}]",
    "[{\"key\":\"k\"},{\"key\":5}]",
    "{\"values\":[]}",
    "{\"dataPoints\":[{},{}]}",
    "{\"data_points\":[{\"x\":[1,{}]}]}",
    "[{\"spans\":[{}]}]",
    "[{\"name\":\"n\",\"sum\":{}}]",
    "[{\"logRecords\":[{}]}]",
    "{\"code\":2,\"message\":\"m\"}",
    "18446744073709551616",
    "1e400",
    "{\"a\":[[[{}]]]}",
    "\"AGGREGATION_TEMPORALITY_DELTA\"",
    "\"AGGREGATION_TEMPORALITY_CUMULATIVE\"",
    "2147483648",
    "-2147483649",
    "[1,\"2\",3.0]",
    "[\"18446744073709551615\",0]",
    "[1.5,\"NaN\",\"-Infinity\",-2]",
    "[\"x\"]",
    "[1,null]",
    "{\"offset\":-2,\"bucketCounts\":[\"1\",2]}",
    "[{\"quantile\":0.5,\"value\":1}]",
    "[{\"asInt\":\"3\",\"spanId\":\"0102030405060708\",\"filteredAttributes\":[]}]",
    "[{\"asDouble\":1,\"asInt\":2}]",
    "{\"dataPoints\":[{\"asInt\":1}],\"aggregationTemporality\":1,\"isMonotonic\":true}"};

static const char *const bytes_pool = "{}[],:\"0123456789-.eE+tfn \\u/\x01\xc3\xff";

/* One changed copy of body; *out_len its length. */
static char *variant(const char *body, size_t len, size_t *out_len)
{
    size_t cap = len * 2 + 4096;
    char *out = malloc(cap);
    assert_non_null(out);
    memcpy(out, body, len);
    size_t n = len;
    int ops = 1 + (int)rnd_below(3);
    for (int op = 0; op < ops; op++) {
        size_t pos = rnd_below(n + 1);
        char ins[512];
        size_t il = 0;
        switch (rnd_below(10)) {
        case 0: { /* cut */
            size_t cut = 1 + rnd_below(16);
            if (pos + cut > n) {
                cut = n - pos;
            }
            memmove(out + pos, out + pos + cut, n - pos - cut);
            n -= cut;
            continue;
        }
        case 1: /* change a byte */
            if (pos < n) {
                out[pos] = bytes_pool[rnd_below(strlen(bytes_pool))];
            }
            continue;
        case 2: { /* copy a range somewhere else */
            size_t from = rnd_below(n + 1);
            size_t cl = rnd_below(64);
            if (from + cl > n) {
                cl = n - from;
            }
            if (n + cl > cap) {
                continue;
            }
            memcpy(ins, out + from, cl < sizeof(ins) ? cl : sizeof(ins));
            il = cl < sizeof(ins) ? cl : sizeof(ins);
            break;
        }
        default: { /* a member after a '{', or an element after a '[' */
            size_t tries = 0;
            while (pos < n && out[pos] != '{' && out[pos] != '[' && tries++ < n) {
                pos = (pos + 1) % n;
            }
            if (pos >= n || (out[pos] != '{' && out[pos] != '[')) {
                continue;
            }
            const char *v = values[rnd_below(sizeof(values) / sizeof(values[0]))];
            if (out[pos] == '{') {
                const char *k = keys[rnd_below(sizeof(keys) / sizeof(keys[0]))];
                il = (size_t)snprintf(ins, sizeof(ins), "\"%s\":%s", k, v);
            } else {
                il = (size_t)snprintf(ins, sizeof(ins), "%s", v);
            }
            /* a comma unless the container is empty */
            size_t q = pos + 1;
            while (q < n && (out[q] == ' ' || out[q] == '\n')) {
                q++;
            }
            if (q < n && out[q] != '}' && out[q] != ']') {
                ins[il++] = ',';
            }
            pos++;
            break;
        }
        }
        if (n + il > cap) {
            continue;
        }
        memmove(out + pos + il, out + pos, n - pos);
        memcpy(out + pos, ins, il);
        n += il;
    }
    *out_len = n;
    return out;
}

static void compare_all(const char *body, size_t len)
{
    for (int sig = OTLP_SIGNAL_TRACES; sig <= OTLP_SIGNAL_METRICS; sig++) {
        compare((enum otlp_signal)sig, body, len);
    }
    for (int i = 0; i < VARIANTS; i++) {
        size_t vl;
        char *v = variant(body, len, &vl);
        for (int sig = OTLP_SIGNAL_TRACES; sig <= OTLP_SIGNAL_METRICS; sig++) {
            compare((enum otlp_signal)sig, v, vl);
        }
        free(v);
    }
}

/* ---- seeds ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* Every regular file of a folder, whole; returns how many. */
static size_t each_file(const char *dir, const char *suffix,
                        void (*fn)(const char *body, size_t len))
{
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' ||
            (suffix != NULL &&
             (nl < strlen(suffix) || strcmp(e->d_name + nl - strlen(suffix), suffix) != 0))) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        char *body = read_file(path, &len);
        fn(body, len);
        free(body);
        count++;
    }
    closedir(dp);
    return count;
}

static void test_fixtures(void **state)
{
    (void)state;
    assert_int_equal(each_file(O2D_TEST_DATA "/json", NULL, compare_all), 3);
    assert_true(each_file(O2D_TEST_DATA "/../fuzz/corpus/otlp_json", NULL, compare_all) >= 6);
    assert_true(n_accepted > 0);
    /* More seeds for a run by hand, e.g. a libFuzzer corpus: O2D_JSON_DIFF_EXTRA=<dir>. */
    const char *extra = getenv("O2D_JSON_DIFF_EXTRA");
    if (extra != NULL) {
        size_t n = each_file(extra, NULL, compare_all);
        fprintf(stderr, "%zu extra seeds from %s\n", n, extra);
    }
}

/* The golden fixtures hold OTLP/JSON requests as members of a JSON object. */
static void golden_requests(const char *text, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    assert_non_null(root);
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (json_is_object(v) && (json_object_get(v, "resourceSpans") != NULL ||
                                  json_object_get(v, "resourceLogs") != NULL ||
                                  json_object_get(v, "resourceMetrics") != NULL)) {
            char *body = json_dumps(v, (rnd() & 1) ? JSON_COMPACT : JSON_INDENT(1));
            assert_non_null(body);
            compare_all(body, strlen(body));
            free(body);
        }
    }
    json_decref(root);
}

static void test_golden_inputs(void **state)
{
    (void)state;
    size_t before = n_compared;
    assert_true(each_file(O2D_TEST_DATA "/apm", ".json", golden_requests) > 50);
    assert_true(each_file(O2D_TEST_DATA "/llmobs", ".json", golden_requests) > 20);
    assert_true(n_compared - before > 10000);
}

/* The metrics golden fixtures hold their requests in "steps": [{"request": ...}]. */
static void metrics_requests(const char *text, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    assert_non_null(root);
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(root, "steps"), i, step)
    {
        json_t *req = json_object_get(step, "request");
        assert_true(json_is_object(req));
        char *body = json_dumps(req, (rnd() & 1) ? JSON_COMPACT : JSON_INDENT(1));
        assert_non_null(body);
        compare_all(body, strlen(body));
        free(body);
    }
    json_decref(root);
}

static void test_metrics_inputs(void **state)
{
    (void)state;
    size_t before = n_accepted;
    assert_true(each_file(O2D_TEST_DATA "/metrics", ".json", metrics_requests) >= 10);
    assert_true(n_accepted - before > 100);
}

#define SPAN(x)                                                                                    \
    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"                               \
    "\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\"," x "}]}]}]}"

/* Corners written out: the order of checks, repeated keys, null, the two names of a field. */
static const char *const corners[] = {
    SPAN("\"name\":5,\"name\":\"n\""),
    SPAN("\"name\":\"n\",\"name\":null"),
    SPAN("\"name\":\"n\",\"name\":5"),
    SPAN("\"kind\":\"x\",\"name\":5"),
    SPAN("\"attributes\":[{\"key\":5}],\"name\":5"),
    SPAN("\"attributes\":[5],\"attributes\":[]"),
    SPAN("\"traceId\":null,\"trace_id\":\"0102030405060708090a0b0c0d0e0f10\""),
    SPAN("\"trace_id\":\"01\",\"traceId\":\"02\""),
    SPAN("\"start_time_unix_nano\":\"x\",\"startTimeUnixNano\":1"),
    SPAN("\"startTimeUnixNano\":\"x\",\"start_time_unix_nano\":1"),
    SPAN("\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"code\":\"bad\"}"),
    SPAN("\"attributes\":[{\"key\":\"a\",\"value\":{\"intValue\":1,\"int_value\":\"x\"}}]"),
    SPAN("\"attributes\":[{\"key\":\"a\",\"value\":{\"intValue\":null,\"stringValue\":\"s\"}}]"),
    SPAN("\"attributes\":[{\"key\":\"a\",\"value\":{\"intValue\":1,\"stringValue\":\"s\","
         "\"stringValue\":null}}]"),
    SPAN("\"attributes\":[{\"key\":\"a\\u0000\"}]"),
    SPAN("\"unknown\":\"a\\u0000\",\"name\":\"n\""),
    SPAN("\"name\":\"a\\u0000\",\"name\":\"ok\""),
    SPAN("\"events\":[{\"name\":\"e\"},{\"name\":1}],\"events\":[{\"name\":\"f\"}]"),
    SPAN("\"links\":[{},5],\"name\":\"\\ud800\""),
    "{\"resourceSpans\":[{}],\"resourceSpans\":[]}",
    "{\"resourceSpans\":[5],\"resource_spans\":[]}",
    "{\"resourceSpans\":null,\"resource_spans\":[{\"scopeSpans\":[]}]}",
    ("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"kvlistValue\":{\"values\":"
     "[{\"key\":\"k\",\"value\":{\"arrayValue\":{\"values\":[{\"bytesValue\":\"AQ\"}]}}}]}}}]}]}]"
     "}"),
    ("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[{}]},"
     "\"sum\":{\"dataPoints\":[{},{}]},\"sum\":null}]}]}]}"),
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":5,\"name\":1}]}]}]}",
    ("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{\"dataPoints\":[{"
     "\"bucketCounts\":[1,\"x\"],\"explicitBounds\":5,\"sum\":\"NaN\",\"min\":null}],"
     "\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_X\"}}]}]}]}"),
    ("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"sum\":{\"dataPoints\":[{"
     "\"asInt\":1,\"as_double\":2}],\"isMonotonic\":1}}]}]}]}"),
    ("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"exponentialHistogram\":{"
     "\"dataPoints\":[{\"scale\":\"-3\",\"positive\":{\"offset\":2147483648},\"negative\":[],"
     "\"exemplars\":[{\"traceId\":\"zz\"}]}]}}]}]}]}"),
    ("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"summary\":{\"dataPoints\":[{"
     "\"quantileValues\":[{\"quantile\":\"Infinity\",\"value\":true}],\"sum\":1}]}}]}]}]}"),
    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    "  {\"resourceSpans\" : [ ] }  \n",
    "{\"resourceSpans\":[]}{}",
    "{\"resourceSpans\":[{\"a\":1e400}],\"resourceSpans\":5}",
    "{\"resourceSpans\":5,\"x\":tru}",
    "[1,2",
    "",
};

/* Where jansson's lexer has its own ways (found by this test on a libFuzzer corpus). */
static const struct {
    const char *body;
    size_t len;
} lexer_corners[] = {
    {"0111111111111101111111111111", 0}, /* "01" is one bad token */
    {"{\"resourceSpans\":[01]}", 0},
    {"5\0", 2},                                  /* one NUL after a number vanishes */
    {"{\"resourceSpans\":[],\"a\":true\0}", 30}, /* or after a literal */
    {"{\"resourceSpans\":[],\"a\":1\0\0}", 28},  /* but only one */
    {"110000000000000000000000\xff", 0},         /* bad UTF-8 after an overflow wins */
    {"110000000000000000000000\xc3\xa9", 0},
    {"{\"resourceSpans\":[] \"a\" 1e999}", 0},
};

static void test_corners(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(corners) / sizeof(corners[0]); i++) {
        compare_all(corners[i], strlen(corners[i]));
    }
    for (size_t i = 0; i < sizeof(lexer_corners) / sizeof(lexer_corners[0]); i++) {
        const char *b = lexer_corners[i].body;
        compare_all(b, lexer_corners[i].len ? lexer_corners[i].len : strlen(b));
    }
}

/* Nesting near both depth limits: AnyValue's, and jansson's 2048 for values it skips. */
static void test_deep(void **state)
{
    (void)state;
    static const size_t depths[] = {31, 32, 33, 2040, 2044, 2045, 2046, 2047, 2048, 5000};
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        size_t d = depths[i];
        size_t cap = 256 + d * 64;
        char *b = malloc(cap);
        assert_non_null(b);
        /* unknown member: plain arrays */
        size_t n = (size_t)snprintf(b, cap, "{\"resourceSpans\":[],\"x\":");
        for (size_t j = 0; j < d; j++) {
            b[n++] = '[';
        }
        for (size_t j = 0; j < d; j++) {
            b[n++] = ']';
        }
        b[n++] = '}';
        compare_all(b, n);
        /* AnyValues in arrayValues */
        n = (size_t)snprintf(b, cap, SPAN("\"attributes\":[{\"key\":\"k\",\"value\":"));
        n -= strlen("}]}]}]}");
        for (size_t j = 0; j < d && j < 600; j++) {
            n += (size_t)snprintf(b + n, cap - n, "{\"arrayValue\":{\"values\":[");
        }
        for (size_t j = 0; j < d && j < 600; j++) {
            n += (size_t)snprintf(b + n, cap - n, "]}}");
        }
        n += (size_t)snprintf(b + n, cap - n, "}]}]}]}]}");
        compare_all(b, n);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),       cmocka_unit_test(test_golden_inputs),
        cmocka_unit_test(test_metrics_inputs), cmocka_unit_test(test_corners),
        cmocka_unit_test(test_deep),
    };
    int rv = cmocka_run_group_tests(tests, setup, teardown);
    fprintf(stderr, "%zu bodies compared, %zu accepted\n", n_compared, n_accepted);
    return rv;
}
