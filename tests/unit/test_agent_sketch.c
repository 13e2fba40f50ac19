/*
 * test_agent_sketch.c: the agent sketch (translate/metrics/agent_sketch.c) against
 * datadog-agent pkg/util/quantile: keys, quantiles within the sketch's relative accuracy, the
 * interpolation of a bucket, the bin limit, and hist/single-bucket-delta-no-min-max.json's key
 * for an infinite bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>

#include <cmocka.h>

#include "agent_sketch.h"
#include "o2d.h"

/* Half a bin either way: gamma = 1 + 1/64, so within about 1/128 relative. */
static void assert_close(double got, double want)
{
    double tol = fabs(want) * (agent_sketch_gamma() - 1) + 1e-9;
    if (fabs(got - want) > tol) {
        fail_msg("got %.17g, want %.17g (+-%g)", got, want, tol);
    }
}

static void test_keys(void **state)
{
    (void)state;
    assert_int_equal(agent_sketch_key(0), 0);
    assert_int_equal(agent_sketch_key(1e-10), 0);
    assert_int_equal(agent_sketch_key(1e-9), 1);
    assert_int_equal(agent_sketch_key(-1e-9), -1);
    /* hist/single-bucket-delta-no-min-max.json: -Inf lands on key -1 */
    assert_int_equal(agent_sketch_key(-INFINITY), -1);
    assert_int_equal(agent_sketch_key(INFINITY), 1);
    assert_int_equal(agent_sketch_key(1e300), AGENT_SKETCH_INF_KEY);
    /* key(binLow(k)) == k (RoundToEven) */
    for (int32_t k = 1; k < 3000; k += 7) {
        assert_int_equal(agent_sketch_key(agent_sketch_bin_low(k)), k);
    }
    /* the Summary of single-bucket-delta-no-min-max.json: min = max = -binLow(1); Go's
     * math.Pow is not correctly rounded, so the last digits differ (relative 1e-14) */
    assert_true(fabs(agent_sketch_bin_low(1) / 9.941854089121368e-10 - 1) < 1e-12);
}

static void test_quantiles_within_accuracy(void **state)
{
    (void)state;
    struct agent_sketch s;
    agent_sketch_init(&s);
    for (int i = 1; i <= 10000; i++) {
        assert_int_equal(agent_sketch_insert(&s, (double)i), O2D_OK);
    }
    assert_int_equal(s.cnt, 10000);
    assert_true(s.min == 1 && s.max == 10000);
    assert_true(fabs(s.sum - 50005000.0) < 1e-6);
    const double qs[] = {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double want = nearbyint(qs[i] * 9999) + 1;
        assert_close(agent_sketch_quantile(&s, qs[i]), want);
    }
    agent_sketch_cleanup(&s);

    /* negative values too */
    agent_sketch_init(&s);
    for (int i = -500; i <= 500; i++) {
        assert_int_equal(agent_sketch_insert(&s, (double)i * 0.37), O2D_OK);
    }
    assert_close(agent_sketch_quantile(&s, 0.1), -400 * 0.37);
    assert_close(agent_sketch_quantile(&s, 0.9), 400 * 0.37);
    agent_sketch_cleanup(&s);
}

static void test_interpolate(void **state)
{
    (void)state;
    struct agent_sketch s;
    const char *why;
    agent_sketch_init(&s);
    /* 1000 values spread evenly over (100, 200]: the median near 150 */
    assert_int_equal(agent_sketch_insert_interpolate(&s, 100, 200, 1000, &why), O2D_OK);
    assert_int_equal(agent_sketch_bins_count(&s), 1000);
    assert_int_equal(s.cnt, 1000);
    double med = agent_sketch_quantile(&s, 0.5);
    assert_true(med > 145 && med < 155);
    /* a one-key bucket keeps its whole count on that key */
    assert_int_equal(agent_sketch_insert_interpolate(&s, 5, 5, 7, &why), O2D_OK);
    assert_int_equal(agent_sketch_bins_count(&s), 1007);
    /* bounds out of order */
    assert_int_equal(agent_sketch_insert_interpolate(&s, 10, 1, 3, &why), O2D_ERR_INVALID);
    assert_string_equal(why, "explicit bucket histogram: non-monotonic boundaries");
    agent_sketch_cleanup(&s);
}

static void test_bin_limit_and_overflow(void **state)
{
    (void)state;
    struct agent_sketch s;
    agent_sketch_init(&s);
    /* 6000 distinct keys: the lowest ones fold into the lowest kept bin */
    for (int i = 0; i < 6000; i++) {
        assert_int_equal(agent_sketch_insert(&s, pow(agent_sketch_gamma(), i) * 1e-6), O2D_OK);
    }
    assert_int_equal(s.nbins, AGENT_SKETCH_BIN_LIMIT);
    assert_int_equal(agent_sketch_bins_count(&s), 6000);
    for (size_t i = 1; i < s.nbins; i++) {
        assert_true(s.k[i - 1] < s.k[i]);
    }
    agent_sketch_cleanup(&s);

    /* a count past UINT32_MAX is split into several bins of the same key */
    agent_sketch_init(&s);
    struct agent_sketch_kc kc = {5, (uint64_t)UINT32_MAX + 10};
    assert_int_equal(agent_sketch_insert_counts(&s, &kc, 1), O2D_OK);
    assert_int_equal(s.nbins, 2);
    assert_int_equal(s.n[0], 10);
    assert_int_equal(s.n[1], UINT32_MAX);
    agent_sketch_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_quantiles_within_accuracy),
        cmocka_unit_test(test_interpolate),
        cmocka_unit_test(test_bin_limit_and_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
