/*
 * config_sampling.h: processors.probabilistic_sampler (APM trace sampling) and
 * processors.llmobs_sampler (LLM Observability sampling), read by config_sampling.c into a
 * struct of their own that struct o2d_config holds. o2d_config_prepare() points the Datadog
 * exporters at the samplers built here (datadog.sampler, datadog.llmobs.map.sampler).
 */
#ifndef O2D_CONFIG_SAMPLING_H
#define O2D_CONFIG_SAMPLING_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "apm_sample.h"
#include "llmobs_sample.h"

#define O2D_SAMPLE_MAX_RATES 64  /* service_rates, ml_app_rates entries */
#define O2D_SAMPLE_NAME_MAX  128 /* a service or ml_app name */

struct o2d_sampling_config {
    /* processors.probabilistic_sampler, the Collector's keys (sampling_percentage default 0,
     * hash_seed 0, mode proportional unless hash_seed is set, sampling_precision 4,
     * fail_closed true) and ours
     * (keep_error_traces true, keep_traces_slower_than 0 = off, service_rates {}). */
    int apm_section;
    double apm_percent;
    enum o2d_sample_mode apm_mode;
    int apm_precision; /* sampling_precision, 1..14 hex digits, default 4 (proportional) */
    uint32_t apm_seed;
    int apm_fail_closed;
    int apm_keep_errors;
    int64_t apm_slow_ms;
    char services[O2D_SAMPLE_MAX_RATES][O2D_SAMPLE_NAME_MAX];
    double service_percent[O2D_SAMPLE_MAX_RATES];
    size_t n_services;
    /* processors.llmobs_sampler (sampling_percentage default 100, ml_app_rates {},
     * keep_error_traces true, hash_seed, mode as above). */
    int llmobs_section;
    double llmobs_percent;
    enum o2d_sample_mode llmobs_mode;
    int llmobs_precision;
    uint32_t llmobs_seed;
    int llmobs_keep_errors;
    char apps[O2D_SAMPLE_MAX_RATES][O2D_SAMPLE_NAME_MAX];
    double app_percent[O2D_SAMPLE_MAX_RATES];
    size_t n_apps;
    /* Built by o2d_sampling_prepare from the fields above (pointers into this struct). */
    struct apm_sample_service service_rates[O2D_SAMPLE_MAX_RATES];
    struct apm_sampler apm;
    struct llmobs_sample_app app_rates[O2D_SAMPLE_MAX_RATES];
    struct llmobs_sampler llmobs;
};

void o2d_sampling_defaults(struct o2d_sampling_config *s);
/* Builds s->apm and s->llmobs (call once the struct is at its final address). */
void o2d_sampling_prepare(struct o2d_sampling_config *s);
/* `otel2dd validate`: the rules in effect, in the order a trace meets them, as "#     ..."
 * lines. */
void o2d_sampling_describe_apm(const struct o2d_sampling_config *s, FILE *out);
void o2d_sampling_describe_llmobs(const struct o2d_sampling_config *s, FILE *out);
/* Writes the sections (what `otel2dd validate` shows), nothing when neither is configured. */
void o2d_sampling_write_yaml(const struct o2d_sampling_config *s, FILE *out);

#endif
