/*
 * llmobs_cg.c: the LLM Obs half of otel2dd's request path in a loop, for instruction counts
 * under `valgrind --tool=callgrind` (repeatable while other processes load the machine, which
 * wall-clock runs here are not). Decodes one OTLP/protobuf traces body once, then per
 * iteration does what the exporter does per request: build the batch (the receiving thread),
 * add it to the trace buffer, and poll the buffer, copying each released event (the sender
 * thread). Trace ids change every iteration, as bench.py's `--llm-ids rotate` does, so the
 * buffer sees fresh traces.
 *
 *   llmobs_cg BODY.pb ITERATIONS
 *   llmobs_cg BODIES ROUNDS
 *
 * BODIES is a loadgen bodies file ("O2DLOAD1", then records of a 4-byte big-endian length, a
 * 4-byte big-endian item count and the protobuf bytes: tests/bench/gen_bodies.js, e.g.
 * llm.bodies); every body is decoded once, then each round sends every body once, with the
 * first 4 bytes of its trace ids set to the round (the bodies' own ids differ already).
 * Prints the events written and their bytes, the spans and the gen_ai spans (spans with a
 * gen_ai.* attribute) sent; instructions per event are (Ir(N) - Ir(0)) / events(N), or
 * callgrind's inclusive count of run() / events (or / spans, / gen_ai spans):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out build/llmobs_cg llm.bodies 2
 *   callgrind_annotate --inclusive=yes cg.out | grep -E ' run |llmobs_'
 *
 * The APM path, decode and I/O are not here: they are the same with LLM Obs on or off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "llmobs.h"
#include "llmobs_buffer.h"
#include "llmobs_exporter.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_json_in.h"
#include "otlp.h"

struct sink {
    size_t events, bytes, spans, genai_spans;
    uint8_t *copy;
    FILE *dump; /* LLMOBS_CG_DUMP=FILE: every event, one a line (to compare two builds) */
};

static int emit(void *ctx, const uint8_t *json, size_t len)
{
    struct sink *s = ctx;
    uint8_t *p = o2d_malloc(len);
    if (p == NULL) {
        return O2D_ERR_NOMEM;
    }
    memcpy(p, json, len);
    if (s->dump != NULL) {
        fwrite(p, 1, len, s->dump);
        fputc('\n', s->dump);
    }
    o2d_free(s->copy);
    s->copy = p;
    s->events++;
    s->bytes += len;
    return O2D_OK;
}

static size_t count_spans(const OtlpTraceReq *req, size_t *genai)
{
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++) {
                const OtlpSpan *sp = ss->spans[j];
                n++;
                for (size_t a = 0; a < sp->n_attributes; a++) {
                    if (strncmp(sp->attributes[a]->key, "gen_ai.", 7) == 0) {
                        (*genai)++;
                        break;
                    }
                }
            }
        }
    }
    return n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void set_ids(const OtlpTraceReq *req, uint32_t iter)
{
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = req->resource_spans[r];
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const OtlpScopeSpans *ss = rs->scope_spans[k];
            for (size_t j = 0; j < ss->n_spans; j++) {
                if (ss->spans[j]->trace_id.len == 16) {
                    memcpy(ss->spans[j]->trace_id.data, &iter, sizeof(iter));
                }
            }
        }
    }
}

/* The measured part: kept out of line so callgrind can name it. */
__attribute__((noinline)) static int run(OtlpTraceReq *const *reqs, size_t nreq,
                                         struct llmobs_buffer *lb, long iters, struct sink *s)
{
    static const struct llmobs_config map = {0};
    int64_t now = 1000000000;
    /* kept across requests, as the exporter's pool does */
    struct llmobs_builder *bl = NULL;
    if (llmobs_builder_new(&bl) != O2D_OK) {
        return O2D_ERR_NOMEM;
    }
    for (long k = 0; k < iters * (long)nreq; k++) {
        long i = k / (long)nreq;
        const OtlpTraceReq *req = reqs[k % (long)nreq];
        set_ids(req, (uint32_t)i + 1);
        struct llmobs_exporter_batch *bt = NULL;
        int rv = llmobs_exporter_batch_build_with(bl, req, &map, 1, &bt);
        if (rv == O2D_OK) {
            rv = llmobs_exporter_batch_add(lb, bt, now);
        }
        if (rv == O2D_OK) {
            rv = llmobs_buffer_poll(lb, now, 0, emit, s);
        }
        if (rv != O2D_OK) {
            llmobs_builder_free(bl);
            return rv;
        }
        now += 1000000; /* 1 ms a request */
    }
    llmobs_builder_free(bl);
    return O2D_OK;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: llmobs_cg BODY.pb ITERATIONS\n");
        return 2;
    }
    json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free);
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    struct o2d_buf body;
    o2d_buf_init(&body, 64u * 1024 * 1024);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (o2d_buf_append(&body, chunk, n) != O2D_OK) {
            return 1;
        }
    }
    fclose(f);
    struct o2d_arena a;
    o2d_arena_init(&a, 1024u * 1024 * 1024);
    enum { MAX_BODIES = 512 };
    static OtlpTraceReq *reqs[MAX_BODIES];
    size_t nreq = 0;
    int many = body.len >= 8 && memcmp(body.data, "O2DLOAD1", 8) == 0;
    size_t off = many ? 8 : 0;
    while (off < body.len && nreq < MAX_BODIES) {
        const uint8_t *p = body.data;
        size_t len = body.len;
        if (many) {
            if (off + 8 > body.len || be32(body.data + off) > body.len - off - 8) {
                fprintf(stderr, "%s: truncated record at %zu\n", argv[1], off);
                return 1;
            }
            len = be32(body.data + off);
            p = body.data + off + 8;
            off += 8 + len;
        } else {
            off = body.len;
        }
        struct otlp_request req;
        const char *reason = NULL;
        int rv = otlp_decode(&a, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, p, len, &req, &reason);
        if (rv != O2D_OK) {
            fprintf(stderr, "decode: %s\n", reason != NULL ? reason : o2d_strerror(rv));
            return 1;
        }
        reqs[nreq++] = req.msg.traces;
    }
    size_t spans = 0, genai = 0;
    for (size_t i = 0; i < nreq; i++) {
        spans += count_spans(reqs[i], &genai);
    }
    struct llmobs_buffer_config bc = {
        .deadline_ns = 10000000000LL,
        .max_spans = 100000,
        .max_bytes = 64u * 1024 * 1024,
        .max_event_size = 5000000,
    };
    struct llmobs_buffer *lb = NULL;
    if (llmobs_buffer_new(&lb, &bc) != O2D_OK) {
        return 1;
    }
    struct sink s = {0};
    if (getenv("LLMOBS_CG_DUMP") != NULL &&
        (s.dump = fopen(getenv("LLMOBS_CG_DUMP"), "wb")) == NULL) {
        perror(getenv("LLMOBS_CG_DUMP"));
        return 1;
    }
    long iters = atol(argv[2]);
    s.spans = spans * (size_t)(iters > 0 ? iters : 0);
    s.genai_spans = genai * (size_t)(iters > 0 ? iters : 0);
    int rv = run(reqs, nreq, lb, iters, &s);
    if (rv == O2D_OK) {
        rv = llmobs_buffer_poll(lb, 0, 1, emit, &s);
    }
    printf("bodies %zu events %zu bytes %zu spans %zu genai_spans %zu\n", nreq, s.events, s.bytes,
           s.spans, s.genai_spans);
    if (s.copy != NULL && getenv("LLMOBS_CG_SHOW") != NULL) {
        printf("%s\n", (const char *)s.copy);
    }
    o2d_free(s.copy);
    if (s.dump != NULL) {
        fclose(s.dump);
    }
    llmobs_buffer_free(lb);
    o2d_arena_cleanup(&a);
    o2d_buf_cleanup(&body);
    return rv == O2D_OK ? 0 : 1;
}
