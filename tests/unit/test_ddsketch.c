/*
 * test_ddsketch.c: the agent-parameter DDSketch: quantiles within 1% of the exact ones on
 * known distributions, zero and tiny values, the 2048-bin cap collapsing the lowest bins,
 * the agent's duration truncation, and the protobuf encoding read back with protobuf-c.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "datadog/sketches/ddsketch.pb-c.h"
#include "ddsketch.h"
#include "o2d.h"
#include "o2d_alloc.h"

static const double quantiles[] = {0, 0.5, 0.75, 0.9, 0.95, 0.99, 1};

/* xorshift64*: the same sequence on every run */
static uint64_t rng_state;
static double uniform01(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static double normal(void)
{
    double u = uniform01(), v = uniform01();
    if (u < 1e-300) {
        u = 1e-300;
    }
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Adds vals to a sketch and checks every quantile against the sorted input. */
static void check_distribution(double *vals, size_t n)
{
    struct ddsketch s;
    ddsketch_init(&s);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ddsketch_add(&s, vals[i]), O2D_OK);
    }
    assert_true(ddsketch_count(&s) == (double)n);
    assert_true(s.max_index - s.min_index < DDSKETCH_MAX_BINS);
    qsort(vals, n, sizeof(double), cmp_double);
    for (size_t k = 0; k < sizeof(quantiles) / sizeof(quantiles[0]); k++) {
        double q = quantiles[k];
        double exact = vals[(size_t)floor(q * (double)(n - 1))];
        double got = ddsketch_quantile(&s, q);
        double err = fabs(got - exact) / exact;
        if (err > DDSKETCH_RELATIVE_ACCURACY + 1e-9) {
            fail_msg("q=%g exact=%.17g got=%.17g err=%g", q, exact, got, err);
        }
    }
    ddsketch_cleanup(&s);
}

static void quantiles_on_known_distributions(void **state)
{
    (void)state;
    const size_t n = 100000;
    double *v = malloc(n * sizeof(double));
    assert_non_null(v);
    rng_state = 0x9e3779b97f4a7c15ULL;

    for (size_t i = 0; i < n; i++) { /* uniform 1 ms .. 1 s in ns */
        v[i] = 1e6 + uniform01() * (1e9 - 1e6);
    }
    check_distribution(v, n);
    for (size_t i = 0; i < n; i++) { /* exponential, mean 2 ms */
        v[i] = -2e6 * log(1 - uniform01()) + 1;
    }
    check_distribution(v, n);
    for (size_t i = 0; i < n; i++) { /* lognormal around 5 ms */
        v[i] = exp(log(5e6) + 1.5 * normal());
    }
    check_distribution(v, n);
    for (size_t i = 0; i < n; i++) { /* a constant */
        v[i] = 123456789;
    }
    check_distribution(v, n);
    for (size_t i = 0; i < n; i++) { /* log-uniform, 1 us .. 100 s */
        v[i] = 1e3 * pow(1e8, uniform01());
    }
    check_distribution(v, n);
    for (size_t i = 0; i < n; i++) { /* the same, truncated as the agent does */
        v[i] = ddsketch_trunc_ns((int64_t)(1e3 * pow(1e8, uniform01())));
    }
    check_distribution(v, n);
    free(v);
}

static void mapping_matches_sketches_go(void **state)
{
    (void)state;
    const double ra = DDSKETCH_RELATIVE_ACCURACY;
    const double gamma = (1 + ra) / (1 - ra);
    assert_true(ddsketch_min_indexable() == DBL_MIN * gamma);
    /* Indexes worked out apart from the code under test: floor(ln(v) / ln(1.01 / 0.99)), with
     * 50-digit decimals (Python: Decimal(v).ln() / ((1 + ra) / (1 - ra)).ln(), ra = 0.01).
     * ln(v) * multiplier is 0 for v = 1 and at least 0.005 from an integer for the others, so
     * double rounding cannot move them. */
    static const struct {
        double v;
        int32_t index;
    } known[] = {
        {1, 0},           {0.5, -35},        /* -34.656 */
        {2, 34},          {1.0203040506, 1}, /* 1.00500 */
        {1e3, 345},       {1e6, 690},        /* 1 us, 1 ms in ns */
        {1e9, 1036},      {1e11, 1266},      /* 1 s, 100 s */
        {123456789, 931}, {1e-6, -691},      /* -690.75 */
        {1e18, 2072},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        assert_int_equal(ddsketch_index(known[i].v), known[i].index);
    }
    /* The DDSketch definition: index i holds the values in [gamma^i, gamma^(i+1)), checked
     * with pow (the code uses log), with a 1e-12 slack for the powers' own rounding. */
    for (double v = 1e-6; v < 1e18; v *= 1.37) {
        int32_t i = ddsketch_index(v);
        assert_true(pow(gamma, i) <= v * (1 + 1e-12));
        assert_true(v < pow(gamma, i + 1) * (1 + 1e-12));
        double est = ddsketch_value(i);
        assert_true(fabs(est - v) / v <= ra + 1e-12);
    }
}

static void zero_and_tiny_values(void **state)
{
    (void)state;
    struct ddsketch s;
    ddsketch_init(&s);
    assert_true(ddsketch_quantile(&s, 0.5) == 0);
    assert_int_equal(ddsketch_add(&s, 0), O2D_OK);
    assert_int_equal(ddsketch_add(&s, 1e-320), O2D_OK); /* subnormal */
    assert_int_equal(ddsketch_add(&s, DBL_MIN), O2D_OK);
    assert_int_equal(ddsketch_add(&s, -5), O2D_OK);
    assert_null(s.bins);
    assert_true(s.zero_count == 4);
    assert_int_equal(ddsketch_add(&s, 1000), O2D_OK);
    assert_true(ddsketch_count(&s) == 5);
    assert_true(ddsketch_quantile(&s, 0) == 0);
    assert_true(ddsketch_quantile(&s, 0.75) == 0);
    assert_true(fabs(ddsketch_quantile(&s, 1) - 1000) / 1000 <= 0.01);
    /* 1 ns, the smallest duration, is indexable */
    assert_int_equal(ddsketch_add(&s, 1), O2D_OK);
    assert_true(s.zero_count == 4);
    ddsketch_cleanup(&s);
}

static void bin_cap_collapses_lowest_bins(void **state)
{
    (void)state;
    const double ra = DDSKETCH_RELATIVE_ACCURACY;
    const double gamma = (1 + ra) / (1 - ra);
    struct ddsketch s;
    ddsketch_init(&s);
    /* One value in each of 5000 consecutive bins, ascending. */
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(ddsketch_add(&s, pow(gamma, i + 0.5)), O2D_OK);
    }
    assert_true(s.collapsed);
    assert_int_equal(s.max_index, 4999);
    assert_int_equal(s.min_index, 4999 - DDSKETCH_MAX_BINS + 1);
    assert_true(s.cap <= DDSKETCH_MAX_BINS);
    assert_true(s.count == 5000);
    /* Everything below the kept range sits in its lowest bin. */
    assert_true(s.bins[s.min_index - s.offset] == 5000 - DDSKETCH_MAX_BINS + 1);
    /* The high quantiles are still exact to 1%. */
    double exact99 = pow(gamma, floor(0.99 * 4999) + 0.5);
    assert_true(fabs(ddsketch_quantile(&s, 0.99) - exact99) / exact99 <= ra + 1e-9);
    /* A low value after the collapse counts in the lowest bin. */
    assert_int_equal(ddsketch_add(&s, 1.5), O2D_OK);
    assert_int_equal(s.min_index, 4999 - DDSKETCH_MAX_BINS + 1);
    assert_true(s.bins[0 + s.min_index - s.offset] == 5000 - DDSKETCH_MAX_BINS + 2);
    ddsketch_cleanup(&s);

    /* Descending: the new low values are the ones merged. */
    ddsketch_init(&s);
    for (int i = 4999; i >= 0; i--) {
        assert_int_equal(ddsketch_add(&s, pow(gamma, i + 0.5)), O2D_OK);
    }
    assert_int_equal(s.max_index, 4999);
    assert_int_equal(s.min_index, 4999 - DDSKETCH_MAX_BINS + 1);
    assert_true(s.count == 5000);
    ddsketch_cleanup(&s);

    /* A jump far above everything leaves one bin with the old counts. */
    ddsketch_init(&s);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(ddsketch_add(&s, 100 + i), O2D_OK);
    }
    assert_int_equal(ddsketch_add(&s, 1e300), O2D_OK);
    assert_int_equal(s.max_index - s.min_index + 1, DDSKETCH_MAX_BINS);
    assert_true(s.bins[s.min_index - s.offset] == 10);
    assert_true(s.count == 11);
    ddsketch_cleanup(&s);
}

static void truncation_keeps_ten_bits(void **state)
{
    (void)state;
    assert_true(ddsketch_trunc_ns(0) == 0);
    assert_true(ddsketch_trunc_ns(1) == 1);
    assert_true(ddsketch_trunc_ns(1023) == 1023);
    assert_true(ddsketch_trunc_ns(1024) == 1024);
    assert_true(ddsketch_trunc_ns(1025) == 1024);
    assert_true(ddsketch_trunc_ns(2047) == 2046);
    for (int64_t ns = 1; ns < INT64_MAX / 3; ns = ns * 3 + 7) {
        double t = ddsketch_trunc_ns(ns);
        uint64_t bits;
        memcpy(&bits, &t, sizeof(bits));
        assert_true((bits & 0x7ffffffffffULL) == 0);
        assert_true(t <= (double)ns);
        assert_true(((double)ns - t) / (double)ns < 1.0 / 512);
    }
}

static void encoding_round_trips(void **state)
{
    (void)state;
    struct ddsketch s;
    ddsketch_init(&s);
    rng_state = 42;
    for (int i = 0; i < 20000; i++) {
        assert_int_equal(ddsketch_add(&s, 1e3 * pow(1e5, uniform01())), O2D_OK);
    }
    assert_int_equal(ddsketch_add(&s, 0), O2D_OK);
    size_t n = ddsketch_encoded_size(&s);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(ddsketch_encode(&s, buf), n);
    Datadog__Sketches__DDSketch *pb = datadog__sketches__ddsketch__unpack(NULL, n, buf);
    assert_non_null(pb);
    assert_non_null(pb->mapping);
    assert_true(pb->mapping->gamma == (1 + 0.01) / (1 - 0.01));
    assert_true(pb->mapping->indexoffset == 0);
    assert_int_equal(pb->mapping->interpolation,
                     DATADOG__SKETCHES__INDEX_MAPPING__INTERPOLATION__NONE);
    assert_non_null(pb->negativevalues);
    assert_int_equal(pb->negativevalues->n_contiguousbincounts, 0);
    assert_int_equal(pb->negativevalues->n_bincounts, 0);
    assert_true(pb->zerocount == 1);
    const Datadog__Sketches__Store *pos = pb->positivevalues;
    assert_non_null(pos);
    assert_int_equal(pos->n_bincounts, 0);
    assert_int_equal(pos->contiguousbinindexoffset, s.min_index);
    assert_int_equal(pos->n_contiguousbincounts, (size_t)(s.max_index - s.min_index + 1));
    double total = 0;
    for (size_t i = 0; i < pos->n_contiguousbincounts; i++) {
        assert_true(pos->contiguousbincounts[i] == s.bins[s.min_index + (int)i - s.offset]);
        total += pos->contiguousbincounts[i];
    }
    assert_true(total == 20000);
    assert_true(pos->contiguousbincounts[0] > 0);
    assert_true(pos->contiguousbincounts[pos->n_contiguousbincounts - 1] > 0);
    datadog__sketches__ddsketch__free_unpacked(pb, NULL);
    free(buf);
    ddsketch_cleanup(&s);

    /* An empty sketch still carries its mapping and both (empty) stores. */
    ddsketch_init(&s);
    n = ddsketch_encoded_size(&s);
    buf = malloc(n);
    assert_non_null(buf);
    ddsketch_encode(&s, buf);
    pb = datadog__sketches__ddsketch__unpack(NULL, n, buf);
    assert_non_null(pb);
    assert_non_null(pb->mapping);
    assert_non_null(pb->positivevalues);
    assert_non_null(pb->negativevalues);
    assert_int_equal(pb->positivevalues->n_contiguousbincounts, 0);
    assert_true(pb->zerocount == 0);
    datadog__sketches__ddsketch__free_unpacked(pb, NULL);
    free(buf);
}

static void allocation_failure_leaves_sketch_unchanged(void **state)
{
    (void)state;
    struct ddsketch s;
    ddsketch_init(&s);
    o2d_alloc_fail_after(0);
    assert_int_equal(ddsketch_add(&s, 1000), O2D_ERR_NOMEM);
    assert_true(ddsketch_count(&s) == 0);
    o2d_alloc_fail_after(-1);
    assert_int_equal(ddsketch_add(&s, 1000), O2D_OK);
    /* Growing past the first array fails cleanly too. */
    o2d_alloc_fail_after(0);
    assert_int_equal(ddsketch_add(&s, 1e15), O2D_ERR_NOMEM);
    o2d_alloc_fail_after(-1);
    assert_true(ddsketch_count(&s) == 1);
    assert_true(fabs(ddsketch_quantile(&s, 1) - 1000) / 1000 <= 0.01);
    ddsketch_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantiles_on_known_distributions),
        cmocka_unit_test(mapping_matches_sketches_go),
        cmocka_unit_test(zero_and_tiny_values),
        cmocka_unit_test(bin_cap_collapses_lowest_bins),
        cmocka_unit_test(truncation_keeps_ten_bits),
        cmocka_unit_test(encoding_round_trips),
        cmocka_unit_test(allocation_failure_leaves_sketch_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
