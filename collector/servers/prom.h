/*
 * prom.h: a writer of the Prometheus text exposition format, version 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats): "# HELP" and "# TYPE" once per
 * family, then its samples, each `name{label="value",...} value`. Histograms are written
 * from per-bucket counts as cumulative `_bucket{le="..."}` lines ending with le="+Inf",
 * then `_sum` and `_count`.
 *
 * It only formats: which metrics exist and where their values come from is the business of
 * the modules that own the counters (ingest, pipeline, exporters) and of metrics_server.c.
 * Output goes into a bounded buffer; the first failure (past the maximum, out of memory) is
 * kept and every later call is a no-op, so a scrape builds its text with no error checks
 * between lines and looks at prom_writer_status() once at the end.
 */
#ifndef O2D_PROM_H
#define O2D_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum prom_type {
    PROM_COUNTER,
    PROM_GAUGE,
    PROM_HISTOGRAM,
};

/* A label; both strings borrowed. Names are ours (a C identifier); values are escaped. */
struct prom_label {
    const char *name;
    const char *value;
};

struct prom_writer {
    struct o2d_buf buf;
    int status; /* O2D_OK, or the first error */
};

/* `max` bounds the whole text. */
void prom_writer_init(struct prom_writer *w, size_t max);
void prom_writer_cleanup(struct prom_writer *w);
int prom_writer_status(const struct prom_writer *w);

/* "# HELP name help" and "# TYPE name type". Call once per name, before its samples. */
void prom_family(struct prom_writer *w, const char *name, enum prom_type type, const char *help);

/* One sample line of a counter or gauge; labels[0..n) in order. */
void prom_sample_u64(struct prom_writer *w, const char *name, const struct prom_label *labels,
                     size_t n, uint64_t v);
void prom_sample_f64(struct prom_writer *w, const char *name, const struct prom_label *labels,
                     size_t n, double v);

/*
 * The samples of one histogram series: `bounds[0..n_bounds)` are the ascending upper bounds,
 * `counts[0..n_bounds]` the observations per bucket (not cumulative; counts[n_bounds] are
 * those above the last bound), `sum` the sum of the observed values. The "le" label follows
 * the given ones.
 */
void prom_histogram(struct prom_writer *w, const char *name, const struct prom_label *labels,
                    size_t n, const double *bounds, const uint64_t *counts, size_t n_bounds,
                    double sum);

/* Appends `v` escaped for a label value (\ " and newline), for tests and callers that
 * build label sets themselves. */
int prom_escape_label_value(struct o2d_buf *b, const char *v);

#endif
