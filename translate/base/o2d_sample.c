/*
 * o2d_sample.c: see o2d_sample.h. The two tests the Collector's probabilistic sampler makes
 * (processor/probabilisticsamplerprocessor: tracesprocessor.go, sampler_mode.go), written
 * from its documented behaviour; constants from there and from the W3C trace context level 2
 * "random" flag (56 bits of randomness).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "o2d_sample.h"

#define RANDOM_BITS      56
#define MAX_ADJUSTED     ((uint64_t)1 << RANDOM_BITS)
#define HASH_BUCKETS     0x4000u /* 14 bits, as the Collector and the Datadog Agent */
#define HASH_BUCKET_MASK (HASH_BUCKETS - 1)

/* pkg/sampling ProbabilityToThresholdWithPrecision: T = 2^56 - round(p 2^56), the precision
 * raised by one hex digit per leading 0 of p or of 1 - p, then T rounded half up to it. */
static uint64_t proportional_threshold(double p, int precision)
{
    if (p <= 0) {
        return MAX_ADJUSTED; /* never: the Collector's neverSampler */
    }
    if (p >= 1) {
        return 0;
    }
    int exp_f, exp_r;
    (void)frexp(p, &exp_f);
    (void)frexp(1 - p, &exp_r);
    int a = precision + exp_f / -4, b = precision + exp_r / -4;
    precision = a > b ? a : b;
    if (precision > O2D_SAMPLE_PRECISION_MAX) {
        precision = O2D_SAMPLE_PRECISION_MAX;
    }
    uint64_t t = MAX_ADJUSTED - (uint64_t)llround(p * (double)MAX_ADJUSTED);
    int shift = 4 * (O2D_SAMPLE_PRECISION_MAX - precision);
    if (shift != 0) {
        t += (uint64_t)1 << (shift - 1);
        t >>= shift;
        t <<= shift;
    }
    return t;
}

struct o2d_sample_rate o2d_sample_rate_prec(enum o2d_sample_mode mode, double percent,
                                            int precision)
{
    struct o2d_sample_rate r;
    if (!(percent > 0)) { /* NaN too */
        percent = 0;
    }
    if (percent > 100) {
        percent = 100;
    }
    if (precision < 1 || precision > O2D_SAMPLE_PRECISION_MAX) {
        precision = O2D_SAMPLE_PRECISION_DEFAULT;
    }
    r.percent = percent;
    snprintf(r.text, sizeof(r.text), "%.2f", percent / 100.0);
    if (mode == O2D_SAMPLE_HASH_SEED) {
        /* In float32 and truncated, as the Collector keeps it for consistency across its
         * versions (sampler_mode.go: uint32(pct * numHashBuckets), pct a float32). */
        float pct = (float)percent / 100.0f;
        r.threshold = (uint32_t)(pct * (float)HASH_BUCKETS);
    } else {
        r.threshold = proportional_threshold(percent / 100.0, precision);
    }
    return r;
}

struct o2d_sample_rate o2d_sample_rate_of(enum o2d_sample_mode mode, double percent)
{
    return o2d_sample_rate_prec(mode, percent, O2D_SAMPLE_PRECISION_DEFAULT);
}

uint32_t o2d_sample_fnv(uint32_t hash_seed, const uint8_t trace_id[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 4; i++) {
        h ^= (uint8_t)(hash_seed >> (8 * i));
        h *= 16777619u;
    }
    for (int i = 0; i < 16; i++) {
        h ^= trace_id[i];
        h *= 16777619u;
    }
    return h;
}

int o2d_sample_id_missing(const uint8_t trace_id[16])
{
    static const uint8_t zero[16];
    return memcmp(trace_id, zero, 16) == 0;
}

int o2d_sample_keep(enum o2d_sample_mode mode, uint32_t hash_seed, const uint8_t trace_id[16],
                    const struct o2d_sample_rate *r)
{
    if (mode == O2D_SAMPLE_HASH_SEED) {
        return (o2d_sample_fnv(hash_seed, trace_id) & HASH_BUCKET_MASK) < r->threshold;
    }
    uint64_t rnd = 0;
    for (int i = 16 - RANDOM_BITS / 8; i < 16; i++) {
        rnd = rnd << 8 | trace_id[i];
    }
    return rnd >= r->threshold;
}
