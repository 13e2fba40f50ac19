/*
 * preview_capture.c: what the preview adds to the request path, per span: preview_capture()
 * on a decoded OTLP/protobuf traces body in a loop, for instruction counts under
 * `valgrind --tool=callgrind` (repeatable on a shared machine) and for CPU time. The trace ids
 * change every iteration (the body's 16 id bytes get the iteration number), so the store sees
 * new traces and, once full, evicts one for each it takes, as under a steady load.
 *
 *   preview_capture BODY.pb ITERATIONS [MAX_MIB]
 *
 * Prints spans captured, CPU ns per span (process time) and the store's bytes and evictions.
 * With the preview off the request path pays `if (p->preview != NULL)` and nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "preview.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BODY.pb ITERATIONS [MAX_MIB]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    static uint8_t body[16 << 20];
    size_t len = fread(body, 1, sizeof(body), f);
    fclose(f);
    long iterations = atol(argv[2]);
    struct o2d_config cfg;
    o2d_config_defaults(&cfg);
    cfg.preview_max_bytes = (size_t)(argc > 3 ? atol(argv[3]) : 32) << 20;
    struct preview *pv = NULL;
    if (preview_new(&pv, &cfg) != O2D_OK) {
        return 1;
    }
    struct o2d_arena a;
    o2d_arena_init(&a, 256u << 20);
    struct otlp_request req;
    const char *reason = NULL;
    if (otlp_decode(&a, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, body, len, &req, &reason) !=
        O2D_OK) {
        fprintf(stderr, "decode: %s\n", reason != NULL ? reason : "?");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (long i = 0; i < iterations; i++) {
        const OtlpTraceReq *tr = req.msg.traces;
        for (size_t r = 0; r < tr->n_resource_spans; r++) {
            for (size_t s = 0; s < tr->resource_spans[r]->n_scope_spans; s++) {
                OtlpScopeSpans *ss = tr->resource_spans[r]->scope_spans[s];
                for (size_t k = 0; k < ss->n_spans; k++) {
                    memcpy(ss->spans[k]->trace_id.data, &i, sizeof(i));
                }
            }
        }
        req.id = (uint64_t)i + 1;
        preview_capture(pv, &req);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    struct preview_stats st;
    preview_stats(pv, &st);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("spans %llu cpu_ns_per_span %.0f held_bytes %llu max_bytes %llu traces %llu "
           "evicted %llu skipped_busy %llu\n",
           (unsigned long long)st.spans_captured,
           st.spans_captured ? ns / (double)st.spans_captured : 0.0, (unsigned long long)st.bytes,
           (unsigned long long)st.max_bytes, (unsigned long long)st.traces,
           (unsigned long long)st.evicted_traces, (unsigned long long)st.skipped_busy);
    preview_free(pv);
    o2d_arena_cleanup(&a);
    return 0;
}
