/*
 * metrics_server.c: the Prometheus endpoint, a small libmicrohttpd server like health.c
 * (mhd_small.h: one thread, answers from the request line alone, small limits, so a
 * misbehaving scraper stays cheap). The text is built per scrape, on that thread, into a
 * bounded buffer; the process-wide metrics (build, start time, resident memory) are written
 * here, the rest by their owners.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "metrics_server.h"
#include "mhd_small.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "pipeline.h"

#define METRICS_CONNECTIONS 16
#define METRICS_TIMEOUT_S   10
#define METRICS_CONN_MEMORY (16 * 1024)
/* Today's text is under 16 KiB; the bound only stops a bug from eating memory. */
#define METRICS_TEXT_MAX (1024 * 1024)
#define METRICS_PATH     "/metrics"

struct metrics_server {
    struct MHD_Daemon *daemon;
    uint16_t port;
    struct ingest *ing;    /* borrowed */
    struct pipeline *pipe; /* borrowed */
    double start_time_s;   /* unix time at metrics_server_new */
};

/* Resident set size from /proc/self/statm (pages; field 2), or 0 when unreadable. */
static uint64_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL) {
        return 0;
    }
    unsigned long size = 0;
    unsigned long resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0) {
        return 0;
    }
    return (uint64_t)resident * (uint64_t)page;
}

void metrics_write(struct prom_writer *w, struct ingest *ing, struct pipeline *p,
                   double start_time_s)
{
    prom_family(w, "otel2dd_build_info", PROM_GAUGE,
                "Always 1; the version label says which otel2dd is running.");
    struct prom_label v[] = {{"version", O2D_VERSION}};
    prom_sample_u64(w, "otel2dd_build_info", v, 1, 1);
    prom_family(w, "otel2dd_process_start_time_seconds", PROM_GAUGE,
                "When the process started, in seconds since the Unix epoch.");
    prom_sample_f64(w, "otel2dd_process_start_time_seconds", NULL, 0, start_time_s);
    prom_family(w, "otel2dd_process_resident_memory_bytes", PROM_GAUGE,
                "Resident memory now, from /proc/self/statm.");
    prom_sample_u64(w, "otel2dd_process_resident_memory_bytes", NULL, 0, resident_bytes());
    if (ing != NULL) {
        ingest_write_metrics(ing, w);
    }
    if (p != NULL) {
        pipeline_write_metrics(p, w);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct metrics_server *m = cls;
    if (strcmp(url, METRICS_PATH) != 0) {
        return mhd_small_answer(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", NULL, 0,
                                "not found: metrics are at /metrics\n", NULL);
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return mhd_small_answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                                NULL, 0, "method not allowed: use GET\n", "GET, HEAD");
    }
    /* HEAD gets the same headers, Content-Length included; MHD sends no body for it. */
    struct prom_writer w;
    prom_writer_init(&w, METRICS_TEXT_MAX);
    metrics_write(&w, m->ing, m->pipe, m->start_time_s);
    if (prom_writer_status(&w) != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "metrics: cannot build the scrape text: %s",
                 o2d_strerror(prom_writer_status(&w)));
        prom_writer_cleanup(&w);
        return mhd_small_answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                                NULL, 0, "cannot build the metrics text\n", NULL);
    }
    size_t len = 0;
    uint8_t *text = o2d_buf_take(&w.buf, &len);
    prom_writer_cleanup(&w);
    if (text == NULL) {
        return mhd_small_answer(conn, MHD_HTTP_OK, PROM_CONTENT_TYPE, NULL, 0, "", NULL);
    }
    return mhd_small_answer(conn, MHD_HTTP_OK, PROM_CONTENT_TYPE, text, len, NULL, NULL);
}

int metrics_server_new(struct metrics_server **out, const char *endpoint, struct ingest *ing,
                       struct pipeline *p, char *err, size_t errlen)
{
    int rv = O2D_ERR_NOMEM;
    *out = NULL;
    struct metrics_server *m = o2d_calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    m->ing = ing;
    m->pipe = p;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time_s = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1e3;
    static const struct mhd_small_limits lim = {
        .connections = METRICS_CONNECTIONS,
        .timeout_s = METRICS_TIMEOUT_S,
        .conn_memory = METRICS_CONN_MEMORY,
    };
    rv = mhd_small_start(&m->daemon, &m->port, "metrics", endpoint, &lim, on_request, m, err,
                         errlen);
    if (rv != O2D_OK) {
        goto out;
    }
    *out = m;
    m = NULL;
out:
    metrics_server_free(m);
    return rv;
}

uint16_t metrics_server_port(const struct metrics_server *m)
{
    return m->port;
}

void metrics_server_free(struct metrics_server *m)
{
    if (m == NULL) {
        return;
    }
    if (m->daemon != NULL) {
        MHD_stop_daemon(m->daemon);
    }
    o2d_free(m);
}
