/*
 * test_core.c: the small shared pieces: bounded buffer, arena (and its budget), JSON string
 * escaping with UTF-8 repair, the status -> wire tables, and the ingest answers decoded back with
 * protobuf-c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "ingest.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_json_out.h"
#include "status_map.h"

static void buf_enforces_max(void **state)
{
    (void)state;
    struct o2d_buf b;
    o2d_buf_init(&b, 10);
    assert_int_equal(o2d_buf_append(&b, "0123456789", 10), O2D_OK);
    assert_int_equal(o2d_buf_append(&b, "x", 1), O2D_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10);
    assert_true(b.cap <= 10);
    o2d_buf_reset(&b);
    assert_int_equal(o2d_buf_printf(&b, "%s", "abcdefghijk"), O2D_ERR_TOO_LARGE);
    assert_int_equal(o2d_buf_printf(&b, "%d", 12345), O2D_OK);
    assert_memory_equal(b.data, "12345", 5);
    o2d_buf_cleanup(&b);
    o2d_buf_init(&b, 1000);
    o2d_alloc_fail_after(0);
    assert_int_equal(o2d_buf_append(&b, "x", 1), O2D_ERR_NOMEM);
    o2d_alloc_fail_after(-1);
    assert_int_equal(b.len, 0);
    o2d_buf_cleanup(&b);
}

static void arena_aligns_limits_and_reuses(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 1000);
    void *p = o2d_arena_alloc(&a, 3);
    void *q = o2d_arena_alloc(&a, 5);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal((uintptr_t)q % 16, 0);
    assert_null(o2d_arena_alloc(&a, 2000));
    assert_true(a.failed);
    o2d_arena_reset(&a);
    assert_false(a.failed);
    assert_non_null(o2d_arena_alloc(&a, 900));
    o2d_arena_set_limit(&a, 100u * 1024 * 1024);
    /* a single allocation bigger than a block gets its own */
    assert_non_null(o2d_arena_alloc(&a, 10u * 1024 * 1024));
    o2d_arena_reset(&a);
    assert_true(a.reserved <= a.keep);
    o2d_arena_cleanup(&a);
}

/* A budget of `left` bytes, as ingest.c's is to the receivers' limit. */
struct test_budget {
    size_t left;
    size_t taken;
    int takes;
    int answer; /* the status a refusal returns */
};

static int test_take(void *ctx, size_t n)
{
    struct test_budget *b = ctx;
    b->takes++;
    if (n > b->left) {
        return b->answer;
    }
    b->left -= n;
    b->taken += n;
    return O2D_OK;
}

static void test_give(void *ctx, size_t n)
{
    struct test_budget *b = ctx;
    assert_true(n <= b->taken);
    b->left += n;
    b->taken -= n;
}

/* Strings are packed unaligned; an aligned allocation after them is aligned again; both
 * count against the limit and both move to a new block when the current one is full. */
static void arena_packs_strings_between_aligned_allocations(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 200u * 1024);
    char *s1 = o2d_arena_strndup(&a, "abc", 3);
    char *s2 = o2d_arena_strndup(&a, "de\0f", 2);
    assert_string_equal(s1, "abc");
    assert_string_equal(s2, "de");
    assert_ptr_equal(s2, s1 + 4); /* packed: no padding after "abc\0" */
    assert_int_equal(a.used, 7);
    void *p = o2d_arena_alloc(&a, 1);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_true((char *)p >= s2 + 3);
    assert_int_equal(a.used, 7 + 16);
    assert_true(o2d_arena_owns(&a, s2));
    /* Past the first block (64 KiB): a new one, still packed and aligned as asked. */
    char big[40000];
    memset(big, 'x', sizeof(big));
    char *b1 = o2d_arena_strndup(&a, big, sizeof(big));
    char *b2 = o2d_arena_strndup(&a, big, sizeof(big));
    assert_non_null(b1);
    assert_non_null(b2);
    assert_int_equal(b2[sizeof(big)], '\0');
    assert_int_equal(memcmp(b2, big, sizeof(big)), 0);
    void *q = o2d_arena_alloc(&a, 24);
    assert_int_equal((uintptr_t)q % 16, 0);
    /* The limit holds for strings as for the rest. */
    assert_null(o2d_arena_alloc_bytes(&a, 200u * 1024));
    assert_true(a.failed);
    o2d_arena_cleanup(&a);
}

static void arena_charges_the_thread_budget(void **state)
{
    (void)state;
    struct test_budget tb = {.left = 3u * 1024 * 1024, .answer = O2D_ERR_BUSY};
    struct o2d_arena_budget budget = {test_take, test_give, &tb};
    struct o2d_arena a;
    o2d_arena_init(&a, SIZE_MAX);

    /* Without a thread budget nothing is charged. */
    assert_non_null(o2d_arena_alloc(&a, 100));
    assert_int_equal(tb.takes, 0);
    o2d_arena_reset(&a);

    assert_null(o2d_arena_thread_budget(&budget));
    /* The kept block is reused uncharged; new blocks are charged whole, once each. */
    for (int i = 0; i < 1000; i++) {
        assert_non_null(o2d_arena_alloc(&a, 1000));
    }
    assert_true(tb.takes > 0 && tb.takes < 10);
    assert_true(tb.taken >= a.reserved - a.keep);
    assert_int_equal(a.charged, tb.taken);

    /* Blocks kept across a reset (up to `keep` in all) are used again, uncharged. */
    o2d_arena_reset(&a);
    assert_int_equal(tb.taken, 0);
    a.keep = 1024 * 1024;
    for (int i = 0; i < 900; i++) {
        assert_non_null(o2d_arena_alloc(&a, 1000));
    }
    o2d_arena_reset(&a);
    assert_true(a.reserved > 512 * 1024 && a.reserved <= a.keep);
    int before = tb.takes;
    for (int i = 0; i < 900; i++) {
        assert_non_null(o2d_arena_alloc(&a, 1000));
    }
    assert_int_equal(tb.takes, before);
    assert_int_equal(tb.taken, 0);
    for (int i = 0; i < 1000; i++) {
        assert_non_null(o2d_arena_alloc(&a, 1000));
    }
    assert_int_equal(tb.takes, before + 1); /* past them, one new block, charged */

    /* Past the budget: the allocation fails and the arena says why. */
    assert_null(o2d_arena_alloc(&a, 4u * 1024 * 1024));
    assert_true(a.failed);
    assert_int_equal(a.refused, O2D_ERR_BUSY);

    /* Reset gives back everything it took; what it keeps is at most `keep`. */
    o2d_arena_reset(&a);
    assert_int_equal(tb.taken, 0);
    assert_int_equal(tb.left, 3u * 1024 * 1024);
    assert_int_equal(a.refused, O2D_OK);
    assert_true(a.reserved <= a.keep);

    /* A single allocation larger than any block is charged before it is made. */
    tb.answer = O2D_ERR_TOO_LARGE;
    assert_null(o2d_arena_alloc(&a, 8u * 1024 * 1024));
    assert_int_equal(a.refused, O2D_ERR_TOO_LARGE);
    assert_true(a.reserved <= a.keep);
    assert_non_null(o2d_arena_alloc(&a, 2u * 1024 * 1024));
    assert_true(tb.taken >= 2u * 1024 * 1024);

    /* An arena keeps charging the budget it started with; cleanup gives it back. */
    assert_ptr_equal(o2d_arena_thread_budget(NULL), &budget);
    tb.left += 8u * 1024 * 1024;
    int takes = tb.takes;
    assert_non_null(o2d_arena_alloc(&a, 3u * 1024 * 1024));
    assert_int_equal(tb.takes, takes + 1);
    o2d_arena_cleanup(&a);
    assert_int_equal(tb.taken, 0);
    assert_int_equal(a.reserved, 0);
}

static void json_strings_are_escaped_and_repaired(void **state)
{
    (void)state;
    struct o2d_buf b;
    o2d_buf_init(&b, 1024);
    const char in[] = "a\"b\\c\n\x01 \xc3\xa9 \xff \xed\xa0\x80 \xf0\x9f\x98\x80 \xe2\x82";
    assert_int_equal(o2d_json_append_string(&b, in, sizeof(in) - 1), O2D_OK);
    const char want[] = "\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9 \xef\xbf\xbd "
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80 "
                        "\xef\xbf\xbd\xef\xbf\xbd\"";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, sizeof(want) - 1);
    assert_int_equal(o2d_utf8_valid_prefix("ok\xc3", 3), 2);
    assert_int_equal(o2d_utf8_valid_prefix("\xc0\x80", 2), 0); /* overlong NUL */
    o2d_buf_cleanup(&b);
}

static void status_tables(void **state)
{
    (void)state;
    static const struct {
        int status;
        enum grpc_code grpc;
        int http;
        int retry;
    } want[] = {
        {O2D_OK, GRPC_OK, 200, 0},
        {O2D_ERR_INVALID, GRPC_INVALID_ARGUMENT, 400, 0},
        {O2D_ERR_TOO_LARGE, GRPC_RESOURCE_EXHAUSTED, 413, 0},
        {O2D_ERR_UNSUPPORTED, GRPC_UNIMPLEMENTED, 415, 0},
        {O2D_ERR_BUSY, GRPC_UNAVAILABLE, 503, 1},
        {O2D_ERR_NOMEM, GRPC_UNAVAILABLE, 503, 1},
        {O2D_ERR_NOT_FOUND, GRPC_UNIMPLEMENTED, 404, 0},
        {O2D_ERR_TIMEOUT, GRPC_DEADLINE_EXCEEDED, 408, 0},
        {O2D_ERR_SHUTDOWN, GRPC_UNAVAILABLE, 503, 1},
        {O2D_ERR_INTERNAL, GRPC_INTERNAL, 500, 0},
        {O2D_ERR_UNAUTHENTICATED, GRPC_UNAUTHENTICATED, 401, 0},
        {-12345, GRPC_INTERNAL, 500, 0},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(o2d_status_to_grpc(want[i].status), want[i].grpc);
        assert_int_equal(o2d_status_to_http(want[i].status), want[i].http);
        assert_int_equal(o2d_status_retry_after(want[i].status), want[i].retry);
    }
    assert_string_equal(grpc_code_name(GRPC_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(grpc_code_name(GRPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    assert_string_equal(grpc_code_name((enum grpc_code)99), "UNKNOWN");
}

static void answers_decode_back(void **state)
{
    (void)state;
    struct o2d_buf b;
    o2d_buf_init(&b, 4096);
    struct ingest_result res = {0};
    res.signal = OTLP_SIGNAL_TRACES;
    res.accepted = 5;
    /* full success: empty response, no partial_success */
    assert_int_equal(ingest_encode_response(&res, OTLP_ENC_PROTOBUF, &b), O2D_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(ingest_encode_response(&res, OTLP_ENC_JSON, &b), O2D_OK);
    assert_memory_equal(b.data, "{}", 2);
    o2d_buf_reset(&b);

    res.rejected = 2;
    res.reject_reason = "span trace_id must be 16 bytes and not all zero";
    assert_int_equal(ingest_encode_response(&res, OTLP_ENC_PROTOBUF, &b), O2D_OK);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, b.len, b.data);
    assert_non_null(r);
    assert_non_null(r->partial_success);
    assert_int_equal(r->partial_success->rejected_spans, 2);
    assert_string_equal(r->partial_success->error_message,
                        "2 spans rejected: span trace_id must be 16 bytes and not all zero");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r,
                                                                                             NULL);
    o2d_buf_reset(&b);
    res.signal = OTLP_SIGNAL_LOGS;
    assert_int_equal(ingest_encode_response(&res, OTLP_ENC_JSON, &b), O2D_OK);
    o2d_buf_append_byte(&b, 0);
    assert_string_equal((char *)b.data,
                        "{\"partialSuccess\":{\"rejectedLogRecords\":\"2\",\"errorMessage\":"
                        "\"2 log records rejected: span trace_id must be 16 bytes and not all "
                        "zero\"}}");
    o2d_buf_reset(&b);

    assert_int_equal(ingest_encode_status(GRPC_UNAVAILABLE, "busy", 3, OTLP_ENC_PROTOBUF, &b),
                     O2D_OK);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, b.len, b.data);
    assert_non_null(st);
    assert_int_equal(st->code, GRPC_UNAVAILABLE);
    assert_string_equal(st->message, "busy");
    assert_int_equal(st->n_details, 1);
    assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
    Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, st->details[0]->value.len,
                                                                 st->details[0]->value.data);
    assert_non_null(ri);
    assert_int_equal(ri->retry_delay->seconds, 3);
    google__rpc__retry_info__free_unpacked(ri, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    o2d_buf_reset(&b);
    assert_int_equal(ingest_encode_status(GRPC_INVALID_ARGUMENT, "bad \"x\"", 0, OTLP_ENC_JSON, &b),
                     O2D_OK);
    o2d_buf_append_byte(&b, 0);
    assert_string_equal((char *)b.data, "{\"code\":3,\"message\":\"bad \\\"x\\\"\"}");
    o2d_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_enforces_max),
        cmocka_unit_test(arena_aligns_limits_and_reuses),
        cmocka_unit_test(arena_packs_strings_between_aligned_allocations),
        cmocka_unit_test(arena_charges_the_thread_budget),
        cmocka_unit_test(json_strings_are_escaped_and_repaired),
        cmocka_unit_test(status_tables),
        cmocka_unit_test(answers_decode_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
