/*
 * test_llmobs_golden.c: walks every tests/data/llmobs fixture: decodes "input" (and "logs")
 * with otlp_decode as OTLP/JSON, classifies and builds every span, joins the gen_ai log records
 * whose trace and span ids match, writes each event and compares it with the fixture's
 * "expect" entry exactly (json_equal), in order; each event built again with one builder
 * for the whole request (llmobs_builder_begin .. _end, as the exporter builds them) must be
 * the same bytes. The LLM Obs trace id is a fixed
 * 0123456789abcdef0123456789abcdef and the parent "undefined", unless the expected entry says
 * otherwise: resolving them is the trace buffer's job (llmobs_buffer.c).
 *
 * A fixture with "trace_buffer": true goes through the trace buffer instead (llmobs_buffer.c):
 * every span (LLM Obs or not) and log record is added in the fixture's order, then a forced
 * poll writes the events with the LLM Obs trace ids, parents and inherited sessions it
 * decides, in the order it emits them.
 *
 * LLMOBS_GOLDEN_DUMP=1 prints what each fixture gives, to help write a new one (the output
 * must be checked by hand against the rule it illustrates); LLMOBS_GOLDEN_ONLY=<substring>
 * runs only matching fixtures.
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

#include "llmobs.h"
#include "llmobs_buffer.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_json_in.h"
#include "otlp.h"

#define FIXED_TRACE_ID "0123456789abcdef0123456789abcdef"
#define MAX_RULES      8

static int decode(struct o2d_arena *a, enum otlp_signal sig, json_t *j, struct otlp_request *req)
{
    char *text = json_dumps(j, JSON_COMPACT);
    const char *reason = NULL;
    int rv = otlp_decode(a, sig, OTLP_ENC_JSON, (const uint8_t *)text, strlen(text), req, &reason);
    if (rv != O2D_OK) {
        fprintf(stderr, "otlp_decode: %s\n", reason != NULL ? reason : "?");
    }
    free(text);
    return rv;
}

static void join_logs(struct llmobs_span *sp, const OtlpSpan *s, const OtlpLogsReq *logs)
{
    for (size_t i = 0; logs != NULL && i < logs->n_resource_logs; i++) {
        const OtlpResourceLogs *rl = logs->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const OtlpScopeLogs *sl = rl->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const OtlpLogRecord *r = sl->log_records[k];
                if (llmobs_log_is_genai(r) && r->span_id.len == s->span_id.len &&
                    memcmp(r->span_id.data, s->span_id.data, s->span_id.len) == 0 &&
                    r->trace_id.len == s->trace_id.len &&
                    memcmp(r->trace_id.data, s->trace_id.data, s->trace_id.len) == 0) {
                    assert_int_equal(llmobs_span_add_log(sp, r), O2D_OK);
                }
            }
        }
    }
}

static uint64_t be64_of(const ProtobufCBinaryData *d)
{
    uint64_t v = 0;
    for (size_t i = 0; i < d->len && i < 8; i++) {
        v = (v << 8) | d->data[i];
    }
    return d->len == 8 ? v : 0;
}

static int emit_json(void *ctx, const uint8_t *json, size_t len)
{
    json_error_t jerr;
    json_t *ev = json_loadb((const char *)json, len, JSON_ALLOW_NUL, &jerr);
    assert_non_null(ev);
    json_array_append_new(ctx, ev);
    return O2D_OK;
}

/* "trace_buffer" fixtures: every span and log record through the trace buffer. */
static void run_buffered(const OtlpTraceReq *tr, const OtlpLogsReq *logs,
                         const struct llmobs_config *cfg, json_t *out)
{
    struct llmobs_buffer_config bc = {
        .deadline_ns = 10000000000LL,
        .max_spans = 100000,
        .max_bytes = 64u << 20,
        .max_event_size = 5000000,
    };
    struct llmobs_buffer *b = NULL;
    assert_int_equal(llmobs_buffer_new(&b, &bc), O2D_OK);
    for (size_t i = 0; tr != NULL && i < tr->n_resource_spans; i++) {
        const OtlpResourceSpans *rs = tr->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const OtlpScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                assert_int_equal(llmobs_buffer_note_trace(b, ss->spans[k]->trace_id.data, 0),
                                 O2D_OK);
            }
        }
    }
    for (size_t i = 0; tr != NULL && i < tr->n_resource_spans; i++) {
        const OtlpResourceSpans *rs = tr->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const OtlpScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const OtlpSpan *s = ss->spans[k];
                struct llmobs_ids ids = {
                    .span_id = be64_of(&s->span_id),
                    .parent_span_id = be64_of(&s->parent_span_id),
                };
                memcpy(ids.trace_id, s->trace_id.data, 16);
                enum llmobs_kind kind = llmobs_classify(s);
                struct llmobs_span *sp = NULL;
                if (kind != LLMOBS_NONE) {
                    assert_int_equal(llmobs_span_build(rs->resource, ss->scope, s, kind, cfg, &sp),
                                     O2D_OK);
                }
                assert_int_equal(llmobs_buffer_add_span(b, &ids, sp, 0), O2D_OK);
            }
        }
    }
    for (size_t i = 0; logs != NULL && i < logs->n_resource_logs; i++) {
        const OtlpResourceLogs *rl = logs->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const OtlpScopeLogs *sl = rl->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++) {
                if (llmobs_log_is_genai(sl->log_records[k])) {
                    assert_int_equal(llmobs_buffer_add_log(b, sl->log_records[k], 0), O2D_OK);
                }
            }
        }
    }
    assert_int_equal(llmobs_buffer_poll(b, 0, 1, emit_json, out), O2D_OK);
    llmobs_buffer_free(b);
}

/* The events of one fixture as a JSON array. */
static json_t *run_fixture(json_t *fx)
{
    json_t *exp = json_object_get(fx, "expect");
    json_t *cfgj = json_object_get(fx, "config");
    struct llmobs_config cfg = {0};
    struct llmobs_ml_app_rule rules[MAX_RULES];
    const char *tags[MAX_RULES];
    if (cfgj != NULL) {
        cfg.ml_app = json_string_value(json_object_get(cfgj, "ml_app"));
        cfg.default_service = json_string_value(json_object_get(cfgj, "DD_SERVICE"));
        cfg.default_env = json_string_value(json_object_get(cfgj, "DD_ENV"));
        cfg.default_version = json_string_value(json_object_get(cfgj, "DD_VERSION"));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(cfgj, "ml_app_by_service"), k, v)
        {
            assert_true(cfg.n_ml_app_by_service < MAX_RULES);
            rules[cfg.n_ml_app_by_service].service = k;
            rules[cfg.n_ml_app_by_service++].ml_app = json_string_value(v);
        }
        cfg.ml_app_by_service = rules;
        size_t i;
        json_array_foreach(json_object_get(cfgj, "tags"), i, v)
        {
            assert_true(cfg.n_tags < MAX_RULES);
            tags[cfg.n_tags++] = json_string_value(v);
        }
        cfg.tags = tags;
    }
    struct o2d_arena a, la;
    o2d_arena_init(&a, 64u << 20);
    o2d_arena_init(&la, 64u << 20);
    struct otlp_request req, lreq;
    assert_int_equal(decode(&a, OTLP_SIGNAL_TRACES, json_object_get(fx, "input"), &req), O2D_OK);
    const OtlpLogsReq *logs = NULL;
    if (json_object_get(fx, "logs") != NULL) {
        assert_int_equal(decode(&la, OTLP_SIGNAL_LOGS, json_object_get(fx, "logs"), &lreq), O2D_OK);
        logs = lreq.msg.logs;
    }
    json_t *out = json_array();
    const OtlpTraceReq *tr = req.msg.traces;
    if (json_is_true(json_object_get(fx, "trace_buffer"))) {
        run_buffered(tr, logs, &cfg, out);
        tr = NULL;
    }
    /* Every event is also built with one builder for the whole request, as the exporter
     * builds them (spans of a resource share their tags): it must write the same bytes. */
    struct llmobs_builder *bl = NULL;
    assert_int_equal(llmobs_builder_new(&bl), O2D_OK);
    llmobs_builder_begin(bl);
    for (size_t i = 0; tr != NULL && i < tr->n_resource_spans; i++) {
        const OtlpResourceSpans *rs = tr->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const OtlpScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const OtlpSpan *s = ss->spans[k];
                enum llmobs_kind kind = llmobs_classify(s);
                if (kind == LLMOBS_NONE) {
                    continue;
                }
                struct llmobs_span *sp = NULL;
                assert_int_equal(llmobs_span_build(rs->resource, ss->scope, s, kind, &cfg, &sp),
                                 O2D_OK);
                join_logs(sp, s, logs);
                /* The expected entry may name the LLM Obs trace and parent. */
                json_t *e = json_array_get(exp, json_array_size(out));
                const char *tid = json_string_value(json_object_get(e, "trace_id"));
                const char *pid = json_string_value(json_object_get(e, "parent_id"));
                uint64_t parent = 0;
                if (pid != NULL && strcmp(pid, "undefined") != 0) {
                    parent = strtoull(pid, NULL, 10);
                }
                struct o2d_buf b;
                o2d_buf_init(&b, 64u << 20);
                assert_int_equal(
                    llmobs_span_write(sp, tid != NULL ? tid : FIXED_TRACE_ID, parent, 5000000, &b),
                    O2D_OK);
                struct llmobs_span *shared = NULL;
                assert_int_equal(
                    llmobs_span_build_with(bl, rs->resource, ss->scope, s, kind, &cfg, &shared),
                    O2D_OK);
                join_logs(shared, s, logs);
                struct o2d_buf b2;
                o2d_buf_init(&b2, 64u << 20);
                assert_int_equal(llmobs_span_write(shared, tid != NULL ? tid : FIXED_TRACE_ID,
                                                   parent, 5000000, &b2),
                                 O2D_OK);
                assert_int_equal(b2.len, b.len);
                assert_memory_equal(b2.data, b.data, b.len);
                o2d_buf_cleanup(&b2);
                llmobs_span_free(shared);
                json_error_t jerr;
                json_t *ev = json_loadb((const char *)b.data, b.len, JSON_ALLOW_NUL, &jerr);
                if (ev == NULL) {
                    fprintf(stderr, "invalid JSON written: %s\n%.*s\n", jerr.text, (int)b.len,
                            (const char *)b.data);
                }
                assert_non_null(ev);
                json_array_append_new(out, ev);
                o2d_buf_cleanup(&b);
                llmobs_span_free(sp);
            }
        }
    }
    llmobs_builder_end(bl);
    llmobs_builder_free(bl);
    o2d_arena_cleanup(&a);
    o2d_arena_cleanup(&la);
    return out;
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *dir = O2D_TEST_DATA "/llmobs";
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n > 0);
    int checked = 0, failed = 0;
    int dump = getenv("LLMOBS_GOLDEN_DUMP") != NULL;
    const char *only = getenv("LLMOBS_GOLDEN_ONLY");
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
        json_t *fx = json_load_file(path, JSON_ALLOW_NUL, &jerr);
        if (fx == NULL) {
            fprintf(stderr, "%s: %s (line %d)\n", name, jerr.text, jerr.line);
            failed++;
            free(ents[i]);
            continue;
        }
        json_t *got = run_fixture(fx);
        json_t *exp = json_object_get(fx, "expect");
        if (dump) {
            char *s = json_dumps(got, JSON_INDENT(1));
            printf("== %s\n%s\n", name, s);
            free(s);
        }
        if (!json_equal(got, exp)) {
            failed++;
            fprintf(stderr, "FAIL %s\n  source: %s\n", name,
                    json_string_value(json_object_get(fx, "source")));
            for (size_t k = 0; k < json_array_size(got) || k < json_array_size(exp); k++) {
                json_t *g = json_array_get(got, k), *e = json_array_get(exp, k);
                if (g != NULL && e != NULL && json_equal(g, e)) {
                    continue;
                }
                char *gs = g != NULL ? json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                char *es = e != NULL ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                fprintf(stderr, "  event %zu\n    expected: %s\n    got:      %s\n", k,
                        es != NULL ? es : "(none)", gs != NULL ? gs : "(none)");
                free(gs);
                free(es);
            }
        }
        checked++;
        json_decref(got);
        json_decref(fx);
        free(ents[i]);
    }
    free(ents);
    fprintf(stderr, "llmobs golden: %d fixtures, %d failed\n", checked, failed);
    assert_true(checked > 0);
    assert_int_equal(failed, 0);
}

int main(void)
{
    /* as otel2dd installs it: builds take their jansson values from a scratch arena */
    json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
