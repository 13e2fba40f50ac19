/*
 * test_llmobs.c: llmobs.c beyond the golden fixtures: the classification table for every
 * convention (and HTTP/DB spans staying APM-only), the 5 MB truncation rule, malformed and
 * invalid UTF-8 content, events that outlive the request arena, log record detection, and
 * failing allocations.
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
#include "llmobs_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_json_in.h"
#include "o2d_json_out.h"
#include "otlp.h"

#define TRACE_ID "0123456789abcdef0123456789abcdef"

/* One span with the given attributes (a JSON array of OTLP KeyValues) decoded into `a`. */
static const OtlpSpan *decode_span(struct o2d_arena *a, const char *attrs, const char *extra)
{
    char body[65536];
    snprintf(
        body, sizeof(body),
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"spans\":[{\"traceId\":"
        "\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"00f067aa0ba902b7\",\"name\":\"s\","
        "\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"3000\",\"attributes\":%s%s}]}]}]}",
        attrs, extra != NULL ? extra : "");
    struct otlp_request req;
    const char *reason = NULL;
    int rv = otlp_decode(a, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON, (const uint8_t *)body, strlen(body),
                         &req, &reason);
    if (rv != O2D_OK) {
        fprintf(stderr, "decode: %s\n", reason);
    }
    assert_int_equal(rv, O2D_OK);
    return req.msg.traces->resource_spans[0]->scope_spans[0]->spans[0];
}

static const OtlpResource *resource_of(struct o2d_arena *a)
{
    (void)a;
    return NULL;
}

static json_t *write_json(const struct llmobs_span *sp, uint64_t parent, size_t max, size_t *len)
{
    struct o2d_buf b;
    o2d_buf_init(&b, 64u << 20);
    assert_int_equal(llmobs_span_write(sp, TRACE_ID, parent, max, &b), O2D_OK);
    /* what the trace buffer reserves for the event is enough for it */
    assert_true(b.len <= llmobs_span_write_size(sp, NULL));
    if (len != NULL) {
        *len = b.len;
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)b.data, b.len, JSON_ALLOW_NUL, &err);
    if (j == NULL) {
        fprintf(stderr, "bad JSON: %s: %.*s\n", err.text, (int)b.len, (const char *)b.data);
    }
    assert_non_null(j);
    o2d_buf_cleanup(&b);
    return j;
}

struct case_ {
    const char *attrs;
    enum llmobs_kind kind;
};

#define KV(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"

static void test_classify(void **state)
{
    (void)state;
    static const struct case_ cases[] = {
        /* OpenLLMetry traceloop.span.kind first */
        {"[" KV("traceloop.span.kind", "workflow") "]", LLMOBS_WORKFLOW},
        {"[" KV("traceloop.span.kind", "task") "]", LLMOBS_TASK},
        {"[" KV("traceloop.span.kind", "agent") "]", LLMOBS_AGENT},
        {"[" KV("traceloop.span.kind", "tool") "]", LLMOBS_TOOL},
        {"[" KV("traceloop.span.kind", "workflow") "," KV("gen_ai.operation.name",
                                                          "invoke_agent") "]",
         LLMOBS_WORKFLOW},
        {"[" KV("traceloop.span.kind", "task") "," KV("gen_ai.operation.name", "execute_tool") "]",
         LLMOBS_TOOL},
        {"[" KV("traceloop.span.kind", "unknown") "," KV("llm.request.type", "chat") "]",
         LLMOBS_LLM},
        {"[" KV("traceloop.span.kind", "unknown") "]", LLMOBS_NONE},
        /* OpenInference */
        {"[" KV("openinference.span.kind", "LLM") "]", LLMOBS_LLM},
        {"[" KV("openinference.span.kind", "EMBEDDING") "]", LLMOBS_EMBEDDING},
        {"[" KV("openinference.span.kind", "TOOL") "]", LLMOBS_TOOL},
        {"[" KV("openinference.span.kind", "AGENT") "]", LLMOBS_AGENT},
        {"[" KV("openinference.span.kind", "RETRIEVER") "]", LLMOBS_RETRIEVAL},
        {"[" KV("openinference.span.kind", "CHAIN") "]", LLMOBS_WORKFLOW},
        {"[" KV("openinference.span.kind", "PROMPT") "]", LLMOBS_TASK},
        {"[" KV("openinference.span.kind", "RERANKER") "]", LLMOBS_TASK},
        {"[" KV("openinference.span.kind", "GUARDRAIL") "]", LLMOBS_TASK},
        {"[" KV("openinference.span.kind", "EVALUATOR") "]", LLMOBS_TASK},
        {"[" KV("openinference.span.kind", "chain") "]", LLMOBS_WORKFLOW},
        {"[" KV("openinference.span.kind", "SOMETHING") "]", LLMOBS_WORKFLOW},
        {"[" KV("openinference.span.kind", "CHAIN") "," KV("gen_ai.operation.name", "chat") "]",
         LLMOBS_LLM},
        /* OTel GenAI operation names */
        {"[" KV("gen_ai.operation.name", "chat") "]", LLMOBS_LLM},
        {"[" KV("gen_ai.operation.name", "generate_content") "]", LLMOBS_LLM},
        {"[" KV("gen_ai.operation.name", "text_completion") "]", LLMOBS_LLM},
        {"[" KV("gen_ai.operation.name", "completion") "]", LLMOBS_LLM},
        {"[" KV("gen_ai.operation.name", "embeddings") "]", LLMOBS_EMBEDDING},
        {"[" KV("gen_ai.operation.name", "embedding") "]", LLMOBS_EMBEDDING},
        {"[" KV("gen_ai.operation.name", "execute_tool") "]", LLMOBS_TOOL},
        {"[" KV("gen_ai.operation.name", "invoke_agent") "]", LLMOBS_AGENT},
        {"[" KV("gen_ai.operation.name", "create_agent") "]", LLMOBS_AGENT},
        {"[" KV("gen_ai.operation.name", "retrieval") "]", LLMOBS_RETRIEVAL},
        {"[" KV("gen_ai.operation.name", "invoke_workflow") "]", LLMOBS_WORKFLOW},
        /* llm.request.type */
        {"[" KV("llm.request.type", "chat") "]", LLMOBS_LLM},
        {"[" KV("llm.request.type", "completion") "]", LLMOBS_LLM},
        {"[" KV("llm.request.type", "embedding") "]", LLMOBS_EMBEDDING},
        {"[" KV("llm.request.type", "rerank") "]", LLMOBS_TASK},
        {"[" KV("gen_ai.operation.name", "llm_request") "," KV("llm.request.type", "chat") "]",
         LLMOBS_LLM},
        /* other gen_ai markers */
        {"[" KV("gen_ai.operation.name", "llm_request") "," KV("gen_ai.request.model", "m") "]",
         LLMOBS_LLM},
        {"[" KV("gen_ai.operation.name", "llm_request") "]", LLMOBS_WORKFLOW},
        {"[" KV("gen_ai.operation.name", "execute_task") "]", LLMOBS_TASK},
        {"[" KV("gen_ai.system", "openai") "]", LLMOBS_WORKFLOW},
        {"[" KV("gen_ai.provider.name", "openai") "," KV("gen_ai.response.model", "m") "]",
         LLMOBS_LLM},
        /* not LLM Obs */
        {"[]", LLMOBS_NONE},
        {"[" KV("http.request.method", "POST") "," KV("http.route", "/chat") "]", LLMOBS_NONE},
        {"[" KV("db.system.name", "postgresql") "," KV("db.query.text", "SELECT 1") "]",
         LLMOBS_NONE},
        {"[" KV("asgi.event.type", "http.request") "]", LLMOBS_NONE},
        {"[" KV("gen_ai.usage.input_tokens", "3") "]", LLMOBS_NONE},
        {"[" KV("llm.request.type", "other") "]", LLMOBS_NONE},
    };
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const OtlpSpan *s = decode_span(&a, cases[i].attrs, NULL);
        enum llmobs_kind k = llmobs_classify(s);
        if (k != cases[i].kind) {
            fprintf(stderr, "case %zu %s: got %d want %d\n", i, cases[i].attrs, k, cases[i].kind);
        }
        assert_int_equal(k, cases[i].kind);
        o2d_arena_reset(&a);
    }
    o2d_arena_cleanup(&a);
    assert_null(llmobs_kind_name(LLMOBS_NONE));
    assert_string_equal(llmobs_kind_name(LLMOBS_RETRIEVAL), "retrieval");
    assert_null(llmobs_kind_name((enum llmobs_kind)99));
}

static struct llmobs_span *build(struct o2d_arena *a, const char *attrs, const char *extra)
{
    const OtlpSpan *s = decode_span(a, attrs, extra);
    enum llmobs_kind k = llmobs_classify(s);
    assert_int_not_equal(k, LLMOBS_NONE);
    struct llmobs_span *sp = NULL;
    struct llmobs_config cfg = {.ml_app = "app"};
    assert_int_equal(llmobs_span_build(resource_of(a), NULL, s, k, &cfg, &sp), O2D_OK);
    return sp;
}

static void test_truncation(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    char big[20000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char attrs[40000];
    snprintf(attrs, sizeof(attrs),
             "[" KV("gen_ai.operation.name", "chat") ",{\"key\":\"gen_ai.input.messages\","
                                                     "\"value\":{\"stringValue\":\"[{\\\"role\\\":"
                                                     "\\\"user\\\",\\\"content\\\":\\\"%s\\\"}]\"}}"
                                                     "]",
             big);
    struct llmobs_span *sp = build(&a, attrs, NULL);
    assert_true(llmobs_span_size(sp) > sizeof(big));
    size_t len;
    json_t *full = write_json(sp, 0, 5000000, &len);
    assert_true(len > sizeof(big));
    assert_null(json_object_get(full, "collection_errors"));
    json_t *msgs =
        json_object_get(json_object_get(json_object_get(full, "meta"), "input"), "messages");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                        "user");
    json_decref(full);
    /* Past the limit: input and output replaced, dropped_io recorded. */
    json_t *cut = write_json(sp, 7, 2000, &len);
    assert_true(len <= 2000);
    json_t *meta = json_object_get(cut, "meta");
    const char *v = json_string_value(json_object_get(json_object_get(meta, "input"), "value"));
    assert_non_null(v);
    assert_non_null(strstr(v, "exceeds the 5MB size limit"));
    assert_non_null(json_object_get(json_object_get(meta, "output"), "value"));
    json_t *errs = json_object_get(cut, "collection_errors");
    assert_int_equal(json_array_size(errs), 1);
    assert_string_equal(json_string_value(json_array_get(errs, 0)), "dropped_io");
    assert_string_equal(json_string_value(json_object_get(cut, "parent_id")), "7");
    json_decref(cut);
    /* A buffer whose own maximum is too small fails cleanly and is left as it was. */
    struct o2d_buf b;
    o2d_buf_init(&b, 100);
    assert_int_equal(o2d_buf_append_str(&b, "["), O2D_OK);
    assert_int_equal(llmobs_span_write(sp, TRACE_ID, 0, 5000000, &b), O2D_ERR_TOO_LARGE);
    assert_int_equal(b.len, 1);
    o2d_buf_cleanup(&b);
    llmobs_span_free(sp);
    o2d_arena_cleanup(&a);
}

/* The span keeps nothing from the request: build, reset and overwrite the arena, write. */
static void test_arena_independence(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    struct llmobs_span *sp = build(
        &a,
        "[" KV("gen_ai.operation.name", "chat") "," KV("gen_ai.request.model", "gpt-4o") "," KV(
            "gen_ai.provider.name",
            "OpenAI") ",{\"key\":\"gen_ai.input.messages\",\"value\":{\"stringValue\":"
                      "\"[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\","
                      "\\\"content\\\":\\\"hello\\\"}]}]\"}}]",
        NULL);
    o2d_arena_reset(&a);
    for (int i = 0; i < 64; i++) {
        void *p = o2d_arena_alloc(&a, 4096);
        assert_non_null(p);
        memset(p, 0xA5, 4096);
    }
    o2d_arena_cleanup(&a);
    json_t *j = write_json(sp, 0, 5000000, NULL);
    json_t *meta = json_object_get(j, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "model_name")), "gpt-4o");
    assert_string_equal(json_string_value(json_object_get(meta, "model_provider")), "openai");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "s");
    json_t *m0 = json_array_get(json_object_get(json_object_get(meta, "input"), "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "content")), "hello");
    const struct llmobs_ids *ids = llmobs_span_ids(sp);
    assert_int_equal(ids->span_id, 0x00f067aa0ba902b7ULL);
    assert_int_equal(ids->trace_id[0], 0x5b);
    assert_int_equal(ids->parent_span_id, 0);
    json_decref(j);
    llmobs_span_free(sp);
}

/* Invalid UTF-8 anywhere (content, names, JSON text) is repaired, never written raw. */
static void test_invalid_utf8(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    OtlpSpan *s = (OtlpSpan *)decode_span(
        &a,
        "[" KV("gen_ai.operation.name", "chat") "," KV("gen_ai.input.messages", "x") "," KV(
            "gen_ai.output.messages", "x") "," KV("gen_ai.tool.name", "x") "]",
        NULL);
    /* protobuf strings are not checked for UTF-8: put bad bytes where a client could. */
    static char in[] = "[{\"role\":\"user\",\"content\":\"caf\xC3 \xFF\xFE ok\"}]";
    static char out[] = "not json \xE2\x82";
    static char name[] = "na\xC0\xAFme";
    s->attributes[1]->value->string_value = in;
    s->attributes[2]->value->string_value = out;
    s->name = name;
    struct llmobs_span *sp = NULL;
    assert_int_equal(llmobs_span_build(NULL, NULL, s, LLMOBS_LLM, NULL, &sp), O2D_OK);
    o2d_arena_cleanup(&a);
    json_t *j = write_json(sp, 0, 5000000, NULL); /* jansson refuses invalid UTF-8 */
    json_t *meta = json_object_get(j, "meta");
    const char *c = json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(meta, "input"), "messages"), 0), "content"));
    assert_string_equal(c, "caf\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD ok");
    const char *o = json_string_value(json_object_get(json_object_get(meta, "output"), "value"));
    assert_string_equal(o, "not json \xEF\xBF\xBD\xEF\xBF\xBD"); /* one per bad byte */
    assert_non_null(strstr(json_string_value(json_object_get(j, "name")), "\xEF\xBF\xBD"));
    json_t *errs = json_object_get(j, "collection_errors");
    assert_string_equal(json_string_value(json_array_get(errs, 0)),
                        "otel_warning_output_malformed");
    /* tags: ml_app falls back to unnamed-ml-app without service or config */
    int found = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(j, "tags"), i, t)
    {
        found |= strcmp(json_string_value(t), "ml_app:unnamed-ml-app") == 0;
    }
    assert_true(found);
    json_decref(j);
    llmobs_span_free(sp);
}

/* Deep, huge-index and wrongly typed content never fails the build. */
static void test_malformed(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    char deep[8192];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n,
                          "[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":"
                          "[{\\\"type\\\":\\\"tool_call\\\","
                          "\\\"name\\\":\\\"f\\\",\\\"arguments\\\":");
    for (int i = 0; i < 500; i++) {
        deep[n++] = '[';
    }
    for (int i = 0; i < 500; i++) {
        deep[n++] = ']';
    }
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}]}]");
    char attrs[16384];
    snprintf(
        attrs, sizeof(attrs),
        "[" KV("gen_ai.operation.name",
               "chat") ",{\"key\":\"gen_ai.input.messages\",\"value\":"
                       "{\"stringValue\":\"%s\"}}," KV("gen_ai.prompt.999999999.content",
                                                       "far") "," KV("gen_ai.prompt.1023.content",
                                                                     "last") ","
                                                                             "{\"key\":\"gen_ai."
                                                                             "output.messages\","
                                                                             "\"value\":{"
                                                                             "\"intValue\":"
                                                                             "\"5\"}}]",
        deep);
    struct llmobs_span *sp = build(&a, attrs, NULL);
    json_t *j = write_json(sp, 0, 5000000, NULL);
    json_t *errs = json_object_get(j, "collection_errors");
    assert_true(json_array_size(errs) >= 1);
    json_decref(j);
    llmobs_span_free(sp);
    o2d_arena_cleanup(&a);
}

/* OpenInference llm.tools and tag.tags are bounded: 128 tool definitions, 32 span tags. */
static void test_bounds(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    static char attrs[60000];
    size_t n =
        (size_t)snprintf(attrs, sizeof(attrs),
                         "[" KV("openinference.span.kind", "LLM") ",{\"key\":\"tag.tags\","
                                                                  "\"value\":{\"arrayValue\":"
                                                                  "{\"values\":[");
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "%s{\"stringValue\":\"t%d\"}",
                              i > 0 ? "," : "", i);
    }
    n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "]}}}");
    for (int i = 0; i < 140; i++) {
        n += (size_t)snprintf(attrs + n, sizeof(attrs) - n,
                              ",{\"key\":\"llm.tools.%d.tool.json_schema\",\"value\":{"
                              "\"stringValue\":\"{\\\"name\\\":\\\"f%d\\\"}\"}}",
                              i, i);
    }
    snprintf(attrs + n, sizeof(attrs) - n, "]");
    struct llmobs_span *sp = build(&a, attrs, NULL);
    json_t *j = write_json(sp, 0, 5000000, NULL);
    json_t *defs = json_object_get(json_object_get(j, "meta"), "tool_definitions");
    assert_int_equal(json_array_size(defs), 128);
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 127), "name")),
                        "f127");
    size_t i, span_tags = 0;
    json_t *t;
    json_array_foreach(json_object_get(j, "tags"), i, t)
    {
        span_tags += json_string_value(t)[0] == 't' && strchr(json_string_value(t), ':') == NULL;
    }
    assert_int_equal(span_tags, 32);
    assert_null(json_object_get(j, "collection_errors"));
    json_decref(j);
    llmobs_span_free(sp);
    o2d_arena_cleanup(&a);
}

static const OtlpLogRecord *decode_log(struct o2d_arena *a, const char *record)
{
    char body[8192];
    snprintf(body, sizeof(body), "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[%s]}]}]}",
             record);
    struct otlp_request req;
    const char *reason = NULL;
    assert_int_equal(otlp_decode(a, OTLP_SIGNAL_LOGS, OTLP_ENC_JSON, (const uint8_t *)body,
                                 strlen(body), &req, &reason),
                     O2D_OK);
    return req.msg.logs->resource_logs[0]->scope_logs[0]->log_records[0];
}

#define IDS "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"00f067aa0ba902b7\""

static void test_logs(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    assert_true(llmobs_log_is_genai(decode_log(&a, "{" IDS ",\"eventName\":\"gen_ai.choice\"}")));
    assert_true(llmobs_log_is_genai(
        decode_log(&a, "{" IDS ",\"attributes\":[" KV("event.name", "gen_ai.user.message") "]}")));
    assert_true(llmobs_log_is_genai(
        decode_log(&a, "{" IDS ",\"eventName\":\"gen_ai.client.inference.operation.details\"}")));
    assert_false(llmobs_log_is_genai(decode_log(&a, "{" IDS ",\"eventName\":\"http.request\"}")));
    assert_false(llmobs_log_is_genai(decode_log(&a, "{" IDS "}")));
    assert_false(
        llmobs_log_is_genai(decode_log(&a, "{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
                                           "\"eventName\":\"gen_ai.choice\"}")));

    /* A log on a non-llm span is ignored; on an llm span an input.value is replaced. */
    struct llmobs_span *tool = build(&a, "[" KV("gen_ai.operation.name", "execute_tool") "]", NULL);
    const OtlpLogRecord *user = decode_log(
        &a, "{" IDS ",\"eventName\":\"gen_ai.user.message\",\"body\":{\"stringValue\":\"hi\"}}");
    assert_int_equal(llmobs_span_add_log(tool, user), O2D_OK);
    json_t *j = write_json(tool, 0, 5000000, NULL);
    assert_null(json_object_get(json_object_get(j, "meta"), "input"));
    json_decref(j);
    llmobs_span_free(tool);

    struct llmobs_span *llm =
        build(&a, "[" KV("gen_ai.operation.name", "chat") "," KV("input.value", "raw") "]", NULL);
    assert_int_equal(llmobs_span_add_log(llm, user), O2D_OK);
    const OtlpLogRecord *choice =
        decode_log(&a, "{" IDS ",\"eventName\":\"gen_ai.choice\",\"body\":{\"intValue\":\"3\"}}");
    assert_int_equal(llmobs_span_add_log(llm, choice), O2D_OK);
    j = write_json(llm, 0, 5000000, NULL);
    json_t *in = json_object_get(json_object_get(j, "meta"), "input");
    assert_null(json_object_get(in, "value"));
    json_t *m0 = json_array_get(json_object_get(in, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "role")), "user");
    assert_string_equal(json_string_value(json_object_get(m0, "content")), "hi");
    json_decref(j);
    llmobs_span_free(llm);
    o2d_arena_cleanup(&a);
}

/* Every allocation failure is reported as NOMEM and leaks nothing (run under ASan). */
static void test_failmalloc(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    const OtlpSpan *s = decode_span(
        &a,
        "[" KV("gen_ai.operation.name", "chat") "," KV("gen_ai.prompt.0.role", "user") "," KV(
            "gen_ai.prompt.0.content", "hi") "," KV("gen_ai.tool.name", "t") "," KV("session.id",
                                                                                    "s") "]",
        ",\"status\":{\"code\":2,\"message\":\"boom\"}");
    int ok = 0;
    for (long n = 0; n < 400 && !ok; n++) {
        o2d_alloc_fail_after(n);
        struct llmobs_span *sp = NULL;
        int rv = llmobs_span_build(NULL, NULL, s, LLMOBS_LLM, NULL, &sp);
        o2d_alloc_fail_after(-1);
        if (rv == O2D_OK) {
            assert_non_null(sp);
            ok = o2d_alloc_failures() == 0;
            llmobs_span_free(sp);
        } else {
            assert_int_equal(rv, O2D_ERR_NOMEM);
            assert_null(sp);
        }
    }
    assert_true(ok);
    o2d_arena_cleanup(&a);
}

/* A builder kept across builds (as the exporter keeps them) survives failed builds: every
 * failure is NOMEM, and a build after it writes what a fresh builder writes. */
static void test_builder_reuse(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    const OtlpSpan *s = decode_span(
        &a,
        "[" KV("gen_ai.operation.name", "chat") "," KV(
            "gen_ai.input.messages",
            "[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\","
            "\\\"content\\\":\\\"hi\\\"}]}]") "," KV("gen_ai.request.temperature",
                                                     "0.2") "," KV("gen_ai.system_instructions",
                                                                   "be brief") "]",
        NULL);
    struct llmobs_span *fresh = NULL;
    assert_int_equal(llmobs_span_build(NULL, NULL, s, LLMOBS_LLM, NULL, &fresh), O2D_OK);
    size_t want_len = 0;
    json_t *want = write_json(fresh, 0, 5000000, &want_len);
    struct llmobs_builder *bl = NULL;
    assert_int_equal(llmobs_builder_new(&bl), O2D_OK);
    for (long n = 0; n < 120; n++) {
        o2d_alloc_fail_after(n);
        struct llmobs_span *sp = NULL;
        int rv = llmobs_span_build_with(bl, NULL, NULL, s, LLMOBS_LLM, NULL, &sp);
        o2d_alloc_fail_after(-1);
        assert_true(rv == O2D_OK || rv == O2D_ERR_NOMEM);
        llmobs_span_free(sp);
        /* and the next build with the same builder is whole */
        assert_int_equal(llmobs_span_build_with(bl, NULL, NULL, s, LLMOBS_LLM, NULL, &sp), O2D_OK);
        size_t len = 0;
        json_t *got = write_json(sp, 0, 5000000, &len);
        assert_int_equal(len, want_len);
        assert_true(json_equal(got, want));
        json_decref(got);
        llmobs_span_free(sp);
    }
    llmobs_builder_free(bl);
    json_decref(want);
    llmobs_span_free(fresh);
    o2d_arena_cleanup(&a);
}

static uint64_t fm_state = 0x853c49e6748fea9bull;

static uint32_t fm_rnd(uint32_t n)
{
    fm_state ^= fm_state << 13;
    fm_state ^= fm_state >> 7;
    fm_state ^= fm_state << 17;
    return (uint32_t)((fm_state >> 16) % n);
}

static void fm_ws(struct o2d_buf *t)
{
    static const char *const ws[] = {"", "", "", " ", "\n  ", "\t"};
    o2d_buf_append_str(t, ws[fm_rnd(6)]);
}

/* A random tool_call or tool_call_response part, keys in a random order: mostly what the
 * fast reader takes, sometimes a shape it must leave to the general one (reals, a key twice,
 * NULs, deep nesting, other types). */
static void fm_tool_part(struct o2d_buf *t)
{
    static const char *const ids[] = {"\"call_1\"", "\"call_\\u00e9\"", "\"c\\u0000d\"", "7",
                                      "\"\""};
    static const char *const names[] = {"\"get_order\"", "\"search_faq\"", "\"\"", "\"n\\u0000m\"",
                                        "null"};
    static const char *const args[] = {
        "{\"order_id\":\"88231\",\"top_k\":4}",
        "{}",
        "{ \"a\" : { \"b\" : [ 1 , true , false , null , \"x\\n\\\"y\\\"\" , [] , {} ] } }",
        "{\"q\":-0,\"big\":9223372036854775807,\"neg\":-9223372036854775808}",
        "{\"c\\u00e9\":\"\\ud83d\\ude00\",\"s\\/\":\"nul \\u0000 in\"}",
        "{\"a\":1,\"a\":2}",
        "{\"r\":1.5}",
        "{\"e\":1e3}",
        "{\"k\\u0000\":1}",
        "{\"over\":92233720368547758070}",
        "\"{\\\"q\\\":1}\"",
        "[1,2]",
        "{\"d\":[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
        "{\"bad\":\"\xc3 x\"}"};
    static const char *const resps[] = {"{\"result\":\"ok\",\"n\":3}",
                                        "\"plain text\"",
                                        "\"line\\nbreak\"",
                                        "null",
                                        "[1,\"two\",{\"3\":[]}]",
                                        "42",
                                        "true",
                                        "{\"x\":1e3}",
                                        "{\"a\":1,\"a\":1}"};
    char kv[6][160];
    int n = 0;
    int call = fm_rnd(2) == 0;
    snprintf(kv[n++], sizeof(kv[0]), "\"type\":%s",
             call ? (fm_rnd(12) == 0 ? "\"function\"" : "\"tool_call\"")
                  : "\"tool_call_response\"");
    if (fm_rnd(6) != 0) {
        snprintf(kv[n++], sizeof(kv[0]), "\"id\":%s", ids[fm_rnd(10) < 7 ? 0 : fm_rnd(5)]);
    }
    if (call ? fm_rnd(8) != 0 : fm_rnd(3) == 0) {
        snprintf(kv[n++], sizeof(kv[0]), "\"name\":%s", names[fm_rnd(10) < 7 ? 0 : fm_rnd(5)]);
    }
    if (call) {
        if (fm_rnd(10) != 0) {
            snprintf(kv[n++], sizeof(kv[0]), "\"arguments\":%s",
                     args[fm_rnd(10) < 5 ? fm_rnd(2) : fm_rnd(14)]);
        }
    } else if (fm_rnd(10) != 0) {
        snprintf(kv[n++], sizeof(kv[0]), "\"%s\":%s", fm_rnd(10) == 0 ? "result" : "response",
                 resps[fm_rnd(10) < 5 ? fm_rnd(2) : fm_rnd(9)]);
    }
    if (fm_rnd(12) == 0) {
        snprintf(kv[n++], sizeof(kv[0]), "\"content\":\"x\"");
    }
    for (int i = n - 1; i > 0; i--) {
        int j = (int)fm_rnd((uint32_t)i + 1);
        char tmp[160];
        memcpy(tmp, kv[i], sizeof(tmp));
        memcpy(kv[i], kv[j], sizeof(tmp));
        memcpy(kv[j], tmp, sizeof(tmp));
    }
    o2d_buf_append_str(t, "{");
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            o2d_buf_append_str(t, ",");
        }
        fm_ws(t);
        o2d_buf_append_str(t, kv[i]);
    }
    fm_ws(t);
    o2d_buf_append_str(t, "}");
}

/* A random messages text: mostly the shape the fast reader takes, sometimes not. */
static void fm_text(struct o2d_buf *t)
{
    static const char *const roles[] = {
        "\"user\"", "\"system\"", "\"assistant\"", "\"t\\u006fol\"", "\"\"", "\"a\\u0000b\"", "7"};
    static const char *const texts[] = {"\"Where is order 88231?\"",
                                        "\"\"",
                                        "\"line\\nbreak \\\"quoted\\\" \\\\\"",
                                        "\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"",
                                        "\"bad \xc3 utf8\"",
                                        "\"nul \\u0000 in\"",
                                        "\"ctl \\u0001\"",
                                        "null",
                                        "[\"x\"]"};
    static const char *const keys[] = {"\"role\"",    "\"parts\"", "\"finish_reason\"",
                                       "\"content\"", "\"name\"",  "\"r\\u006fle\""};
    o2d_buf_reset(t);
    fm_ws(t);
    o2d_buf_append_str(t, "[");
    int n_msgs = (int)fm_rnd(4);
    for (int m = 0; m < n_msgs; m++) {
        if (m > 0) {
            o2d_buf_append_str(t, ",");
        }
        fm_ws(t);
        o2d_buf_append_str(t, "{");
        /* usually role + parts (+ finish_reason), in a random order; sometimes other keys */
        int order[4] = {0, 1, 2, 3};
        int n_keys = fm_rnd(8) == 0 ? 4 : 2 + (int)fm_rnd(2);
        for (int i = n_keys - 1; i > 0; i--) {
            int j = (int)fm_rnd((uint32_t)i + 1), x = order[i];
            order[i] = order[j];
            order[j] = x;
        }
        for (int i = 0; i < n_keys; i++) {
            int k = order[i] == 3 ? 3 + (int)fm_rnd(3) : order[i];
            if (i > 0) {
                o2d_buf_append_str(t, ",");
            }
            fm_ws(t);
            o2d_buf_append_str(t, keys[k]);
            fm_ws(t);
            o2d_buf_append_str(t, ":");
            fm_ws(t);
            if (k == 0 || k == 5) {
                o2d_buf_append_str(t, roles[fm_rnd(10) < 7 ? fm_rnd(3) : fm_rnd(7)]);
            } else if (k == 1) {
                o2d_buf_append_str(t, "[");
                int n_parts = (int)fm_rnd(4);
                for (int p = 0; p < n_parts; p++) {
                    if (p > 0) {
                        o2d_buf_append_str(t, ",");
                    }
                    const char *type = fm_rnd(8) == 0 ? "\"tool_call\"" : "\"text\"";
                    const char *text = texts[fm_rnd(10) < 6 ? fm_rnd(4) : fm_rnd(9)];
                    if (fm_rnd(3) == 0) {
                        fm_tool_part(t);
                    } else if (fm_rnd(2)) {
                        o2d_buf_printf(t, "{\"type\":%s,\"content\":%s}", type, text);
                    } else {
                        o2d_buf_printf(t, "{ \"content\" : %s , \"type\" : %s }", text, type);
                    }
                }
                o2d_buf_append_str(t, "]");
            } else {
                o2d_buf_append_str(t, texts[fm_rnd(10) < 8 ? 0 : fm_rnd(9)]);
            }
            fm_ws(t);
        }
        o2d_buf_append_str(t, "}");
    }
    fm_ws(t);
    o2d_buf_append_str(t, "]");
    fm_ws(t);
    /* and now and then a byte changed anywhere */
    if (fm_rnd(6) == 0 && t->len > 0) {
        static const char junk[] = "{}[]:,\"\\ ax0\x80";
        t->data[fm_rnd((uint32_t)t->len)] = (uint8_t)junk[fm_rnd(sizeof(junk) - 1)];
    }
}

static int has_bytes(const struct o2d_buf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->len; i++) {
        if (memcmp(b->data + i, s, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* llmobs_messages_write_fast writes exactly what the general reader writes, or nothing. */
static void test_fast_messages(void **state)
{
    (void)state;
    struct o2d_buf t, b1, b2;
    o2d_buf_init(&t, 1 << 20);
    o2d_buf_init(&b1, 1 << 20);
    o2d_buf_init(&b2, 1 << 20);
    size_t fast = 0, fast_tools = 0, rounds = 40000;
    for (size_t i = 0; i < rounds; i++) {
        fm_text(&t);
        struct llmobs_errors e1 = {.n = 0}, e2 = {.n = 0};
        struct llmobs_ctx c1, c2;
        llmobs_ctx_init(&c1, &e1);
        llmobs_ctx_init(&c2, &e2);
        o2d_buf_reset(&b1);
        o2d_buf_reset(&b2);
        size_t n1 = 0, n2 = 0;
        int ok = llmobs_messages_write_fast(&c1, (const char *)t.data, t.len, &b1, &n1);
        if (ok) {
            json_t *j = llmobs_parse(&c2, (const char *)t.data, t.len);
            llmobs_messages_write(&c2, j, &b2, &n2, "otel_warning_input_malformed");
            json_decref(j);
            if (n1 != n2 || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0 ||
                e2.n != 0) {
                fail_msg("differs on %.*s:\n fast %.*s\n full %.*s", (int)t.len,
                         (const char *)t.data, (int)b1.len, (const char *)b1.data, (int)b2.len,
                         (const char *)b2.data);
            }
            assert_true(n1 > 0);
            fast++;
            fast_tools += has_bytes(&b1, "\"tool_");
        } else {
            assert_int_equal(b1.len, 0);
            assert_int_equal(n1, 0);
        }
        assert_int_equal(e1.n, 0);
        assert_false(c1.nomem);
        llmobs_ctx_cleanup(&c1);
        llmobs_ctx_cleanup(&c2);
    }
    /* the generator hits the fast path often enough for this to mean something, with tool
     * parts too */
    assert_true(fast > rounds / 10);
    assert_true(fast_tools > rounds / 50);
    o2d_buf_cleanup(&t);
    o2d_buf_cleanup(&b1);
    o2d_buf_cleanup(&b2);
}

/* A random gen_ai.system_instructions text: mostly text parts, sometimes not. */
static void fs_text(struct o2d_buf *t)
{
    static const char *const texts[] = {"\"You are a support agent.\"",
                                        "\"\"",
                                        "\"line\\nbreak \\\"quoted\\\" \\\\\"",
                                        "\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"",
                                        "\"bad \xc3 utf8\"",
                                        "\"nul \\u0000 in\"",
                                        "null",
                                        "[\"x\"]"};
    o2d_buf_reset(t);
    fm_ws(t);
    o2d_buf_append_str(t, "[");
    int n_parts = (int)fm_rnd(4);
    for (int p = 0; p < n_parts; p++) {
        if (p > 0) {
            o2d_buf_append_str(t, ",");
        }
        fm_ws(t);
        const char *type = fm_rnd(8) == 0 ? "\"blob\"" : "\"text\"";
        const char *text = texts[fm_rnd(10) < 6 ? fm_rnd(4) : fm_rnd(8)];
        if (fm_rnd(2)) {
            o2d_buf_printf(t, "{\"type\":%s,\"content\":%s}", type, text);
        } else {
            o2d_buf_printf(t, "{ \"content\" : %s , \"type\" : %s }", text, type);
        }
    }
    fm_ws(t);
    o2d_buf_append_str(t, "]");
    fm_ws(t);
    if (fm_rnd(6) == 0 && t->len > 0) {
        static const char junk[] = "{}[]:,\"\\ ax0\x80";
        t->data[fm_rnd((uint32_t)t->len)] = (uint8_t)junk[fm_rnd(sizeof(junk) - 1)];
    }
}

/* llmobs_system_read_fast reads exactly what the general reader reads (as written), or
 * nothing. */
static void test_fast_system(void **state)
{
    (void)state;
    struct o2d_buf t, b1, b2;
    o2d_buf_init(&t, 1 << 20);
    o2d_buf_init(&b1, 1 << 20);
    o2d_buf_init(&b2, 1 << 20);
    size_t fast = 0, rounds = 40000;
    for (size_t i = 0; i < rounds; i++) {
        fs_text(&t);
        struct llmobs_errors e1 = {.n = 0}, e2 = {.n = 0};
        struct llmobs_ctx c1, c2;
        llmobs_ctx_init(&c1, &e1);
        llmobs_ctx_init(&c2, &e2);
        o2d_buf_reset(&b1);
        o2d_buf_reset(&b2);
        size_t n1 = 0, n2 = 0;
        if (llmobs_system_read_fast(&c1, (const char *)t.data, t.len)) {
            llmobs_msg_write(&c1, &b1, &n1);
            json_t *j = llmobs_parse(&c2, (const char *)t.data, t.len);
            assert_true(llmobs_msg_read_system(&c2, j, NULL, 0));
            llmobs_msg_write(&c2, &b2, &n2);
            json_decref(j);
            if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0 || e2.n != 0) {
                fail_msg("differs on %.*s:\n fast %.*s\n full %.*s", (int)t.len,
                         (const char *)t.data, (int)b1.len, (const char *)b1.data, (int)b2.len,
                         (const char *)b2.data);
            }
            fast++;
        }
        assert_int_equal(e1.n, 0);
        assert_false(c1.nomem);
        llmobs_ctx_cleanup(&c1);
        llmobs_ctx_cleanup(&c2);
    }
    assert_true(fast > rounds / 10);
    o2d_buf_cleanup(&t);
    o2d_buf_cleanup(&b1);
    o2d_buf_cleanup(&b2);
}

/* One random OTLP/JSON KeyValue of an OpenLLMetry indexed family: mostly role and content
 * strings at small indices, sometimes what the fast reader leaves to the general one. */
/* Tool call arguments: objects, and text that is not one (or not certainly). */
static const char *const fi_args[] = {"{\\\"order_id\\\":\\\"88231\\\",\\\"top_k\\\":4}",
                                      "",
                                      " { \\\"a\\\" : [ 1 , true , null , { } ] } ",
                                      "not json",
                                      "[1]",
                                      "{\\\"r\\\":1.5}",
                                      "{\\\"a\\\":1,\\\"a\\\":2}",
                                      "{\\\"a\\\":1} x",
                                      "{\\\"s\\\":\\\"\\\\u00e9\\\\n\\\"}",
                                      "{"};

/* A whole OpenLLMetry tool call (name, arguments, maybe id) of completion 0, call j. */
static void fi_tool_call(struct o2d_buf *t, int j)
{
    o2d_buf_printf(t,
                   ",{\"key\":\"gen_ai.completion.0.tool_calls.%d.name\",\"value\":{"
                   "\"stringValue\":\"get_order\"}},{\"key\":\"gen_ai.completion.0.tool_calls.%d."
                   "arguments\",\"value\":{\"stringValue\":\"%s\"}}",
                   j, j, fi_args[fm_rnd(10)]);
    if (fm_rnd(2)) {
        o2d_buf_printf(t,
                       ",{\"key\":\"gen_ai.completion.0.tool_calls.%d.id\",\"value\":{"
                       "\"stringValue\":\"call_%d\"}}",
                       j, j);
    }
}

static void fi_attr(struct o2d_buf *t, const char *family)
{
    static const char *const fields[] = {"role",
                                         "content",
                                         "finish_reason",
                                         "role",
                                         "content",
                                         "tool_calls.0.name",
                                         "tool_calls.0.arguments",
                                         "tool_calls.0.id",
                                         "tool_calls.1.name",
                                         "tool_calls.1.arguments",
                                         "name",
                                         "tool_call_id",
                                         "tool_calls.x",
                                         "tool_calls.0.type",
                                         "tool_calls.7.name",
                                         "other"};
    static const char *const values[] = {"user",
                                         "assistant",
                                         "system",
                                         "tool",
                                         "",
                                         "Where is order 88231?",
                                         "line\\nbreak \\\"q\\\" \\\\ tab\\t",
                                         "caf\\u00e9 \\ud83d\\ude00",
                                         "{\\\"a\\\":1}"};
    static const char *const idx[] = {"0", "1", "2", "3", "5", "0", "1", "70", "x", "01"};
    const char *field = fields[fm_rnd(10) < 6 ? fm_rnd(5) : fm_rnd(16)];
    o2d_buf_printf(t, "{\"key\":\"%s.%s.%s\",\"value\":", family, idx[fm_rnd(10)], field);
    size_t fl = strlen(field);
    if (fm_rnd(16) == 0) {
        o2d_buf_append_str(t, "{\"intValue\":\"7\"}}");
    } else if (fl > 9 && strcmp(field + fl - 9, "arguments") == 0) {
        o2d_buf_printf(t, "{\"stringValue\":\"%s\"}}", fi_args[fm_rnd(10) < 3 ? 0 : fm_rnd(10)]);
    } else if (strncmp(field, "tool_calls.", 11) == 0) {
        o2d_buf_printf(t, "{\"stringValue\":\"%s\"}}",
                       fm_rnd(8) == 0 ? "" : (fm_rnd(2) ? "get_order" : "call_\\u00e9"));
    } else {
        o2d_buf_printf(t, "{\"stringValue\":\"%s\"}}", values[fm_rnd(9)]);
    }
}

/* A JSON text as an OTLP/JSON string value. */
static void fi_string_attr(struct o2d_buf *t, const char *key, const struct o2d_buf *text)
{
    o2d_buf_printf(t, ",{\"key\":\"%s\",\"value\":{\"stringValue\":", key);
    assert_int_equal(o2d_json_append_string(t, (const char *)text->data, text->len), O2D_OK);
    o2d_buf_append_str(t, "}}");
}

/* Whole spans (OpenLLMetry indexed attributes, OTel GenAI system instructions and messages)
 * built with the fast readers and without (llmobs_fast_off): the same events, byte for byte. */
static void test_fast_spans(void **state)
{
    (void)state;
    struct o2d_buf attrs, text, e1, e2;
    o2d_buf_init(&attrs, 1 << 20);
    o2d_buf_init(&text, 1 << 20);
    o2d_buf_init(&e1, 1 << 20);
    o2d_buf_init(&e2, 1 << 20);
    size_t with_messages = 0, with_calls = 0, rounds = 6000;
    for (size_t i = 0; i < rounds; i++) {
        o2d_buf_reset(&attrs);
        o2d_buf_append_str(&attrs,
                           "[" KV("traceloop.span.kind", "llm") "," KV(
                               "llm.request.type", "chat") "," KV("gen_ai.system", "openai"));
        int otel = fm_rnd(3) == 0;
        if (otel) {
            if (fm_rnd(2)) {
                fs_text(&text);
                fi_string_attr(&attrs, "gen_ai.system_instructions", &text);
            }
            if (fm_rnd(4)) {
                fm_text(&text);
                fi_string_attr(&attrs, "gen_ai.input.messages", &text);
            }
            if (fm_rnd(4)) {
                fm_text(&text);
                fi_string_attr(&attrs, "gen_ai.output.messages", &text);
            }
        }
        int n = (int)fm_rnd(9);
        for (int k = 0; k < n; k++) {
            o2d_buf_append_str(&attrs, ",");
            fi_attr(&attrs, fm_rnd(3) == 0 ? "gen_ai.completion" : "gen_ai.prompt");
        }
        if (fm_rnd(3) == 0) {
            o2d_buf_append_str(&attrs, "," KV("gen_ai.completion.0.role", "assistant"));
            for (int j = 0, nc = 1 + (int)fm_rnd(2); j < nc; j++) {
                fi_tool_call(&attrs, j);
            }
        }
        o2d_buf_append_str(&attrs, "]");
        assert_true(o2d_buf_append_byte(&attrs, 0) == O2D_OK);
        struct o2d_arena a;
        o2d_arena_init(&a, 8u << 20);
        struct llmobs_span *fast = NULL, *full = NULL;
        llmobs_fast_off = 0;
        fast = build(&a, (const char *)attrs.data, NULL);
        llmobs_fast_off = 1;
        full = build(&a, (const char *)attrs.data, NULL);
        llmobs_fast_off = 0;
        o2d_buf_reset(&e1);
        o2d_buf_reset(&e2);
        assert_int_equal(llmobs_span_write(fast, TRACE_ID, 7, 5000000, &e1), O2D_OK);
        assert_int_equal(llmobs_span_write(full, TRACE_ID, 7, 5000000, &e2), O2D_OK);
        if (e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0) {
            fail_msg("differs on %s:\n fast %.*s\n full %.*s", (const char *)attrs.data,
                     (int)e1.len, (const char *)e1.data, (int)e2.len, (const char *)e2.data);
        }
        with_messages += has_bytes(&e1, "\"messages\":[{");
        with_calls += has_bytes(&e1, "\"tool_calls\":[{");
        llmobs_span_free(fast);
        llmobs_span_free(full);
        o2d_arena_cleanup(&a);
    }
    assert_true(with_messages > rounds / 4);
    assert_true(with_calls > rounds / 50);
    o2d_buf_cleanup(&attrs);
    o2d_buf_cleanup(&text);
    o2d_buf_cleanup(&e1);
    o2d_buf_cleanup(&e2);
}

/* llmobs_real_write against what it always wrote: "%.15g", "%.17g" when that does not read
 * back, ".0" when neither has a point or an exponent. */
static void real_reference(char out[40], double d)
{
    snprintf(out, 40, "%.15g", d);
    if (strtod(out, NULL) != d) {
        snprintf(out, 40, "%.17g", d);
    }
    if (strpbrk(out, ".eE") == NULL) {
        strcat(out, ".0");
    }
}

static void test_real_write(void **state)
{
    (void)state;
    static const double fixed[] = {
        0.2,        0.7,         1.0,    0.1 + 0.2, 1e-4,  9.99e-5, 1e9,  999999999.999999,
        123456.789, -0.5,        -3.0,   0.0,       -0.0,  1e15,    1e16, 1e300,
        5e-324,     0.000123456, 2.5e-7, 1.0 / 3,   100.0, 42.125};
    char want[40];
    struct o2d_buf b;
    o2d_buf_init(&b, 1024);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < 200000; i++) {
        double d;
        if (i < sizeof(fixed) / sizeof(fixed[0])) {
            d = fixed[i];
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7};
            switch (i % 3) {
            case 0: /* short decimals, the fast path */
                d = (double)(x % 2000000000000ull) / scale[(x >> 40) % 8];
                break;
            case 1: /* any bits */
                memcpy(&d, &x, sizeof(d));
                break;
            default: /* [0, 2) with all digits */
                d = (double)(x >> 11) / 4503599627370496.0;
                break;
            }
            if (x & 1) {
                d = -d;
            }
        }
        if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
            continue;
        }
        real_reference(want, d);
        o2d_buf_reset(&b);
        assert_int_equal(llmobs_real_write(&b, d), O2D_OK);
        if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0) {
            fail_msg("%.17g: want %s, got %.*s", d, want, (int)b.len, (const char *)b.data);
        }
    }
    o2d_buf_cleanup(&b);
}

/* What a span inherits is spliced in as JSON: the session (member and tag, in sort order)
 * when it has none, the ml_app tag's value unless its own was set for its resource; both
 * escaped; a span with its own session keeps it; a truncated event keeps them too. */
static void test_write_inherit(void **state)
{
    (void)state;
    struct o2d_arena a;
    o2d_arena_init(&a, 16u << 20);
    struct llmobs_span *plain = build(&a, "[" KV("gen_ai.operation.name", "chat") "]", NULL);
    struct llmobs_span *own =
        build(&a, "[" KV("gen_ai.operation.name", "chat") "," KV("session.id", "mine") "]", NULL);
    struct llmobs_inherit inh = {.session = "s\"1\\u00e9", .ml_app = "up\\stream"};
    for (int drop = 0; drop < 2; drop++) {
        for (int k = 0; k < 2; k++) {
            struct o2d_buf b;
            o2d_buf_init(&b, 64u << 20);
            assert_int_equal(llmobs_span_write_inherit(k == 0 ? plain : own, TRACE_ID, 0, &inh,
                                                       drop ? 100 : 5000000, &b),
                             O2D_OK);
            assert_true(b.len <= llmobs_span_write_size(k == 0 ? plain : own, &inh));
            json_error_t err;
            json_t *j = json_loadb((const char *)b.data, b.len, 0, &err);
            assert_non_null(j);
            const char *want = k == 0 ? "s\"1\\u00e9" : "mine";
            assert_string_equal(json_string_value(json_object_get(j, "session_id")), want);
            char tag[64];
            snprintf(tag, sizeof(tag), "session_id:%s", want);
            int have_session = 0, have_ml_app = 0;
            size_t i;
            json_t *t;
            const char *prev = "";
            json_array_foreach(json_object_get(j, "tags"), i, t)
            {
                const char *v = json_string_value(t);
                assert_true(strcmp(prev, v) < 0);
                prev = v;
                have_session += strcmp(v, tag) == 0;
                have_ml_app += strcmp(v, "ml_app:up\\stream") == 0;
                assert_string_not_equal(v, "ml_app:app");
            }
            assert_int_equal(have_session, 1);
            assert_int_equal(have_ml_app, 1);
            json_decref(j);
            o2d_buf_cleanup(&b);
        }
    }
    /* NULL inherits nothing: the event llmobs_span_write writes */
    json_t *j = write_json(plain, 0, 5000000, NULL);
    assert_null(json_object_get(j, "session_id"));
    json_decref(j);
    llmobs_span_free(plain);
    llmobs_span_free(own);
    o2d_arena_cleanup(&a);
}

int main(void)
{
    /* as otel2dd installs it: builds take their jansson values from a scratch arena */
    json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_arena_independence),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_failmalloc),
        cmocka_unit_test(test_real_write),
        cmocka_unit_test(test_fast_messages),
        cmocka_unit_test(test_fast_system),
        cmocka_unit_test(test_fast_spans),
        cmocka_unit_test(test_builder_reuse),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_write_inherit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
