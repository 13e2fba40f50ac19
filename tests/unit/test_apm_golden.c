/*
 * test_apm_golden.c: walks every tests/data/apm fixture and checks apm_translate() directly against
 * each fixture's "expect" (the same fixtures tests/e2e/test_apm_golden.py runs through
 * `otel2dd translate`). With APM_GOLDEN_DUMP=1 it prints what each fixture translates to,
 * to help write a new fixture (the output must be checked by hand against the rule). The
 * clock passed in is the fixture's "now".
 *
 * Matching: objects in "expect" are subsets of the output, except meta, metrics and tags,
 * which must match exactly; arrays match element by element and in length. Numbers compare
 * as numbers, whether the output writes them as JSON numbers or as decimal strings.
 */
#include <dirent.h>
#include <math.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "apm.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "otlp.h"
#include "pb_json.h"

#define MAX_CFG 16

static int exact_key(const char *k)
{
    return strcmp(k, "meta") == 0 || strcmp(k, "metrics") == 0 || strcmp(k, "tags") == 0;
}

static int num_of(const json_t *j, double *d)
{
    if (json_is_number(j)) {
        *d = json_number_value(j);
        return 1;
    }
    if (json_is_string(j)) {
        char *end;
        *d = strtod(json_string_value(j), &end);
        return *end == '\0' && json_string_length(j) > 0;
    }
    return 0;
}

static int match(const json_t *exp, const json_t *got, int exact, char *path, size_t pathsz)
{
    double a, b;
    if (json_is_number(exp)) {
        if (!num_of(got, &b)) {
            return 0;
        }
        a = json_number_value(exp);
        return a == b || fabs(a - b) <= 1e-9 * fabs(a);
    }
    if (json_is_object(exp)) {
        if (!json_is_object(got)) {
            return 0;
        }
        const char *k;
        json_t *v;
        size_t base = strlen(path);
        json_object_foreach((json_t *)exp, k, v)
        {
            snprintf(path + base, pathsz - base, ".%s", k);
            json_t *g = json_object_get(got, k);
            if (g == NULL || !match(v, g, exact_key(k), path, pathsz)) {
                return 0;
            }
        }
        path[base] = '\0';
        if (exact) {
            json_object_foreach((json_t *)got, k, v)
            {
                if (json_object_get(exp, k) == NULL) {
                    snprintf(path + base, pathsz - base, ".%s (unexpected)", k);
                    return 0;
                }
            }
        }
        return 1;
    }
    if (json_is_array(exp)) {
        if (!json_is_array(got) || json_array_size(exp) != json_array_size(got)) {
            return 0;
        }
        size_t base = strlen(path);
        for (size_t i = 0; i < json_array_size(exp); i++) {
            snprintf(path + base, pathsz - base, "[%zu]", i);
            if (!match(json_array_get(exp, i), json_array_get(got, i), 0, path, pathsz)) {
                return 0;
            }
        }
        path[base] = '\0';
        return 1;
    }
    return json_equal((json_t *)exp, (json_t *)got);
}

static json_t *translate_fixture(json_t *fx, size_t *ignored)
{
    json_t *cfgj = json_object_get(fx, "config");
    struct apm_config cfg = {0};
    struct apm_remap remaps[MAX_CFG];
    regex_t regs[MAX_CFG];
    size_t nregs = 0;
    struct apm_tag tags[MAX_CFG];
    char tagkeys[MAX_CFG][201];
    size_t ntags = 0;
    if (cfgj != NULL) {
        cfg.span_name_as_resource_name =
            json_is_true(json_object_get(cfgj, "span_name_as_resource_name"));
        cfg.compute_top_level_by_span_kind =
            json_is_true(json_object_get(cfgj, "compute_top_level_by_span_kind"));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(cfgj, "span_name_remappings"), k, v)
        {
            remaps[cfg.n_remappings].from = k;
            remaps[cfg.n_remappings++].to = json_string_value(v);
        }
        cfg.remappings = remaps;
        size_t i;
        json_array_foreach(json_object_get(cfgj, "ignore_resources"), i, v)
        {
            assert_int_equal(
                regcomp(&regs[nregs++], json_string_value(v), REG_EXTENDED | REG_NOSUB), 0);
        }
        cfg.ignore_resources = regs;
        cfg.n_ignore_resources = nregs;
        cfg.default_service = json_string_value(json_object_get(cfgj, "DD_SERVICE"));
        cfg.default_env = json_string_value(json_object_get(cfgj, "DD_ENV"));
        cfg.default_version = json_string_value(json_object_get(cfgj, "DD_VERSION"));
        /* "tags": DD_TAGS already split into "key:value" pairs */
        json_array_foreach(json_object_get(cfgj, "tags"), i, v)
        {
            const char *kv = json_string_value(v);
            size_t klen = strcspn(kv, ":");
            assert_true(ntags < MAX_CFG && klen < sizeof(tagkeys[0]));
            memcpy(tagkeys[ntags], kv, klen);
            tagkeys[ntags][klen] = '\0';
            tags[ntags].key = tagkeys[ntags];
            tags[ntags++].value = kv[klen] == ':' ? kv + klen + 1 : "";
        }
        cfg.tags = tags;
        cfg.n_tags = ntags;
    }
    /* The wall clock apm_translate is given: the fixture's "now" (ns, a string), or a second
     * after the fixtures' usual start; fixed, so that the goldens stay deterministic. */
    int64_t now_ns = INT64_C(1700000001000000000);
    json_t *nowj = json_object_get(fx, "now");
    if (nowj != NULL) {
        assert_true(json_is_string(nowj));
        now_ns = strtoll(json_string_value(nowj), NULL, 10);
    }
    char *text = json_dumps(json_object_get(fx, "input"), JSON_COMPACT);
    struct o2d_arena a;
    o2d_arena_init(&a, 256u << 20);
    void *msg = NULL;
    const char *reason = NULL;
    assert_int_equal(otlp_json_decode(&a, OTLP_SIGNAL_TRACES, (const uint8_t *)text, strlen(text),
                                      &msg, &reason),
                     O2D_OK);
    struct apm_result res;
    assert_int_equal(apm_translate(&a, msg, &cfg, now_ns, &res, &reason), O2D_OK);
    *ignored = res.ignored;
    struct o2d_buf b;
    o2d_buf_init(&b, 256u << 20);
    assert_int_equal(o2d_buf_append_str(&b, "["), O2D_OK);
    for (size_t i = 0; i < res.n_payloads; i++) {
        if (i > 0) {
            o2d_buf_append_byte(&b, ',');
        }
        assert_int_equal(pb_json_print(&b, &res.payloads[i]->base), O2D_OK);
    }
    o2d_buf_append_byte(&b, ']');
    json_error_t jerr;
    json_t *out = json_loadb((const char *)b.data, b.len, 0, &jerr);
    assert_non_null(out);
    o2d_buf_cleanup(&b);
    o2d_arena_cleanup(&a);
    free(text);
    for (size_t i = 0; i < nregs; i++) {
        regfree(&regs[i]);
    }
    return out;
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *dir = O2D_TEST_DATA "/apm";
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n > 0);
    int checked = 0, failed = 0;
    int dump = getenv("APM_GOLDEN_DUMP") != NULL;
    const char *only = getenv("APM_GOLDEN_ONLY");
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        size_t len = strlen(name);
        if (len < 6 || strcmp(name + len - 5, ".json") != 0 ||
            (only != NULL && strstr(name, only) == NULL)) {
            free(ents[i]);
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        json_error_t jerr;
        json_t *fx = json_load_file(path, 0, &jerr);
        if (fx == NULL) {
            fprintf(stderr, "%s: %s\n", name, jerr.text);
            failed++;
            free(ents[i]);
            continue;
        }
        size_t ignored = 0;
        json_t *got = translate_fixture(fx, &ignored);
        json_t *exp = json_object_get(fx, "expect");
        if (dump) {
            char *s = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
            printf("== %s (ignored %zu)\n%s\n", name, ignored, s);
            free(s);
        } else {
            char where[1024] = "";
            json_t *payloads = json_object_get(exp, "payloads");
            json_t *want_ignored = json_object_get(exp, "ignored");
            int ok = payloads != NULL && match(payloads, got, 0, where, sizeof(where));
            if (ok && want_ignored != NULL && (size_t)json_integer_value(want_ignored) != ignored) {
                snprintf(where, sizeof(where), "ignored = %zu", ignored);
                ok = 0;
            }
            if (!ok) {
                char *s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
                fprintf(stderr, "FAIL %s at %s\n  rule: %s\n  got: %s\n", name, where,
                        json_string_value(json_object_get(fx, "rule")), s);
                free(s);
                failed++;
            }
        }
        checked++;
        json_decref(got);
        json_decref(fx);
        free(ents[i]);
    }
    free(ents);
    fprintf(stderr, "%d fixtures, %d failed\n", checked, failed);
    assert_true(checked >= 1);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
