/*
 * logs.h: OTLP log records -> Datadog log objects, the JSON objects (HTTPLogItem) that
 * POST /api/v2/logs takes in an array. One object per record, written as Datadog's own OTLP
 * logs translator writes it (logs.c names the rules and their sources).
 *
 * Pure: no configuration file, no I/O. The caller says what ends ddtags (otel_source), the
 * per-entry size limit and which records to leave out (gen_ai events already joined to LLM
 * Observability spans), and receives each object through a callback.
 */
#ifndef O2D_LOGS_H
#define O2D_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_arena.h"
#include "otlp.h"

/* Datadog's intake accepts an entry up to 1 MB (larger ones it truncates); we cut the message
 * so that the entry fits, as the Datadog Agent marks a cut line. */
#define LOGS_MAX_ENTRY_BYTES  1000000u
#define LOGS_TRUNCATED_MARKER "...TRUNCATED..."
/* Nested maps of record attributes are flattened to this depth; deeper ones become JSON. */
#define LOGS_FLATTEN_DEPTH 10

struct logs_config {
    const char *ddsource;    /* "otlp_log_ingestion" */
    const char *otel_source; /* ddtags end with otel_source:<this>; NULL or "": no such tag */
    size_t max_entry_bytes;  /* an entry past this has its message cut; 0: no limit */
    /* Records that are not logs here (counted skipped); NULL: none. */
    int (*skip)(const OtlpLogRecord *r);
};

/* What one call did, added to by logs_translate. */
struct logs_counts {
    uint64_t translated; /* objects emitted (truncated ones included) */
    uint64_t truncated;  /* of those, with their message cut to fit max_entry_bytes */
    uint64_t skipped;    /* left out by cfg->skip */
    uint64_t too_large;  /* could not be written within the builder's limit, or to fit
                            max_entry_bytes by cutting the message: dropped */
};

/* Receives one log object (JSON, borrowed for the call). Non-zero stops the translation. */
typedef int (*logs_emit_fn)(void *ctx, const uint8_t *json, size_t len);

/* Scratch reused across records and requests: one per thread. max_bytes bounds what one
 * record may take while it is written (its attributes flattened, its JSON). */
struct logs_builder;
int logs_builder_new(struct logs_builder **out, size_t max_bytes);
void logs_builder_free(struct logs_builder *b);

/*
 * Writes every log record of req as a Datadog log object and hands each to emit, in order.
 * Values made up on the way (AsString of maps, hostnames) go into `a` (the request's arena).
 * Returns O2D_OK, O2D_ERR_NOMEM, or what emit returned; a record that does not fit is
 * counted too_large and the others go on.
 */
int logs_translate(struct logs_builder *b, struct o2d_arena *a, const OtlpLogsReq *req,
                   const struct logs_config *cfg, logs_emit_fn emit, void *ctx,
                   struct logs_counts *counts);

/* statusFromSeverityNumber: "trace", "debug", "info", "warn", "error", "fatal" (above 24:
 * "error"). */
const char *logs_status_of_severity(int severity_number);

#endif
