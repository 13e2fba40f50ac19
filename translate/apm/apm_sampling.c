/*
 * apm_sampling.c: the head-sampling probability a span's W3C `tracestate` carries, as
 * Datadog's OTLP ingest decodes it into metrics["_sample_rate"]
 * (DataDog/datadog-agent pkg/trace/transform/sampling.go samplingProbFromTracestate, with
 * its tests in sampling_test.go), over OpenTelemetry's parser
 * (open-telemetry/opentelemetry-collector-contrib pkg/sampling: w3ctracestate.go,
 * oteltracestate.go, threshold.go, common.go):
 *   - the whole tracestate must be valid W3C syntax (at most 1024 bytes, fewer than 32
 *     comma-separated members, keys and values of the W3C grammar), and its `ot` member valid
 *     OTel syntax (at most 256 bytes, `key:value` pairs separated by ';'); otherwise nothing;
 *   - `th:` (OTEP 235 threshold, 1 to 14 hex digits, trailing zeros omitted) gives
 *     probability (2^56 - T) / 2^56; an invalid `th` invalidates the whole tracestate;
 *   - otherwise the first `p:` (the older power-of-two encoding of
 *     go.opentelemetry.io/contrib/samplers/probability/consistent) gives 2^-p for p in
 *     0..62; p >= 63 ("not sampled") or a non-decimal p gives nothing.
 * The caller decides precedence (an explicit numeric `_sample_rate` attribute wins).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "apm_int.h"
#include "o2d_hex.h"

#define W3C_MAX_LEN     1024
#define W3C_MAX_MEMBERS 32 /* common.go counts items and refuses the 32nd */
#define W3C_MAX_KEY     256
#define W3C_MAX_TENANT  241
#define W3C_MAX_SYSTEM  14
#define W3C_MAX_VALUE   256
#define OTEL_MAX_LEN    256
#define TH_MAX_DIGITS   14 /* 56 bits */
#define P_NOT_SAMPLED   63

struct span_s {
    const char *p;
    size_t n;
};

static int is_lc_alpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_lc_alnum(char c)
{
    return is_lc_alpha(c) || (c >= '0' && c <= '9');
}

static int is_key_char(char c)
{
    return is_lc_alnum(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

static int key_chars_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_key_char(p[i])) {
            return 0;
        }
    }
    return 1;
}

/* simple-key / tenant-id "@" system-id, with the size limits scanKeyValues checks. */
static int w3c_key_ok(struct span_s k)
{
    if (k.n == 0 || k.n > W3C_MAX_KEY) {
        return 0;
    }
    const char *at = memchr(k.p, '@', k.n);
    if (at == NULL) {
        return is_lc_alpha(k.p[0]) && key_chars_ok(k.p + 1, k.n - 1);
    }
    size_t tn = (size_t)(at - k.p), sn = k.n - tn - 1;
    if (tn == 0 || sn == 0 || tn > W3C_MAX_TENANT || sn > W3C_MAX_SYSTEM) {
        return 0;
    }
    return is_lc_alnum(k.p[0]) && is_lc_alpha(at[1]) && key_chars_ok(k.p + 1, tn - 1) &&
           key_chars_ok(at + 2, sn - 1);
}

static int nonblank_value_char(unsigned char c)
{
    return (c >= 0x21 && c <= 0x2b) || (c >= 0x2d && c <= 0x3c) || (c >= 0x3e && c <= 0x7e);
}

static int w3c_value_ok(struct span_s v)
{
    if (v.n == 0 || v.n > W3C_MAX_VALUE || !nonblank_value_char((unsigned char)v.p[v.n - 1])) {
        return 0;
    }
    for (size_t i = 0; i + 1 < v.n; i++) {
        if (v.p[i] != ' ' && !nonblank_value_char((unsigned char)v.p[i])) {
            return 0;
        }
    }
    return 1;
}

static struct span_s trim_ows(struct span_s s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t')) {
        s.n--;
    }
    return s;
}

/* Next item of a list separated by `sep`; returns 0 when the list is exhausted. */
static int next_item(struct span_s *rest, char sep, struct span_s *item)
{
    if (rest->n == 0) {
        return 0;
    }
    const char *e = memchr(rest->p, sep, rest->n);
    size_t n = e != NULL ? (size_t)(e - rest->p) : rest->n;
    item->p = rest->p;
    item->n = n;
    rest->p += e != NULL ? n + 1 : n;
    rest->n -= e != NULL ? n + 1 : n;
    return 1;
}

/* OTel list member: key = lcalpha *(lcalpha / DIGIT), value = *([a-zA-Z0-9._-]). */
static int otel_member_ok(struct span_s m, struct span_s *key, struct span_s *val)
{
    const char *colon = memchr(m.p, ':', m.n);
    if (colon == NULL || colon == m.p) {
        return 0;
    }
    key->p = m.p;
    key->n = (size_t)(colon - m.p);
    val->p = colon + 1;
    val->n = m.n - key->n - 1;
    if (!is_lc_alpha(key->p[0])) {
        return 0;
    }
    for (size_t i = 1; i < key->n; i++) {
        if (!is_lc_alnum(key->p[i])) {
            return 0;
        }
    }
    for (size_t i = 0; i < val->n; i++) {
        char c = val->p[i];
        if (!(is_lc_alnum(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* TValueToThreshold, then Threshold.Probability. */
static int th_probability(struct span_s v, double *out)
{
    if (v.n == 0 || v.n > TH_MAX_DIGITS) {
        return 0;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < v.n; i++) {
        int d = o2d_hex_digit(v.p[i]);
        if (d < 0) {
            return 0;
        }
        t = (t << 4) | (uint64_t)d;
    }
    t <<= 4 * (TH_MAX_DIGITS - v.n);
    const uint64_t max = UINT64_C(1) << 56;
    *out = (double)(max - t) / (double)max;
    return 1;
}

/* strconv.ParseUint(v, 10, 64) for the p value: -1 when it does not parse; any value from 63
 * up, an overflow included (an error in Go), gives no probability, so it saturates there. */
static int64_t parse_p(struct span_s v)
{
    if (v.n == 0) {
        return -1;
    }
    int64_t p = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') {
            return -1;
        }
        p = p * 10 + (v.p[i] - '0');
        if (p > P_NOT_SAMPLED) {
            p = P_NOT_SAMPLED + 1;
        }
    }
    return p;
}

/* The `ot` value: 1 and *prob when it gives a probability, 0 when it gives none, -1 when it
 * is invalid (which invalidates the whole tracestate, as NewW3CTraceState's error does). */
static int otel_value(struct span_s ot, double *prob)
{
    if (ot.n > OTEL_MAX_LEN || ot.n == 0) {
        return -1;
    }
    struct span_s rest = ot, m, k, v;
    int have_th = 0, have_p = 0;
    double th_prob = 0, p_prob = 0;
    int p_done = 0;
    /* The OTel grammar has no empty members: "a:1;" or ";a:1" fail the regexp. */
    if (ot.p[0] == ';' || ot.p[ot.n - 1] == ';') {
        return -1;
    }
    while (next_item(&rest, ';', &m)) {
        if (!otel_member_ok(m, &k, &v)) {
            return -1;
        }
        if (k.n == 2 && memcmp(k.p, "th", 2) == 0) {
            if (!th_probability(v, &th_prob)) {
                return -1;
            }
            have_th = 1;
        } else if (k.n == 2 && memcmp(k.p, "rv", 2) == 0) {
            /* Randomness: does not affect the probability; an invalid rv is an error. */
            if (v.n != TH_MAX_DIGITS) {
                return -1;
            }
            for (size_t i = 0; i < v.n; i++) {
                if (o2d_hex_digit(v.p[i]) < 0) {
                    return -1;
                }
            }
        } else if (!p_done && k.n == 1 && k.p[0] == 'p') {
            /* sampling.go: the first p decides; the loop breaks on it either way. */
            p_done = 1;
            int64_t p = parse_p(v);
            if (p >= 0 && p < P_NOT_SAMPLED) {
                p_prob = p == 0 ? 1.0 : ldexp(1.0, -(int)p);
                have_p = 1;
            }
        }
    }
    if (have_th) {
        *prob = th_prob;
        return 1;
    }
    if (have_p) {
        *prob = p_prob;
        return 1;
    }
    return 0;
}

int apm_sample_rate_from_tracestate(const char *ts, size_t n, double *out)
{
    if (ts == NULL || n == 0 || n > W3C_MAX_LEN) {
        return 0;
    }
    struct span_s rest = {ts, n}, item;
    int items = 0, found = 0;
    double prob = 0;
    while (next_item(&rest, ',', &item)) {
        if (++items >= W3C_MAX_MEMBERS) {
            return 0;
        }
        item = trim_ows(item);
        if (item.n == 0) {
            continue;
        }
        const char *eq = memchr(item.p, '=', item.n);
        if (eq == NULL || eq == item.p) {
            return 0;
        }
        struct span_s k = {item.p, (size_t)(eq - item.p)};
        struct span_s v = {eq + 1, item.n - k.n - 1};
        if (!w3c_key_ok(k) || !w3c_value_ok(v)) {
            return 0;
        }
        if (k.n == 2 && memcmp(k.p, "ot", 2) == 0) {
            /* Each ot member is parsed (an invalid one fails the whole tracestate); the last
             * one is the one kept, as in NewW3CTraceState. */
            found = otel_value(v, &prob);
            if (found < 0) {
                return 0;
            }
        }
    }
    if (found != 1) {
        return 0;
    }
    *out = prob;
    return 1;
}
