/*
 * status_map.h: the one place where an otel2dd status becomes a wire status, as the OTLP
 * specification asks (opentelemetry-proto docs/specification.md: retryable codes, 400 for
 * bad data, 413 / RESOURCE_EXHAUSTED past the size limit, 429/503 + Retry-After or
 * UNAVAILABLE to shed load). gRPC codes are named, never bare numbers.
 */
#ifndef O2D_STATUS_MAP_H
#define O2D_STATUS_MAP_H

enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

/* The gRPC code for an o2d status. */
enum grpc_code o2d_status_to_grpc(int status);
/* The HTTP status for an o2d status (200 for O2D_OK). */
int o2d_status_to_http(int status);
/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" outside the enum. */
const char *grpc_code_name(enum grpc_code code);
/* Seconds a client is told to wait (Retry-After, RetryInfo) for a retryable status, else 0. */
int o2d_status_retry_after(int status);

#endif
