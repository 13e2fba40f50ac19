/*
 * prom.c: the Prometheus text writer (prom.h). Numbers are written so that they read back
 * exactly: integers as integers, doubles in the shortest of %.15g / %.17g that round-trips,
 * infinities and NaN as the format spells them.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "prom.h"

void prom_writer_init(struct prom_writer *w, size_t max)
{
    o2d_buf_init(&w->buf, max);
    w->status = O2D_OK;
}

void prom_writer_cleanup(struct prom_writer *w)
{
    o2d_buf_cleanup(&w->buf);
}

int prom_writer_status(const struct prom_writer *w)
{
    return w->status;
}

static void keep(struct prom_writer *w, int rv)
{
    if (w->status == O2D_OK && rv != O2D_OK) {
        w->status = rv;
    }
}

static void put(struct prom_writer *w, const char *s)
{
    if (w->status == O2D_OK) {
        keep(w, o2d_buf_append_str(&w->buf, s));
    }
}

/* HELP text escapes only backslash and newline; label values also the double quote. */
static int append_escaped(struct o2d_buf *b, const char *v, int quote)
{
    size_t start = b->len;
    for (const char *p = v; *p != '\0'; p++) {
        int rv;
        if (*p == '\\') {
            rv = o2d_buf_append(b, "\\\\", 2);
        } else if (*p == '\n') {
            rv = o2d_buf_append(b, "\\n", 2);
        } else if (*p == '"' && quote) {
            rv = o2d_buf_append(b, "\\\"", 2);
        } else {
            rv = o2d_buf_append_byte(b, (uint8_t)*p);
        }
        if (rv != O2D_OK) {
            b->len = start;
            return rv;
        }
    }
    return O2D_OK;
}

int prom_escape_label_value(struct o2d_buf *b, const char *v)
{
    return append_escaped(b, v, 1);
}

static const char *type_name(enum prom_type t)
{
    switch (t) {
    case PROM_COUNTER:
        return "counter";
    case PROM_GAUGE:
        return "gauge";
    default:
        return "histogram";
    }
}

void prom_family(struct prom_writer *w, const char *name, enum prom_type type, const char *help)
{
    put(w, "# HELP ");
    put(w, name);
    put(w, " ");
    if (w->status == O2D_OK) {
        keep(w, append_escaped(&w->buf, help, 0));
    }
    put(w, "\n# TYPE ");
    put(w, name);
    put(w, " ");
    put(w, type_name(type));
    put(w, "\n");
}

/* name{a="x",b="y"[,le="..."]} with the optional extra label last. */
static void series(struct prom_writer *w, const char *name, const char *suffix,
                   const struct prom_label *labels, size_t n, const char *le)
{
    put(w, name);
    put(w, suffix);
    if (n == 0 && le == NULL) {
        return;
    }
    put(w, "{");
    for (size_t i = 0; i < n; i++) {
        put(w, i > 0 ? "," : "");
        put(w, labels[i].name);
        put(w, "=\"");
        if (w->status == O2D_OK) {
            keep(w, append_escaped(&w->buf, labels[i].value != NULL ? labels[i].value : "", 1));
        }
        put(w, "\"");
    }
    if (le != NULL) {
        put(w, n > 0 ? ",le=\"" : "le=\"");
        put(w, le);
        put(w, "\"");
    }
    put(w, "}");
}

static void format_f64(char *out, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
    } else if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, n, "%.15g", v);
        if (strtod(out, NULL) != v) {
            snprintf(out, n, "%.17g", v);
        }
    }
}

void prom_sample_u64(struct prom_writer *w, const char *name, const struct prom_label *labels,
                     size_t n, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), " %" PRIu64 "\n", v);
    series(w, name, "", labels, n, NULL);
    put(w, num);
}

void prom_sample_f64(struct prom_writer *w, const char *name, const struct prom_label *labels,
                     size_t n, double v)
{
    char num[40];
    format_f64(num, sizeof(num), v);
    series(w, name, "", labels, n, NULL);
    put(w, " ");
    put(w, num);
    put(w, "\n");
}

void prom_histogram(struct prom_writer *w, const char *name, const struct prom_label *labels,
                    size_t n, const double *bounds, const uint64_t *counts, size_t n_bounds,
                    double sum)
{
    char le[40];
    char num[40];
    uint64_t cum = 0;
    for (size_t i = 0; i <= n_bounds; i++) {
        cum += counts[i];
        if (i < n_bounds) {
            format_f64(le, sizeof(le), bounds[i]);
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        series(w, name, "_bucket", labels, n, le);
        snprintf(num, sizeof(num), " %" PRIu64 "\n", cum);
        put(w, num);
    }
    format_f64(num, sizeof(num), sum);
    series(w, name, "_sum", labels, n, NULL);
    put(w, " ");
    put(w, num);
    put(w, "\n");
    series(w, name, "_count", labels, n, NULL);
    snprintf(num, sizeof(num), " %" PRIu64 "\n", cum);
    put(w, num);
}
