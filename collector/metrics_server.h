/*
 * metrics_server.h: otel2dd's own telemetry as Prometheus text on
 * service.telemetry.metrics.address (default 0.0.0.0:8888). GET (or HEAD) /metrics answers
 * the text exposition format, version 0.0.4; nothing else is served.
 *
 * A pull model with no registry: at each scrape the server asks the modules that own the
 * counters (ingest, the pipeline and through it the exporters) to write them, so nothing is
 * counted twice and nothing global is mutable. Every label value comes from a closed set.
 */
#ifndef O2D_METRICS_SERVER_H
#define O2D_METRICS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

struct ingest;
struct pipeline;
struct metrics_server;

/*
 * Binds endpoint ("host:port"), starts serving and logs
 * {"msg":"listening","server":"metrics",...,"port":N}. Borrows `ing` and `p` (either may be
 * NULL): free the server before them. On failure writes why into err.
 */
int metrics_server_new(struct metrics_server **out, const char *endpoint, struct ingest *ing,
                       struct pipeline *p, char *err, size_t errlen);
uint16_t metrics_server_port(const struct metrics_server *m);
/* Stops serving and frees; NULL is a no-op. */
void metrics_server_free(struct metrics_server *m);

/* The whole scrape text; what GET /metrics answers. Exposed for tests. */
void metrics_write(struct prom_writer *w, struct ingest *ing, struct pipeline *p,
                   double start_time_s);

#endif
