/*
 * fuzz_logs_translate.c: the logs path: bytes -> otlp_decode (OTLP/JSON when the input starts
 * with '{', protobuf otherwise) -> logs_translate, twice: as the exporter runs it (1 MB
 * entries, a large builder) and with small limits (entries of 256 to 1276 bytes, from the
 * input's last byte; a 4 KiB builder; gen_ai events skipped) so that cutting messages and
 * dropping records too large are reached. Every
 * object handed out must be one JSON object that jansson reads (so valid UTF-8) and fit the
 * entry limit; the counts must agree with the objects seen. One input in four also runs
 * with allocation failures injected. Checks end in abort(), which libFuzzer reports.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "llmobs.h"
#include "logs.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "otlp.h"

struct seen {
    size_t max_entry;
    uint64_t objects;
};

static int check_object(void *ctx, const uint8_t *json, size_t len)
{
    struct seen *s = ctx;
    if (s->max_entry > 0 && len > s->max_entry) {
        abort();
    }
    json_error_t err;
    json_t *v = json_loadb((const char *)json, len, 0, &err);
    if (v == NULL || !json_is_object(v)) {
        abort();
    }
    json_decref(v);
    s->objects++;
    return 0;
}

static void translate(struct logs_builder *b, struct o2d_arena *a, const OtlpLogsReq *req,
                      const struct logs_config *cfg, int faulty)
{
    struct seen s = {.max_entry = cfg->max_entry_bytes};
    struct logs_counts c = {0};
    int rv = logs_translate(b, a, req, cfg, check_object, &s, &c);
    if (rv == 0 && !faulty && c.translated != s.objects) {
        abort();
    }
    if (c.truncated > c.translated || c.translated > s.objects) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct logs_builder *big, *small;
    if (big == NULL &&
        (logs_builder_new(&big, 4u << 20) != 0 || logs_builder_new(&small, 4096) != 0)) {
        abort();
    }
    const struct logs_config exporter = {
        .ddsource = "otlp_log_ingestion",
        .otel_source = "datadog_exporter",
        .max_entry_bytes = LOGS_MAX_ENTRY_BYTES,
    };
    const struct logs_config tight = {
        .ddsource = "otlp_log_ingestion",
        .max_entry_bytes = 256 + 4 * (size_t)(size > 0 ? data[size - 1] : 0),
        .skip = llmobs_log_is_genai,
    };
    enum otlp_encoding enc = size > 0 && data[0] == '{' ? OTLP_ENC_JSON : OTLP_ENC_PROTOBUF;
    int faulty = size > 1 && (data[size - 1] + data[size / 2]) % 4 == 0;
    struct o2d_arena a;
    o2d_arena_init(&a, 16 * size + 1024 * 1024);
    struct otlp_request req;
    const char *reason;
    if (otlp_decode(&a, OTLP_SIGNAL_LOGS, enc, data, size, &req, &reason) == 0) {
        if (faulty) {
            o2d_alloc_fail_after(data[size - 2] % 16);
        }
        translate(big, &a, req.msg.logs, &exporter, faulty);
        translate(small, &a, req.msg.logs, &tight, faulty);
        o2d_alloc_fail_after(-1);
    }
    o2d_arena_cleanup(&a);
    return 0;
}
