/*
 * o2d.h: the one status enum of otel2dd and its reasons.
 *
 * 0 is success, negative values are errors (nghttp2's convention). Errors at or below
 * O2D_ERR_FATAL leave the object that returned them unusable. Functions that can fail
 * return a status and put results in out-parameters; decoders also hand back a reason, a
 * static string that tests compare and that becomes the gRPC message or HTTP error body.
 * Mapping a status to a gRPC code or an HTTP status lives in collector/receivers/status_map.c.
 */
#ifndef O2D_H
#define O2D_H

#include <stddef.h>
#include <stdint.h>

enum o2d_status {
    O2D_OK = 0,
    /* The input is malformed: never retried (HTTP 400, gRPC INVALID_ARGUMENT). */
    O2D_ERR_INVALID = -1,
    /* The input is over a configured size limit (HTTP 413, gRPC RESOURCE_EXHAUSTED). */
    O2D_ERR_TOO_LARGE = -2,
    /* Unknown content type or compression (HTTP 415, gRPC UNIMPLEMENTED). */
    O2D_ERR_UNSUPPORTED = -3,
    /* The pipeline cannot take more now: retry later (HTTP 503, gRPC UNAVAILABLE). */
    O2D_ERR_BUSY = -4,
    /* An allocation failed on the request path: retry later, like BUSY. */
    O2D_ERR_NOMEM = -5,
    /* Unknown path or method (HTTP 404, gRPC UNIMPLEMENTED). */
    O2D_ERR_NOT_FOUND = -6,
    /* The request's deadline passed before it was complete (gRPC DEADLINE_EXCEEDED). */
    O2D_ERR_TIMEOUT = -7,
    /* The process is shutting down and takes no new work (gRPC UNAVAILABLE). */
    O2D_ERR_SHUTDOWN = -8,
    /* A bug or an unexpected library failure (HTTP 500, gRPC INTERNAL). */
    O2D_ERR_INTERNAL = -9,
    /* System call failures at start-up (bind, listen, thread creation). */
    O2D_ERR_SYSTEM = -10,
    /* Configuration errors, reported at start-up with file and line. */
    O2D_ERR_CONFIG = -11,
    /* The request carries no valid credentials (HTTP 401, gRPC UNAUTHENTICATED). */
    O2D_ERR_UNAUTHENTICATED = -12,
    /* The request's tenant holds its share of an exporter's queue: retry later, like BUSY
     * (the receivers answer it as BUSY; only the refusal's reason differs). */
    O2D_ERR_TENANT_BUSY = -13,

    O2D_ERR_FATAL = -900,
};

/* A short, static, human-readable name for a status ("invalid input", ...). */
const char *o2d_strerror(int status);

static inline int o2d_is_fatal(int status)
{
    return status <= O2D_ERR_FATAL;
}

#endif
