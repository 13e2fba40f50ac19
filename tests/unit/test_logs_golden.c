/*
 * test_logs_golden.c: walks every tests/data/logs fixture: decodes "input" (OTLP/JSON logs)
 * with otlp_decode, translates it with logs_translate (otel_source "test" as Datadog's
 * TestTranslator, ddsource otlp_log_ingestion, or the fixture's "config") and compares each
 * log object with the fixture's "expect" entry as JSON (json_equal), in order. Each fixture
 * names in "follows" the Datadog test or code it follows.
 *
 * LOGS_GOLDEN_DUMP=1 prints what each fixture gives, to help write a new one (the output must
 * be checked by hand against the rule it illustrates); LOGS_GOLDEN_ONLY=<substring> runs only
 * matching fixtures.
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

#include "logs.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "otlp.h"

struct got {
    json_t *arr;
};

static int collect(void *ctx, const uint8_t *json, size_t len)
{
    struct got *g = ctx;
    json_error_t err;
    json_t *j = json_loadb((const char *)json, len, 0, &err);
    if (j == NULL) {
        fail_msg("not JSON: %s: %.*s", err.text, (int)(len < 400 ? len : 400), json);
    }
    json_array_append_new(g->arr, j);
    return O2D_OK;
}

static int skip_marked(const OtlpLogRecord *r)
{
    return r->event_name != NULL && strcmp(r->event_name, "skip.me") == 0;
}

static void run_fixture(const char *path)
{
    json_error_t err;
    json_t *fx = json_load_file(path, 0, &err);
    if (fx == NULL) {
        fail_msg("%s: %s (line %d)", path, err.text, err.line);
    }
    assert_non_null(json_object_get(fx, "follows"));
    json_t *cfgj = json_object_get(fx, "config");
    struct logs_config cfg = {
        .ddsource = "otlp_log_ingestion",
        .otel_source = "test",
        .max_entry_bytes = LOGS_MAX_ENTRY_BYTES,
    };
    if (cfgj != NULL && json_object_get(cfgj, "max_entry_bytes") != NULL) {
        cfg.max_entry_bytes = (size_t)json_integer_value(json_object_get(cfgj, "max_entry_bytes"));
    }
    if (cfgj != NULL && json_is_true(json_object_get(cfgj, "skip_marked"))) {
        cfg.skip = skip_marked;
    }
    char *text = json_dumps(json_object_get(fx, "input"), JSON_COMPACT);
    struct o2d_arena a;
    o2d_arena_init(&a, 64u << 20);
    struct otlp_request req;
    const char *reason = NULL;
    int rv = otlp_decode(&a, OTLP_SIGNAL_LOGS, OTLP_ENC_JSON, (const uint8_t *)text, strlen(text),
                         &req, &reason);
    if (rv != O2D_OK) {
        fail_msg("%s: otlp_decode: %s", path, reason != NULL ? reason : "?");
    }
    struct logs_builder *b;
    assert_int_equal(logs_builder_new(&b, 8u << 20), O2D_OK);
    struct got g = {json_array()};
    struct logs_counts c = {0};
    assert_int_equal(logs_translate(b, &a, req.msg.logs, &cfg, collect, &g, &c), O2D_OK);
    if (getenv("LOGS_GOLDEN_DUMP") != NULL) {
        char *s = json_dumps(g.arr, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("== %s\n%s\n", path, s);
        free(s);
    }
    json_t *want = json_object_get(fx, "expect");
    if (!json_equal(want, g.arr)) {
        char *s = json_dumps(g.arr, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s: got %s", path, s);
    }
    json_t *counts = json_object_get(fx, "counts");
    if (counts != NULL) {
        assert_int_equal(c.truncated, json_integer_value(json_object_get(counts, "truncated")));
        assert_int_equal(c.skipped, json_integer_value(json_object_get(counts, "skipped")));
        assert_int_equal(c.too_large, json_integer_value(json_object_get(counts, "too_large")));
    }
    json_decref(g.arr);
    logs_builder_free(b);
    o2d_arena_cleanup(&a);
    free(text);
    json_decref(fx);
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *dir = O2D_TEST_DATA "/logs";
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    assert_true(n >= 20);
    const char *only = getenv("LOGS_GOLDEN_ONLY");
    for (size_t i = 0; i < n; i++) {
        if (only == NULL || strstr(names[i], only) != NULL) {
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            run_fixture(path);
        }
        free(names[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
