/*
 * otlp_decode.c: one OTLP export request from bytes to validated protobuf-c structures in an
 * arena, for both encodings. Validation follows the OTLP data model
 * (opentelemetry-proto trace.proto / logs.proto comments): a span's trace_id is 16 bytes and
 * span_id 8 bytes, neither all zero; a log record's ids are either empty or of those sizes.
 * Items that break it are removed and counted; the rest of the request goes on (OTLP partial
 * success).
 */
#include <string.h>

#include "o2d.h"
#include "otlp.h"

static const char reason_too_large[] = "decoded request exceeds the memory limit";

const char *otlp_signal_name(enum otlp_signal sig)
{
    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        return "traces";
    case OTLP_SIGNAL_LOGS:
        return "logs";
    default:
        return "metrics";
    }
}

const char *otlp_item_name(enum otlp_signal sig)
{
    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        return "spans";
    case OTLP_SIGNAL_LOGS:
        return "log records";
    default:
        return "data points";
    }
}

static const ProtobufCMessageDescriptor *descriptor_for(enum otlp_signal sig)
{
    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    case OTLP_SIGNAL_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    default:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    }
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static const char *check_span(const OtlpSpan *s)
{
    if (s->trace_id.len != 16 || all_zero(s->trace_id.data, 16)) {
        return "span trace_id must be 16 bytes and not all zero";
    }
    if (s->span_id.len != 8 || all_zero(s->span_id.data, 8)) {
        return "span span_id must be 8 bytes and not all zero";
    }
    if (s->parent_span_id.len != 0 && s->parent_span_id.len != 8) {
        return "span parent_span_id must be empty or 8 bytes";
    }
    return NULL;
}

static const char *check_log(const OtlpLogRecord *r)
{
    if (r->trace_id.len != 0 && r->trace_id.len != 16) {
        return "log record trace_id must be empty or 16 bytes";
    }
    if (r->span_id.len != 0 && r->span_id.len != 8) {
        return "log record span_id must be empty or 8 bytes";
    }
    return NULL;
}

static void validate_traces(OtlpTraceReq *req, struct otlp_request *out)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        OtlpResourceSpans *rs = req->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            OtlpScopeSpans *ss = rs->scope_spans[j];
            size_t kept = 0;
            for (size_t k = 0; k < ss->n_spans; k++) {
                const char *why = check_span(ss->spans[k]);
                if (why != NULL) {
                    if (out->reject_reason == NULL) {
                        out->reject_reason = why;
                    }
                    out->rejected++;
                    continue;
                }
                ss->spans[kept++] = ss->spans[k];
            }
            ss->n_spans = kept;
            out->accepted += kept;
        }
    }
}

static void validate_logs(OtlpLogsReq *req, struct otlp_request *out)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        OtlpResourceLogs *rl = req->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            OtlpScopeLogs *sl = rl->scope_logs[j];
            size_t kept = 0;
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const char *why = check_log(sl->log_records[k]);
                if (why != NULL) {
                    if (out->reject_reason == NULL) {
                        out->reject_reason = why;
                    }
                    out->rejected++;
                    continue;
                }
                sl->log_records[kept++] = sl->log_records[k];
            }
            sl->n_log_records = kept;
            out->accepted += kept;
        }
    }
}

static size_t metric_points(const OtlpMetric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge != NULL ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum != NULL ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram != NULL ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram != NULL ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary != NULL ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

static void count_metrics(OtlpMetricsReq *req, struct otlp_request *out)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        OtlpResourceMetrics *rm = req->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            OtlpScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                out->accepted += metric_points(sm->metrics[k]);
            }
        }
    }
}

int otlp_decode(struct o2d_arena *a, enum otlp_signal sig, enum otlp_encoding enc,
                const uint8_t *body, size_t len, struct otlp_request *out, const char **reason)
{
    memset(out, 0, sizeof(*out));
    out->tenant = -1;
    out->signal = sig;
    out->arena = a;
    *reason = NULL;
    const ProtobufCMessageDescriptor *desc = descriptor_for(sig);
    void *msg = NULL;
    int rv;

    if (sig == OTLP_SIGNAL_TRACES && (enc == OTLP_ENC_PROTOBUF || len == 0)) {
        OtlpTraceReq *req = NULL;
        rv = otlp_pb_decode_traces(a, body, len, &req, &out->utf8_valid, reason);
        if (rv != O2D_OK) {
            return rv;
        }
        msg = req;
    } else if (enc == OTLP_ENC_PROTOBUF || len == 0) {
        rv = otlp_pb_check(desc, body, len, OTLP_MAX_MESSAGE_DEPTH, reason);
        if (rv != O2D_OK) {
            return rv;
        }
        msg = protobuf_c_message_unpack(desc, &a->pb, len, body);
        if (msg == NULL) {
            if (a->failed) {
                *reason = reason_too_large;
                return O2D_ERR_TOO_LARGE;
            }
            /* The pre-scan passed, so this is something only protobuf-c checks. */
            *reason = "protobuf message could not be decoded";
            return O2D_ERR_INVALID;
        }
    } else {
        rv = otlp_json_decode(a, sig, body, len, &msg, reason);
        if (rv != O2D_OK) {
            return rv;
        }
        /* o2d_json_in refuses text that is not UTF-8 and escapes of lone surrogates, so every
         * string decoded from JSON is valid UTF-8. */
        out->utf8_valid = 1;
    }

    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        out->msg.traces = msg;
        validate_traces(msg, out);
        break;
    case OTLP_SIGNAL_LOGS:
        out->msg.logs = msg;
        validate_logs(msg, out);
        break;
    default:
        out->msg.metrics = msg;
        count_metrics(msg, out);
        break;
    }
    return O2D_OK;
}
