/*
 * fuzz_llmobs.c: the LLM Obs mapping on hostile content. The input is split at its first
 * NUL: the first part becomes the gen_ai.input.messages / gen_ai.output.messages /
 * gen_ai.system_instructions / gen_ai.tool.definitions attributes of an llm span (and the
 * indexed content of OpenLLMetry and OpenInference attributes), the second the body of
 * gen_ai.* log records (as a string, inside a kvlist, and as the operation-details
 * attributes), and also an inherited session and ml_app; then both parts as the ai.*
 * attributes of Vercel AI SDK spans. Oracles: build and add_log succeed, and every written
 * event is valid JSON (jansson parses it, which also rejects invalid UTF-8), with or without
 * truncation; spans built with one builder for a request (llmobs_builder_begin) write the
 * same bytes as spans built alone, the resource and configured tags hostile too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "llmobs.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "o2d_json_in.h"
#include "otlp.h"

#define STR OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define KVL OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE

static void set_str(OtlpAnyValue *v, char *s)
{
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = STR;
    v->string_value = s;
}

static void set_kv(OtlpKeyValue *kv, OtlpAnyValue *v, const char *key, char *s)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = (char *)key;
    kv->value = v;
    set_str(v, s);
}

/* inherited: a session and ml_app from an ancestor spliced in (NULL: none). */
static void check(const struct llmobs_span *sp, size_t max, const char *inherited)
{
    struct o2d_buf b;
    o2d_buf_init(&b, 64u << 20);
    struct llmobs_inherit inh = {.session = inherited, .ml_app = inherited};
    if (llmobs_span_write_inherit(sp, "0123456789abcdef0123456789abcdef", 42,
                                  inherited != NULL ? &inh : NULL, max, &b) != O2D_OK) {
        abort();
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)b.data, b.len, JSON_ALLOW_NUL, &err);
    if (j == NULL || !json_is_object(j)) {
        abort();
    }
    json_decref(j);
    o2d_buf_cleanup(&b);
}

/* Spans of one resource built with one builder between llmobs_builder_begin and _end share
 * their tags: each event must be the bytes a span built alone writes. The resource and the
 * configured tags carry hostile text (p1, p2). */
static void shared_builder(const OtlpSpan *s, char *p1, char *p2)
{
    static const char *const rkeys[] = {"service.name", "deployment.environment.name",
                                        "service.version", "telemetry.sdk.language"};
    OtlpKeyValue rkv[4], *rkvp[4];
    OtlpAnyValue rv[4];
    for (int i = 0; i < 4; i++) {
        set_kv(&rkv[i], &rv[i], rkeys[i], i % 2 == 0 ? p2 : p1);
        rkvp[i] = &rkv[i];
    }
    OtlpResource res;
    opentelemetry__proto__resource__v1__resource__init(&res);
    res.attributes = rkvp;
    res.n_attributes = 4;
    const char *tags[] = {p1, "session_id:x", "env:y"};
    struct llmobs_config cfg = {.tags = tags, .n_tags = 3};
    struct llmobs_builder *bl = NULL;
    if (llmobs_builder_new(&bl) != O2D_OK) {
        abort();
    }
    llmobs_builder_begin(bl);
    static const enum llmobs_kind kinds[] = {LLMOBS_TASK, LLMOBS_LLM, LLMOBS_TASK};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct llmobs_span *a = NULL, *b = NULL;
        if (llmobs_span_build_with(bl, &res, NULL, s, kinds[k], &cfg, &a) != O2D_OK ||
            llmobs_span_build(&res, NULL, s, kinds[k], &cfg, &b) != O2D_OK) {
            abort();
        }
        struct llmobs_inherit inh = {.session = p2, .ml_app = p2};
        struct o2d_buf wa, wb;
        o2d_buf_init(&wa, 64u << 20);
        o2d_buf_init(&wb, 64u << 20);
        if (llmobs_span_write_inherit(a, "0123456789abcdef0123456789abcdef", 42, &inh, 5000000,
                                      &wa) != O2D_OK ||
            llmobs_span_write_inherit(b, "0123456789abcdef0123456789abcdef", 42, &inh, 5000000,
                                      &wb) != O2D_OK ||
            wa.len != wb.len || (wa.len > 0 && memcmp(wa.data, wb.data, wa.len) != 0)) {
            abort();
        }
        o2d_buf_cleanup(&wa);
        o2d_buf_cleanup(&wb);
        llmobs_span_free(a);
        llmobs_span_free(b);
    }
    llmobs_builder_end(bl);
    llmobs_builder_free(bl);
}

/* Vercel AI SDK v4-v6 spans (llmobs_vercel.c): the first part as every ai.* content attribute,
 * the second as the provider, model, function id and metadata, for each operation. */
static void vercel_spans(char *p1, char *p2, size_t size)
{
    static const char *const ops[] = {"ai.generateText",
                                      "ai.generateText.doGenerate",
                                      "ai.streamText.doStream",
                                      "ai.generateObject",
                                      "ai.embed",
                                      "ai.embedMany",
                                      "ai.embedMany.doEmbed",
                                      "ai.toolCall"};
    static const char *const keys[] = {
        "ai.operationId",
        "ai.prompt",
        "ai.prompt.messages",
        "ai.prompt.tools",
        "ai.response.text",
        "ai.response.object",
        "ai.response.toolCalls",
        "ai.schema",
        "ai.value",
        "ai.values",
        "ai.embedding",
        "ai.toolCall.name",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "ai.response.providerMetadata",
        "ai.usage.inputTokens",
        "ai.model.provider",
        "ai.model.id",
        "ai.settings.maxRetries",
        "ai.telemetry.functionId",
        "ai.telemetry.metadata.sessionId",
    };
    enum { NK = sizeof(keys) / sizeof(keys[0]) };
    OtlpKeyValue kv[NK], *kvp[NK];
    OtlpAnyValue v[NK];
    uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t sid[8] = {0, 0, 0, 0, 0, 0, 0, 9};
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        for (size_t i = 0; i < NK; i++) {
            set_kv(&kv[i], &v[i], keys[i], i >= NK - 5 ? p2 : p1);
            kvp[i] = &kv[i];
        }
        set_str(&v[0], (char *)ops[o]);
        OtlpSpan s;
        opentelemetry__proto__trace__v1__span__init(&s);
        s.trace_id.data = tid;
        s.trace_id.len = 16;
        s.span_id.data = sid;
        s.span_id.len = 8;
        s.name = (char *)ops[o];
        s.attributes = kvp;
        s.n_attributes = NK;
        enum llmobs_kind k = llmobs_classify(&s);
        if (k == LLMOBS_NONE) {
            abort();
        }
        struct llmobs_span *sp = NULL;
        if (llmobs_span_build(NULL, NULL, &s, k, NULL, &sp) != O2D_OK) {
            abort();
        }
        check(sp, 5000000, NULL);
        check(sp, size % 512, NULL);
        llmobs_span_free(sp);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int hooks;
    if (!hooks) {
        /* as otel2dd installs it: builds take their jansson values from a scratch arena */
        json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free);
        hooks = 1;
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul != NULL ? (size_t)(nul - data) : size;
    size_t n2 = nul != NULL ? size - n1 - 1 : 0;
    char *p1 = o2d_strndup((const char *)data, n1);
    char *p2 = o2d_strndup(nul != NULL ? (const char *)nul + 1 : "", n2);
    if (p1 == NULL || p2 == NULL) {
        abort();
    }

    static const char *const keys[] = {
        "gen_ai.operation.name",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.prompt.0.tool_calls.0.arguments",
        "gen_ai.completion.0.content",
        "llm.input_messages.1.message.contents.0.message_content.text",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
        "llm.tools.0.tool.json_schema",
        "llm.invocation_parameters",
        "_dd.ml_obs.metadata",
        "gen_ai.usage.input_tokens",
        "gen_ai.retrieval.documents",
    };
    enum { NK = sizeof(keys) / sizeof(keys[0]) };
    OtlpKeyValue kv[NK], *kvp[NK];
    OtlpAnyValue v[NK];
    for (size_t i = 0; i < NK; i++) {
        set_kv(&kv[i], &v[i], keys[i], i == 0 ? (char *)"chat" : p1);
        kvp[i] = &kv[i];
    }
    uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t sid[8] = {0, 0, 0, 0, 0, 0, 0, 7};
    OtlpSpan s;
    opentelemetry__proto__trace__v1__span__init(&s);
    s.trace_id.data = tid;
    s.trace_id.len = 16;
    s.span_id.data = sid;
    s.span_id.len = 8;
    s.name = p2;
    s.attributes = kvp;
    s.n_attributes = NK;

    /* The same attributes on spans of the other kinds. */
    static const enum llmobs_kind kinds[] = {LLMOBS_LLM,  LLMOBS_EMBEDDING, LLMOBS_RETRIEVAL,
                                             LLMOBS_TOOL, LLMOBS_AGENT,     LLMOBS_WORKFLOW};
    (void)llmobs_classify(&s);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct llmobs_span *sp = NULL;
        if (llmobs_span_build(NULL, NULL, &s, kinds[k], NULL, &sp) != O2D_OK) {
            abort();
        }

        /* Log records: body as a string, body as {content, role, id, tool_calls, message},
         * and operation details with the content as attributes. */
        OtlpLogRecord r;
        opentelemetry__proto__logs__v1__log_record__init(&r);
        r.trace_id = s.trace_id;
        r.span_id = s.span_id;
        OtlpAnyValue body, fields[5];
        OtlpKeyValue fkv[5], *fkvp[5];
        static const char *const fkeys[] = {"content", "role", "id", "tool_calls", "message"};
        for (int i = 0; i < 5; i++) {
            set_kv(&fkv[i], &fields[i], fkeys[i], p2);
            fkvp[i] = &fkv[i];
        }
        Opentelemetry__Proto__Common__V1__KeyValueList kvl;
        opentelemetry__proto__common__v1__key_value_list__init(&kvl);
        kvl.values = fkvp;
        kvl.n_values = 5;

        static const char *const events[] = {"gen_ai.user.message", "gen_ai.tool.message",
                                             "gen_ai.choice", "gen_ai.assistant.message"};
        for (int e = 0; e < 4; e++) {
            r.event_name = (char *)events[e];
            set_str(&body, p2);
            r.body = &body;
            if (!llmobs_log_is_genai(&r) || llmobs_span_add_log(sp, &r) != O2D_OK) {
                abort();
            }
            opentelemetry__proto__common__v1__any_value__init(&body);
            body.value_case = KVL;
            body.kvlist_value = &kvl;
            if (llmobs_span_add_log(sp, &r) != O2D_OK) {
                abort();
            }
        }
        r.event_name = (char *)"gen_ai.client.inference.operation.details";
        r.body = NULL;
        OtlpKeyValue dkv[2], *dkvp[2];
        OtlpAnyValue dv[2];
        set_kv(&dkv[0], &dv[0], "gen_ai.input.messages", p2);
        set_kv(&dkv[1], &dv[1], "gen_ai.output.messages", p2);
        dkvp[0] = &dkv[0];
        dkvp[1] = &dkv[1];
        r.attributes = dkvp;
        r.n_attributes = 2;
        if (llmobs_span_add_log(sp, &r) != O2D_OK) {
            abort();
        }
        check(sp, 5000000, NULL);
        check(sp, size % 512, NULL);
        check(sp, 5000000, p2); /* hostile text as an inherited session and ml_app */
        llmobs_span_free(sp);
    }
    shared_builder(&s, p1, p2);
    vercel_spans(p1, p2, size);
    o2d_free(p1);
    o2d_free(p2);
    return 0;
}
