/*
 * decode_cg.c: the decode and stats steps of the trace path in a loop, for instruction counts
 * under `valgrind --tool=callgrind` (stable on this machine; wall clock is not). Every body is
 * decoded both ways in the same run: the old path (otlp_pb_check, then protobuf-c's unpack:
 * decode_old) and the one-pass decoder (otlp_pb_decode_traces: decode_one); the one-pass
 * result is translated (apm_translate, not measured here) and added to a stats concentrator
 * (add_stats); apm_config.input_utf8_valid is set from the decoder, as the exporter does.
 * Instructions per span are callgrind's inclusive counts of decode_old,
 * decode_one and add_stats divided by the spans printed:
 *
 *   decode_cg BODIES ROUNDS [sqlcache]
 *
 * `sqlcache`: the translation goes through a SQL obfuscation cache of the default size
 * (sql_cache.h, as the exporter's traces.obfuscation.cache), and its hits and misses are
 * printed.
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out build/decode_cg BODIES 2
 *   callgrind_annotate --inclusive=yes cg.out | grep -E 'decode_old|decode_one|add_stats'
 *
 * BODIES is a loadgen bodies file ("O2DLOAD1", then records of a 4-byte big-endian length, a
 * 4-byte big-endian item count and the protobuf bytes: tests/bench/gen_bodies.js), or one
 * ExportTraceServiceRequest file. With a single body, each round changes its trace ids, span
 * names and the first byte of every string attribute value inside (a copy), so rounds differ.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_file.h"
#include "apm.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "sql_cache.h"
#include "stats.h"

struct body {
    uint8_t *p;
    size_t n;
};

__attribute__((noinline)) static int decode_old(struct o2d_arena *a, const struct body *b)
{
    const ProtobufCMessageDescriptor *d =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    const char *reason;
    if (otlp_pb_check(d, b->p, b->n, OTLP_MAX_MESSAGE_DEPTH, &reason) != O2D_OK) {
        return -1;
    }
    return protobuf_c_message_unpack(d, &a->pb, b->n, b->p) != NULL ? 0 : -1;
}

static size_t utf8_valid_requests;

__attribute__((noinline)) static OtlpTraceReq *decode_one(struct o2d_arena *a, const struct body *b)
{
    OtlpTraceReq *req;
    int utf8;
    const char *reason;
    if (otlp_pb_decode_traces(a, b->p, b->n, &req, &utf8, &reason) != O2D_OK) {
        return NULL;
    }
    utf8_valid_requests += (size_t)utf8;
    return req;
}

__attribute__((noinline)) static void add_stats(struct stats_concentrator *c,
                                                const struct apm_result *res)
{
    for (size_t i = 0; i < res->n_payloads; i++) {
        stats_add_payload(c, res->payloads[i]);
    }
}

/* Varies one body in place: ids, and one byte of every span's name. */
static void vary(OtlpTraceReq *req, uint8_t round)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        OtlpResourceSpans *rs = req->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                OtlpSpan *s = rs->scope_spans[j]->spans[k];
                s->trace_id.data[0] ^= round;
                s->span_id.data[0] ^= round;
                size_t n = strlen(s->name);
                if (n > 0) {
                    s->name[n - 1] = (char)('a' + (round + k) % 26);
                }
            }
        }
    }
}

static int ignore_flush(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return O2D_OK;
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "sqlcache") == 0)) {
        fprintf(stderr, "usage: decode_cg BODIES ROUNDS [sqlcache]\n");
        return 2;
    }
    size_t len;
    uint8_t *file = bench_read_file(argv[1], &len);
    int rounds = atoi(argv[2]);
    if (file == NULL || rounds <= 0) {
        return 2;
    }
    struct body bodies[512];
    size_t nb = 0;
    static struct o2d_arena a, b;
    o2d_arena_init(&a, 256u << 20);
    o2d_arena_init(&b, 256u << 20);
    int single = !(len >= 8 && memcmp(file, "O2DLOAD1", 8) == 0);
    if (single) {
        /* One body: re-encode a varied copy per round (outside the measured functions). */
        for (int r = 0; r < rounds && nb < 512; r++) {
            OtlpTraceReq *req = decode_one(&a, &(struct body){file, len});
            if (req == NULL) {
                fprintf(stderr, "not a trace request\n");
                return 1;
            }
            vary(req, (uint8_t)(r + 1));
            size_t n = protobuf_c_message_get_packed_size(&req->base);
            bodies[nb].p = malloc(n);
            bodies[nb].n = protobuf_c_message_pack(&req->base, bodies[nb].p);
            nb++;
            o2d_arena_reset(&a);
        }
        rounds = 1;
    } else {
        for (size_t off = 8; off + 8 <= len && nb < 512;) {
            uint32_t n = bench_be32(file + off);
            if (off + 8 + n > len) {
                break;
            }
            bodies[nb].p = file + off + 8;
            bodies[nb].n = n;
            nb++;
            off += 8 + n;
        }
    }
    struct stats_config sc = {.bucket_ns = 10000000000ll,
                              .max_groups_per_bucket = 100000,
                              .compute_stats_by_span_kind = 1,
                              .peer_tags_aggregation = 1,
                              .agent_env = "none",
                              .agent_hostname = "bench",
                              .agent_version = "bench"};
    struct stats_concentrator *c;
    if (stats_concentrator_new(&c, &sc) != O2D_OK) {
        return 1;
    }
    struct apm_config acfg;
    memset(&acfg, 0, sizeof(acfg));
    if (argc == 4 && sql_cache_new(SQL_CACHE_DEFAULT_BYTES, &acfg.sql_cache) != O2D_OK) {
        return 1;
    }
    size_t spans = 0, requests = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nb; i++) {
            if (decode_old(&a, &bodies[i]) != 0) {
                fprintf(stderr, "body %zu: refused by the old path\n", i);
                return 1;
            }
            o2d_arena_reset(&a);
            size_t valid_before = utf8_valid_requests;
            OtlpTraceReq *req = decode_one(&b, &bodies[i]);
            if (req == NULL) {
                fprintf(stderr, "body %zu: refused by the one-pass decoder\n", i);
                return 1;
            }
            struct apm_result res;
            const char *reason;
            acfg.input_utf8_valid = utf8_valid_requests > valid_before;
            if (apm_translate(&b, req, &acfg, 1700000000000000000ll, &res, &reason) != O2D_OK) {
                fprintf(stderr, "body %zu: %s\n", i, reason);
                return 1;
            }
            add_stats(c, &res);
            spans += res.spans;
            requests++;
            o2d_arena_reset(&b);
        }
    }
    stats_flush(c, 0, 1, ignore_flush, NULL);
    struct stats_counters sct;
    stats_get_counters(c, &sct);
    printf("bodies %zu requests %zu spans %zu stats_spans %llu utf8_valid_requests %zu\n", nb,
           requests, spans, (unsigned long long)sct.spans_counted, utf8_valid_requests);
    if (acfg.sql_cache != NULL) {
        struct sql_cache_counters k;
        sql_cache_get_counters(acfg.sql_cache, &k);
        printf("sql_cache hits %llu misses %llu entries %llu bytes %llu\n",
               (unsigned long long)k.hits, (unsigned long long)k.misses,
               (unsigned long long)k.entries, (unsigned long long)k.bytes);
        sql_cache_free(acfg.sql_cache);
    }
    stats_concentrator_free(c);
    o2d_arena_cleanup(&a);
    o2d_arena_cleanup(&b);
    return 0;
}
