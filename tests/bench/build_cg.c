/*
 * build_cg.c: the traces destination's build step (encode the AgentPayload, compress, halve
 * what comes out too large) in a loop, for instruction counts under
 * `valgrind --tool=callgrind --toggle-collect=run` (repeatable while other processes load the
 * machine, which wall-clock runs here are not), and the compressed ratio.
 *
 * Input: AgentPayload bodies as otel2dd builds them before compression, captured by
 * tests/bench/capture_payloads.py (an O2DLOAD1 file). At start each is cut back into its
 * TracerPayloads, one queue item each (as datadog.c queues them); then, ITERATIONS times, the
 * items go through dlv_build_bodies as a sender thread runs it (batches of
 * DATADOG_BATCH_RAW_BYTES, the intake's 3.2 MB limit, the sender's codec kept across
 * bodies), with the compression and level given.
 *
 *   build_cg PAYLOADS {gzip|zstd|none} LEVEL ITERATIONS
 *
 * Prints spans, bodies, bytes before and after compression and the ratio; instructions per
 * span are callgrind's inclusive count of run() / (spans x ITERATIONS).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_file.h"
#include "datadog/trace/agent_payload.pb-c.h"
#include "datadog_int.h"
#include "delivery.h"
#include "o2d.h"
#include "o2d_alloc.h"

struct totals {
    size_t bodies;
    size_t raw;
    size_t sent;
};

static void emit(void *ctx, struct dlv_body *b)
{
    struct totals *t = ctx;
    t->bodies++;
    t->raw += b->raw_len;
    t->sent += b->len;
    for (size_t i = 0; i < b->n; i++) {
        atomic_fetch_sub(&b->items[i]->refs, 1); /* the body's hold: nothing settles here */
    }
    dlv_body_free(b);
}

static const struct datadog_wire wire = {
    .h = {.hostname = "bench-host",
          .env = "none",
          .agent_version = "otel2dd/bench",
          .target_tps = 10,
          .error_tps = 10},
};

/* The measured step: what a sender does with a batch, for every batch of the items. */
__attribute__((noinline)) static void run(struct dlv_item **items, size_t n,
                                          enum dlv_compression kind, int level,
                                          struct dlv_codec *codec, struct totals *t)
{
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        size_t bytes = 0;
        while (i + k < n && (k == 0 || bytes + items[i + k]->len <= DATADOG_BATCH_RAW_BYTES)) {
            bytes += items[i + k]->len;
            k++;
        }
        struct dlv_build b = {
            .type = &datadog_traces_dest,
            .ctx = (void *)&wire,
            .max_body = DATADOG_MAX_BODY_BYTES,
            .batch_bytes = DATADOG_BATCH_RAW_BYTES,
            .compression = kind,
            .level = level,
            .codec = codec,
            .emit = emit,
            .emit_ctx = t,
        };
        if (dlv_build_bodies(&b, items + i, k) != O2D_OK || b.too_large > 0 || b.failed > 0) {
            fprintf(stderr, "build_cg: a batch failed to build\n");
            exit(1);
        }
        i += k;
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: build_cg PAYLOADS {gzip|zstd|none} LEVEL ITERATIONS\n");
        return 2;
    }
    enum dlv_compression kind = strcmp(argv[2], "gzip") == 0   ? DLV_COMPRESS_GZIP
                                : strcmp(argv[2], "zstd") == 0 ? DLV_COMPRESS_ZSTD
                                                               : DLV_COMPRESS_NONE;
    int level = atoi(argv[3]);
    int iterations = atoi(argv[4]);
    size_t len = 0;
    uint8_t *file = bench_read_file(argv[1], &len);
    if (file == NULL) {
        return 1;
    }
    if (len < 8 || memcmp(file, "O2DLOAD1", 8) != 0) {
        fprintf(stderr, "%s: no O2DLOAD1 magic\n", argv[1]);
        return 1;
    }
    size_t cap = 1024, n = 0, spans = 0;
    struct dlv_item **items = malloc(cap * sizeof(*items));
    for (size_t off = 8; off + 8 <= len;) {
        uint32_t blen = bench_be32(file + off);
        off += 8;
        Datadog__Trace__AgentPayload *ap =
            datadog__trace__agent_payload__unpack(NULL, blen, file + off);
        if (ap == NULL) {
            fprintf(stderr, "an AgentPayload does not decode\n");
            return 1;
        }
        off += blen;
        for (size_t i = 0; i < ap->n_tracerpayloads; i++) {
            Datadog__Trace__TracerPayload *tp = ap->tracerpayloads[i];
            size_t s = 0;
            for (size_t c = 0; c < tp->n_chunks; c++) {
                s += tp->chunks[c]->n_spans;
            }
            size_t plen = datadog__trace__tracer_payload__get_packed_size(tp);
            uint8_t *p = malloc(plen);
            datadog__trace__tracer_payload__pack(tp, p);
            if (n == cap) {
                cap *= 2;
                items = realloc(items, cap * sizeof(*items));
            }
            items[n] = datadog_trace_item(p, plen, s, tp->languagename);
            if (items[n] == NULL) {
                return 1;
            }
            atomic_init(&items[n]->refs, 1); /* the sender's hold */
            n++;
            spans += s;
            free(p);
        }
        datadog__trace__agent_payload__free_unpacked(ap, NULL);
    }
    struct dlv_codec *codec = dlv_codec_new();
    struct totals t = {0, 0, 0};
    for (int it = 0; it < iterations; it++) {
        run(items, n, kind, level, codec, &t);
    }
    dlv_codec_free(codec);
    printf("{\"compression\":\"%s\",\"level\":%d,\"items\":%zu,\"spans\":%zu,"
           "\"iterations\":%d,\"bodies\":%zu,\"raw_bytes\":%zu,\"sent_bytes\":%zu,"
           "\"ratio\":%.3f,\"raw_bytes_per_span\":%.1f,\"sent_bytes_per_span\":%.1f}\n",
           dlv_compression_name(kind), level, n, spans, iterations, t.bodies, t.raw, t.sent,
           t.sent > 0 ? (double)t.raw / (double)t.sent : 0.0,
           spans > 0 ? (double)t.raw / (double)(spans * (size_t)iterations) : 0.0,
           spans > 0 ? (double)t.sent / (double)(spans * (size_t)iterations) : 0.0);
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(items[i]);
    }
    free(items);
    free(file);
    return 0;
}
