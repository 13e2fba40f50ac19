/*
 * ddsketch.h: the DDSketch that APM stats carry as okSummary / errorSummary
 * (../shared/reference/datadog-apm.md section 2.3), with the trace agent's parameters:
 * DataDog/datadog-agent pkg/trace/stats/statsraw.go newGroupedStats,
 * ddsketch.LogCollapsingLowestDenseDDSketch(relativeAccuracy=0.01, maxNumBins=2048).
 *
 * Only non-negative values (durations) are kept: negative values count as zero, so the
 * negativeValues store is always empty. Memory is at most DDSKETCH_MAX_BINS doubles; past
 * that the lowest bins are merged, as the agent does. Encoding is the protobuf
 * datadog.sketches.DDSketch (proto/datadog/sketches/ddsketch.proto).
 */
#ifndef DDSKETCH_H
#define DDSKETCH_H

#include <stddef.h>
#include <stdint.h>

#define DDSKETCH_RELATIVE_ACCURACY 0.01
#define DDSKETCH_MAX_BINS          2048

struct ddsketch {
    double *bins;      /* owned; bins[i] counts index offset + i; NULL while empty */
    int32_t cap;       /* allocated length of bins, at most DDSKETCH_MAX_BINS */
    int32_t offset;    /* index of bins[0] */
    int32_t min_index; /* lowest and highest index with a count (valid when count > 0) */
    int32_t max_index;
    double count;      /* sum of bins */
    double zero_count; /* values too small to index, zero and negative values */
    int collapsed;     /* the lowest bins were merged to honour the bin cap */
};

/* Caller-owned storage; an initialised sketch is empty and holds no memory. */
void ddsketch_init(struct ddsketch *s);
void ddsketch_cleanup(struct ddsketch *s);

/* Adds one value. O2D_OK, or O2D_ERR_NOMEM with the sketch unchanged. */
int ddsketch_add(struct ddsketch *s, double v);

/* Total number of values added. */
double ddsketch_count(const struct ddsketch *s);

/* The value at quantile q in [0, 1] (sketches-go GetValueAtQuantile); 0 for an empty sketch. */
double ddsketch_quantile(const struct ddsketch *s, double q);

/* The mapping's index of v and the value it stands for (exposed for tests). */
int32_t ddsketch_index(double v);
double ddsketch_value(int32_t index);
double ddsketch_min_indexable(void);

/*
 * The agent's nsTimestampToFloat: a duration in ns as a double with 10 significant bits,
 * the value statsraw.go adds to the sketch.
 */
double ddsketch_trunc_ns(int64_t ns);

/* Size of the protobuf encoding, and the encoding itself into out[0..size). */
size_t ddsketch_encoded_size(const struct ddsketch *s);
size_t ddsketch_encode(const struct ddsketch *s, uint8_t *out);

#endif
