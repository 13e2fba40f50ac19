/*
 * test_llmobs_encode.c: the pure half of the LLM Observability exporter
 * (exporters/llmobs_exporter_int.h). Each event is wrapped in the envelope Datadog's tracers
 * send ({"_dd.stage":"raw","_dd.tracer_version":...,"event_type":"span","spans":[event]});
 * events are cut, in order, into JSON arrays of envelopes of at most 5 MiB (the body limit
 * of dd-trace-py, reference/llmobs.md 1.4), greedily, each event exactly once; an event that
 * alone cannot fit is skipped and counted; an allocation failure loses only what it says.
 * Bodies are parsed back with jansson, not with our own code.
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

#include "datadog.h"
#include "llmobs_exporter.h"
#include "llmobs_exporter_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"

#define VERSION "otel2dd/9.9.9"

/* An event {"span_id":"<id>","pad":"xxx..."} of exactly `len` bytes (len >= 40). */
static struct llmobs_exporter_event *make_event(unsigned id, size_t len)
{
    struct llmobs_exporter_event *ev = o2d_malloc(sizeof(*ev) + len + 1);
    assert_non_null(ev);
    ev->next = NULL;
    char head[64];
    int h = snprintf(head, sizeof(head), "{\"span_id\":\"%u\",\"pad\":\"", id);
    assert_true(len >= (size_t)h + 2);
    memcpy(ev->json, head, (size_t)h);
    memset(ev->json + h, 'x', len - (size_t)h - 2);
    memcpy(ev->json + len - 2, "\"}", 2);
    ev->json[len] = '\0';
    ev->len = len;
    return ev;
}

struct body {
    uint8_t *data;
    size_t len;
    size_t events;
};

struct sink {
    struct body bodies[64];
    size_t n;
};

static void collect(void *ctx, uint8_t *body, size_t len, size_t events)
{
    struct sink *s = ctx;
    assert_true(s->n < 64);
    s->bodies[s->n++] = (struct body){body, len, events};
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        o2d_free(s->bodies[i].data);
    }
    s->n = 0;
}

/* Parses every body; checks each envelope and that the events come out in order as given
 * (ids first..first+count-1, skipping `skip` ids), each exactly once. */
static void check_bodies(const struct sink *s, unsigned first, unsigned count, long skip,
                         size_t max_body)
{
    unsigned want = first;
    for (size_t b = 0; b < s->n; b++) {
        assert_true(s->bodies[b].len <= max_body);
        json_error_t err;
        json_t *arr = json_loadb((const char *)s->bodies[b].data, s->bodies[b].len, 0, &err);
        if (arr == NULL) {
            fail_msg("body %zu is not JSON: %s", b, err.text);
        }
        assert_true(json_is_array(arr));
        assert_int_equal(json_array_size(arr), s->bodies[b].events);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *env = json_array_get(arr, i);
            assert_true(json_is_object(env));
            assert_int_equal(json_object_size(env), 4);
            assert_string_equal(json_string_value(json_object_get(env, "_dd.stage")), "raw");
            assert_string_equal(json_string_value(json_object_get(env, "_dd.tracer_version")),
                                VERSION);
            assert_string_equal(json_string_value(json_object_get(env, "event_type")), "span");
            json_t *spans = json_object_get(env, "spans");
            assert_true(json_is_array(spans));
            assert_int_equal(json_array_size(spans), 1);
            if (skip >= 0 && want == (unsigned)skip) {
                want++;
            }
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

static void envelope_shape_and_size(void **state)
{
    (void)state;
    struct llmobs_exporter_event *ev = make_event(7, 100);
    struct o2d_buf b;
    o2d_buf_init(&b, 4096);
    assert_int_equal(llmobs_exporter_append_envelope(&b, VERSION, ev->json, ev->len), O2D_OK);
    /* The size counts the "," or "]" that follows an envelope in a body. */
    assert_int_equal(llmobs_exporter_envelope_size(VERSION, ev->len), b.len + 1);
    const char want_head[] = "{\"_dd.stage\":\"raw\",\"_dd.tracer_version\":\"" VERSION
                             "\",\"event_type\":\"span\",\"spans\":[{\"span_id\":\"7\"";
    assert_memory_equal(b.data, want_head, sizeof(want_head) - 1);
    assert_memory_equal(b.data + b.len - 4, "\"}]}", 4);
    /* Past the buffer's maximum: refused, and the buffer is left as it was. */
    struct o2d_buf small;
    o2d_buf_init(&small, 50);
    assert_int_equal(o2d_buf_append_str(&small, "["), O2D_OK);
    assert_int_equal(llmobs_exporter_append_envelope(&small, VERSION, ev->json, ev->len),
                     O2D_ERR_TOO_LARGE);
    assert_int_equal(small.len, 1);
    o2d_buf_cleanup(&small);
    o2d_buf_cleanup(&b);
    o2d_free(ev);
}

static void one_body_when_it_fits(void **state)
{
    (void)state;
    struct llmobs_exporter_event *evs[10];
    for (unsigned i = 0; i < 10; i++) {
        evs[i] = make_event(i + 1, 200 + i * 13);
    }
    struct sink s = {.n = 0};
    size_t too_large = 0, failed = 0;
    assert_int_equal(llmobs_exporter_build_bodies(VERSION, evs, 10, LLMOBS_MAX_BODY_BYTES, collect,
                                                  &s, &too_large, &failed),
                     O2D_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.bodies[0].events, 10);
    assert_int_equal(too_large, 0);
    assert_int_equal(failed, 0);
    size_t want = 1;
    for (unsigned i = 0; i < 10; i++) {
        want += llmobs_exporter_envelope_size(VERSION, evs[i]->len);
    }
    assert_int_equal(s.bodies[0].len, want);
    check_bodies(&s, 1, 10, -1, LLMOBS_MAX_BODY_BYTES);
    sink_free(&s);
    for (unsigned i = 0; i < 10; i++) {
        o2d_free(evs[i]);
    }
}

static void nothing_to_send(void **state)
{
    (void)state;
    struct sink s = {.n = 0};
    size_t too_large = 0, failed = 0;
    assert_int_equal(llmobs_exporter_build_bodies(VERSION, NULL, 0, LLMOBS_MAX_BODY_BYTES, collect,
                                                  &s, &too_large, &failed),
                     O2D_OK);
    assert_int_equal(s.n, 0);
}

/* 23 events of about 1 MB: bodies under 5 MiB, filled greedily (the next event would not
 * have fitted), every event once and in order. */
static void split_under_five_mib(void **state)
{
    (void)state;
    enum { N = 23 };
    struct llmobs_exporter_event *evs[N];
    for (unsigned i = 0; i < N; i++) {
        evs[i] = make_event(i + 1, 900000 + (i * 37123) % 300000);
    }
    struct sink s = {.n = 0};
    size_t too_large = 0, failed = 0;
    assert_int_equal(llmobs_exporter_build_bodies(VERSION, evs, N, LLMOBS_MAX_BODY_BYTES, collect,
                                                  &s, &too_large, &failed),
                     O2D_OK);
    assert_true(s.n >= 5);
    assert_int_equal(too_large + failed, 0);
    check_bodies(&s, 1, N, -1, LLMOBS_MAX_BODY_BYTES);
    size_t k = 0;
    for (size_t b = 0; b < s.n; b++) {
        k += s.bodies[b].events;
        if (k < N) {
            size_t next = llmobs_exporter_envelope_size(VERSION, evs[k]->len);
            assert_true(s.bodies[b].len + next > LLMOBS_MAX_BODY_BYTES);
        }
    }
    assert_int_equal(k, N);
    sink_free(&s);
    for (unsigned i = 0; i < N; i++) {
        o2d_free(evs[i]);
    }
}

/* A body of exactly max_body bytes is one body; one byte more makes two. */
static void exact_limit(void **state)
{
    (void)state;
    size_t env0 = llmobs_exporter_envelope_size(VERSION, 0);
    const size_t max_body = 4096;
    /* Two events: 1 + (env0 + a) + (env0 + b) == max_body. */
    size_t a = 1000;
    size_t b_len = max_body - 1 - 2 * env0 - a;
    for (int extra = 0; extra <= 1; extra++) {
        struct llmobs_exporter_event *evs[2] = {make_event(1, a), make_event(2, b_len + extra)};
        struct sink s = {.n = 0};
        size_t too_large = 0, failed = 0;
        assert_int_equal(llmobs_exporter_build_bodies(VERSION, evs, 2, max_body, collect, &s,
                                                      &too_large, &failed),
                         O2D_OK);
        assert_int_equal(s.n, extra ? 2 : 1);
        if (!extra) {
            assert_int_equal(s.bodies[0].len, max_body);
        }
        check_bodies(&s, 1, 2, -1, max_body);
        sink_free(&s);
        o2d_free(evs[0]);
        o2d_free(evs[1]);
    }
}

/* The largest event llmobs_span_write lets through (5,000,000 bytes) fits a body alone; one
 * that cannot fit even alone is skipped and counted, the others still go. */
static void too_large_skipped(void **state)
{
    (void)state;
    assert_true(1 + llmobs_exporter_envelope_size(VERSION, LLMOBS_MAX_EVENT_BYTES) <=
                LLMOBS_MAX_BODY_BYTES);
    struct llmobs_exporter_event *evs[4] = {
        make_event(1, 300),
        make_event(2, LLMOBS_MAX_BODY_BYTES),
        make_event(3, LLMOBS_MAX_EVENT_BYTES),
        make_event(4, 300),
    };
    struct sink s = {.n = 0};
    size_t too_large = 0, failed = 0;
    assert_int_equal(llmobs_exporter_build_bodies(VERSION, evs, 4, LLMOBS_MAX_BODY_BYTES, collect,
                                                  &s, &too_large, &failed),
                     O2D_OK);
    assert_int_equal(too_large, 1);
    assert_int_equal(failed, 0);
    assert_int_equal(s.n, 1);
    check_bodies(&s, 1, 4, 2, LLMOBS_MAX_BODY_BYTES);
    sink_free(&s);
    for (unsigned i = 0; i < 4; i++) {
        o2d_free(evs[i]);
    }
}

/* The n-th allocation fails: what was emitted plus what is counted failed is everything. */
static void allocation_failures(void **state)
{
    (void)state;
    enum { N = 9 };
    struct llmobs_exporter_event *evs[N];
    for (unsigned i = 0; i < N; i++) {
        evs[i] = make_event(i + 1, 1500);
    }
    for (long fail = 0; fail < 40; fail++) {
        struct sink s = {.n = 0};
        size_t too_large = 0, failed = 0;
        o2d_alloc_fail_after(fail);
        int rv = llmobs_exporter_build_bodies(VERSION, evs, N, 4 * 1024, collect, &s, &too_large,
                                              &failed);
        o2d_alloc_fail_after(-1);
        size_t emitted = 0;
        for (size_t b = 0; b < s.n; b++) {
            emitted += s.bodies[b].events;
        }
        assert_int_equal(emitted + failed, N);
        assert_int_equal(rv == O2D_OK, failed == 0);
        if (rv == O2D_OK) {
            check_bodies(&s, 1, N, -1, 4 * 1024);
        }
        sink_free(&s);
    }
    for (unsigned i = 0; i < N; i++) {
        o2d_free(evs[i]);
    }
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
        cmocka_unit_test(intake_base_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
