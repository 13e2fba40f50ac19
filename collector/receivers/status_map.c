/*
 * status_map.c: o2d status -> gRPC code / HTTP status, per the OTLP specification
 * (opentelemetry-proto docs/specification.md, "Failures" and "Throttling"): bad data is
 * permanent (400 / INVALID_ARGUMENT), size past the limit is 413 / RESOURCE_EXHAUSTED
 * (non-retryable, no RetryInfo), missing or wrong credentials are 401 / UNAUTHENTICATED
 * (not retried), load shedding is retryable (503 + Retry-After /
 * UNAVAILABLE), an unknown method or encoding is 404/415 / UNIMPLEMENTED.
 */
#include "o2d.h"
#include "status_map.h"

static const struct {
    int status;
    enum grpc_code grpc;
    int http;
    int retry_after_s;
} status_table[] = {
    {O2D_OK, GRPC_OK, 200, 0},
    {O2D_ERR_INVALID, GRPC_INVALID_ARGUMENT, 400, 0},
    {O2D_ERR_TOO_LARGE, GRPC_RESOURCE_EXHAUSTED, 413, 0},
    {O2D_ERR_UNSUPPORTED, GRPC_UNIMPLEMENTED, 415, 0},
    {O2D_ERR_BUSY, GRPC_UNAVAILABLE, 503, 1},
    {O2D_ERR_NOMEM, GRPC_UNAVAILABLE, 503, 1},
    {O2D_ERR_NOT_FOUND, GRPC_UNIMPLEMENTED, 404, 0},
    {O2D_ERR_TIMEOUT, GRPC_DEADLINE_EXCEEDED, 408, 0},
    {O2D_ERR_SHUTDOWN, GRPC_UNAVAILABLE, 503, 1},
    {O2D_ERR_INTERNAL, GRPC_INTERNAL, 500, 0},
    {O2D_ERR_UNAUTHENTICATED, GRPC_UNAUTHENTICATED, 401, 0},
};

static int find(int status)
{
    for (size_t i = 0; i < sizeof(status_table) / sizeof(status_table[0]); i++) {
        if (status_table[i].status == status) {
            return (int)i;
        }
    }
    return -1;
}

enum grpc_code o2d_status_to_grpc(int status)
{
    int i = find(status);
    return i < 0 ? GRPC_INTERNAL : status_table[i].grpc;
}

int o2d_status_to_http(int status)
{
    int i = find(status);
    return i < 0 ? 500 : status_table[i].http;
}

int o2d_status_retry_after(int status)
{
    int i = find(status);
    return i < 0 ? 0 : status_table[i].retry_after_s;
}

const char *grpc_code_name(enum grpc_code code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if ((int)code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0])) {
        return "UNKNOWN";
    }
    return names[code];
}
