/*
 * datadog_metrics.c: the Datadog metrics exporter (datadog_metrics.h): a translated batch's
 * series points and sketches become items (datadog_metrics_wire.c) queued on two
 * destinations of the delivery layer, series to https://api.<site>/api/v2/series and
 * sketches to /api/beta/sketches, with the API key; the layer packs, compresses (zstd),
 * sends, retries and counts.
 *
 * Agent mode: a Datadog Agent has no series or sketches intake for a sender like us (its
 * trace port serves traces, stats and the EVP proxy; metrics reach it over its own OTLP
 * receiver, otlp_config.receiver, or DogStatsD), so metrics skip it and go to the intake
 * when an API key is set, and are not sent without one (datadog_metrics_route_of; the APM
 * exporter says so at start).
 */
#include <stdio.h>
#include <string.h>

#include "datadog.h"
#include "datadog_metrics.h"
#include "datadog_metrics_int.h"
#include "delivery.h"
#include "http_client.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"

#define DM_DEFAULT_FLUSH_MS   2000
#define DM_DEFAULT_ELAPSED_MS 300000
#define DM_ATTEMPT_TIMEOUT_MS 15000
#define DM_MAX_INFLIGHT       4
#define DM_QUEUE_SHARE        4 /* each queue: this fraction of sending_queue.max_size_mib */
#define DM_DISK_SHARE         8 /* each disk queue: this fraction of disk_max_size_mib */

struct dm_exporter {
    struct exporter base;
    const struct datadog_config *cfg;
    char site[128];
    struct datadog_metrics_wire wire;
    struct http_client *http;
    int own_http;
    int started;
    char series_url[DATADOG_URL_MAX + 32];
    char sketches_url[DATADOG_URL_MAX + 32];
    struct dlv_dest *series;
    struct dlv_dest *sketches;
};

enum datadog_metrics_route datadog_metrics_route_of(const struct datadog_config *cfg)
{
    if (!cfg->metrics.enabled) {
        return DATADOG_METRICS_OFF;
    }
    if (cfg->api_key[0] == '\0') {
        return DATADOG_METRICS_NO_KEY;
    }
    return DATADOG_METRICS_INTAKE;
}

const char *datadog_metrics_agent_note(const struct datadog_config *cfg)
{
    if (cfg->agent_endpoint[0] == '\0') {
        return NULL;
    }
    switch (datadog_metrics_route_of(cfg)) {
    case DATADOG_METRICS_OFF:
        return "metrics off (metrics.enabled: false)";
    case DATADOG_METRICS_INTAKE:
        return "metrics go to the Datadog metrics intake with the API key: a Datadog Agent "
               "takes no series from us";
    default:
        return "metrics are not sent: a Datadog Agent takes no series from us (it takes "
               "metrics on its own OTLP receiver or DogStatsD); point the application's "
               "metrics exporter at the Agent's OTLP receiver, or set an API key to send them "
               "to the intake";
    }
}

void datadog_metrics_base(const struct datadog_config *cfg, char *out, size_t n)
{
    datadog_base_url(cfg->metrics.endpoint, "api.", cfg->site, out, n);
}

static int dm_start(struct exporter *e)
{
    struct dm_exporter *d = e->ctx;
    const struct datadog_config *cfg = d->cfg;
    if (d->http == NULL) {
        int rv = http_client_new(&d->http, NULL);
        if (rv != O2D_OK) {
            return rv;
        }
        d->own_http = 1;
    }
    size_t queue = cfg->queue_max_bytes > 0 ? cfg->queue_max_bytes / DM_QUEUE_SHARE : 0;
    struct dlv_dest_config sc = {
        .url = d->series_url,
        .where = d->site,
        .queue_max_bytes = queue > 0 ? queue : (16u << 20),
        .max_body = DATADOG_SERIES_MAX_BODY,
        .max_raw = DATADOG_SERIES_MAX_RAW,
        /* A round takes what fits in one body before compression; zstd makes it smaller and
         * a body that comes out over the compressed limit is built again in halves. */
        .batch_bytes = DATADOG_SERIES_MAX_RAW,
        .compression = DLV_COMPRESS_ZSTD,
        .flush_interval_ms =
            cfg->flush_interval_ms > 0 ? cfg->flush_interval_ms : DM_DEFAULT_FLUSH_MS,
        .max_elapsed_ms = cfg->max_elapsed_ms > 0 ? cfg->max_elapsed_ms : DM_DEFAULT_ELAPSED_MS,
        .attempt_timeout_ms = DM_ATTEMPT_TIMEOUT_MS,
        .max_inflight = DM_MAX_INFLIGHT,
    };
    struct dlv_dest_config kc = sc;
    kc.url = d->sketches_url;
    kc.max_body = DATADOG_SKETCHES_MAX_BODY;
    kc.max_raw = DATADOG_SKETCHES_MAX_RAW;
    kc.batch_bytes = DATADOG_SKETCHES_MAX_RAW;
    int rv = datadog_disk_queue(cfg, "series", DM_DISK_SHARE, &sc.queue);
    if (rv == O2D_OK) {
        rv = datadog_disk_queue(cfg, "sketches", DM_DISK_SHARE, &kc.queue);
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_new(&d->series, &datadog_series_dest, &d->wire, &sc, d->http);
        sc.queue = NULL; /* the destination's now, even on failure */
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_new(&d->sketches, &datadog_sketches_dest, &d->wire, &kc, d->http);
        kc.queue = NULL;
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_start(d->series);
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_start(d->sketches);
    }
    if (rv != O2D_OK) {
        if (sc.queue != NULL) {
            sc.queue->type->free(sc.queue);
        }
        if (kc.queue != NULL) {
            kc.queue->type->free(kc.queue);
        }
        return rv;
    }
    d->started = 1;
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "datadog metrics exporter started");
    o2d_log_cstr(&l, "site", d->site);
    o2d_log_cstr(&l, "series", d->series_url);
    o2d_log_cstr(&l, "sketches", d->sketches_url);
    o2d_log_uint(&l, "queue_max_bytes", sc.queue_max_bytes);
    o2d_log_end(&l);
    return O2D_OK;
}

static int dm_admit(struct exporter *e, const struct otlp_request *req)
{
    struct dm_exporter *d = e->ctx;
    if (req->signal != OTLP_SIGNAL_METRICS) {
        return O2D_OK;
    }
    if (d->series == NULL || d->sketches == NULL) {
        return O2D_ERR_SHUTDOWN;
    }
    int rv = dlv_dest_admit(d->series, req->accepted);
    if (rv == O2D_OK) {
        rv = dlv_dest_admit(d->sketches, req->accepted);
    }
    return rv;
}

static int dm_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    /* Not an input of this exporter: see datadog_metrics.h. */
    (void)e;
    (void)transport;
    (void)req;
    return O2D_OK;
}

static void free_items(struct dlv_item *list)
{
    while (list != NULL) {
        struct dlv_item *nx = list->next;
        dlv_item_free(list);
        list = nx;
    }
}

static void log_invalid(const char *what, const char *name, size_t index)
{
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_ERROR,
                  "metrics: the translator made a point that cannot be encoded: the batch is "
                  "refused");
    o2d_log_cstr(&l, "kind", what);
    o2d_log_cstr(&l, "name", name != NULL ? name : "");
    o2d_log_uint(&l, "index", index);
    o2d_log_end(&l);
}

int datadog_metrics_submit(struct exporter *e, const struct ddm_batch *b, uint64_t origin)
{
    struct dm_exporter *d = e->ctx;
    if (d->series == NULL || d->sketches == NULL || dlv_dest_stopping(d->series) ||
        dlv_dest_stopping(d->sketches)) {
        return O2D_ERR_SHUTDOWN;
    }
    /* Everything is encoded before anything is queued: the batch borrows the request's
     * arena, and a refused request must leave nothing behind (its retry brings it again). */
    struct dlv_item *series = NULL;
    struct dlv_item *sketches = NULL;
    struct dlv_item **tail = &series;
    int rv = O2D_OK;
    for (size_t i = 0; i < b->nseries && rv == O2D_OK; i++) {
        struct dlv_item *it = NULL;
        rv = datadog_series_item(&b->series[i], &it);
        if (rv == O2D_ERR_INVALID) {
            log_invalid("series", b->series[i].name, i);
        } else if (rv == O2D_OK) {
            *tail = it;
            tail = &it->next;
        }
    }
    tail = &sketches;
    for (size_t i = 0; i < b->nsketches && rv == O2D_OK; i++) {
        struct dlv_item *it = NULL;
        rv = datadog_sketch_item(&b->sketches[i], &it);
        if (rv == O2D_ERR_INVALID) {
            log_invalid("sketch", b->sketches[i].name, i);
        } else if (rv == O2D_OK) {
            *tail = it;
            tail = &it->next;
        }
    }
    if (rv != O2D_OK) {
        goto out;
    }
    /* A disk queue may refuse (full, or its storage failed): then the request is refused
     * and retried by its sender. If it refuses the sketches after taking the series, the
     * retry sends those series again; a memory queue never refuses here. */
    if (series != NULL) {
        rv = dlv_dest_enqueue(d->series, series, origin);
        series = NULL; /* the destination's, even on error */
        if (rv != O2D_OK) {
            goto out;
        }
    }
    if (sketches != NULL) {
        rv = dlv_dest_enqueue(d->sketches, sketches, origin);
        sketches = NULL;
    }
out:
    free_items(series);
    free_items(sketches);
    return rv;
}

static int dm_flush(struct exporter *e, int64_t deadline_ms)
{
    struct dm_exporter *d = e->ctx;
    if (!d->started) {
        return O2D_OK;
    }
    dlv_dest_flush_begin(d->series);
    dlv_dest_flush_begin(d->sketches);
    int rv1 = dlv_dest_flush_wait(d->series, deadline_ms);
    int rv2 = dlv_dest_flush_wait(d->sketches, deadline_ms);
    return rv1 != O2D_OK ? rv1 : rv2;
}

static void dm_stop(struct exporter *e)
{
    struct dm_exporter *d = e->ctx;
    if (d->series != NULL) {
        dlv_dest_stop(d->series);
    }
    if (d->sketches != NULL) {
        dlv_dest_stop(d->sketches);
    }
}

static uint64_t dm_undelivered(const struct exporter *e, struct o2d_logline *l)
{
    const struct dm_exporter *d = e->ctx;
    uint64_t total = 0;
    if (d->series != NULL) {
        total += dlv_dest_undelivered(d->series, l, "datadog_series_points");
    }
    if (d->sketches != NULL) {
        total += dlv_dest_undelivered(d->sketches, l, "datadog_sketches");
    }
    return total;
}

static void dm_metrics(const struct exporter *e, struct exporter_metrics *m)
{
    const struct dm_exporter *d = e->ctx;
    if (d->series != NULL) {
        dlv_dest_metrics(d->series, &m->outputs[m->n_outputs++]);
    }
    if (d->sketches != NULL) {
        dlv_dest_metrics(d->sketches, &m->outputs[m->n_outputs++]);
    }
}

static void dm_destroy(struct exporter *e)
{
    struct dm_exporter *d = e->ctx;
    dm_stop(e);
    if (d->own_http) {
        http_client_free(d->http);
    }
    d->http = NULL;
    if (d->started) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_INFO, "datadog metrics exporter totals");
        dlv_dest_log_counts(d->series, &l, "series_");
        dlv_dest_log_counts(d->sketches, &l, "sketches_");
        o2d_log_end(&l);
    }
    dlv_dest_free(d->series);
    dlv_dest_free(d->sketches);
    o2d_free(d);
}

static const struct exporter_type datadog_metrics_exporter_type = {
    .name = "datadog_metrics",
    .start = dm_start,
    .admit = dm_admit,
    .submit = dm_submit,
    .flush = dm_flush,
    .destroy = dm_destroy,
    .metrics = dm_metrics,
    .stop = dm_stop,
    .undelivered = dm_undelivered,
};

int datadog_metrics_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                                 struct http_client *http)
{
    struct dm_exporter *d = o2d_calloc(1, sizeof(*d));
    if (d == NULL) {
        return O2D_ERR_NOMEM;
    }
    d->base.type = &datadog_metrics_exporter_type;
    d->base.ctx = d;
    d->cfg = cfg;
    d->http = http;
    snprintf(d->site, sizeof(d->site), "%s", cfg->site[0] != '\0' ? cfg->site : "datadoghq.com");
    char base[DATADOG_URL_MAX];
    datadog_metrics_base(cfg, base, sizeof(base));
    snprintf(d->series_url, sizeof(d->series_url), "%s/api/v2/series", base);
    snprintf(d->sketches_url, sizeof(d->sketches_url), "%s/api/beta/sketches", base);
    snprintf(d->wire.key_header, sizeof(d->wire.key_header), "DD-API-KEY: %s", cfg->api_key);
    *out = &d->base;
    return O2D_OK;
}
