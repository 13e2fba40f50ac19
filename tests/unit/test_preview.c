/*
 * test_preview.c: the preview's store and APIs (collector/preview) without a server: the byte
 * bound and which trace goes first, a store busy with a page skipping (never waiting), captures
 * from several threads at once all kept, the export states
 * observers report, every allocation failing in turn during a capture, the 400s of bad query
 * parameters and ids, span names and attributes with markup coming back intact in valid JSON,
 * the per-attribute table, and the API key never in an answer.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "preview.h"
#include "preview_int.h"

static struct o2d_config cfg;

/* One OTLP/JSON request: `n` traces (ids from trace_base on), `spans` spans each, every span
 * with a `pad`-byte attribute; span names carry markup. */
static char *request_json(unsigned trace_base, unsigned n, unsigned spans, size_t pad,
                          const char *name)
{
    size_t cap = 4096 + (size_t)n * spans * (pad + 512);
    char *s = malloc(cap);
    char *padding = malloc(pad + 1);
    memset(padding, 'x', pad);
    padding[pad] = '\0';
    size_t o = (size_t)snprintf(s, cap,
                                "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                                "\"service.name\",\"value\":{\"stringValue\":\"svc\"}}]},"
                                "\"scopeSpans\":[{\"spans\":[");
    for (unsigned t = 0; t < n; t++) {
        for (unsigned k = 0; k < spans; k++) {
            char parent[64] = "";
            if (k > 0) {
                snprintf(parent, sizeof(parent), "\"parentSpanId\":\"%016x\",",
                         (t + trace_base) * 100 + 1);
            }
            o += (size_t)snprintf(
                s + o, cap - o,
                "%s{\"traceId\":\"%032x\",\"spanId\":\"%016x\",%s\"name\":\"%s\","
                "\"kind\":2,\"startTimeUnixNano\":\"1700000000000000000\","
                "\"endTimeUnixNano\":\"1700000000005000000\",\"attributes\":["
                "{\"key\":\"pad\",\"value\":{\"stringValue\":\"%s\"}},"
                "{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}},"
                "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}}]}",
                t || k ? "," : "", trace_base + t, (t + trace_base) * 100 + k + 1, parent, name,
                padding);
        }
    }
    snprintf(s + o, cap - o, "]}]}]}");
    free(padding);
    return s;
}

/* Decodes json into req (in a): fails the test when it does not decode. */
static void decode(struct o2d_arena *a, const char *json, struct otlp_request *req, uint64_t id)
{
    const char *reason = NULL;
    int rv = otlp_decode(a, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON, (const uint8_t *)json, strlen(json),
                         req, &reason);
    if (rv != O2D_OK) {
        fail_msg("decode: %s", reason != NULL ? reason : "?");
    }
    req->id = id;
}

static void capture(struct preview *pv, unsigned trace_base, unsigned n, unsigned spans, size_t pad,
                    const char *name, uint64_t id)
{
    struct o2d_arena a;
    o2d_arena_init(&a, 256u << 20);
    char *json = request_json(trace_base, n, spans, pad, name);
    struct otlp_request req;
    decode(&a, json, &req, id);
    preview_capture(pv, &req);
    free(json);
    o2d_arena_cleanup(&a);
}

/* ---- a query for preview_api ---- */

struct fake_query {
    const char *names[8];
    const char *values[8];
    int n;
};

static const char *fq_get(void *ctx, const char *name)
{
    struct fake_query *q = ctx;
    for (int i = 0; i < q->n; i++) {
        if (strcmp(q->names[i], name) == 0) {
            return q->values[i];
        }
    }
    return NULL;
}

static int fq_each(void *ctx, void (*fn)(void *arg, const char *name), void *arg)
{
    struct fake_query *q = ctx;
    for (int i = 0; i < q->n; i++) {
        fn(arg, q->names[i]);
    }
    return q->n;
}

/* GET path?k=v: returns the status; *out the parsed JSON (caller decrefs) when out != NULL. */
static unsigned int call(struct preview *pv, const char *path, struct fake_query *fq, json_t **out)
{
    struct fake_query none = {0};
    struct preview_query q = {fq_get, fq_each, fq != NULL ? fq : &none};
    uint8_t *body = NULL;
    size_t len = 0;
    const char *ctype = NULL;
    unsigned int code = preview_api(pv, path, &q, &body, &len, &ctype);
    assert_non_null(body);
    json_error_t e;
    json_t *j = json_loadb((const char *)body, len, 0, &e);
    if (j == NULL) {
        fail_msg("%s: not JSON (%s): %.*s", path, e.text, (int)(len < 300 ? len : 300), body);
    }
    if (out != NULL) {
        *out = j;
    } else {
        json_decref(j);
    }
    o2d_free(body);
    return code;
}

static int setup(void **state)
{
    (void)state;
    o2d_config_defaults(&cfg);
    return 0;
}

/* ---- the store ---- */

static void test_bound_and_eviction(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 64 * 1024;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    /* trace 1 first, then 2..200: each about 1.5 KiB */
    capture(pv, 1, 1, 1, 1000, "first", 1);
    for (unsigned t = 2; t <= 200; t++) {
        capture(pv, t, 1, 1, 1000, "span", t);
        struct preview_stats st;
        preview_stats(pv, &st);
        assert_true(st.bytes <= st.max_bytes);
    }
    struct preview_stats st;
    preview_stats(pv, &st);
    assert_int_equal(st.spans_captured, 200);
    assert_true(st.evicted_traces > 0);
    assert_true(st.traces > 10);
    assert_int_equal(st.traces + st.evicted_traces, 200);
    /* the newest is there, the oldest went first */
    assert_int_equal(call(pv, "/api/traces/000000000000000000000000000000c8", NULL, NULL), 200);
    assert_int_equal(call(pv, "/api/traces/00000000000000000000000000000001", NULL, NULL), 404);
    assert_int_equal(call(pv, "/api/traces/00000000000000000000000000000002", NULL, NULL), 404);
    /* a piece larger than the whole bound is not kept, and nothing is evicted for it */
    uint64_t evicted = st.evicted_traces;
    capture(pv, 500, 1, 1, 70 * 1024, "huge", 500);
    preview_stats(pv, &st);
    assert_int_equal(st.skipped_large, 1);
    assert_int_equal(st.evicted_traces, evicted);
    preview_free(pv);
}

static void test_update_keeps_trace(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 16 * 1024;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    capture(pv, 1, 1, 1, 500, "a", 1);
    for (unsigned t = 2; t <= 60; t++) {
        capture(pv, t, 1, 1, 500, "b", t);
        capture(pv, 1, 1, 1, 10, "a again", 1000 + t); /* trace 1 keeps being updated */
    }
    json_t *j = NULL;
    assert_int_equal(call(pv, "/api/traces/00000000000000000000000000000001", NULL, &j), 200);
    json_decref(j);
    preview_free(pv);
}

static void test_busy_store_skips(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 1 << 20;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    atomic_fetch_add(&pv->readers, 1); /* a page being served */
    pthread_mutex_lock(&pv->mu);
    capture(pv, 1, 2, 3, 10, "x", 1);
    pthread_mutex_unlock(&pv->mu);
    atomic_fetch_sub(&pv->readers, 1);
    struct preview_stats st;
    preview_stats(pv, &st);
    assert_int_equal(st.skipped_busy, 1);
    assert_int_equal(st.traces, 0);
    capture(pv, 1, 2, 3, 10, "x", 2);
    preview_stats(pv, &st);
    assert_int_equal(st.traces, 2);
    assert_int_equal(st.spans_captured, 6);
    preview_free(pv);
}

struct capturer {
    struct preview *pv;
    unsigned base;
};

static void *capture_main(void *arg)
{
    struct capturer *c = arg;
    for (unsigned i = 0; i < 50; i++) {
        capture(c->pv, c->base + i * 4, 4, 5, 50, "t", c->base + i);
    }
    return NULL;
}

/* Captures on four threads at once wait for each other: every span is kept. */
static void test_concurrent_captures(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 64 << 20;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    pthread_t th[4];
    struct capturer c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct capturer){pv, 1 + (unsigned)i * 1000};
        assert_int_equal(pthread_create(&th[i], NULL, capture_main, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    struct preview_stats st;
    preview_stats(pv, &st);
    assert_int_equal(st.skipped_busy, 0);
    assert_int_equal(st.spans_captured, 4 * 50 * 4 * 5);
    assert_int_equal(st.traces, 4 * 50 * 4);
    preview_free(pv);
}

static void test_capture_allocation_failures(void **state)
{
    (void)state;
    cfg.preview_max_bytes = 1 << 20;
    struct o2d_arena a;
    o2d_arena_init(&a, 64u << 20);
    char *json = request_json(1, 3, 4, 20, "n");
    struct otlp_request req;
    decode(&a, json, &req, 7);
    for (long n = 0;; n++) {
        struct preview *pv = NULL;
        assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
        o2d_alloc_fail_after(n);
        preview_capture(pv, &req);
        long failures = o2d_alloc_failures();
        o2d_alloc_fail_after(-1);
        struct preview_stats st;
        preview_stats(pv, &st);
        preview_free(pv);
        if (failures == 0) {
            assert_int_equal(st.traces, 3);
            break;
        }
        assert_true(st.traces < 3 || st.spans_captured == 12);
    }
    free(json);
    o2d_arena_cleanup(&a);
}

/* ---- export states ---- */

static void test_export_states(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 1 << 20;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5), "dry run");
    cfg.datadog.enabled = 1;
    cfg.datadog.traces_enabled = 1;
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5), "unknown");
    struct dlv_event ev = {
        .dest = "datadog_traces", .item_id = 1, .origin = 5, .units = 3, .state = DLV_QUEUED};
    preview_observe(pv, &ev);
    ev.item_id = 2;
    preview_observe(pv, &ev);
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5), "queued");
    ev.state = DLV_SENT;
    ev.attempts = 1;
    preview_observe(pv, &ev);
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5), "queued"); /* one of two */
    ev.item_id = 1;
    ev.state = DLV_RETRYING; /* item 1's first attempt failed: it is being retried */
    preview_observe(pv, &ev);
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5), "retrying");
    ev.state = DLV_SENT;
    ev.item_id = 1;
    ev.attempts = 3;
    preview_observe(pv, &ev);
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5), "sent after retries");
    /* a later request in the same slot: the earlier one is unknown now */
    ev = (struct dlv_event){.dest = "datadog_traces",
                            .item_id = 9,
                            .origin = 5 + PV_STATE_SLOTS,
                            .units = 1,
                            .state = DLV_QUEUED};
    preview_observe(pv, &ev);
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5), "unknown");
    ev.state = DLV_DROPPED;
    ev.reason = DLV_DROP_REJECTED_4XX;
    ev.attempts = 1;
    preview_observe(pv, &ev);
    assert_string_equal(pv_state_word(pv, PV_DEST_TRACES, 5 + PV_STATE_SLOTS), "dropped");
    struct o2d_buf b;
    o2d_buf_init(&b, 4096);
    assert_int_equal(pv_state_json(pv, PV_DEST_TRACES, 5 + PV_STATE_SLOTS, &b), O2D_OK);
    assert_non_null(strstr((const char *)b.data, "\"drop_reason\":\"rejected_4xx\""));
    o2d_buf_cleanup(&b);
    cfg.datadog.enabled = 0;
    preview_free(pv);
}

/* LLM Obs events: queued by the trace buffer's tick (origin 0), known by item id. */
static void test_llmobs_event_states(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 1 << 20;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    uint8_t tid[16], other[16];
    for (int i = 0; i < 16; i++) {
        tid[i] = (uint8_t)(0xa0 + i);
        other[i] = (uint8_t)(0xa0 + i);
    }
    other[15] ^= 1;
    assert_string_equal(pv_llm_state_word(pv, tid, 0x1234), "dry run: not sent");
    assert_string_equal(pv_llm_trace_word(pv, tid), "dry run: not sent");
    cfg.datadog.enabled = 1;
    cfg.datadog.llmobs.enabled = 1;
    const char *none = "not queued yet (in the trace buffer) or forgotten";
    assert_string_equal(pv_llm_state_word(pv, tid, 0x1234), none);
    preview_llmobs_queued(pv, 7, tid, 0x1234);
    preview_llmobs_queued(pv, 8, tid, 0x5678);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x1234), "queued");
    assert_string_equal(pv_llm_state_word(pv, other, 0x1234), none); /* another trace */
    assert_string_equal(pv_llm_trace_word(pv, tid), "queued");
    assert_string_equal(pv_llm_trace_word(pv, other), "not queued yet");
    /* the delivery layer's events on the llmobs destination, by item id */
    struct dlv_event ev = {
        .dest = "llmobs", .item_id = 7, .origin = 0, .units = 1, .state = DLV_QUEUED};
    preview_observe(pv, &ev);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x1234), "queued");
    ev.state = DLV_RETRYING; /* two attempts failed so far */
    ev.attempts = 2;
    preview_observe(pv, &ev);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x1234), "retrying");
    assert_string_equal(pv_llm_trace_word(pv, tid), "queued");
    struct o2d_buf rb;
    o2d_buf_init(&rb, 4096);
    assert_int_equal(pv_llm_state_json(pv, tid, 0x1234, &rb), O2D_OK);
    assert_int_equal(o2d_buf_append(&rb, (const uint8_t *)"", 1), O2D_OK);
    assert_string_equal((const char *)rb.data,
                        "{\"state\":\"retrying\",\"item_id\":7,\"retries\":2}");
    o2d_buf_cleanup(&rb);
    ev.state = DLV_SENT;
    ev.attempts = 3;
    preview_observe(pv, &ev);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x1234), "sent after retries");
    assert_string_equal(pv_llm_trace_word(pv, tid), "queued"); /* 8 is still queued */
    ev.item_id = 8;
    ev.attempts = 1;
    ev.state = DLV_DROPPED;
    ev.reason = DLV_DROP_REJECTED_4XX;
    ev.dest = "datadog_traces"; /* another destination's item 8: not this one */
    preview_observe(pv, &ev);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x5678), "queued");
    ev.dest = "llmobs";
    preview_observe(pv, &ev);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x5678), "dropped");
    assert_string_equal(pv_llm_trace_word(pv, tid), "dropped");
    ev.item_id = 99; /* never told of: nothing changes */
    ev.state = DLV_SENT;
    preview_observe(pv, &ev);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x5678), "dropped");
    struct o2d_buf b;
    o2d_buf_init(&b, 4096);
    assert_int_equal(pv_llm_state_json(pv, tid, 0x1234, &b), O2D_OK);
    assert_int_equal(o2d_buf_append(&b, (const uint8_t *)"", 1), O2D_OK);
    assert_string_equal((const char *)b.data,
                        "{\"state\":\"sent after retries\",\"item_id\":7,\"retries\":2}");
    o2d_buf_reset(&b);
    assert_int_equal(pv_llm_state_json(pv, tid, 0x5678, &b), O2D_OK);
    assert_int_equal(o2d_buf_append(&b, (const uint8_t *)"", 1), O2D_OK);
    assert_string_equal(
        (const char *)b.data,
        "{\"state\":\"dropped\",\"item_id\":8,\"retries\":0,\"drop_reason\":\"rejected_4xx\"}");
    /* the same span queued again later (a newer item): the newest item answers */
    preview_llmobs_queued(pv, 20, tid, 0x5678);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x5678), "queued");
    /* bounded: a later item in the same slot forgets the older one */
    assert_int_equal(atomic_load(&pv->llm_forgotten), 0);
    preview_llmobs_queued(pv, 7 + PV_LLM_SLOTS, other, 0x9999);
    assert_int_equal(atomic_load(&pv->llm_forgotten), 1);
    assert_string_equal(pv_llm_state_word(pv, tid, 0x1234), none);
    assert_string_equal(pv_llm_state_word(pv, other, 0x9999), "queued");
    ev.item_id = 7; /* a late event of the forgotten item changes nothing */
    ev.state = DLV_DROPPED;
    preview_observe(pv, &ev);
    assert_string_equal(pv_llm_state_word(pv, other, 0x9999), "queued");
    o2d_buf_cleanup(&b);
    cfg.datadog.enabled = 0;
    cfg.datadog.llmobs.enabled = 0;
    preview_free(pv);
}

/* ---- the APIs ---- */

static void test_bad_parameters(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 1 << 20;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    capture(pv, 1, 1, 2, 10, "x", 1);
    static const struct {
        const char *path, *name, *value;
    } bad[] = {
        {"/api/traces", "limit", "0"},
        {"/api/traces", "limit", "501"},
        {"/api/traces", "limit", "1e3"},
        {"/api/traces", "limit", ""},
        {"/api/traces", "error", "yes"},
        {"/api/traces", "nope", "1"},
        {"/api/status", "x", "1"},
        {"/api/lints", "x", "1"},
        {"/api/traces/00000000000000000000000000000001", "x", "1"},
        {"/api/traces/0000000000000000000000000000001", NULL, NULL},
        {"/api/traces/0000000000000000000000000000000G", NULL, NULL},
        {"/api/traces/000000000000000000000000000000001", NULL, NULL},
        {"/api/traces/00000000000000000000000000000001/spans/65", NULL, NULL},
        {"/api/traces/00000000000000000000000000000001/spans/000000000000006Z", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fake_query q = {{bad[i].name}, {bad[i].value}, bad[i].name != NULL};
        unsigned int code = call(pv, bad[i].path, &q, NULL);
        if (code != 400) {
            fail_msg("%s %s=%s: %u", bad[i].path, bad[i].name ? bad[i].name : "",
                     bad[i].value ? bad[i].value : "", code);
        }
    }
    char longv[300];
    memset(longv, 'q', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    struct fake_query q = {{"q"}, {longv}, 1};
    assert_int_equal(call(pv, "/api/traces", &q, NULL), 400);
    assert_int_equal(call(pv, "/api/nothing", NULL, NULL), 404);
    assert_int_equal(
        call(pv, "/api/traces/00000000000000000000000000000001/spans/0000000000000099", NULL, NULL),
        404);
    struct fake_query ok = {{"limit", "error", "service"}, {"1", "false", "svc"}, 3};
    json_t *j = NULL;
    assert_int_equal(call(pv, "/api/traces", &ok, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "traces")), 1);
    json_decref(j);
    preview_free(pv);
}

static void test_markup_and_attributes(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 1 << 20;
    snprintf(cfg.datadog.api_key, sizeof(cfg.datadog.api_key), "%s", "secret-key-0123456789abcdef");
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    const char *name = "<img src=x onerror=alert(1)> \\\"quoted\\\" secret-key-0123456789abcdef";
    capture(pv, 1, 1, 1, 10, name, 1);
    json_t *j = NULL;
    assert_int_equal(call(pv, "/api/traces", NULL, &j), 200);
    const char *root =
        json_string_value(json_object_get(json_array_get(json_object_get(j, "traces"), 0), "root"));
    assert_non_null(root);
    assert_string_equal(root,
                        "<img src=x onerror=alert(1)> \"quoted\" ***************************");
    json_decref(j);
    assert_int_equal(
        call(pv, "/api/traces/00000000000000000000000000000001/spans/0000000000000065", NULL, &j),
        200);
    /* the table: pad became a tag, the status code a metric, the method http.method */
    json_t *rows = json_object_get(j, "attributes");
    int seen_tag = 0, seen_metric = 0, seen_renamed = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *attr = json_string_value(json_object_get(r, "attribute"));
        json_t *first = json_array_get(json_object_get(r, "apm"), 0);
        const char *what = json_string_value(json_object_get(first, "what"));
        const char *target = json_string_value(json_object_get(first, "target"));
        if (attr == NULL || what == NULL || target == NULL) {
            continue;
        }
        seen_tag |= strcmp(attr, "pad") == 0 && strcmp(what, "tag") == 0;
        seen_metric |= strcmp(attr, "http.response.status_code") == 0 &&
                       strcmp(what, "metric") == 0 && strcmp(target, "http.status_code") == 0;
        seen_renamed |=
            strcmp(attr, "http.request.method") == 0 && strcmp(target, "http.method") == 0;
    }
    assert_true(seen_tag);
    assert_true(seen_metric);
    assert_true(seen_renamed);
    /* the APM column is the translated span */
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "apm"), "service")),
                        "svc");
    assert_true(json_is_null(json_object_get(j, "llmobs")));
    json_decref(j);
    cfg.datadog.api_key[0] = '\0';
    preview_free(pv);
}

/* A chain of 3,000 spans (each the parent of the next, sent in reverse), two spans that are
 * each other's parent, and one whose parent never came: the waterfall holds them all, the
 * root first, without recursion. */
static void test_waterfall_shapes(void **state)
{
    (void)state;
    struct preview *pv = NULL;
    cfg.preview_max_bytes = 8 << 20;
    assert_int_equal(preview_new(&pv, &cfg), O2D_OK);
    size_t cap = 4u << 20;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
    const unsigned n = 3000;
    for (unsigned i = n; i >= 1; i--) {
        char parent[64] = "";
        if (i > 1) {
            snprintf(parent, sizeof(parent), "\"parentSpanId\":\"%016x\",", i - 1);
        }
        o += (size_t)snprintf(s + o, cap - o,
                              "%s{\"traceId\":\"%032x\",\"spanId\":\"%016x\",%s\"name\":\"s%u\","
                              "\"startTimeUnixNano\":\"%u\",\"endTimeUnixNano\":\"%u\"}",
                              i == n ? "" : ",", 9, i, parent, i, 1000 + i, 100000 - i);
    }
    static const char tail[] =
        ",{\"traceId\":\"00000000000000000000000000000009\",\"spanId\":\"000000000000a001\","
        "\"parentSpanId\":\"000000000000a002\",\"name\":\"c1\"},"
        "{\"traceId\":\"00000000000000000000000000000009\",\"spanId\":\"000000000000a002\","
        "\"parentSpanId\":\"000000000000a001\",\"name\":\"c2\"},"
        "{\"traceId\":\"00000000000000000000000000000009\",\"spanId\":\"000000000000b001\","
        "\"parentSpanId\":\"000000000000b000\",\"name\":\"orphan\",\"startTimeUnixNano\":\"9000\"}]"
        "}]}]}";
    snprintf(s + o, cap - o, "%s", tail);
    struct o2d_arena a;
    o2d_arena_init(&a, 256u << 20);
    struct otlp_request req;
    decode(&a, s, &req, 1);
    preview_capture(pv, &req);
    o2d_arena_cleanup(&a);
    free(s);
    json_t *j = NULL;
    assert_int_equal(call(pv, "/api/traces/00000000000000000000000000000009", NULL, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "spans_held")), n + 3);
    assert_int_equal(json_integer_value(json_object_get(j, "spans_shown")), n + 3);
    json_t *rows = json_object_get(j, "spans");
    assert_int_equal(json_array_size(rows), n + 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "name")), "s1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "name")), "s2");
    int orphan_marked = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "name")), "orphan") == 0) {
            orphan_marked = json_is_true(json_object_get(r, "orphan"));
        }
    }
    assert_true(orphan_marked);
    json_decref(j);
    preview_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_bound_and_eviction, setup),
        cmocka_unit_test_setup(test_update_keeps_trace, setup),
        cmocka_unit_test_setup(test_busy_store_skips, setup),
        cmocka_unit_test_setup(test_concurrent_captures, setup),
        cmocka_unit_test_setup(test_capture_allocation_failures, setup),
        cmocka_unit_test_setup(test_export_states, setup),
        cmocka_unit_test_setup(test_llmobs_event_states, setup),
        cmocka_unit_test_setup(test_bad_parameters, setup),
        cmocka_unit_test_setup(test_markup_and_attributes, setup),
        cmocka_unit_test_setup(test_waterfall_shapes, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
