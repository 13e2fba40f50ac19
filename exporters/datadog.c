/*
 * datadog.c: the Datadog exporter (datadog.h): APM traces and stats, to the intake
 * (agentless) or to a local Agent, each through a destination of the delivery layer
 * (delivery.h; the destinations' pure half is datadog_wire.c).
 *
 * submit() runs on the receiving thread: translate (apm.h) in the request's arena, write
 * each TracerPayload's bytes (apm_pb.h; or, for the Agent, each trace as v0.4 msgpack) into
 * an item, feed the stats concentrator and queue the items. admit() asked the traces
 * destination for room first, so that a request refused for lack of room, and retried by its
 * sender, is never counted twice. The stats destination's tick flushes the closed buckets
 * every 10 s (all of them at a flush) as its items. At start it checks the API key
 * (agentless) or asks the Agent's /info, once, and only logs what it learns (an Agent's
 * smaller body limit is taken).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "apm_msgpack.h"
#include "apm_pb.h"
#include "datadog.h"
#include "datadog_int.h"
#include "delivery.h"
#include "disk_log.h"
#include "ecs_meta.h"
#include "http_client.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"
#include "sql_cache.h"
#include "stats.h"

#define DD_AGENT_VERSION       "otel2dd/" O2D_VERSION
#define DD_AGENT_ENV           "none" /* the trace agent's default env */
#define DD_TPS                 10.0
#define DD_STATS_INTERVAL_MS   10000
#define DD_STATS_BUCKET_NS     10000000000LL
#define DD_STATS_MAX_GROUPS    20000
#define DD_MAX_INFLIGHT        4 /* trace bodies in flight (retries included) */
#define DD_ATTEMPT_TIMEOUT_MS  15000
#define DD_VALIDATE_TIMEOUT_MS 10000
#define DD_DEFAULT_QUEUE_BYTES (64u * 1024 * 1024)
#define DD_STATS_QUEUE_BYTES   (64u * 1024 * 1024)
#define DD_DEFAULT_FLUSH_MS    2000
#define DD_DEFAULT_ELAPSED_MS  300000
#define DD_AGENT_MIN_BODY      (16 * 1024) /* the least max_request_bytes taken from /info */
#define DD_SEGMENT_MIN         (1u << 20)
#define DD_SEGMENT_MAX         (32u << 20)
#define DD_GROUP_COMMIT_US     1000 /* fsync batch: a sync waits 1 ms for more appends */

struct dd_exporter {
    struct exporter base;
    const struct datadog_config *cfg;
    char site[128];
    /* Agent mode (agent.endpoint set): v0.4 msgpack traces and v0.6 client stats to a local
     * Datadog Agent, no API key, no compression. */
    int agent_mode;
    char dest[DATADOG_URL_MAX]; /* what rejection logs name: the site, or the Agent's URL */
    char info_url[DATADOG_URL_MAX + 32];
    char validate_url[DATADOG_URL_MAX + 32];
    char hostname[256];
    struct datadog_wire wire; /* the destinations' context */
    /* Bytes a span took in the last TracerPayload written (any thread; a hint only): what the
     * next one reserves, so that its item's storage is not much larger than its bytes. */
    atomic_size_t trace_bytes_per_span;
    struct http_client *http;
    int own_http; /* http was made by dd_start, not shared by the caller */
    int started;

    struct dlv_dest *traces;
    struct dlv_dest *stats_out;
    dlv_observer_fn observer; /* told what becomes of each traces item (the preview) */
    void *observer_ctx;

    struct ecs_meta *ecs; /* the task's metadata (borrowed), NULL outside ECS */

    /* processors.probabilistic_sampler: spans and traces decided, by rule and outcome */
    atomic_uint_fast64_t sampled_out[APM_SAMPLE_RULES];
    atomic_uint_fast64_t sampled_in[APM_SAMPLE_RULES];

    struct sql_cache *sql_cache; /* NULL when traces.obfuscation.cache is off */

    pthread_mutex_t stats_mu; /* the concentrator is single-threaded */
    struct stats_concentrator *stats;
    struct stats_config stats_cfg;
};

void datadog_base_url(const char *override, const char *prefix, const char *site, char *out,
                      size_t n)
{
    if (override != NULL && override[0] != '\0') {
        snprintf(out, n, "%s", override);
    } else {
        snprintf(out, n, "https://%s%s", prefix,
                 site != NULL && site[0] != '\0' ? site : "datadoghq.com");
    }
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '/') {
        out[--len] = '\0';
    }
}

/*
 * Compression. Defaults follow what Datadog's own senders send each intake:
 * - traces: zstd level 1, the Agent's trace writer (comp/trace/compression/impl-zstd/zstd.go:
 *   zstd.CompressLevel(..., zstd.BestSpeed), Content-Encoding "zstd"; the gzip component,
 *   impl-gzip, is the other choice);
 * - stats: gzip level 1, the Agent's stats writer (pkg/trace/writer/stats.go, encodePayload:
 *   gzip.BestSpeed, Content-Encoding "gzip");
 * - series and sketches: zstd level 1, the Agent's serializer (serializer_compressor_kind
 *   zstd by default, comp/core/config tests "metrics must default to zstd");
 * - logs: zstd level 1, the Agent's logs sender (logs_config.compression_kind zstd,
 *   zstd_compression_level 1 by default, same tests "logs must default to zstd");
 * - LLM Obs: none, as dd-trace-py's and dd-trace-js's LLMObsSpanWriter post plain JSON.
 * To a local Agent (agent mode) traces and stats go as its receiver takes them: plain
 * msgpack (datadog_exporter start). Levels: confighttp's compression_params.level.
 */
void datadog_dest_tune(const struct datadog_config *cfg, const struct datadog_compression *c,
                       int dflt, struct dlv_dest_config *dc)
{
    dc->compression = (enum dlv_compression)(c->kind > 0 ? c->kind - 1 : dflt);
    dc->compression_level = (int)c->level;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cfg->num_consumers > 0 ? (int)cfg->num_consumers : cpus > 0 ? (int)cpus : 1;
    dc->builders = n;
    /* a build is a body about to be in flight: leave room for each sender's */
    if (dc->max_inflight < 2 * n) {
        dc->max_inflight = 2 * n;
    }
}

void datadog_traces_base(const struct datadog_config *cfg, char *out, size_t n)
{
    datadog_base_url(cfg->traces_endpoint, "trace.agent.", cfg->site, out, n);
}

static void log_validation(struct dd_exporter *d, const struct http_result *r)
{
    char msg[400];
    int level = O2D_LOG_WARN;
    if (r->outcome == HTTP_DONE_OK) {
        snprintf(msg, sizeof(msg), "API key valid for site %s", d->site);
        level = O2D_LOG_INFO;
    } else if (r->status == O2D_OK && r->http_status == 403) {
        snprintf(msg, sizeof(msg),
                 "API key rejected (403): check exporters.datadog.api.key and api.site");
        level = O2D_LOG_ERROR;
    } else if (r->outcome == HTTP_DONE_SHUTDOWN) {
        return;
    } else if (r->status == O2D_OK) {
        snprintf(msg, sizeof(msg), "could not validate: HTTP %ld", r->http_status);
    } else {
        snprintf(msg, sizeof(msg), "could not validate: %s", r->error);
    }
    struct o2d_logline l;
    o2d_log_begin(&l, level, msg);
    o2d_log_cstr(&l, "site", d->site);
    o2d_log_cstr(&l, "endpoint", d->validate_url);
    o2d_log_end(&l);
}

/* Whether the Agent's /info "endpoints" list has `path` ("/v0.6/stats"), or with `prefix`
 * an entry that starts with it (the Agent lists the EVP proxy as "/evp_proxy/v2/"). */
static int info_offers(const json_t *endpoints, const char *path, int prefix)
{
    size_t i;
    json_t *v;
    size_t pl = strlen(path);
    json_array_foreach(endpoints, i, v)
    {
        const char *e = json_string_value(v);
        if (e != NULL && (prefix ? strncmp(e, path, pl) == 0 : strcmp(e, path) == 0)) {
            return 1;
        }
    }
    return 0;
}

static const char *yes_no(int v)
{
    return v ? "yes" : "no";
}

/* The answer to GET <agent>/info, asked once at start: what the Agent is and offers. Nothing
 * waits for it; an Agent that is not there yet only gets a warning, and what is sent to it
 * meanwhile is retried like any other failure. */
static void log_agent_info(struct dd_exporter *d, const struct http_result *r)
{
    if (r->outcome == HTTP_DONE_SHUTDOWN) {
        return;
    }
    struct o2d_logline l;
    if (r->outcome != HTTP_DONE_OK) {
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "Datadog Agent did not answer GET /info at start: spans are queued and "
                      "retried until it answers");
        o2d_log_cstr(&l, "agent", d->dest);
        if (r->status == O2D_OK) {
            o2d_log_int(&l, "http_status", r->http_status);
        } else {
            o2d_log_cstr(&l, "error", r->error);
        }
        o2d_log_end(&l);
        return;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)r->body, r->body_len, 0, &je);
    if (!json_is_object(root)) {
        o2d_log_begin(&l, O2D_LOG_WARN, "Datadog Agent /info answer is not a JSON object");
        o2d_log_cstr(&l, "agent", d->dest);
        o2d_log_end(&l);
        json_decref(root);
        return;
    }
    const char *version = json_string_value(json_object_get(root, "version"));
    const json_t *eps = json_object_get(root, "endpoints");
    int traces = info_offers(eps, "/v0.4/traces", 0);
    int stats = info_offers(eps, "/v0.6/stats", 0);
    int evp = info_offers(eps, "/evp_proxy/v2", 1);
    /* Only a smaller limit is taken, and not an absurd one: an /info that says 1 byte would
     * otherwise make every trace "too large". */
    json_t *mrb = json_object_get(json_object_get(root, "config"), "max_request_bytes");
    if (d->traces != NULL && json_is_integer(mrb) && json_integer_value(mrb) >= DD_AGENT_MIN_BODY &&
        (uint64_t)json_integer_value(mrb) < dlv_dest_max_body(d->traces)) {
        dlv_dest_set_max_body(d->traces, (size_t)json_integer_value(mrb));
    }
    o2d_log_begin(&l, O2D_LOG_INFO, "Datadog Agent found");
    o2d_log_cstr(&l, "agent", d->dest);
    o2d_log_cstr(&l, "agent_version", version != NULL ? version : "");
    o2d_log_cstr(&l, "v0.4_traces", yes_no(traces));
    o2d_log_cstr(&l, "v0.6_stats", yes_no(stats));
    o2d_log_cstr(&l, "evp_proxy_v2", yes_no(evp));
    o2d_log_uint(&l, "max_request_bytes",
                 d->traces != NULL ? dlv_dest_max_body(d->traces) : DATADOG_AGENT_MAX_BODY_BYTES);
    o2d_log_end(&l);
    if (!traces || !stats) {
        o2d_log_begin(&l, O2D_LOG_WARN,
                      !traces ? "the Datadog Agent does not list /v0.4/traces: APM traces may "
                                "be refused"
                              : "the Datadog Agent does not list /v0.6/stats: APM trace "
                                "metrics may be missing");
        o2d_log_cstr(&l, "agent", d->dest);
        o2d_log_end(&l);
    }
    if (!evp && d->cfg->llmobs.enabled) {
        o2d_log_begin(&l, O2D_LOG_WARN,
                      "the Datadog Agent does not list /evp_proxy/v2/: LLM Observability "
                      "spans cannot go through it (enable the Agent's EVP proxy)");
        o2d_log_cstr(&l, "agent", d->dest);
        o2d_log_end(&l);
    }
    json_decref(root);
}

/* The one-off GETs at start (key check, Agent /info): only logged. */
static void on_probe_done(void *ctx, const struct http_result *r)
{
    struct dd_exporter *d = ctx;
    if (d->agent_mode) {
        log_agent_info(d, r);
    } else {
        log_validation(d, r);
    }
}

static void validate_key(struct dd_exporter *d)
{
    char key[300];
    snprintf(key, sizeof(key), "DD-API-KEY: %s", d->cfg->api_key);
    const char *headers[] = {key};
    struct http_request q = {
        .method = "GET",
        .url = d->validate_url,
        .headers = headers,
        .n_headers = 1,
        .timeout_ms = DD_VALIDATE_TIMEOUT_MS,
        .max_elapsed_ms = 0,
        .name = "validate",
        .done = on_probe_done,
        .ctx = d,
    };
    (void)http_client_submit(d->http, &q);
    memset(key, 0, sizeof(key));
}

/* GET <agent>/info once, as tracers do to discover what the Agent offers. */
static void probe_agent(struct dd_exporter *d)
{
    struct http_request q = {
        .method = "GET",
        .url = d->info_url,
        .timeout_ms = DD_VALIDATE_TIMEOUT_MS,
        .max_elapsed_ms = 0,
        .name = "agent_info",
        .done = on_probe_done,
        .ctx = d,
    };
    (void)http_client_submit(d->http, &q);
}

/* ---- stats: the concentrator's closed buckets, as items of the stats destination ---- */

static int queue_stats(struct dd_exporter *d, const uint8_t *msgpack, size_t len, const char *lang)
{
    struct dlv_item *it = datadog_stats_item(msgpack, len, lang);
    if (it == NULL) {
        dlv_dest_drop(d->stats_out, DLV_DROP_RETRIES_EXHAUSTED, 1);
        o2d_logf(O2D_LOG_ERROR, "stats payload not sent: %s", o2d_strerror(O2D_ERR_NOMEM));
        return O2D_OK;
    }
    (void)dlv_dest_enqueue(d->stats_out, it, 0);
    return O2D_OK;
}

static int emit_stats(void *ctx, const uint8_t *msgpack, size_t len)
{
    return queue_stats(ctx, msgpack, len, NULL);
}

static int emit_agent_stats(void *ctx, const uint8_t *msgpack, size_t len, const char *lang)
{
    return queue_stats(ctx, msgpack, len, lang);
}

/* The stats destination's tick: every 10 s, and at a flush with every bucket. */
static int stats_tick(void *ctx, struct dlv_dest *out, int force)
{
    struct dd_exporter *d = ctx;
    (void)out;
    int64_t now_ns = o2d_realtime_ns();
    pthread_mutex_lock(&d->stats_mu);
    if (d->agent_mode) {
        stats_flush_client(d->stats, now_ns, force, emit_agent_stats, d);
    } else {
        stats_flush(d->stats, now_ns, force, emit_stats, d);
    }
    pthread_mutex_unlock(&d->stats_mu);
    return 0;
}

void datadog_disk_log_config(const struct datadog_config *cfg, const char *name, unsigned share,
                             char *dir, size_t dirlen, struct dlog_config *lc)
{
    /* The storage directory and its parents are made as needed (0700), as mkdir -p. */
    snprintf(dir, dirlen, "%s", cfg->queue_storage);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            (void)mkdir(dir, 0700);
            *p = '/';
        }
    }
    (void)mkdir(dir, 0700);
    snprintf(dir, dirlen, "%s/%s", cfg->queue_storage, name);
    *lc = (struct dlog_config){
        .dir = dir,
        .max_bytes = cfg->queue_disk_max_bytes / share,
        .fsync = cfg->queue_fsync == DATADOG_FSYNC_NEVER ? DLOG_FSYNC_NEVER : DLOG_FSYNC_BATCH,
        .group_commit_us = DD_GROUP_COMMIT_US,
        .when_full = cfg->queue_when_full == DATADOG_FULL_DROP_OLDEST ? DLOG_FULL_DROP_OLDEST
                                                                      : DLOG_FULL_REFUSE,
    };
    /* A record is at most a segment: segments of a quarter of the log, up to 32 MiB, hold
     * the TracerPayload of the largest request the receivers take (20 MiB over HTTP), which
     * a memory queue would take too; not more, so that drop_oldest frees in small steps. */
    uint64_t seg = lc->max_bytes / 4;
    lc->segment_bytes = seg < DD_SEGMENT_MIN   ? DD_SEGMENT_MIN
                        : seg > DD_SEGMENT_MAX ? DD_SEGMENT_MAX
                                               : seg;
}

void datadog_disk_log_opened(const char *dir, int rv, const char *err, const struct dlog_config *lc,
                             const struct dlog_stats *st)
{
    struct o2d_logline l;
    if (rv != O2D_OK) {
        o2d_log_begin(&l, O2D_LOG_ERROR, "cannot open the disk queue");
        o2d_log_cstr(&l, "dir", dir);
        o2d_log_cstr(&l, "error", err);
        o2d_log_end(&l);
        return;
    }
    o2d_log_begin(&l, O2D_LOG_INFO, "disk queue open");
    o2d_log_cstr(&l, "dir", dir);
    o2d_log_uint(&l, "max_bytes", lc->max_bytes);
    o2d_log_cstr(&l, "fsync", lc->fsync == DLOG_FSYNC_NEVER ? "never" : "batch");
    o2d_log_uint(&l, "replaying_records", st->records);
    o2d_log_uint(&l, "corrupt_records_skipped", st->corrupt);
    o2d_log_end(&l);
}

int datadog_disk_queue(const struct datadog_config *cfg, const char *name, unsigned share,
                       struct dlv_queue **out)
{
    *out = NULL;
    if (cfg->queue_storage[0] == '\0') {
        return O2D_OK;
    }
    char dir[DATADOG_URL_MAX + 32];
    struct dlog_config lc;
    datadog_disk_log_config(cfg, name, share, dir, sizeof(dir), &lc);
    char err[512] = "";
    struct dlog_stats st;
    memset(&st, 0, sizeof(st));
    int rv = dlv_queue_disk_new(out, &lc, err, sizeof(err));
    if (rv == O2D_OK) {
        (*out)->type->disk_stats(*out, &st);
    }
    datadog_disk_log_opened(dir, rv, err, &lc, &st);
    return rv;
}

static int dd_start(struct exporter *e)
{
    struct dd_exporter *d = e->ctx;
    if (d->http == NULL) {
        int rv = http_client_new(&d->http, NULL);
        if (rv != O2D_OK) {
            return rv;
        }
        d->own_http = 1;
    }
    char base[DATADOG_URL_MAX];
    char traces_url[DATADOG_URL_MAX + 32];
    char stats_url[DATADOG_URL_MAX + 32];
    if (d->agent_mode) {
        /* The tracers' endpoints on the Agent's trace port (pkg/trace/api/endpoints.go). */
        datadog_base_url(d->cfg->agent_endpoint, "", "", base, sizeof(base));
        snprintf(traces_url, sizeof(traces_url), "%s/v0.4/traces", base);
        snprintf(stats_url, sizeof(stats_url), "%s/v0.6/stats", base);
    } else {
        datadog_traces_base(d->cfg, base, sizeof(base));
        snprintf(traces_url, sizeof(traces_url), "%s/api/v0.2/traces", base);
        snprintf(stats_url, sizeof(stats_url), "%s/api/v0.2/stats", base);
    }
    const struct datadog_config *cfg = d->cfg;
    struct dlv_dest_config tc = {
        .url = traces_url,
        .where = d->dest,
        .queue_max_bytes = cfg->queue_max_bytes > 0 ? cfg->queue_max_bytes : DD_DEFAULT_QUEUE_BYTES,
        .max_body = d->agent_mode ? DATADOG_AGENT_MAX_BODY_BYTES : DATADOG_MAX_BODY_BYTES,
        .batch_bytes = DATADOG_BATCH_RAW_BYTES,
        .flush_interval_ms =
            cfg->flush_interval_ms > 0 ? cfg->flush_interval_ms : DD_DEFAULT_FLUSH_MS,
        .max_elapsed_ms = cfg->max_elapsed_ms > 0 ? cfg->max_elapsed_ms : DD_DEFAULT_ELAPSED_MS,
        .attempt_timeout_ms = DD_ATTEMPT_TIMEOUT_MS,
        .max_inflight = DD_MAX_INFLIGHT,
        .tenant_share_pct = cfg->tenant_share_pct,
    };
    struct dlv_dest_config sc = tc;
    datadog_dest_tune(cfg, &cfg->traces_compression, DLV_COMPRESS_ZSTD, &tc);
    datadog_dest_tune(cfg, &cfg->stats_compression, DLV_COMPRESS_GZIP, &sc);
    if (d->agent_mode) {
        tc.compression = DLV_COMPRESS_NONE; /* the Agent's receiver reads plain bodies */
        sc.compression = DLV_COMPRESS_NONE;
    }
    sc.tenant_share_pct = 0; /* fed by its own tick: no request's tenant */
    sc.url = stats_url;
    sc.queue_max_bytes = DD_STATS_QUEUE_BYTES;
    sc.max_body = DATADOG_STATS_BODY_MAX;
    sc.batch_bytes = 0;
    sc.flush_interval_ms = 0;
    sc.tick_ms = DD_STATS_INTERVAL_MS;
    sc.tick = stats_tick;
    sc.tick_ctx = d;
    int rv = datadog_disk_queue(cfg, "traces", 1, &tc.queue);
    if (rv == O2D_OK) {
        rv = datadog_disk_queue(cfg, "stats", 16, &sc.queue);
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_new(&d->traces,
                          d->agent_mode ? &datadog_agent_traces_dest : &datadog_traces_dest,
                          &d->wire, &tc, d->http);
        tc.queue = NULL; /* the destination's now, even on failure */
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_new(&d->stats_out,
                          d->agent_mode ? &datadog_agent_stats_dest : &datadog_stats_dest, &d->wire,
                          &sc, d->http);
        sc.queue = NULL; /* the destination's now, even on failure */
    }
    if (rv == O2D_OK && d->observer != NULL) {
        dlv_dest_observe(d->traces, d->observer, d->observer_ctx);
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_start(d->traces);
    }
    if (rv == O2D_OK) {
        rv = dlv_dest_start(d->stats_out);
    }
    if (rv != O2D_OK) {
        if (sc.queue != NULL) {
            sc.queue->type->free(sc.queue);
        }
        if (tc.queue != NULL) {
            tc.queue->type->free(tc.queue);
        }
        return rv;
    }
    d->started = 1;
    struct o2d_logline l;
    if (d->agent_mode) {
        probe_agent(d);
        o2d_log_begin(&l, O2D_LOG_INFO, "datadog destination: agent");
        o2d_log_cstr(&l, "mode", "agent");
        o2d_log_cstr(&l, "agent", d->dest);
        if (cfg->api_key[0] != '\0') {
            o2d_log_cstr(&l, "note", "an API key is set but unused: the Agent sends with its own");
        }
        if (datadog_metrics_route_of(cfg) == DATADOG_METRICS_NO_KEY) {
            /* said once, here: the Agent cannot take our metrics (datadog_metrics.c) */
            o2d_log_cstr(&l, "metrics", datadog_metrics_agent_note(cfg));
        }
    } else {
        validate_key(d);
        o2d_log_begin(&l, O2D_LOG_INFO, "datadog destination: agentless");
        o2d_log_cstr(&l, "mode", "agentless");
        o2d_log_cstr(&l, "site", d->site);
    }
    o2d_log_end(&l);
    o2d_log_begin(&l, O2D_LOG_INFO, "datadog exporter started");
    o2d_log_cstr(&l, "mode", d->agent_mode ? "agent" : "agentless");
    if (!d->agent_mode) {
        o2d_log_cstr(&l, "site", d->site);
    }
    o2d_log_cstr(&l, "traces", traces_url);
    o2d_log_cstr(&l, "stats", stats_url);
    o2d_log_uint(&l, "queue_max_bytes", tc.queue_max_bytes);
    o2d_log_int(&l, "flush_interval_ms", tc.flush_interval_ms);
    o2d_log_end(&l);
    return O2D_OK;
}

/* Room reserved for a TracerPayload written in place: the bytes a span took in the previous
 * payload (trace_bytes_per_span; 1024 before the first, gen_bodies.js' t100 spans take about
 * 870), one sixteenth more and a little, times the spans; the storage is shrunk to the bytes
 * at the end, and grows when the guess was short. */
#define TRACE_BYTES_PER_SPAN_FIRST 1024
#define TRACE_RESERVE_MAX          (8u << 20)

static size_t trace_reserve(struct dd_exporter *d, size_t spans)
{
    size_t bps = atomic_load_explicit(&d->trace_bytes_per_span, memory_order_relaxed);
    if (bps == 0) {
        bps = TRACE_BYTES_PER_SPAN_FIRST;
    }
    bps += bps / 16 + 16;
    /* a guess from one odd payload (a span with megabytes of tags) must not make the next
     * one allocate gigabytes up front: past the cap the buffer grows as it is written */
    return spans <= TRACE_RESERVE_MAX / bps ? spans * bps : TRACE_RESERVE_MAX;
}

static size_t payload_spans(const DdTracerPayload *tp)
{
    size_t n = 0;
    for (size_t i = 0; i < tp->n_chunks; i++) {
        n += tp->chunks[i]->n_spans;
    }
    return n;
}

static int dd_admit(struct exporter *e, const struct otlp_request *req)
{
    struct dd_exporter *d = e->ctx;
    if (req->signal != OTLP_SIGNAL_TRACES || req->msg.traces == NULL) {
        return O2D_OK;
    }
    if (d->traces == NULL) {
        return O2D_ERR_SHUTDOWN;
    }
    return dlv_dest_admit_tenant(d->traces, req->accepted, req->tenant);
}

static int dd_full(struct exporter *e, int sig)
{
    struct dd_exporter *d = e->ctx;
    return sig == OTLP_SIGNAL_TRACES && d->traces != NULL && dlv_dest_full(d->traces);
}

/* A string attribute of the resource that payload i came from ("" if none): apm_translate
 * makes one TracerPayload per ResourceSpans, in order. The tracers' Datadog-Meta-Lang-Version
 * and -Interpreter have no TracerPayload field; OpenTelemetry names them process.runtime.*. */
static const char *resource_str(const OtlpTraceReq *req, size_t n_payloads, size_t i,
                                const char *key)
{
    if (n_payloads != req->n_resource_spans || req->resource_spans[i]->resource == NULL) {
        return "";
    }
    const OtlpResource *r = req->resource_spans[i]->resource;
    for (size_t k = 0; k < r->n_attributes; k++) {
        const OtlpAnyValue *v = r->attributes[k]->value;
        if (strcmp(r->attributes[k]->key, key) == 0 && v != NULL &&
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            return v->string_value;
        }
    }
    return "";
}

/* Agent mode: one item per trace, v0.4 bodies are split on trace boundaries. */
static int agent_items(struct dd_exporter *d, const OtlpTraceReq *req, const struct apm_result *res,
                       size_t i, struct o2d_buf *enc, struct dlv_item ***tailp, size_t *too_large)
{
    const DdTracerPayload *tp = res->payloads[i];
    const char *lv = tp->languageversion != NULL ? tp->languageversion : "";
    if (lv[0] == '\0') {
        lv = resource_str(req, res->n_payloads, i, "process.runtime.version");
    }
    struct datadog_agent_meta m = {
        .lang = tp->languagename != NULL ? tp->languagename : "",
        .lang_version = lv,
        .lang_interpreter = resource_str(req, res->n_payloads, i, "process.runtime.name"),
        .tracer_version = tp->tracerversion != NULL ? tp->tracerversion : "",
        .container_id = tp->containerid != NULL ? tp->containerid : "",
    };
    for (size_t c = 0; c < tp->n_chunks; c++) {
        o2d_buf_reset(enc);
        int rv = apm_msgpack_trace_translated(enc, tp, tp->chunks[c]);
        if (rv == O2D_ERR_TOO_LARGE) {
            *too_large += tp->chunks[c]->n_spans;
            continue;
        }
        if (rv != O2D_OK) {
            return rv;
        }
        struct dlv_item *it =
            datadog_agent_trace_item(enc->data, enc->len, tp->chunks[c]->n_spans, &m);
        if (it == NULL) {
            return O2D_ERR_NOMEM;
        }
        **tailp = it;
        *tailp = &it->next;
    }
    (void)d;
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

static int dd_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    struct dd_exporter *d = e->ctx;
    (void)transport;
    if (req->signal != OTLP_SIGNAL_TRACES || req->msg.traces == NULL) {
        return O2D_OK;
    }
    if (d->traces == NULL || dlv_dest_stopping(d->traces)) {
        return O2D_ERR_SHUTDOWN;
    }
    struct apm_result res;
    memset(&res, 0, sizeof(res));
    const char *reason = NULL;
    /* the task's tags as they are now: translation copies what it keeps into the arena */
    struct ecs_snap *snap = ecs_meta_get(d->ecs);
    struct apm_config acfg = d->cfg->apm;
    acfg.ecs = ecs_snap_task(snap);
    acfg.input_utf8_valid = req->utf8_valid;
    acfg.sql_cache = d->sql_cache;
    int rv = apm_translate(req->arena, req->msg.traces, &acfg, o2d_realtime_ns(), &res, &reason);
    ecs_snap_put(snap);
    if (rv != O2D_OK) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN, "translation failed");
        o2d_log_cstr(&l, "reason", reason != NULL ? reason : o2d_strerror(rv));
        o2d_log_end(&l);
        return rv;
    }
    if (res.n_payloads == 0) {
        return O2D_OK;
    }
    /* Sampling decides every chunk before anything is packed: the dropped ones are never
     * queued (nor written to the disk queue), and still count in the stats below. */
    size_t *n_kept = NULL;
    struct apm_sample_counts counts;
    memset(&counts, 0, sizeof(counts));
    rv = apm_sample(req->arena, d->cfg->sampler, &res, &n_kept, &counts);
    if (rv != O2D_OK) {
        o2d_logf(O2D_LOG_WARN, "sampling failed: %s", o2d_strerror(rv));
        return rv;
    }
    /* Pack first (the arena goes away when we return), then count stats, then queue: a
     * request refused before this point is retried by its sender and not counted twice. */
    struct dlv_item *list = NULL;
    struct dlv_item **tailp = &list;
    size_t too_large = 0;
    struct o2d_buf enc, pb;
    o2d_buf_init(&enc, DATADOG_AGENT_MAX_BODY_BYTES);
    /* a payload is at most the translated spans, which the request's arena bounds */
    o2d_buf_init(&pb, SIZE_MAX / 2);
    rv = O2D_OK;
    for (size_t i = 0; i < res.n_payloads && rv == O2D_OK; i++) {
        DdTracerPayload *tp = res.payloads[i];
        if (n_kept[i] == 0) {
            continue;
        }
        size_t all = tp->n_chunks;
        tp->n_chunks = n_kept[i]; /* the kept chunks come first (apm_sample) */
        if (d->agent_mode) {
            rv = agent_items(d, req->msg.traces, &res, i, &enc, &tailp, &too_large);
            tp->n_chunks = all;
            continue;
        }
        /* written in one pass (apm_pb.h) straight into the item's storage */
        size_t spans = payload_spans(tp);
        rv = datadog_trace_item_begin(&pb, tp->languagename, trace_reserve(d, spans));
        size_t body_at = pb.len;
        if (rv == O2D_OK) {
            rv = apm_pb_tracer_payload_translated(&pb, tp);
        }
        if (rv == O2D_OK && spans > 0) {
            atomic_store_explicit(&d->trace_bytes_per_span, (pb.len - body_at) / spans,
                                  memory_order_relaxed);
        }
        struct dlv_item *it =
            rv == O2D_OK ? datadog_trace_item_finish(&pb, spans, tp->languagename) : NULL;
        o2d_buf_reset(&pb);
        tp->n_chunks = all;
        if (it == NULL) {
            rv = rv != O2D_OK ? rv : O2D_ERR_NOMEM;
            break;
        }
        *tailp = it;
        tailp = &it->next;
    }
    o2d_buf_cleanup(&enc);
    o2d_buf_cleanup(&pb);
    if (rv != O2D_OK) {
        free_items(list);
        return rv;
    }
    /* dd_admit checked the room; past it, a memory queue takes the request even if other
     * threads filled it meanwhile (see exporter.h: admit). A disk queue answers once the
     * items are written (durable, or waiting for the pipeline's one sync wait: disk_log.h,
     * o2d_defer.h), or refuses (full, or a write failed): then the request is refused
     * too, before the stats count it, so that its retry is counted once. Only a sync that
     * fails after this point can make a retried request count twice. */
    if (list != NULL) {
        rv = dlv_dest_enqueue_tenant(d->traces, list, req->id, req->tenant);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    pthread_mutex_lock(&d->stats_mu);
    for (size_t i = 0; i < res.n_payloads; i++) {
        if (!res.client_computed_stats[i]) {
            stats_add_payload(d->stats, res.payloads[i]);
        }
    }
    pthread_mutex_unlock(&d->stats_mu);
    for (int r = 0; r < APM_SAMPLE_RULES; r++) {
        if (counts.dropped_spans[r] > 0) {
            atomic_fetch_add(&d->sampled_out[r], counts.dropped_spans[r]);
        }
        if (counts.kept_spans[r] > 0) {
            atomic_fetch_add(&d->sampled_in[r], counts.kept_spans[r]);
        }
    }
    if (too_large > 0) {
        dlv_dest_drop(d->traces, DLV_DROP_TOO_LARGE, too_large);
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_ERROR, "trace over the Datadog Agent's size limit: dropped");
        o2d_log_uint(&l, "spans", too_large);
        o2d_log_uint(&l, "limit_bytes", DATADOG_AGENT_MAX_BODY_BYTES);
        o2d_log_end(&l);
    }
    return O2D_OK;
}

static int dd_flush(struct exporter *e, int64_t deadline_ms)
{
    struct dd_exporter *d = e->ctx;
    if (!d->started) {
        return O2D_OK;
    }
    dlv_dest_flush_begin(d->traces);
    dlv_dest_flush_begin(d->stats_out);
    int rv1 = dlv_dest_flush_wait(d->traces, deadline_ms);
    int rv2 = dlv_dest_flush_wait(d->stats_out, deadline_ms);
    return rv1 != O2D_OK ? rv1 : rv2;
}

static void dd_stop(struct exporter *e)
{
    struct dd_exporter *d = e->ctx;
    if (d->traces != NULL) {
        dlv_dest_stop(d->traces);
    }
    if (d->stats_out != NULL) {
        dlv_dest_stop(d->stats_out);
    }
}

static uint64_t dd_undelivered(const struct exporter *e, struct o2d_logline *l)
{
    const struct dd_exporter *d = e->ctx;
    uint64_t total = 0;
    if (d->traces != NULL) {
        total += dlv_dest_undelivered(d->traces, l, "datadog_spans");
    }
    if (d->stats_out != NULL) {
        total += dlv_dest_undelivered(d->stats_out, l, "datadog_stats_payloads");
    }
    return total;
}

static void dd_destroy(struct exporter *e)
{
    struct dd_exporter *d = e->ctx;
    dd_stop(e);
    /* Bodies still retrying are completed as "shutdown" and counted: by our own client
     * here, or by the shared one, which its owner frees before destroying us. */
    if (d->own_http) {
        http_client_free(d->http);
    }
    d->http = NULL;
    if (d->started) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_INFO, "datadog exporter totals");
        dlv_dest_log_counts(d->traces, &l, "");
        dlv_dest_log_counts(d->stats_out, &l, "stats_");
        o2d_log_end(&l);
    }
    dlv_dest_free(d->traces);
    dlv_dest_free(d->stats_out);
    stats_concentrator_free(d->stats);
    sql_cache_free(d->sql_cache);
    pthread_mutex_destroy(&d->stats_mu);
    o2d_free(d);
}

/* The metrics endpoint's view (exporter.h): traces and stats as two outputs. */
static void dd_metrics(const struct exporter *e, struct exporter_metrics *m)
{
    struct dd_exporter *d = e->ctx;
    m->translated_kind = "apm";
    m->translated_spans = d->traces != NULL ? dlv_dest_queued_units(d->traces) : 0;
    if (d->sql_cache != NULL) {
        struct sql_cache_counters k;
        sql_cache_get_counters(d->sql_cache, &k);
        m->has_sql_cache = 1;
        m->sql_cache_hits = k.hits;
        m->sql_cache_misses = k.misses;
        m->sql_cache_evictions = k.evictions;
        m->sql_cache_bytes = k.bytes;
    }
    for (int r = 0; d->cfg->sampler != NULL && d->cfg->sampler->enabled && r < APM_SAMPLE_RULES;
         r++) {
        m->sampled[m->n_sampled].signal = "traces";
        m->sampled[m->n_sampled].rule = apm_sample_rule_name((enum apm_sample_rule)r);
        m->sampled[m->n_sampled].dropped = atomic_load(&d->sampled_out[r]);
        m->sampled[m->n_sampled++].kept = atomic_load(&d->sampled_in[r]);
    }
    if (d->traces != NULL) {
        dlv_dest_metrics(d->traces, &m->outputs[m->n_outputs++]);
    }
    if (d->stats_out != NULL) {
        dlv_dest_metrics(d->stats_out, &m->outputs[m->n_outputs++]);
    }
}

static const struct exporter_type datadog_exporter_type = {
    .name = "datadog",
    .start = dd_start,
    .admit = dd_admit,
    .full = dd_full,
    .submit = dd_submit,
    .flush = dd_flush,
    .destroy = dd_destroy,
    .metrics = dd_metrics,
    .stop = dd_stop,
    .undelivered = dd_undelivered,
};

void datadog_exporter_set_ecs(struct exporter *e, struct ecs_meta *m)
{
    ((struct dd_exporter *)e->ctx)->ecs = m;
}

void datadog_exporter_observe(struct exporter *e, dlv_observer_fn fn, void *ctx)
{
    struct dd_exporter *d = e->ctx;
    d->observer = fn;
    d->observer_ctx = ctx;
}

int datadog_exporter_new(struct exporter **out, const struct datadog_config *cfg,
                         struct http_client *http)
{
    struct dd_exporter *d = o2d_calloc(1, sizeof(*d));
    if (d == NULL) {
        return O2D_ERR_NOMEM;
    }
    d->base.type = &datadog_exporter_type;
    d->base.ctx = d;
    d->cfg = cfg;
    d->http = http;
    atomic_init(&d->trace_bytes_per_span, 0);
    snprintf(d->site, sizeof(d->site), "%s", cfg->site[0] != '\0' ? cfg->site : "datadoghq.com");
    if (cfg->hostname[0] != '\0') {
        snprintf(d->hostname, sizeof(d->hostname), "%s", cfg->hostname);
    } else if (ecs_meta_env_fargate()) {
        /* A Fargate task is no host: the agent there sends no hostname (trace agent config:
         * no hostname is acquired on Fargate), so that Datadog bills no host for it; the
         * machine name a task sees would be a new "host" per task. */
        d->hostname[0] = '\0';
    } else if (gethostname(d->hostname, sizeof(d->hostname) - 1) != 0) {
        d->hostname[0] = '\0';
    }
    char base[DATADOG_URL_MAX];
    d->agent_mode = cfg->agent_endpoint[0] != '\0';
    if (d->agent_mode) {
        datadog_base_url(cfg->agent_endpoint, "", "", base, sizeof(base));
        snprintf(d->dest, sizeof(d->dest), "%s", base);
        snprintf(d->info_url, sizeof(d->info_url), "%s/info", base);
    } else {
        snprintf(d->dest, sizeof(d->dest), "%s", d->site);
    }
    datadog_base_url(cfg->api_endpoint, "api.", cfg->site, base, sizeof(base));
    snprintf(d->validate_url, sizeof(d->validate_url), "%s/api/v1/validate", base);
    d->wire.h = (struct datadog_header){
        .hostname = d->hostname,
        .env = DD_AGENT_ENV,
        .agent_version = DD_AGENT_VERSION,
        .target_tps = DD_TPS,
        .error_tps = DD_TPS,
    };
    snprintf(d->wire.key_header, sizeof(d->wire.key_header), "DD-Api-Key: %s", cfg->api_key);
    pthread_mutex_init(&d->stats_mu, NULL);
    d->stats_cfg = (struct stats_config){
        .bucket_ns = DD_STATS_BUCKET_NS,
        .max_groups_per_bucket = DD_STATS_MAX_GROUPS,
        .compute_stats_by_span_kind = cfg->compute_stats_by_span_kind,
        .peer_tags_aggregation = cfg->peer_tags_aggregation,
        .agent_env = DD_AGENT_ENV,
        .agent_hostname = d->hostname,
        .agent_version = DD_AGENT_VERSION,
        .agent_fills_defaults = d->agent_mode,
        .now_ns = o2d_realtime_ns(),
    };
    int rv = stats_concentrator_new(&d->stats, &d->stats_cfg);
    if (rv == O2D_OK && cfg->sql_cache_enabled) {
        rv = sql_cache_new(cfg->sql_cache_max_bytes, &d->sql_cache);
    }
    if (rv != O2D_OK) {
        dd_destroy(&d->base);
        return rv;
    }
    *out = &d->base;
    return O2D_OK;
}
