/*
 * test_llmobs_vercel.c: llmobs_vercel.c beyond what the goldens show (tests/data/llmobs/1xx-
 * vercel-*.json): the operation table, that the Vercel convention wins over the gen_ai
 * markers its model spans also carry and gives way for operations it does not map, the
 * provider read from ai.model.provider (and Bedrock's model id), the LLM Obs parents the
 * trace buffer gives the spans of a v6 and a v7 call, that the
 * span given to the build is left as it was, and that every allocation failure while a
 * Vercel span is re-read is reported as NOMEM and leaks nothing (run under ASan), with a
 * fresh builder and with a reused one.
 */
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
#include "llmobs_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_json_in.h"
#include "otlp.h"

/* The spans of a golden fixture's input, decoded into a. */
static const OtlpTraceReq *fixture_spans(struct o2d_arena *a, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/llmobs/%s", O2D_TEST_DATA, name);
    json_error_t jerr;
    json_t *fx = json_load_file(path, 0, &jerr);
    if (fx == NULL) {
        fail_msg("%s: %s", path, jerr.text);
    }
    char *text = json_dumps(json_object_get(fx, "input"), JSON_COMPACT);
    struct otlp_request req;
    const char *reason = NULL;
    assert_int_equal(otlp_decode(a, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON, (const uint8_t *)text,
                                 strlen(text), &req, &reason),
                     O2D_OK);
    free(text);
    json_decref(fx);
    return req.msg.traces;
}

/* A span of the given attributes, as "k", "v" pairs (string values), NULL-terminated. */
struct tspan {
    OtlpSpan s;
    OtlpKeyValue kv[8], *kvp[8];
    OtlpAnyValue v[8];
};

static void tspan_init(struct tspan *t, const char *name, ...)
{
    opentelemetry__proto__trace__v1__span__init(&t->s);
    t->s.name = (char *)name;
    va_list ap;
    va_start(ap, name);
    size_t n = 0;
    for (const char *k; n < 8 && (k = va_arg(ap, const char *)) != NULL; n++) {
        opentelemetry__proto__common__v1__key_value__init(&t->kv[n]);
        opentelemetry__proto__common__v1__any_value__init(&t->v[n]);
        t->kv[n].key = (char *)k;
        t->kv[n].value = &t->v[n];
        t->v[n].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        t->v[n].string_value = va_arg(ap, char *);
        t->kvp[n] = &t->kv[n];
    }
    va_end(ap);
    t->s.attributes = t->kvp;
    t->s.n_attributes = n;
}

static void test_operation_table(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        enum llmobs_kind kind;
    } t[] = {
        {"ai.generateText", LLMOBS_WORKFLOW},
        {"ai.streamText", LLMOBS_WORKFLOW},
        {"ai.generateObject", LLMOBS_WORKFLOW},
        {"ai.streamObject", LLMOBS_WORKFLOW},
        {"ai.embed", LLMOBS_WORKFLOW},
        {"ai.embedMany", LLMOBS_WORKFLOW},
        {"ai.generateText.doGenerate", LLMOBS_LLM},
        {"ai.streamText.doStream", LLMOBS_LLM},
        {"ai.generateObject.doGenerate", LLMOBS_LLM},
        {"ai.streamObject.doStream", LLMOBS_LLM},
        {"ai.embed.doEmbed", LLMOBS_EMBEDDING},
        {"ai.embedMany.doEmbed", LLMOBS_EMBEDDING},
        {"ai.toolCall", LLMOBS_TOOL},
        /* not mapped (Datadog neither): rerank, speech, transcription */
        {"ai.rerank", LLMOBS_NONE},
        {"ai.rerank.doRerank", LLMOBS_NONE},
        {"ai.generateSpeech", LLMOBS_NONE},
        /* not an AI SDK id */
        {"generateText", LLMOBS_NONE},
        {"xai.generateText", LLMOBS_NONE},
        {"ai.", LLMOBS_NONE},
        {"", LLMOBS_NONE},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (llmobs_vercel_kind(t[i].id) != t[i].kind) {
            fail_msg("%s: kind %d, want %d", t[i].id, llmobs_vercel_kind(t[i].id), t[i].kind);
        }
    }
    assert_int_equal(llmobs_vercel_kind(NULL), LLMOBS_NONE);
}

static void test_classify(void **state)
{
    (void)state;
    struct tspan t;
    /* doGenerate also carries gen_ai.system and a model: llm either way */
    tspan_init(&t, "ai.generateText.doGenerate", "gen_ai.system", "openai.chat", "ai.operationId",
               "ai.generateText.doGenerate", "gen_ai.request.model", "m", NULL);
    assert_int_equal(llmobs_classify(&t.s), LLMOBS_LLM);
    /* the outer span has a model too (ai.model.id) but no gen_ai key: workflow */
    tspan_init(&t, "ai.generateText", "ai.model.id", "m", "ai.operationId", "ai.generateText",
               NULL);
    assert_int_equal(llmobs_classify(&t.s), LLMOBS_WORKFLOW);
    /* the Vercel id wins over another convention's kind on the same span */
    tspan_init(&t, "ai.toolCall", "traceloop.span.kind", "workflow", "ai.operationId",
               "ai.toolCall", NULL);
    assert_int_equal(llmobs_classify(&t.s), LLMOBS_TOOL);
    /* an id it does not map leaves the span to the other rules */
    tspan_init(&t, "ai.rerank.doRerank", "ai.operationId", "ai.rerank.doRerank", "gen_ai.system",
               "cohere", "gen_ai.request.model", "rerank-v3", NULL);
    assert_int_equal(llmobs_classify(&t.s), LLMOBS_LLM);
    tspan_init(&t, "ai.rerank", "ai.operationId", "ai.rerank", NULL);
    assert_int_equal(llmobs_classify(&t.s), LLMOBS_NONE);
    /* the span name alone is not the convention */
    tspan_init(&t, "ai.generateText", "ai.model.id", "m", NULL);
    assert_int_equal(llmobs_classify(&t.s), LLMOBS_NONE);
    /* v7's agent_step */
    tspan_init(&t, "step 1", "gen_ai.operation.name", "agent_step", NULL);
    assert_int_equal(llmobs_classify(&t.s), LLMOBS_WORKFLOW);
}

/* The build reads a copy: the span given keeps its name and attributes. */
static void test_span_untouched(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    const OtlpTraceReq *tr = fixture_spans(&a, "106-vercel-v4-generate-text-tool-round.json");
    const OtlpScopeSpans *ss = tr->resource_spans[0]->scope_spans[0];
    for (size_t i = 0; i < ss->n_spans; i++) {
        const OtlpSpan *s = ss->spans[i];
        const char *name = s->name;
        OtlpKeyValue **attrs = s->attributes;
        size_t n = s->n_attributes;
        struct llmobs_span *sp = NULL;
        assert_int_equal(llmobs_span_build(tr->resource_spans[0]->resource, ss->scope, s,
                                           llmobs_classify(s), NULL, &sp),
                         O2D_OK);
        assert_ptr_equal(s->name, name);
        assert_ptr_equal(s->attributes, attrs);
        assert_int_equal(s->n_attributes, n);
        llmobs_span_free(sp);
    }
    o2d_arena_cleanup(&a);
}

/* The provider is the first part of ai.model.provider (dd-trace-js parseModelProvider). */
static void test_provider(void **state)
{
    (void)state;
    static const struct {
        const char *provider, *model, *want;
    } t[] = {
        {"openai.responses", "gpt-4.1", "openai"},
        {"openai.chat", "gpt-4o", "openai"},
        {"azure-openai.chat", "gpt-4o", "azure-openai"},
        {"google.generative-ai", "gemini-2.0-flash", "google"},
        {"amazon-bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "anthropic"},
        {"amazon-bedrock", "eu.meta.llama3-2-1b-instruct-v1:0", "meta"},
        {"amazon-bedrock", "titan", "amazon-bedrock"},
        {"Mistral", "m", "mistral"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct tspan ts;
        tspan_init(&ts, "ai.generateText.doGenerate", "ai.operationId",
                   "ai.generateText.doGenerate", "ai.model.provider", t[i].provider, "ai.model.id",
                   t[i].model, NULL);
        struct llmobs_span *sp = NULL;
        assert_int_equal(llmobs_span_build(NULL, NULL, &ts.s, LLMOBS_LLM, NULL, &sp), O2D_OK);
        struct o2d_buf b;
        o2d_buf_init(&b, 1u << 20);
        assert_int_equal(llmobs_span_write(sp, "0123456789abcdef0123456789abcdef", 0, 5000000, &b),
                         O2D_OK);
        json_t *j = json_loadb((const char *)b.data, b.len, 0, NULL);
        json_t *meta = json_object_get(j, "meta");
        const char *got = json_string_value(json_object_get(meta, "model_provider"));
        if (got == NULL || strcmp(got, t[i].want) != 0) {
            fail_msg("%s / %s: provider %s, want %s", t[i].provider, t[i].model,
                     got != NULL ? got : "(none)", t[i].want);
        }
        assert_string_equal(json_string_value(json_object_get(meta, "model_name")), t[i].model);
        json_decref(j);
        o2d_buf_cleanup(&b);
        llmobs_span_free(sp);
    }
}

static const char *const fixtures[] = {
    "101-vercel-v6-generate-text-tool-round.json",     "103-vercel-v6-embed-many.json",
    "106-vercel-v4-generate-text-tool-round.json",     "107-vercel-v4-generate-object.json",
    "109-vercel-v5-bedrock-cache-and-edge-cases.json",
};

/* Every allocation failure is NOMEM without a span, and a build that had none succeeds. */
static void test_failmalloc(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    struct llmobs_builder *bl = NULL;
    assert_int_equal(llmobs_builder_new(&bl), O2D_OK);
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        const OtlpTraceReq *tr = fixture_spans(&a, fixtures[f]);
        for (size_t r = 0; r < tr->n_resource_spans; r++) {
            const OtlpScopeSpans *ss = tr->resource_spans[r]->scope_spans[0];
            for (size_t i = 0; i < ss->n_spans; i++) {
                const OtlpSpan *s = ss->spans[i];
                enum llmobs_kind kind = llmobs_classify(s);
                if (kind == LLMOBS_NONE) {
                    continue;
                }
                for (int reuse = 0; reuse < 2; reuse++) {
                    int ok = 0, nomem = 0;
                    for (long n = 0; n < 4000 && !ok; n++) {
                        struct llmobs_span *sp = NULL;
                        o2d_alloc_fail_after(n);
                        int rv = llmobs_span_build_with(reuse ? bl : NULL, NULL, NULL, s, kind,
                                                        NULL, &sp);
                        o2d_alloc_fail_after(-1);
                        if (rv == O2D_OK) {
                            assert_non_null(sp);
                            ok = o2d_alloc_failures() == 0;
                        } else {
                            assert_int_equal(rv, O2D_ERR_NOMEM);
                            assert_null(sp);
                            nomem++;
                        }
                        llmobs_span_free(sp);
                    }
                    if (!ok || nomem < 3) {
                        fail_msg("%s span %zu: %d failed builds, %s", fixtures[f], i, nomem,
                                 ok ? "then a whole one" : "never a whole one");
                    }
                }
            }
        }
    }
    llmobs_builder_free(bl);
    o2d_arena_cleanup(&a);
}

struct events {
    json_t *by_span; /* span_id -> event */
};

static int collect(void *ctx, const uint8_t *json, size_t len)
{
    struct events *ev = ctx;
    json_t *e = json_loadb((const char *)json, len, 0, NULL);
    assert_non_null(e);
    json_object_set_new(ev->by_span, json_string_value(json_object_get(e, "span_id")), e);
    return O2D_OK;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Every span of a fixture through the trace buffer, as the exporter adds them (the app's own
 * root span, not LLM Obs, too); the events by span id. */
static json_t *through_buffer(struct o2d_arena *a, const char *fixture)
{
    const OtlpTraceReq *tr = fixture_spans(a, fixture);
    struct llmobs_buffer_config cfg = {.deadline_ns = 10000000000LL,
                                       .max_spans = 1000,
                                       .max_bytes = 1u << 24,
                                       .max_event_size = 5000000};
    struct llmobs_buffer *b = NULL;
    assert_int_equal(llmobs_buffer_new(&b, &cfg), O2D_OK);
    for (size_t r = 0; r < tr->n_resource_spans; r++) {
        const OtlpResourceSpans *rs = tr->resource_spans[r];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            for (size_t i = 0; i < rs->scope_spans[j]->n_spans; i++) {
                const OtlpSpan *s = rs->scope_spans[j]->spans[i];
                enum llmobs_kind kind = llmobs_classify(s);
                struct llmobs_span *sp = NULL;
                if (kind != LLMOBS_NONE) {
                    assert_int_equal(llmobs_span_build(rs->resource, rs->scope_spans[j]->scope, s,
                                                       kind, NULL, &sp),
                                     O2D_OK);
                }
                struct llmobs_ids ids = {.span_id = be64(s->span_id.data)};
                memcpy(ids.trace_id, s->trace_id.data, 16);
                if (s->parent_span_id.len == 8) {
                    ids.parent_span_id = be64(s->parent_span_id.data);
                }
                if (sp == NULL) {
                    assert_int_equal(llmobs_buffer_note_trace(b, ids.trace_id, 1), O2D_OK);
                }
                assert_int_equal(llmobs_buffer_add_span(b, &ids, sp, 1), O2D_OK);
            }
        }
    }
    struct events ev = {json_object()};
    assert_int_equal(llmobs_buffer_poll(b, 2, 1, collect, &ev), O2D_OK);
    llmobs_buffer_free(b);
    return ev.by_span;
}

static const char *field(json_t *e, const char *k)
{
    return json_string_value(json_object_get(e, k));
}

static const char *kind_of(json_t *e)
{
    return field(json_object_get(json_object_get(e, "meta"), "span"), "kind");
}

/* The outer span is the LLM Obs parent of the model and tool calls in it (v6), and v7's agent
 * of its steps, each step of its chat and tool spans; one LLM Obs trace. */
static void test_parents(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    json_t *v6 = through_buffer(&a, "101-vercel-v6-generate-text-tool-round.json");
    assert_int_equal(json_object_size(v6), 4);
    const char *k, *wf = NULL, *tid = NULL;
    json_t *e;
    json_object_foreach(v6, k, e)
    {
        if (strcmp(kind_of(e), "workflow") == 0) {
            wf = k;
            assert_string_equal(field(e, "parent_id"), "undefined");
            tid = field(e, "trace_id");
        }
    }
    assert_non_null(wf);
    int llm = 0, tool = 0;
    json_object_foreach(v6, k, e)
    {
        llm += strcmp(kind_of(e), "llm") == 0;
        tool += strcmp(kind_of(e), "tool") == 0;
        if (e != json_object_get(v6, wf)) {
            assert_string_equal(field(e, "parent_id"), wf);
        }
        assert_string_equal(field(e, "trace_id"), tid);
    }
    assert_int_equal(llm, 2);
    assert_int_equal(tool, 1);

    json_t *v7 = through_buffer(&a, "104-vercel-v7-otel-agent-tool-round.json");
    assert_int_equal(json_object_size(v7), 6);
    const char *agent = NULL;
    json_object_foreach(v7, k, e)
    {
        if (strcmp(kind_of(e), "agent") == 0) {
            agent = k;
            assert_string_equal(field(e, "parent_id"), "undefined");
        }
    }
    assert_non_null(agent);
    int steps = 0, under_steps = 0;
    json_object_foreach(v7, k, e)
    {
        json_t *parent = json_object_get(v7, field(e, "parent_id"));
        if (strcmp(kind_of(e), "workflow") == 0) {
            steps++;
            assert_string_equal(field(e, "parent_id"), agent);
        } else if (e != json_object_get(v7, agent)) {
            assert_non_null(parent);
            assert_string_equal(kind_of(parent), "workflow");
            under_steps++;
        }
    }
    assert_int_equal(steps, 2);
    assert_int_equal(under_steps, 3); /* two chat, one execute_tool */
    json_decref(v6);
    json_decref(v7);
    o2d_arena_cleanup(&a);
}

int main(void)
{
    /* as otel2dd installs it: builds take their jansson values from a scratch arena */
    json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operation_table), cmocka_unit_test(test_classify),
        cmocka_unit_test(test_span_untouched),  cmocka_unit_test(test_provider),
        cmocka_unit_test(test_failmalloc),      cmocka_unit_test(test_parents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
