/*
 * datadog.h: the Datadog exporter for APM traces and stats, sent agentlessly to
 * https://trace.agent.<site>/api/v0.2/traces (AgentPayload protobuf) and /api/v0.2/stats
 * (msgpack StatsPayload), compressed, with the trace agent's headers
 * (../shared/reference/datadog-apm.md sections 1 and 2).
 *
 * submit() runs on the receiving thread: it translates the request (apm.h) in the
 * request's arena, feeds the stats concentrator, packs the payloads into items and queues
 * them on the traces destination of the delivery layer (delivery.h); when its queue is full,
 * admit() answers O2D_ERR_BUSY and the receiver answers "retry later". The delivery layer
 * batches, compresses and sends through the shared HTTP client (http_client.h): retries
 * with capped exponential backoff and jitter for 5xx, 408, 429 and network errors,
 * Retry-After honoured, a body refused with 413 sent again in halves, other 4xx dropped and
 * logged.
 *
 * Agent mode (agent.endpoint set): the same spans and stats go to a local Datadog Agent as a
 * tracer sends them, v0.4 msgpack traces to <agent>/v0.4/traces (apm_msgpack.h) and
 * ClientStatsPayloads to <agent>/v0.6/stats, uncompressed, with the tracers' Datadog-Meta-*
 * headers and no API key; GET <agent>/info is asked once at start and only logged.
 */
#ifndef O2D_DATADOG_H
#define O2D_DATADOG_H

#include <stddef.h>
#include <stdint.h>

#include "apm.h"
#include "apm_sample.h"
#include "datadog_metrics.h"
#include "llmobs.h"
#include "exporter.h"

#define DATADOG_URL_MAX 512

/* sending_queue.fsync and .when_full (disk_log.h has the same values). */
enum { DATADOG_FSYNC_BATCH = 0, DATADOG_FSYNC_NEVER = 1 };
enum { DATADOG_FULL_REFUSE = 0, DATADOG_FULL_DROP_OLDEST = 1 };

/* One destination's `compression` and `compression_params.level` (the Collector's confighttp
 * names). kind: 0, the destination's default (a zeroed configuration), else
 * DATADOG_COMPRESSION(enum dlv_compression, delivery.h); level 1-9 for gzip, 1-19 for zstd,
 * 0 the default (1). */
struct datadog_compression {
    int kind;
    unsigned level;
};
#define DATADOG_COMPRESSION(c) ((int)(c) + 1)

/* exporters.datadog.llmobs: LLM Observability, on whenever an API key is set. */
struct datadog_llmobs_config {
    int enabled;                    /* llmobs.enabled (default true) and DD_LLMOBS_ENABLED */
    char endpoint[DATADOG_URL_MAX]; /* llmobs.endpoint: base URL replacing
                                       https://llmobs-intake.<site> */
    char ml_app[194];               /* llmobs.ml_app / DD_LLMOBS_ML_APP */
    struct llmobs_config map;       /* pointers into the configuration's storage */
    int64_t buffer_timeout_ms;      /* llmobs.trace_buffer.timeout, default 10 s */
    int64_t log_join_window_ms;     /* llmobs.log_join_window, default 3 s; 0 = off */
    size_t buffer_max_spans;        /* llmobs.trace_buffer.max_spans, default 100,000 */
    size_t buffer_max_bytes;        /* llmobs.trace_buffer.max_size_mib, default 64 MiB */
};

/* exporters.datadog.logs: OTLP logs to Datadog Logs, on whenever an API key is set. */
struct datadog_logs_config {
    int enabled;                    /* logs.enabled (default true) */
    char endpoint[DATADOG_URL_MAX]; /* logs.endpoint: base URL replacing
                                       https://http-intake.logs.<site> */
    int include_genai_events;       /* logs.include_genai_events (default false): gen_ai event
                                       records that LLM Obs takes are sent as logs too */
};

struct datadog_config {
    int enabled;                           /* an API key or agent.endpoint is configured */
    char api_key[256];                     /* exporters.datadog.api.key / key_file / DD_API_KEY;
                                              never logged */
    char site[128];                        /* api.site / DD_SITE; default datadoghq.com */
    char traces_endpoint[DATADOG_URL_MAX]; /* traces.endpoint: base URL replacing
                                              https://trace.agent.<site> (tests, proxies) */
    char api_endpoint[DATADOG_URL_MAX];    /* api.endpoint: base URL replacing
                                              https://api.<site> for the key check */
    char agent_endpoint[DATADOG_URL_MAX];  /* agent.endpoint: a Datadog Agent's base URL
                                              (http://host:8126); set = agent mode, no key */
    int traces_enabled;                    /* traces.enabled / DD_TRACE_ENABLED: send APM
                                              traces and stats (default on) */
    struct apm_config apm;                 /* mapping options; pointers owned by the config */
    const struct apm_sampler *sampler;     /* processors.probabilistic_sampler; NULL or not
                                              enabled: every trace is sent */
    int compute_stats_by_span_kind;        /* traces.compute_stats_by_span_kind, default on */
    int peer_tags_aggregation;             /* traces.peer_tags_aggregation, default on */
    int sql_cache_enabled;                 /* traces.obfuscation.cache.enabled, default on */
    size_t sql_cache_max_bytes;            /* .max_size, default 5,000,000 (sql_cache.h) */
    size_t queue_max_bytes;                /* encoded bytes waiting to be sent; default 64 MiB */
    /* receivers.otlp.fairness.max_tenant_share_percent: what one tenant may hold of each
     * memory queue (delivery.h: tenant_share_pct); 100: no rule. */
    unsigned tenant_share_pct;
    /* sending_queue.storage: a directory turns the disk queue on (one subdirectory per
     * destination); "" keeps the queues in memory only (the default). */
    char queue_storage[DATADOG_URL_MAX];
    int queue_fsync;             /* sending_queue.fsync: DATADOG_FSYNC_BATCH (default) | NEVER */
    size_t queue_disk_max_bytes; /* sending_queue.disk_max_size_mib, default 1 GiB */
    int queue_when_full;         /* sending_queue.when_full: DATADOG_FULL_REFUSE | DROP_OLDEST */
    /* sending_queue.num_consumers (the Collector's exporterhelper key): threads per
     * destination that build (encode, compress) and post bodies; 0 (default): one per
     * online CPU. */
    unsigned num_consumers;
    /* Each destination's compression. Defaults as Datadog's own senders (datadog.c):
     * traces zstd 1, stats gzip 1, series and sketches zstd 1, logs zstd 1, LLM Obs none.
     * In agent mode traces and stats go uncompressed whatever is set here. */
    struct datadog_compression traces_compression;  /* traces.compression */
    struct datadog_compression stats_compression;   /* traces.stats.compression */
    struct datadog_compression llmobs_compression;  /* llmobs.compression */
    struct datadog_compression metrics_compression; /* metrics.compression */
    struct datadog_compression logs_compression;    /* logs.compression */
    int64_t flush_interval_ms;                      /* send at least this often; default 2 s */
    int64_t max_elapsed_ms; /* give up retrying a payload after this; default 5 min */
    char hostname[256];     /* this instance, for AgentPayload and stats */
    struct datadog_llmobs_config llmobs;
    struct datadog_metrics_config metrics; /* exporters.datadog.metrics */
    struct datadog_logs_config logs;
};

struct http_client;

/* Starts nothing yet: the destinations start in ->start. Borrows cfg for its lifetime, and
 * `http`, the HTTP client shared with the other Datadog exporters (NULL: ->start makes one of
 * its own). With a shared client the owner calls ->stop, frees the client (which completes
 * what is still retrying, counted here), then destroys the exporter. */
int datadog_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                         struct http_client *http);
/* The ECS task metadata reader (ecs_meta.h) whose tags join the spans' container tags; set
 * before ->start, borrowed until the exporter is destroyed. */
struct ecs_meta;
void datadog_exporter_set_ecs(struct exporter *e, struct ecs_meta *m);
/* Before start: fn is told what becomes of each traces item, by id and ingest request (the
 * preview's export state); it runs on delivery threads and must not block. */
void datadog_exporter_observe(struct exporter *e, dlv_observer_fn fn, void *ctx);
/* The disk queue of one destination, in <sending_queue.storage>/<name>, with 1/share of
 * disk_max_size_mib; *out NULL when the storage is off. An error is logged. */
struct dlv_queue;
int datadog_disk_queue(const struct datadog_config *cfg, const char *name, unsigned share,
                       struct dlv_queue **out);
/* The log of <storage>/<name> (made with its parents), with 1/share of disk_max_size_mib, into
 * *lc (lc->dir points into dir); and the line that says how opening it went. */
struct dlog_config;
struct dlog_stats;
void datadog_disk_log_config(const struct datadog_config *cfg, const char *name, unsigned share,
                             char *dir, size_t dirlen, struct dlog_config *lc);
void datadog_disk_log_opened(const char *dir, int rv, const char *err, const struct dlog_config *lc,
                             const struct dlog_stats *st);

/* An intake's base URL: `override` when set, else "https://<prefix><site>" (prefix such as
 * "trace.agent.", "api.", "llmobs-intake."; site default datadoghq.com); no trailing slash. */
void datadog_base_url(const char *override, const char *prefix, const char *site, char *out,
                      size_t n);

/* A destination's compression (c; its default `dflt` when c->kind is 0) and sender threads
 * (cfg->num_consumers, 0: online CPUs) into dc. */
struct dlv_dest_config;
void datadog_dest_tune(const struct datadog_config *cfg, const struct datadog_compression *c,
                       int dflt, struct dlv_dest_config *dc);

/* "https://trace.agent.<site>" or the override, without a trailing slash. */
void datadog_traces_base(const struct datadog_config *cfg, char *out, size_t n);

#endif
