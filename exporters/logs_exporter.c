/*
 * logs_exporter.c: the Datadog Logs exporter (logs_exporter.h).
 *
 * submit() runs on the receiving thread: the request's records are written as log objects
 * (translate/logs, with a builder kept for reuse), each copied into an item, and the list is
 * queued on the destination in one step, tagged with the request's id. Nothing that points
 * into the request's arena is kept. Records too large to send (logs.h) are counted dropped
 * (too_large) on the destination; gen_ai events LLM Obs takes are counted skipped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "datadog.h"
#include "delivery.h"
#include "http_client.h"
#include "llmobs.h"
#include "logs.h"
#include "logs_exporter.h"
#include "logs_exporter_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"

#define LG_MAX_INFLIGHT        4
#define LG_ATTEMPT_TIMEOUT_MS  15000
#define LG_DEFAULT_QUEUE_BYTES (16u * 1024 * 1024)
#define LG_MIN_QUEUE_BYTES     (2 * LOGS_MAX_BODY_BYTES)
#define LG_DEFAULT_ELAPSED_MS  300000
#define LG_DEFAULT_FLUSH_MS    1000
#define LG_BUILDERS            8
/* What one record may take while it is written (flattened attributes included): the 1 MB
 * entry limit and the 4 MiB default message size leave room below this. */
#define LG_BUILDER_MAX_BYTES (16u * 1024 * 1024)

struct lg_exporter {
    struct exporter base;
    const struct datadog_config *cfg;
    struct logs_config tcfg;
    char site[128];
    char url[DATADOG_URL_MAX + 32];
    struct logs_wire wire;
    struct http_client *http;
    int own_http;
    size_t queue_max;
    int started;
    struct dlv_dest *out;

    pthread_mutex_t bl_mu;
    struct logs_builder *builders[LG_BUILDERS];
    size_t n_builders;

    atomic_uint_fast64_t translated;
    atomic_uint_fast64_t truncated;
    atomic_uint_fast64_t skipped;
};

void logs_exporter_intake_base(const struct datadog_config *cfg, char *out, size_t n)
{
    datadog_base_url(cfg->logs.endpoint, "http-intake.logs.", cfg->site, out, n);
}

void logs_exporter_translate_config(const struct datadog_config *cfg, struct logs_config *out)
{
    memset(out, 0, sizeof(*out));
    out->ddsource = LOGS_DDSOURCE;
    out->otel_source = LOGS_OTEL_SOURCE;
    out->max_entry_bytes = LOGS_MAX_ENTRY_BYTES;
    /* Only when LLM Obs is there to take them: otherwise they are logs like any other. */
    if (cfg->llmobs.enabled && !cfg->logs.include_genai_events) {
        out->skip = llmobs_log_is_genai;
    }
}

static int lg_start(struct exporter *e)
{
    struct lg_exporter *d = e->ctx;
    if (d->http == NULL) {
        int rv = http_client_new(&d->http, NULL);
        if (rv != O2D_OK) {
            return rv;
        }
        d->own_http = 1;
    }
    const struct datadog_config *cfg = d->cfg;
    struct dlv_dest_config dc = {
        .url = d->url,
        .where = d->site,
        .queue_max_bytes = d->queue_max,
        .max_body = LOGS_MAX_BODY_BYTES,
        .batch_bytes = LOGS_MAX_BODY_BYTES,
        .flush_interval_ms =
            cfg->flush_interval_ms > 0 ? cfg->flush_interval_ms : LG_DEFAULT_FLUSH_MS,
        .max_elapsed_ms = cfg->max_elapsed_ms > 0 ? cfg->max_elapsed_ms : LG_DEFAULT_ELAPSED_MS,
        .attempt_timeout_ms = LG_ATTEMPT_TIMEOUT_MS,
        .max_inflight = LG_MAX_INFLIGHT,
        .tenant_share_pct = cfg->tenant_share_pct,
    };
    datadog_dest_tune(cfg, &cfg->logs_compression, DLV_COMPRESS_ZSTD, &dc);
    int rv = datadog_disk_queue(cfg, "logs", 4, &dc.queue);
    if (rv == O2D_OK) {
        rv = dlv_dest_new(&d->out, &logs_dest, &d->wire, &dc, d->http);
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_start(d->out);
    }
    if (rv != O2D_OK) {
        return rv;
    }
    d->started = 1;
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "logs exporter started");
    o2d_log_cstr(&l, "site", d->site);
    o2d_log_cstr(&l, "intake", d->url);
    o2d_log_uint(&l, "queue_max_bytes", d->queue_max);
    o2d_log_cstr(&l, "genai_events",
                 d->tcfg.skip != NULL ? "left to LLM Observability" : "sent as logs");
    o2d_log_end(&l);
    return O2D_OK;
}

static size_t count_records(const OtlpLogsReq *req)
{
    size_t n = 0;
    for (size_t i = 0; req != NULL && i < req->n_resource_logs; i++) {
        const OtlpResourceLogs *rl = req->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            n += rl->scope_logs[j]->n_log_records;
        }
    }
    return n;
}

static int lg_admit(struct exporter *e, const struct otlp_request *req)
{
    struct lg_exporter *d = e->ctx;
    if (req->signal != OTLP_SIGNAL_LOGS) {
        return O2D_OK;
    }
    if (d->out == NULL) {
        return O2D_ERR_SHUTDOWN;
    }
    return dlv_dest_admit_tenant(d->out, count_records(req->msg.logs), req->tenant);
}

/* The items of one request, linked in order. */
struct item_list {
    struct dlv_item *head, **tailp;
};

static int add_item(void *ctx, const uint8_t *json, size_t len)
{
    struct item_list *il = ctx;
    struct dlv_item *it = logs_item(json, len);
    if (it == NULL) {
        return O2D_ERR_NOMEM;
    }
    *il->tailp = it;
    il->tailp = &it->next;
    return O2D_OK;
}

static void free_list(struct dlv_item *it)
{
    while (it != NULL) {
        struct dlv_item *next = it->next;
        dlv_item_free(it);
        it = next;
    }
}

static int lg_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    struct lg_exporter *d = e->ctx;
    (void)transport;
    if (req->signal != OTLP_SIGNAL_LOGS || req->msg.logs == NULL) {
        return O2D_OK;
    }
    if (d->out == NULL || dlv_dest_stopping(d->out)) {
        return O2D_ERR_SHUTDOWN;
    }
    struct logs_builder *b = NULL;
    pthread_mutex_lock(&d->bl_mu);
    if (d->n_builders > 0) {
        b = d->builders[--d->n_builders];
    }
    pthread_mutex_unlock(&d->bl_mu);
    int rv = b == NULL ? logs_builder_new(&b, LG_BUILDER_MAX_BYTES) : O2D_OK;
    struct item_list il = {.head = NULL};
    il.tailp = &il.head;
    struct logs_counts c = {0};
    if (rv == O2D_OK) {
        rv = logs_translate(b, req->arena, req->msg.logs, &d->tcfg, add_item, &il, &c);
    }
    if (b != NULL) {
        pthread_mutex_lock(&d->bl_mu);
        if (d->n_builders < LG_BUILDERS) {
            d->builders[d->n_builders++] = b;
            b = NULL;
        }
        pthread_mutex_unlock(&d->bl_mu);
        logs_builder_free(b);
    }
    if (rv != O2D_OK) {
        free_list(il.head);
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN, "logs: request not taken");
        o2d_log_cstr(&l, "reason", o2d_strerror(rv));
        o2d_log_end(&l);
        return rv == O2D_ERR_NOMEM ? O2D_ERR_BUSY : rv;
    }
    if (c.too_large > 0) {
        dlv_dest_drop(d->out, DLV_DROP_TOO_LARGE, c.too_large);
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN, "logs: records too large to send were dropped");
        o2d_log_uint(&l, "records", c.too_large);
        o2d_log_uint(&l, "max_entry_bytes", LOGS_MAX_ENTRY_BYTES);
        o2d_log_end(&l);
    }
    atomic_fetch_add(&d->translated, c.translated);
    atomic_fetch_add(&d->truncated, c.truncated);
    atomic_fetch_add(&d->skipped, c.skipped);
    if (il.head == NULL) {
        return O2D_OK;
    }
    /* takes the list, even on error */
    return dlv_dest_enqueue_tenant(d->out, il.head, req->id, req->tenant);
}

static int lg_flush(struct exporter *e, int64_t deadline_ms)
{
    struct lg_exporter *d = e->ctx;
    if (!d->started) {
        return O2D_OK;
    }
    dlv_dest_flush_begin(d->out);
    return dlv_dest_flush_wait(d->out, deadline_ms);
}

static void lg_stop(struct exporter *e)
{
    struct lg_exporter *d = e->ctx;
    if (d->out != NULL) {
        dlv_dest_stop(d->out);
    }
}

static uint64_t lg_undelivered(const struct exporter *e, struct o2d_logline *l)
{
    const struct lg_exporter *d = e->ctx;
    return d->out != NULL ? dlv_dest_undelivered(d->out, l, "log_records") : 0;
}

static void lg_destroy(struct exporter *e)
{
    struct lg_exporter *d = e->ctx;
    lg_stop(e);
    if (d->own_http) {
        http_client_free(d->http);
    }
    d->http = NULL;
    if (d->started) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_INFO, "logs exporter totals");
        dlv_dest_log_counts(d->out, &l, "");
        o2d_log_uint(&l, "records_translated", atomic_load(&d->translated));
        o2d_log_uint(&l, "records_truncated", atomic_load(&d->truncated));
        o2d_log_uint(&l, "genai_events_skipped", atomic_load(&d->skipped));
        o2d_log_end(&l);
    }
    dlv_dest_free(d->out);
    for (size_t i = 0; i < d->n_builders; i++) {
        logs_builder_free(d->builders[i]);
    }
    pthread_mutex_destroy(&d->bl_mu);
    o2d_free(d);
}

static void lg_metrics(const struct exporter *e, struct exporter_metrics *m)
{
    struct lg_exporter *d = e->ctx;
    m->has_logs = 1;
    m->logs_translated = atomic_load(&d->translated);
    m->logs_truncated = atomic_load(&d->truncated);
    m->logs_genai_skipped = atomic_load(&d->skipped);
    if (d->out != NULL) {
        dlv_dest_metrics(d->out, &m->outputs[m->n_outputs++]);
    }
}

static const struct exporter_type logs_exporter_type = {
    .name = "datadog_logs",
    .start = lg_start,
    .admit = lg_admit,
    .submit = lg_submit,
    .flush = lg_flush,
    .destroy = lg_destroy,
    .metrics = lg_metrics,
    .stop = lg_stop,
    .undelivered = lg_undelivered,
};

int logs_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                      struct http_client *http)
{
    struct lg_exporter *d = o2d_calloc(1, sizeof(*d));
    if (d == NULL) {
        return O2D_ERR_NOMEM;
    }
    d->base.type = &logs_exporter_type;
    d->base.ctx = d;
    d->cfg = cfg;
    d->http = http;
    logs_exporter_translate_config(cfg, &d->tcfg);
    snprintf(d->site, sizeof(d->site), "%s", cfg->site[0] != '\0' ? cfg->site : "datadoghq.com");
    char base[DATADOG_URL_MAX];
    logs_exporter_intake_base(cfg, base, sizeof(base));
    snprintf(d->url, sizeof(d->url), "%s/api/v2/logs", base);
    snprintf(d->wire.key_header, sizeof(d->wire.key_header), "DD-API-KEY: %s", cfg->api_key);
    /* A quarter of the Datadog queue's budget, and room for two full bodies at least. */
    d->queue_max = cfg->queue_max_bytes > 0 ? cfg->queue_max_bytes / 4 : LG_DEFAULT_QUEUE_BYTES;
    if (d->queue_max < LG_MIN_QUEUE_BYTES) {
        d->queue_max = LG_MIN_QUEUE_BYTES;
    }
    pthread_mutex_init(&d->bl_mu, NULL);
    *out = &d->base;
    return O2D_OK;
}
