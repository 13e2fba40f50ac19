/*
 * debug.c: the debug exporter. It shows what arrives, on stderr as JSON log lines: with
 * verbosity basic one line per request (transport, signal, item count, services), with
 * detailed also one line per span or log record in readable form, with quiet nothing.
 * It is what runs when no Datadog API key is set, so a developer sees what otel2dd would
 * send. It keeps nothing: every line is written before submit returns.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "exporter.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "o2d_log.h"
#include "otlp_print.h"

#define DEBUG_MAX_SERVICES 8
#define DEBUG_LINE_MAX     (60 * 1024)

struct debug_exporter {
    struct exporter base;
    int verbosity;
    /* What it was handed, for the metrics endpoint; several receiving threads submit. */
    atomic_uint_fast64_t items;
    atomic_uint_fast64_t requests;
};

/* Adds `name` to the JSON array in `b` unless it is already among the first few. */
static void add_service(struct o2d_buf *b, const char **seen, int *n, const char *name)
{
    if (name == NULL) {
        name = "unknown_service";
    }
    for (int i = 0; i < *n; i++) {
        if (strcmp(seen[i], name) == 0) {
            return;
        }
    }
    if (*n >= DEBUG_MAX_SERVICES) {
        return;
    }
    if (*n > 0) {
        o2d_buf_append_byte(b, ',');
    }
    o2d_json_append_string(b, name, strlen(name));
    seen[(*n)++] = name;
}

static void log_span(const char *service, const OtlpSpan *s)
{
    struct o2d_logline l;
    struct o2d_buf v;
    o2d_buf_init(&v, DEBUG_LINE_MAX);
    o2d_log_begin(&l, O2D_LOG_INFO, "span");
    o2d_log_cstr(&l, "service", service);
    o2d_log_str(&l, "name", s->name, strlen(s->name));
    o2d_hex_append(&v, s->trace_id.data, s->trace_id.len);
    o2d_log_str(&l, "trace_id", (const char *)v.data, v.len);
    o2d_buf_reset(&v);
    o2d_hex_append(&v, s->span_id.data, s->span_id.len);
    o2d_log_str(&l, "span_id", (const char *)v.data, v.len);
    o2d_buf_reset(&v);
    o2d_hex_append(&v, s->parent_span_id.data, s->parent_span_id.len);
    o2d_log_str(&l, "parent_span_id", (const char *)v.data, v.len);
    o2d_log_cstr(&l, "kind", otlp_span_kind_name(s->kind));
    o2d_log_uint(&l, "start_time_unix_nano", s->start_time_unix_nano);
    o2d_log_uint(&l, "end_time_unix_nano", s->end_time_unix_nano);
    if (s->status != NULL) {
        o2d_log_int(&l, "status_code", s->status->code);
        o2d_log_cstr(&l, "status_message", s->status->message);
    }
    o2d_buf_reset(&v);
    if (otlp_print_attributes(&v, s->attributes, s->n_attributes) == O2D_OK) {
        o2d_log_raw(&l, "attributes", (const char *)v.data, v.len);
    }
    if (s->n_events > 0) {
        o2d_buf_reset(&v);
        o2d_buf_append_byte(&v, '[');
        for (size_t i = 0; i < s->n_events; i++) {
            const Opentelemetry__Proto__Trace__V1__Span__Event *e = s->events[i];
            o2d_buf_append_str(&v, i ? ",{\"name\":" : "{\"name\":");
            o2d_json_append_string(&v, e->name, strlen(e->name));
            o2d_buf_printf(&v,
                           ",\"time_unix_nano\":%" PRIu64 ",\"attributes\":", e->time_unix_nano);
            otlp_print_attributes(&v, e->attributes, e->n_attributes);
            o2d_buf_append_byte(&v, '}');
        }
        if (o2d_buf_append_byte(&v, ']') == O2D_OK) {
            o2d_log_raw(&l, "events", (const char *)v.data, v.len);
        }
    }
    o2d_log_uint(&l, "links", s->n_links);
    o2d_log_end(&l);
    o2d_buf_cleanup(&v);
}

static void log_record(const char *service, const OtlpLogRecord *r)
{
    struct o2d_logline l;
    struct o2d_buf v;
    o2d_buf_init(&v, DEBUG_LINE_MAX);
    o2d_log_begin(&l, O2D_LOG_INFO, "log record");
    o2d_log_cstr(&l, "service", service);
    o2d_log_uint(&l, "time_unix_nano", r->time_unix_nano);
    o2d_log_int(&l, "severity_number", r->severity_number);
    o2d_log_cstr(&l, "severity_text", r->severity_text);
    o2d_log_cstr(&l, "event_name", r->event_name);
    o2d_hex_append(&v, r->trace_id.data, r->trace_id.len);
    o2d_log_str(&l, "trace_id", (const char *)v.data, v.len);
    o2d_buf_reset(&v);
    o2d_hex_append(&v, r->span_id.data, r->span_id.len);
    o2d_log_str(&l, "span_id", (const char *)v.data, v.len);
    o2d_buf_reset(&v);
    if (otlp_print_anyvalue(&v, r->body) == O2D_OK) {
        o2d_log_raw(&l, "body", (const char *)v.data, v.len);
    }
    o2d_buf_reset(&v);
    if (otlp_print_attributes(&v, r->attributes, r->n_attributes) == O2D_OK) {
        o2d_log_raw(&l, "attributes", (const char *)v.data, v.len);
    }
    o2d_log_end(&l);
    o2d_buf_cleanup(&v);
}

static int debug_submit(struct exporter *e, const char *transport, const struct otlp_request *req)
{
    struct debug_exporter *d = (struct debug_exporter *)e;
    /* Counted even when quiet: "shown" then means "taken and shown to no one". */
    atomic_fetch_add_explicit(&d->items, req->accepted, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->requests, 1, memory_order_relaxed);
    if (d->verbosity == O2D_DEBUG_QUIET) {
        return O2D_OK;
    }
    int detailed = d->verbosity >= O2D_DEBUG_DETAILED;
    struct o2d_buf services;
    const char *seen[DEBUG_MAX_SERVICES];
    int n_seen = 0;
    size_t resources = 0;
    o2d_buf_init(&services, 4096);
    o2d_buf_append_byte(&services, '[');

    if (req->signal == OTLP_SIGNAL_TRACES) {
        const OtlpTraceReq *m = req->msg.traces;
        resources = m->n_resource_spans;
        for (size_t i = 0; i < m->n_resource_spans; i++) {
            const OtlpResourceSpans *rs = m->resource_spans[i];
            const char *svc = otlp_resource_string(rs->resource, "service.name");
            add_service(&services, seen, &n_seen, svc);
            for (size_t j = 0; detailed && j < rs->n_scope_spans; j++) {
                for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                    log_span(svc, rs->scope_spans[j]->spans[k]);
                }
            }
        }
    } else if (req->signal == OTLP_SIGNAL_LOGS) {
        const OtlpLogsReq *m = req->msg.logs;
        resources = m->n_resource_logs;
        for (size_t i = 0; i < m->n_resource_logs; i++) {
            const OtlpResourceLogs *rl = m->resource_logs[i];
            const char *svc = otlp_resource_string(rl->resource, "service.name");
            add_service(&services, seen, &n_seen, svc);
            for (size_t j = 0; detailed && j < rl->n_scope_logs; j++) {
                for (size_t k = 0; k < rl->scope_logs[j]->n_log_records; k++) {
                    log_record(svc, rl->scope_logs[j]->log_records[k]);
                }
            }
        }
    } else {
        const OtlpMetricsReq *m = req->msg.metrics;
        resources = m->n_resource_metrics;
        for (size_t i = 0; i < m->n_resource_metrics; i++) {
            add_service(&services, seen, &n_seen,
                        otlp_resource_string(m->resource_metrics[i]->resource, "service.name"));
        }
    }
    o2d_buf_append_byte(&services, ']');

    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "received");
    o2d_log_cstr(&l, "transport", transport);
    o2d_log_cstr(&l, "signal", otlp_signal_name(req->signal));
    o2d_log_uint(&l, "items", req->accepted);
    if (req->rejected) {
        o2d_log_uint(&l, "rejected", req->rejected);
    }
    o2d_log_uint(&l, "resources", resources);
    if (services.data != NULL) {
        o2d_log_raw(&l, "services", (const char *)services.data, services.len);
    }
    o2d_log_end(&l);
    o2d_buf_cleanup(&services);
    return O2D_OK;
}

static void debug_destroy(struct exporter *e)
{
    o2d_free(e);
}

/* One output with no queue: every item is written before submit returns, nothing retries
 * or drops. A "payload" is a request it logged. */
static void debug_metrics(const struct exporter *e, struct exporter_metrics *m)
{
    struct debug_exporter *d = e->ctx;
    struct dlv_metrics *o = &m->outputs[m->n_outputs++];
    o->name = "debug";
    o->sent_items = atomic_load_explicit(&d->items, memory_order_relaxed);
    o->sent_payloads = atomic_load_explicit(&d->requests, memory_order_relaxed);
}

static const struct exporter_type debug_exporter_type = {
    .name = "debug",
    .start = NULL,
    .submit = debug_submit,
    .flush = NULL,
    .destroy = debug_destroy,
    .metrics = debug_metrics,
};

int debug_exporter_new(struct exporter **out, int verbosity)
{
    struct debug_exporter *d = o2d_calloc(1, sizeof(*d));
    if (d == NULL) {
        return O2D_ERR_NOMEM;
    }
    d->base.type = &debug_exporter_type;
    d->base.ctx = d;
    d->verbosity = verbosity;
    *out = &d->base;
    return O2D_OK;
}
