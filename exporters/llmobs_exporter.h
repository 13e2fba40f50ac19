/*
 * llmobs_exporter.h: the Datadog LLM Observability exporter. gen_ai spans become LLM Obs
 * span events (translate/llmobs/llmobs.h), wait in the trace buffer until their LLM Obs parent is
 * settled (translate/llmobs/llmobs_buffer.h), and are POSTed as the JSON array of envelopes
 * Datadog's tracers send to <llmobs-intake.<site>>/api/v2/llmobs
 * (../shared/reference/llmobs.md 1.1-1.4).
 *
 * submit() runs on the receiving thread: traces are classified, their LLM Obs spans built and
 * every span of the traces that have some is added to the buffer; gen_ai log records join
 * their span there. When the events waiting to be sent pass their byte budget, admit answers
 * O2D_ERR_BUSY so the receiver says "retry later". The delivery layer (delivery.h) sends: its
 * destination's tick polls the buffer every 100 ms, and the shared HTTP client retries.
 *
 * The APM side of the same spans (type llm) is datadog.c's business. (Not named llmobs.h:
 * datadog.h includes translate/llmobs/llmobs.h as "llmobs.h", which a header here would shadow.)
 */
#ifndef O2D_LLMOBS_EXPORTER_H
#define O2D_LLMOBS_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "datadog.h"
#include "delivery.h"
#include "exporter.h"
#include "llmobs.h"
#include "llmobs_buffer.h"
#include "otlp.h"
#include "res_ecs.h"

struct http_client;

/*
 * Borrows cfg (cfg->api_key, cfg->site, cfg->llmobs, cfg->queue_max_bytes, cfg->max_elapsed_ms)
 * and `http` for the exporter's lifetime. `http` NULL: the exporter starts a client of its
 * own. With a shared client, the owner calls ->stop, then frees the client
 * (which completes what is still retrying), then destroys the exporter.
 */
int llmobs_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                        struct http_client *http);
/* "https://llmobs-intake.<site>" or llmobs.endpoint, without a trailing slash. */
void llmobs_exporter_intake_base(const struct datadog_config *cfg, char *out, size_t n);

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
/* The same, with the ECS task's tags (res_ecs.h; NULL: none) added to the tags of the events
 * of the resources they belong to, after DD_TAGS, within LLMOBS_MAX_USER_TAGS. */
int llmobs_exporter_batch_build_ecs(struct llmobs_builder *bl, const OtlpTraceReq *req,
                                    const struct llmobs_config *map, const struct res_ecs *ecs,
                                    int skeletons, struct llmobs_exporter_batch **out);
/* The ECS task metadata reader whose tags join the events' tags; set before ->start, borrowed
 * until the exporter is destroyed. */
struct ecs_meta;
void llmobs_exporter_set_ecs(struct exporter *e, struct ecs_meta *m);
/* What becomes of each event (the preview): `queued` is told, on the sender's thread, of
 * every event queued, as item item_id, with its span's OTel ids; then `fn` of what becomes of
 * every item (delivery.h's events, keyed by item id; origin 0: the tick queues them). Both
 * must not block. Set before ->start; ctx borrowed until the exporter is destroyed. */
typedef void (*llmobs_queued_fn)(void *ctx, uint64_t item_id, const uint8_t trace_id[16],
                                 uint64_t span_id);
void llmobs_exporter_observe(struct exporter *e, llmobs_queued_fn queued, dlv_observer_fn fn,
                             void *ctx);
/* Adds the batch's LLM Obs spans the sampler dropped (out) and kept (in), per
 * enum llmobs_sample_rule, to out[] and in[] (LLMOBS_SAMPLE_RULES entries each). */
void llmobs_exporter_batch_sampled(const struct llmobs_exporter_batch *bt, uint64_t *out,
                                   uint64_t *in);
/* Notes the batch's traces, then adds every span of them (LLM Obs spans with their event,
 * the others as skeletons); the built spans move to the buffer. Frees the batch. */
int llmobs_exporter_batch_add(struct llmobs_buffer *b, struct llmobs_exporter_batch *bt,
                              int64_t now_ns);
void llmobs_exporter_batch_free(struct llmobs_exporter_batch *bt);

#endif
