/*
 * fuzz_apm_pb.c: differential check of apm_pb.c, the one-pass TracerPayload writer. Bytes ->
 * OTLP/protobuf traces decode -> apm_translate -> every payload written by apm_pb.c and by
 * protobuf-c (get_packed_size + pack): the two must be the same bytes, and protobuf-c must
 * decode ours; apm_pb_tracer_payload_translated (the lengths translation noted) must write
 * them too, and apm_msgpack_trace_translated each chunk as apm_msgpack_trace does. The first byte
 * picks options (V1 names, top level by span kind); the rest is the request. input_utf8_valid stays
 * 0: invalid UTF-8 reaches the writer repaired, as on the export path when the decoder does not
 * vouch for it. Seeds: tests/fuzz/corpus/apm_pb, the tests/data/apm fixtures as protobuf bodies
 * behind an options byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apm.h"
#include "apm_msgpack.h"
#include "apm_pb.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    struct apm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.span_name_as_resource_name = data[0] & 1;
    cfg.compute_top_level_by_span_kind = (data[0] >> 1) & 1;
    struct o2d_arena a;
    o2d_arena_init(&a, 16 * size + 256 * 1024);
    struct otlp_request req;
    const char *reason;
    if (otlp_decode(&a, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, data + 1, size - 1, &req, &reason) !=
        O2D_OK) {
        o2d_arena_cleanup(&a);
        return 0;
    }
    struct apm_result res;
    if (apm_translate(&a, req.msg.traces, &cfg, INT64_C(1700000001000000000), &res, &reason) !=
        O2D_OK) {
        o2d_arena_cleanup(&a);
        return 0;
    }
    struct o2d_buf b, m1, m2;
    o2d_buf_init(&b, SIZE_MAX / 2);
    o2d_buf_init(&m1, SIZE_MAX / 2);
    o2d_buf_init(&m2, SIZE_MAX / 2);
    for (size_t i = 0; i < res.n_payloads; i++) {
        const DdTracerPayload *tp = res.payloads[i];
        size_t len = datadog__trace__tracer_payload__get_packed_size(tp);
        uint8_t *want = malloc(len ? len : 1);
        if (want == NULL) {
            break;
        }
        datadog__trace__tracer_payload__pack(tp, want);
        o2d_buf_reset(&b);
        if (apm_pb_tracer_payload(&b, tp) != O2D_OK || b.len != len ||
            (len > 0 && memcmp(b.data, want, len) != 0)) {
            abort();
        }
        o2d_buf_reset(&b);
        if (apm_pb_tracer_payload_translated(&b, tp) != O2D_OK || b.len != len ||
            (len > 0 && memcmp(b.data, want, len) != 0)) {
            abort();
        }
        for (size_t c = 0; c < tp->n_chunks; c++) {
            o2d_buf_reset(&m1);
            o2d_buf_reset(&m2);
            if (apm_msgpack_trace(&m1, tp, tp->chunks[c]) != O2D_OK ||
                apm_msgpack_trace_translated(&m2, tp, tp->chunks[c]) != O2D_OK ||
                m1.len != m2.len || memcmp(m1.data, m2.data, m1.len) != 0) {
                abort();
            }
        }
        DdTracerPayload *back = datadog__trace__tracer_payload__unpack(NULL, b.len, b.data);
        if (back == NULL) {
            abort();
        }
        datadog__trace__tracer_payload__free_unpacked(back, NULL);
        free(want);
    }
    o2d_buf_cleanup(&b);
    o2d_buf_cleanup(&m1);
    o2d_buf_cleanup(&m2);
    o2d_arena_cleanup(&a);
    return 0;
}
