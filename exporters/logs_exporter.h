/*
 * logs_exporter.h: the Datadog Logs exporter. OTLP log records become Datadog log objects
 * (translate/logs/logs.h) on the receiving thread and are queued, one an item, on a
 * destination of the delivery layer (delivery.h) that POSTs them as gzip JSON arrays to
 * https://http-intake.logs.<site>/api/v2/logs (or logs.endpoint) with DD-API-KEY; the delivery
 * layer batches within the intake's limits, retries, applies backpressure (admit answers
 * O2D_ERR_BUSY when the queue is at its budget) and counts.
 *
 * gen_ai event records that LLM Observability takes (llmobs_log_is_genai, with LLM Obs on)
 * hold prompts: they are not sent as logs unless logs.include_genai_events.
 */
#ifndef O2D_LOGS_EXPORTER_H
#define O2D_LOGS_EXPORTER_H

#include "datadog.h"
#include "exporter.h"
#include "logs.h"

struct http_client;

/* ddsource and the otel_source tag of every log object (the Collector exporter's values, so
 * that Datadog's OTLP log views and pipelines see them as they would the Collector's). */
#define LOGS_DDSOURCE    "otlp_log_ingestion"
#define LOGS_OTEL_SOURCE "datadog_exporter"

/*
 * Borrows cfg (api_key, site, logs, llmobs.enabled, queue_max_bytes, queue_storage,
 * max_elapsed_ms, flush_interval_ms) and `http` (shared; NULL: a client of its own, as
 * llmobs_exporter_new) for the exporter's lifetime.
 */
int logs_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                      struct http_client *http);
/* "https://http-intake.logs.<site>" or logs.endpoint, without a trailing slash. */
void logs_exporter_intake_base(const struct datadog_config *cfg, char *out, size_t n);
/* The translation settings the exporter uses (what `otel2dd translate` prints too). */
void logs_exporter_translate_config(const struct datadog_config *cfg, struct logs_config *out);

#endif
