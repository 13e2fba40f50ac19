/*
 * datadog_metrics.c: the Datadog metrics exporter (datadog_metrics.h): a translated batch's
 * series points and sketches become items (datadog_metrics_wire.c) queued on two
 * destinations of the delivery layer, series to https://api.<site>/api/v2/series and
 * sketches to /api/beta/sketches, with the API key; the layer packs, compresses (zstd),
 * sends, retries and counts.
 *
 * The exporter owns the metrics translator (translate/metrics: one per process, for its
 * cumulative-to-delta cache): ->submit translates a metrics request in the request's arena,
 * what its resources say for Datadog coming from translate/resource (the tag table and the
 * host source, the configured hostname when a resource names none), and queues the batch.
 *
 * Agent mode: a Datadog Agent has no series or sketches intake for a sender like us (its
 * trace port serves traces, stats and the EVP proxy; metrics reach it over its own OTLP
 * receiver, otlp_config.receiver, or DogStatsD), so metrics skip it and go to the intake
 * when an API key is set, and are not sent without one (datadog_metrics_route_of; the APM
 * exporter says so at start).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "datadog.h"
#include "datadog_metrics.h"
#include "datadog_metrics_int.h"
#include "delivery.h"
#include "http_client.h"
#include "mtr.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"
#include "resource.h"

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
    struct mtr_translator *mtr;
    /* points translated, and dropped by the translator by reason (mtr_drop) */
    atomic_uint_fast64_t points;
    atomic_uint_fast64_t dropped[MTR_DROP_N];
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
        .flush_interval_ms =
            cfg->flush_interval_ms > 0 ? cfg->flush_interval_ms : DM_DEFAULT_FLUSH_MS,
        .max_elapsed_ms = cfg->max_elapsed_ms > 0 ? cfg->max_elapsed_ms : DM_DEFAULT_ELAPSED_MS,
        .attempt_timeout_ms = DM_ATTEMPT_TIMEOUT_MS,
        .max_inflight = DM_MAX_INFLIGHT,
        .tenant_share_pct = cfg->tenant_share_pct,
    };
    datadog_dest_tune(cfg, &cfg->metrics_compression, DLV_COMPRESS_ZSTD, &sc);
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
    int rv = dlv_dest_admit_tenant(d->series, req->accepted, req->tenant);
    if (rv == O2D_OK) {
        rv = dlv_dest_admit_tenant(d->sketches, req->accepted, req->tenant);
    }
    return rv;
}

static int dm_full(struct exporter *e, int sig)
{
    struct dm_exporter *d = e->ctx;
    if (sig != OTLP_SIGNAL_METRICS || d->series == NULL || d->sketches == NULL) {
        return 0;
    }
    return dlv_dest_full(d->series) || dlv_dest_full(d->sketches);
}

/* A string of the request's arena from bytes with a length. */
static const char *arena_str(struct o2d_arena *a, const char *p, size_t n)
{
    return o2d_arena_strndup(a, p != NULL ? p : "", p != NULL ? n : 0);
}

/*
 * mtr_resource_fn: the tags (the table of attributes.TagsFromAttributes, task_arn on ECS
 * Fargate, and with resource_attributes_as_tags every attribute) and the host (the source's,
 * none on Fargate, the configured hostname when the resource names none) of a resource, as
 * mapping-go's MapMetrics gets them (metrics_translator.go: source and
 * attributes.TagsFromAttributes; the Fargate task tag).
 */
int datadog_metrics_resource(void *ctx, const OtlpResource *res, struct o2d_arena *a,
                             const char *const **tags, size_t *ntags, const char **host)
{
    const struct datadog_config *cfg = ctx;
    OtlpKeyValue *const *attrs = res != NULL ? res->attributes : NULL;
    size_t nattrs = res != NULL ? res->n_attributes : 0;
    struct res_source src;
    int rv = res_source(a, res, &src);
    if (rv != O2D_OK) {
        return rv;
    }
    struct res_str *t = NULL;
    size_t nt = 0;
    if ((rv = res_tags_from_attributes(a, attrs, nattrs, &t, &nt)) != O2D_OK) {
        return rv;
    }
    int all = cfg->metrics.resource_attributes_as_tags;
    size_t cap = nt + 1 + (all ? nattrs : 0);
    const char **out = o2d_arena_alloc(a, cap * sizeof(*out));
    if (out == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t n = 0;
    for (size_t i = 0; i < nt; i++) {
        if ((out[n++] = arena_str(a, t[i].p, t[i].n)) == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
    }
    if (src.found && src.fargate) {
        size_t len = sizeof("task_arn:") - 1 + src.task_arn.n;
        char *tag = o2d_arena_alloc(a, len + 1);
        if (tag == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        memcpy(tag, "task_arn:", sizeof("task_arn:") - 1);
        memcpy(tag + sizeof("task_arn:") - 1, src.task_arn.p, src.task_arn.n);
        tag[len] = '\0';
        out[n++] = tag;
    }
    for (size_t i = 0; all && i < nattrs; i++) {
        struct res_str v;
        if (attrs[i] == NULL || attrs[i]->key == NULL ||
            res_value_as_string(a, attrs[i]->value, &v) != O2D_OK) {
            continue;
        }
        size_t kl = strlen(attrs[i]->key);
        char *tag = o2d_arena_alloc(a, kl + 1 + v.n + 1);
        if (tag == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        memcpy(tag, attrs[i]->key, kl);
        tag[kl] = ':';
        memcpy(tag + kl + 1, v.p, v.n);
        tag[kl + 1 + v.n] = '\0';
        out[n++] = tag;
    }
    *tags = out;
    *ntags = n;
    if (src.found && src.fargate) {
        *host = NULL;
    } else if (src.found) {
        *host = arena_str(a, src.hostname.p, src.hostname.n);
    } else {
        *host = cfg->hostname[0] != '\0' ? cfg->hostname : NULL;
    }
    return O2D_OK;
}

static int dm_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    struct dm_exporter *d = e->ctx;
    (void)transport;
    if (req->signal != OTLP_SIGNAL_METRICS || req->msg.metrics == NULL) {
        return O2D_OK;
    }
    struct mtr_result res;
    int rv = mtr_translate(d->mtr, req->msg.metrics, (uint64_t)o2d_realtime_ns(),
                           datadog_metrics_resource, (void *)d->cfg, req->arena, &res);
    if (rv != O2D_OK) {
        return rv;
    }
    atomic_fetch_add_explicit(&d->points, res.points, memory_order_relaxed);
    for (int i = 0; i < MTR_DROP_N; i++) {
        if (res.dropped[i] > 0) {
            atomic_fetch_add_explicit(&d->dropped[i], res.dropped[i], memory_order_relaxed);
        }
    }
    if (res.batch.nseries == 0 && res.batch.nsketches == 0) {
        return O2D_OK;
    }
    return datadog_metrics_submit_as(e, &res.batch, req->id, req->tenant);
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
    return datadog_metrics_submit_as(e, b, origin, -1);
}

int datadog_metrics_submit_as(struct exporter *e, const struct ddm_batch *b, uint64_t origin,
                              int tenant)
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
        rv = dlv_dest_enqueue_tenant(d->series, series, origin, tenant);
        series = NULL; /* the destination's, even on error */
        if (rv != O2D_OK) {
            goto out;
        }
    }
    if (sketches != NULL) {
        rv = dlv_dest_enqueue_tenant(d->sketches, sketches, origin, tenant);
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
    struct dm_exporter *d = e->ctx;
    m->has_metrics = 1;
    m->metric_points = atomic_load_explicit(&d->points, memory_order_relaxed);
    for (int i = 0; i < MTR_DROP_N && m->n_metric_drops < 8; i++) {
        m->metric_drops[m->n_metric_drops].reason = mtr_drop_name((enum mtr_drop)i);
        m->metric_drops[m->n_metric_drops++].points =
            atomic_load_explicit(&d->dropped[i], memory_order_relaxed);
    }
    struct mtr_stats st;
    mtr_get_stats(d->mtr, &st);
    m->metric_cache_entries = st.cache_entries;
    m->metric_cache_evicted = st.evicted_ttl + st.evicted_capacity;
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
    mtr_free(d->mtr);
    o2d_free(d);
}

struct mtr_translator *datadog_metrics_translator_new(const struct datadog_config *cfg,
                                                      uint64_t start_ns)
{
    struct mtr_config mc;
    mtr_config_default(&mc);
    const struct datadog_metrics_config *m = &cfg->metrics;
    mc.hist_mode = m->histogram_mode == DATADOG_HIST_COUNTERS    ? MTR_HIST_COUNTERS
                   : m->histogram_mode == DATADOG_HIST_NOBUCKETS ? MTR_HIST_NOBUCKETS
                                                                 : MTR_HIST_DISTRIBUTIONS;
    mc.send_aggregation_metrics = m->histogram_aggregations;
    mc.cumul_mode = m->cumulative_mode == DATADOG_CUMULATIVE_RAW_VALUE ? MTR_CUMUL_RAW_VALUE
                                                                       : MTR_CUMUL_TO_DELTA;
    mc.initial_mode = m->initial_value == DATADOG_INITIAL_DROP   ? MTR_INITIAL_DROP
                      : m->initial_value == DATADOG_INITIAL_KEEP ? MTR_INITIAL_KEEP
                                                                 : MTR_INITIAL_AUTO;
    mc.summary_mode = m->summary_mode == DATADOG_SUMMARY_NOQUANTILES ? MTR_SUMMARY_NOQUANTILES
                                                                     : MTR_SUMMARY_GAUGES;
    if (m->delta_ttl_s > 0) {
        mc.delta_ttl_s = (int64_t)m->delta_ttl_s;
    }
    mc.scope_metadata_as_tags = m->instrumentation_scope_metadata_as_tags;
    const char *reason = NULL;
    struct mtr_translator *t = mtr_new(&mc, start_ns, &reason);
    if (t == NULL) {
        o2d_logf(O2D_LOG_ERROR, "datadog metrics: cannot make the translator: %s",
                 reason != NULL ? reason : "out of memory");
    }
    return t;
}

static const struct exporter_type datadog_metrics_exporter_type = {
    .name = "datadog_metrics",
    .start = dm_start,
    .admit = dm_admit,
    .full = dm_full,
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
    d->mtr = datadog_metrics_translator_new(cfg, (uint64_t)o2d_realtime_ns());
    if (d->mtr == NULL) {
        o2d_free(d);
        return O2D_ERR_CONFIG;
    }
    for (int i = 0; i < MTR_DROP_N; i++) {
        atomic_init(&d->dropped[i], 0);
    }
    atomic_init(&d->points, 0);
    *out = &d->base;
    return O2D_OK;
}
