/*
 * test_redact.c: translate/redact. Walks tests/data/redact/patterns (one file per built-in
 * pattern: each case's input redacted with that pattern alone, against the expected text,
 * look-alikes that must stay included) and tests/data/redact/requests (an OTLP/JSON request
 * decoded, redacted with the fixture's rules, and a compact view of its attributes and
 * bodies compared with "expect"); then the hostile cases: patterns that do not compile, a
 * catastrophic-backtracking pattern bounded by the match limit, 1 MB values, invalid UTF-8,
 * and the Luhn check.
 *
 * REDACT_GOLDEN_DUMP=1 prints each request fixture's view (to write a new one; check it by
 * hand against the rule it illustrates).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "o2d.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "redact.h"

/* ---- rules from a fixture's JSON ---- */

static void list_from(json_t *o, const char *name, const char **dst, size_t *n)
{
    json_t *a = json_object_get(o, name);
    size_t i;
    json_t *e;
    *n = 0;
    json_array_foreach(a, i, e)
    {
        dst[(*n)++] = json_string_value(e);
    }
}

static struct redact_rules *rules_from(json_t *o)
{
    struct redact_config c = {0};
    c.allow_all_keys = json_object_get(o, "allow_all_keys") == NULL ||
                       json_is_true(json_object_get(o, "allow_all_keys"));
    list_from(o, "allowed_keys", c.allowed_keys, &c.n_allowed_keys);
    list_from(o, "ignored_keys", c.ignored_keys, &c.n_ignored_keys);
    list_from(o, "blocked_key_patterns", c.blocked_key_patterns, &c.n_blocked_key_patterns);
    list_from(o, "blocked_values", c.blocked_values, &c.n_blocked_values);
    list_from(o, "allowed_values", c.allowed_values, &c.n_allowed_values);
    list_from(o, "patterns", c.patterns, &c.n_patterns);
    c.drop_message_contents = json_is_true(json_object_get(o, "drop_message_contents"));
    const char *s = json_string_value(json_object_get(o, "summary"));
    c.summary = s == NULL                 ? REDACT_SUMMARY_SILENT
                : strcmp(s, "debug") == 0 ? REDACT_SUMMARY_DEBUG
                : strcmp(s, "info") == 0  ? REDACT_SUMMARY_INFO
                                          : REDACT_SUMMARY_SILENT;
    s = json_string_value(json_object_get(o, "hash_function"));
    c.hash =
        s != NULL && strcmp(s, "hmac-sha256") == 0 ? REDACT_HASH_HMAC_SHA256 : REDACT_HASH_NONE;
    c.hmac_key = json_string_value(json_object_get(o, "hmac_key"));
    struct redact_rules *r = NULL;
    char err[512];
    if (redact_rules_new(&r, &c, err, sizeof(err)) != O2D_OK) {
        fail_msg("rules: %s", err);
    }
    return r;
}

/* ---- patterns ---- */

static void run_pattern_file(const char *path)
{
    json_error_t jerr;
    json_t *fx = json_load_file(path, 0, &jerr);
    if (fx == NULL) {
        fail_msg("%s: %s", path, jerr.text);
    }
    assert_non_null(json_object_get(fx, "follows"));
    const char *name = json_string_value(json_object_get(fx, "pattern"));
    assert_true(redact_builtin_known(name));
    json_t *rj = json_pack("{s:b, s:[s]}", "allow_all_keys", 1, "patterns", name);
    struct redact_rules *r = rules_from(rj);
    struct o2d_arena a;
    o2d_arena_init(&a, 1 << 20);
    size_t i;
    json_t *c;
    int positives = 0, negatives = 0;
    json_array_foreach(json_object_get(fx, "cases"), i, c)
    {
        const char *in = json_string_value(json_array_get(c, 0));
        const char *want = json_string_value(json_array_get(c, 1));
        const char *got;
        assert_int_equal(redact_text(r, &a, NULL, in, &got), O2D_OK);
        if (strcmp(got, want) != 0) {
            fail_msg("%s case %zu: '%s' gave '%s', want '%s'", path, i, in, got, want);
        }
        if (strcmp(in, want) == 0) {
            negatives++;
        } else {
            positives++;
        }
    }
    /* every pattern has both kinds */
    assert_true(positives > 0 && negatives > 0);
    /* the counter counts what was replaced */
    assert_true(redact_counter_value(r, 0) >= (uint64_t)positives);
    o2d_arena_cleanup(&a);
    redact_rules_free(r);
    json_decref(rj);
    json_decref(fx);
}

static int n_files(const char *dir, void (*fn)(const char *))
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        fn(path);
        n++;
    }
    closedir(d);
    return n;
}

static void test_builtin_patterns(void **state)
{
    (void)state;
    int n = n_files(O2D_TEST_DATA "/redact/patterns", run_pattern_file);
    /* one file per built-in */
    size_t builtins = 0;
    while (redact_builtin_name(builtins) != NULL) {
        builtins++;
    }
    assert_int_equal(n, (int)builtins);
}

/* ---- requests ---- */

static json_t *any_json(const OtlpAnyValue *v)
{
    if (v == NULL) {
        return json_null();
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return json_string_nocheck(v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return json_integer(v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return json_boolean(v->bool_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return json_real(v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            json_array_append_new(a, any_json(v->array_value->values[i]));
        }
        return a;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            json_object_set_new(o, v->kvlist_value->values[i]->key,
                                any_json(v->kvlist_value->values[i]->value));
        }
        return o;
    }
    default:
        return json_null();
    }
}

static json_t *attrs_json(OtlpKeyValue **kvs, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(o, kvs[i]->key, any_json(kvs[i]->value));
    }
    return o;
}

static json_t *view(const struct otlp_request *req)
{
    json_t *out = json_array();
    if (req->signal == OTLP_SIGNAL_TRACES) {
        for (size_t i = 0; i < req->msg.traces->n_resource_spans; i++) {
            OtlpResourceSpans *rs = req->msg.traces->resource_spans[i];
            json_t *spans = json_array();
            for (size_t j = 0; j < rs->n_scope_spans; j++) {
                for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                    OtlpSpan *sp = rs->scope_spans[j]->spans[k];
                    json_t *evs = json_array();
                    for (size_t e = 0; e < sp->n_events; e++) {
                        json_array_append_new(
                            evs, json_pack("{s:s, s:o}", "name", sp->events[e]->name, "attributes",
                                           attrs_json(sp->events[e]->attributes,
                                                      sp->events[e]->n_attributes)));
                    }
                    json_array_append_new(spans,
                                          json_pack("{s:o, s:o}", "attributes",
                                                    attrs_json(sp->attributes, sp->n_attributes),
                                                    "events", evs));
                }
            }
            json_array_append_new(out,
                                  json_pack("{s:o, s:o}", "resource",
                                            rs->resource ? attrs_json(rs->resource->attributes,
                                                                      rs->resource->n_attributes)
                                                         : json_object(),
                                            "spans", spans));
        }
    } else if (req->signal == OTLP_SIGNAL_LOGS) {
        for (size_t i = 0; i < req->msg.logs->n_resource_logs; i++) {
            OtlpResourceLogs *rl = req->msg.logs->resource_logs[i];
            json_t *recs = json_array();
            for (size_t j = 0; j < rl->n_scope_logs; j++) {
                for (size_t k = 0; k < rl->scope_logs[j]->n_log_records; k++) {
                    OtlpLogRecord *lr = rl->scope_logs[j]->log_records[k];
                    json_array_append_new(recs,
                                          json_pack("{s:o, s:o}", "attributes",
                                                    attrs_json(lr->attributes, lr->n_attributes),
                                                    "body", any_json(lr->body)));
                }
            }
            json_array_append_new(out,
                                  json_pack("{s:o, s:o}", "resource",
                                            rl->resource ? attrs_json(rl->resource->attributes,
                                                                      rl->resource->n_attributes)
                                                         : json_object(),
                                            "records", recs));
        }
    } else {
        for (size_t i = 0; i < req->msg.metrics->n_resource_metrics; i++) {
            OtlpResourceMetrics *rm = req->msg.metrics->resource_metrics[i];
            json_t *pts = json_array();
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                    OtlpMetric *m = rm->scope_metrics[j]->metrics[k];
                    if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE) {
                        for (size_t p = 0; p < m->gauge->n_data_points; p++) {
                            json_array_append_new(
                                pts, attrs_json(m->gauge->data_points[p]->attributes,
                                                m->gauge->data_points[p]->n_attributes));
                        }
                    }
                }
            }
            json_array_append_new(out, json_pack("{s:o}", "points", pts));
        }
    }
    return out;
}

static void run_request_file(const char *path)
{
    json_error_t jerr;
    json_t *fx = json_load_file(path, 0, &jerr);
    if (fx == NULL) {
        fail_msg("%s: %s", path, jerr.text);
    }
    assert_non_null(json_object_get(fx, "follows"));
    const char *sig = json_string_value(json_object_get(fx, "signal"));
    enum otlp_signal s = strcmp(sig, "traces") == 0 ? OTLP_SIGNAL_TRACES
                         : strcmp(sig, "logs") == 0 ? OTLP_SIGNAL_LOGS
                                                    : OTLP_SIGNAL_METRICS;
    struct redact_rules *r = rules_from(json_object_get(fx, "rules"));
    char *body = json_dumps(json_object_get(fx, "input"), JSON_COMPACT);
    struct o2d_arena a;
    o2d_arena_init(&a, 16 << 20);
    struct otlp_request req;
    const char *reason = NULL;
    int rv = otlp_decode(&a, s, OTLP_ENC_JSON, (const uint8_t *)body, strlen(body), &req, &reason);
    if (rv != O2D_OK) {
        fail_msg("%s: input: %s", path, reason);
    }
    assert_int_equal(redact_request(r, &req), O2D_OK);
    json_t *got = view(&req);
    if (getenv("REDACT_GOLDEN_DUMP") != NULL) {
        char *d = json_dumps(got, JSON_INDENT(2));
        printf("%s:\n%s\n", path, d);
        free(d);
    }
    if (!json_equal(got, json_object_get(fx, "expect"))) {
        char *g = json_dumps(got, JSON_COMPACT);
        char *w = json_dumps(json_object_get(fx, "expect"), JSON_COMPACT);
        fail_msg("%s:\n got  %s\n want %s", path, g, w);
    }
    json_decref(got);
    free(body);
    o2d_arena_cleanup(&a);
    redact_rules_free(r);
    json_decref(fx);
}

static void test_request_fixtures(void **state)
{
    (void)state;
    assert_true(n_files(O2D_TEST_DATA "/redact/requests", run_request_file) >= 6);
}

/* ---- hostile and edge cases ---- */

static int try_compile(struct redact_config *c, char *err, size_t errlen)
{
    struct redact_rules *r = NULL;
    int rv = redact_rules_new(&r, c, err, errlen);
    redact_rules_free(r);
    return rv;
}

static void test_bad_patterns_refused(void **state)
{
    (void)state;
    char err[512];
    struct redact_config c = {.allow_all_keys = 1, .n_blocked_values = 2};
    c.blocked_values[0] = "ok[0-9]+";
    c.blocked_values[1] = "(unclosed";
    assert_int_equal(try_compile(&c, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "blocked_values[1]"));
    assert_non_null(strstr(err, "offset 9"));

    struct redact_config k = {.allow_all_keys = 1, .n_blocked_key_patterns = 1};
    k.blocked_key_patterns[0] = "a{2,1}";
    assert_int_equal(try_compile(&k, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "blocked_key_patterns[0]"));

    struct redact_config p = {.allow_all_keys = 1, .n_patterns = 1};
    p.patterns[0] = "emial";
    assert_int_equal(try_compile(&p, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "unknown pattern 'emial'"));
    assert_non_null(strstr(err, "email"));

    struct redact_config h = {.allow_all_keys = 1, .hash = REDACT_HASH_HMAC_SHA256};
    assert_int_equal(try_compile(&h, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "hmac_key"));
}

/* (a+)+$ on "aaaa...b" backtracks exponentially: the match limit stops it, and the value is
 * treated as matched (fail closed). */
static void test_catastrophic_pattern_bounded(void **state)
{
    (void)state;
    struct redact_config c = {.allow_all_keys = 1, .n_blocked_values = 1, .match_limit = 10000};
    c.blocked_values[0] = "^(a+)+$";
    struct redact_rules *r = NULL;
    char err[256];
    assert_int_equal(redact_rules_new(&r, &c, err, sizeof(err)), O2D_OK);
    char in[4096];
    memset(in, 'a', sizeof(in) - 2);
    in[sizeof(in) - 2] = 'b';
    in[sizeof(in) - 1] = '\0';
    struct o2d_arena a;
    o2d_arena_init(&a, 1 << 20);
    const char *out;
    /* no timing assertion: without the limit this would not finish in a lifetime */
    assert_int_equal(redact_text(r, &a, NULL, in, &out), O2D_OK);
    assert_string_equal(out, "****");
    /* a plain non-matching value is left */
    assert_int_equal(redact_text(r, &a, NULL, "bbb", &out), O2D_OK);
    assert_string_equal(out, "bbb");
    o2d_arena_cleanup(&a);
    redact_rules_free(r);
}

static struct redact_rules *builtins_rules(void)
{
    struct redact_config c = {.allow_all_keys = 1};
    for (size_t i = 0; redact_builtin_name(i) != NULL; i++) {
        c.patterns[c.n_patterns++] = redact_builtin_name(i);
    }
    struct redact_rules *r = NULL;
    char err[256];
    assert_int_equal(redact_rules_new(&r, &c, err, sizeof(err)), O2D_OK);
    return r;
}

static void test_one_megabyte_value(void **state)
{
    (void)state;
    struct redact_rules *r = builtins_rules();
    size_t n = 1 << 20;
    char *in = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        in[i] = "lorem ipsum 12 dolor: sit.amet "[i % 31];
    }
    memcpy(in + n / 2, " bob@example.com ", 17);
    in[n] = '\0';
    struct o2d_arena a;
    o2d_arena_init(&a, 8 << 20);
    const char *out;
    assert_int_equal(redact_text(r, &a, NULL, in, &out), O2D_OK);
    assert_non_null(strstr(out, "[REDACTED:email]"));
    assert_null(strstr(out, "bob@example.com"));
    assert_int_equal(strlen(out), n - strlen("bob@example.com") + strlen("[REDACTED:email]"));
    o2d_arena_cleanup(&a);
    free(in);
    redact_rules_free(r);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    struct redact_config c = {.allow_all_keys = 1, .n_blocked_values = 1, .n_patterns = 1};
    c.blocked_values[0] = "s[eé]cret";
    c.patterns[0] = "email";
    struct redact_rules *r = NULL;
    char err[256];
    assert_int_equal(redact_rules_new(&r, &c, err, sizeof(err)), O2D_OK);
    struct o2d_arena a;
    o2d_arena_init(&a, 1 << 20);
    const char *out;
    assert_int_equal(redact_text(r, &a, NULL,
                                 "\xff\xfe s\xc3\xa9"
                                 "cret \xc3 x@y.com \x80",
                                 &out),
                     O2D_OK);
    assert_string_equal(out, "\xff\xfe **** \xc3 [REDACTED:email] \x80");
    /* invalid UTF-8 in a message value: not JSON for the reader, redacted as text */
    assert_int_equal(
        redact_text(r, &a, "gen_ai.input.messages", "[{\"content\":\"\xff x@y.com\"}]", &out),
        O2D_OK);
    assert_string_equal(out, "[{\"content\":\"\xff [REDACTED:email]\"}]");
    o2d_arena_cleanup(&a);
    redact_rules_free(r);
}

static void test_json_escapes_seen(void **state)
{
    (void)state;
    struct redact_rules *r = builtins_rules();
    struct o2d_arena a;
    o2d_arena_init(&a, 1 << 20);
    const char *out;
    /* '@' written as \u0040 is still an address once the JSON is read */
    assert_int_equal(redact_text(r, &a, "gen_ai.input.messages",
                                 "[{\"role\":\"user\",\"content\":\"mail jo\\u0040ex.com\"}]",
                                 &out),
                     O2D_OK);
    assert_string_equal(out, "[{\"role\":\"user\",\"content\":\"mail [REDACTED:email]\"}]");
    /* nothing to redact: the text is kept as it was written, not re-serialized */
    const char *same = "[ {\"role\": \"user\", \"content\": \"hi\"} ]";
    assert_int_equal(redact_text(r, &a, "gen_ai.input.messages", same, &out), O2D_OK);
    assert_ptr_equal(out, same);
    o2d_arena_cleanup(&a);
    redact_rules_free(r);
}

static void test_luhn(void **state)
{
    (void)state;
    assert_true(redact_luhn_ok("79927398713", 11));
    assert_false(redact_luhn_ok("79927398710", 11));
    assert_true(redact_luhn_ok("4111 1111 1111 1111", 19));
    assert_false(redact_luhn_ok("", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_patterns),
        cmocka_unit_test(test_request_fixtures),
        cmocka_unit_test(test_bad_patterns_refused),
        cmocka_unit_test(test_catastrophic_pattern_bounded),
        cmocka_unit_test(test_one_megabyte_value),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_json_escapes_seen),
        cmocka_unit_test(test_luhn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
