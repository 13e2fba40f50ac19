/*
 * llmobs.c: OTLP spans and gen_ai log records -> Datadog LLM Observability span events, the
 * object dd-trace-py's LLMObsSpanWriter sends to /api/v2/llmobs (ddtrace/llmobs/_writer.py
 * LLMObsSpanEvent). Which span is LLM Obs and which attribute feeds which field follows our
 * mapping in ../shared/reference/llmobs.md 7.1/7.2, anchored on Datadog's own OTel mapping
 * (DataDog/documentation llm_observability/instrument/otel_instrumentation.md); each place we
 * choose differently says so in one line.
 *
 * Left to others: the LLM Obs parent and trace id (llmobs_buffer.c, which walks the OTel
 * parent chain), the envelope and batching (exporters/), and message parsing details
 * (llmobs_messages.c).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llmobs_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "otlp_print.h"

#define STR_CASE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define INT_CASE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
#define DBL_CASE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE

#define OP_DETAILS "gen_ai.client.inference.operation.details"
#define DROPPED_IO                                                                                 \
    "[This value has been dropped because this span's size exceeds the 5MB size limit.]"

/* Where an llm span's input or output messages came from: log records may only add to
 * messages that did not come from the span itself (span_and_event mode sends both). */
enum io_src { SRC_NONE = 0, SRC_VALUE, SRC_SPAN, SRC_LOG };

struct llmobs_span {
    struct llmobs_ids ids;
    enum llmobs_kind kind;
    json_t *ev;     /* the event without trace_id, parent_id and collection_errors */
    json_t *meta;   /* borrowed from ev */
    json_t *input;  /* borrowed from meta */
    json_t *output; /* borrowed from meta */
    enum io_src in_src, out_src;
    struct llmobs_ctx ctx;
};

const char *llmobs_kind_name(enum llmobs_kind kind)
{
    static const char *const names[] = {NULL,    "llm",  "embedding", "workflow",
                                        "agent", "tool", "task",      "retrieval"};
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : NULL;
}

static const char *sval(const OtlpAnyValue *v)
{
    return v != NULL && v->value_case == STR_CASE ? v->string_value : NULL;
}

static int streq(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* ---- classification ---- */

static enum llmobs_kind kind_of_op(const char *op)
{
    static const struct {
        const char *op;
        enum llmobs_kind kind;
    } ops[] = {
        {"chat", LLMOBS_LLM},
        {"generate_content", LLMOBS_LLM},
        {"text_completion", LLMOBS_LLM},
        {"completion", LLMOBS_LLM},
        {"embeddings", LLMOBS_EMBEDDING},
        {"embedding", LLMOBS_EMBEDDING},
        {"execute_tool", LLMOBS_TOOL},
        {"invoke_agent", LLMOBS_AGENT},
        {"create_agent", LLMOBS_AGENT},
        /* Not in Datadog's table (they become workflow there): semconv 1.40/1.41 ops. */
        {"retrieval", LLMOBS_RETRIEVAL},
        {"invoke_workflow", LLMOBS_WORKFLOW},
    };
    for (size_t i = 0; op != NULL && i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(op, ops[i].op) == 0) {
            return ops[i].kind;
        }
    }
    return LLMOBS_NONE;
}

static enum llmobs_kind kind_of_openinference(const char *k)
{
    static const struct {
        const char *name;
        enum llmobs_kind kind;
    } t[] = {
        {"LLM", LLMOBS_LLM},
        {"EMBEDDING", LLMOBS_EMBEDDING},
        {"TOOL", LLMOBS_TOOL},
        {"AGENT", LLMOBS_AGENT},
        {"RETRIEVER", LLMOBS_RETRIEVAL},
        {"CHAIN", LLMOBS_WORKFLOW},
        /* Datadog maps these to workflow; they are single steps, so task (7.1). */
        {"PROMPT", LLMOBS_TASK},
        {"RERANKER", LLMOBS_TASK},
        {"GUARDRAIL", LLMOBS_TASK},
        {"EVALUATOR", LLMOBS_TASK},
    };
    if (k == NULL || k[0] == '\0') {
        return LLMOBS_NONE;
    }
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcasecmp(k, t[i].name) == 0) {
            return t[i].kind;
        }
    }
    return LLMOBS_WORKFLOW;
}

enum llmobs_kind llmobs_classify(const OtlpSpan *s)
{
    const char *tl = NULL, *oi = NULL, *op = NULL, *req_type = NULL;
    int marker = 0, model = 0;
    for (size_t i = 0; i < s->n_attributes; i++) {
        const char *k = s->attributes[i]->key;
        const OtlpAnyValue *v = s->attributes[i]->value;
        switch (k[0]) {
        case 't':
            if (strcmp(k, "traceloop.span.kind") == 0) {
                tl = sval(v);
            }
            break;
        case 'o':
            if (strcmp(k, "openinference.span.kind") == 0) {
                oi = sval(v);
            }
            break;
        case 'l':
            if (strcmp(k, "llm.request.type") == 0) {
                req_type = sval(v);
            }
            break;
        case 'g':
            if (strncmp(k, "gen_ai.", 7) != 0) {
                break;
            }
            k += 7;
            if (strcmp(k, "operation.name") == 0) {
                op = sval(v);
                marker = 1;
            } else if (strcmp(k, "provider.name") == 0 || strcmp(k, "system") == 0) {
                marker = 1;
            } else if (strcmp(k, "request.model") == 0 || strcmp(k, "response.model") == 0) {
                model = 1;
            }
            break;
        default:
            break;
        }
    }
    enum llmobs_kind opk = kind_of_op(op);
    if (tl != NULL) {
        /* OpenLLMetry's own kind beats gen_ai.operation.name: >= 0.53 stamps invoke_agent on
         * every root chain (Datadog shows them as agents). */
        if (strcmp(tl, "workflow") == 0) {
            return LLMOBS_WORKFLOW;
        }
        if (strcmp(tl, "task") == 0) {
            /* JS instrumentation-langchain 0.27 marks tools task + execute_tool. */
            return opk == LLMOBS_TOOL ? LLMOBS_TOOL : LLMOBS_TASK;
        }
        if (strcmp(tl, "agent") == 0) {
            return LLMOBS_AGENT;
        }
        if (strcmp(tl, "tool") == 0) {
            return LLMOBS_TOOL;
        }
    }
    if (oi != NULL && opk == LLMOBS_NONE) {
        enum llmobs_kind k = kind_of_openinference(oi);
        if (k != LLMOBS_NONE) {
            return k;
        }
    }
    if (opk != LLMOBS_NONE) {
        return opk;
    }
    if (req_type != NULL) {
        if (strcmp(req_type, "chat") == 0 || strcmp(req_type, "completion") == 0) {
            return LLMOBS_LLM;
        }
        if (strcmp(req_type, "embedding") == 0) {
            return LLMOBS_EMBEDDING;
        }
        if (strcmp(req_type, "rerank") == 0) {
            return LLMOBS_TASK;
        }
    }
    if (marker) {
        /* OpenLLMetry 0.53-0.54 custom ops (llm_request, execute_task) and bare markers;
         * Datadog sends all of them to workflow. */
        if (streq(op, "execute_task")) {
            return LLMOBS_TASK;
        }
        return model ? LLMOBS_LLM : LLMOBS_WORKFLOW;
    }
    return LLMOBS_NONE;
}

/* ---- the attributes the mapping reads, found in one pass ---- */

enum akey {
    K_TL_ENTITY_NAME,
    K_TL_ENTITY_INPUT,
    K_TL_ENTITY_OUTPUT,
    K_TL_SESSION,
    K_PROVIDER,
    K_SYSTEM,
    K_REQ_MODEL,
    K_RESP_MODEL,
    K_INPUT_MESSAGES,
    K_OUTPUT_MESSAGES,
    K_SYSTEM_INSTR,
    K_TOOL_NAME,
    K_TOOL_CALL_ID,
    K_TOOL_TYPE,
    K_TOOL_DESC,
    K_TOOL_DEFS,
    K_TOOL_ARGS,
    K_TOOL_RESULT,
    K_TASK_INPUT,
    K_TASK_OUTPUT,
    K_CONV_ID,
    K_FINISH,
    K_RETR_DOCS,
    K_RETR_QUERY,
    K_ERROR_TYPE,
    K_DD_METADATA,
    K_OI_MODEL,
    K_OI_RESP_MODEL,
    K_OI_REQ_MODEL,
    K_EMB_MODEL,
    K_OI_PROVIDER,
    K_OI_SYSTEM,
    K_OI_PARAMS,
    K_OI_METADATA,
    K_INPUT_VALUE,
    K_OUTPUT_VALUE,
    K_SESSION,
    K_OI_TOOL_NAME,
    K_OI_TOOL_ID,
    K_OI_TOOL_DESC,
    /* token counts: see metric_keys */
    K_U_INPUT,
    K_U_PROMPT,
    K_OI_PROMPT,
    K_U_OUTPUT,
    K_U_COMPLETION,
    K_OI_COMPLETION,
    K_U_TOTAL,
    K_LLM_TOTAL,
    K_OI_TOTAL,
    K_U_CACHE_READ,
    K_U_CACHE_READ_OLD,
    K_OI_CACHE_READ,
    K_U_CACHE_WRITE,
    K_U_CACHE_WRITE_OLD,
    K_OI_CACHE_WRITE,
    K_U_REASONING,
    K_U_REASONING_OLD,
    K_OI_REASONING,
    K__COUNT
};

static const struct {
    const char *name;
    enum akey id;
} key_table[] = {
    {"traceloop.entity.name", K_TL_ENTITY_NAME},
    {"traceloop.entity.input", K_TL_ENTITY_INPUT},
    {"traceloop.entity.output", K_TL_ENTITY_OUTPUT},
    {"traceloop.association.properties.session_id", K_TL_SESSION},
    {"gen_ai.provider.name", K_PROVIDER},
    {"gen_ai.system", K_SYSTEM},
    {"gen_ai.request.model", K_REQ_MODEL},
    {"gen_ai.response.model", K_RESP_MODEL},
    {"gen_ai.input.messages", K_INPUT_MESSAGES},
    {"gen_ai.output.messages", K_OUTPUT_MESSAGES},
    {"gen_ai.system_instructions", K_SYSTEM_INSTR},
    {"gen_ai.tool.name", K_TOOL_NAME},
    {"gen_ai.tool.call.id", K_TOOL_CALL_ID},
    {"gen_ai.tool.type", K_TOOL_TYPE},
    {"gen_ai.tool.description", K_TOOL_DESC},
    {"gen_ai.tool.definitions", K_TOOL_DEFS},
    {"gen_ai.tool.call.arguments", K_TOOL_ARGS},
    {"gen_ai.tool.call.result", K_TOOL_RESULT},
    {"gen_ai.task.input", K_TASK_INPUT},
    {"gen_ai.task.output", K_TASK_OUTPUT},
    {"gen_ai.conversation.id", K_CONV_ID},
    {"gen_ai.response.finish_reasons", K_FINISH},
    {"gen_ai.retrieval.documents", K_RETR_DOCS},
    {"gen_ai.retrieval.query.text", K_RETR_QUERY},
    {"error.type", K_ERROR_TYPE},
    {"_dd.ml_obs.metadata", K_DD_METADATA},
    {"llm.model_name", K_OI_MODEL},
    {"llm.response.model_name", K_OI_RESP_MODEL},
    {"llm.request.model_name", K_OI_REQ_MODEL},
    {"embedding.model_name", K_EMB_MODEL},
    {"llm.provider", K_OI_PROVIDER},
    {"llm.system", K_OI_SYSTEM},
    {"llm.invocation_parameters", K_OI_PARAMS},
    {"metadata", K_OI_METADATA},
    {"input.value", K_INPUT_VALUE},
    {"output.value", K_OUTPUT_VALUE},
    {"session.id", K_SESSION},
    {"tool.name", K_OI_TOOL_NAME},
    {"tool.id", K_OI_TOOL_ID},
    {"tool.description", K_OI_TOOL_DESC},
    {"gen_ai.usage.input_tokens", K_U_INPUT},
    {"gen_ai.usage.prompt_tokens", K_U_PROMPT},
    {"llm.token_count.prompt", K_OI_PROMPT},
    {"gen_ai.usage.output_tokens", K_U_OUTPUT},
    {"gen_ai.usage.completion_tokens", K_U_COMPLETION},
    {"llm.token_count.completion", K_OI_COMPLETION},
    {"gen_ai.usage.total_tokens", K_U_TOTAL},
    {"llm.usage.total_tokens", K_LLM_TOTAL},
    {"llm.token_count.total", K_OI_TOTAL},
    {"gen_ai.usage.cache_read.input_tokens", K_U_CACHE_READ},
    {"gen_ai.usage.cache_read_input_tokens", K_U_CACHE_READ_OLD},
    {"llm.token_count.prompt_details.cache_read", K_OI_CACHE_READ},
    {"gen_ai.usage.cache_creation.input_tokens", K_U_CACHE_WRITE},
    {"gen_ai.usage.cache_creation_input_tokens", K_U_CACHE_WRITE_OLD},
    {"llm.token_count.prompt_details.cache_write", K_OI_CACHE_WRITE},
    {"gen_ai.usage.reasoning.output_tokens", K_U_REASONING},
    {"gen_ai.usage.reasoning_tokens", K_U_REASONING_OLD},
    {"llm.token_count.completion_details.reasoning", K_OI_REASONING},
};

/* Metric name and its keys in priority order. Old names are normalized to input/output
 * (Datadog keeps prompt_tokens/completion_tokens as they are). */
static const struct {
    const char *metric;
    enum akey keys[3];
} metric_keys[] = {
    {"input_tokens", {K_U_INPUT, K_U_PROMPT, K_OI_PROMPT}},
    {"output_tokens", {K_U_OUTPUT, K_U_COMPLETION, K_OI_COMPLETION}},
    {"total_tokens", {K_U_TOTAL, K_LLM_TOTAL, K_OI_TOTAL}},
    {"cache_read_input_tokens", {K_U_CACHE_READ, K_U_CACHE_READ_OLD, K_OI_CACHE_READ}},
    {"cache_write_input_tokens", {K_U_CACHE_WRITE, K_U_CACHE_WRITE_OLD, K_OI_CACHE_WRITE}},
    {"reasoning_output_tokens", {K_U_REASONING, K_U_REASONING_OLD, K_OI_REASONING}},
};

struct attrs {
    const OtlpAnyValue *v[K__COUNT];
};

static void index_attrs(struct attrs *ix, OtlpKeyValue *const *kv, size_t n)
{
    memset(ix, 0, sizeof(*ix));
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i]->key;
        switch (k[0]) {
        case '_':
        case 'e':
        case 'g':
        case 'i':
        case 'l':
        case 'm':
        case 'o':
        case 's':
        case 't':
            break;
        default:
            continue;
        }
        for (size_t j = 0; j < sizeof(key_table) / sizeof(key_table[0]); j++) {
            if (strcmp(k, key_table[j].name) == 0) {
                if (ix->v[key_table[j].id] == NULL) {
                    ix->v[key_table[j].id] = kv[i]->value;
                }
                break;
            }
        }
    }
}

static const char *astr(const struct attrs *ix, enum akey k)
{
    const char *s = sval(ix->v[k]);
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* ---- building ---- */

struct build {
    struct llmobs_span *sp;
    struct llmobs_ctx *c;
    const OtlpSpan *s;
    struct attrs ix;
    enum llmobs_kind kind;
};

static json_t *cstr(struct llmobs_ctx *c, const char *s)
{
    return llmobs_str(c, s, strlen(s));
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static json_t *u64str(struct llmobs_ctx *c, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    return llmobs_str(c, tmp, (size_t)n);
}

/* format_trace_id: 32 lowercase hex when the high 64 bits are set, else decimal. */
static json_t *apm_trace_id(struct llmobs_ctx *c, const uint8_t t[16])
{
    if (be64(t) == 0) {
        return u64str(c, be64(t + 8));
    }
    char hex[33];
    for (int i = 0; i < 16; i++) {
        snprintf(hex + 2 * i, 3, "%02x", t[i]);
    }
    return llmobs_str(c, hex, 32);
}

/* A value as a string for input/output.value: strings as they are, else JSON text. */
static json_t *value_text(struct llmobs_ctx *c, const OtlpAnyValue *v)
{
    if (v == NULL) {
        return NULL;
    }
    if (v->value_case == STR_CASE) {
        return cstr(c, v->string_value);
    }
    json_t *j = llmobs_anyvalue(c, v, 0);
    json_t *s = llmobs_value_string(c, j);
    json_decref(j);
    return s;
}

/* Parses "<digits>." at the start of k; returns what follows or NULL. */
static const char *index_of(const char *k, size_t *idx)
{
    size_t i = 0, v = 0;
    while (k[i] >= '0' && k[i] <= '9') {
        v = v * 10 + (size_t)(k[i] - '0');
        if (v >= LLMOBS_MAX_INDEX) {
            return NULL;
        }
        i++;
    }
    if (i == 0 || k[i] != '.') {
        return NULL;
    }
    *idx = v;
    return k + i + 1;
}

/* The object at arr[idx], created (with nulls before it) when missing. */
static json_t *slot(struct llmobs_ctx *c, json_t *arr, size_t idx)
{
    while (json_array_size(arr) <= idx && !c->nomem) {
        llmobs_push(c, arr, json_null());
    }
    json_t *o = json_array_get(arr, idx);
    if (o != NULL && json_is_null(o)) {
        o = json_object();
        if (o == NULL || json_array_set_new(arr, idx, o) != 0) {
            c->nomem = 1;
            return NULL;
        }
    }
    return json_is_object(o) ? o : NULL;
}

/* A sub-array of obj, created when missing. */
static json_t *sub_array(struct llmobs_ctx *c, json_t *obj, const char *key)
{
    json_t *a = json_object_get(obj, key);
    if (a == NULL) {
        a = json_array();
        if (a == NULL) {
            c->nomem = 1;
            return NULL;
        }
        llmobs_set(c, obj, key, a);
    }
    return json_is_array(a) ? a : NULL;
}

/* arr without its nulls (taken). */
static json_t *compact(struct llmobs_ctx *c, json_t *arr)
{
    json_t *out = json_array();
    if (out == NULL) {
        c->nomem = 1;
        json_decref(arr);
        return NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_null(v)) {
            llmobs_push(c, out, json_incref(v));
        }
    }
    json_decref(arr);
    return out;
}

/* One attribute of an indexed message family, into the OpenAI-like object msg. */
static void indexed_field(struct build *b, json_t *msg, const char *rest, const OtlpAnyValue *v,
                          int openinference)
{
    struct llmobs_ctx *c = b->c;
    size_t j;
    const char *r2;
    if (openinference) {
        if (strncmp(rest, "message.", 8) != 0) {
            return;
        }
        rest += 8;
        if (strncmp(rest, "contents.", 9) == 0 && (r2 = index_of(rest + 9, &j)) != NULL) {
            json_t *p = slot(c, sub_array(c, msg, "contents"), j);
            if (p == NULL) {
                return;
            }
            if (strcmp(r2, "message_content.text") == 0) {
                llmobs_set(c, p, "type", cstr(c, "text"));
                llmobs_set(c, p, "content", llmobs_anyvalue(c, v, 0));
            } else if (strcmp(r2, "message_content.image.image.url") == 0) {
                llmobs_set(c, p, "type", cstr(c, "uri"));
                llmobs_set(c, p, "modality", cstr(c, "image"));
                llmobs_set(c, p, "uri", llmobs_anyvalue(c, v, 0));
            }
            return;
        }
        if (strncmp(rest, "tool_calls.", 11) == 0 && (r2 = index_of(rest + 11, &j)) != NULL) {
            json_t *tc = slot(c, sub_array(c, msg, "tool_calls"), j);
            if (tc == NULL || strncmp(r2, "tool_call.", 10) != 0) {
                return;
            }
            r2 += 10;
            const char *f = strcmp(r2, "id") == 0                   ? "id"
                            : strcmp(r2, "function.name") == 0      ? "name"
                            : strcmp(r2, "function.arguments") == 0 ? "arguments"
                                                                    : NULL;
            if (f != NULL) {
                llmobs_set(c, tc, f, llmobs_anyvalue(c, v, 0));
            }
            return;
        }
    } else if (strncmp(rest, "tool_calls.", 11) == 0 && (r2 = index_of(rest + 11, &j)) != NULL) {
        json_t *tc = slot(c, sub_array(c, msg, "tool_calls"), j);
        if (tc != NULL &&
            (strcmp(r2, "id") == 0 || strcmp(r2, "name") == 0 || strcmp(r2, "arguments") == 0)) {
            llmobs_set(c, tc, r2, llmobs_anyvalue(c, v, 0));
        }
        return;
    }
    if (strcmp(rest, "role") == 0 || strcmp(rest, "content") == 0 ||
        strcmp(rest, "tool_call_id") == 0 || strcmp(rest, "name") == 0) {
        llmobs_set(c, msg, rest, llmobs_anyvalue(c, v, 0));
    }
}

/* Messages of an indexed family (gen_ai.prompt.<i>., llm.input_messages.<i>., ...) or NULL
 * when the span has none. */
static json_t *indexed_messages(struct build *b, const char *prefix, int openinference)
{
    struct llmobs_ctx *c = b->c;
    size_t plen = strlen(prefix);
    json_t *raw = NULL;
    for (size_t i = 0; i < b->s->n_attributes && !c->nomem; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        size_t idx;
        const char *rest;
        if (strncmp(kv->key, prefix, plen) != 0 ||
            (rest = index_of(kv->key + plen, &idx)) == NULL) {
            continue;
        }
        if (raw == NULL && (raw = json_array()) == NULL) {
            c->nomem = 1;
            break;
        }
        json_t *m = slot(c, raw, idx);
        if (m != NULL) {
            indexed_field(b, m, rest, kv->value, openinference);
        }
    }
    if (raw == NULL) {
        return NULL;
    }
    json_t *out = json_array();
    if (out == NULL) {
        c->nomem = 1;
        json_decref(raw);
        return NULL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(raw, i, m)
    {
        if (json_is_null(m)) {
            continue;
        }
        json_t *tc = json_object_get(m, "tool_calls");
        if (tc != NULL) {
            llmobs_set(c, m, "tool_calls", compact(c, json_incref(tc)));
        }
        json_t *parts = json_object_get(m, "contents");
        if (parts != NULL && json_object_get(m, "content") == NULL) {
            llmobs_set(c, m, "content", compact(c, json_incref(parts)));
        }
        llmobs_push(c, out, llmobs_message(c, m, NULL));
    }
    json_decref(raw);
    return out;
}

/* gen_ai.input.messages and friends: attributes of the span or of its operation-details
 * event (OTel GenAI >= 1.37). Returns 1 when any was present. */
struct genai_io {
    const OtlpAnyValue *system, *input, *output;
};

static void genai_io_scan(struct genai_io *io, OtlpKeyValue *const *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i]->key;
        if (strcmp(k, "gen_ai.system_instructions") == 0 && io->system == NULL) {
            io->system = kv[i]->value;
        } else if (strcmp(k, "gen_ai.input.messages") == 0 && io->input == NULL) {
            io->input = kv[i]->value;
        } else if (strcmp(k, "gen_ai.output.messages") == 0 && io->output == NULL) {
            io->output = kv[i]->value;
        }
    }
}

/* input.value when a message list cannot be read: the raw text is better than nothing. */
static void raw_value(struct llmobs_ctx *c, json_t *io, const OtlpAnyValue *v)
{
    if (json_object_get(io, "value") == NULL && json_object_get(io, "messages") == NULL) {
        llmobs_set(c, io, "value", value_text(c, v));
    }
}

/* Fills io.messages from a gen_ai.*.messages value (plus system instructions for input). */
static int genai_messages(struct llmobs_ctx *c, json_t *io, const OtlpAnyValue *system,
                          const OtlpAnyValue *msgs, const char *err)
{
    if (system == NULL && msgs == NULL) {
        return 0;
    }
    json_t *out = json_array();
    if (out == NULL) {
        c->nomem = 1;
        return 0;
    }
    if (system != NULL) {
        json_t *j = llmobs_value_json(c, system);
        if (j == NULL && system->value_case == STR_CASE) {
            /* Plain text instructions are not JSON: take them as they are. */
            j = value_text(c, system);
        }
        llmobs_push(c, out, llmobs_system_message(c, j));
        json_decref(j);
    }
    if (msgs != NULL) {
        json_t *j = llmobs_value_json(c, msgs);
        llmobs_messages_append(c, j, out, err);
        json_decref(j);
    }
    llmobs_set(c, io, "messages", out);
    if (msgs != NULL && json_array_size(out) == 0) {
        json_object_del(io, "messages");
        raw_value(c, io, msgs);
    }
    return 1;
}

static void llm_io(struct build *b)
{
    struct llmobs_ctx *c = b->c;
    struct llmobs_span *sp = b->sp;
    struct genai_io io = {0};
    genai_io_scan(&io, b->s->attributes, b->s->n_attributes);
    for (size_t i = 0; i < b->s->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = b->s->events[i];
        if (e->name != NULL && strcmp(e->name, OP_DETAILS) == 0) {
            genai_io_scan(&io, e->attributes, e->n_attributes);
        }
    }
    if (genai_messages(c, sp->input, io.system, io.input, "otel_warning_input_malformed")) {
        sp->in_src = SRC_SPAN;
    }
    if (genai_messages(c, sp->output, NULL, io.output, "otel_warning_output_malformed")) {
        sp->out_src = SRC_SPAN;
    }
    static const struct {
        const char *prefix;
        int oi;
        int output;
    } fams[] = {
        {"gen_ai.prompt.", 0, 0},
        {"gen_ai.completion.", 0, 1},
        {"llm.input_messages.", 1, 0},
        {"llm.output_messages.", 1, 1},
    };
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        enum io_src *src = fams[f].output ? &sp->out_src : &sp->in_src;
        if (*src != SRC_NONE) {
            continue;
        }
        json_t *m = indexed_messages(b, fams[f].prefix, fams[f].oi);
        if (m != NULL) {
            llmobs_set(c, fams[f].output ? sp->output : sp->input, "messages", m);
            *src = SRC_SPAN;
        }
    }
    if (sp->in_src == SRC_NONE && b->ix.v[K_INPUT_VALUE] != NULL) {
        llmobs_set(c, sp->input, "value", value_text(c, b->ix.v[K_INPUT_VALUE]));
        sp->in_src = SRC_VALUE;
    }
    if (sp->out_src == SRC_NONE && b->ix.v[K_OUTPUT_VALUE] != NULL) {
        llmobs_set(c, sp->output, "value", value_text(c, b->ix.v[K_OUTPUT_VALUE]));
        sp->out_src = SRC_VALUE;
    }
}

static void embedding_io(struct build *b)
{
    struct llmobs_ctx *c = b->c;
    json_t *docs = json_array();
    size_t vectors = 0;
    if (docs == NULL) {
        c->nomem = 1;
        return;
    }
    /* gen_ai.input.messages -> documents (Datadog); each text part is one document. */
    const OtlpAnyValue *im = b->ix.v[K_INPUT_MESSAGES];
    if (im != NULL) {
        json_t *j = llmobs_value_json(c, im);
        json_t *msgs = json_array();
        if (msgs == NULL) {
            c->nomem = 1;
        } else {
            if (json_is_string(j)) {
                json_t *d = json_object();
                llmobs_set(c, d, "text", json_incref(j));
                llmobs_push(c, docs, d);
            } else {
                llmobs_messages_append(c, j, msgs, "otel_warning_embedding_input_malformed");
            }
            size_t i;
            json_t *m;
            json_array_foreach(msgs, i, m)
            {
                json_t *d = json_object();
                llmobs_set(c, d, "text", json_incref(json_object_get(m, "content")));
                llmobs_push(c, docs, d);
            }
            json_decref(msgs);
        }
        json_decref(j);
    }
    static const char *const fams[] = {"gen_ai.prompt.", "embedding.embeddings."};
    for (size_t f = 0; f < 2 && json_array_size(docs) == 0; f++) {
        size_t plen = strlen(fams[f]);
        json_t *raw = json_array();
        for (size_t i = 0; raw != NULL && i < b->s->n_attributes; i++) {
            const OtlpKeyValue *kv = b->s->attributes[i];
            size_t idx;
            const char *rest;
            if (strncmp(kv->key, fams[f], plen) != 0 ||
                (rest = index_of(kv->key + plen, &idx)) == NULL) {
                continue;
            }
            if (strcmp(rest, f == 0 ? "content" : "embedding.text") == 0) {
                llmobs_set(c, slot(c, raw, idx), "text", value_text(c, kv->value));
            } else if (f == 1 && strcmp(rest, "embedding.vector") == 0) {
                vectors++;
            }
        }
        if (raw != NULL) {
            raw = compact(c, raw);
            size_t i;
            json_t *d;
            json_array_foreach(raw, i, d)
            {
                if (json_object_get(d, "text") != NULL) {
                    llmobs_push(c, docs, json_incref(d));
                }
            }
            json_decref(raw);
        }
    }
    if (json_array_size(docs) > 0) {
        llmobs_set(c, b->sp->input, "documents", docs);
    } else {
        json_decref(docs);
        if (b->ix.v[K_INPUT_VALUE] != NULL) {
            llmobs_set(c, b->sp->input, "value", value_text(c, b->ix.v[K_INPUT_VALUE]));
        } else {
            llmobs_error(c, "otel_warning_embedding_input_missing");
        }
    }
    /* The count of vectors when the span reports them, else one per input document. */
    size_t n = vectors > 0 ? vectors : json_array_size(json_object_get(b->sp->input, "documents"));
    if (n > 0) {
        char tmp[64];
        int len = snprintf(tmp, sizeof(tmp), "[%zu embedding(s) returned]", n);
        llmobs_set(c, b->sp->output, "value", llmobs_str(c, tmp, (size_t)len));
    } else if (b->ix.v[K_OUTPUT_VALUE] != NULL) {
        llmobs_set(c, b->sp->output, "value", value_text(c, b->ix.v[K_OUTPUT_VALUE]));
    }
}

static json_t *score_of(struct llmobs_ctx *c, const json_t *v, const OtlpAnyValue *av)
{
    if (av != NULL) {
        if (av->value_case == DBL_CASE) {
            return json_real(av->double_value);
        }
        if (av->value_case == INT_CASE) {
            return json_real((double)av->int_value);
        }
        if (av->value_case == STR_CASE) {
            char *end;
            double d = strtod(av->string_value, &end);
            if (end != av->string_value && *end == '\0') {
                return json_real(d);
            }
        }
    } else if (json_is_number(v)) {
        return json_real(json_number_value(v));
    }
    llmobs_error(c, "otel_warning_failed_to_parse_document_score");
    return NULL;
}

static void retrieval_io(struct build *b)
{
    struct llmobs_ctx *c = b->c;
    const OtlpAnyValue *q =
        b->ix.v[K_RETR_QUERY] != NULL ? b->ix.v[K_RETR_QUERY] : b->ix.v[K_INPUT_VALUE];
    if (q != NULL) {
        llmobs_set(c, b->sp->input, "value", value_text(c, q));
    }
    json_t *docs = json_array();
    if (docs == NULL) {
        c->nomem = 1;
        return;
    }
    static const char prefix[] = "retrieval.documents.";
    for (size_t i = 0; i < b->s->n_attributes; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        size_t idx;
        const char *rest;
        if (strncmp(kv->key, prefix, sizeof(prefix) - 1) != 0 ||
            (rest = index_of(kv->key + sizeof(prefix) - 1, &idx)) == NULL ||
            strncmp(rest, "document.", 9) != 0) {
            continue;
        }
        rest += 9;
        json_t *d = slot(c, docs, idx);
        if (d == NULL) {
            continue;
        }
        if (strcmp(rest, "content") == 0) {
            llmobs_set(c, d, "text", value_text(c, kv->value));
        } else if (strcmp(rest, "id") == 0) {
            llmobs_set(c, d, "id", value_text(c, kv->value));
        } else if (strcmp(rest, "score") == 0) {
            llmobs_set(c, d, "score", score_of(c, NULL, kv->value));
        } else if (strcmp(rest, "metadata") == 0) {
            json_t *m = llmobs_value_json(c, kv->value);
            if (json_is_object(m)) {
                llmobs_set(c, d, "metadata", m);
            } else {
                json_decref(m);
                llmobs_error(c, "otel_warning_document_metadata_malformed");
            }
        }
    }
    docs = compact(c, docs);
    if (json_array_size(docs) == 0 && b->ix.v[K_RETR_DOCS] != NULL) {
        json_t *j = llmobs_value_json(c, b->ix.v[K_RETR_DOCS]);
        if (!json_is_array(j)) {
            llmobs_error(c, "otel_warning_output_malformed");
        }
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            if (!json_is_object(e)) {
                llmobs_error(c, "otel_warning_output_malformed");
                continue;
            }
            json_t *d = json_object();
            const json_t *id = json_object_get(e, "id");
            const json_t *text = json_object_get(e, "content");
            if (id != NULL) {
                llmobs_set(c, d, "id", llmobs_value_string(c, id));
            }
            if (text != NULL) {
                llmobs_set(c, d, "text", llmobs_value_string(c, text));
            }
            if (json_object_get(e, "score") != NULL) {
                llmobs_set(c, d, "score", score_of(c, json_object_get(e, "score"), NULL));
            }
            llmobs_push(c, docs, d);
        }
        json_decref(j);
    }
    if (json_array_size(docs) > 0) {
        llmobs_set(c, b->sp->output, "documents", docs);
    } else {
        json_decref(docs);
        if (b->ix.v[K_OUTPUT_VALUE] != NULL) {
            llmobs_set(c, b->sp->output, "value", value_text(c, b->ix.v[K_OUTPUT_VALUE]));
        }
    }
}

/* Flattens gen_ai.*.messages to the last text (agent spans of OTel GenAI). */
static json_t *flatten_messages(struct build *b, enum akey k, const char *err)
{
    const OtlpAnyValue *v = b->ix.v[k];
    if (v == NULL) {
        return NULL;
    }
    json_t *msgs = json_array();
    json_t *j = llmobs_value_json(b->c, v);
    json_t *out = NULL;
    if (msgs != NULL) {
        llmobs_messages_append(b->c, j, msgs, err);
        if (json_array_size(msgs) > 0) {
            out = cstr(b->c, llmobs_last_content(msgs));
        }
    }
    json_decref(j);
    json_decref(msgs);
    return out != NULL ? out : value_text(b->c, v);
}

static void value_io(struct build *b)
{
    struct llmobs_ctx *c = b->c;
    static const enum akey tool_in[] = {K_TOOL_ARGS, K_TL_ENTITY_INPUT, K_INPUT_VALUE};
    static const enum akey tool_out[] = {K_TOOL_RESULT, K_TL_ENTITY_OUTPUT, K_OUTPUT_VALUE};
    static const enum akey other_in[] = {K_TL_ENTITY_INPUT, K_TASK_INPUT, K_INPUT_VALUE};
    static const enum akey other_out[] = {K_TL_ENTITY_OUTPUT, K_TASK_OUTPUT, K_OUTPUT_VALUE};
    int tool = b->kind == LLMOBS_TOOL;
    const enum akey *in = tool ? tool_in : other_in, *out = tool ? tool_out : other_out;
    json_t *vi = NULL, *vo = NULL;
    for (int i = 0; i < 3 && vi == NULL; i++) {
        vi = value_text(c, b->ix.v[in[i]]);
    }
    for (int i = 0; i < 3 && vo == NULL; i++) {
        vo = value_text(c, b->ix.v[out[i]]);
    }
    if (vi == NULL) {
        vi = flatten_messages(b, K_INPUT_MESSAGES, "otel_warning_input_malformed");
    }
    if (vo == NULL) {
        vo = flatten_messages(b, K_OUTPUT_MESSAGES, "otel_warning_output_malformed");
    }
    llmobs_set(c, b->sp->input, "value", vi);
    llmobs_set(c, b->sp->output, "value", vo);
}

static void metrics(struct build *b, json_t *m)
{
    struct llmobs_ctx *c = b->c;
    for (size_t i = 0; i < sizeof(metric_keys) / sizeof(metric_keys[0]); i++) {
        for (int j = 0; j < 3; j++) {
            const OtlpAnyValue *v = b->ix.v[metric_keys[i].keys[j]];
            if (v == NULL) {
                continue;
            }
            json_t *n = NULL;
            if (v->value_case == INT_CASE) {
                n = json_integer(v->int_value);
            } else if (v->value_case == DBL_CASE) {
                n = json_real(v->double_value);
            } else if (v->value_case == STR_CASE) {
                char *end;
                long long ll = strtoll(v->string_value, &end, 10);
                if (end != v->string_value && *end == '\0') {
                    n = json_integer(ll);
                }
            }
            if (n == NULL) {
                llmobs_error(c, "otel_warning_token_usage_unparseable");
                continue;
            }
            llmobs_set(c, m, metric_keys[i].metric, n);
            break;
        }
    }
    const json_t *in = json_object_get(m, "input_tokens"),
                 *out = json_object_get(m, "output_tokens");
    if (json_object_get(m, "total_tokens") == NULL && (in != NULL || out != NULL)) {
        double t =
            (in != NULL ? json_number_value(in) : 0) + (out != NULL ? json_number_value(out) : 0);
        llmobs_set(c, m, "total_tokens",
                   (in == NULL || json_is_integer(in)) && (out == NULL || json_is_integer(out))
                       ? json_integer((json_int_t)t)
                       : json_real(t));
    }
}

/* Merges the members of a JSON object attribute into metadata. */
static void merge_object(struct build *b, json_t *md, const OtlpAnyValue *v, const char *err,
                         int skip_reserved)
{
    if (v == NULL) {
        return;
    }
    json_t *j = llmobs_value_json(b->c, v);
    if (!json_is_object(j)) {
        llmobs_error(b->c, err);
        json_decref(j);
        return;
    }
    const char *k;
    json_t *e;
    json_object_foreach(j, k, e)
    {
        if (skip_reserved && (strcmp(k, "model_name") == 0 || strcmp(k, "model_provider") == 0)) {
            continue;
        }
        llmobs_set(b->c, md, k, json_incref(e));
    }
    json_decref(j);
}

static void metadata(struct build *b, json_t *md)
{
    struct llmobs_ctx *c = b->c;
    static const char req[] = "gen_ai.request.";
    for (size_t i = 0; i < b->s->n_attributes; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        if (strncmp(kv->key, req, sizeof(req) - 1) == 0 &&
            strcmp(kv->key, "gen_ai.request.model") != 0 && kv->key[sizeof(req) - 1] != '\0') {
            llmobs_set(c, md, kv->key + sizeof(req) - 1, llmobs_anyvalue(c, kv->value, 0));
        }
    }
    if (b->ix.v[K_FINISH] != NULL) {
        llmobs_set(c, md, "finish_reasons", llmobs_anyvalue(c, b->ix.v[K_FINISH], 0));
    }
    merge_object(b, md, b->ix.v[K_OI_PARAMS], "otel_warning_params_malformed", 0);
    merge_object(b, md, b->ix.v[K_OI_METADATA], "otel_warning_params_malformed", 0);
    static const struct {
        enum akey k1, k2;
        const char *name;
    } tool[] = {
        {K_TOOL_CALL_ID, K_OI_TOOL_ID, "tool_id"},
        {K_TOOL_TYPE, K__COUNT, "tool_type"},
        {K_TOOL_DESC, K_OI_TOOL_DESC, "tool_description"},
        {K_CONV_ID, K__COUNT, "conversation_id"},
    };
    for (size_t i = 0; i < sizeof(tool) / sizeof(tool[0]); i++) {
        const OtlpAnyValue *v = b->ix.v[tool[i].k1];
        if (v == NULL && tool[i].k2 != K__COUNT) {
            v = b->ix.v[tool[i].k2];
        }
        if (v != NULL) {
            llmobs_set(c, md, tool[i].name, value_text(c, v));
        }
    }
    merge_object(b, md, b->ix.v[K_DD_METADATA], "otel_warning_params_malformed", 1);
}

static void tool_definitions(struct build *b)
{
    struct llmobs_ctx *c = b->c;
    json_t *defs = json_array();
    if (defs == NULL) {
        c->nomem = 1;
        return;
    }
    if (b->ix.v[K_TOOL_DEFS] != NULL) {
        json_t *j = llmobs_value_json(c, b->ix.v[K_TOOL_DEFS]);
        if (!json_is_array(j)) {
            llmobs_error(c, "otel_warning_tool_definitions_malformed");
        }
        size_t i;
        json_t *d;
        json_array_foreach(j, i, d)
        {
            llmobs_push(c, defs, llmobs_tool_definition(c, d));
        }
        json_decref(j);
    }
    /* OpenLLMetry llm.request.functions.<i>.{name,description,parameters}; OpenInference
     * llm.tools.<i>.tool.json_schema. */
    json_t *raw = json_array();
    for (size_t i = 0; raw != NULL && json_array_size(defs) == 0 && i < b->s->n_attributes; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        size_t idx;
        const char *rest;
        if (strncmp(kv->key, "llm.request.functions.", 22) == 0 &&
            (rest = index_of(kv->key + 22, &idx)) != NULL) {
            if (strcmp(rest, "name") == 0 || strcmp(rest, "description") == 0 ||
                strcmp(rest, "parameters") == 0) {
                llmobs_set(c, slot(c, raw, idx), rest, llmobs_anyvalue(c, kv->value, 0));
            }
        } else if (strncmp(kv->key, "llm.tools.", 10) == 0 &&
                   (rest = index_of(kv->key + 10, &idx)) != NULL &&
                   strcmp(rest, "tool.json_schema") == 0) {
            json_t *j = llmobs_value_json(c, kv->value);
            if (json_is_object(j)) {
                while (json_array_size(raw) <= idx && !c->nomem) {
                    llmobs_push(c, raw, json_null());
                }
                json_array_set(raw, idx, j);
            } else {
                llmobs_error(c, "otel_warning_tool_definition_entry_malformed");
            }
            json_decref(j);
        }
    }
    if (raw != NULL) {
        raw = compact(c, raw);
        size_t i;
        json_t *d;
        json_array_foreach(raw, i, d)
        {
            llmobs_push(c, defs, llmobs_tool_definition(c, d));
        }
        json_decref(raw);
    }
    if (json_array_size(defs) > 0) {
        llmobs_set(c, b->sp->meta, "tool_definitions", defs);
    } else {
        json_decref(defs);
    }
}

static void lower(char *s)
{
    for (; *s != '\0'; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
}

static void model(struct build *b)
{
    struct llmobs_ctx *c = b->c;
    static const enum akey names[] = {K_RESP_MODEL,    K_REQ_MODEL,    K_OI_MODEL,
                                      K_OI_RESP_MODEL, K_OI_REQ_MODEL, K_EMB_MODEL};
    static const enum akey providers[] = {K_PROVIDER, K_SYSTEM, K_OI_PROVIDER, K_OI_SYSTEM};
    const char *name = NULL, *prov = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && name == NULL; i++) {
        name = astr(&b->ix, names[i]);
    }
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]) && prov == NULL; i++) {
        prov = astr(&b->ix, providers[i]);
    }
    /* dd-trace-py's default is "unknown" (Datadog's OTel doc says "custom" for providers). */
    llmobs_set(c, b->sp->meta, "model_name", cstr(c, name != NULL ? name : "unknown"));
    json_t *p = cstr(c, prov != NULL ? prov : "unknown");
    if (p != NULL) {
        lower((char *)json_string_value(p));
    }
    llmobs_set(c, b->sp->meta, "model_provider", p);
}

static const char *exception_attr(const OtlpSpan *s, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; i < s->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = s->events[i];
        if (e->name == NULL || strcmp(e->name, "exception") != 0) {
            continue;
        }
        for (size_t j = 0; j < e->n_attributes; j++) {
            if (strcmp(e->attributes[j]->key, key) == 0 && sval(e->attributes[j]->value)) {
                found = sval(e->attributes[j]->value); /* the last exception wins */
            }
        }
    }
    return found;
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static void add_tag(struct llmobs_ctx *c, json_t *tags, const char *k, const char *v)
{
    if (v == NULL || v[0] == '\0') {
        return;
    }
    size_t kl = strlen(k), vl = strlen(v);
    char *t = o2d_malloc(kl + vl + 2);
    if (t == NULL) {
        c->nomem = 1;
        return;
    }
    memcpy(t, k, kl);
    t[kl] = ':';
    memcpy(t + kl + 1, v, vl + 1);
    llmobs_push(c, tags, llmobs_str(c, t, kl + vl + 1));
    o2d_free(t);
}

static void tags(struct build *b, const OtlpResource *res, const struct llmobs_config *cfg,
                 const char *error_type, const char *session, int error)
{
    struct llmobs_ctx *c = b->c;
    json_t *t = json_array();
    if (t == NULL) {
        c->nomem = 1;
        return;
    }
    const char *service = otlp_resource_string(res, "service.name");
    if (service == NULL || service[0] == '\0') {
        service = cfg->default_service;
    }
    const char *env = otlp_resource_string(res, "deployment.environment.name");
    if (env == NULL || env[0] == '\0') {
        env = otlp_resource_string(res, "deployment.environment");
    }
    if (env == NULL || env[0] == '\0') {
        env = cfg->default_env;
    }
    const char *version = otlp_resource_string(res, "service.version");
    if (version == NULL || version[0] == '\0') {
        version = cfg->default_version;
    }
    const char *ml_app = otlp_resource_string(res, "datadog.ml_app");
    for (size_t i = 0;
         (ml_app == NULL || ml_app[0] == '\0') && service != NULL && i < cfg->n_ml_app_by_service;
         i++) {
        if (streq(cfg->ml_app_by_service[i].service, service)) {
            ml_app = cfg->ml_app_by_service[i].ml_app;
        }
    }
    if (ml_app == NULL || ml_app[0] == '\0') {
        ml_app = cfg->ml_app;
    }
    if (ml_app == NULL || ml_app[0] == '\0') {
        ml_app = service;
    }
    if (ml_app == NULL || ml_app[0] == '\0') {
        ml_app = "unnamed-ml-app"; /* dd-trace-py ML_APP_DEFAULT */
    }
    add_tag(c, t, "env", env);
    add_tag(c, t, "service", service);
    add_tag(c, t, "version", version);
    add_tag(c, t, "ml_app", ml_app);
    add_tag(c, t, "source", "otel");
    add_tag(c, t, "error", error ? "1" : "0");
    if (error) {
        add_tag(c, t, "error_type", error_type);
    }
    add_tag(c, t, "session_id", session);
    add_tag(c, t, "language", otlp_resource_string(res, "telemetry.sdk.language"));
    if (!c->nomem) {
        size_t n = json_array_size(t);
        json_t **v = o2d_malloc(n * sizeof(*v) + 1);
        if (v == NULL) {
            c->nomem = 1;
        } else {
            for (size_t i = 0; i < n; i++) {
                v[i] = json_incref(json_array_get(t, i));
            }
            qsort(v, n, sizeof(*v), cmp_tag);
            json_array_clear(t);
            for (size_t i = 0; i < n; i++) {
                llmobs_push(c, t, v[i]);
            }
            o2d_free(v);
        }
    }
    llmobs_set(c, b->sp->ev, "tags", t);
}

static json_t *new_obj(struct llmobs_ctx *c)
{
    json_t *o = json_object();
    if (o == NULL) {
        c->nomem = 1;
    }
    return o;
}

int llmobs_span_build(const OtlpResource *res,
                      const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                      const OtlpSpan *s, enum llmobs_kind kind, const struct llmobs_config *cfg,
                      struct llmobs_span **out)
{
    static const struct llmobs_config no_cfg = {0};
    int rv = O2D_ERR_NOMEM;
    (void)scope;
    *out = NULL;
    if (cfg == NULL) {
        cfg = &no_cfg;
    }
    if (kind == LLMOBS_NONE) {
        kind = LLMOBS_WORKFLOW;
    }
    struct build *b = o2d_calloc(1, sizeof(*b));
    struct llmobs_span *sp = o2d_calloc(1, sizeof(*sp));
    if (b == NULL || sp == NULL) {
        goto out;
    }
    struct llmobs_ctx *c = &sp->ctx;
    b->sp = sp;
    b->c = c;
    b->s = s;
    b->kind = kind;
    sp->kind = kind;
    c->errors = json_array();
    sp->ev = json_object();
    if (c->errors == NULL || sp->ev == NULL) {
        goto out;
    }
    if (s->trace_id.len == 16) {
        memcpy(sp->ids.trace_id, s->trace_id.data, 16);
    }
    if (s->span_id.len == 8) {
        sp->ids.span_id = be64(s->span_id.data);
    }
    if (s->parent_span_id.len == 8) {
        sp->ids.parent_span_id = be64(s->parent_span_id.data);
    }
    sp->ids.parent_is_remote =
        (s->flags &
         OPENTELEMETRY__PROTO__TRACE__V1__SPAN_FLAGS__SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK) != 0;
    index_attrs(&b->ix, s->attributes, s->n_attributes);

    /* name: the tool's name for tools (gen_ai.tool.name, OpenInference tool.name), OpenLLMetry's
     * traceloop.entity.name for its non-model spans, else the span name. */
    const char *name = NULL;
    if (kind == LLMOBS_TOOL) {
        name = astr(&b->ix, K_TOOL_NAME);
        if (name == NULL) {
            name = astr(&b->ix, K_OI_TOOL_NAME);
        }
    }
    if (name == NULL && kind != LLMOBS_LLM && kind != LLMOBS_EMBEDDING) {
        name = astr(&b->ix, K_TL_ENTITY_NAME);
    }
    if (name == NULL) {
        name = s->name != NULL ? s->name : "";
    }
    llmobs_set(c, sp->ev, "span_id", u64str(c, sp->ids.span_id));
    llmobs_set(c, sp->ev, "name", cstr(c, name));
    int64_t start = (int64_t)s->start_time_unix_nano;
    int64_t dur = s->end_time_unix_nano > s->start_time_unix_nano
                      ? (int64_t)(s->end_time_unix_nano - s->start_time_unix_nano)
                      : 0;
    llmobs_set(c, sp->ev, "start_ns", json_integer(start));
    llmobs_set(c, sp->ev, "duration", json_integer(dur));
    int error = s->status != NULL &&
                s->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    llmobs_set(c, sp->ev, "status", cstr(c, error ? "error" : "ok"));

    sp->meta = new_obj(c);
    llmobs_set(c, sp->ev, "meta", sp->meta);
    if (c->nomem) {
        goto out;
    }
    json_t *span = new_obj(c);
    llmobs_set(c, sp->meta, "span", span);
    if (c->nomem) {
        goto out;
    }
    llmobs_set(c, span, "kind", cstr(c, llmobs_kind_name(kind)));
    if (kind == LLMOBS_LLM || kind == LLMOBS_EMBEDDING) {
        model(b);
    }
    sp->input = new_obj(c);
    llmobs_set(c, sp->meta, "input", sp->input);
    sp->output = new_obj(c);
    llmobs_set(c, sp->meta, "output", sp->output);
    json_t *md = new_obj(c);
    llmobs_set(c, sp->meta, "metadata", md);
    if (c->nomem) {
        goto out;
    }
    switch (kind) {
    case LLMOBS_LLM:
        llm_io(b);
        tool_definitions(b);
        break;
    case LLMOBS_EMBEDDING:
        embedding_io(b);
        break;
    case LLMOBS_RETRIEVAL:
        retrieval_io(b);
        break;
    default:
        value_io(b);
        break;
    }
    metadata(b, md);

    const char *error_type = NULL;
    if (error) {
        json_t *e = new_obj(c);
        llmobs_set(c, sp->meta, "error", e);
        if (c->nomem) {
            goto out;
        }
        const char *msg = s->status->message != NULL && s->status->message[0] != '\0'
                              ? s->status->message
                              : exception_attr(s, "exception.message");
        error_type = astr(&b->ix, K_ERROR_TYPE);
        if (error_type == NULL) {
            error_type = exception_attr(s, "exception.type");
        }
        const char *stack = exception_attr(s, "exception.stacktrace");
        if (msg != NULL) {
            llmobs_set(c, e, "message", cstr(c, msg));
        }
        if (error_type != NULL) {
            llmobs_set(c, e, "type", cstr(c, error_type));
        }
        if (stack != NULL) {
            llmobs_set(c, e, "stack", cstr(c, stack));
        }
    }

    json_t *m = new_obj(c);
    llmobs_set(c, sp->ev, "metrics", m);
    if (c->nomem) {
        goto out;
    }
    metrics(b, m);

    static const enum akey sess_keys[] = {K_CONV_ID, K_SESSION, K_TL_SESSION};
    const char *session = NULL;
    for (size_t i = 0; i < 3 && session == NULL; i++) {
        session = astr(&b->ix, sess_keys[i]);
    }
    tags(b, res, cfg, error_type, session, error);
    if (session != NULL) {
        llmobs_set(c, sp->ev, "session_id", cstr(c, session));
    }
    json_t *dd = new_obj(c);
    llmobs_set(c, sp->ev, "_dd", dd);
    if (c->nomem) {
        goto out;
    }
    llmobs_set(c, dd, "span_id", u64str(c, sp->ids.span_id));
    llmobs_set(c, dd, "trace_id", apm_trace_id(c, sp->ids.trace_id));
    llmobs_set(c, dd, "apm_trace_id", apm_trace_id(c, sp->ids.trace_id));
    if (c->nomem) {
        goto out;
    }
    *out = sp;
    sp = NULL;
    rv = O2D_OK;
out:
    llmobs_span_free(sp);
    o2d_free(b);
    return rv;
}

/* ---- log records ---- */

static const char *log_event_name(const OtlpLogRecord *r)
{
    if (r->event_name != NULL && r->event_name[0] != '\0') {
        return r->event_name;
    }
    for (size_t i = 0; i < r->n_attributes; i++) {
        if (strcmp(r->attributes[i]->key, "event.name") == 0) {
            return sval(r->attributes[i]->value);
        }
    }
    return NULL;
}

/* The <= 1.36 per-message events and the role each implies. */
static const struct {
    const char *event;
    const char *role;
    int output;
} log_events[] = {
    {"gen_ai.system.message", "system", 0},
    {"gen_ai.user.message", "user", 0},
    {"gen_ai.assistant.message", "assistant", 0},
    {"gen_ai.tool.message", "tool", 0},
    {"gen_ai.choice", "assistant", 1},
    {OP_DETAILS, NULL, 0},
};

static int log_event_index(const OtlpLogRecord *r)
{
    const char *name = log_event_name(r);
    for (size_t i = 0; name != NULL && i < sizeof(log_events) / sizeof(log_events[0]); i++) {
        if (strcmp(name, log_events[i].event) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int llmobs_log_is_genai(const OtlpLogRecord *r)
{
    if (r == NULL || r->span_id.len != 8 || r->trace_id.len != 16 || be64(r->span_id.data) == 0) {
        return 0;
    }
    return log_event_index(r) >= 0;
}

static json_t *messages_of(struct llmobs_span *sp, json_t *io, enum io_src *src)
{
    struct llmobs_ctx *c = &sp->ctx;
    if (*src == SRC_SPAN) {
        return NULL; /* the span's own messages win; the log repeats them */
    }
    json_t *m = json_object_get(io, "messages");
    if (*src != SRC_LOG || m == NULL) {
        json_object_del(io, "value");
        m = json_array();
        llmobs_set(c, io, "messages", m);
        if (c->nomem) {
            return NULL;
        }
        *src = SRC_LOG;
    }
    return m;
}

int llmobs_span_add_log(struct llmobs_span *sp, const OtlpLogRecord *r)
{
    int ev = log_event_index(r);
    if (sp == NULL || ev < 0) {
        return O2D_OK;
    }
    struct llmobs_ctx *c = &sp->ctx;
    c->nomem = 0;
    if (sp->kind != LLMOBS_LLM) {
        return O2D_OK; /* messages are only meaningful on llm spans (dd-trace-py) */
    }
    if (log_events[ev].role == NULL) {
        /* operation details: structured attributes (util-genai) or a kvlist body */
        struct genai_io io = {0};
        genai_io_scan(&io, r->attributes, r->n_attributes);
        if (r->body != NULL &&
            r->body->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE &&
            r->body->kvlist_value != NULL) {
            genai_io_scan(&io, r->body->kvlist_value->values, r->body->kvlist_value->n_values);
        }
        if ((io.system != NULL || io.input != NULL) && sp->in_src != SRC_SPAN) {
            json_object_del(sp->input, "value");
            json_object_del(sp->input, "messages");
            if (genai_messages(c, sp->input, io.system, io.input, "otel_warning_input_malformed")) {
                sp->in_src = SRC_LOG;
            }
        }
        if (io.output != NULL && sp->out_src != SRC_SPAN) {
            json_object_del(sp->output, "value");
            json_object_del(sp->output, "messages");
            if (genai_messages(c, sp->output, NULL, io.output, "otel_warning_output_malformed")) {
                sp->out_src = SRC_LOG;
            }
        }
        return c->nomem ? O2D_ERR_NOMEM : O2D_OK;
    }
    int output = log_events[ev].output;
    json_t *list = output ? messages_of(sp, sp->output, &sp->out_src)
                          : messages_of(sp, sp->input, &sp->in_src);
    if (list == NULL) {
        return c->nomem ? O2D_ERR_NOMEM : O2D_OK;
    }
    json_t *body = r->body != NULL ? llmobs_anyvalue(c, r->body, 0) : NULL;
    if (json_is_string(body)) {
        /* Some SDKs put the content itself in the body. */
        json_t *o = json_object();
        llmobs_set(c, o, "content", body);
        body = o;
    }
    if (body == NULL && !c->nomem) {
        body = json_object(); /* content capture off: the message without content */
    }
    const json_t *m = body;
    if (output && json_is_object(json_object_get(body, "message"))) {
        m = json_object_get(body, "message");
    }
    llmobs_push(c, list, llmobs_message(c, m, log_events[ev].role));
    json_decref(body);
    return c->nomem ? O2D_ERR_NOMEM : O2D_OK;
}

const struct llmobs_ids *llmobs_span_ids(const struct llmobs_span *sp)
{
    return &sp->ids;
}

size_t llmobs_span_size(const struct llmobs_span *sp)
{
    return sizeof(*sp) + sp->ctx.bytes;
}

void llmobs_span_free(struct llmobs_span *sp)
{
    if (sp == NULL) {
        return;
    }
    json_decref(sp->ev);
    json_decref(sp->ctx.errors);
    o2d_free(sp);
}

/* ---- writing ---- */

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rv = (x)) != O2D_OK) {                                                                \
            return rv;                                                                             \
        }                                                                                          \
    } while (0)

static int write_key(struct o2d_buf *b, const char *k, int comma)
{
    int rv;
    if (comma) {
        TRY(o2d_buf_append_byte(b, ','));
    }
    TRY(o2d_json_append_string(b, k, strlen(k)));
    return o2d_buf_append_byte(b, ':');
}

static int write_meta(struct o2d_buf *b, const json_t *meta, int drop_io)
{
    int rv, first = 1;
    const char *k;
    json_t *v;
    TRY(o2d_buf_append_byte(b, '{'));
    json_object_foreach((json_t *)meta, k, v)
    {
        int io = strcmp(k, "input") == 0 || strcmp(k, "output") == 0;
        if (io && !drop_io && json_object_size(v) == 0) {
            continue;
        }
        TRY(write_key(b, k, !first));
        first = 0;
        if (io && drop_io) {
            TRY(o2d_buf_append_str(b, "{\"value\":"));
            TRY(o2d_json_append_string(b, DROPPED_IO, sizeof(DROPPED_IO) - 1));
            TRY(o2d_buf_append_byte(b, '}'));
        } else {
            TRY(llmobs_json_write(b, v, 0));
        }
    }
    return o2d_buf_append_byte(b, '}');
}

static int write_event(const struct llmobs_span *sp, const char *llm_trace_id, uint64_t parent_id,
                       int drop_io, struct o2d_buf *out)
{
    int rv;
    const char *k;
    json_t *v;
    TRY(o2d_buf_append_byte(out, '{'));
    TRY(write_key(out, "trace_id", 0));
    TRY(o2d_json_append_string(out, llm_trace_id, strlen(llm_trace_id)));
    json_object_foreach(sp->ev, k, v)
    {
        TRY(write_key(out, k, 1));
        if (v == sp->meta) {
            TRY(write_meta(out, v, drop_io));
        } else {
            TRY(llmobs_json_write(out, v, 0));
        }
        if (strcmp(k, "span_id") == 0) {
            TRY(write_key(out, "parent_id", 1));
            if (parent_id == 0) {
                TRY(o2d_buf_append_str(out, "\"undefined\""));
            } else {
                TRY(o2d_buf_printf(out, "\"%" PRIu64 "\"", parent_id));
            }
        }
    }
    if (json_array_size(sp->ctx.errors) > 0 || drop_io) {
        TRY(write_key(out, "collection_errors", 1));
        TRY(o2d_buf_append_byte(out, '['));
        size_t i;
        int first = 1;
        json_array_foreach(sp->ctx.errors, i, v)
        {
            if (!first) {
                TRY(o2d_buf_append_byte(out, ','));
            }
            first = 0;
            TRY(llmobs_json_write(out, v, 0));
        }
        if (drop_io) {
            TRY(o2d_buf_append_str(out, first ? "\"dropped_io\"" : ",\"dropped_io\""));
        }
        TRY(o2d_buf_append_byte(out, ']'));
    }
    return o2d_buf_append_byte(out, '}');
}

int llmobs_span_write(const struct llmobs_span *sp, const char *llm_trace_id, uint64_t parent_id,
                      size_t max_event_size, struct o2d_buf *out)
{
    size_t start = out->len;
    int rv = write_event(sp, llm_trace_id, parent_id, 0, out);
    if ((rv == O2D_OK && out->len - start <= max_event_size) ||
        (rv != O2D_OK && rv != O2D_ERR_TOO_LARGE)) {
        if (rv != O2D_OK) {
            out->len = start;
        }
        return rv;
    }
    /* Too large: drop input and output as the tracers do (_truncate_span_event). */
    out->len = start;
    rv = write_event(sp, llm_trace_id, parent_id, 1, out);
    if (rv != O2D_OK) {
        out->len = start;
    }
    return rv;
}
