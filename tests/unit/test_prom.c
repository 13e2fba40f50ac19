/*
 * test_prom.c: the Prometheus text writer (collector/servers/prom.c): HELP/TYPE lines, label value
 * escaping, number formatting, cumulative histogram buckets with +Inf, _sum and _count, the
 * buffer's bound and failed allocations; then the receivers' counters as ingest writes them
 * after known requests (collector/receivers/ingest.c), through a real pipeline with the debug
 * exporter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "ingest.h"
#include "metrics_server.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "pipeline.h"
#include "prom.h"

/* The writer's text as a NUL-terminated string (owned by the test). */
static char *text_of(struct prom_writer *w)
{
    char *s = malloc(w->buf.len + 1);
    assert_non_null(s);
    if (w->buf.len > 0) {
        memcpy(s, w->buf.data, w->buf.len);
    }
    s[w->buf.len] = '\0';
    return s;
}

static void family_and_samples(void **state)
{
    (void)state;
    struct prom_writer w;
    prom_writer_init(&w, 4096);
    prom_family(&w, "x_total", PROM_COUNTER, "Things.");
    struct prom_label l[] = {{"a", "1"}, {"b", "two"}};
    prom_sample_u64(&w, "x_total", l, 2, 18446744073709551615ull);
    prom_sample_u64(&w, "x_total", NULL, 0, 0);
    prom_family(&w, "g", PROM_GAUGE, "A gauge.");
    prom_sample_f64(&w, "g", NULL, 0, 0.1);
    prom_sample_f64(&w, "g", NULL, 0, 1795508047.513);
    prom_sample_f64(&w, "g", NULL, 0, 1.0 / 3.0);
    prom_sample_f64(&w, "g", NULL, 0, 1.0 / 0.0);
    prom_sample_f64(&w, "g", NULL, 0, -1.0 / 0.0);
    prom_sample_f64(&w, "g", NULL, 0, 0.0 / 0.0);
    assert_int_equal(prom_writer_status(&w), O2D_OK);
    char *s = text_of(&w);
    assert_string_equal(s, "# HELP x_total Things.\n"
                           "# TYPE x_total counter\n"
                           "x_total{a=\"1\",b=\"two\"} 18446744073709551615\n"
                           "x_total 0\n"
                           "# HELP g A gauge.\n"
                           "# TYPE g gauge\n"
                           "g 0.1\n"
                           "g 1795508047.513\n"
                           "g 0.33333333333333331\n"
                           "g +Inf\n"
                           "g -Inf\n"
                           "g NaN\n");
    free(s);
    prom_writer_cleanup(&w);
}

static void label_values_and_help_are_escaped(void **state)
{
    (void)state;
    struct prom_writer w;
    prom_writer_init(&w, 4096);
    prom_family(&w, "m", PROM_GAUGE, "back\\slash \"quoted\"\nsecond line");
    struct prom_label l[] = {{"v", "a\\b\"c\nd"}, {"e", ""}, {"n", NULL}};
    prom_sample_u64(&w, "m", l, 3, 7);
    char *s = text_of(&w);
    /* HELP escapes backslash and newline only; label values the double quote as well. */
    assert_string_equal(s, "# HELP m back\\\\slash \"quoted\"\\nsecond line\n"
                           "# TYPE m gauge\n"
                           "m{v=\"a\\\\b\\\"c\\nd\",e=\"\",n=\"\"} 7\n");
    free(s);
    prom_writer_cleanup(&w);

    struct o2d_buf b;
    o2d_buf_init(&b, 4);
    assert_int_equal(prom_escape_label_value(&b, "\"\"\""), O2D_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0); /* left as it was */
    o2d_buf_cleanup(&b);
}

static void histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    struct prom_writer w;
    prom_writer_init(&w, 4096);
    const double bounds[] = {0.0005, 0.1, 2.5};
    const uint64_t counts[] = {2, 0, 3, 4}; /* per bucket; the last is above 2.5 */
    struct prom_label l[] = {{"transport", "grpc"}};
    prom_family(&w, "d_seconds", PROM_HISTOGRAM, "Durations.");
    prom_histogram(&w, "d_seconds", l, 1, bounds, counts, 3, 12.25);
    prom_histogram(&w, "d_seconds", NULL, 0, bounds, (const uint64_t[]){0, 0, 0, 0}, 3, 0);
    char *s = text_of(&w);
    assert_string_equal(s, "# HELP d_seconds Durations.\n"
                           "# TYPE d_seconds histogram\n"
                           "d_seconds_bucket{transport=\"grpc\",le=\"0.0005\"} 2\n"
                           "d_seconds_bucket{transport=\"grpc\",le=\"0.1\"} 2\n"
                           "d_seconds_bucket{transport=\"grpc\",le=\"2.5\"} 5\n"
                           "d_seconds_bucket{transport=\"grpc\",le=\"+Inf\"} 9\n"
                           "d_seconds_sum{transport=\"grpc\"} 12.25\n"
                           "d_seconds_count{transport=\"grpc\"} 9\n"
                           "d_seconds_bucket{le=\"0.0005\"} 0\n"
                           "d_seconds_bucket{le=\"0.1\"} 0\n"
                           "d_seconds_bucket{le=\"2.5\"} 0\n"
                           "d_seconds_bucket{le=\"+Inf\"} 0\n"
                           "d_seconds_sum 0\n"
                           "d_seconds_count 0\n");
    free(s);
    prom_writer_cleanup(&w);
}

static void bound_is_kept_and_first_error_sticks(void **state)
{
    (void)state;
    /* Growing sample by sample, the text stops at the bound and stays a prefix of what an
     * unbounded writer makes. */
    struct prom_writer big;
    prom_writer_init(&big, 1 << 20);
    struct prom_writer w;
    prom_writer_init(&w, 300);
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        struct prom_label l[] = {{"i", v}};
        prom_sample_u64(&w, "a_metric_with_a_long_name", l, 1, (uint64_t)i);
        prom_sample_u64(&big, "a_metric_with_a_long_name", l, 1, (uint64_t)i);
        assert_true(w.buf.len <= 300);
    }
    assert_int_equal(prom_writer_status(&w), O2D_ERR_TOO_LARGE);
    assert_int_equal(prom_writer_status(&big), O2D_OK);
    assert_true(w.buf.len > 200);
    assert_memory_equal(w.buf.data, big.buf.data, w.buf.len);
    size_t len = w.buf.len;
    prom_family(&w, "b", PROM_GAUGE, "x"); /* no-ops from now on */
    prom_sample_u64(&w, "b", NULL, 0, 1);
    assert_int_equal(w.buf.len, len);
    prom_writer_cleanup(&w);
    prom_writer_cleanup(&big);

    /* A failed allocation is kept as well, and nothing leaks (ASan). */
    for (long n = 0; n < 3; n++) {
        prom_writer_init(&w, 1 << 20);
        o2d_alloc_fail_after(n);
        for (int i = 0; i < 2000; i++) {
            prom_sample_u64(&w, "a_metric_with_a_long_name", NULL, 0, (uint64_t)i);
        }
        o2d_alloc_fail_after(-1);
        assert_int_equal(prom_writer_status(&w), O2D_ERR_NOMEM);
        prom_writer_cleanup(&w);
    }
}

/* Whether `line` (a whole line) is in text. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return 1;
        }
    }
    return 0;
}

static void ingest_counts_what_it_answered(void **state)
{
    (void)state;
    struct o2d_config cfg;
    o2d_config_defaults(&cfg);
    cfg.debug_verbosity = O2D_DEBUG_QUIET;
    struct pipeline *p = NULL;
    assert_int_equal(pipeline_new(&p, &cfg), O2D_OK);
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, pipeline_ingest_submit, p, 1 << 20), O2D_OK);

    static const char two_spans[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
        "\"name\":\"a\",\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"},"
        "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
        "\"name\":\"b\",\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"}]}]}]}";
    struct ingest_result res;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ingest_request(ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON,
                                        O2D_COMP_NONE, (const uint8_t *)two_spans,
                                        strlen(two_spans), 1 << 20, &res),
                         O2D_OK);
    }
    assert_int_equal(ingest_request(ing, O2D_TRANSPORT_GRPC, OTLP_SIGNAL_LOGS, OTLP_ENC_PROTOBUF,
                                    O2D_COMP_NONE, (const uint8_t *)"\xff\xff", 2, 1 << 20, &res),
                     O2D_ERR_INVALID);
    assert_int_equal(ingest_request(ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON,
                                    O2D_COMP_NONE, (const uint8_t *)two_spans, strlen(two_spans),
                                    10, &res),
                     O2D_ERR_TOO_LARGE);
    ingest_count_refusal(ing, O2D_TRANSPORT_HTTP, -1, INGEST_REFUSED_NOT_FOUND);
    ingest_count_refusal(ing, O2D_TRANSPORT_GRPC, OTLP_SIGNAL_TRACES,
                         ingest_refusal_of(O2D_ERR_BUSY));
    ingest_count_refusal(ing, O2D_TRANSPORT_GRPC, 99, (enum ingest_refusal)1000); /* clamped */

    struct prom_writer w;
    prom_writer_init(&w, 1 << 20);
    metrics_write(&w, ing, p, 1700000000.5);
    assert_int_equal(prom_writer_status(&w), O2D_OK);
    char *s = text_of(&w);
    const char *want[] = {
        "otel2dd_build_info{version=\"" O2D_VERSION "\"} 1",
        "otel2dd_process_start_time_seconds 1700000000.5",
        "otel2dd_receiver_accepted_requests_total{transport=\"http\",signal=\"traces\"} 3",
        "otel2dd_receiver_accepted_items_total{transport=\"http\",signal=\"traces\"} 6",
        "otel2dd_receiver_accepted_items_total{transport=\"grpc\",signal=\"traces\"} 0",
        "otel2dd_receiver_refused_requests_total{transport=\"grpc\",signal=\"logs\","
        "reason=\"invalid\"} 1",
        "otel2dd_receiver_refused_requests_total{transport=\"http\",signal=\"traces\","
        "reason=\"too_large\"} 1",
        "otel2dd_receiver_refused_requests_total{transport=\"http\",signal=\"unknown\","
        "reason=\"not_found\"} 1",
        "otel2dd_receiver_refused_requests_total{transport=\"grpc\",signal=\"traces\","
        "reason=\"memory_limit\"} 1",
        "otel2dd_receiver_refused_requests_total{transport=\"grpc\",signal=\"unknown\","
        "reason=\"internal\"} 1",
        "otel2dd_receiver_request_duration_seconds_count{transport=\"http\"} 4",
        "otel2dd_receiver_request_duration_seconds_count{transport=\"grpc\"} 1",
        "otel2dd_receiver_request_duration_seconds_bucket{transport=\"http\",le=\"+Inf\"} 4",
        "otel2dd_receiver_buffered_capacity_bytes 1048576",
        "otel2dd_exporter_sent_items_total{exporter=\"debug\"} 6",
        "otel2dd_exporter_sent_payloads_total{exporter=\"debug\"} 3",
        "# TYPE otel2dd_receiver_request_duration_seconds histogram",
        "# TYPE otel2dd_exporter_dropped_items_total counter",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!has_line(s, want[i])) {
            fail_msg("missing line: %s\n---\n%s", want[i], s);
        }
    }
    /* Each family once. */
    const char *once = strstr(s, "# TYPE otel2dd_receiver_accepted_items_total");
    assert_non_null(once);
    assert_null(strstr(once + 1, "# TYPE otel2dd_receiver_accepted_items_total"));
    free(s);
    prom_writer_cleanup(&w);

    struct ingest_totals t;
    ingest_get_totals(ing, &t);
    assert_int_equal(t.refused[O2D_TRANSPORT_HTTP], 2);
    assert_int_equal(t.refused[O2D_TRANSPORT_GRPC], 3);
    ingest_free(ing);
    pipeline_shutdown(p, 0);
    pipeline_free(p);
    o2d_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(family_and_samples),
        cmocka_unit_test(label_values_and_help_are_escaped),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(bound_is_kept_and_first_error_sticks),
        cmocka_unit_test(ingest_counts_what_it_answered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
