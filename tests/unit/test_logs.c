/*
 * test_logs.c: translate/logs against hostile input: a 1 MB body (cut to the 1 MB entry limit
 * and marked), attribute maps nested to the decoder's limit (flattened to depth 10, the rest
 * JSON text), 100,000 attributes in one record, a map whose flattened keys would amplify past
 * the builder's bound (that record alone is dropped as too large, the next one goes on), an
 * entry that cutting the message cannot make fit; and the status of severity numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "logs.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "otlp.h"

struct out {
    size_t n;
    size_t max_len;
    json_t *last;
};

static int collect(void *ctx, const uint8_t *json, size_t len)
{
    struct out *o = ctx;
    o->n++;
    if (len > o->max_len) {
        o->max_len = len;
    }
    json_decref(o->last);
    json_error_t err;
    o->last = json_loadb((const char *)json, len, 0, &err);
    if (o->last == NULL) {
        fail_msg("not JSON: %s", err.text);
    }
    return O2D_OK;
}

/* Decodes the OTLP/JSON in b and translates it; the builder takes max_bytes per record. */
static void run(struct o2d_buf *b, size_t max_bytes, struct out *o, struct logs_counts *c)
{
    struct o2d_arena a;
    o2d_arena_init(&a, 256u << 20);
    struct otlp_request req;
    const char *reason = NULL;
    int rv = otlp_decode(&a, OTLP_SIGNAL_LOGS, OTLP_ENC_JSON, b->data, b->len, &req, &reason);
    if (rv != O2D_OK) {
        fail_msg("decode: %s", reason != NULL ? reason : "?");
    }
    struct logs_builder *lb;
    assert_int_equal(logs_builder_new(&lb, max_bytes), O2D_OK);
    struct logs_config cfg = {.ddsource = "otlp_log_ingestion",
                              .otel_source = "datadog_exporter",
                              .max_entry_bytes = LOGS_MAX_ENTRY_BYTES};
    memset(c, 0, sizeof(*c));
    assert_int_equal(logs_translate(lb, &a, req.msg.logs, &cfg, collect, o, c), O2D_OK);
    logs_builder_free(lb);
    o2d_arena_cleanup(&a);
}

#define HEAD "{\"resourceLogs\":[{\"resource\":{},\"scopeLogs\":[{\"logRecords\":["
#define TAIL "]}]}]}"

static void test_one_mb_body(void **state)
{
    (void)state;
    struct o2d_buf b;
    o2d_buf_init(&b, 8u << 20);
    o2d_buf_append_str(&b, HEAD "{\"body\":{\"stringValue\":\"");
    for (size_t i = 0; i < (1u << 20); i++) {
        o2d_buf_append_byte(&b, (uint8_t)('a' + i % 26));
    }
    o2d_buf_append_str(&b, "\"}}" TAIL);
    struct out o = {0};
    struct logs_counts c;
    run(&b, 16u << 20, &o, &c);
    assert_int_equal(o.n, 1);
    assert_int_equal(c.truncated, 1);
    assert_true(o.max_len <= LOGS_MAX_ENTRY_BYTES);
    assert_true(o.max_len > LOGS_MAX_ENTRY_BYTES - 64);
    const char *m = json_string_value(json_object_get(o.last, "message"));
    size_t ml = strlen(m);
    assert_true(ml > 900000);
    assert_string_equal(m + ml - strlen(LOGS_TRUNCATED_MARKER), LOGS_TRUNCATED_MARKER);
    assert_memory_equal(m, "abcdefghij", 10);
    json_decref(o.last);
    o2d_buf_cleanup(&b);
}

static void test_deep_map(void **state)
{
    (void)state;
    struct o2d_buf b;
    o2d_buf_init(&b, 1u << 20);
    o2d_buf_append_str(&b, HEAD "{\"attributes\":[");
    int depth = OTLP_MAX_ANYVALUE_DEPTH - 2;
    for (int i = 0; i < depth; i++) {
        o2d_buf_printf(&b, "{\"key\":\"k%d\",\"value\":{\"kvlistValue\":{\"values\":[", i);
    }
    o2d_buf_append_str(&b, "{\"key\":\"leaf\",\"value\":{\"stringValue\":\"v\"}}");
    for (int i = 0; i < depth; i++) {
        o2d_buf_append_str(&b, "]}}}");
    }
    o2d_buf_append_str(&b, "]}" TAIL);
    struct out o = {0};
    struct logs_counts c;
    run(&b, 16u << 20, &o, &c);
    assert_int_equal(o.n, 1);
    /* ten levels flattened, the rest one JSON string */
    json_t *v = json_object_get(o.last, "k0.k1.k2.k3.k4.k5.k6.k7.k8.k9");
    assert_true(json_is_string(v));
    assert_non_null(strstr(json_string_value(v), "\"leaf\":\"v\""));
    json_decref(o.last);
    o2d_buf_cleanup(&b);
}

static void test_many_attributes(void **state)
{
    (void)state;
    struct o2d_buf b;
    o2d_buf_init(&b, 64u << 20);
    o2d_buf_append_str(&b, HEAD "{\"attributes\":[");
    for (int i = 0; i < 100000; i++) {
        o2d_buf_printf(&b, "%s{\"key\":\"a%d\",\"value\":{\"intValue\":\"%d\"}}", i ? "," : "",
                       i % 50000, i);
    }
    o2d_buf_append_str(&b, "]}" TAIL);
    struct out o = {0};
    struct logs_counts c;
    run(&b, 16u << 20, &o, &c);
    assert_int_equal(o.n, 1);
    /* duplicate keys: the last write wins, as in Datadog's map */
    assert_int_equal(json_integer_value(json_object_get(o.last, "a7")), 50007);
    assert_int_equal(json_object_size(o.last), 50000 + 4); /* + ddsource ddtags message status */
    json_decref(o.last);
    o2d_buf_cleanup(&b);
}

static void test_amplification_bounded(void **state)
{
    (void)state;
    /* a 64 KiB key over 2,000 leaves would flatten to 128 MB of keys: that record is too
     * large for a 4 MiB builder and dropped; the record after it is written */
    struct o2d_buf b;
    o2d_buf_init(&b, 16u << 20);
    o2d_buf_append_str(&b, HEAD "{\"attributes\":[{\"key\":\"");
    for (int i = 0; i < 65536; i++) {
        o2d_buf_append_byte(&b, 'k');
    }
    o2d_buf_append_str(&b, "\",\"value\":{\"kvlistValue\":{\"values\":[");
    for (int i = 0; i < 2000; i++) {
        o2d_buf_printf(&b, "%s{\"key\":\"l%d\",\"value\":{\"boolValue\":true}}", i ? "," : "", i);
    }
    o2d_buf_append_str(&b, "]}}}]},{\"body\":{\"stringValue\":\"next\"}}" TAIL);
    struct out o = {0};
    struct logs_counts c;
    run(&b, 4u << 20, &o, &c);
    assert_int_equal(c.too_large, 1);
    assert_int_equal(o.n, 1);
    assert_string_equal(json_string_value(json_object_get(o.last, "message")), "next");
    json_decref(o.last);
    o2d_buf_cleanup(&b);
}

static void test_nested_arrays(void **state)
{
    (void)state;
    /* a 600 kB string at the bottom of 25 nested arrays: each level copies its content
     * once, the builder's 4 MiB bound is not reached, the value comes out whole */
    struct o2d_buf b;
    o2d_buf_init(&b, 4u << 20);
    o2d_buf_append_str(&b, HEAD "{\"attributes\":[{\"key\":\"n\",\"value\":");
    for (int i = 0; i < 25; i++) {
        o2d_buf_append_str(&b, "{\"arrayValue\":{\"values\":[");
    }
    o2d_buf_append_str(&b, "{\"stringValue\":\"");
    for (int i = 0; i < 600000; i++) {
        o2d_buf_append_byte(&b, 'z');
    }
    o2d_buf_append_str(&b, "\"}");
    for (int i = 0; i < 25; i++) {
        o2d_buf_append_str(&b, "]}}");
    }
    o2d_buf_append_str(&b, "}]}" TAIL);
    struct out o = {0};
    struct logs_counts c;
    run(&b, 4u << 20, &o, &c);
    assert_int_equal(c.too_large, 0);
    assert_int_equal(o.n, 1);
    json_t *v = json_object_get(o.last, "n");
    for (int i = 0; i < 25; i++) {
        assert_true(json_is_array(v));
        v = json_array_get(v, 0);
    }
    assert_int_equal(strlen(json_string_value(v)), 600000);
    json_decref(o.last);
    o2d_buf_cleanup(&b);
}

static void test_cannot_fit(void **state)
{
    (void)state;
    /* 1.2 MB in one attribute and a short message: cutting the message cannot help */
    struct o2d_buf b;
    o2d_buf_init(&b, 8u << 20);
    o2d_buf_append_str(&b, HEAD "{\"attributes\":[{\"key\":\"big\",\"value\":{\"stringValue\":\"");
    for (int i = 0; i < 1200000; i++) {
        o2d_buf_append_byte(&b, 'x');
    }
    o2d_buf_append_str(&b, "\"}}],\"body\":{\"stringValue\":\"short\"}}" TAIL);
    struct out o = {0};
    struct logs_counts c;
    run(&b, 16u << 20, &o, &c);
    assert_int_equal(o.n, 0);
    assert_int_equal(c.too_large, 1);
    o2d_buf_cleanup(&b);
}

static void test_status_of_severity(void **state)
{
    (void)state;
    assert_string_equal(logs_status_of_severity(1), "trace");
    assert_string_equal(logs_status_of_severity(5), "debug");
    assert_string_equal(logs_status_of_severity(12), "info");
    assert_string_equal(logs_status_of_severity(16), "warn");
    assert_string_equal(logs_status_of_severity(20), "error");
    assert_string_equal(logs_status_of_severity(24), "fatal");
    assert_string_equal(logs_status_of_severity(50), "error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_mb_body),        cmocka_unit_test(test_deep_map),
        cmocka_unit_test(test_many_attributes),    cmocka_unit_test(test_amplification_bounded),
        cmocka_unit_test(test_cannot_fit),         cmocka_unit_test(test_nested_arrays),
        cmocka_unit_test(test_status_of_severity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
