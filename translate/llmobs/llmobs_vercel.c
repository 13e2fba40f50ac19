/*
 * llmobs_vercel.c: Vercel AI SDK v4-v6 `experimental_telemetry` spans (ai.generateText,
 * ai.generateText.doGenerate, ai.streamText(.doStream), ai.generateObject, ai.streamObject,
 * ai.embed(.doEmbed), ai.embedMany(.doEmbed), ai.toolCall; attributes ai.operationId, ai.prompt*,
 * ai.response.*, ai.usage.*, ai.model.*, ai.telemetry.*, ai.toolCall.*) -> the span the rest of
 * llmobs.c reads: a copy of the span whose first attributes say the same thing in the OTel
 * GenAI names the builder already maps (gen_ai.input/output.messages in the parts form,
 * gen_ai.usage.*, gen_ai.provider.name, gen_ai.tool.*, input.value, output.value,
 * _dd.ml_obs.metadata, session.id).
 *
 * Which span is which kind and which attribute feeds which field follows Datadog's own
 * integration, dd-trace-js packages/dd-trace/src/llmobs/plugins/ai/index.js and util.js
 * (SPAN_NAME_TO_KIND_MAPPING, getUsage, getGenerationMetadata, getModelMetadata,
 * getToolCallResultContent) and packages/datadog-plugin-ai/src/utils.js (parseModelProvider).
 * Where we choose differently (README, "Vercel AI SDK"): the span name carries the telemetry
 * functionId as dd-trace-js's v7 plugin names it (getLlmObsSpanName), tool calls are named by
 * the toolName the span gives (dd-trace-js looks tools up by description in its own
 * registry), tool results are LLM Obs tool_results as for every other convention,
 * ai.telemetry.metadata.sessionId becomes the session id, and reasoning tokens are kept.
 *
 * v7 (@ai-sdk/otel) already speaks OTel GenAI and is mapped by llmobs.c; only its
 * agent_step operation is named there.
 *
 * Left to llmobs.c: everything written; this file only reads and re-expresses attributes.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llmobs_int.h"
#include "o2d.h"
#include "o2d_alloc.h"

#define STR_CASE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define INT_CASE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
#define DBL_CASE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE

/* More than the attributes one span ever gets from this file (13, an llm span). */
#define VERCEL_MAX_ATTRS 24

static const struct {
    const char *op; /* the last segment of ai.operationId */
    enum llmobs_kind kind;
} vercel_ops[] = {
    {"generateText", LLMOBS_WORKFLOW},   {"streamText", LLMOBS_WORKFLOW},
    {"generateObject", LLMOBS_WORKFLOW}, {"streamObject", LLMOBS_WORKFLOW},
    {"embed", LLMOBS_WORKFLOW},          {"embedMany", LLMOBS_WORKFLOW},
    {"doGenerate", LLMOBS_LLM},          {"doStream", LLMOBS_LLM},
    {"doEmbed", LLMOBS_EMBEDDING},       {"toolCall", LLMOBS_TOOL},
};

static const char *op_of(const char *operation_id)
{
    if (operation_id == NULL || strncmp(operation_id, "ai.", 3) != 0) {
        return NULL;
    }
    const char *dot = strrchr(operation_id, '.');
    return dot + 1;
}

enum llmobs_kind llmobs_vercel_kind(const char *operation_id)
{
    const char *op = op_of(operation_id);
    for (size_t i = 0; op != NULL && i < sizeof(vercel_ops) / sizeof(vercel_ops[0]); i++) {
        if (strcmp(op, vercel_ops[i].op) == 0) {
            return vercel_ops[i].kind;
        }
    }
    return LLMOBS_NONE;
}

/* The ai.* attributes read, first of each. */
enum vkey {
    V_OPERATION_ID,
    V_MODEL_ID,
    V_MODEL_PROVIDER,
    V_FUNCTION_ID,
    V_PROMPT,
    V_PROMPT_MESSAGES,
    V_PROMPT_TOOLS,
    V_RESPONSE_TEXT,
    V_RESPONSE_OBJECT,
    V_RESPONSE_TOOL_CALLS,
    V_RESPONSE_FINISH,
    V_PROVIDER_METADATA,
    V_SCHEMA,
    V_VALUE,
    V_VALUES,
    V_EMBEDDING,
    V_EMBEDDINGS,
    V_TOOL_NAME,
    V_TOOL_ID,
    V_TOOL_ARGS,
    V_TOOL_RESULT,
    V_U_INPUT,
    V_U_PROMPT,
    V_U_OUTPUT,
    V_U_COMPLETION,
    V_U_TOTAL,
    V_U_CACHED,
    V_U_CACHE_READ,
    V_U_CACHE_WRITE,
    V_U_REASONING,
    V_U_REASONING_DETAIL,
    V_U_TOKENS,
    V__COUNT
};

static const char *const vkey_names[V__COUNT] = {
    [V_OPERATION_ID] = "operationId",
    [V_MODEL_ID] = "model.id",
    [V_MODEL_PROVIDER] = "model.provider",
    [V_FUNCTION_ID] = "telemetry.functionId",
    [V_PROMPT] = "prompt",
    [V_PROMPT_MESSAGES] = "prompt.messages",
    [V_PROMPT_TOOLS] = "prompt.tools",
    [V_RESPONSE_TEXT] = "response.text",
    [V_RESPONSE_OBJECT] = "response.object",
    [V_RESPONSE_TOOL_CALLS] = "response.toolCalls",
    [V_RESPONSE_FINISH] = "response.finishReason",
    [V_PROVIDER_METADATA] = "response.providerMetadata",
    [V_SCHEMA] = "schema",
    [V_VALUE] = "value",
    [V_VALUES] = "values",
    [V_EMBEDDING] = "embedding",
    [V_EMBEDDINGS] = "embeddings",
    [V_TOOL_NAME] = "toolCall.name",
    [V_TOOL_ID] = "toolCall.id",
    [V_TOOL_ARGS] = "toolCall.args",
    [V_TOOL_RESULT] = "toolCall.result",
    [V_U_INPUT] = "usage.inputTokens",
    [V_U_PROMPT] = "usage.promptTokens",
    [V_U_OUTPUT] = "usage.outputTokens",
    [V_U_COMPLETION] = "usage.completionTokens",
    [V_U_TOTAL] = "usage.totalTokens",
    [V_U_CACHED] = "usage.cachedInputTokens",
    [V_U_CACHE_READ] = "usage.inputTokenDetails.cacheReadTokens",
    [V_U_CACHE_WRITE] = "usage.inputTokenDetails.cacheWriteTokens",
    [V_U_REASONING] = "usage.reasoningTokens",
    [V_U_REASONING_DETAIL] = "usage.outputTokenDetails.reasoningTokens",
    [V_U_TOKENS] = "usage.tokens",
};

struct llmobs_vercel {
    OtlpSpan span; /* the original's fields; name and attributes replaced */
    OtlpKeyValue kv[VERCEL_MAX_ATTRS];
    OtlpAnyValue av[VERCEL_MAX_ATTRS];
    size_t text_off[VERCEL_MAX_ATTRS]; /* string values written here: offsets into text */
    size_t n;
    struct o2d_buf text; /* string values, each NUL-terminated; then the name */
    OtlpKeyValue **attrs;
};

struct rw {
    struct llmobs_ctx *c;
    struct llmobs_vercel *v;
    const OtlpSpan *s;
    const OtlpAnyValue *a[V__COUNT];
    struct o2d_buf tmp;
};

static const char *sval(const OtlpAnyValue *v)
{
    return v != NULL && v->value_case == STR_CASE ? v->string_value : NULL;
}

static OtlpKeyValue *slot(struct rw *r, const char *key)
{
    struct llmobs_vercel *v = r->v;
    if (v->n == VERCEL_MAX_ATTRS) {
        abort(); /* an attribute added to this file past VERCEL_MAX_ATTRS: raise it */
    }
    size_t i = v->n++;
    opentelemetry__proto__common__v1__key_value__init(&v->kv[i]);
    opentelemetry__proto__common__v1__any_value__init(&v->av[i]);
    v->kv[i].key = (char *)key;
    v->kv[i].value = &v->av[i];
    v->text_off[i] = SIZE_MAX; /* not in text: set, or a copy of the span's own value */
    return &v->kv[i];
}

/* key = the bytes of tmp (moved to text; pointers are set when text stops growing). */
static void add_tmp(struct rw *r, const char *key)
{
    struct llmobs_vercel *v = r->v;
    OtlpKeyValue *kv = slot(r, key);
    kv->value->value_case = STR_CASE;
    v->text_off[v->n - 1] = v->text.len;
    llmobs_check(r->c, o2d_buf_append(&v->text, r->tmp.data, r->tmp.len));
    llmobs_check(r->c, o2d_buf_append_byte(&v->text, '\0'));
    o2d_buf_reset(&r->tmp);
}

static void add_text(struct rw *r, const char *key, const char *s, size_t n)
{
    o2d_buf_reset(&r->tmp);
    llmobs_check(r->c, o2d_buf_append(&r->tmp, s, n));
    add_tmp(r, key);
}

/* key = compact JSON text of j (NULL j: nothing). */
static void add_json(struct rw *r, const char *key, const json_t *j)
{
    if (j == NULL) {
        return;
    }
    o2d_buf_reset(&r->tmp);
    llmobs_check(r->c, llmobs_json_write(&r->tmp, j, 0));
    add_tmp(r, key);
}

static void add_int(struct rw *r, const char *key, long long n)
{
    OtlpKeyValue *kv = slot(r, key);
    kv->value->value_case = INT_CASE;
    kv->value->int_value = n;
}

/* key = the span's own value v, as it is (not copied: the copy borrows the span). */
static void add_same(struct rw *r, const char *key, const OtlpAnyValue *v)
{
    OtlpKeyValue *kv = slot(r, key);
    *kv->value = *v;
}

/* A token count: an integer, a whole double or decimal digits; 0 when absent or not one. */
static int count_of(const OtlpAnyValue *v, long long *out)
{
    if (v == NULL) {
        return 0;
    }
    if (v->value_case == INT_CASE) {
        *out = (long long)v->int_value;
        return 1;
    }
    if (v->value_case == DBL_CASE && v->double_value >= -9.2e18 && v->double_value <= 9.2e18 &&
        (double)(long long)v->double_value == v->double_value) {
        *out = (long long)v->double_value;
        return 1;
    }
    const char *s = sval(v);
    if (s != NULL && s[0] != '\0') {
        char *end;
        long long n = strtoll(s, &end, 10);
        if (*end == '\0') {
            *out = n;
            return 1;
        }
    }
    return 0;
}

static json_t *str(struct rw *r, const char *s)
{
    return s != NULL ? llmobs_str(r->c, s, strlen(s)) : NULL;
}

static json_t *obj(struct rw *r)
{
    json_t *o = json_object();
    if (o == NULL) {
        r->c->nomem = 1;
    }
    return o;
}

static json_t *arr(struct rw *r)
{
    json_t *a = json_array();
    if (a == NULL) {
        r->c->nomem = 1;
    }
    return a;
}

/* JSON text in a string attribute (or a structured value) parsed; NULL when absent. */
static json_t *parsed(struct rw *r, enum vkey k)
{
    return r->a[k] != NULL ? llmobs_value_json(r->c, r->a[k]) : NULL;
}

/* {"type": "text", "content": s} */
static json_t *text_part(struct rw *r, const json_t *s)
{
    json_t *p = obj(r);
    llmobs_set(r->c, p, "type", str(r, "text"));
    llmobs_set(r->c, p, "content", json_incref((json_t *)s));
    return p;
}

/* A tool call {toolCallId, toolName, args (v4) | input (v5+)} as an OTel GenAI part. */
static json_t *tool_call_part(struct rw *r, const json_t *tc)
{
    json_t *p = obj(r);
    const json_t *args = json_object_get(tc, "input");
    if (args == NULL) {
        args = json_object_get(tc, "args");
    }
    llmobs_set(r->c, p, "type", str(r, "tool_call"));
    llmobs_set(r->c, p, "id", json_incref(json_object_get(tc, "toolCallId")));
    llmobs_set(r->c, p, "name", json_incref(json_object_get(tc, "toolName")));
    llmobs_set(r->c, p, "arguments", json_incref((json_t *)args));
    return p;
}

/* Text of a tool result's `content` output (dd-trace-js formatToolCallContent). */
static json_t *content_output(struct rw *r, const json_t *parts)
{
    o2d_buf_reset(&r->tmp);
    size_t i;
    const json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *mt = json_string_value(json_object_get(p, "mediaType"));
        const char *piece = NULL;
        if (type == NULL) {
            return str(r, "[Unparsable Tool Result]");
        }
        if (strcmp(type, "text") == 0) {
            const json_t *t = json_object_get(p, "text");
            if (!json_is_string(t)) {
                return str(r, "[Unparsable Tool Result]");
            }
            llmobs_check(r->c,
                         o2d_buf_append(&r->tmp, json_string_value(t), json_string_length(t)));
            continue;
        }
        if (strncmp(type, "image", 5) == 0 ||
            ((strcmp(type, "media") == 0 || strcmp(type, "file") == 0) && mt != NULL &&
             strncmp(mt, "image", 5) == 0)) {
            piece = "[Image]";
        } else if (strcmp(type, "media") == 0 || strncmp(type, "file", 4) == 0) {
            piece = "[File]";
        } else if (strcmp(type, "custom") == 0) {
            piece = "[Custom Content]";
        } else {
            return str(r, "[Unparsable Tool Result]");
        }
        llmobs_check(r->c, o2d_buf_append(&r->tmp, piece, strlen(piece)));
    }
    json_t *s = llmobs_str(r->c, (const char *)r->tmp.data, r->tmp.len);
    o2d_buf_reset(&r->tmp);
    return s;
}

/* What a tool-result part says (dd-trace-js getToolCallResultContent): v5+ `output`
 * {type, value}, v4 `result`; JSON values stay JSON (written as their text later). */
static json_t *tool_result_value(struct rw *r, const json_t *part)
{
    const json_t *out = json_object_get(part, "output");
    if (out != NULL) {
        const char *type = json_string_value(json_object_get(out, "type"));
        const json_t *value = json_object_get(out, "value");
        if (type == NULL) {
            return str(r, "[Unparsable Tool Result]");
        }
        if (strcmp(type, "text") == 0 || strcmp(type, "error-text") == 0) {
            return json_is_string(value) ? json_incref((json_t *)value)
                                         : str(r, "[Unparsable Tool Result]");
        }
        if (strcmp(type, "json") == 0 || strcmp(type, "error-json") == 0) {
            return value != NULL ? json_incref((json_t *)value) : json_null();
        }
        if (strcmp(type, "content") == 0) {
            return json_is_array(value) ? content_output(r, value)
                                        : str(r, "[Unparsable Tool Result]");
        }
        if (strcmp(type, "execution-denied") == 0) {
            const json_t *reason = json_object_get(out, "reason");
            return json_is_string(reason) ? json_incref((json_t *)reason)
                                          : str(r, "[Tool Execution Denied]");
        }
        return str(r, "[Unparsable Tool Result]");
    }
    const json_t *res = json_object_get(part, "result");
    return res != NULL ? json_incref((json_t *)res) : str(r, "[Unsupported Tool Result]");
}

/* One ai.prompt.messages entry (a LanguageModel prompt message) as an OTel GenAI message
 * {role, parts}; NULL (and a collection error) when it is not one. */
static json_t *message(struct rw *r, const json_t *m)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    const json_t *content = json_object_get(m, "content");
    if (role == NULL) {
        llmobs_error(r->c, "otel_warning_message_malformed");
        return NULL;
    }
    json_t *msg = obj(r);
    json_t *parts = arr(r);
    llmobs_set(r->c, msg, "role", str(r, role));
    if (json_is_string(content)) {
        llmobs_push(r->c, parts, text_part(r, content));
    } else if (json_is_array(content)) {
        size_t i;
        const json_t *p;
        json_array_foreach(content, i, p)
        {
            const char *type = json_string_value(json_object_get(p, "type"));
            if (type == NULL) {
                continue;
            }
            if (strcmp(type, "text") == 0 && json_is_string(json_object_get(p, "text"))) {
                llmobs_push(r->c, parts, text_part(r, json_object_get(p, "text")));
            } else if (strcmp(type, "tool-call") == 0) {
                llmobs_push(r->c, parts, tool_call_part(r, p));
            } else if (strcmp(type, "tool-result") == 0) {
                json_t *tr = obj(r);
                llmobs_set(r->c, tr, "type", str(r, "tool_call_response"));
                llmobs_set(r->c, tr, "id", json_incref(json_object_get(p, "toolCallId")));
                llmobs_set(r->c, tr, "name", json_incref(json_object_get(p, "toolName")));
                llmobs_set(r->c, tr, "response", tool_result_value(r, p));
                llmobs_push(r->c, parts, tr);
            }
            /* image, file and reasoning parts: dd-trace-js leaves them out too */
        }
    } else if (content != NULL && !json_is_null(content)) {
        llmobs_error(r->c, "otel_warning_message_malformed");
    }
    llmobs_set(r->c, msg, "parts", parts);
    return msg;
}

/* The text of a prompt message's content: a string, or its text parts joined. */
static json_t *content_text(struct rw *r, const json_t *content)
{
    if (json_is_string(content)) {
        return json_incref((json_t *)content);
    }
    if (!json_is_array(content)) {
        return NULL;
    }
    o2d_buf_reset(&r->tmp);
    size_t i;
    const json_t *p;
    json_array_foreach(content, i, p)
    {
        const json_t *t = json_object_get(p, "text");
        if (json_is_string(t)) {
            llmobs_check(r->c,
                         o2d_buf_append(&r->tmp, json_string_value(t), json_string_length(t)));
        }
    }
    json_t *s = llmobs_str(r->c, (const char *)r->tmp.data, r->tmp.len);
    o2d_buf_reset(&r->tmp);
    return s;
}

/* ai.prompt {system, prompt, messages} -> input.value: the prompt, else the last user
 * message's text (dd-trace-js setTextGenerationTags). */
static void workflow_input(struct rw *r)
{
    json_t *p = parsed(r, V_PROMPT);
    if (p == NULL) {
        if (r->a[V_PROMPT] != NULL) {
            /* not JSON: the text as it is is better than nothing */
            llmobs_error(r->c, "otel_warning_input_malformed");
            add_same(r, "input.value", r->a[V_PROMPT]);
        }
        return;
    }
    json_t *text = NULL;
    const json_t *prompt = json_object_get(p, "prompt");
    const json_t *msgs = json_object_get(p, "messages");
    if (json_is_string(prompt)) {
        text = json_incref((json_t *)prompt);
    } else if (json_is_array(prompt) || json_is_array(msgs)) {
        /* v5+ also accepts the messages as `prompt` */
        const json_t *list = json_is_array(prompt) ? prompt : msgs;
        for (size_t i = json_array_size(list); i-- > 0 && text == NULL;) {
            const json_t *m = json_array_get(list, i);
            const char *role = json_string_value(json_object_get(m, "role"));
            if (role != NULL && strcmp(role, "user") == 0) {
                text = content_text(r, json_object_get(m, "content"));
            }
        }
    } else if (!json_is_object(p)) {
        text = json_incref(p); /* not the documented object: keep what was sent */
    }
    if (json_is_string(text)) {
        add_text(r, "input.value", json_string_value(text), json_string_length(text));
    } else if (text != NULL) {
        add_json(r, "input.value", text);
    }
    json_decref(text);
    json_decref(p);
}

/* "[N embedding(s) returned with size M]" (dd-trace-js setEmbeddingWorkflowTags). */
static void embedding_output(struct rw *r)
{
    size_t n = 0, size = 0;
    const OtlpAnyValue *first = NULL;
    const OtlpAnyValue *one = r->a[V_EMBEDDING], *many = r->a[V_EMBEDDINGS];
    if (one != NULL) {
        n = 1;
        first = one;
    } else if (many != NULL &&
               many->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE &&
               many->array_value != NULL) {
        n = many->array_value->n_values;
        first = n > 0 ? many->array_value->values[0] : NULL;
    } else {
        return;
    }
    json_t *vec = first != NULL ? llmobs_value_json(r->c, first) : NULL;
    size = json_array_size(vec);
    json_decref(vec);
    o2d_buf_reset(&r->tmp);
    llmobs_check(r->c,
                 o2d_buf_printf(&r->tmp, "[%zu embedding(s) returned with size %zu]", n, size));
    add_tmp(r, "output.value");
}

/* ai.value (embed) or ai.values (embedMany): each value is JSON text of what was embedded. */
static void embed_workflow_input(struct rw *r)
{
    if (r->a[V_VALUE] != NULL) {
        json_t *j = parsed(r, V_VALUE);
        if (json_is_string(j)) {
            add_text(r, "input.value", json_string_value(j), json_string_length(j));
        } else if (j != NULL) {
            add_json(r, "input.value", j);
        } else {
            add_text(r, "input.value", sval(r->a[V_VALUE]) ? sval(r->a[V_VALUE]) : "",
                     sval(r->a[V_VALUE]) ? strlen(sval(r->a[V_VALUE])) : 0);
        }
        json_decref(j);
        return;
    }
    json_t *vals = parsed(r, V_VALUES);
    if (!json_is_array(vals)) {
        json_decref(vals);
        return;
    }
    json_t *out = arr(r);
    size_t i;
    const json_t *e;
    json_array_foreach(vals, i, e)
    {
        json_t *p = json_is_string(e)
                        ? llmobs_parse(r->c, json_string_value(e), json_string_length(e))
                        : NULL;
        llmobs_push(r->c, out, p != NULL ? p : json_incref((json_t *)e));
    }
    add_json(r, "input.value", out);
    json_decref(out);
    json_decref(vals);
}

/* doEmbed: each of ai.values one input document (gen_ai.input.messages, one message each). */
static void embedding_input(struct rw *r)
{
    json_t *vals = parsed(r, V_VALUES);
    if (!json_is_array(vals)) {
        json_decref(vals);
        return;
    }
    json_t *msgs = arr(r);
    size_t i;
    const json_t *e;
    json_array_foreach(vals, i, e)
    {
        json_t *p = json_is_string(e)
                        ? llmobs_parse(r->c, json_string_value(e), json_string_length(e))
                        : NULL;
        if (p == NULL) {
            p = json_incref((json_t *)e);
        }
        json_t *text = json_is_string(p) ? json_incref(p) : NULL;
        if (text == NULL) {
            o2d_buf_reset(&r->tmp);
            llmobs_check(r->c, llmobs_json_write(&r->tmp, p, 0));
            text = llmobs_str(r->c, (const char *)r->tmp.data, r->tmp.len);
            o2d_buf_reset(&r->tmp);
        }
        json_t *m = obj(r);
        json_t *parts = arr(r);
        llmobs_push(r->c, parts, text_part(r, text));
        llmobs_set(r->c, m, "role", str(r, "user"));
        llmobs_set(r->c, m, "parts", parts);
        llmobs_push(r->c, msgs, m);
        json_decref(text);
        json_decref(p);
    }
    add_json(r, "gen_ai.input.messages", msgs);
    json_decref(msgs);
    json_decref(vals);
}

static void llm_messages(struct rw *r)
{
    json_t *in = parsed(r, V_PROMPT_MESSAGES);
    if (json_is_array(in)) {
        json_t *msgs = arr(r);
        size_t i;
        const json_t *m;
        json_array_foreach(in, i, m)
        {
            llmobs_push(r->c, msgs, message(r, m));
        }
        add_json(r, "gen_ai.input.messages", msgs);
        json_decref(msgs);
    } else if (r->a[V_PROMPT_MESSAGES] != NULL) {
        /* not a JSON array: its text as the input value */
        llmobs_error(r->c, "otel_warning_input_malformed");
        add_same(r, "input.value", r->a[V_PROMPT_MESSAGES]);
    }
    json_decref(in);

    /* output: one assistant message with the text (or object) and the tool calls */
    const OtlpAnyValue *text = r->a[V_RESPONSE_TEXT];
    if (text == NULL) {
        text = r->a[V_RESPONSE_OBJECT];
    }
    json_t *calls = parsed(r, V_RESPONSE_TOOL_CALLS);
    if (r->a[V_RESPONSE_TOOL_CALLS] != NULL && !json_is_array(calls)) {
        llmobs_error(r->c, "otel_warning_output_malformed");
    }
    if (text == NULL && json_array_size(calls) == 0) {
        json_decref(calls);
        return;
    }
    json_t *parts = arr(r);
    if (sval(text) != NULL) {
        json_t *t = llmobs_str(r->c, text->string_value, strlen(text->string_value));
        llmobs_push(r->c, parts, text_part(r, t));
        json_decref(t);
    }
    size_t i;
    const json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        llmobs_push(r->c, parts, tool_call_part(r, tc));
    }
    json_t *m = obj(r);
    llmobs_set(r->c, m, "role", str(r, "assistant"));
    llmobs_set(r->c, m, "parts", parts);
    llmobs_set(r->c, m, "finish_reason", str(r, sval(r->a[V_RESPONSE_FINISH])));
    json_t *out = arr(r);
    llmobs_push(r->c, out, m);
    add_json(r, "gen_ai.output.messages", out);
    json_decref(out);
    json_decref(calls);
}

/* ai.prompt.tools: JSON text of each {type, name, description, inputSchema | parameters}. */
static void tool_definitions(struct rw *r)
{
    json_t *tools = parsed(r, V_PROMPT_TOOLS);
    if (!json_is_array(tools)) {
        json_decref(tools);
        return;
    }
    json_t *defs = arr(r);
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *d = json_is_string(t)
                        ? llmobs_parse(r->c, json_string_value(t), json_string_length(t))
                        : json_incref((json_t *)t);
        if (!json_is_object(d)) {
            llmobs_error(r->c, "otel_warning_tool_definition_entry_malformed");
            json_decref(d);
            continue;
        }
        json_t *out = obj(r);
        llmobs_set(r->c, out, "name", json_incref(json_object_get(d, "name")));
        llmobs_set(r->c, out, "description", json_incref(json_object_get(d, "description")));
        const json_t *schema = json_object_get(d, "inputSchema");
        if (schema == NULL) {
            schema = json_object_get(d, "parameters");
        }
        llmobs_set(r->c, out, "parameters", json_incref((json_t *)schema));
        llmobs_push(r->c, defs, out);
        json_decref(d);
    }
    add_json(r, "gen_ai.tool.definitions", defs);
    json_decref(defs);
    json_decref(tools);
}

/* Cache counts that only ai.response.providerMetadata has (dd-trace-js
 * getProviderCacheTokens: Bedrock's usage, then Anthropic's). */
static void provider_cache(struct rw *r, long long *read, int *has_read, long long *write,
                           int *has_write)
{
    json_t *pm = parsed(r, V_PROVIDER_METADATA);
    if (!json_is_object(pm)) {
        json_decref(pm);
        return;
    }
    const json_t *bu = json_object_get(json_object_get(pm, "bedrock"), "usage");
    const json_t *an = json_object_get(pm, "anthropic");
    const json_t *rd[] = {json_object_get(bu, "cacheReadInputTokens"),
                          json_object_get(an, "cacheReadInputTokens")};
    const json_t *wr[] = {json_object_get(bu, "cacheWriteInputTokens"),
                          json_object_get(an, "cacheCreationInputTokens")};
    for (int i = 0; i < 2; i++) {
        if (!*has_read && json_is_integer(rd[i])) {
            *read = json_integer_value(rd[i]);
            *has_read = 1;
        }
        if (!*has_write && json_is_integer(wr[i])) {
            *write = json_integer_value(wr[i]);
            *has_write = 1;
        }
    }
    json_decref(pm);
}

static long long sat_add(long long a, long long b)
{
    long long s;
    return __builtin_add_overflow(a, b, &s) ? (a > 0 ? LLONG_MAX : LLONG_MIN) : s;
}

/* dd-trace-js getUsage: v5+ names first, v4's after; cache and reasoning counts of 0 are
 * left out (the SDK sets them on every span, whatever the provider reports). */
static void usage(struct rw *r)
{
    long long in = 0, out = 0, total = 0, read = 0, write = 0, reasoning = 0;
    int has_in = count_of(r->a[V_U_INPUT], &in) || count_of(r->a[V_U_PROMPT], &in);
    int has_out = count_of(r->a[V_U_OUTPUT], &out) || count_of(r->a[V_U_COMPLETION], &out);
    int has_total = count_of(r->a[V_U_TOTAL], &total);
    int has_read = count_of(r->a[V_U_CACHED], &read) && read != 0;
    if (!has_read) {
        has_read = count_of(r->a[V_U_CACHE_READ], &read) && read != 0;
    }
    int has_write = count_of(r->a[V_U_CACHE_WRITE], &write) && write != 0;
    if (!has_read || !has_write) {
        provider_cache(r, &read, &has_read, &write, &has_write);
        has_read = has_read && read != 0;
        has_write = has_write && write != 0;
    }
    int has_reasoning = count_of(r->a[V_U_REASONING], &reasoning) && reasoning != 0;
    if (!has_reasoning) {
        has_reasoning = count_of(r->a[V_U_REASONING_DETAIL], &reasoning) && reasoning != 0;
    }
    /* Some SDK and provider pairs report fresh input only: input can then not be a sum that
     * includes the cache counts, and they are added to it (dd-trace-js getUsage). */
    long long cache = sat_add(has_read ? read : 0, has_write ? write : 0);
    if (has_in && in < cache) {
        in = sat_add(in, cache);
        if (has_total) {
            total = sat_add(in, has_out ? out : 0);
        }
    }
    if (has_in) {
        add_int(r, "gen_ai.usage.input_tokens", in);
    }
    if (has_out) {
        add_int(r, "gen_ai.usage.output_tokens", out);
    }
    if (has_total) {
        add_int(r, "gen_ai.usage.total_tokens", total);
    }
    if (has_read) {
        add_int(r, "gen_ai.usage.cache_read.input_tokens", read);
    }
    if (has_write) {
        add_int(r, "gen_ai.usage.cache_creation.input_tokens", write);
    }
    if (has_reasoning) {
        add_int(r, "gen_ai.usage.reasoning.output_tokens", reasoning);
    }
}

/* ai.model.provider "openai.chat" -> "openai"; Bedrock's provider is the model's (its id is
 * [region.]provider.model), as dd-trace-js parseModelProvider has it. */
static void provider(struct rw *r)
{
    const char *p = sval(r->a[V_MODEL_PROVIDER]);
    if (p == NULL || p[0] == '\0') {
        return;
    }
    size_t n = strcspn(p, ".");
    const char *model = sval(r->a[V_MODEL_ID]);
    if (n == 14 && strncmp(p, "amazon-bedrock", 14) == 0 && model != NULL) {
        static const char *const regions[] = {"us", "eu", "apac", "global", "us-gov", "jp", "au"};
        const char *m = model;
        size_t seg = strcspn(m, ".");
        for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
            if (m[seg] == '.' && seg == strlen(regions[i]) && strncmp(m, regions[i], seg) == 0) {
                m += seg + 1;
                seg = strcspn(m, ".");
                break;
            }
        }
        if (m[seg] == '.' && seg > 0) {
            add_text(r, "gen_ai.provider.name", m, seg);
            return;
        }
    }
    add_text(r, "gen_ai.provider.name", p, n);
}

/* dd-trace-js MODEL_METADATA_KEYS, as snake case. */
static int model_metadata_key(const char *snake)
{
    static const char *const keys[] = {"frequency_penalty", "max_tokens", "presence_penalty",
                                       "temperature",       "top_p",      "top_k",
                                       "stop_sequences"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(snake, keys[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* metadata: ai.settings.* that are not model parameters (workflows only; the llm span's
 * model parameters come from gen_ai.request.*), then ai.telemetry.metadata.*, then for
 * generateObject / streamObject `schema`, the parsed ai.schema; the session id, when the
 * metadata names one. */
static void metadata(struct rw *r, int settings, int schema)
{
    static const char set_p[] = "ai.settings.", md_p[] = "ai.telemetry.metadata.";
    json_t *md = obj(r);
    const char *session = NULL;
    for (size_t i = 0; md != NULL && i < r->s->n_attributes && !r->c->nomem; i++) {
        const OtlpKeyValue *kv = r->s->attributes[i];
        const char *k = kv->key, *name = NULL;
        if (k[0] != 'a' || strncmp(k, "ai.", 3) != 0) {
            continue;
        }
        if (settings && strncmp(k, set_p, sizeof(set_p) - 1) == 0) {
            name = strrchr(k, '.') + 1;
            char snake[64];
            size_t o = 0;
            for (const char *c = name; *c != '\0' && o + 2 < sizeof(snake); c++) {
                if (*c >= 'A' && *c <= 'Z') {
                    snake[o++] = '_';
                    snake[o++] = (char)(*c - 'A' + 'a');
                } else {
                    snake[o++] = *c;
                }
            }
            snake[o] = '\0';
            if (model_metadata_key(snake)) {
                continue;
            }
        } else if (strncmp(k, md_p, sizeof(md_p) - 1) == 0) {
            name = k + sizeof(md_p) - 1;
            if (strcmp(name, "sessionId") == 0 || strcmp(name, "session_id") == 0) {
                session = sval(kv->value);
            }
        }
        if (name == NULL || name[0] == '\0') {
            continue;
        }
        llmobs_set(r->c, md, name, llmobs_anyvalue(r->c, kv->value, 0));
    }
    if (schema) {
        llmobs_set(r->c, md, "schema", parsed(r, V_SCHEMA));
    }
    if (session != NULL && session[0] != '\0') {
        add_text(r, "session.id", session, strlen(session));
    }
    if (json_object_size(md) > 0) {
        add_json(r, "_dd.ml_obs.metadata", md);
    }
    json_decref(md);
}

/* The name: the operation (generateText, doGenerate, ...), "<functionId>.<operation>" when
 * the telemetry names a function; stored at the end of text. */
static size_t name_of(struct rw *r, const char *op)
{
    const char *fid = sval(r->a[V_FUNCTION_ID]);
    size_t at = r->v->text.len;
    if (fid != NULL && fid[0] != '\0') {
        llmobs_check(r->c, o2d_buf_append(&r->v->text, fid, strlen(fid)));
        llmobs_check(r->c, o2d_buf_append_byte(&r->v->text, '.'));
    }
    llmobs_check(r->c, o2d_buf_append(&r->v->text, op, strlen(op)));
    llmobs_check(r->c, o2d_buf_append_byte(&r->v->text, '\0'));
    return at;
}

static void index_attrs(struct rw *r)
{
    for (size_t i = 0; i < r->s->n_attributes; i++) {
        const char *k = r->s->attributes[i]->key;
        if (k[0] != 'a' || k[1] != 'i' || k[2] != '.') {
            continue;
        }
        for (size_t j = 0; j < V__COUNT; j++) {
            if (r->a[j] == NULL && strcmp(k + 3, vkey_names[j]) == 0) {
                r->a[j] = r->s->attributes[i]->value;
                break;
            }
        }
    }
}

void llmobs_vercel_free(struct llmobs_vercel *v)
{
    if (v == NULL) {
        return;
    }
    o2d_buf_cleanup(&v->text);
    o2d_free(v->attrs);
    o2d_free(v);
}

int llmobs_vercel_rewrite(struct llmobs_ctx *c, const OtlpSpan *s, enum llmobs_kind kind,
                          struct llmobs_vercel **out)
{
    *out = NULL;
    struct rw r = {.c = c, .s = s};
    index_attrs(&r);
    const char *op = op_of(sval(r.a[V_OPERATION_ID]));
    if (op == NULL || llmobs_vercel_kind(sval(r.a[V_OPERATION_ID])) == LLMOBS_NONE) {
        return 0;
    }
    struct llmobs_vercel *v = o2d_calloc(1, sizeof(*v));
    if (v == NULL) {
        c->nomem = 1;
        return 0;
    }
    r.v = v;
    o2d_buf_init(&v->text, SIZE_MAX / 2);
    o2d_buf_init(&r.tmp, SIZE_MAX / 2);

    int object = strcmp(op, "generateObject") == 0 || strcmp(op, "streamObject") == 0;
    int embed = strcmp(op, "embed") == 0 || strcmp(op, "embedMany") == 0;
    switch (kind) {
    case LLMOBS_LLM:
        provider(&r);
        if (sval(r.a[V_MODEL_ID]) != NULL) {
            add_text(&r, "gen_ai.request.model", sval(r.a[V_MODEL_ID]),
                     strlen(sval(r.a[V_MODEL_ID])));
        }
        llm_messages(&r);
        tool_definitions(&r);
        usage(&r);
        metadata(&r, 0, 0);
        break;
    case LLMOBS_EMBEDDING:
        provider(&r);
        if (sval(r.a[V_MODEL_ID]) != NULL) {
            add_text(&r, "gen_ai.request.model", sval(r.a[V_MODEL_ID]),
                     strlen(sval(r.a[V_MODEL_ID])));
        }
        embedding_input(&r);
        {
            long long tokens;
            if (count_of(r.a[V_U_TOKENS], &tokens)) {
                add_int(&r, "gen_ai.usage.input_tokens", tokens);
                add_int(&r, "gen_ai.usage.total_tokens", tokens);
            }
        }
        metadata(&r, 0, 0);
        break;
    case LLMOBS_TOOL: {
        /* Older SDKs named a tool by its index in the tools list: no name then. */
        const char *name = sval(r.a[V_TOOL_NAME]);
        if (name != NULL && name[0] != '\0' && strspn(name, "0123456789") != strlen(name)) {
            add_text(&r, "gen_ai.tool.name", name, strlen(name));
        }
        static const struct {
            enum vkey from;
            const char *to;
        } tool[] = {{V_TOOL_ID, "gen_ai.tool.call.id"},
                    {V_TOOL_ARGS, "gen_ai.tool.call.arguments"},
                    {V_TOOL_RESULT, "gen_ai.tool.call.result"}};
        for (size_t i = 0; i < sizeof(tool) / sizeof(tool[0]); i++) {
            if (r.a[tool[i].from] != NULL) {
                add_same(&r, tool[i].to, r.a[tool[i].from]);
            }
        }
        metadata(&r, 0, 0);
        break;
    }
    default: /* the outer workflow spans */
        if (embed) {
            embed_workflow_input(&r);
            embedding_output(&r);
        } else {
            workflow_input(&r);
            const OtlpAnyValue *o = r.a[object ? V_RESPONSE_OBJECT : V_RESPONSE_TEXT];
            if (o != NULL) {
                add_same(&r, "output.value", o);
            }
        }
        metadata(&r, 1, object);
        break;
    }
    size_t name_at = name_of(&r, op);
    v->attrs = o2d_malloc((v->n + s->n_attributes) * sizeof(*v->attrs));
    if (v->attrs == NULL || c->nomem) {
        c->nomem = 1;
        o2d_buf_cleanup(&r.tmp);
        llmobs_vercel_free(v);
        return 0;
    }
    /* ours first: the builder takes the first attribute of each key */
    for (size_t i = 0; i < v->n; i++) {
        if (v->text_off[i] != SIZE_MAX) {
            v->av[i].string_value = (char *)v->text.data + v->text_off[i];
        }
        v->attrs[i] = &v->kv[i];
    }
    memcpy(v->attrs + v->n, s->attributes, s->n_attributes * sizeof(*v->attrs));
    v->span = *s;
    v->span.name = (char *)v->text.data + name_at;
    v->span.attributes = v->attrs;
    v->span.n_attributes = v->n + s->n_attributes;
    o2d_buf_cleanup(&r.tmp);
    *out = v;
    return 1;
}

const OtlpSpan *llmobs_vercel_span(const struct llmobs_vercel *v)
{
    return &v->span;
}
