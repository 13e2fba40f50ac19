/*
 * pipeline.c: receivers -> exporters. Every exporter gets every request before the
 * receiver answers; the first exporter that cannot take it makes the answer "retry later".
 * The Datadog exporters (APM, LLM Observability, then Logs) share one HTTP client, owned here:
 * at the end their senders stop, the client is freed (completing what still retries, which
 * the exporters count), and only then are the exporters freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "datadog.h"
#include "datadog_metrics.h"
#include "ecs_meta.h"
#include "exporter.h"
#include "http_client.h"
#include "llmobs_exporter.h"
#include "logs_exporter.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_defer.h"
#include "o2d_json_out.h"
#include "o2d_log.h"
#include "pipeline.h"
#include "preview.h"

#define PIPELINE_MAX_EXPORTERS 6

struct pipeline {
    const struct o2d_config *cfg; /* borrowed; outlives the pipeline (main's) */
    struct exporter *exporters[PIPELINE_MAX_EXPORTERS];
    int n_exporters;
    struct http_client *http; /* shared by the Datadog exporters */
    struct ecs_meta *ecs;     /* the ECS task's metadata reader, NULL outside ECS */
    int forwards_metrics;     /* an exporter sends metrics somewhere */
    atomic_int stopping;
    struct preview *preview; /* extensions.preview; NULL when off */
};

/* Datadog Logs: agentless only. A Datadog Agent takes logs from tracers through nothing the
 * trace port offers (its OTLP receiver, otlp_config.logs, is another port and off by
 * default), so in agent mode logs go straight to the intake when an API key is set too, and
 * are not sent otherwise: said once, here. */
static int add_logs(struct pipeline *p, const struct datadog_config *dd)
{
    if (!dd->logs.enabled) {
        o2d_logf(O2D_LOG_INFO, "Datadog Logs are off (exporters.datadog.logs.enabled false): "
                               "received log records are not sent as logs");
        return O2D_OK;
    }
    if (dd->api_key[0] == '\0') {
        o2d_logf(O2D_LOG_WARN,
                 "agent mode without an API key: received log records are NOT sent to "
                 "Datadog Logs (the Datadog Agent's trace port takes no logs; set "
                 "DD_API_KEY to send them to the logs intake directly, or point the app's "
                 "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT at the Agent's OTLP receiver with "
                 "otlp_config.logs.enabled)");
        return O2D_OK;
    }
    if (dd->agent_endpoint[0] != '\0') {
        o2d_logf(O2D_LOG_INFO, "agent mode: traces go through the Datadog Agent, log records "
                               "go to the Datadog Logs intake directly with the API key");
    }
    int rv = logs_exporter_new(&p->exporters[p->n_exporters], dd, p->http);
    if (rv == O2D_OK) {
        p->n_exporters++;
    }
    return rv;
}

/* Datadog metrics: agentless with the API key (a Datadog Agent has no series intake for us;
 * datadog_metrics.c says why, and the APM exporter says at start what happens in agent
 * mode). */
static int add_metrics(struct pipeline *p, const struct datadog_config *dd)
{
    switch (datadog_metrics_route_of(dd)) {
    case DATADOG_METRICS_OFF:
        o2d_logf(O2D_LOG_INFO, "Datadog metrics are off (exporters.datadog.metrics.enabled "
                               "false): received metrics are not sent");
        return O2D_OK;
    case DATADOG_METRICS_NO_KEY:
        return O2D_OK;
    case DATADOG_METRICS_INTAKE:
        break;
    }
    int rv = datadog_metrics_exporter_new(&p->exporters[p->n_exporters], dd, p->http);
    if (rv == O2D_OK) {
        p->n_exporters++;
        p->forwards_metrics = 1;
    }
    return rv;
}

int pipeline_new(struct pipeline **out, const struct o2d_config *cfg)
{
    struct pipeline *p = o2d_calloc(1, sizeof(*p));
    if (p == NULL) {
        return O2D_ERR_NOMEM;
    }
    int rv = O2D_OK;
    p->cfg = cfg;
    /* A configured processor that no pipeline lists is off: said once, at start. */
    for (int id = 0; id < O2D_PROCESSOR_COUNT; id++) {
        if (o2d_processor_configured(cfg, (enum o2d_processor)id) &&
            !o2d_processor_listed(cfg, (enum o2d_processor)id)) {
            o2d_logf(O2D_LOG_WARN,
                     "processors.%s is configured but no service.pipelines entry lists it: it "
                     "is off",
                     o2d_processor_types[id].name);
        }
    }
    /* The Collector's default, kept for pasted files, surprises those who write only
     * `patterns:`: say it. */
    if (o2d_processor_listed(cfg, O2D_PROCESSOR_REDACTION) && !cfg->redaction.allow_all_keys &&
        cfg->redaction.n_allowed_keys == 0) {
        o2d_logf(O2D_LOG_WARN, "processors.redaction: allow_all_keys is false and allowed_keys "
                               "is empty: EVERY attribute is removed (as the Collector's "
                               "redaction processor does); set allow_all_keys: true to keep "
                               "them and only mask values");
    }
    /* With an API key, Datadog; the debug exporter runs beside it only when the file names
     * it. Without a key, the debug exporter shows what would be sent. */
    if (cfg->datadog.enabled) {
        rv = http_client_new(&p->http, NULL);
        /* In an ECS task, its metadata is read in the background (never waited for) and its
         * tags join the spans' and the LLM Obs events'. */
        const char *ecs_uri = getenv("ECS_CONTAINER_METADATA_URI_V4");
        if (rv == O2D_OK && ecs_uri != NULL && ecs_uri[0] != '\0') {
            struct ecs_meta_config ec = {.base_uri = ecs_uri};
            if (ecs_meta_start(&p->ecs, &ec) != O2D_OK) {
                o2d_logf(O2D_LOG_WARN, "ECS_CONTAINER_METADATA_URI_V4 is not an http:// URL or "
                                       "no thread could read it: no ECS task tags");
            }
        }
        /* DD_TRACE_ENABLED=false, as in ddtrace: no APM traces and no stats; spans are still
         * received, and LLM spans still reach LLM Observability. */
        if (rv == O2D_OK && cfg->datadog.traces_enabled) {
            rv = datadog_exporter_new(&p->exporters[p->n_exporters], &cfg->datadog, p->http);
            if (rv == O2D_OK) {
                datadog_exporter_set_ecs(p->exporters[p->n_exporters], p->ecs);
                p->n_exporters++;
            }
            if (rv == O2D_OK && o2d_config_preview_on(cfg)) {
                rv = preview_new(&p->preview, cfg);
                if (rv == O2D_OK) {
                    datadog_exporter_observe(p->exporters[p->n_exporters - 1], preview_observe,
                                             p->preview);
                }
            }
        } else if (rv == O2D_OK) {
            o2d_logf(O2D_LOG_INFO, "APM traces and stats are off (exporters.datadog.traces.enabled "
                                   "false or DD_TRACE_ENABLED=false): received spans are not sent "
                                   "to APM");
        }
        /* LLM spans stay in APM too (type llm); the LLM Obs events link to them by id. */
        if (rv == O2D_OK && cfg->datadog.llmobs.enabled) {
            rv = llmobs_exporter_new(&p->exporters[p->n_exporters], &cfg->datadog, p->http);
            if (rv == O2D_OK) {
                llmobs_exporter_set_ecs(p->exporters[p->n_exporters], p->ecs);
                if (p->preview != NULL) {
                    llmobs_exporter_observe(p->exporters[p->n_exporters], preview_llmobs_queued,
                                            preview_observe, p->preview);
                }
                p->n_exporters++;
            }
        }
        rv = rv == O2D_OK ? add_logs(p, &cfg->datadog) : rv;
        rv = rv == O2D_OK ? add_metrics(p, &cfg->datadog) : rv;
    } else {
        o2d_logf(O2D_LOG_WARN, "no Datadog API key is set (DD_API_KEY or "
                               "exporters.datadog.api.key) and no Datadog Agent "
                               "(DD_TRACE_AGENT_URL or exporters.datadog.agent.endpoint): "
                               "nothing is sent to Datadog; the debug exporter shows what "
                               "arrives");
    }
    if (rv == O2D_OK && (!cfg->datadog.enabled || cfg->debug_section)) {
        rv = debug_exporter_new(&p->exporters[p->n_exporters], (int)cfg->debug_verbosity);
        if (rv == O2D_OK) {
            p->n_exporters++;
        }
    }
    if (rv == O2D_OK && p->preview == NULL && o2d_config_preview_on(cfg)) {
        rv = preview_new(&p->preview, cfg);
    }
    if (p->preview != NULL) {
        preview_set_status(p->preview, pipeline_status_json, p);
    }
    if (rv != O2D_OK) {
        pipeline_free(p);
        return rv;
    }
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e->type->start != NULL && (rv = e->type->start(e)) != O2D_OK) {
            pipeline_free(p);
            return rv;
        }
    }
    *out = p;
    return O2D_OK;
}

static int submit_all(struct pipeline *p, enum o2d_transport tr, const struct otlp_request *req)
{
    /* All or nothing: a request one exporter cannot take now is refused before any takes
     * it, so the client's retry never duplicates what another exporter already has. */
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        int rv = e->type->admit != NULL ? e->type->admit(e, req) : O2D_OK;
        if (rv != O2D_OK) {
            return rv;
        }
    }
    const char *trname = o2d_transport_name(tr);
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        int rv = e->type->submit(e, trname, req);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    if (p->preview != NULL) {
        preview_capture(p->preview, req);
    }
    return O2D_OK;
}

int pipeline_submit(struct pipeline *p, enum o2d_transport tr, const struct otlp_request *req)
{
    if (atomic_load_explicit(&p->stopping, memory_order_relaxed)) {
        return O2D_ERR_SHUTDOWN;
    }
    /* Processors first, once, on the decoded request in place (its strings live in its
     * arena), so that every exporter sees the same redacted request. The request is the
     * ingest's own until it answers; only its const-ness is shed here. */
    int prv = o2d_processors_apply(p->cfg, (struct otlp_request *)req);
    if (prv != O2D_OK) {
        return prv;
    }
    /* With disk queues that sync (fsync: batch), every exporter writes now and the request
     * waits once, at the end, for the syncs of all it wrote: the translation, the stats and
     * the other exporters' work are done while the disk syncs, on a warm cache. Only a failed
     * sync is known after the exporters took the request: it is refused then (retry later),
     * and what was written stays queued (delivered at least once). */
    struct o2d_waitset ws;
    int mine = o2d_defer_begin(&ws); /* else the receiver waits, on another thread */
    int rv = submit_all(p, tr, req);
    if (mine) {
        o2d_defer_stop();
        int srv = o2d_waitset_wait(&ws);
        if (rv == O2D_OK && srv != O2D_OK) {
            rv = O2D_ERR_BUSY;
        }
    }
    return rv;
}

struct preview *pipeline_preview(struct pipeline *p)
{
    return p->preview;
}

int pipeline_forwards_metrics(const struct pipeline *p)
{
    return p->forwards_metrics;
}

int pipeline_ingest_submit(void *ctx, enum o2d_transport tr, const struct otlp_request *req)
{
    return pipeline_submit(ctx, tr, req);
}

int pipeline_ingest_full(void *ctx, int sig)
{
    struct pipeline *p = ctx;
    if (atomic_load_explicit(&p->stopping, memory_order_relaxed)) {
        return 0; /* answered as shutting down once read */
    }
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e->type->full != NULL && e->type->full(e, sig)) {
            return 1;
        }
    }
    return 0;
}

/* Every exporter stops sending and counts what it still holds. */
static void stop_all(struct pipeline *p)
{
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e != NULL && e->type->stop != NULL) {
            e->type->stop(e);
        }
    }
}

struct flush_job {
    struct exporter *e;
    int64_t deadline_ms;
};

static void *flush_main(void *arg)
{
    struct flush_job *j = arg;
    j->e->type->flush(j->e, j->deadline_ms);
    return NULL;
}

void pipeline_shutdown(struct pipeline *p, int64_t deadline_ms)
{
    atomic_store(&p->stopping, 1);
    /* The exporters flush side by side, so that an intake that hangs (APM, say) does not
     * use up the deadline of the others (LLM Observability); one that cannot get a thread
     * flushes on this one. */
    struct flush_job jobs[PIPELINE_MAX_EXPORTERS];
    pthread_t threads[PIPELINE_MAX_EXPORTERS];
    int started[PIPELINE_MAX_EXPORTERS] = {0};
    for (int i = 0; i < p->n_exporters; i++) {
        jobs[i] = (struct flush_job){.e = p->exporters[i], .deadline_ms = deadline_ms};
        if (jobs[i].e->type->flush != NULL) {
            started[i] = pthread_create(&threads[i], NULL, flush_main, &jobs[i]) == 0;
            if (!started[i]) {
                flush_main(&jobs[i]);
            }
        }
    }
    for (int i = 0; i < p->n_exporters; i++) {
        if (started[i]) {
            pthread_join(threads[i], NULL);
        }
    }
    /* Past the deadline nothing more is sent: the senders stop and count what they still
     * hold, and freeing the client completes (and counts) what was in flight or retrying.
     * Every counter is final after this. */
    stop_all(p);
    http_client_free(p->http);
    p->http = NULL;
}

void pipeline_log_undelivered(struct pipeline *p)
{
    /* Spans refused with "retry later" (queue full, shutting down) are the sender's to
     * retry, not lost here; everything else that was accepted and not delivered counts. */
    uint64_t total = 0;
    for (int i = 0; i < p->n_exporters; i++) {
        const struct exporter *e = p->exporters[i];
        if (e->type->undelivered != NULL) {
            total += e->type->undelivered(e, NULL);
        }
    }
    struct o2d_logline l;
    if (total == 0) {
        o2d_log_begin(&l, O2D_LOG_INFO, "undelivered");
        o2d_log_uint(&l, "total", 0);
        o2d_log_cstr(&l, "detail", "nothing was lost: everything accepted was delivered");
    } else {
        o2d_log_begin(&l, O2D_LOG_WARN, "undelivered");
        o2d_log_uint(&l, "total", total);
        for (int i = 0; i < p->n_exporters; i++) {
            const struct exporter *e = p->exporters[i];
            if (e->type->undelivered != NULL) {
                e->type->undelivered(e, &l);
            }
        }
    }
    o2d_log_end(&l);
}

void pipeline_free(struct pipeline *p)
{
    if (p == NULL) {
        return;
    }
    preview_stop(p->preview); /* its pages read the exporters freed below */
    stop_all(p);
    http_client_free(p->http);
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e != NULL) {
            e->type->destroy(e);
        }
    }
    ecs_meta_stop(p->ecs); /* after the exporters, which borrow it */
    preview_free(p->preview);
    o2d_free(p);
}

/* ---- metrics ---- */

struct snapshots {
    struct exporter_metrics m[PIPELINE_MAX_EXPORTERS];
    int n;
};

enum output_field {
    OUT_SENT_ITEMS,
    OUT_SENT_PAYLOADS,
    OUT_SENT_BYTES,
    OUT_RETRIED_ITEMS,
    OUT_QUEUE_ITEMS,
    OUT_QUEUE_BYTES,
    OUT_QUEUE_CAPACITY,
};

static uint64_t output_field(const struct dlv_metrics *o, enum output_field f)
{
    switch (f) {
    case OUT_SENT_ITEMS:
        return o->sent_items;
    case OUT_SENT_PAYLOADS:
        return o->sent_payloads;
    case OUT_SENT_BYTES:
        return o->sent_bytes;
    case OUT_RETRIED_ITEMS:
        return o->retried_items;
    case OUT_QUEUE_ITEMS:
        return o->queue_items;
    case OUT_QUEUE_BYTES:
        return o->queue_bytes;
    default:
        return o->queue_capacity_bytes;
    }
}

/* One family with a sample per output (per output with a queue, for the queue fields). */
static void write_output_field(struct prom_writer *w, const struct snapshots *s, const char *name,
                               enum prom_type type, const char *help, enum output_field f)
{
    int need_queue = f >= OUT_QUEUE_ITEMS;
    prom_family(w, name, type, help);
    for (int i = 0; i < s->n; i++) {
        for (size_t k = 0; k < s->m[i].n_outputs; k++) {
            const struct dlv_metrics *o = &s->m[i].outputs[k];
            if (need_queue && !o->has_queue) {
                continue;
            }
            struct prom_label l[] = {{"exporter", o->name}};
            prom_sample_u64(w, name, l, 1, output_field(o, f));
        }
    }
}

/* The disk queue's series, for the outputs that have one (none: no family at all). */
enum disk_field {
    DISK_BYTES,
    DISK_RECORDS,
    DISK_AGE,
    DISK_REPLAYED,
    DISK_CORRUPT,
    DISK_DROPPED,
    DISK_WRITE_ERRORS,
    DISK_BATCHES,
    DISK_BATCHED_APPENDS,
    DISK_SYNC_SECONDS
};

static void write_disk_field(struct prom_writer *w, const struct snapshots *s, const char *name,
                             enum prom_type type, const char *help, enum disk_field f)
{
    int any = 0;
    for (int i = 0; i < s->n && !any; i++) {
        for (size_t k = 0; k < s->m[i].n_outputs; k++) {
            any |= s->m[i].outputs[k].has_disk;
        }
    }
    if (!any) {
        return;
    }
    prom_family(w, name, type, help);
    for (int i = 0; i < s->n; i++) {
        for (size_t k = 0; k < s->m[i].n_outputs; k++) {
            const struct dlv_metrics *o = &s->m[i].outputs[k];
            if (!o->has_disk) {
                continue;
            }
            struct prom_label l[] = {{"exporter", o->name}};
            uint64_t v = f == DISK_BYTES             ? o->disk_bytes
                         : f == DISK_RECORDS         ? o->disk_records
                         : f == DISK_REPLAYED        ? o->disk_replayed
                         : f == DISK_CORRUPT         ? o->disk_corrupt
                         : f == DISK_DROPPED         ? o->disk_dropped_oldest
                         : f == DISK_BATCHES         ? o->disk_batches
                         : f == DISK_BATCHED_APPENDS ? o->disk_batched_appends
                                                     : o->disk_write_errors;
            if (f == DISK_AGE || f == DISK_SYNC_SECONDS) {
                prom_sample_f64(w, name, l, 1,
                                f == DISK_AGE ? o->disk_oldest_age_s : o->disk_sync_seconds);
            } else {
                prom_sample_u64(w, name, l, 1, v);
            }
        }
    }
}

static void write_buffer_gauge(struct prom_writer *w, const struct snapshots *s, const char *name,
                               const char *help, int which)
{
    prom_family(w, name, PROM_GAUGE, help);
    for (int i = 0; i < s->n; i++) {
        const struct exporter_metrics *m = &s->m[i];
        if (!m->has_trace_buffer) {
            continue;
        }
        uint64_t v = which == 0   ? m->trace_buffer.spans_held
                     : which == 1 ? m->trace_buffer.bytes_held
                     : which == 2 ? m->trace_buffer_capacity_spans
                                  : m->trace_buffer_capacity_bytes;
        prom_sample_u64(w, name, NULL, 0, v);
    }
}

/* A logs exporter's counter (none: no family at all). */
static void write_logs_counter(struct prom_writer *w, const struct snapshots *s, const char *name,
                               const char *help, int which)
{
    int any = 0;
    for (int i = 0; i < s->n; i++) {
        any |= s->m[i].has_logs;
    }
    if (!any) {
        return;
    }
    prom_family(w, name, PROM_COUNTER, help);
    for (int i = 0; i < s->n; i++) {
        const struct exporter_metrics *m = &s->m[i];
        if (m->has_logs) {
            prom_sample_u64(w, name, NULL, 0,
                            which == 0   ? m->logs_translated
                            : which == 1 ? m->logs_truncated
                                         : m->logs_genai_skipped);
        }
    }
}

/* The SQL obfuscation cache of the Datadog exporter (traces.obfuscation.cache). */
static void write_sql_cache(struct prom_writer *w, const struct snapshots *s)
{
    static const struct {
        const char *name, *help;
        enum prom_type type;
        size_t off;
    } fams[] = {
        {"otel2dd_sql_obfuscation_cache_hits_total",
         "SQL queries whose obfuscated form came from the cache (traces.obfuscation.cache).",
         PROM_COUNTER, offsetof(struct exporter_metrics, sql_cache_hits)},
        {"otel2dd_sql_obfuscation_cache_misses_total",
         "SQL queries obfuscated (not in the cache; kept there unless longer than it takes).",
         PROM_COUNTER, offsetof(struct exporter_metrics, sql_cache_misses)},
        {"otel2dd_sql_obfuscation_cache_evictions_total",
         "Entries the SQL obfuscation cache dropped to stay within max_size.", PROM_COUNTER,
         offsetof(struct exporter_metrics, sql_cache_evictions)},
        {"otel2dd_sql_obfuscation_cache_bytes",
         "Bytes the SQL obfuscation cache holds now (entries and tables; at most max_size).",
         PROM_GAUGE, offsetof(struct exporter_metrics, sql_cache_bytes)},
    };
    const struct exporter_metrics *m = NULL;
    for (int i = 0; i < s->n && m == NULL; i++) {
        m = s->m[i].has_sql_cache ? &s->m[i] : NULL;
    }
    for (size_t k = 0; m != NULL && k < sizeof(fams) / sizeof(fams[0]); k++) {
        uint64_t v;
        memcpy(&v, (const unsigned char *)m + fams[k].off, sizeof(v));
        prom_family(w, fams[k].name, fams[k].type, fams[k].help);
        prom_sample_u64(w, fams[k].name, NULL, 0, v);
    }
}

/* The metrics exporter's translator: points, drops by reason, the delta cache. */
static void write_metric_points(struct prom_writer *w, const struct snapshots *s)
{
    const struct exporter_metrics *m = NULL;
    for (int i = 0; i < s->n && m == NULL; i++) {
        m = s->m[i].has_metrics ? &s->m[i] : NULL;
    }
    if (m == NULL) {
        return;
    }
    prom_family(w, "otel2dd_translated_metric_points_total", PROM_COUNTER,
                "OTLP metric data points the metrics exporter translated (each gives series "
                "points or a sketch, or is dropped).");
    prom_sample_u64(w, "otel2dd_translated_metric_points_total", NULL, 0, m->metric_points);
    prom_family(w, "otel2dd_metric_points_dropped_total", PROM_COUNTER,
                "OTLP metric data points that gave nothing, by reason: nan_or_inf, "
                "no_recorded_value, out_of_order (not newer than its series' last point), "
                "unsupported_temporality (unspecified, or a cumulative exponential "
                "histogram), malformed, too_many_observations (more than a sketch holds).");
    for (size_t i = 0; i < m->n_metric_drops; i++) {
        struct prom_label l[] = {{"reason", m->metric_drops[i].reason}};
        prom_sample_u64(w, "otel2dd_metric_points_dropped_total", l, 1, m->metric_drops[i].points);
    }
    prom_family(w, "otel2dd_metrics_delta_cache_entries", PROM_GAUGE,
                "Cumulative series remembered to turn their points into deltas.");
    prom_sample_u64(w, "otel2dd_metrics_delta_cache_entries", NULL, 0, m->metric_cache_entries);
    prom_family(w, "otel2dd_metrics_delta_cache_evictions_total", PROM_COUNTER,
                "Cumulative series forgotten: not seen for delta_ttl, or the cache full (its "
                "next point is then a first point again).");
    prom_sample_u64(w, "otel2dd_metrics_delta_cache_evictions_total", NULL, 0,
                    m->metric_cache_evicted);
}

/* processors.redaction: values redacted, per built-in pattern or blocked_values entry
 * (blocked_values.N), and attributes removed (allowed_keys), masked (blocked_key_patterns)
 * or message contents dropped (drop_message_contents). A closed set of labels: the
 * configuration's. */
static void write_redaction(struct prom_writer *w, const struct o2d_config *cfg)
{
    const struct redact_rules *r = cfg->redaction.rules;
    if (r == NULL || !o2d_processor_listed(cfg, O2D_PROCESSOR_REDACTION)) {
        return;
    }
    prom_family(w, "otel2dd_processor_redacted_values_total", PROM_COUNTER,
                "Values the redaction processor replaced, per pattern (a built-in name or "
                "blocked_values.N), and attributes it removed (allowed_keys), masked whole "
                "(blocked_key_patterns) or message contents it dropped (drop_message_contents).");
    for (size_t i = 0; i < redact_rules_counters(r); i++) {
        struct prom_label l[] = {{"pattern", redact_counter_name(r, i)}};
        prom_sample_u64(w, "otel2dd_processor_redacted_values_total", l, 1,
                        redact_counter_value(r, i));
    }
}

/* processors.probabilistic_sampler and processors.llmobs_sampler (no sampler on: no family). */
static void write_sampled(struct prom_writer *w, const struct snapshots *s)
{
    static const char *const names[2] = {"otel2dd_processor_sampled_out_spans_total",
                                         "otel2dd_processor_sampled_in_spans_total"};
    static const char *const help[2] = {
        "Spans a sampler dropped, by signal (traces: APM, llmobs: LLM Observability) and "
        "rule (percentage, service_rate, ml_app_rate, priority, no_trace_id); they were "
        "counted in APM stats and never queued.",
        "Spans a sampler kept, by signal and the rule that kept them (percentage, "
        "service_rate, ml_app_rate, priority, error, latency, no_trace_id)."};
    int any = 0;
    for (int i = 0; i < s->n; i++) {
        any |= s->m[i].n_sampled > 0;
    }
    for (int k = 0; any && k < 2; k++) {
        prom_family(w, names[k], PROM_COUNTER, help[k]);
        for (int i = 0; i < s->n; i++) {
            for (size_t j = 0; j < s->m[i].n_sampled; j++) {
                struct prom_label l[] = {{"signal", s->m[i].sampled[j].signal},
                                         {"rule", s->m[i].sampled[j].rule}};
                prom_sample_u64(w, names[k], l, 2,
                                k == 0 ? s->m[i].sampled[j].dropped : s->m[i].sampled[j].kept);
            }
        }
    }
}

/* A counter family of the LLM Obs trace buffers, one series a label value: values[k] names
 * the uint64_t counter at offs[k] of struct llmobs_buffer_counters. */
static void write_buffer_counters(struct prom_writer *w, const struct snapshots *s,
                                  const char *name, const char *help, const char *label,
                                  const char *const *values, const size_t *offs, int n)
{
    prom_family(w, name, PROM_COUNTER, help);
    for (int i = 0; i < s->n; i++) {
        const unsigned char *b = (const unsigned char *)&s->m[i].trace_buffer;
        for (int k = 0; s->m[i].has_trace_buffer && k < n; k++) {
            uint64_t v;
            memcpy(&v, b + offs[k], sizeof(v));
            struct prom_label l[] = {{label, values[k]}};
            prom_sample_u64(w, name, l, 1, v);
        }
    }
}

void pipeline_write_metrics(struct pipeline *p, struct prom_writer *w)
{
    struct snapshots s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e->type->metrics != NULL) {
            e->type->metrics(e, &s.m[s.n++]);
        }
    }

    prom_family(w, "otel2dd_translated_spans_total", PROM_COUNTER,
                "Spans translated and queued for sending, per kind: apm (Datadog APM spans) "
                "and llmobs (LLM Observability spans).");
    for (int i = 0; i < s.n; i++) {
        if (s.m[i].translated_kind != NULL) {
            struct prom_label l[] = {{"kind", s.m[i].translated_kind}};
            prom_sample_u64(w, "otel2dd_translated_spans_total", l, 1, s.m[i].translated_spans);
        }
    }

    write_sampled(w, &s);

    write_logs_counter(w, &s, "otel2dd_translated_log_records_total",
                       "Log records written as Datadog log objects and queued for sending "
                       "(datadog_logs), truncated ones included.",
                       0);
    write_logs_counter(w, &s, "otel2dd_translated_log_records_truncated_total",
                       "Log records whose message was cut to fit the intake's 1 MB entry "
                       "limit (marked ...TRUNCATED...).",
                       1);
    write_logs_counter(w, &s, "otel2dd_log_records_left_to_llmobs_total",
                       "gen_ai event log records given to LLM Observability and not sent as "
                       "logs (exporters.datadog.logs.include_genai_events false).",
                       2);

    write_metric_points(w, &s);
    write_sql_cache(w, &s);
    write_redaction(w, p->cfg);

    write_output_field(w, &s, "otel2dd_exporter_sent_items_total", PROM_COUNTER,
                       "Items delivered, per exporter: spans (datadog_traces), stats payloads "
                       "(datadog_stats), LLM Obs span events (llmobs), log records "
                       "(datadog_logs), items shown (debug).",
                       OUT_SENT_ITEMS);
    write_output_field(w, &s, "otel2dd_exporter_sent_payloads_total", PROM_COUNTER,
                       "Request bodies the intake accepted, per exporter (debug: requests "
                       "shown).",
                       OUT_SENT_PAYLOADS);
    write_output_field(w, &s, "otel2dd_exporter_sent_bytes_total", PROM_COUNTER,
                       "Bytes of the request bodies the intake accepted, as sent (gzip for "
                       "datadog_traces), per exporter.",
                       OUT_SENT_BYTES);
    write_output_field(w, &s, "otel2dd_exporter_retried_items_total", PROM_COUNTER,
                       "Items sent again after a retryable failure, once per retry, per "
                       "exporter.",
                       OUT_RETRIED_ITEMS);

    prom_family(w, "otel2dd_exporter_dropped_items_total", PROM_COUNTER,
                "Items not delivered, per exporter and reason.");
    for (int i = 0; i < s.n; i++) {
        for (size_t k = 0; k < s.m[i].n_outputs; k++) {
            const struct dlv_metrics *o = &s.m[i].outputs[k];
            for (size_t r = 0; r < o->n_drops; r++) {
                struct prom_label l[] = {{"exporter", o->name}, {"reason", o->drops[r].reason}};
                prom_sample_u64(w, "otel2dd_exporter_dropped_items_total", l, 2, o->drops[r].items);
            }
        }
    }

    write_output_field(w, &s, "otel2dd_exporter_queue_items", PROM_GAUGE,
                       "Items waiting to be sent or in flight, per exporter.", OUT_QUEUE_ITEMS);
    write_output_field(w, &s, "otel2dd_exporter_queue_bytes", PROM_GAUGE,
                       "Bytes counted against the exporter's queue budget: waiting, being "
                       "built, and in flight (retries included).",
                       OUT_QUEUE_BYTES);
    write_output_field(w, &s, "otel2dd_exporter_queue_capacity_bytes", PROM_GAUGE,
                       "The exporter's queue budget; past it receivers answer retry later.",
                       OUT_QUEUE_CAPACITY);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_bytes", PROM_GAUGE,
                     "Segment bytes of the disk queue (sending_queue.storage).", DISK_BYTES);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_records", PROM_GAUGE,
                     "Records in the disk queue not yet delivered or dropped.", DISK_RECORDS);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_oldest_age_seconds", PROM_GAUGE,
                     "Age of the oldest record in the disk queue; 0 when it is empty.", DISK_AGE);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_replayed_records_total", PROM_COUNTER,
                     "Records found in the disk queue at start and sent again.", DISK_REPLAYED);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_corrupt_records_total", PROM_COUNTER,
                     "Records skipped at start: bad checksum or length.", DISK_CORRUPT);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_dropped_items_total", PROM_COUNTER,
                     "Items dropped from a full disk queue (when_full: drop_oldest).",
                     DISK_DROPPED);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_write_errors_total", PROM_COUNTER,
                     "Requests refused because a write or sync of the disk queue failed.",
                     DISK_WRITE_ERRORS);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_commits_total", PROM_COUNTER,
                     "Group commits of the disk queue: one write, and with fsync: batch one "
                     "fdatasync, for the requests that arrived together.",
                     DISK_BATCHES);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_committed_appends_total", PROM_COUNTER,
                     "Appends (one per request and queue) the group commits carried.",
                     DISK_BATCHED_APPENDS);
    write_disk_field(w, &s, "otel2dd_exporter_disk_queue_sync_seconds_total", PROM_COUNTER,
                     "Time spent in fdatasync by the disk queue's group commits.",
                     DISK_SYNC_SECONDS);

    write_buffer_gauge(w, &s, "otel2dd_llmobs_trace_buffer_spans",
                       "LLM Obs spans the trace buffer holds, waiting for their trace to settle.",
                       0);
    write_buffer_gauge(w, &s, "otel2dd_llmobs_trace_buffer_bytes", "Bytes the trace buffer holds.",
                       1);
    write_buffer_gauge(w, &s, "otel2dd_llmobs_trace_buffer_capacity_spans",
                       "The trace buffer's bound in spans (trace_buffer.max_spans).", 2);
    write_buffer_gauge(w, &s, "otel2dd_llmobs_trace_buffer_capacity_bytes",
                       "The trace buffer's bound in bytes (trace_buffer.max_size_mib).", 3);
    /* The buffer's counters, as labelled families: a label value a counter. */
#define BUF(f) offsetof(struct llmobs_buffer_counters, f)
    static const char *const causes[] = {"root", "deadline", "bound"};
    static const size_t cause_f[] = {BUF(settled_by_root), BUF(settled_by_deadline),
                                     BUF(forced_by_bound)};
    write_buffer_counters(w, &s, "otel2dd_llmobs_trace_buffer_released_spans_total",
                          "LLM Obs spans released by the trace buffer, per cause: root (their "
                          "chain resolved), deadline (the timeout passed), bound (a size bound "
                          "forced an early decision).",
                          "cause", causes, cause_f, 3);
    static const char *const outcomes[] = {"joined", "unmatched"};
    static const size_t outcome_f[] = {BUF(logs_joined), BUF(logs_unmatched)};
    write_buffer_counters(w, &s, "otel2dd_llmobs_trace_buffer_log_records_total",
                          "gen_ai log records the trace buffer joined to their span (joined), or "
                          "gave up on because the span never came (unmatched).",
                          "outcome", outcomes, outcome_f, 2);
    static const char *const reasons[] = {"span_written", "not_llmobs", "no_span", "dropped"};
    static const size_t reason_f[] = {BUF(logs_unmatched_late), BUF(logs_unmatched_not_llm),
                                      BUF(logs_unmatched_no_span), BUF(logs_unmatched_dropped)};
    write_buffer_counters(w, &s, "otel2dd_llmobs_trace_buffer_unmatched_log_records_total",
                          "gen_ai log records not joined, per reason: span_written (they came "
                          "after their span was written: past the log join window), not_llmobs "
                          "(their span is not an LLM Obs span), no_span (their span did not come "
                          "within the trace buffer's timeout), dropped (given up by a bound or "
                          "at shutdown).",
                          "reason", reasons, reason_f, 4);
    static const char *const holds[] = {"held", "expired"};
    static const size_t hold_f[] = {BUF(held_for_logs), BUF(hold_expired)};
    write_buffer_counters(w, &s, "otel2dd_llmobs_trace_buffer_log_join_holds_total",
                          "llm spans held for their content's log records (held: "
                          "log_join_window), and of those the ones released at the window's end "
                          "without it (expired).",
                          "outcome", holds, hold_f, 2);
#undef BUF
    if (p->ecs != NULL) {
        uint64_t ok, failed;
        ecs_meta_counts(p->ecs, &ok, &failed);
        prom_family(w, "otel2dd_ecs_metadata_reads_total", PROM_COUNTER,
                    "Reads of the ECS task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4), "
                    "per result: ok, or failed (slow, down, not a task document, over 1 MiB).");
        struct prom_label lo[] = {{"result", "ok"}}, lf[] = {{"result", "failed"}};
        prom_sample_u64(w, "otel2dd_ecs_metadata_reads_total", lo, 1, ok);
        prom_sample_u64(w, "otel2dd_ecs_metadata_reads_total", lf, 1, failed);
    }
}

/* ---- the preview's status page ---- */

static int last_error_json(const struct dlv_last_error *e, struct o2d_buf *b)
{
    if (e->at_ms == 0) {
        return o2d_buf_append_str(b, "null");
    }
    int rv = o2d_buf_printf(b, "{\"at_ms\":%lld,\"what\":\"%s\",\"http_status\":%ld,\"transport\":",
                            (long long)e->at_ms, e->what, e->http_status);
    rv = rv ? rv : o2d_json_append_string(b, e->transport, strlen(e->transport));
    rv = rv ? rv : o2d_buf_append_str(b, ",\"body_excerpt\":");
    rv = rv ? rv : o2d_json_append_string(b, e->body, e->body_len);
    return rv ? rv : o2d_buf_append_str(b, "}");
}

int pipeline_status_json(void *ctx, struct o2d_buf *b)
{
    struct pipeline *p = ctx;
    struct snapshots s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e->type->metrics != NULL) {
            e->type->metrics(e, &s.m[s.n++]);
        }
    }
    int rv = o2d_buf_append_str(b, "[");
    int k = 0;
    for (int i = 0; i < s.n && rv == O2D_OK; i++) {
        for (size_t j = 0; j < s.m[i].n_outputs && rv == O2D_OK; j++) {
            const struct dlv_metrics *o = &s.m[i].outputs[j];
            rv = o2d_buf_printf(
                b,
                "%s{\"output\":\"%s\",\"sent_items\":%llu,\"sent_payloads\":%llu,"
                "\"sent_bytes\":%llu,\"retried_items\":%llu,\"has_queue\":%s,"
                "\"queue_items\":%llu,\"queue_bytes\":%llu,"
                "\"queue_capacity_bytes\":%llu,\"dropped\":{",
                k++ ? "," : "", o->name, (unsigned long long)o->sent_items,
                (unsigned long long)o->sent_payloads, (unsigned long long)o->sent_bytes,
                (unsigned long long)o->retried_items, o->has_queue ? "true" : "false",
                (unsigned long long)o->queue_items, (unsigned long long)o->queue_bytes,
                (unsigned long long)o->queue_capacity_bytes);
            for (size_t r = 0; r < o->n_drops && rv == O2D_OK; r++) {
                rv = o2d_buf_printf(b, "%s\"%s\":%llu", r ? "," : "", o->drops[r].reason,
                                    (unsigned long long)o->drops[r].items);
            }
            rv = rv ? rv : o2d_buf_append_str(b, "},\"last_error\":");
            rv = rv ? rv : last_error_json(&o->last_error, b);
            rv = rv ? rv : o2d_buf_append_str(b, "}");
        }
    }
    return rv ? rv : o2d_buf_append_str(b, "]");
}
