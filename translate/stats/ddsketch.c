/*
 * ddsketch.c: DDSketch with the trace agent's parameters (pkg/trace/stats/statsraw.go:
 * LogCollapsingLowestDenseDDSketch(0.01, 2048)), so that our okSummary / errorSummary are the
 * sketches the agent itself would send. Followed, from DataDog/sketches-go:
 *   - ddsketch/mapping/logarithmic_mapping.go: gamma = (1+ra)/(1-ra), multiplier =
 *     1/log1p(2ra/(1-ra)), indexOffset 0, index = floor(ln(v) * multiplier) written as Go's
 *     int(x) / int(x)-1, value(i) = exp(i / multiplier) * (1+ra), minIndexableValue =
 *     max(exp(MinInt32/multiplier + 1), minNormalFloat64 * gamma);
 *   - ddsketch/ddsketch.go: values <= minIndexableValue go to zeroCount; quantile rank is
 *     q * (count - 1);
 *   - ddsketch/store/collapsing_lowest_dense_store.go: a contiguous store of at most 2048 bins
 *     whose lowest bins are merged when the range grows past that, and values below a
 *     collapsed store count in its lowest bin;
 *   - ddsketch/store/dense_store.go ToProto: contiguousBinCounts for minIndex..maxIndex and
 *     contiguousBinIndexOffset = minIndex.
 * libdatadog's sketch (gamma 1.015625, offset 1338.5) is not used: the backend reads the
 * mapping from each sketch, and the agent's is the one its own stats carry.
 * Durations only: negative values count as zero (the agent's normalizer makes them 0 before
 * stats), so negativeValues is always empty.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "datadog/sketches/ddsketch.pb-c.h"
#include "ddsketch.h"
#include "o2d.h"
#include "o2d_alloc.h"

/* 1 / log1p(2 * 0.01 / (1 - 0.01)), as sketches-go computes it (checked by the unit test). */
#define MULTIPLIER   0x1.8ffc9629d2350p+5
#define GAMMA        ((1 + DDSKETCH_RELATIVE_ACCURACY) / (1 - DDSKETCH_RELATIVE_ACCURACY))
#define INITIAL_BINS 64
/* max(exp(MinInt32/multiplier + 1), DBL_MIN * gamma): the first term is 0 for this gamma. */
#define MIN_INDEXABLE (DBL_MIN * GAMMA)

void ddsketch_init(struct ddsketch *s)
{
    memset(s, 0, sizeof(*s));
}

void ddsketch_cleanup(struct ddsketch *s)
{
    o2d_free(s->bins);
    ddsketch_init(s);
}

double ddsketch_min_indexable(void)
{
    double a = exp((double)INT32_MIN / MULTIPLIER + 1);
    double b = DBL_MIN * GAMMA;
    return a > b ? a : b;
}

int32_t ddsketch_index(double v)
{
    double x = log(v) * MULTIPLIER;
    return x >= 0 ? (int32_t)x : (int32_t)x - 1;
}

double ddsketch_value(int32_t index)
{
    return exp((double)index / MULTIPLIER) * (1 + DDSKETCH_RELATIVE_ACCURACY);
}

double ddsketch_trunc_ns(int64_t ns)
{
    double d = (double)ns;
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    /* sign, exponent and the 9 high mantissa bits (10 significant bits with the implicit 1) */
    b &= 0xfffff80000000000ULL;
    memcpy(&d, &b, sizeof(d));
    return d;
}

/*
 * Lays the bins out again so that they cover [lo, hi], merging every count below lo into lo.
 * Reuses the array when it is large enough; otherwise allocates a larger one (bounded by
 * DDSKETCH_MAX_BINS) and leaves the sketch untouched if that fails.
 */
static int relayout(struct ddsketch *s, int64_t lo, int64_t hi)
{
    int64_t need = hi - lo + 1;
    int64_t ncap = s->cap;
    if (need > ncap) {
        ncap = need + need / 2;
        if (ncap < INITIAL_BINS) {
            ncap = INITIAL_BINS;
        }
        if (ncap > DDSKETCH_MAX_BINS) {
            ncap = DDSKETCH_MAX_BINS;
        }
    }
    /* Centred, so that growth either way finds room. */
    int64_t noff = lo - (ncap - need) / 2;
    double *nb = s->bins;
    if (ncap != s->cap) {
        nb = o2d_calloc((size_t)ncap, sizeof(double));
        if (nb == NULL) {
            return O2D_ERR_NOMEM;
        }
    }
    double low = 0;
    int64_t dst = 0, n = 0;
    if (s->count > 0) {
        int64_t i;
        for (i = s->min_index; i < lo && i <= s->max_index; i++) {
            low += s->bins[i - s->offset];
        }
        int64_t from = s->min_index > lo ? s->min_index : lo;
        if (from <= s->max_index) {
            n = s->max_index - from + 1;
            dst = from - noff;
            memmove(nb + dst, s->bins + (from - s->offset), (size_t)n * sizeof(double));
        }
    }
    if (nb == s->bins) {
        /* In place: clear what the move did not overwrite. */
        memset(nb, 0, (size_t)dst * sizeof(double));
        memset(nb + dst + n, 0, (size_t)(ncap - dst - n) * sizeof(double));
    } else {
        o2d_free(s->bins);
    }
    nb[lo - noff] += low;
    s->bins = nb;
    s->cap = (int32_t)ncap;
    s->offset = (int32_t)noff;
    return O2D_OK;
}

static int store_add(struct ddsketch *s, int32_t idx)
{
    int64_t lo = idx, hi = idx;
    if (s->count > 0) {
        if (idx < s->min_index && s->collapsed) {
            idx = s->min_index;
            lo = hi = idx;
        }
        if (s->min_index < lo) {
            lo = s->min_index;
        }
        if (s->max_index > hi) {
            hi = s->max_index;
        }
    }
    int collapse = 0;
    if (hi - lo + 1 > DDSKETCH_MAX_BINS) {
        lo = hi - DDSKETCH_MAX_BINS + 1;
        collapse = 1;
    }
    if (s->bins == NULL || collapse || lo < s->offset || hi >= (int64_t)s->offset + s->cap) {
        int rc = relayout(s, lo, hi);
        if (rc != O2D_OK) {
            return rc;
        }
    }
    if (idx < lo) {
        idx = (int32_t)lo;
    }
    s->bins[idx - s->offset] += 1;
    s->count += 1;
    s->min_index = (int32_t)lo;
    s->max_index = (int32_t)hi;
    s->collapsed |= collapse;
    return O2D_OK;
}

int ddsketch_add(struct ddsketch *s, double v)
{
    if (!(v > MIN_INDEXABLE)) {
        /* zero, tiny, negative (and NaN, which a duration never is) */
        s->zero_count += 1;
        return O2D_OK;
    }
    return store_add(s, ddsketch_index(v));
}

double ddsketch_count(const struct ddsketch *s)
{
    return s->count + s->zero_count;
}

double ddsketch_quantile(const struct ddsketch *s, double q)
{
    double total = ddsketch_count(s);
    if (total <= 0 || q < 0 || q > 1) {
        return 0;
    }
    double rank = q * (total - 1);
    if (rank < s->zero_count) {
        return 0;
    }
    rank -= s->zero_count;
    double n = 0;
    for (int64_t i = s->min_index; i <= s->max_index; i++) {
        n += s->bins[i - s->offset];
        if (n > rank) {
            return ddsketch_value((int32_t)i);
        }
    }
    return ddsketch_value(s->max_index);
}

static void fill_proto(const struct ddsketch *s, Datadog__Sketches__DDSketch *pb,
                       Datadog__Sketches__IndexMapping *mapping, Datadog__Sketches__Store *positive,
                       Datadog__Sketches__Store *negative)
{
    datadog__sketches__ddsketch__init(pb);
    datadog__sketches__index_mapping__init(mapping);
    datadog__sketches__store__init(positive);
    datadog__sketches__store__init(negative);
    mapping->gamma = GAMMA;
    mapping->indexoffset = 0;
    mapping->interpolation = DATADOG__SKETCHES__INDEX_MAPPING__INTERPOLATION__NONE;
    if (s->count > 0) {
        positive->n_contiguousbincounts = (size_t)(s->max_index - s->min_index + 1);
        /* protobuf-c only reads it */
        positive->contiguousbincounts = s->bins + (s->min_index - s->offset);
        positive->contiguousbinindexoffset = s->min_index;
    }
    pb->mapping = mapping;
    pb->positivevalues = positive;
    pb->negativevalues = negative;
    pb->zerocount = s->zero_count;
}

size_t ddsketch_encoded_size(const struct ddsketch *s)
{
    Datadog__Sketches__DDSketch pb;
    Datadog__Sketches__IndexMapping mapping;
    Datadog__Sketches__Store positive, negative;
    fill_proto(s, &pb, &mapping, &positive, &negative);
    return datadog__sketches__ddsketch__get_packed_size(&pb);
}

size_t ddsketch_encode(const struct ddsketch *s, uint8_t *out)
{
    Datadog__Sketches__DDSketch pb;
    Datadog__Sketches__IndexMapping mapping;
    Datadog__Sketches__Store positive, negative;
    fill_proto(s, &pb, &mapping, &positive, &negative);
    return datadog__sketches__ddsketch__pack(&pb, out);
}
