/*
 * mtr_points.c: one view (struct mtr_point) of the four kinds of OTLP data point, so that the
 * mapping in mtr.c reads count, sum, min, max and buckets the same way whatever the kind. The
 * points are already decoded by translate/otlp (metrics.proto, both encodings); this only
 * points at their fields, copying no array. Upstream's `optional double` sum, min and max are
 * one-field oneofs there: set when their case is (HistogramDataPoint.HasSum() and so on).
 */
#include <string.h>

#include "mtr_int.h"

void mtr_point_number(const OtlpNumberPoint *src, struct mtr_point *p)
{
    memset(p, 0, sizeof(*p));
    p->attrs = src->attributes;
    p->nattrs = src->n_attributes;
    p->start_ns = src->start_time_unix_nano;
    p->time_ns = src->time_unix_nano;
    p->flags = src->flags;
    /* A point without a value counts as 0 (pmetric's IntValue/DoubleValue of an empty one). */
    if (src->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
        p->value = src->as_double;
    } else if (src->value_case ==
               OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
        p->value = (double)src->as_int;
    }
}

/* The fields a histogram and an exponential histogram point share (two generated types). */
#define HIST_COMMON(src, p)                                                                        \
    do {                                                                                           \
        memset((p), 0, sizeof(*(p)));                                                              \
        (p)->attrs = (src)->attributes;                                                            \
        (p)->nattrs = (src)->n_attributes;                                                         \
        (p)->start_ns = (src)->start_time_unix_nano;                                               \
        (p)->time_ns = (src)->time_unix_nano;                                                      \
        (p)->flags = (src)->flags;                                                                 \
        (p)->count = (src)->count;                                                                 \
        (p)->has_sum = (src)->_sum_case != 0;                                                      \
        (p)->sum = (p)->has_sum ? (src)->sum : 0;                                                  \
        (p)->has_min = (src)->_min_case != 0;                                                      \
        (p)->min = (p)->has_min ? (src)->min : 0;                                                  \
        (p)->has_max = (src)->_max_case != 0;                                                      \
        (p)->max = (p)->has_max ? (src)->max : 0;                                                  \
    } while (0)

void mtr_point_histogram(const OtlpHistogramPoint *src, struct mtr_point *p)
{
    HIST_COMMON(src, p);
    p->bucket_counts = src->bucket_counts;
    p->nbucket_counts = src->n_bucket_counts;
    p->bounds = src->explicit_bounds;
    p->nbounds = src->n_explicit_bounds;
}

static void buckets(const OtlpExpBuckets *src, struct mtr_buckets *b)
{
    memset(b, 0, sizeof(*b));
    if (src != NULL) {
        b->offset = src->offset;
        b->counts = src->bucket_counts;
        b->n = src->n_bucket_counts;
    }
}

void mtr_point_exp(const OtlpExpHistogramPoint *src, struct mtr_point *p)
{
    HIST_COMMON(src, p);
    p->scale = src->scale;
    p->zero_count = src->zero_count;
    buckets(src->positive, &p->pos);
    buckets(src->negative, &p->neg);
}

void mtr_point_summary(const OtlpSummaryPoint *src, struct mtr_point *p)
{
    memset(p, 0, sizeof(*p));
    p->attrs = src->attributes;
    p->nattrs = src->n_attributes;
    p->start_ns = src->start_time_unix_nano;
    p->time_ns = src->time_unix_nano;
    p->flags = src->flags;
    p->count = src->count;
    p->has_sum = 1;
    p->sum = src->sum;
    p->quantiles = (const OtlpQuantile *const *)src->quantile_values;
    p->nquantiles = src->n_quantile_values;
}
