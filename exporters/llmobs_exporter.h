/*
 * llmobs_exporter.h: the Datadog LLM Observability exporter. gen_ai spans become LLM Obs
 * span events (translate/llmobs/llmobs.h), wait in the trace buffer until their LLM Obs parent is
 * settled (translate/llmobs/llmobs_buffer.h), and are POSTed as the JSON array of envelopes
 * Datadog's tracers send to <llmobs-intake.<site>>/api/v2/llmobs
 * (../shared/reference/llmobs.md 1.1-1.4).
 *
 * submit() runs on the receiving thread: traces are classified, their LLM Obs spans built and
 * every span of the traces that have some is added to the buffer; gen_ai log records join
 * their span there. When the events waiting to be sent pass their byte budget, submit answers
 * O2D_ERR_BUSY so the receiver says "retry later". One sender thread polls the buffer every
 * 200 ms and sends through the shared HTTP layer (http_client.h), which retries.
 *
 * The APM side of the same spans (type llm) is datadog.c's business. (Not named llmobs.h:
 * datadog.h includes translate/llmobs/llmobs.h as "llmobs.h", which a header here would shadow.)
 */
#ifndef O2D_LLMOBS_EXPORTER_H
#define O2D_LLMOBS_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "datadog.h"
#include "exporter.h"
#include "llmobs.h"
#include "llmobs_buffer.h"
#include "otlp.h"

struct http_client;

/*
 * Borrows cfg (cfg->api_key, cfg->site, cfg->llmobs, cfg->queue_max_bytes, cfg->max_elapsed_ms)
 * and `http` for the exporter's lifetime. `http` NULL: the exporter starts a client of its
 * own. With a shared client, the owner calls llmobs_exporter_stop(), then frees the client
 * (which completes what is still retrying), then destroys the exporter.
 */
int llmobs_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                        struct http_client *http);
/* Stops the sender thread (idempotent) and counts the events still queued and LLM Obs spans still
 * in the trace buffer as dropped (shutdown); the exporter stays readable until destroyed. */
void llmobs_exporter_stop(struct exporter *e);

/* "https://llmobs-intake.<site>" or llmobs.endpoint, without a trailing slash. */
void llmobs_exporter_intake_base(const struct datadog_config *cfg, char *out, size_t n);

/* Why LLM Obs events were not delivered; closed set, safe as a metric label. */
enum llmobs_drop_reason {
    LLMOBS_DROP_REJECTED_4XX = 0,      /* the intake refused the body (403, 413, 400...) */
    LLMOBS_DROP_RETRIES_EXHAUSTED = 1, /* still failing after max_elapsed_ms, or no memory */
    LLMOBS_DROP_TOO_LARGE = 2,         /* one event alone does not fit in a body */
    LLMOBS_DROP_SHUTDOWN = 3,          /* still waiting or in flight when the exporter stopped */
    LLMOBS_DROP_N
};
const char *llmobs_exporter_drop_reason_name(int reason);

struct llmobs_exporter_counters {
    uint64_t spans_seen;     /* LLM Obs spans classified and built */
    uint64_t spans_refused;  /* LLM Obs spans of requests answered "retry later" */
    uint64_t logs_seen;      /* gen_ai log records handed to the buffer */
    uint64_t events_queued;  /* events taken from the buffer */
    uint64_t events_sent;    /* accepted by the intake */
    uint64_t events_retried; /* events times retries */
    uint64_t events_dropped[LLMOBS_DROP_N];
    uint64_t bodies_sent;
    uint64_t bytes_sent;
    struct llmobs_buffer_counters buffer;
};
void llmobs_exporter_counters(const struct exporter *e, struct llmobs_exporter_counters *out);

/*
 * The part of submit that the exporter and `otel2dd translate` share. Building is done
 * without the buffer (no lock needed); adding takes the buffer (the caller locks).
 */
struct llmobs_exporter_batch;
/* Classifies every span of `req` and builds the LLM Obs ones. *out is NULL when the request
 * has none, unless `skeletons`: then a request without LLM Obs spans still yields its span
 * ids, because they may link spans the buffer holds to their root (an HTTP root usually
 * arrives last, in a request of its own). O2D_OK or O2D_ERR_NOMEM. */
int llmobs_exporter_batch_build(const OtlpTraceReq *req, const struct llmobs_config *map,
                                int skeletons, struct llmobs_exporter_batch **out);
/* The same with a builder kept by the caller (llmobs.h; NULL: one for this call only). */
int llmobs_exporter_batch_build_with(struct llmobs_builder *bl, const OtlpTraceReq *req,
                                     const struct llmobs_config *map, int skeletons,
                                     struct llmobs_exporter_batch **out);
/* LLM Obs spans in the batch. */
size_t llmobs_exporter_batch_llm_spans(const struct llmobs_exporter_batch *bt);
/* Notes the batch's traces, then adds every span of them (LLM Obs spans with their event,
 * the others as skeletons); the built spans move to the buffer. Frees the batch. */
int llmobs_exporter_batch_add(struct llmobs_buffer *b, struct llmobs_exporter_batch *bt,
                              int64_t now_ns);
void llmobs_exporter_batch_free(struct llmobs_exporter_batch *bt);

#endif
