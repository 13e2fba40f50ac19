/*
 * exporter.h: the interface every exporter implements for the pipeline (curl's Curl_cftype /
 * Curl_cfilter split): a const table of operations, and an instance that points at it. An
 * exporter turns requests into items and hands them to its destinations on the delivery layer
 * (delivery/delivery.h), which sends and counts them.
 */
#ifndef O2D_EXPORTER_H
#define O2D_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "llmobs_buffer.h"
#include "o2d_time.h"
#include "otlp.h"

struct exporter;

/* A request's tenant slot is a slot of every destination's per-tenant count. */
_Static_assert(OTLP_TENANT_SLOTS <= DLV_TENANTS, "otlp_request.tenant fits a dlv_item's tag");

#define EXPORTER_OUTPUTS_MAX 2

/* A snapshot of an exporter's counters, for the metrics endpoint. */
struct exporter_metrics {
    size_t n_outputs;
    struct dlv_metrics outputs[EXPORTER_OUTPUTS_MAX]; /* delivery.h */
    const char *translated_kind; /* "apm" or "llmobs"; NULL: the exporter translates nothing */
    uint64_t translated_spans;   /* spans it translated and took */
    int has_trace_buffer;        /* the LLM Obs trace buffer: */
    struct llmobs_buffer_counters trace_buffer;
    uint64_t trace_buffer_capacity_spans;
    uint64_t trace_buffer_capacity_bytes;
    int has_logs;                /* the logs exporter: */
    uint64_t logs_translated;    /* log records written as Datadog log objects and queued */
    uint64_t logs_truncated;     /* of those, with their message cut to the 1 MB entry limit */
    uint64_t logs_genai_skipped; /* gen_ai event records left to LLM Obs, not sent as logs */
    int has_metrics;             /* the metrics exporter: */
    uint64_t metric_points;      /* OTLP data points it translated */
    size_t n_metric_drops;       /* entries of metric_drops[] */
    struct {
        const char *reason; /* closed set (mtr_drop_name) */
        uint64_t points;
    } metric_drops[8];
    uint64_t metric_cache_entries; /* cumulative-to-delta cache: series remembered */
    uint64_t metric_cache_evicted; /* entries evicted (TTL or capacity) */
    int has_sql_cache;             /* traces.obfuscation.cache (sql_cache.h): */
    uint64_t sql_cache_hits;       /* queries answered from it */
    uint64_t sql_cache_misses;     /* queries obfuscated */
    uint64_t sql_cache_evictions;  /* entries dropped to make room */
    uint64_t sql_cache_bytes;      /* what it holds now */
    size_t n_sampled;              /* the samplers (processors.*_sampler) this exporter applies: */
    struct {
        const char *signal; /* "traces" or "llmobs" */
        const char *rule;   /* closed set (apm_sample_rule_name, llmobs_sample_rule_name) */
        uint64_t dropped;   /* spans sampled out by this rule */
        uint64_t kept;      /* spans kept by this rule */
    } sampled[8];
};

/* exporters.debug.verbosity */
enum o2d_debug_verbosity {
    O2D_DEBUG_QUIET = 0,    /* nothing per request (benchmarks) */
    O2D_DEBUG_BASIC = 1,    /* one line per request */
    O2D_DEBUG_DETAILED = 2, /* every span and log record */
};

struct exporter_type {
    const char *name; /* closed set: safe as a metric label */
    /* Starts background work, if any. */
    int (*start)(struct exporter *e);
    /* Says whether it can take `req` now (O2D_OK), or O2D_ERR_BUSY / O2D_ERR_SHUTDOWN.
     * The pipeline asks every exporter before it submits to any: once all admitted, submit
     * must not refuse for lack of room, or the client's retry would hand a second copy to
     * the exporters that already took it. So queue bounds are soft by at most the requests
     * in flight (themselves bounded by the receivers' memory budget). NULL: always. */
    int (*admit)(struct exporter *e, const struct otlp_request *req);
    /* Whether it would refuse any request of signal `sig` (enum otlp_signal) now, whatever
     * the request holds (a full queue): asked before a request's body is read, so that a
     * full queue costs a sender its headers, not its body. Counts nothing. NULL: never. */
    int (*full)(struct exporter *e, int sig);
    /* Takes one request; `req` and everything it points to are borrowed for the call only.
     * `transport` is a static name ("grpc", "http"). O2D_OK or O2D_ERR_BUSY. */
    int (*submit)(struct exporter *e, const char *transport, const struct otlp_request *req);
    /* Sends what is pending; returns when done or at deadline_ms (monotonic). */
    int (*flush)(struct exporter *e, int64_t deadline_ms);
    /* Stops background work and frees the instance. */
    void (*destroy)(struct exporter *e);
    /* Fills *m (zeroed by the caller) with a snapshot of the counters. Called from the
     * metrics server's thread at any time between creation and destroy, so it reads only
     * atomics or takes the exporter's own locks briefly. NULL: nothing to report. */
    void (*metrics)(const struct exporter *e, struct exporter_metrics *m);
    /* Stops sending (idempotent): background work ends and what is still queued is counted
     * as lost (shutdown). Shared resources (the HTTP client) are freed after every
     * exporter stopped, and before destroy. NULL: nothing to stop. */
    void (*stop)(struct exporter *e);
    /* What was accepted and lost: with `l`, adds a field per output that lost something
     * ("<output>": {"<reason>": n}). Returns the sum. NULL: nothing is ever lost. */
    uint64_t (*undelivered)(const struct exporter *e, struct o2d_logline *l);
};

struct exporter {
    const struct exporter_type *type;
    void *ctx; /* owned by the exporter */
};

/* exporters/debug.c: logs what arrives (one line per request, or every item). */
int debug_exporter_new(struct exporter **out, int verbosity);

#endif
