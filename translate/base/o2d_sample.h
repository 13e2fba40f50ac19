/*
 * o2d_sample.h: the deterministic keep-or-drop test of a trace id at a percentage, the same
 * in every otel2dd instance (and in an OpenTelemetry Collector configured alike), so that a
 * trace whose spans reach several instances, or one instance in several requests, is kept or
 * dropped as a whole. Pure; what is sampled and what a kept trace carries is the caller's.
 *
 * Two modes, as the Collector's probabilistic sampler names them
 * (open-telemetry/opentelemetry-collector-contrib processor/probabilisticsamplerprocessor):
 *  - proportional (its default): the W3C trace context level 2 randomness, the low 56 bits
 *    of the trace id (bytes 9..15, big-endian), kept when at or above the rejection
 *    threshold T = 2^56 - round(p * 2^56), rounded to `sampling_precision` hex digits (4 by
 *    default; more near 0 and 100 %) as the Collector's pkg/sampling
 *    ProbabilityToThresholdWithPrecision does (10 % -> T = 0xe666 << 40).
 *  - hash_seed: FNV-1a 32 over the seed (4 bytes, little-endian) then the 16 bytes of the
 *    trace id, its low 14 bits kept when below uint32(float32(p / 100) * 16384): the Collector's
 *    legacy mode, and the Datadog Agent's probabilistic sampler with its
 *    probabilistic_sampler_full_trace_id feature (pkg/trace/sampler/probabilistic.go).
 */
#ifndef O2D_SAMPLE_H
#define O2D_SAMPLE_H

#include <stdint.h>

enum o2d_sample_mode {
    O2D_SAMPLE_PROPORTIONAL = 0,
    O2D_SAMPLE_HASH_SEED = 1,
};

/* A percentage made ready for o2d_sample_keep: its threshold in the mode's own scale. */
struct o2d_sample_rate {
    double percent;     /* 0..100, as configured */
    uint64_t threshold; /* proportional: T in 2^56 units; hash_seed: the bucket bound */
    char text[8];       /* the rate with two decimals ("0.10"), as Datadog's tags write it */
};

#define O2D_SAMPLE_PRECISION_DEFAULT 4 /* the Collector's sampling_precision */
#define O2D_SAMPLE_PRECISION_MAX     14

/* Clamps percent to 0..100 and computes the threshold for `mode`; precision (1..14, hex
 * digits) matters to proportional only. */
struct o2d_sample_rate o2d_sample_rate_prec(enum o2d_sample_mode mode, double percent,
                                            int precision);
/* o2d_sample_rate_prec at the default precision. */
struct o2d_sample_rate o2d_sample_rate_of(enum o2d_sample_mode mode, double percent);

/* 1 when the trace id (16 bytes, OTLP order) is kept at `r`. */
int o2d_sample_keep(enum o2d_sample_mode mode, uint32_t hash_seed, const uint8_t trace_id[16],
                    const struct o2d_sample_rate *r);

/* FNV-1a 32 of the seed (little-endian) and the trace id: exposed for tests. */
uint32_t o2d_sample_fnv(uint32_t hash_seed, const uint8_t trace_id[16]);

/* The id is all zeros (the Collector's "missing randomness": fail_closed decides). */
int o2d_sample_id_missing(const uint8_t trace_id[16]);

#endif
