/*
 * test_logs_encode.c: the Datadog Logs destination (exporters/logs_exporter_int.h) through
 * the delivery layer's body builder (dlv_build_bodies, gzip as the exporter configures it):
 * every body is a gzip JSON array of at most 1,000 entries and 5 MB before compression
 * (Datadog Logs API), entries in order, each exactly once; the headers carry DD-API-KEY and
 * JSON. Bodies are inflated with zlib and parsed with jansson, not with our own code.
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
#include <zlib.h>

#include "delivery.h"
#include "logs_exporter_int.h"
#include "o2d.h"

#define MAX_BODIES 64

struct sink {
    struct dlv_body *b[MAX_BODIES];
    size_t n;
};

static void emit(void *ctx, struct dlv_body *b)
{
    struct sink *s = ctx;
    assert_true(s->n < MAX_BODIES);
    s->b[s->n++] = b;
}

static json_t *gunzip_json(const struct dlv_body *b)
{
    size_t cap = b->raw_len + 1;
    uint8_t *raw = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = b->data;
    zs.avail_in = (uInt)b->len;
    zs.next_out = raw;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.total_out, b->raw_len);
    inflateEnd(&zs);
    json_error_t err;
    json_t *j = json_loadb((const char *)raw, b->raw_len, 0, &err);
    if (j == NULL) {
        fail_msg("body is not JSON: %s", err.text);
    }
    free(raw);
    return j;
}

/* An entry {"message":"<id>","pad":"xxx"} of about `len` bytes. */
static struct dlv_item *entry(unsigned id, size_t len)
{
    char *s = malloc(len + 64);
    int h = snprintf(s, 64, "{\"message\":\"%u\",\"pad\":\"", id);
    size_t pad = len > (size_t)h + 2 ? len - (size_t)h - 2 : 0;
    memset(s + h, 'x', pad);
    memcpy(s + h + pad, "\"}", 2);
    struct dlv_item *it = logs_item((const uint8_t *)s, (size_t)h + pad + 2);
    free(s);
    assert_non_null(it);
    return it;
}

static void build(struct dlv_item **items, size_t n, struct sink *s)
{
    struct logs_wire w;
    snprintf(w.key_header, sizeof(w.key_header), "DD-API-KEY: k");
    struct dlv_build b = {
        .type = &logs_dest,
        .ctx = &w,
        .max_body = LOGS_MAX_BODY_BYTES,
        .batch_bytes = LOGS_MAX_BODY_BYTES,
        .compression = DLV_COMPRESS_GZIP,
        .emit = emit,
        .emit_ctx = s,
    };
    assert_int_equal(dlv_build_bodies(&b, items, n), O2D_OK);
    assert_int_equal(b.too_large, 0);
    assert_int_equal(b.failed, 0);
}

/* Checks the bodies hold entries 0..n-1 in order, within the limits; frees them. */
static void check(struct sink *s, size_t n)
{
    size_t next = 0;
    for (size_t i = 0; i < s->n; i++) {
        assert_true(s->b[i]->raw_len <= LOGS_MAX_BODY_BYTES);
        json_t *arr = gunzip_json(s->b[i]);
        assert_true(json_is_array(arr));
        assert_true(json_array_size(arr) <= LOGS_MAX_ITEMS);
        assert_int_equal(json_array_size(arr), s->b[i]->units);
        size_t k;
        json_t *v;
        json_array_foreach(arr, k, v)
        {
            char want[16];
            snprintf(want, sizeof(want), "%zu", next++);
            assert_string_equal(json_string_value(json_object_get(v, "message")), want);
        }
        json_decref(arr);
        dlv_body_free(s->b[i]);
    }
    assert_int_equal(next, n);
}

static void test_thousand_entries_a_body(void **state)
{
    (void)state;
    size_t n = 2500;
    struct dlv_item **items = calloc(n, sizeof(*items));
    for (size_t i = 0; i < n; i++) {
        items[i] = entry((unsigned)i, 100);
    }
    struct sink s = {.n = 0};
    build(items, n, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.b[0]->units, 1000);
    assert_int_equal(s.b[1]->units, 1000);
    assert_int_equal(s.b[2]->units, 500);
    check(&s, n);
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(items[i]);
    }
    free(items);
}

static void test_five_mb_a_body(void **state)
{
    (void)state;
    /* 12 entries of ~900 kB: 5 fit under 5 MB uncompressed, however well they compress */
    size_t n = 12;
    struct dlv_item *items[12];
    for (size_t i = 0; i < n; i++) {
        items[i] = entry((unsigned)i, 900000);
    }
    struct sink s = {.n = 0};
    build(items, n, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.b[0]->units, 5);
    assert_true(s.b[0]->len < s.b[0]->raw_len / 100); /* gzip */
    check(&s, n);
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(items[i]);
    }
}

static void test_headers(void **state)
{
    (void)state;
    struct logs_wire w;
    snprintf(w.key_header, sizeof(w.key_header), "DD-API-KEY: secret");
    struct dlv_headers h;
    memset(&h, 0, sizeof(h));
    logs_dest.headers(&w, NULL, 0, &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.line[0], "DD-API-KEY: secret");
    assert_string_equal(h.line[1], "Content-Type: application/json");
    assert_string_equal(logs_dest.name, "datadog_logs");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_entries_a_body),
        cmocka_unit_test(test_five_mb_a_body),
        cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
