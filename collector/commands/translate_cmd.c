/*
 * translate_cmd.c: `otel2dd translate [--config FILE] [--signal S] [FILE|-]`. Reads one
 * ExportMetricsServiceRequest (--signal metrics, or OTLP/JSON with "resourceMetrics", or
 * protobuf that is neither a trace nor a logs request) and prints the Datadog series and
 * sketches it becomes ({"series":[...],"sketches":[...]}), as a translator that has seen
 * nothing before would (a cumulative series' first point counts whole by the `auto` rule only
 * as the first point of its metric). Or reads one ExportLogsServiceRequest (--signal logs, or
 * OTLP/JSON with "resourceLogs", or protobuf that is not a trace request) and prints the Datadog
 * log objects it becomes ({"logs":[...]}). Otherwise reads one ExportTraceServiceRequest (OTLP
 * protobuf, or OTLP/JSON when it starts with '{'), and prints as JSON what otel2dd would send for
 * it, sending nothing: the AgentPayload (field names of the Datadog proto, 64-bit integers as
 * decimal strings) and the APM stats it adds (the msgpack StatsPayloads, as JSON), and the LLM
 * Observability span events ("llmobs": the objects that go in the envelopes' "spans"; the request
 * alone decides their parents, as if the trace buffer's deadline had passed). Users run it to see
 * why a span maps as it does; the golden tests run it on every fixture. The mapping options come
 * from the same configuration (and DD_SERVICE, DD_ENV, DD_VERSION) as the running collector,
 * and its processors (processors.redaction) are applied first, as they are there.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>
#include <openssl/evp.h>

#include "apm.h"
#include "apm_sample.h"
#include "config.h"
#include "datadog/trace/agent_payload.pb-c.h"
#include "datadog_metrics.h"
#include "llmobs_buffer.h"
#include "llmobs_exporter.h"
#include "logs.h"
#include "logs_exporter.h"
#include "mtr.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_json_out.h"
#include "o2d_time.h"
#include "otlp.h"
#include "pb_json.h"
#include "stats.h"
#include "translate_cmd.h"

#define TRANSLATE_INPUT_MAX  (64u * 1024 * 1024)
#define TRANSLATE_OUTPUT_MAX (512u * 1024 * 1024)

static int read_all(FILE *f, struct o2d_buf *b)
{
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        int rv = o2d_buf_append(b, chunk, n);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    return ferror(f) ? O2D_ERR_SYSTEM : O2D_OK;
}

/* msgpack -> JSON, for the stats payloads: maps, arrays, str, ints, floats, bin (base64). */
static int print_msgpack(struct o2d_buf *b, const msgpack_object *o, int depth)
{
    if (depth > 32) {
        return O2D_ERR_INVALID;
    }
    int rv = O2D_OK;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return o2d_buf_append_str(b, "null");
    case MSGPACK_OBJECT_BOOLEAN:
        return o2d_buf_append_str(b, o->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o2d_buf_printf(b, "%" PRIu64, o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return o2d_buf_printf(b, "%" PRId64, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return o2d_buf_printf(b, "%.17g", o->via.f64);
    case MSGPACK_OBJECT_STR:
        return o2d_json_append_string(b, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        size_t n = 4 * ((o->via.bin.size + 2) / 3);
        rv = o2d_buf_reserve(b, n + 3);
        if (rv == O2D_OK) {
            b->data[b->len++] = '"';
            b->len += (size_t)EVP_EncodeBlock(
                b->data + b->len, (const unsigned char *)o->via.bin.ptr, (int)o->via.bin.size);
            b->data[b->len++] = '"';
        }
        return rv;
    }
    case MSGPACK_OBJECT_ARRAY:
        rv = o2d_buf_append_byte(b, '[');
        for (uint32_t i = 0; i < o->via.array.size && rv == O2D_OK; i++) {
            if (i > 0) {
                rv = o2d_buf_append_byte(b, ',');
            }
            if (rv == O2D_OK) {
                rv = print_msgpack(b, &o->via.array.ptr[i], depth + 1);
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, ']') : rv;
    case MSGPACK_OBJECT_MAP:
        rv = o2d_buf_append_byte(b, '{');
        for (uint32_t i = 0; i < o->via.map.size && rv == O2D_OK; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i > 0) {
                rv = o2d_buf_append_byte(b, ',');
            }
            if (rv == O2D_OK) {
                rv = k->type == MSGPACK_OBJECT_STR
                         ? o2d_json_append_string(b, k->via.str.ptr, k->via.str.size)
                         : o2d_buf_append_str(b, "\"?\"");
            }
            if (rv == O2D_OK) {
                rv = o2d_buf_append_byte(b, ':');
            }
            if (rv == O2D_OK) {
                rv = print_msgpack(b, &o->via.map.ptr[i].val, depth + 1);
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
    default:
        return o2d_buf_append_str(b, "null");
    }
}

struct stats_out {
    struct o2d_buf *b;
    int n;
};

static int emit_stats(void *ctx, const uint8_t *p, size_t len)
{
    struct stats_out *so = ctx;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rv = msgpack_unpack_next(&u, (const char *)p, len, &off) == MSGPACK_UNPACK_SUCCESS
                 ? O2D_OK
                 : O2D_ERR_INTERNAL;
    if (rv == O2D_OK && so->n++ > 0) {
        rv = o2d_buf_append_byte(so->b, ',');
    }
    if (rv == O2D_OK) {
        rv = print_msgpack(so->b, &u.data, 0);
    }
    msgpack_unpacked_destroy(&u);
    return rv;
}

struct llmobs_out {
    struct o2d_buf *b;
    int n;
};

static int emit_llmobs(void *ctx, const uint8_t *json, size_t len)
{
    struct llmobs_out *lo = ctx;
    int rv = lo->n++ > 0 ? o2d_buf_append_byte(lo->b, ',') : O2D_OK;
    return rv == O2D_OK ? o2d_buf_append(lo->b, json, len) : rv;
}

/* The LLM Obs events of the request: built, then settled by a forced poll of a buffer that
 * holds only this request. */
static int print_llmobs(struct o2d_buf *out, const OtlpTraceReq *req,
                        const struct datadog_llmobs_config *lc)
{
    int rv = o2d_buf_append_str(out, ",\"llmobs\":[");
    if (rv != O2D_OK || !lc->enabled) {
        return rv == O2D_OK ? o2d_buf_append_byte(out, ']') : rv;
    }
    struct llmobs_exporter_batch *bt = NULL;
    struct llmobs_buffer *lb = NULL;
    struct llmobs_buffer_config bc = {
        .deadline_ns = lc->buffer_timeout_ms * 1000000LL,
        .max_spans = 1u << 24,
        .max_bytes = TRANSLATE_OUTPUT_MAX,
        .max_event_size = 5000000,
    };
    rv = llmobs_exporter_batch_build(req, &lc->map, 0, &bt);
    if (rv == O2D_OK && bt != NULL) {
        rv = llmobs_buffer_new(&lb, &bc);
        if (rv == O2D_OK) {
            rv = llmobs_exporter_batch_add(lb, bt, 0);
            bt = NULL;
        }
        if (rv == O2D_OK) {
            struct llmobs_out lo = {out, 0};
            rv = llmobs_buffer_poll(lb, 0, 1, emit_llmobs, &lo);
        }
    }
    llmobs_exporter_batch_free(bt);
    llmobs_buffer_free(lb);
    return rv == O2D_OK ? o2d_buf_append_byte(out, ']') : rv;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: otel2dd translate [--config FILE] [--signal traces|logs|metrics] "
               "[FILE|-]\n"
               "\n"
               "Reads one OTLP ExportTraceServiceRequest (protobuf, or OTLP/JSON) from FILE or\n"
               "standard input and prints, as JSON, the Datadog AgentPayload, APM stats and\n"
               "LLM Observability span events otel2dd would send for it; or one\n"
               "ExportLogsServiceRequest and the Datadog log objects it becomes; or one\n"
               "ExportMetricsServiceRequest and the Datadog series and sketches it becomes.\n"
               "Without --signal, OTLP/JSON with \"resourceLogs\" is logs, with\n"
               "\"resourceMetrics\" metrics, and protobuf that is not a valid trace request\n"
               "is tried as logs, then as metrics. Sends nothing.\n");
}

static int emit_log(void *ctx, const uint8_t *json, size_t len)
{
    struct o2d_buf *out = ctx;
    int rv = o2d_buf_append_str(out, out->data[out->len - 1] == '[' ? "\n" : ",\n");
    return rv == O2D_OK ? o2d_buf_append(out, json, len) : rv;
}

/* {"logs":[<objects>],"records":n,"translated":n,...} for a logs request. */
static int print_logs(struct o2d_buf *out, struct o2d_arena *a, const struct otlp_request *req,
                      const struct o2d_config *cfg)
{
    struct logs_config lc;
    logs_exporter_translate_config(&cfg->datadog, &lc);
    struct logs_builder *b = NULL;
    struct logs_counts c = {0};
    int rv = logs_builder_new(&b, 16u << 20);
    if (rv == O2D_OK) {
        rv = o2d_buf_append_str(out, "{\"logs\":[");
    }
    if (rv == O2D_OK) {
        rv = logs_translate(b, a, req->msg.logs, &lc, emit_log, out, &c);
    }
    logs_builder_free(b);
    if (rv == O2D_OK) {
        rv = o2d_buf_printf(out,
                            "],\"records\":%zu,\"translated\":%" PRIu64 ",\"truncated\":%" PRIu64
                            ",\"left_to_llmobs\":%" PRIu64 ",\"too_large\":%" PRIu64 "}\n",
                            req->accepted, c.translated, c.truncated, c.skipped, c.too_large);
    }
    return rv;
}

static int print_tags(struct o2d_buf *out, const char *const *tags, size_t n, const char *host)
{
    int rv = o2d_buf_append_str(out, ",\"tags\":[");
    for (size_t i = 0; rv == O2D_OK && i < n; i++) {
        rv = i > 0 ? o2d_buf_append_str(out, ",") : O2D_OK;
        rv = rv == O2D_OK ? o2d_json_append_string(out, tags[i], strlen(tags[i])) : rv;
    }
    rv = rv == O2D_OK ? o2d_buf_append_str(out, "],\"host\":") : rv;
    if (rv == O2D_OK) {
        rv = host != NULL ? o2d_json_append_string(out, host, strlen(host))
                          : o2d_buf_append_str(out, "null");
    }
    return rv;
}

/* {"series":[...],"sketches":[...],"points":n,"dropped":{...}} for a metrics request. */
static int print_metrics(struct o2d_buf *out, struct o2d_arena *a, const struct otlp_request *req,
                         const struct o2d_config *cfg)
{
    static const char *const types[] = {"unspecified", "count", "rate", "gauge"};
    struct mtr_translator *t = datadog_metrics_translator_new(&cfg->datadog, 0);
    if (t == NULL) {
        return O2D_ERR_CONFIG;
    }
    struct mtr_result res;
    int rv = mtr_translate(t, req->msg.metrics, (uint64_t)o2d_realtime_ns(),
                           datadog_metrics_resource, (void *)&cfg->datadog, a, &res);
    mtr_free(t);
    const struct ddm_batch *b = &res.batch;
    rv = rv == O2D_OK ? o2d_buf_append_str(out, "{\"series\":[") : rv;
    for (size_t i = 0; rv == O2D_OK && i < b->nseries; i++) {
        const struct ddm_series *p = &b->series[i];
        rv = o2d_buf_append_str(out, i > 0 ? ",\n{\"metric\":" : "\n{\"metric\":");
        rv = rv == O2D_OK ? o2d_json_append_string(out, p->name, strlen(p->name)) : rv;
        rv = rv == O2D_OK ? o2d_buf_printf(out,
                                           ",\"type\":\"%s\",\"ts\":%" PRId64
                                           ",\"value\":%.17g,\"interval\":%" PRId64,
                                           types[(unsigned)p->type < 4 ? p->type : 0], p->ts_s,
                                           p->value, p->interval_s)
                          : rv;
        rv = rv == O2D_OK ? print_tags(out, p->tags, p->ntags, p->host) : rv;
        rv = rv == O2D_OK ? o2d_buf_append_str(out, "}") : rv;
    }
    rv = rv == O2D_OK ? o2d_buf_append_str(out, "],\"sketches\":[") : rv;
    for (size_t i = 0; rv == O2D_OK && i < b->nsketches; i++) {
        const struct ddm_sketch *k = &b->sketches[i];
        rv = o2d_buf_append_str(out, i > 0 ? ",\n{\"metric\":" : "\n{\"metric\":");
        rv = rv == O2D_OK ? o2d_json_append_string(out, k->name, strlen(k->name)) : rv;
        rv = rv == O2D_OK ? o2d_buf_printf(out,
                                           ",\"ts\":%" PRId64 ",\"cnt\":%" PRId64
                                           ",\"min\":%.17g,\"max\":%.17g,\"avg\":%.17g,"
                                           "\"sum\":%.17g",
                                           k->ts_s, k->cnt, k->min, k->max, k->avg, k->sum)
                          : rv;
        rv = rv == O2D_OK ? print_tags(out, k->tags, k->ntags, k->host) : rv;
        rv = rv == O2D_OK ? o2d_buf_append_str(out, ",\"k\":[") : rv;
        for (size_t j = 0; rv == O2D_OK && j < k->nbins; j++) {
            rv = o2d_buf_printf(out, j > 0 ? ",%d" : "%d", (int)k->k[j]);
        }
        rv = rv == O2D_OK ? o2d_buf_append_str(out, "],\"n\":[") : rv;
        for (size_t j = 0; rv == O2D_OK && j < k->nbins; j++) {
            rv = o2d_buf_printf(out, j > 0 ? ",%u" : "%u", (unsigned)k->n[j]);
        }
        rv = rv == O2D_OK ? o2d_buf_append_str(out, "]}") : rv;
    }
    rv = rv == O2D_OK ? o2d_buf_printf(out, "],\"points\":%" PRIu64 ",\"dropped\":{", res.points)
                      : rv;
    int any = 0;
    for (int i = 0; rv == O2D_OK && i < MTR_DROP_N; i++) {
        if (res.dropped[i] > 0) {
            rv = o2d_buf_printf(out, "%s\"%s\":%" PRIu64, any++ ? "," : "",
                                mtr_drop_name((enum mtr_drop)i), res.dropped[i]);
        }
    }
    return rv == O2D_OK ? o2d_buf_append_str(out, "}}\n") : rv;
}

/* Whether OTLP/JSON text names resource metrics (and no resource spans or logs). */
static int json_is_metrics(const struct o2d_buf *in)
{
    const char *t = (const char *)in->data;
    return (memmem(t, in->len, "\"resourceMetrics\"", 17) != NULL ||
            memmem(t, in->len, "\"resource_metrics\"", 18) != NULL) &&
           memmem(t, in->len, "\"resourceSpans\"", 15) == NULL &&
           memmem(t, in->len, "\"resourceLogs\"", 14) == NULL;
}

/* Whether OTLP/JSON text names resource logs (and no resource spans) at its top level. */
static int json_is_logs(const struct o2d_buf *in)
{
    const char *t = (const char *)in->data;
    return (memmem(t, in->len, "\"resourceLogs\"", 14) != NULL ||
            memmem(t, in->len, "\"resource_logs\"", 15) != NULL) &&
           memmem(t, in->len, "\"resourceSpans\"", 15) == NULL &&
           memmem(t, in->len, "\"resource_spans\"", 16) == NULL;
}

/* The configuration's processors (redaction), as the running collector applies them
 * before any exporter sees the request: what is printed is what would leave. */
static int apply_processors(const struct o2d_config *cfg, struct otlp_request *req)
{
    int rv = o2d_processors_apply(cfg, req);
    if (rv != O2D_OK) {
        fprintf(stderr, "otel2dd translate: the processors failed: %s\n", o2d_strerror(rv));
    }
    return rv;
}

int translate_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"signal", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    const char *signal = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 's':
            if (strcmp(optarg, "traces") != 0 && strcmp(optarg, "logs") != 0 &&
                strcmp(optarg, "metrics") != 0) {
                fprintf(stderr, "otel2dd translate: --signal: traces, logs or metrics, not '%s'\n",
                        optarg);
                return 2;
            }
            signal = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return 2;
    }
    const char *input = optind < argc ? argv[optind] : "-";

    struct o2d_config cfg;
    char err[1024] = "";
    int rv = o2d_config_read(&cfg, config_path, O2D_PREPARE_NO_KEY, err, sizeof(err));
    if (rv != O2D_OK) {
        fprintf(stderr, "otel2dd translate: %s\n", err);
        return 1;
    }

    int exit_code = 1;
    struct o2d_buf in, out;
    struct o2d_arena arena;
    struct stats_concentrator *sc = NULL;
    o2d_buf_init(&in, TRANSLATE_INPUT_MAX);
    o2d_buf_init(&out, TRANSLATE_OUTPUT_MAX);
    o2d_arena_init(&arena, (size_t)16 * TRANSLATE_INPUT_MAX);

    FILE *f = strcmp(input, "-") == 0 ? stdin : fopen(input, "rb");
    if (f == NULL) {
        fprintf(stderr, "otel2dd translate: cannot open '%s': %s\n", input, strerror(errno));
        goto out;
    }
    rv = read_all(f, &in);
    if (f != stdin) {
        fclose(f);
    }
    if (rv != O2D_OK) {
        fprintf(stderr, "otel2dd translate: cannot read '%s': %s\n", input,
                rv == O2D_ERR_TOO_LARGE ? "larger than 64 MiB" : o2d_strerror(rv));
        goto out;
    }
    size_t first = 0;
    while (first < in.len && (in.data[first] == ' ' || in.data[first] == '\n' ||
                              in.data[first] == '\t' || in.data[first] == '\r')) {
        first++;
    }
    enum otlp_encoding enc =
        first < in.len && in.data[first] == '{' ? OTLP_ENC_JSON : OTLP_ENC_PROTOBUF;

    struct otlp_request req;
    const char *reason = NULL;
    int metrics = signal != NULL ? strcmp(signal, "metrics") == 0
                                 : enc == OTLP_ENC_JSON && json_is_metrics(&in);
    int logs = signal != NULL ? strcmp(signal, "logs") == 0
                              : !metrics && enc == OTLP_ENC_JSON && json_is_logs(&in);
    if (!logs && !metrics) {
        rv = otlp_decode(&arena, OTLP_SIGNAL_TRACES, enc, in.data, in.len, &req, &reason);
        /* protobuf does not say what it is: one that is no trace request may be logs */
        logs = rv != O2D_OK && signal == NULL && enc == OTLP_ENC_PROTOBUF;
    }
    if (logs) {
        const char *lreason = NULL;
        o2d_arena_reset(&arena);
        rv = otlp_decode(&arena, OTLP_SIGNAL_LOGS, enc, in.data, in.len, &req, &lreason);
        /* ... or metrics */
        metrics = rv != O2D_OK && signal == NULL && enc == OTLP_ENC_PROTOBUF;
        if (rv != O2D_OK && !metrics) {
            fprintf(stderr,
                    "otel2dd translate: '%s' is not a valid %s ExportLogsServiceRequest: %s\n",
                    input, enc == OTLP_ENC_JSON ? "OTLP/JSON" : "OTLP protobuf", lreason);
            goto out;
        }
    }
    if (metrics) {
        const char *mreason = NULL;
        o2d_arena_reset(&arena);
        rv = otlp_decode(&arena, OTLP_SIGNAL_METRICS, enc, in.data, in.len, &req, &mreason);
        if (rv != O2D_OK) {
            if (signal == NULL && enc == OTLP_ENC_PROTOBUF) {
                fprintf(stderr,
                        "otel2dd translate: '%s' is no valid OTLP protobuf trace, logs or metrics "
                        "request (as metrics: %s); --signal says which it is\n",
                        input, mreason);
            } else {
                fprintf(stderr,
                        "otel2dd translate: '%s' is not a valid %s ExportMetricsServiceRequest: "
                        "%s\n",
                        input, enc == OTLP_ENC_JSON ? "OTLP/JSON" : "OTLP protobuf", mreason);
            }
            goto out;
        }
        if ((rv = apply_processors(&cfg, &req)) != O2D_OK) {
            goto out;
        }
        rv = print_metrics(&out, &arena, &req, &cfg);
        if (rv != O2D_OK) {
            fprintf(stderr, "otel2dd translate: cannot translate the metrics: %s\n",
                    o2d_strerror(rv));
            goto out;
        }
        if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
            fprintf(stderr, "otel2dd translate: cannot write the result: %s\n", strerror(errno));
            goto out;
        }
        exit_code = 0;
        goto out;
    }
    if (logs) {
        if (req.rejected > 0) {
            fprintf(stderr, "otel2dd translate: %zu log records rejected: %s\n", req.rejected,
                    req.reject_reason);
        }
        if ((rv = apply_processors(&cfg, &req)) != O2D_OK) {
            goto out;
        }
        rv = print_logs(&out, &arena, &req, &cfg);
        if (rv != O2D_OK) {
            fprintf(stderr, "otel2dd translate: cannot print the result: %s\n", o2d_strerror(rv));
            goto out;
        }
        if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
            fprintf(stderr, "otel2dd translate: cannot write the result: %s\n", strerror(errno));
            goto out;
        }
        exit_code = 0;
        goto out;
    }
    if (rv != O2D_OK) {
        fprintf(stderr, "otel2dd translate: '%s' is not a valid %s ExportTraceServiceRequest: %s\n",
                input, enc == OTLP_ENC_JSON ? "OTLP/JSON" : "OTLP protobuf", reason);
        goto out;
    }
    if (req.rejected > 0) {
        fprintf(stderr, "otel2dd translate: %zu spans rejected: %s\n", req.rejected,
                req.reject_reason);
    }
    if ((rv = apply_processors(&cfg, &req)) != O2D_OK) {
        goto out;
    }
    struct apm_result res;
    rv = apm_translate(&arena, req.msg.traces, &cfg.datadog.apm, o2d_realtime_ns(), &res, &reason);
    if (rv != O2D_OK) {
        fprintf(stderr, "otel2dd translate: %s\n", reason ? reason : o2d_strerror(rv));
        goto out;
    }

    /* processors.probabilistic_sampler: the payload shows the kept traces, the stats every
     * span (as the exporter sends them). */
    size_t *n_kept = NULL;
    struct apm_sample_counts counts;
    memset(&counts, 0, sizeof(counts));
    rv = apm_sample(&arena, cfg.datadog.sampler, &res, &n_kept, &counts);
    if (rv != O2D_OK) {
        fprintf(stderr, "otel2dd translate: sampling: %s\n", o2d_strerror(rv));
        goto out;
    }
    size_t sampled_out = 0;
    for (int r = 0; r < APM_SAMPLE_RULES; r++) {
        sampled_out += counts.dropped_spans[r];
    }
    size_t *all_chunks = o2d_arena_alloc(&arena, (res.n_payloads + 1) * sizeof(*all_chunks));
    if (all_chunks == NULL) {
        fprintf(stderr, "otel2dd translate: %s\n", o2d_strerror(O2D_ERR_TOO_LARGE));
        goto out;
    }
    for (size_t i = 0; i < res.n_payloads; i++) {
        all_chunks[i] = res.payloads[i]->n_chunks;
        res.payloads[i]->n_chunks = n_kept[i];
    }

    Datadog__Trace__AgentPayload ap = DATADOG__TRACE__AGENT_PAYLOAD__INIT;
    ap.hostname = cfg.datadog.hostname;
    ap.env = "none";
    ap.agentversion = "otel2dd/" O2D_VERSION;
    ap.targettps = 10;
    ap.errortps = 10;
    ap.tracerpayloads = res.payloads;
    ap.n_tracerpayloads = res.n_payloads;
    rv = o2d_buf_append_str(&out, "{\"agentPayload\":");
    if (rv == O2D_OK) {
        rv = pb_json_print(&out, &ap.base);
    }
    for (size_t i = 0; i < res.n_payloads; i++) {
        res.payloads[i]->n_chunks = all_chunks[i];
    }

    struct stats_config scfg = {
        .bucket_ns = 10ll * 1000000000,
        .max_groups_per_bucket = 100000,
        .compute_stats_by_span_kind = cfg.datadog.compute_stats_by_span_kind,
        .peer_tags_aggregation = cfg.datadog.peer_tags_aggregation,
        .agent_env = "none",
        .agent_hostname = cfg.datadog.hostname,
        .agent_version = "otel2dd/" O2D_VERSION,
    };
    if (rv == O2D_OK) {
        rv = stats_concentrator_new(&sc, &scfg);
    }
    for (size_t i = 0; rv == O2D_OK && i < res.n_payloads; i++) {
        if (!res.client_computed_stats[i]) {
            rv = stats_add_payload(sc, res.payloads[i]);
        }
    }
    struct stats_out so = {&out, 0};
    if (rv == O2D_OK) {
        rv = o2d_buf_append_str(&out, ",\"stats\":[");
    }
    if (rv == O2D_OK) {
        rv = stats_flush(sc, INT64_MAX, 1, emit_stats, &so);
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append_byte(&out, ']');
    }
    if (rv == O2D_OK) {
        rv = print_llmobs(&out, req.msg.traces, &cfg.datadog.llmobs);
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_printf(&out, ",\"spans\":%zu,\"ignored\":%zu,\"sampled_out\":%zu}\n",
                            res.spans, res.ignored, sampled_out);
    }
    if (rv != O2D_OK) {
        fprintf(stderr, "otel2dd translate: cannot print the result: %s\n", o2d_strerror(rv));
        goto out;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "otel2dd translate: cannot write the result: %s\n", strerror(errno));
        goto out;
    }
    exit_code = 0;
out:
    stats_concentrator_free(sc);
    o2d_arena_cleanup(&arena);
    o2d_buf_cleanup(&in);
    o2d_buf_cleanup(&out);
    o2d_config_cleanup(&cfg);
    return exit_code;
}
