/*
 * pipeline.c: receivers -> exporters. Every exporter gets every request before the
 * receiver answers; the first exporter that cannot take it makes the answer "retry later".
 * The Datadog exporters (APM, then LLM Observability) share one HTTP client, owned here:
 * at the end their senders stop, the client is freed (completing what still retries, which
 * the exporters count), and only then are the exporters freed.
 */
#include <stdatomic.h>

#include "datadog.h"
#include "exporter.h"
#include "http_client.h"
#include "llmobs_exporter.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "pipeline.h"

#define PIPELINE_MAX_EXPORTERS 4

struct pipeline {
    struct exporter *exporters[PIPELINE_MAX_EXPORTERS];
    int n_exporters;
    struct http_client *http; /* shared by the Datadog exporters */
    struct exporter *datadog; /* in exporters[] too */
    struct exporter *llmobs;  /* in exporters[] too */
    atomic_int stopping;
};

int pipeline_new(struct pipeline **out, const struct o2d_config *cfg)
{
    struct pipeline *p = o2d_calloc(1, sizeof(*p));
    if (p == NULL) {
        return O2D_ERR_NOMEM;
    }
    int rv = O2D_OK;
    /* With an API key, Datadog; the debug exporter runs beside it only when the file names
     * it. Without a key, the debug exporter shows what would be sent. */
    if (cfg->datadog.enabled) {
        rv = http_client_new(&p->http, NULL);
        if (rv == O2D_OK) {
            rv = datadog_exporter_new(&p->exporters[p->n_exporters], &cfg->datadog, p->http);
        }
        if (rv == O2D_OK) {
            p->datadog = p->exporters[p->n_exporters++];
        }
        /* LLM spans stay in APM too (type llm); the LLM Obs events link to them by id. */
        if (rv == O2D_OK && cfg->datadog.llmobs.enabled) {
            rv = llmobs_exporter_new(&p->exporters[p->n_exporters], &cfg->datadog, p->http);
            if (rv == O2D_OK) {
                p->llmobs = p->exporters[p->n_exporters++];
            }
        }
    } else {
        o2d_logf(O2D_LOG_WARN, "no Datadog API key is set (DD_API_KEY or "
                               "exporters.datadog.api.key): nothing is sent to Datadog; the "
                               "debug exporter shows what arrives");
    }
    if (rv == O2D_OK && (!cfg->datadog.enabled || cfg->debug_section)) {
        rv = debug_exporter_new(&p->exporters[p->n_exporters], (int)cfg->debug_verbosity);
        if (rv == O2D_OK) {
            p->n_exporters++;
        }
    }
    if (rv != O2D_OK) {
        pipeline_free(p);
        return rv;
    }
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e->type->start != NULL && (rv = e->type->start(e)) != O2D_OK) {
            pipeline_free(p);
            return rv;
        }
    }
    *out = p;
    return O2D_OK;
}

int pipeline_submit(struct pipeline *p, enum o2d_transport tr, const struct otlp_request *req)
{
    if (atomic_load_explicit(&p->stopping, memory_order_relaxed)) {
        return O2D_ERR_SHUTDOWN;
    }
    /* All or nothing: a request one exporter cannot take now is refused before any takes
     * it, so the client's retry never duplicates what another exporter already has. */
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        int rv = e->type->admit != NULL ? e->type->admit(e, req) : O2D_OK;
        if (rv != O2D_OK) {
            return rv;
        }
    }
    const char *trname = o2d_transport_name(tr);
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        int rv = e->type->submit(e, trname, req);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    return O2D_OK;
}

void pipeline_shutdown(struct pipeline *p, int64_t deadline_ms)
{
    atomic_store(&p->stopping, 1);
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e->type->flush != NULL) {
            e->type->flush(e, deadline_ms);
        }
    }
}

void pipeline_free(struct pipeline *p)
{
    if (p == NULL) {
        return;
    }
    if (p->datadog != NULL) {
        datadog_exporter_stop(p->datadog);
    }
    if (p->llmobs != NULL) {
        llmobs_exporter_stop(p->llmobs);
    }
    http_client_free(p->http);
    for (int i = 0; i < p->n_exporters; i++) {
        struct exporter *e = p->exporters[i];
        if (e != NULL) {
            e->type->destroy(e);
        }
    }
    o2d_free(p);
}
