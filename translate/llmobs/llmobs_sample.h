/*
 * llmobs_sample.h: LLM Observability sampling (processors.llmobs_sampler): a percentage per
 * ml_app (default 100 %), tested on the OTel trace id (o2d_sample.h). Every LLM Obs trace id
 * is derived from the OTel trace id and its LLM Obs root (llmobs_trace_id), so one decision
 * per OTel trace keeps or drops each LLM Obs tree in it whole, the same in every request and
 * every instance. A trace with an LLM Obs span in error (in the same request) is kept whole.
 * Pure; the exporter applies it before spans enter the trace buffer.
 */
#ifndef LLMOBS_SAMPLE_H
#define LLMOBS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_sample.h"

enum llmobs_sample_rule {
    LLMOBS_SAMPLE_PERCENTAGE,  /* sampling_percentage */
    LLMOBS_SAMPLE_ML_APP_RATE, /* ml_app_rates */
    LLMOBS_SAMPLE_ERROR,       /* keep_error_traces (keeps only) */
    LLMOBS_SAMPLE_RULES
};

/* "percentage", "ml_app_rate", "error": safe as metric labels. */
const char *llmobs_sample_rule_name(enum llmobs_sample_rule r);

struct llmobs_sample_app {
    const char *ml_app;
    struct o2d_sample_rate rate;
};

/* Borrowed. enabled 0: every span is kept. */
struct llmobs_sampler {
    int enabled;
    enum o2d_sample_mode mode;
    uint32_t hash_seed;
    struct o2d_sample_rate rate; /* sampling_percentage, default 100 */
    int keep_errors;             /* keep_error_traces, default on */
    const struct llmobs_sample_app *apps;
    size_t n_apps;
};

/* Whether spans of ml_app in trace `trace_id` are kept (has_error: the trace has an LLM Obs
 * span in error in this request), and the rule that decided. */
int llmobs_sample_keep(const struct llmobs_sampler *s, const uint8_t trace_id[16],
                       const char *ml_app, int has_error, enum llmobs_sample_rule *rule);

#endif
