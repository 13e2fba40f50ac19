/*
 * test_llmobs_encode.c: the pure half of the LLM Observability exporter
 * (exporters/llmobs_exporter_int.h) and its destination on the delivery layer (llmobs_dest,
 * built by dlv_build_bodies). Each event is wrapped in the envelope Datadog's tracers send
 * ({"_dd.stage":"raw","_dd.tracer_version":...,"event_type":"span","spans":[event]}); events
 * are cut, in order, into JSON arrays of envelopes of at most 5 MiB (the body limit of
 * dd-trace-py, reference/llmobs.md 1.4), each body filled while the next event fits, each
 * event exactly once; an event that alone cannot fit is left out, counted and reported; an
 * allocation failure loses only what it counts. Bodies are parsed back with jansson, not with
 * our own code.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "datadog.h"
#include "llmobs_exporter.h"
#include "llmobs_exporter_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"

#define VERSION "otel2dd/9.9.9"

/* What the exporter puts in the destination's context (llmobs_exporter.c). */
static struct llmobs_wire wire_of(const char *key_header)
{
    struct llmobs_wire w;
    memset(&w, 0, sizeof(w));
    snprintf(w.tracer_version, sizeof(w.tracer_version), "%s", LLMOBS_TRACER_VERSION);
    snprintf(w.key_header, sizeof(w.key_header), "%s", key_header);
    return w;
}

/* An item holding the event {"span_id":"<id>","pad":"xxx..."} of exactly `len` bytes
 * (len >= 40). */
/* An event item as the exporter makes one (emit_event): the JSON written after room for the
 * item's fields, the storage adopted as the item. */
static struct dlv_item *make_event(unsigned id, size_t len)
{
    char *json = malloc(len);
    assert_non_null(json);
    char head[64];
    int h = snprintf(head, sizeof(head), "{\"span_id\":\"%u\",\"pad\":\"", id);
    assert_true(len >= (size_t)h + 2);
    memcpy(json, head, (size_t)h);
    memset(json + h, 'x', len - (size_t)h - 2);
    memcpy(json + len - 2, "\"}", 2);
    uint8_t *storage = o2d_malloc(DLV_ITEM_PREFIX + len);
    assert_non_null(storage);
    memcpy(storage + DLV_ITEM_PREFIX, json, len);
    struct dlv_item *it = dlv_item_adopt(storage, DLV_ITEM_PREFIX + len, 0, 1);
    assert_non_null(it);
    assert_int_equal(it->len, len);
    assert_int_equal(it->head_len, 0);
    assert_int_equal(it->count, 1);
    assert_int_equal(atomic_load(&it->refs), 0);
    assert_memory_equal(it->data, json, len);
    free(json);
    return it;
}

static void free_events(struct dlv_item **evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(evs[i]);
    }
}

#define SINK_MAX 64

/* What the builder handed out: the bodies (owned here) and the items it left out. */
struct sink {
    struct dlv_body *bodies[SINK_MAX];
    size_t n;
    const struct dlv_item *left[SINK_MAX];
    int left_reason[SINK_MAX];
    size_t n_left;
};

static void collect(void *ctx, struct dlv_body *body)
{
    struct sink *s = ctx;
    assert_true(s->n < SINK_MAX);
    s->bodies[s->n++] = body;
}

static void left_out(void *ctx, const struct dlv_item *it, int reason)
{
    struct sink *s = ctx;
    assert_true(s->n_left < SINK_MAX);
    s->left[s->n_left] = it;
    s->left_reason[s->n_left++] = reason;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        dlv_body_free(s->bodies[i]);
    }
    s->n = 0;
    s->n_left = 0;
}

static struct dlv_build build_of(struct llmobs_wire *w, size_t max_body, struct sink *s)
{
    struct dlv_build b = {
        .type = &llmobs_dest,
        .ctx = w,
        .max_body = max_body,
        .compression = DLV_COMPRESS_NONE,
        .emit = collect,
        .emit_ctx = s,
        .left_out = left_out,
    };
    return b;
}

/* Parses every body; checks each envelope, that the body lists the items it holds, and that
 * the events come out in order as given (ids first..first+count-1, skipping `skip` ids),
 * each exactly once. evs[id - first] is the item of event `id`. */
static void check_bodies(const struct sink *s, struct dlv_item *const *evs, unsigned first,
                         unsigned count, long skip, size_t max_body)
{
    unsigned want = first;
    for (size_t b = 0; b < s->n; b++) {
        const struct dlv_body *body = s->bodies[b];
        assert_true(body->len <= max_body);
        assert_int_equal(body->raw_len, body->len); /* not compressed */
        assert_int_equal(body->units, body->n);     /* one event an item */
        json_error_t err;
        json_t *arr = json_loadb((const char *)body->data, body->len, 0, &err);
        if (arr == NULL) {
            fail_msg("body %zu is not JSON: %s", b, err.text);
        }
        assert_true(json_is_array(arr));
        assert_int_equal(json_array_size(arr), body->n);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *env = json_array_get(arr, i);
            assert_true(json_is_object(env));
            assert_int_equal(json_object_size(env), 4);
            assert_string_equal(json_string_value(json_object_get(env, "_dd.stage")), "raw");
            assert_string_equal(json_string_value(json_object_get(env, "_dd.tracer_version")),
                                LLMOBS_TRACER_VERSION);
            assert_string_equal(json_string_value(json_object_get(env, "event_type")), "span");
            json_t *spans = json_object_get(env, "spans");
            assert_true(json_is_array(spans));
            assert_int_equal(json_array_size(spans), 1);
            if (skip >= 0 && want == (unsigned)skip) {
                want++;
            }
            assert_true(want < first + count);
            assert_ptr_equal(body->items[i], evs[want - first]);
            char id[16];
            snprintf(id, sizeof(id), "%u", want++);
            assert_string_equal(
                json_string_value(json_object_get(json_array_get(spans, 0), "span_id")), id);
        }
        json_decref(arr);
    }
    if (skip >= 0 && want == (unsigned)skip) {
        want++;
    }
    assert_int_equal(want, first + count);
}

/* The builder holds each item once for each body that carries it. */
static void check_holds(const struct sink *s, struct dlv_item *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned in = 0;
        for (size_t b = 0; b < s->n; b++) {
            for (size_t k = 0; k < s->bodies[b]->n; k++) {
                in += s->bodies[b]->items[k] == evs[i];
            }
        }
        assert_int_equal(atomic_load(&evs[i]->refs), in);
        atomic_store(&evs[i]->refs, 0);
    }
}

static void envelope_shape_and_size(void **state)
{
    (void)state;
    struct dlv_item *ev = make_event(7, 100);
    struct o2d_buf b;
    o2d_buf_init(&b, 4096);
    assert_int_equal(llmobs_exporter_append_envelope(&b, VERSION, ev->data, ev->len), O2D_OK);
    /* The size counts the "," or "]" that follows an envelope in a body. */
    assert_int_equal(llmobs_exporter_envelope_size(VERSION, ev->len), b.len + 1);
    const char want_head[] = "{\"_dd.stage\":\"raw\",\"_dd.tracer_version\":\"" VERSION
                             "\",\"event_type\":\"span\",\"spans\":[{\"span_id\":\"7\"";
    assert_memory_equal(b.data, want_head, sizeof(want_head) - 1);
    assert_memory_equal(b.data + b.len - 4, "\"}]}", 4);
    /* What the builder counts for an item is that size, with the context's version. */
    struct llmobs_wire w = wire_of("DD-API-KEY: k");
    assert_int_equal(llmobs_dest.item_cost(&w, ev),
                     llmobs_exporter_envelope_size(LLMOBS_TRACER_VERSION, ev->len));
    snprintf(w.tracer_version, sizeof(w.tracer_version), "%s", VERSION "-longer");
    assert_int_equal(llmobs_dest.item_cost(&w, ev),
                     llmobs_exporter_envelope_size(VERSION "-longer", ev->len));
    assert_int_equal(llmobs_dest.body_overhead, 1); /* the "[" */
    /* Past the buffer's maximum: refused, and the buffer is left as it was. */
    struct o2d_buf small;
    o2d_buf_init(&small, 50);
    assert_int_equal(o2d_buf_append_str(&small, "["), O2D_OK);
    assert_int_equal(llmobs_exporter_append_envelope(&small, VERSION, ev->data, ev->len),
                     O2D_ERR_TOO_LARGE);
    assert_int_equal(small.len, 1);
    o2d_buf_cleanup(&small);
    o2d_buf_cleanup(&b);
    dlv_item_free(ev);
}

static void one_body_when_it_fits(void **state)
{
    (void)state;
    struct dlv_item *evs[10];
    for (unsigned i = 0; i < 10; i++) {
        evs[i] = make_event(i + 1, 200 + i * 13);
    }
    struct llmobs_wire w = wire_of("DD-API-KEY: k");
    struct sink s = {.n = 0};
    struct dlv_build b = build_of(&w, LLMOBS_MAX_BODY_BYTES, &s);
    assert_int_equal(dlv_build_bodies(&b, evs, 10), O2D_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.bodies[0]->n, 10);
    assert_int_equal(s.bodies[0]->units, 10);
    assert_int_equal(b.too_large, 0);
    assert_int_equal(b.failed, 0);
    assert_int_equal(s.n_left, 0);
    size_t want = 1;
    for (unsigned i = 0; i < 10; i++) {
        want += llmobs_exporter_envelope_size(LLMOBS_TRACER_VERSION, evs[i]->len);
    }
    assert_int_equal(s.bodies[0]->len, want);
    check_bodies(&s, evs, 1, 10, -1, LLMOBS_MAX_BODY_BYTES);
    check_holds(&s, evs, 10);
    sink_free(&s);
    free_events(evs, 10);
}

static void nothing_to_send(void **state)
{
    (void)state;
    struct llmobs_wire w = wire_of("DD-API-KEY: k");
    struct sink s = {.n = 0};
    struct dlv_build b = build_of(&w, LLMOBS_MAX_BODY_BYTES, &s);
    assert_int_equal(dlv_build_bodies(&b, NULL, 0), O2D_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.n_left, 0);
    assert_int_equal(b.too_large, 0);
    assert_int_equal(b.failed, 0);
}

/* 23 events of about 1 MB: bodies under 5 MiB, each filled while the next event fits (the
 * next one would not have), every event once and in order. */
static void split_under_five_mib(void **state)
{
    (void)state;
    enum { N = 23 };
    struct dlv_item *evs[N];
    for (unsigned i = 0; i < N; i++) {
        evs[i] = make_event(i + 1, 900000 + (i * 37123) % 300000);
    }
    struct llmobs_wire w = wire_of("DD-API-KEY: k");
    struct sink s = {.n = 0};
    struct dlv_build b = build_of(&w, LLMOBS_MAX_BODY_BYTES, &s);
    assert_int_equal(dlv_build_bodies(&b, evs, N), O2D_OK);
    assert_true(s.n >= 5);
    assert_int_equal(b.too_large + b.failed, 0);
    assert_int_equal(s.n_left, 0);
    check_bodies(&s, evs, 1, N, -1, LLMOBS_MAX_BODY_BYTES);
    check_holds(&s, evs, N);
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) {
        k += s.bodies[i]->n;
        if (k < N) {
            size_t next = llmobs_exporter_envelope_size(LLMOBS_TRACER_VERSION, evs[k]->len);
            assert_true(s.bodies[i]->len + next > LLMOBS_MAX_BODY_BYTES);
        }
    }
    assert_int_equal(k, N);
    sink_free(&s);
    free_events(evs, N);
}

/* A body of exactly max_body bytes is one body; one byte more makes two. */
static void exact_limit(void **state)
{
    (void)state;
    size_t env0 = llmobs_exporter_envelope_size(LLMOBS_TRACER_VERSION, 0);
    const size_t max_body = 4096;
    /* Two events: 1 + (env0 + a) + (env0 + b) == max_body. */
    size_t a = 1000;
    size_t b_len = max_body - 1 - 2 * env0 - a;
    struct llmobs_wire w = wire_of("DD-API-KEY: k");
    for (int extra = 0; extra <= 1; extra++) {
        struct dlv_item *evs[2] = {make_event(1, a), make_event(2, b_len + extra)};
        struct sink s = {.n = 0};
        struct dlv_build b = build_of(&w, max_body, &s);
        assert_int_equal(dlv_build_bodies(&b, evs, 2), O2D_OK);
        assert_int_equal(s.n, extra ? 2 : 1);
        if (!extra) {
            assert_int_equal(s.bodies[0]->len, max_body);
        }
        assert_int_equal(b.too_large + b.failed, 0);
        check_bodies(&s, evs, 1, 2, -1, max_body);
        check_holds(&s, evs, 2);
        sink_free(&s);
        free_events(evs, 2);
    }
}

/* The largest event llmobs_span_write lets through (5,000,000 bytes) fits a body alone; one
 * that cannot fit even alone is left out, counted and reported, the others still go. */
static void too_large_skipped(void **state)
{
    (void)state;
    assert_true(1 + llmobs_exporter_envelope_size(LLMOBS_TRACER_VERSION, LLMOBS_MAX_EVENT_BYTES) <=
                LLMOBS_MAX_BODY_BYTES);
    struct dlv_item *evs[4] = {
        make_event(1, 300),
        make_event(2, LLMOBS_MAX_BODY_BYTES),
        make_event(3, LLMOBS_MAX_EVENT_BYTES),
        make_event(4, 300),
    };
    struct llmobs_wire w = wire_of("DD-API-KEY: k");
    struct sink s = {.n = 0};
    struct dlv_build b = build_of(&w, LLMOBS_MAX_BODY_BYTES, &s);
    assert_int_equal(dlv_build_bodies(&b, evs, 4), O2D_OK);
    assert_int_equal(b.too_large, 1);
    assert_int_equal(b.failed, 0);
    assert_int_equal(s.n_left, 1);
    assert_ptr_equal(s.left[0], evs[1]);
    assert_int_equal(s.left_reason[0], DLV_DROP_TOO_LARGE);
    /* Packing is next-fit in order: event 2 closes the body of event 1 before it is found
     * too large, so events 3 and 4 make a second body (the old first-fit builder put 1, 3
     * and 4 in one). */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.bodies[0]->n, 1);
    assert_int_equal(s.bodies[1]->n, 2);
    check_bodies(&s, evs, 1, 4, 2, LLMOBS_MAX_BODY_BYTES);
    check_holds(&s, evs, 4);
    sink_free(&s);
    free_events(evs, 4);
}

/* The n-th allocation fails, for every n until none does: what was emitted, plus what was
 * counted too large or failed, is every event once; what failed is reported as such and
 * is in no body. */
static void allocation_failures(void **state)
{
    (void)state;
    enum { N = 9 };
    const size_t max_body = 4 * 1024;
    struct dlv_item *evs[N];
    for (unsigned i = 0; i < N; i++) {
        evs[i] = make_event(i + 1, 1500);
    }
    struct llmobs_wire w = wire_of("DD-API-KEY: k");
    for (long fail = 0;; fail++) {
        struct sink s = {.n = 0};
        struct dlv_build b = build_of(&w, max_body, &s);
        o2d_alloc_fail_after(fail);
        int rv = dlv_build_bodies(&b, evs, N);
        long fails = o2d_alloc_failures();
        o2d_alloc_fail_after(-1);
        size_t emitted = 0;
        for (size_t i = 0; i < s.n; i++) {
            emitted += s.bodies[i]->n;
        }
        assert_int_equal(b.too_large, 0);
        assert_int_equal(emitted + b.too_large + b.failed, N);
        assert_int_equal(rv == O2D_OK, b.failed == 0);
        assert_int_equal(s.n_left, b.failed);
        for (size_t i = 0; i < s.n_left; i++) {
            assert_int_equal(s.left_reason[i], DLV_DROP_RETRIES_EXHAUSTED);
            assert_int_equal(atomic_load(&s.left[i]->refs), 0);
            for (size_t j = 0; j < i; j++) {
                assert_ptr_not_equal(s.left[i], s.left[j]);
            }
        }
        check_holds(&s, evs, N);
        if (rv == O2D_OK) {
            check_bodies(&s, evs, 1, N, -1, max_body);
        } else {
            assert_int_equal(rv, O2D_ERR_NOMEM);
        }
        sink_free(&s);
        if (fails == 0) {
            assert_int_equal(rv, O2D_OK);
            assert_int_equal(emitted, N);
            break;
        }
        assert_true(fail < 1000);
    }
    free_events(evs, N);
}

/* The API key's header (or the EVP proxy's) and the content type; nothing for an empty key
 * header. */
static void body_headers(void **state)
{
    (void)state;
    struct dlv_item *ev = make_event(1, 100);
    struct llmobs_wire w = wire_of("DD-API-KEY: secret");
    struct dlv_headers h;
    memset(&h, 0, sizeof(h));
    llmobs_dest.headers(&w, &ev, 1, &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.line[0], "DD-API-KEY: secret");
    assert_string_equal(h.line[1], "Content-Type: application/json");
    w = wire_of("");
    memset(&h, 0, sizeof(h));
    llmobs_dest.headers(&w, &ev, 1, &h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.line[0], "Content-Type: application/json");
    dlv_item_free(ev);
}

static void intake_base_url(void **state)
{
    (void)state;
    static struct datadog_config cfg;
    char out[DATADOG_URL_MAX];
    memset(&cfg, 0, sizeof(cfg));
    llmobs_exporter_intake_base(&cfg, out, sizeof(out));
    assert_string_equal(out, "https://llmobs-intake.datadoghq.com");
    snprintf(cfg.site, sizeof(cfg.site), "ap1.datadoghq.com");
    llmobs_exporter_intake_base(&cfg, out, sizeof(out));
    assert_string_equal(out, "https://llmobs-intake.ap1.datadoghq.com");
    snprintf(cfg.llmobs.endpoint, sizeof(cfg.llmobs.endpoint), "http://127.0.0.1:9/");
    llmobs_exporter_intake_base(&cfg, out, sizeof(out));
    assert_string_equal(out, "http://127.0.0.1:9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(envelope_shape_and_size),
        cmocka_unit_test(one_body_when_it_fits),
        cmocka_unit_test(nothing_to_send),
        cmocka_unit_test(split_under_five_mib),
        cmocka_unit_test(exact_limit),
        cmocka_unit_test(too_large_skipped),
        cmocka_unit_test(allocation_failures),
        cmocka_unit_test(body_headers),
        cmocka_unit_test(intake_base_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
