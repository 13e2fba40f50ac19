/*
 * metrics_send.c: a tiny sender for tests/e2e/test_metrics_wire.py. It makes the Datadog
 * metrics exporter (exporters/datadog_metrics.h) with its intake at BASE_URL, hands it one
 * batch through datadog_metrics_submit (the entry point the pipeline calls with what the
 * metrics translator made), flushes and exits: 0 when everything was delivered, 1 when
 * something was lost (the counts are logged), 2 on a usage or start error.
 *
 *   metrics_send BASE_URL API_KEY N_SERIES N_SKETCHES
 *
 * The batch is a pure function of the counts, so the test computes what must arrive:
 *   series i:  name "e2e.s<i % 7>", type gauge / count / rate (i % 3; a rate has interval
 *              10), tags "service:e2e", "idx:<i>", host "host-<i % 3>" (none when i % 5 == 0),
 *              ts 1700000000 + i, value i * 0.5, unit "byte" when i % 4 == 0
 *   sketch j:  name "e2e.d<j % 3>", tags "service:e2e", "idx:<j>", host "host-<j % 2>",
 *              ts 1700000000 + j, bins k = -5 .. 5 + (j % 40) with n = 1 + (index % 9),
 *              cnt their sum, min -2.5, max 1000 + j, sum j * 3.25, avg sum / cnt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog.h"
#include "datadog_metrics.h"
#include "exporter.h"
#include "o2d.h"
#include "o2d_time.h"

#define MAX_BINS 64

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: metrics_send BASE_URL API_KEY N_SERIES N_SKETCHES\n");
        return 2;
    }
    size_t ns = strtoul(argv[3], NULL, 10);
    size_t nk = strtoul(argv[4], NULL, 10);
    static struct datadog_config cfg;
    snprintf(cfg.api_key, sizeof(cfg.api_key), "%s", argv[2]);
    snprintf(cfg.site, sizeof(cfg.site), "datadoghq.com");
    snprintf(cfg.metrics.endpoint, sizeof(cfg.metrics.endpoint), "%s", argv[1]);
    cfg.metrics.enabled = 1;
    cfg.queue_max_bytes = 256u << 20;
    cfg.flush_interval_ms = 200;
    cfg.max_elapsed_ms = 30000;

    struct ddm_series *series = calloc(ns > 0 ? ns : 1, sizeof(*series));
    char(*names)[32] = calloc(ns + nk + 1, sizeof(*names));
    char(*idx)[32] = calloc(ns + nk + 1, sizeof(*idx));
    const char **tags = calloc(2 * (ns + nk) + 1, sizeof(*tags));
    struct ddm_sketch *sketches = calloc(nk > 0 ? nk : 1, sizeof(*sketches));
    int32_t(*keys)[MAX_BINS] = calloc(nk + 1, sizeof(*keys));
    uint32_t(*counts)[MAX_BINS] = calloc(nk + 1, sizeof(*counts));
    if (series == NULL || names == NULL || idx == NULL || tags == NULL || sketches == NULL ||
        keys == NULL || counts == NULL) {
        fprintf(stderr, "metrics_send: out of memory\n");
        return 2;
    }
    static const char *hosts[] = {"host-0", "host-1", "host-2"};
    static const enum ddm_type types[] = {DDM_GAUGE, DDM_COUNT, DDM_RATE};
    for (size_t i = 0; i < ns; i++) {
        snprintf(names[i], sizeof(names[i]), "e2e.s%zu", i % 7);
        snprintf(idx[i], sizeof(idx[i]), "idx:%zu", i);
        tags[2 * i] = "service:e2e";
        tags[2 * i + 1] = idx[i];
        series[i] = (struct ddm_series){
            .name = names[i],
            .type = types[i % 3],
            .tags = &tags[2 * i],
            .ntags = 2,
            .host = i % 5 == 0 ? NULL : hosts[i % 3],
            .ts_s = 1700000000 + (int64_t)i,
            .value = (double)i * 0.5,
            .interval_s = i % 3 == 2 ? 10 : 0,
            .unit = i % 4 == 0 ? "byte" : NULL,
        };
    }
    for (size_t j = 0; j < nk; j++) {
        size_t t = ns + j;
        snprintf(names[t], sizeof(names[t]), "e2e.d%zu", j % 3);
        snprintf(idx[t], sizeof(idx[t]), "idx:%zu", j);
        tags[2 * t] = "service:e2e";
        tags[2 * t + 1] = idx[t];
        size_t nbins = 11 + j % 40;
        int64_t cnt = 0;
        for (size_t b = 0; b < nbins; b++) {
            keys[j][b] = (int32_t)b - 5;
            counts[j][b] = (uint32_t)(1 + b % 9);
            cnt += counts[j][b];
        }
        double sum = (double)j * 3.25;
        sketches[j] = (struct ddm_sketch){
            .name = names[t],
            .tags = &tags[2 * t],
            .ntags = 2,
            .host = hosts[j % 2],
            .ts_s = 1700000000 + (int64_t)j,
            .cnt = cnt,
            .min = -2.5,
            .max = 1000.0 + (double)j,
            .avg = sum / (double)cnt,
            .sum = sum,
            .k = keys[j],
            .n = counts[j],
            .nbins = nbins,
        };
    }

    struct exporter *e = NULL;
    if (datadog_metrics_exporter_new(&e, &cfg, NULL) != O2D_OK || e->type->start(e) != O2D_OK) {
        fprintf(stderr, "metrics_send: the exporter did not start\n");
        return 2;
    }
    struct ddm_batch batch = {
        .series = series, .nseries = ns, .sketches = sketches, .nsketches = nk};
    int rv = datadog_metrics_submit(e, &batch, 1);
    if (rv != O2D_OK) {
        fprintf(stderr, "metrics_send: submit: %s\n", o2d_strerror(rv));
    }
    /* The batch is borrowed for the call only: what was queued is the exporter's copy. */
    memset(series, 0, (ns > 0 ? ns : 1) * sizeof(*series));
    memset(sketches, 0, (nk > 0 ? nk : 1) * sizeof(*sketches));
    int frv = e->type->flush(e, o2d_now_ms() + 60000);
    e->type->stop(e);
    uint64_t lost = e->type->undelivered(e, NULL);
    e->type->destroy(e);
    free(series);
    free(names);
    free(idx);
    free(tags);
    free(sketches);
    free(keys);
    free(counts);
    return rv == O2D_OK && frv == O2D_OK && lost == 0 ? 0 : 1;
}
