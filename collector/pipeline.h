/*
 * pipeline.h: what receivers hand decoded requests to. It owns the exporters and passes
 * each request to every one of them before returning, so the receiver can answer. Until
 * the Datadog exporters exist the debug exporter is the only one.
 */
#ifndef O2D_PIPELINE_H
#define O2D_PIPELINE_H

#include "config.h"
#include "ingest.h"
#include "otlp.h"
#include "prom.h"

struct pipeline;

int pipeline_new(struct pipeline **out, const struct o2d_config *cfg);
/* Hands one request (borrowed; copied by whoever keeps data) to the exporters. O2D_OK, or
 * O2D_ERR_BUSY / O2D_ERR_SHUTDOWN when it cannot take it now. */
int pipeline_submit(struct pipeline *p, enum o2d_transport tr, const struct otlp_request *req);
/* 1 when an exporter sends metrics on (else ingest counts them as not forwarded). */
int pipeline_forwards_metrics(const struct pipeline *p);
/* For ingest_set_full(): whether an exporter would refuse any request of signal `sig` now (a
 * full queue); ctx is the struct pipeline. */
int pipeline_ingest_full(void *ctx, int sig);
/* pipeline_submit for ingest_new(): ctx is the struct pipeline. */
int pipeline_ingest_submit(void *ctx, enum o2d_transport tr, const struct otlp_request *req);
/* Flushes the exporters side by side, waiting at most until deadline_ms (monotonic clock),
 * then stops them: whatever was not delivered by then is counted as dropped. */
void pipeline_shutdown(struct pipeline *p, int64_t deadline_ms);
/* After pipeline_shutdown: one log line "undelivered" with what was accepted and never
 * delivered since the start, per exporter and reason, or that nothing was lost. */
void pipeline_log_undelivered(struct pipeline *p);
void pipeline_free(struct pipeline *p);
/* The preview store (extensions.preview), owned by the pipeline; NULL when off. */
struct preview *pipeline_preview(struct pipeline *p);
/* The preview's status: every output's queue and counters and its last intake error, as a
 * JSON array appended to b (a preview_status_fn; ctx is the pipeline). */
int pipeline_status_json(void *ctx, struct o2d_buf *b);
/* Writes the otel2dd_translated_*, otel2dd_exporter_* and otel2dd_llmobs_trace_buffer_*
 * families from the exporters' snapshots (exporter_type.metrics). Thread-safe until
 * pipeline_free. */
void pipeline_write_metrics(struct pipeline *p, struct prom_writer *w);

#endif
