/*
 * agent_sketch.h: the Datadog Agent's quantile sketch (datadog-agent pkg/util/quantile), the
 * one whose bins /api/beta/sketches takes: gamma = 1 + 2 * (1/128), values under 1e-9 in key 0,
 * key(v) = round-half-even(log_gamma(v)) + bias so that key(1e-9) = 1, negative values on
 * negative keys, at most 4096 bins (the lowest merged upward past that, as trimLeft does).
 * Not the DDSketch of APM stats (translate/stats/ddsketch.h), whose mapping differs.
 *
 * The sketch owns its bins (heap, bounded by the bin limit); agent_sketch_cleanup frees them.
 */
#ifndef AGENT_SKETCH_H
#define AGENT_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_SKETCH_BIN_LIMIT 4096
#define AGENT_SKETCH_INF_KEY   32767 /* key of +Inf; -32767 is -Inf */
#define AGENT_SKETCH_MAX_KEY   32766
/* The Agent's MaxCount(): binLimit * 65535 observations, what the OTLP mapper accepts in one
 * sketch (bins once counted in uint16). */
#define AGENT_SKETCH_MAX_COUNT ((uint64_t)AGENT_SKETCH_BIN_LIMIT * 65535u)

struct agent_sketch {
    int32_t *k; /* ascending; equal keys only where a count passed UINT32_MAX */
    uint32_t *n;
    size_t nbins, cap;
    /* summary.Summary: exact over what was inserted */
    int64_t cnt;
    double min, max, sum, avg;
};

void agent_sketch_init(struct agent_sketch *s);
void agent_sketch_cleanup(struct agent_sketch *s);

/* The key of v, and the lower bound of a key's bin (gamma^(k - bias); +-Inf for +-32767). */
int32_t agent_sketch_key(double v);
double agent_sketch_bin_low(int32_t k);
/* gamma, for tests that check the relative accuracy. */
double agent_sketch_gamma(void);

/* Agent.Insert(v, 1): one value. O2D_OK or O2D_ERR_NOMEM. */
int agent_sketch_insert(struct agent_sketch *s, double v);

/* Agent.InsertInterpolate(lower, upper, count): count spread over the keys from key(lower) to
 * key(upper) in proportion to their bins' widths. O2D_ERR_INVALID with *reason when key(upper)
 * < key(lower) (bounds out of order) or the key range is wider than the whole key space. */
int agent_sketch_insert_interpolate(struct agent_sketch *s, double lower, double upper,
                                    uint64_t count, const char **reason);

/* insertCounts: counts added to keys (any order; merged, split past UINT32_MAX, trimmed). Does
 * not touch the summary. */
struct agent_sketch_kc {
    int32_t k;
    uint64_t n;
};
int agent_sketch_insert_counts(struct agent_sketch *s, struct agent_sketch_kc *kc, size_t nkc);

/* Sketch.Quantile(q): the value below which q of the bins' count lies (min for q <= 0, max for
 * q >= 1, 0 when empty). */
double agent_sketch_quantile(const struct agent_sketch *s, double q);

/* Sum of the bins' counts. */
uint64_t agent_sketch_bins_count(const struct agent_sketch *s);

#endif
