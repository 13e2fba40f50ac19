/*
 * agent_sketch.c: the Datadog Agent's sketch, written from datadog-agent pkg/util/quantile:
 * config.go (NewConfig/refresh: gamma, bias, key, binLow), agent.go (Insert,
 * InsertInterpolate), store.go (insertCounts, trimLeft), bin.go (appendSafe, incrSafe),
 * sparse.go (Quantile) and summary (InsertN). Only what the OTLP metrics mapping uses: no
 * merging of two sketches, no sample rates.
 */
#include "agent_sketch.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"

#define MAX_BIN_WIDTH        UINT32_MAX
#define MAX_INTERPOLATE_KEYS (2 * AGENT_SKETCH_INF_KEY + 1)

/* refresh(eps = 1/128, min = 1e-9): gamma = 1 + 2 eps; bias puts key(min) at 1. */
static double gamma_v, gamma_ln, norm_min;
static int bias;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void config_compute(void)
{
    double eps = 2.0 / 128.0;
    gamma_v = 1 + eps;
    gamma_ln = log1p(eps);
    int emin = (int)floor(log(1e-9) / gamma_ln);
    bias = -emin + 1;
    norm_min = pow(gamma_v, 1 - bias);
}

static void config_init(void)
{
    pthread_once(&config_once, config_compute);
}

double agent_sketch_gamma(void)
{
    config_init();
    return gamma_v;
}

int32_t agent_sketch_key(double v)
{
    config_init();
    if (isnan(v)) {
        return 0;
    }
    if (v < 0) {
        return -agent_sketch_key(-v);
    }
    if (v == 0 || v < norm_min) {
        return 0;
    }
    if (isinf(v)) {
        /* Go converts RoundToEven(+Inf) to the smallest int64 on amd64, so the Agent takes its
         * "i < 1" branch: key 1 (hist/single-bucket-delta-no-min-max.json shows key -1 for
         * -Inf). Kept so that the sketches match. */
        return 1;
    }
    double l = nearbyint(log(v) / gamma_ln); /* default rounding mode: half to even */
    if (l + bias > AGENT_SKETCH_MAX_KEY) {
        return AGENT_SKETCH_INF_KEY;
    }
    int i = (int)l + bias;
    return i < 1 ? 1 : i;
}

double agent_sketch_bin_low(int32_t k)
{
    config_init();
    if (k < 0) {
        return -agent_sketch_bin_low(-k);
    }
    if (k == AGENT_SKETCH_INF_KEY) {
        return INFINITY;
    }
    if (k == 0) {
        return 0;
    }
    return pow(gamma_v, (double)(k - bias));
}

void agent_sketch_init(struct agent_sketch *s)
{
    memset(s, 0, sizeof(*s));
    config_init();
}

void agent_sketch_cleanup(struct agent_sketch *s)
{
    o2d_free(s->k);
    o2d_free(s->n);
    memset(s, 0, sizeof(*s));
}

/* summary.InsertN */
static void summary_insert_n(struct agent_sketch *s, double v, double n)
{
    if (v < s->min || s->cnt == 0) {
        s->min = v;
    }
    if (v > s->max || s->cnt == 0) {
        s->max = v;
    }
    s->cnt += (int64_t)n;
    s->sum += v * n;
    s->avg = s->avg + (v - s->avg) * n / (double)s->cnt;
}

/* A list of bins being built; bounded by the bins in and the overflow splits. */
struct binlist {
    int32_t *k;
    uint32_t *n;
    size_t len, cap;
};

static int bl_push(struct binlist *b, int32_t k, uint32_t n)
{
    if (b->len == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *nk = o2d_realloc(b->k, cap * sizeof(*nk));
        if (nk == NULL) {
            return O2D_ERR_NOMEM;
        }
        b->k = nk;
        uint32_t *nn = o2d_realloc(b->n, cap * sizeof(*nn));
        if (nn == NULL) {
            return O2D_ERR_NOMEM;
        }
        b->n = nn;
        b->cap = cap;
    }
    b->k[b->len] = k;
    b->n[b->len] = n;
    b->len++;
    return O2D_OK;
}

/* appendSafe: a count past UINT32_MAX becomes the remainder, then full bins. */
static int bl_append_safe(struct binlist *b, int32_t k, uint64_t n)
{
    if (n <= MAX_BIN_WIDTH) {
        return bl_push(b, k, (uint32_t)n);
    }
    uint32_t r = (uint32_t)(n % MAX_BIN_WIDTH);
    if (r != 0 && bl_push(b, k, r) != O2D_OK) {
        return O2D_ERR_NOMEM;
    }
    for (uint64_t i = 0; i < n / MAX_BIN_WIDTH; i++) {
        if (bl_push(b, k, MAX_BIN_WIDTH) != O2D_OK) {
            return O2D_ERR_NOMEM;
        }
    }
    return O2D_OK;
}

/* trimLeft: the lowest bins past the limit are folded into the lowest bin kept. */
static int bl_trim_left(struct binlist *b, size_t limit)
{
    if (b->len <= limit) {
        return O2D_OK;
    }
    size_t nremove = b->len - limit;
    struct binlist over = {0};
    uint64_t missing = 0;
    int rv = O2D_OK;
    for (size_t i = 0; i < nremove && rv == O2D_OK; i++) {
        missing += b->n[i];
        if (missing > MAX_BIN_WIDTH) {
            rv = bl_push(&over, b->k[i], MAX_BIN_WIDTH);
            missing -= MAX_BIN_WIDTH;
        }
    }
    if (rv == O2D_OK) {
        uint64_t room = MAX_BIN_WIDTH - (uint64_t)b->n[nremove];
        if (missing > room) {
            b->n[nremove] = MAX_BIN_WIDTH;
            rv = bl_append_safe(&over, b->k[nremove], missing - room);
        } else {
            b->n[nremove] += (uint32_t)missing;
        }
    }
    if (rv == O2D_OK) {
        /* over.len <= nremove + 1 only when counts overflowed; make room generally. */
        size_t keep = b->len - nremove, total = over.len + keep;
        struct binlist out = {0};
        for (size_t i = 0; i < over.len && rv == O2D_OK; i++) {
            rv = bl_push(&out, over.k[i], over.n[i]);
        }
        for (size_t i = 0; i < keep && rv == O2D_OK; i++) {
            rv = bl_push(&out, b->k[nremove + i], b->n[nremove + i]);
        }
        if (rv == O2D_OK && out.len == total) {
            o2d_free(b->k);
            o2d_free(b->n);
            *b = out;
        } else {
            o2d_free(out.k);
            o2d_free(out.n);
        }
    }
    o2d_free(over.k);
    o2d_free(over.n);
    return rv;
}

static int kc_cmp(const void *a, const void *b)
{
    int32_t x = ((const struct agent_sketch_kc *)a)->k, y = ((const struct agent_sketch_kc *)b)->k;
    return (x > y) - (x < y);
}

int agent_sketch_insert_counts(struct agent_sketch *s, struct agent_sketch_kc *kc, size_t nkc)
{
    if (nkc == 0) {
        return O2D_OK;
    }
    qsort(kc, nkc, sizeof(*kc), kc_cmp);
    struct binlist tmp = {0};
    size_t si = 0, ki = 0;
    int rv = O2D_OK;
    while (rv == O2D_OK && si < s->nbins && ki < nkc) {
        if (s->k[si] < kc[ki].k) {
            rv = bl_push(&tmp, s->k[si], s->n[si]);
            si++;
        } else if (s->k[si] > kc[ki].k) {
            rv = bl_append_safe(&tmp, kc[ki].k, kc[ki].n);
            ki++;
        } else {
            rv = bl_append_safe(&tmp, s->k[si], (uint64_t)s->n[si] + kc[ki].n);
            si++;
            ki++;
        }
    }
    for (; rv == O2D_OK && si < s->nbins; si++) {
        rv = bl_push(&tmp, s->k[si], s->n[si]);
    }
    for (; rv == O2D_OK && ki < nkc; ki++) {
        rv = bl_append_safe(&tmp, kc[ki].k, kc[ki].n);
    }
    if (rv == O2D_OK) {
        rv = bl_trim_left(&tmp, AGENT_SKETCH_BIN_LIMIT);
    }
    if (rv != O2D_OK) {
        o2d_free(tmp.k);
        o2d_free(tmp.n);
        return rv;
    }
    o2d_free(s->k);
    o2d_free(s->n);
    s->k = tmp.k;
    s->n = tmp.n;
    s->nbins = tmp.len;
    s->cap = tmp.cap;
    return O2D_OK;
}

int agent_sketch_insert(struct agent_sketch *s, double v)
{
    struct agent_sketch_kc kc = {agent_sketch_key(v), 1};
    summary_insert_n(s, v, 1);
    return agent_sketch_insert_counts(s, &kc, 1);
}

int agent_sketch_insert_interpolate(struct agent_sketch *s, double lower, double upper,
                                    uint64_t count, const char **reason)
{
    int32_t start = agent_sketch_key(lower), end = agent_sketch_key(upper);
    int32_t n = end - start + 1;
    if (n <= 0) {
        *reason = "explicit bucket histogram: non-monotonic boundaries";
        return O2D_ERR_INVALID;
    }
    if (n > MAX_INTERPOLATE_KEYS) {
        *reason = "explicit bucket histogram: interpolation key range too large";
        return O2D_ERR_INVALID;
    }
    /* At most one entry per key in the range: bounded by n. */
    struct agent_sketch_kc *kc = o2d_malloc((size_t)n * sizeof(*kc));
    if (kc == NULL) {
        return O2D_ERR_NOMEM;
    }
    size_t nkc = 0;
    uint64_t left = count;
    double distance = upper - lower, remainder = 0;
    int32_t si = start;
    double lower_b = agent_sketch_bin_low(si);
    for (int32_t ei = start + 1; ei <= end && left > 0; ei++) {
        double upper_b = agent_sketch_bin_low(ei);
        double fkn = ((upper_b - lower_b) / distance) * (double)count;
        if (fkn > 1) {
            remainder += fkn - trunc(fkn);
        }
        /* Go's int(fkn), clamped to what is left before converting (the Agent clamps after). */
        uint64_t kn = fkn >= 1 ? (fkn < (double)left ? (uint64_t)fkn : left) : 0;
        if (remainder > 1) {
            kn++;
            remainder--;
        }
        if (kn > 0) {
            if (kn > left) {
                kn = left;
            }
            summary_insert_n(s, lower_b, (double)kn);
            kc[nkc++] = (struct agent_sketch_kc){si, kn};
            left -= kn;
            si = ei;
            lower_b = upper_b;
        }
    }
    if (left > 0) {
        summary_insert_n(s, agent_sketch_bin_low(si), (double)left);
        kc[nkc++] = (struct agent_sketch_kc){si, left};
    }
    int rv = agent_sketch_insert_counts(s, kc, nkc);
    o2d_free(kc);
    return rv;
}

uint64_t agent_sketch_bins_count(const struct agent_sketch *s)
{
    uint64_t c = 0;
    for (size_t i = 0; i < s->nbins; i++) {
        c += s->n[i];
    }
    return c;
}

double agent_sketch_quantile(const struct agent_sketch *s, double q)
{
    uint64_t count = agent_sketch_bins_count(s);
    if (count == 0) {
        return 0;
    }
    if (q <= 0) {
        return s->min;
    }
    if (q >= 1) {
        return s->max;
    }
    double want = nearbyint(q * (double)(count - 1)), n = 0;
    for (size_t i = 0; i < s->nbins; i++) {
        n += s->n[i];
        if (n <= want) {
            continue;
        }
        double weight = (n - want) / s->n[i];
        double lo = agent_sketch_bin_low(s->k[i]), hi = lo * gamma_v;
        if (i == 0) {
            lo = s->min;
        }
        return lo * weight + hi * (1 - weight);
    }
    return s->max;
}
