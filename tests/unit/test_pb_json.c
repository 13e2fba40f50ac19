/*
 * test_pb_json.c: descriptor-driven JSON of protobuf-c messages: every field, 64-bit
 * integers as strings, maps as objects (numeric keys quoted), bytes as base64, repeated
 * scalars and messages, NaN, repaired strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "datadog/sketches/ddsketch.pb-c.h"
#include "datadog/trace/span.pb-c.h"
#include "pb_json.h"

static void span_prints_every_field(void **state)
{
    (void)state;
    Datadog__Trace__Span s = DATADOG__TRACE__SPAN__INIT;
    Datadog__Trace__Span__MetaEntry m1 = DATADOG__TRACE__SPAN__META_ENTRY__INIT;
    Datadog__Trace__Span__MetaEntry m2 = DATADOG__TRACE__SPAN__META_ENTRY__INIT;
    Datadog__Trace__Span__MetaEntry *meta[2] = {&m1, &m2};
    Datadog__Trace__Span__MetricsEntry x = DATADOG__TRACE__SPAN__METRICS_ENTRY__INIT;
    Datadog__Trace__Span__MetricsEntry *metrics[1] = {&x};
    s.service = "shop";
    s.name = "http.server.request";
    s.resource = "GET /cart";
    s.traceid = 2594128270069917171ull;
    s.spanid = UINT64_MAX;
    s.start = -5;
    s.duration = 1000;
    s.error = 1;
    m1.key = "env";
    m1.value = "prod";
    m2.key = "bad";
    m2.value = "a\xff\"b";
    s.meta = meta;
    s.n_meta = 2;
    x.key = "_top_level";
    x.value = 1;
    s.metrics = metrics;
    s.n_metrics = 1;
    s.type = "web";
    struct o2d_buf b;
    o2d_buf_init(&b, 1 << 16);
    assert_int_equal(pb_json_print(&b, &s.base), 0);
    o2d_buf_append_byte(&b, 0);
    assert_string_equal(
        (char *)b.data,
        "{\"service\":\"shop\",\"name\":\"http.server.request\",\"resource\":\"GET /cart\","
        "\"traceID\":\"2594128270069917171\",\"spanID\":\"18446744073709551615\","
        "\"parentID\":\"0\",\"start\":\"-5\",\"duration\":\"1000\",\"error\":1,"
        "\"meta\":{\"env\":\"prod\",\"bad\":\"a\xef\xbf\xbd\\\"b\"},\"metrics\":{\"_top_level\":1},"
        "\"type\":\"web\",\"meta_struct\":{},\"spanLinks\":[],\"spanEvents\":[]}");
    o2d_buf_cleanup(&b);
}

static void sketch_maps_packed_and_nan(void **state)
{
    (void)state;
    Datadog__Sketches__DDSketch sk = DATADOG__SKETCHES__DDSKETCH__INIT;
    Datadog__Sketches__IndexMapping im = DATADOG__SKETCHES__INDEX_MAPPING__INIT;
    Datadog__Sketches__Store st = DATADOG__SKETCHES__STORE__INIT;
    Datadog__Sketches__Store__BinCountsEntry e = DATADOG__SKETCHES__STORE__BIN_COUNTS_ENTRY__INIT;
    Datadog__Sketches__Store__BinCountsEntry *ep[1] = {&e};
    double counts[2] = {1.5, 2};
    im.gamma = 1.015625;
    e.key = -3;
    e.value = 4;
    st.bincounts = ep;
    st.n_bincounts = 1;
    st.contiguousbincounts = counts;
    st.n_contiguousbincounts = 2;
    st.contiguousbinindexoffset = 7;
    sk.mapping = &im;
    sk.positivevalues = &st;
    sk.zerocount = 0.0 / 0.0;
    struct o2d_buf b;
    o2d_buf_init(&b, 1 << 16);
    assert_int_equal(pb_json_print(&b, &sk.base), 0);
    o2d_buf_append_byte(&b, 0);
    assert_string_equal((char *)b.data,
                        "{\"mapping\":{\"gamma\":1.015625,\"indexOffset\":0,\"interpolation\":0},"
                        "\"positiveValues\":{\"binCounts\":{\"-3\":4},\"contiguousBinCounts\":"
                        "[1.5,2],\"contiguousBinIndexOffset\":7},\"negativeValues\":null,"
                        "\"zeroCount\":\"NaN\"}");
    o2d_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(span_prints_every_field),
        cmocka_unit_test(sketch_maps_packed_and_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
