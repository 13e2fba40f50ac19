/*
 * exporter.h: the interface every destination implements (curl's Curl_cftype / Curl_cfilter
 * split): a const table of operations, and an instance that points at it.
 */
#ifndef O2D_EXPORTER_H
#define O2D_EXPORTER_H

#include <stdint.h>

#include "o2d_time.h"
#include "otlp.h"

struct exporter;

/* exporters.debug.verbosity */
enum o2d_debug_verbosity {
    O2D_DEBUG_QUIET = 0,    /* nothing per request (benchmarks) */
    O2D_DEBUG_BASIC = 1,    /* one line per request */
    O2D_DEBUG_DETAILED = 2, /* every span and log record */
};

struct exporter_type {
    const char *name; /* closed set: safe as a metric label */
    /* Starts background work, if any. */
    int (*start)(struct exporter *e);
    /* Says whether it can take `req` now (O2D_OK), or O2D_ERR_BUSY / O2D_ERR_SHUTDOWN.
     * The pipeline asks every exporter before it submits to any: once all admitted, submit
     * must not refuse for lack of room, or the client's retry would hand a second copy to
     * the exporters that already took it. So queue bounds are soft by at most the requests
     * in flight (themselves bounded by the receivers' memory budget). NULL: always. */
    int (*admit)(struct exporter *e, const struct otlp_request *req);
    /* Takes one request; `req` and everything it points to are borrowed for the call only.
     * `transport` is a static name ("grpc", "http"). O2D_OK or O2D_ERR_BUSY. */
    int (*submit)(struct exporter *e, const char *transport, const struct otlp_request *req);
    /* Sends what is pending; returns when done or at deadline_ms (monotonic). */
    int (*flush)(struct exporter *e, int64_t deadline_ms);
    /* Stops background work and frees the instance. */
    void (*destroy)(struct exporter *e);
};

struct exporter {
    const struct exporter_type *type;
    void *ctx; /* owned by the exporter */
};

/* exporters/debug.c: logs what arrives (one line per request, or every item). */
int debug_exporter_new(struct exporter **out, int verbosity);

#endif
