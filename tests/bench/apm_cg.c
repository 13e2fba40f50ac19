/*
 * apm_cg.c: the APM half of otel2dd's request path in a loop, for instruction counts under
 * `valgrind --tool=callgrind` (repeatable on a loaded machine, where wall-clock is not).
 * Decodes one OTLP/protobuf traces body once, then per iteration makes it a distinct request
 * (trace and span ids, and the tail of every string attribute value, change with the
 * iteration, so services, routes and values vary as in real traffic), translates it
 * (apm_translate) into a fresh arena and writes every TracerPayload's bytes: with protobuf-c
 * (get_packed_size + pack, what the exporter did before apm_pb.c) and with apm_pb.c (into the
 * queue item's storage, as the exporter does), side by side, checking that both give the same
 * bytes; and, for agent mode, every chunk as v0.4 msgpack (apm_msgpack.c).
 *
 *   apm_cg BODY.pb ITERATIONS [utf8]
 *   apm_cg BODIES ITERATIONS [utf8]
 *
 * BODIES is a loadgen bodies file ("O2DLOAD1", tests/bench/gen_bodies.js: apm.bodies): its
 * bodies are decoded once each and iteration i translates body i modulo their number, as they
 * are (they are distinct already; nothing here keeps anything from one request to the next).
 * `utf8` sets apm_config.input_utf8_valid (the decoder vouches for the request's strings).
 * Instructions per span: callgrind's inclusive count of step_translate(), step_pack_pbc(),
 * step_pack_own() or step_msgpack() divided by the spans printed (callgrind_annotate
 * --inclusive=yes).
 * Built on demand: cmake --build build --target apm_cg (tests/bench/README.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apm.h"
#include "apm_msgpack.h"
#include "bench_file.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "otlp.h"
/* -DAPM_CG_BASELINE builds it against a tree from before apm_pb.c and input_utf8_valid (for
 * before/after figures from one run). */
#ifndef APM_CG_BASELINE
#include "apm_pb.h"
#define HAVE_APM_PB 1
#else
#define HAVE_APM_PB 0
#endif

static void vary_str(char *s, uint32_t x)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    size_t n = strlen(s);
    for (size_t i = 0; i < 3 && i < n && n >= 4; i++) {
        s[n - 1 - i] = digits[x % 36];
        x /= 36;
    }
}

static void vary_attrs(OtlpKeyValue **kv, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++) {
        OtlpAnyValue *v = kv[i]->value;
        if (v != NULL &&
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            vary_str(v->string_value, x + (uint32_t)i);
        }
    }
}

/* Iteration `iter` of the body: ids and string values its own. Services vary over 8 values
 * (x % 8), other strings over all iterations. */
static void vary(const OtlpTraceReq *req, uint32_t iter)
{
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        if (rs->resource != NULL) {
            vary_attrs(rs->resource->attributes, rs->resource->n_attributes, iter % 8);
        }
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++) {
                OtlpSpan *sp = ss->spans[j];
                if (sp->trace_id.len == 16) {
                    memcpy(sp->trace_id.data, &iter, sizeof(iter));
                }
                if (sp->span_id.len == 8) {
                    memcpy(sp->span_id.data, &iter, sizeof(iter));
                }
                if (sp->parent_span_id.len == 8) {
                    memcpy(sp->parent_span_id.data, &iter, sizeof(iter));
                }
                vary_attrs(sp->attributes, sp->n_attributes, iter * 7 + (uint32_t)j);
            }
        }
    }
}

__attribute__((noinline)) static int step_translate(struct o2d_arena *a, const OtlpTraceReq *req,
                                                    const struct apm_config *cfg,
                                                    struct apm_result *res)
{
    const char *reason = NULL;
    return apm_translate(a, req, cfg, INT64_C(1700000001000000000), res, &reason);
}

__attribute__((noinline)) static uint8_t *step_pack_pbc(const DdTracerPayload *tp, size_t *len)
{
    *len = datadog__trace__tracer_payload__get_packed_size(tp);
    uint8_t *p = malloc(*len ? *len : 1);
    if (p != NULL) {
        datadog__trace__tracer_payload__pack(tp, p);
    }
    return p;
}

/* Agent mode: every chunk as a v0.4 trace (apm_msgpack.c), into one reused buffer. */
__attribute__((noinline)) static size_t step_msgpack(const DdTracerPayload *tp, struct o2d_buf *b)
{
    size_t n = 0;
    for (size_t c = 0; c < tp->n_chunks; c++) {
        o2d_buf_reset(b);
#if HAVE_APM_PB
        int rv = apm_msgpack_trace_translated(b, tp, tp->chunks[c]);
#else
        int rv = apm_msgpack_trace(b, tp, tp->chunks[c]);
#endif
        if (rv == O2D_OK) {
            n += b->len;
        }
    }
    return n;
}

#if HAVE_APM_PB
/* As the exporter does (datadog_trace_item_begin/finish): room for the queue item's fields
 * (APM_CG_ITEM_PREFIX stands for DLV_ITEM_PREFIX, this harness links no exporter) and 1024
 * bytes a span reserved (the exporter's first guess; it then reserves what the previous
 * payload's spans took, trace_reserve in exporters/datadog.c), the bytes written after them, the
 * storage shrunk to fit and handed over: no copy. Returns the storage; the TracerPayload is at
 * APM_CG_ITEM_PREFIX. */
#define APM_CG_ITEM_PREFIX 64
__attribute__((noinline)) static uint8_t *step_pack_own(const DdTracerPayload *tp, size_t *len)
{
    size_t spans = 0;
    for (size_t i = 0; i < tp->n_chunks; i++) {
        spans += tp->chunks[i]->n_spans;
    }
    struct o2d_buf b;
    o2d_buf_init(&b, SIZE_MAX / 2);
    if (o2d_buf_reserve(&b, APM_CG_ITEM_PREFIX + spans * 1024) != O2D_OK) {
        return NULL;
    }
    b.len = APM_CG_ITEM_PREFIX;
    if (apm_pb_tracer_payload_translated(&b, tp) != O2D_OK) {
        o2d_buf_cleanup(&b);
        return NULL;
    }
    size_t total;
    uint8_t *p = o2d_buf_take(&b, &total);
    uint8_t *q = o2d_realloc(p, total);
    if (q == NULL) {
        o2d_free(p);
        return NULL;
    }
    *len = total - APM_CG_ITEM_PREFIX;
    return q;
}
#endif

/* The bodies of a loadgen bodies file (records of a 4-byte big-endian length, a 4-byte
 * big-endian item count and the protobuf bytes), or the one body of any other file, decoded
 * into da. Returns the number of requests (at most max), 0 on an error (said on stderr). */
static size_t decode_bodies(struct o2d_arena *da, const uint8_t *p, size_t n, OtlpTraceReq **reqs,
                            size_t max)
{
    size_t nreq = 0, at = 0, end = n;
    int file = n >= 8 && memcmp(p, "O2DLOAD1", 8) == 0;
    if (file) {
        at = 8;
    }
    while (at < end && nreq < max) {
        size_t len = end - at;
        if (file) {
            if (end - at < 8 || bench_be32(p + at) > end - at - 8) {
                fprintf(stderr, "bodies: a truncated record at %zu\n", at);
                return 0;
            }
            len = bench_be32(p + at);
            at += 8;
        }
        struct otlp_request req;
        const char *reason = NULL;
        int rv = otlp_decode(da, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, p + at, len, &req, &reason);
        if (rv != O2D_OK) {
            fprintf(stderr, "decode: %s\n", reason != NULL ? reason : o2d_strerror(rv));
            return 0;
        }
        reqs[nreq++] = req.msg.traces;
        at += len;
    }
    return nreq;
}

#define APM_CG_MAX_BODIES 1024

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: apm_cg BODY.pb|BODIES ITERATIONS [utf8]\n");
        return 2;
    }
    size_t flen;
    uint8_t *file = bench_read_file(argv[1], &flen);
    if (file == NULL) {
        return 1;
    }
    struct o2d_arena da;
    o2d_arena_init(&da, 1024u * 1024 * 1024);
    static OtlpTraceReq *reqs[APM_CG_MAX_BODIES];
    size_t nreq = decode_bodies(&da, file, flen, reqs, APM_CG_MAX_BODIES);
    if (nreq == 0) {
        return 1;
    }
    /* one body: made distinct per iteration by vary(); several: taken in turn as they are */
    int rotate = nreq > 1;
    struct apm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
#if HAVE_APM_PB
    cfg.input_utf8_valid = argc > 3 && strcmp(argv[3], "utf8") == 0;
#endif
    long iters = atol(argv[2]);
    size_t spans = 0, bytes_pbc = 0, bytes_own = 0, bytes_mp = 0, mismatches = 0;
    struct o2d_buf mp;
    o2d_buf_init(&mp, SIZE_MAX / 2);
    struct o2d_arena a;
    o2d_arena_init(&a, 256u * 1024 * 1024);
    int rv;
    for (long i = 0; i < iters; i++) {
        const OtlpTraceReq *req = reqs[rotate ? (size_t)i % nreq : 0];
        if (!rotate) {
            vary(req, (uint32_t)i + 1);
        }
        o2d_arena_reset(&a);
        struct apm_result res;
        rv = step_translate(&a, req, &cfg, &res);
        if (rv != O2D_OK) {
            fprintf(stderr, "translate: %s\n", o2d_strerror(rv));
            return 1;
        }
        spans += res.spans;
        for (size_t p = 0; p < res.n_payloads; p++) {
            size_t l1 = 0;
            uint8_t *b1 = step_pack_pbc(res.payloads[p], &l1);
            bytes_pbc += l1;
#if HAVE_APM_PB
            size_t l2 = 0;
            uint8_t *b2 = step_pack_own(res.payloads[p], &l2);
            bytes_own += l2;
            mismatches += b1 == NULL || b2 == NULL || l1 != l2 ||
                          memcmp(b1, b2 + APM_CG_ITEM_PREFIX, l1) != 0;
            o2d_free(b2);
#endif
            free(b1);
            bytes_mp += step_msgpack(res.payloads[p], &mp);
        }
    }
    printf("spans %zu bytes_pbc %zu bytes_own %zu bytes_msgpack %zu mismatches %zu\n", spans,
           bytes_pbc, bytes_own, bytes_mp, mismatches);
    o2d_buf_cleanup(&mp);
    o2d_arena_cleanup(&a);
    o2d_arena_cleanup(&da);
    free(file);
    return mismatches == 0 ? 0 : 1;
}
