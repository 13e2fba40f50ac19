/*
 * llmobs_sample.c: see llmobs_sample.h. An all-zero trace id (which the decoder refuses
 * anyway) is kept: LLM Obs has no fail_closed setting.
 */
#include <string.h>

#include "llmobs_sample.h"

const char *llmobs_sample_rule_name(enum llmobs_sample_rule r)
{
    static const char *const names[LLMOBS_SAMPLE_RULES] = {"percentage", "ml_app_rate", "error"};
    return (unsigned)r < LLMOBS_SAMPLE_RULES ? names[r] : "unknown";
}

int llmobs_sample_keep(const struct llmobs_sampler *s, const uint8_t trace_id[16],
                       const char *ml_app, int has_error, enum llmobs_sample_rule *rule)
{
    *rule = LLMOBS_SAMPLE_PERCENTAGE;
    if (s == NULL || !s->enabled) {
        return 1;
    }
    const struct o2d_sample_rate *r = &s->rate;
    for (size_t i = 0; ml_app != NULL && i < s->n_apps; i++) {
        if (strcmp(s->apps[i].ml_app, ml_app) == 0) {
            r = &s->apps[i].rate;
            *rule = LLMOBS_SAMPLE_ML_APP_RATE;
            break;
        }
    }
    if (o2d_sample_id_missing(trace_id) || o2d_sample_keep(s->mode, s->hash_seed, trace_id, r)) {
        return 1;
    }
    if (has_error && s->keep_errors) {
        *rule = LLMOBS_SAMPLE_ERROR;
        return 1;
    }
    return 0;
}
