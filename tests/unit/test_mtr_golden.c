/*
 * test_mtr_golden.c: walks every tests/data/metrics fixture through the OTLP metrics translator
 * (translate/metrics) twice: once with each request decoded from its OTLP/JSON, once with the
 * same request packed as protobuf and decoded from that, so both encodings must give the same
 * Datadog series and sketches. Each fixture names the rule of Datadog's translator it follows
 * (shared/reference/wave2.md §3 Metrics) and the Datadog test or testdata it follows.
 *
 * A fixture: {"rule", "follows", "config": {the Collector exporter's metrics keys},
 * "start_ns": when the collector started, "steps": [{"now_ns", "request": OTLP/JSON,
 * "expect": [lines], "dropped": {reason: count}}]}. The steps share one translator (and its
 * delta cache), in order. Each series or sketch is one line, in the batch's order:
 *   <name> <count|gauge|rate> <ts_s> <value> host=<host|-> [sorted tags]
 *   sketch <name> <ts_s> cnt= min= max= sum= avg= host= [tags] bins=<key>:<n>,...
 * numbers in their shortest round-trip form. What a resource becomes is not this folder's
 * (translate/resource): here, service.name gives the tag service:<v> and host.name the host.
 * With MTR_GOLDEN_DUMP=1 the lines each step gives are printed, to help write a fixture (they
 * must then be checked by hand against the rule).
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mtr.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "otlp.h"

static const char *attr_string(const OtlpResource *res, const char *key)
{
    for (size_t i = 0; res != NULL && i < res->n_attributes; i++) {
        const OtlpKeyValue *kv = res->attributes[i];
        if (strcmp(kv->key, key) == 0 && kv->value != NULL &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            return kv->value->string_value;
        }
    }
    return NULL;
}

static int resource_stub(void *ctx, const OtlpResource *res, struct o2d_arena *a,
                         const char *const **tags, size_t *ntags, const char **host)
{
    (void)ctx;
    *tags = NULL;
    *ntags = 0;
    *host = attr_string(res, "host.name");
    const char *svc = attr_string(res, "service.name");
    if (svc != NULL) {
        const char **t = o2d_arena_alloc(a, sizeof(*t));
        size_t n = strlen(svc) + 9;
        char *s = o2d_arena_alloc(a, n);
        if (t == NULL || s == NULL) {
            return O2D_ERR_TOO_LARGE;
        }
        snprintf(s, n, "service:%s", svc);
        t[0] = s;
        *tags = t;
        *ntags = 1;
    }
    return O2D_OK;
}

/* Integers whole, others as the shortest %g that reads back as the same double. */
static void fmt_num(struct o2d_buf *o, double v)
{
    char b[40];
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(b, sizeof(b), "%.0f", v); /* integers whole: 10, not 1e+01 */
        assert_int_equal(o2d_buf_append_str(o, b), O2D_OK);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(b, sizeof(b), "%.*g", prec, v);
        if (strtod(b, NULL) == v || isnan(v)) {
            break;
        }
    }
    assert_int_equal(o2d_buf_append_str(o, b), O2D_OK);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void fmt_tail(struct o2d_buf *o, const char *host, const char *const *tags, size_t n)
{
    o2d_buf_printf(o, " host=%s [", host != NULL ? host : "-");
    const char **s = malloc((n + 1) * sizeof(*s));
    assert_non_null(s);
    if (n > 0) {
        memcpy(s, tags, n * sizeof(*s));
    }
    qsort(s, n, sizeof(*s), cmp_str);
    for (size_t i = 0; i < n; i++) {
        o2d_buf_printf(o, "%s%s", i ? "," : "", s[i]);
    }
    o2d_buf_append_byte(o, ']');
    free(s);
}

static const char *const TYPES[] = {"unspecified", "count", "rate", "gauge"};

static char *render(const struct ddm_batch *b)
{
    struct o2d_buf o;
    o2d_buf_init(&o, 1 << 24);
    for (size_t i = 0; i < b->nseries; i++) {
        const struct ddm_series *s = &b->series[i];
        o2d_buf_printf(&o, "%s %s %lld ", s->name, TYPES[s->type], (long long)s->ts_s);
        fmt_num(&o, s->value);
        fmt_tail(&o, s->host, s->tags, s->ntags);
        o2d_buf_append_byte(&o, '\n');
    }
    for (size_t i = 0; i < b->nsketches; i++) {
        const struct ddm_sketch *s = &b->sketches[i];
        o2d_buf_printf(&o, "sketch %s %lld cnt=%lld min=", s->name, (long long)s->ts_s,
                       (long long)s->cnt);
        fmt_num(&o, s->min);
        o2d_buf_append_str(&o, " max=");
        fmt_num(&o, s->max);
        o2d_buf_append_str(&o, " sum=");
        fmt_num(&o, s->sum);
        o2d_buf_append_str(&o, " avg=");
        fmt_num(&o, s->avg);
        fmt_tail(&o, s->host, s->tags, s->ntags);
        o2d_buf_append_str(&o, " bins=");
        for (size_t j = 0; j < s->nbins; j++) {
            o2d_buf_printf(&o, "%s%d:%u", j ? "," : "", (int)s->k[j], (unsigned)s->n[j]);
        }
        o2d_buf_append_byte(&o, '\n');
    }
    o2d_buf_append_byte(&o, '\0');
    return (char *)o.data;
}

static uint64_t u64_of(json_t *v)
{
    if (json_is_integer(v)) {
        return (uint64_t)json_integer_value(v);
    }
    assert_true(json_is_string(v));
    return strtoull(json_string_value(v), NULL, 10);
}

static int pick(const char *file, json_t *cfg, const char *key, const char *const *names, int n,
                int dflt)
{
    json_t *v = json_object_get(cfg, key);
    if (v == NULL) {
        return dflt;
    }
    if (json_is_boolean(v)) {
        return json_is_true(v);
    }
    for (int i = 0; i < n; i++) {
        if (json_is_string(v) && strcmp(json_string_value(v), names[i]) == 0) {
            return i;
        }
    }
    fail_msg("%s: config %s has an unknown value", file, key);
    return dflt;
}

static void config_of(const char *file, json_t *cfg, struct mtr_config *c)
{
    static const char *const hist[] = {"distributions", "counters", "nobuckets"};
    static const char *const cumul[] = {"to_delta", "raw_value"};
    static const char *const initial[] = {"auto", "keep", "drop"};
    static const char *const summ[] = {"gauges", "noquantiles"};
    mtr_config_default(c);
    c->hist_mode = (enum mtr_hist_mode)pick(file, cfg, "histograms.mode", hist, 3, c->hist_mode);
    c->send_aggregation_metrics = pick(file, cfg, "histograms.send_aggregation_metrics", NULL, 0,
                                       c->send_aggregation_metrics);
    c->cumul_mode = (enum mtr_cumul_mode)pick(file, cfg, "sums.cumulative_monotonic_mode", cumul, 2,
                                              c->cumul_mode);
    c->initial_mode = (enum mtr_initial_mode)pick(
        file, cfg, "sums.initial_cumulative_monotonic_value", initial, 3, c->initial_mode);
    c->summary_mode =
        (enum mtr_summary_mode)pick(file, cfg, "summaries.mode", summ, 2, c->summary_mode);
    c->scope_metadata_as_tags = pick(file, cfg, "instrumentation_scope_metadata_as_tags", NULL, 0,
                                     c->scope_metadata_as_tags);
}

/* A whole token that is a number, after an optional "name=". */
static int token_num(const char *t, size_t n, size_t *name_len, double *v)
{
    const char *eq = memchr(t, '=', n);
    size_t off = eq != NULL ? (size_t)(eq - t) + 1 : 0;
    char buf[64];
    if (n - off == 0 || n - off >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, t + off, n - off);
    buf[n - off] = '\0';
    char *end;
    *v = strtod(buf, &end);
    *name_len = off;
    return *end == '\0';
}

/*
 * Lines equal token by token, numbers within a relative 1e-12: Datadog's expected values come
 * from Go's math.Pow, which is not correctly rounded (the agent sketch's bounds of far keys
 * differ from C's pow by some 1e-13), and nothing else should differ at all.
 */
static int same_output(const char *got, const char *want)
{
    while (*got != '\0' || *want != '\0') {
        size_t gn = strcspn(got, " \n"), wn = strcspn(want, " \n");
        size_t gl, wl;
        double g, w;
        if (!(gn == wn && memcmp(got, want, gn) == 0)) {
            if (!token_num(got, gn, &gl, &g) || !token_num(want, wn, &wl, &w) || gl != wl ||
                memcmp(got, want, gl) != 0 || !(fabs(g - w) <= 1e-12 * fabs(w))) {
                return 0;
            }
        }
        got += gn;
        want += wn;
        if (*got != *want) {
            return 0;
        }
        if (*got != '\0') {
            got++;
            want++;
        }
    }
    return 1;
}

/* The request of a step as the receivers would decode it, in encoding `enc`. */
static OtlpMetricsReq *decode_step(const char *file, json_t *request, enum otlp_encoding enc,
                                   struct o2d_arena *a)
{
    char *body = json_dumps(request, JSON_COMPACT);
    assert_non_null(body);
    struct otlp_request r;
    const char *reason = NULL;
    int rv = otlp_decode(a, OTLP_SIGNAL_METRICS, OTLP_ENC_JSON, (const uint8_t *)body, strlen(body),
                         &r, &reason);
    free(body);
    if (rv != O2D_OK) {
        fail_msg("%s: the request does not decode: %s", file, reason);
    }
    if (enc == OTLP_ENC_JSON) {
        return r.msg.metrics;
    }
    size_t len = protobuf_c_message_get_packed_size(&r.msg.metrics->base);
    uint8_t *pb = o2d_arena_alloc(a, len + 1);
    assert_non_null(pb);
    assert_int_equal(protobuf_c_message_pack(&r.msg.metrics->base, pb), len);
    rv = otlp_decode(a, OTLP_SIGNAL_METRICS, OTLP_ENC_PROTOBUF, pb, len, &r, &reason);
    if (rv != O2D_OK) {
        fail_msg("%s: the packed request does not decode: %s", file, reason);
    }
    return r.msg.metrics;
}

static void check_dropped(const char *file, size_t step, json_t *want, const struct mtr_result *res)
{
    for (int why = 0; why < MTR_DROP_N; why++) {
        json_t *v = json_object_get(want, mtr_drop_name((enum mtr_drop)why));
        uint64_t n = v != NULL ? u64_of(v) : 0;
        if (res->dropped[why] != n) {
            fail_msg("%s step %zu: dropped %s %llu, want %llu", file, step,
                     mtr_drop_name((enum mtr_drop)why), (unsigned long long)res->dropped[why],
                     (unsigned long long)n);
        }
    }
}

static void run_fixture(const char *file, json_t *root, enum otlp_encoding enc)
{
    struct mtr_config cfg;
    config_of(file, json_object_get(root, "config"), &cfg);
    const char *reason = NULL;
    struct mtr_translator *t = mtr_new(&cfg, u64_of(json_object_get(root, "start_ns")), &reason);
    assert_non_null(t);
    struct o2d_arena a;
    o2d_arena_init(&a, 64u << 20);
    json_t *steps = json_object_get(root, "steps");
    assert_true(json_is_array(steps) && json_array_size(steps) > 0);
    int dump = getenv("MTR_GOLDEN_DUMP") != NULL;
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step)
    {
        o2d_arena_reset(&a);
        OtlpMetricsReq *req = decode_step(file, json_object_get(step, "request"), enc, &a);
        struct mtr_result res;
        assert_int_equal(mtr_translate(t, req, u64_of(json_object_get(step, "now_ns")),
                                       resource_stub, NULL, &a, &res),
                         O2D_OK);
        char *got = render(&res.batch);
        struct o2d_buf want;
        o2d_buf_init(&want, 1 << 24);
        size_t j;
        json_t *line;
        json_array_foreach(json_object_get(step, "expect"), j, line)
        {
            o2d_buf_printf(&want, "%s\n", json_string_value(line));
        }
        o2d_buf_append_byte(&want, '\0');
        if (dump && enc == OTLP_ENC_JSON) {
            fprintf(stderr, "%s step %zu:\n%s", file, i, got);
        }
        if (!same_output(got, (const char *)want.data)) {
            fail_msg("%s step %zu (%s):\n got:\n%s want:\n%s", file, i,
                     enc == OTLP_ENC_JSON ? "json" : "protobuf", got, (const char *)want.data);
        }
        check_dropped(file, i, json_object_get(step, "dropped"), &res);
        free(got);
        o2d_buf_cleanup(&want);
    }
    o2d_arena_cleanup(&a);
    mtr_free(t);
}

static void test_fixtures(void **state)
{
    (void)state;
    DIR *dp = opendir(O2D_TEST_DATA "/metrics");
    assert_non_null(dp);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 5, ".json") != 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/metrics/%s", O2D_TEST_DATA, e->d_name);
        json_error_t err;
        json_t *root = json_load_file(path, 0, &err);
        if (root == NULL) {
            fail_msg("%s: %s (line %d)", e->d_name, err.text, err.line);
        }
        assert_true(json_is_string(json_object_get(root, "rule")));
        assert_true(json_is_string(json_object_get(root, "follows")));
        run_fixture(e->d_name, root, OTLP_ENC_JSON);
        run_fixture(e->d_name, root, OTLP_ENC_PROTOBUF);
        json_decref(root);
        n++;
    }
    closedir(dp);
    assert_true(n >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
