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
 *
 * The event is written as JSON text once, when the span is built (jansson only parses the
 * JSON that instrumentations put into attributes); the trace buffer then holds bytes, and
 * llmobs_span_write() splices in the ids it decided.
 */
#include <ctype.h>
#include <stddef.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llmobs_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_in.h"
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

/* meta.input or meta.output while it is written: at most one member ("value", "messages" or
 * "documents"); a list holds its elements, so log records can append to it. */
int llmobs_fast_off;

struct io {
    const char *key; /* NULL: empty, the member is left out */
    int array;
    size_t n; /* elements */
    struct o2d_buf b;
};

/* An io kept in the span's text. */
struct io_ref {
    const char *key;
    int array;
    size_t n;
    size_t off, len; /* in text */
};

/*
 * The event as JSON text, written at build time minus trace_id and parent_id: text holds
 * `,"name":...,"meta":{"span":{...}...` (head_len bytes), then the rest of meta and the event
 * from `,"metadata":` on (tail), then the input and output members. llmobs_span_write()
 * splices the ids in front and input/output between head and tail.
 *
 * One allocation: the struct, then text, then the ml_app and session strings (text_cap bytes
 * after the struct). Five allocations a span (the struct, text, a large io taken from the
 * builder, ml_app, session) were a fifth of the LLM Obs stage under load, most of it malloc
 * searching bins that spans freed on another thread had fragmented.
 */
struct llmobs_span {
    struct llmobs_ids ids;
    enum llmobs_kind kind;
    enum io_src in_src, out_src;
    struct llmobs_errors errors;
    struct io_ref io[2];  /* input, output */
    struct io *log_io[2]; /* replaced by log records (llm spans only; rare) */
    /* Responses: the span's input is gen_ai.system_instructions alone; the rest of the input
     * (which may repeat it) comes in an operation-details log record. */
    uint8_t system_only;
    size_t sys_len;       /* the leading instructions element of log_io[0] (0: none) */
    uint8_t expects_logs; /* content can still come as log records (llmobs_span_awaits_logs) */
    uint8_t error;
    /* Session: its own (session, NUL-terminated, owned), or where an inherited one goes:
     * the tag at sess_tag_off (sess_tag_mode, enum sess_mode) and the session_id member at
     * sess_field_off (offsets into text). */
    const char *session;
    uint8_t sess_tag_mode;
    size_t sess_tag_off, sess_field_off;
    /* ml_app (owned), whether it was set for the span itself (resource datadog.ml_app), and
     * where its value is in the tag "ml_app:<value>" (text[ml_app_off, ml_app_end)). */
    const char *ml_app;
    uint8_t ml_app_explicit;
    size_t ml_app_off, ml_app_end;
    size_t head_len, tail_len;
    /* The decimal span id written in _dd (text[sid_off, +sid_len)), for the event's span_id. */
    size_t sid_off;
    uint8_t sid_len;
    uint8_t *text;
    size_t text_cap;
    union {
        max_align_t align;
        unsigned char bytes[LLMOBS_SPAN_HOLD];
    } hold;
};

static const uint8_t *io_bytes(const struct llmobs_span *sp, const struct io_ref *r)
{
    return sp->text + r->off;
}

/* Where an inherited session tag goes among the sorted tags. */
enum sess_mode {
    SESS_NONE = 0, /* nowhere: the span has one, or a configured tag has the key */
    SESS_BEFORE,   /* "session_id:X", before the element at sess_tag_off */
    SESS_END,      /* ,"session_id:X" at the closing bracket */
    SESS_ONLY,     /* "session_id:X" in an empty list */
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

/* Whether s starts with p[0..n): a byte loop that stops at the first difference (s's NUL
 * included), inlined and unrolled for a literal; strncmp's call cost more than most keys
 * take to tell apart. */
static inline int starts_with(const char *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != p[i]) {
            return 0;
        }
    }
    return 1;
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
        /* Vercel AI SDK v7 (@ai-sdk/otel): one step of its agent loop, around the step's chat
         * and tool spans. */
        {"agent_step", LLMOBS_WORKFLOW},
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
    const char *tl = NULL, *oi = NULL, *op = NULL, *req_type = NULL, *vercel_op = NULL;
    int marker = 0, model = 0;
    /* Every span of every request comes here, so a key is told apart by its first bytes
     * before any strcmp: most keys (http.*, code.*, url.*) stop at the first switch, and a
     * gen_ai.* key costs one strcmp, not up to five. */
    for (size_t i = 0; i < s->n_attributes; i++) {
        const char *k = s->attributes[i]->key;
        const OtlpAnyValue *v = s->attributes[i]->value;
        switch (k[0]) {
        case 'a':
            if (k[1] == 'i' && k[2] == '.' && strcmp(k, "ai.operationId") == 0) {
                vercel_op = sval(v);
            }
            break;
        case 't':
            if (k[1] == 'r' && strcmp(k, "traceloop.span.kind") == 0) {
                tl = sval(v);
            }
            break;
        case 'o':
            if (k[1] == 'p' && strcmp(k, "openinference.span.kind") == 0) {
                oi = sval(v);
            }
            break;
        case 'l':
            if (k[1] == 'l' && strcmp(k, "llm.request.type") == 0) {
                req_type = sval(v);
            }
            break;
        case 'g':
            if (!starts_with(k, "gen_ai.", 7)) {
                break;
            }
            k += 7;
            switch (k[0]) {
            case 'o':
                if (strcmp(k, "operation.name") == 0) {
                    op = sval(v);
                    marker = 1;
                }
                break;
            case 'p':
                marker |= strcmp(k, "provider.name") == 0;
                break;
            case 's':
                marker |= strcmp(k, "system") == 0;
                break;
            case 'r':
                model |= strcmp(k, "request.model") == 0 || strcmp(k, "response.model") == 0;
                break;
            default:
                break;
            }
            break;
        default:
            break;
        }
    }
    /* Vercel AI SDK v4-v6 (llmobs_vercel.c): its doGenerate spans also carry gen_ai.system. */
    if (vercel_op != NULL) {
        enum llmobs_kind vk = llmobs_vercel_kind(vercel_op);
        if (vk != LLMOBS_NONE) {
            return vk;
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
    K_OI_TOOL_PARAMS,
    K_OI_USER_ID,
    K_OI_TAGS,
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
    K_VERCEL_OP,
    K__COUNT
};

/* Names with their lengths, so that most keys are told apart without comparing bytes. */
#define KT(name, id)                                                                               \
    {                                                                                              \
        name, sizeof(name) - 1, id                                                                 \
    }
static const struct {
    const char *name;
    size_t len;
    enum akey id;
} key_table[] = {
    KT("traceloop.entity.name", K_TL_ENTITY_NAME),
    KT("traceloop.entity.input", K_TL_ENTITY_INPUT),
    KT("traceloop.entity.output", K_TL_ENTITY_OUTPUT),
    KT("traceloop.association.properties.session_id", K_TL_SESSION),
    KT("gen_ai.provider.name", K_PROVIDER),
    KT("gen_ai.system", K_SYSTEM),
    KT("gen_ai.request.model", K_REQ_MODEL),
    KT("gen_ai.response.model", K_RESP_MODEL),
    KT("gen_ai.input.messages", K_INPUT_MESSAGES),
    KT("gen_ai.output.messages", K_OUTPUT_MESSAGES),
    KT("gen_ai.system_instructions", K_SYSTEM_INSTR),
    KT("gen_ai.tool.name", K_TOOL_NAME),
    KT("gen_ai.tool.call.id", K_TOOL_CALL_ID),
    KT("gen_ai.tool.type", K_TOOL_TYPE),
    KT("gen_ai.tool.description", K_TOOL_DESC),
    KT("gen_ai.tool.definitions", K_TOOL_DEFS),
    KT("gen_ai.tool.call.arguments", K_TOOL_ARGS),
    KT("gen_ai.tool.call.result", K_TOOL_RESULT),
    KT("gen_ai.task.input", K_TASK_INPUT),
    KT("gen_ai.task.output", K_TASK_OUTPUT),
    KT("gen_ai.conversation.id", K_CONV_ID),
    KT("gen_ai.response.finish_reasons", K_FINISH),
    KT("gen_ai.retrieval.documents", K_RETR_DOCS),
    KT("gen_ai.retrieval.query.text", K_RETR_QUERY),
    KT("error.type", K_ERROR_TYPE),
    KT("_dd.ml_obs.metadata", K_DD_METADATA),
    KT("llm.model_name", K_OI_MODEL),
    KT("llm.response.model_name", K_OI_RESP_MODEL),
    KT("llm.request.model_name", K_OI_REQ_MODEL),
    KT("embedding.model_name", K_EMB_MODEL),
    KT("llm.provider", K_OI_PROVIDER),
    KT("llm.system", K_OI_SYSTEM),
    KT("llm.invocation_parameters", K_OI_PARAMS),
    KT("metadata", K_OI_METADATA),
    KT("input.value", K_INPUT_VALUE),
    KT("output.value", K_OUTPUT_VALUE),
    KT("session.id", K_SESSION),
    KT("tool.name", K_OI_TOOL_NAME),
    KT("tool.id", K_OI_TOOL_ID),
    KT("tool.description", K_OI_TOOL_DESC),
    KT("tool.parameters", K_OI_TOOL_PARAMS),
    KT("user.id", K_OI_USER_ID),
    KT("tag.tags", K_OI_TAGS),
    KT("gen_ai.usage.input_tokens", K_U_INPUT),
    KT("gen_ai.usage.prompt_tokens", K_U_PROMPT),
    KT("llm.token_count.prompt", K_OI_PROMPT),
    KT("gen_ai.usage.output_tokens", K_U_OUTPUT),
    KT("gen_ai.usage.completion_tokens", K_U_COMPLETION),
    KT("llm.token_count.completion", K_OI_COMPLETION),
    KT("gen_ai.usage.total_tokens", K_U_TOTAL),
    KT("llm.usage.total_tokens", K_LLM_TOTAL),
    KT("llm.token_count.total", K_OI_TOTAL),
    KT("gen_ai.usage.cache_read.input_tokens", K_U_CACHE_READ),
    KT("gen_ai.usage.cache_read_input_tokens", K_U_CACHE_READ_OLD),
    KT("llm.token_count.prompt_details.cache_read", K_OI_CACHE_READ),
    KT("gen_ai.usage.cache_creation.input_tokens", K_U_CACHE_WRITE),
    KT("gen_ai.usage.cache_creation_input_tokens", K_U_CACHE_WRITE_OLD),
    KT("llm.token_count.prompt_details.cache_write", K_OI_CACHE_WRITE),
    KT("gen_ai.usage.reasoning.output_tokens", K_U_REASONING),
    KT("gen_ai.usage.reasoning_tokens", K_U_REASONING_OLD),
    KT("llm.token_count.completion_details.reasoning", K_OI_REASONING),
    KT("ai.operationId", K_VERCEL_OP), /* llmobs_vercel.c */
};
#undef KT

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

/* key_table's entries grouped by a hash of a name's length and first and last bytes (built
 * once): an attribute key is compared with the one or two names of its slot, not with every
 * name of its length (that walk, and before it one past all names, was most of what indexing
 * the attributes of every LLM Obs span cost). */
#define KT_N     (sizeof(key_table) / sizeof(key_table[0]))
#define KT_SLOTS 256
static uint8_t kt_order[KT_N];
static uint8_t kt_first[KT_SLOTS + 1]; /* names of slot h: kt_order[kt_first[h]..[h+1]) */
static pthread_once_t kt_once = PTHREAD_ONCE_INIT;

static unsigned kt_slot(const char *k, size_t len)
{
    return ((unsigned)len * 31u + (unsigned char)k[0] * 7u + (unsigned char)k[len - 1]) &
           (KT_SLOTS - 1);
}

static void kt_init(void)
{
    size_t count[KT_SLOTS + 1] = {0};
    for (size_t j = 0; j < KT_N; j++) {
        count[kt_slot(key_table[j].name, key_table[j].len)]++;
    }
    size_t at = 0;
    for (size_t h = 0; h <= KT_SLOTS; h++) {
        kt_first[h] = (uint8_t)at;
        at += count[h];
        count[h] = kt_first[h];
    }
    /* table order kept within a slot, as the walk had it */
    for (size_t j = 0; j < KT_N; j++) {
        kt_order[count[kt_slot(key_table[j].name, key_table[j].len)]++] = (uint8_t)j;
    }
}

static void index_attrs(struct attrs *ix, OtlpKeyValue *const *kv, size_t n)
{
    _Static_assert(KT_N < 256, "kt_order holds uint8_t");
    pthread_once(&kt_once, kt_init);
    memset(ix, 0, sizeof(*ix));
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i]->key;
        switch (k[0]) {
        case '_':
        case 'a':
        case 'e':
        case 'g':
        case 'i':
        case 'l':
        case 'm':
        case 'o':
        case 's':
        case 't':
        case 'u':
            break;
        default:
            continue;
        }
        size_t len = strlen(k);
        unsigned h = kt_slot(k, len);
        for (size_t p = kt_first[h]; p < kt_first[h + 1]; p++) {
            size_t j = kt_order[p];
            if (key_table[j].len == len && memcmp(k, key_table[j].name, len) == 0) {
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

/* metadata: an object whose keys keep their first place and take their last value. */
#define MD_INDEX_AT 32
struct md_entry {
    size_t koff, voff, vlen; /* in md.text; keys NUL-terminated */
};
struct md {
    struct o2d_buf text;
    struct md_entry *e;
    size_t n, cap;
    json_t *index; /* key -> entry, once there are many keys */
};

/*
 * The tags of the last span built of a resource, written, for the next spans of that
 * resource in the same request (llmobs_builder_begin .. _end): spans without an error,
 * session, user id or tag.tags of their own get exactly the tags of their resource and the
 * configuration, and most spans of a request are such siblings. Offsets are from the start
 * of `text` (the `,"tags":[...]` member).
 */
struct tag_memo {
    int on;    /* inside begin .. end: resource pointers stay valid and distinct */
    int valid; /* text is the tags of res with cfg */
    const OtlpResource *res;
    const struct llmobs_config *cfg;
    struct o2d_buf text;
    const char *ml_app;
    uint8_t ml_app_explicit, sess_tag_mode;
    size_t ml_app_off, ml_app_end, sess_tag_off, sess_field_off;
};

struct build {
    struct llmobs_span *sp; /* &tmp while it is built */
    struct llmobs_span tmp;
    const char *ml_app;  /* borrowed until finish() copies them into the span */
    const char *session; /* NULL: none of its own */
    struct o2d_buf tagtext;
    struct llmobs_ctx c;
    const OtlpSpan *s;
    struct attrs ix;
    enum llmobs_kind kind;
    struct o2d_buf main; /* head, then tail */
    struct io io[2];
    struct o2d_buf tdefs;
    size_t n_tdefs;
    struct o2d_buf last;   /* flatten_messages */
    struct o2d_buf famtag; /* indexed_messages_fast: FAM_* of each attribute, once a span */
    int famtag_ready;
    struct md md;
    struct tag_memo memo;
};

/* Written out so that the compiler makes it one load and a byte swap (the loop was not). */
static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

/* Inline so that the length of a literal is known at compile time: a copy that fits is a
 * few moves here, without the calls to o2d_buf_append, memcpy and llmobs_check (tens of
 * these per event). */
static inline void put(struct llmobs_ctx *c, struct o2d_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n > 0 && n <= b->cap - b->len) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        return;
    }
    llmobs_check(c, o2d_buf_append(b, s, n));
}

static void put_str(struct llmobs_ctx *c, struct o2d_buf *b, const char *s, size_t n)
{
    llmobs_check(c, o2d_json_append_string(b, s, n));
}

static void put_cstr(struct llmobs_ctx *c, struct o2d_buf *b, const char *s)
{
    put_str(c, b, s, strlen(s));
}

static void put_u64str(struct llmobs_ctx *c, struct o2d_buf *b, uint64_t v)
{
    put(c, b, "\"");
    llmobs_check(c, o2d_json_append_uint(b, v));
    put(c, b, "\"");
}

/* format_trace_id: 32 lowercase hex when the high 64 bits are set, else decimal. */
static void put_apm_trace_id(struct llmobs_ctx *c, struct o2d_buf *b, const uint8_t t[16])
{
    if (be64(t) == 0) {
        put_u64str(c, b, be64(t + 8));
        return;
    }
    put(c, b, "\"");
    llmobs_check(c, o2d_hex_append(b, t, 16));
    put(c, b, "\"");
}

static void io_start(struct io *io, const char *key, int array)
{
    io->key = key;
    io->array = array;
    io->n = 0;
    o2d_buf_reset(&io->b);
}

/* io = {"value": text of v}; nothing (and 0) when v is not set. */
static int io_value(struct llmobs_ctx *c, struct io *io, const OtlpAnyValue *v)
{
    io_start(io, "value", 0);
    if (!llmobs_value_text_write(c, &io->b, v)) {
        io->key = NULL;
        return 0;
    }
    return 1;
}

/* Input side (rare paths that regroup attributes first): a value as a string, as io_value
 * writes it. */
static json_t *value_text(struct llmobs_ctx *c, const OtlpAnyValue *v)
{
    if (v == NULL) {
        return NULL;
    }
    if (v->value_case == STR_CASE) {
        return llmobs_str(c, v->string_value, strlen(v->string_value));
    }
    json_t *j = llmobs_anyvalue(c, v, 0);
    if (j == NULL) {
        return NULL;
    }
    struct o2d_buf t;
    o2d_buf_init(&t, SIZE_MAX / 2);
    llmobs_check(c, llmobs_json_write(&t, j, 0));
    json_decref(j);
    json_t *s = llmobs_str(c, (const char *)t.data, t.len);
    o2d_buf_cleanup(&t);
    return s;
}

/* A JSON value as a string: strings as they are, anything else as compact JSON text. */
static json_t *value_string(struct llmobs_ctx *c, const json_t *v)
{
    if (json_is_string(v)) {
        return llmobs_str(c, json_string_value(v), json_string_length(v));
    }
    struct o2d_buf t;
    o2d_buf_init(&t, SIZE_MAX / 2);
    llmobs_check(c, llmobs_json_write(&t, v, 0));
    json_t *s = llmobs_str(c, (const char *)t.data, t.len);
    o2d_buf_cleanup(&t);
    return s;
}

/* Appends a list element written from a jansson value at writer depth 2. */
static void io_push_json(struct llmobs_ctx *c, struct io *io, const json_t *v)
{
    if (io->n++ > 0) {
        put(c, &io->b, ",");
    }
    llmobs_check(c, llmobs_json_write(&io->b, v, 2));
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

static json_t *cstr(struct llmobs_ctx *c, const char *s)
{
    return llmobs_str(c, s, strlen(s));
}

/* One attribute of an indexed message family, into the OpenAI-like object msg. */
static void indexed_field(struct build *b, json_t *msg, const char *rest, const OtlpAnyValue *v,
                          int openinference)
{
    struct llmobs_ctx *c = &b->c;
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

/* The common OpenLLMetry shape of an indexed family (gen_ai.prompt.<i>.role and .content
 * strings, indices under INDEXED_FAST_MAX; keys indexed_field ignores, such as finish_reason,
 * allowed) written to io as indexed_messages' general path writes it, without jansson values:
 * the messages by index, each {"role", "content"} (a missing or empty role is "" and
 * otel_warning_message_malformed, as llmobs_msg_read has it; a missing content ""). Returns -1
 * when the span has none of the family's attributes, 0 (nothing written) for anything else:
 * read it the general way then. */
enum { INDEXED_FAST_MAX = 64, INDEXED_FAST_CALLS = 4 };

struct fast_msg {
    const char *role, *content;
    size_t role_len, content_len; /* measured once, for the estimate and the writes */
    struct {
        const char *id, *name, *args;
    } tc[INDEXED_FAST_CALLS];
    uint8_t n_tc; /* one past the highest tool call index seen */
    uint8_t tc_present[INDEXED_FAST_CALLS];
};

/* A tool call's field (tool_calls.<j>.id, .name or .arguments) of message m; 0 when it is
 * one the fast reader leaves to the general one. */
static int fast_tool_field(struct fast_msg *m, const char *rest, const OtlpAnyValue *v)
{
    size_t j;
    const char *f = index_of(rest, &j);
    if (f == NULL || j >= INDEXED_FAST_CALLS || v == NULL || v->value_case != STR_CASE) {
        return 0;
    }
    for (; m->n_tc <= j; m->n_tc++) {
        m->tc[m->n_tc].id = m->tc[m->n_tc].name = m->tc[m->n_tc].args = NULL;
        m->tc_present[m->n_tc] = 0;
    }
    m->tc_present[j] = 1;
    if (strcmp(f, "id") == 0) {
        m->tc[j].id = v->string_value;
    } else if (strcmp(f, "name") == 0) {
        m->tc[j].name = v->string_value;
    } else if (strcmp(f, "arguments") == 0) {
        m->tc[j].args = v->string_value;
    } else {
        return 0;
    }
    return 1;
}

/* Message m's tool calls as list_item/tool_call write them ({"tool_calls":[...],); 0 when a
 * call needs the general reader (no name, arguments that may not be an object). */
static int fast_tool_calls(struct llmobs_ctx *c, struct o2d_buf *out, const struct fast_msg *m)
{
    int first = 1;
    for (size_t j = 0; j < m->n_tc; j++) {
        if (!m->tc_present[j]) {
            continue;
        }
        const char *name = m->tc[j].name, *args = m->tc[j].args;
        if (name == NULL || name[0] == '\0') {
            return 0; /* otel_warning_tool_call_name_missing */
        }
        put(c, out, first ? "{\"tool_calls\":[{\"name\":" : ",{\"name\":");
        first = 0;
        put_cstr(c, out, name);
        put(c, out, ",\"arguments\":");
        if (args == NULL) {
            put(c, out, "{}");
        } else if (!llmobs_args_write_fast(c, args, strlen(args), out)) {
            return 0;
        }
        if (m->tc[j].id != NULL) {
            put(c, out, ",\"tool_id\":");
            put_cstr(c, out, m->tc[j].id);
        }
        put(c, out, ",\"type\":\"function\"}");
    }
    if (!first) {
        put(c, out, "],");
    }
    return 1;
}

/* The common OpenLLMetry shape of an indexed family (gen_ai.prompt.<i>.role and .content
 * strings, and .tool_calls.<j>.id/.name/.arguments strings, indices under INDEXED_FAST_MAX
 * and INDEXED_FAST_CALLS; keys indexed_field ignores, such as finish_reason, allowed) written
 * to io as indexed_messages' general path writes it, without jansson values: the messages by
 * index, each {"tool_calls": [...], "role", "content"} (a missing or empty role is "" and
 * otel_warning_message_malformed, as llmobs_msg_read has it; a missing content "", left out
 * when there are tool calls and no content). Returns -1 when the span has none of the
 * family's attributes, 0 (nothing written) for anything else: read it the general way then. */
/* The OpenLLMetry indexed families an attribute key starts with (FAM_NONE: neither). */
enum { FAM_NONE = 0, FAM_PROMPT, FAM_COMPLETION };

/* b->famtag for the span's attributes: each key told apart once, where the families' scans
 * compared every key with their prefix each (14 to 18 bytes in common for a family's keys). */
static int famtag_fill(struct build *b)
{
    if (b->famtag_ready) {
        return 1;
    }
    size_t n = b->s->n_attributes;
    o2d_buf_reset(&b->famtag);
    if (o2d_buf_reserve(&b->famtag, n + 1) != O2D_OK) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = b->s->attributes[i]->key;
        uint8_t f = FAM_NONE;
        if (starts_with(k, "gen_ai.", 7)) {
            if (starts_with(k + 7, "prompt.", 7)) {
                f = FAM_PROMPT;
            } else if (starts_with(k + 7, "completion.", 11)) {
                f = FAM_COMPLETION;
            }
        }
        b->famtag.data[i] = f;
    }
    b->famtag.len = n;
    b->famtag_ready = 1;
    return 1;
}

static int indexed_messages_fast(struct build *b, struct io *io, const char *prefix, size_t plen)
{
    struct llmobs_ctx *c = &b->c;
    struct fast_msg m[INDEXED_FAST_MAX];
    uint8_t present[INDEXED_FAST_MAX];
    size_t top = 0; /* one past the highest index seen */
    /* the two families this reads, by their tag; any other prefix by comparing */
    int fam = strcmp(prefix, "gen_ai.prompt.") == 0       ? FAM_PROMPT
              : strcmp(prefix, "gen_ai.completion.") == 0 ? FAM_COMPLETION
                                                          : FAM_NONE;
    const uint8_t *tag = fam != FAM_NONE && famtag_fill(b) ? b->famtag.data : NULL;
    for (size_t i = 0; i < b->s->n_attributes; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        size_t idx;
        const char *rest;
        if ((tag != NULL ? tag[i] != fam : !starts_with(kv->key, prefix, plen)) ||
            (rest = index_of(kv->key + plen, &idx)) == NULL) {
            continue;
        }
        if (idx >= INDEXED_FAST_MAX) {
            return 0;
        }
        for (; top <= idx; top++) {
            m[top].role = m[top].content = NULL;
            m[top].n_tc = 0;
            present[top] = 0;
        }
        present[idx] = 1;
        const char **field = strcmp(rest, "role") == 0      ? &m[idx].role
                             : strcmp(rest, "content") == 0 ? &m[idx].content
                                                            : NULL;
        if (field != NULL) {
            if (kv->value == NULL || kv->value->value_case != STR_CASE) {
                return 0;
            }
            *field = kv->value->string_value; /* the last one wins, as llmobs_set's does */
        } else if (strncmp(rest, "tool_calls.", 11) == 0) {
            if (!fast_tool_field(&m[idx], rest + 11, kv->value)) {
                return 0;
            }
        } else if (strcmp(rest, "tool_call_id") == 0 || strcmp(rest, "name") == 0) {
            return 0;
        }
    }
    if (top == 0) {
        return -1;
    }
    io_start(io, "messages", 1);
    size_t est = 0;
    for (size_t i = 0; i < top; i++) {
        m[i].role_len = m[i].role != NULL ? strlen(m[i].role) : 0;
        m[i].content_len = m[i].content != NULL ? strlen(m[i].content) : 0;
        est += 32 + m[i].role_len + m[i].content_len;
    }
    llmobs_check(c, o2d_buf_reserve(&io->b, est));
    for (size_t i = 0; i < top; i++) {
        if (!present[i]) {
            continue;
        }
        const char *role = m[i].role;
        size_t role_len = m[i].role_len;
        if (role == NULL || role[0] == '\0') {
            llmobs_error(c, "otel_warning_message_malformed");
            role = "";
            role_len = 0;
        }
        if (io->n++ > 0) {
            put(c, &io->b, ",");
        }
        size_t at = io->b.len;
        if (!fast_tool_calls(c, &io->b, &m[i])) {
            /* the errors recorded so far are the general reader's first ones too */
            io_start(io, NULL, 0);
            return 0;
        }
        int calls = io->b.len > at;
        put(c, &io->b, calls ? "\"role\":" : "{\"role\":");
        put_str(c, &io->b, role, role_len);
        const char *content = m[i].content != NULL ? m[i].content : "";
        if (!calls || content[0] != '\0') {
            put(c, &io->b, ",\"content\":");
            put_str(c, &io->b, content, m[i].content_len);
        }
        put(c, &io->b, "}");
    }
    return 1;
}

/* Messages of an indexed family (gen_ai.prompt.<i>., llm.input_messages.<i>., ...) written
 * to io; 0 when the span has none. The attributes are regrouped into OpenAI-like objects
 * first (the order of the indices is not the order of the attributes). */
static int indexed_messages(struct build *b, struct io *io, const char *prefix, int openinference)
{
    struct llmobs_ctx *c = &b->c;
    size_t plen = strlen(prefix);
    if (!openinference && !llmobs_fast_off) {
        int fast = indexed_messages_fast(b, io, prefix, plen);
        if (fast != 0) {
            return fast > 0;
        }
    }
    json_t *raw = NULL;
    for (size_t i = 0; i < b->s->n_attributes && !c->nomem; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        size_t idx;
        const char *rest;
        if (!starts_with(kv->key, prefix, plen) ||
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
        return 0;
    }
    io_start(io, "messages", 1);
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
        if (llmobs_msg_read(c, m, NULL)) {
            llmobs_msg_write(c, &io->b, &io->n);
        }
    }
    json_decref(raw);
    return 1;
}

/* gen_ai.input.messages and friends: attributes of the span or of its operation-details
 * event (OTel GenAI >= 1.37). */
struct genai_io {
    const OtlpAnyValue *system, *input, *output;
};

static void genai_io_scan(struct genai_io *io, OtlpKeyValue *const *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i]->key;
        if (!starts_with(k, "gen_ai.", 7)) {
            continue;
        }
        k += 7;
        if (strcmp(k, "system_instructions") == 0 && io->system == NULL) {
            io->system = kv[i]->value;
        } else if (strcmp(k, "input.messages") == 0 && io->input == NULL) {
            io->input = kv[i]->value;
        } else if (strcmp(k, "output.messages") == 0 && io->output == NULL) {
            io->output = kv[i]->value;
        }
    }
}

/* The length of a string value's text, 0 for other values (and none). */
static size_t str_len(const OtlpAnyValue *v)
{
    return v != NULL && v->value_case == STR_CASE ? strlen(v->string_value) : 0;
}

/* genai_messages_add() with the lengths of string values known (sys_n, msgs_n: str_len()):
 * the texts are kilobytes, measured once. */
static void genai_messages_add_n(struct llmobs_ctx *c, struct io *io, const OtlpAnyValue *system,
                                 size_t sys_n, const OtlpAnyValue *msgs, size_t msgs_n,
                                 const char *err)
{
    if (system != NULL && system->value_case == STR_CASE && !llmobs_fast_off &&
        llmobs_system_read_fast(c, system->string_value, sys_n)) {
        llmobs_msg_write(c, &io->b, &io->n);
    } else if (system != NULL) {
        json_t *j = llmobs_value_json(c, system);
        int ok;
        if (j == NULL && system->value_case == STR_CASE) {
            /* Plain text instructions are not JSON: take them as they are. */
            ok = llmobs_msg_read_system(c, NULL, system->string_value, sys_n);
        } else {
            ok = llmobs_msg_read_system(c, j, NULL, 0);
        }
        if (ok) {
            llmobs_msg_write(c, &io->b, &io->n);
        }
        json_decref(j);
    }
    if (msgs != NULL) {
        if (msgs->value_case != STR_CASE || llmobs_fast_off ||
            !llmobs_messages_write_fast(c, msgs->string_value, msgs_n, &io->b, &io->n)) {
            json_t *j = llmobs_value_json(c, msgs);
            llmobs_messages_write(c, j, &io->b, &io->n, err);
            json_decref(j);
        }
        if (io->n == 0) {
            io_value(c, io, msgs);
        }
    }
}

/* Appends to io.messages from a gen_ai.*.messages value (after system instructions for
 * input); when no message can be read, input.value is the raw text: better than nothing. */
static void genai_messages_add(struct llmobs_ctx *c, struct io *io, const OtlpAnyValue *system,
                               const OtlpAnyValue *msgs, const char *err)
{
    genai_messages_add_n(c, io, system, str_len(system), msgs, str_len(msgs), err);
}

/* genai_messages_add() into a fresh io.messages; returns 1 when either value was present. */
static int genai_messages(struct llmobs_ctx *c, struct io *io, const OtlpAnyValue *system,
                          const OtlpAnyValue *msgs, const char *err)
{
    if (system == NULL && msgs == NULL) {
        return 0;
    }
    io_start(io, "messages", 1);
    /* about what the messages come to (the builder's buffer may have been taken, see finish):
     * grown from nothing, they would be copied as often as the buffer doubles */
    size_t sys_n = str_len(system), msgs_n = str_len(msgs);
    llmobs_check(c, o2d_buf_reserve(&io->b, 64 + sys_n + msgs_n));
    genai_messages_add_n(c, io, system, sys_n, msgs, msgs_n, err);
    return 1;
}

/* The end of the JSON object that starts at b[i] (one past its closing brace), or 0. */
static size_t object_end(const struct o2d_buf *b, size_t i)
{
    int depth = 0, in_str = 0;
    for (; i < b->len; i++) {
        uint8_t ch = b->data[i];
        if (in_str) {
            if (ch == '\\') {
                i++;
            } else if (ch == '"') {
                in_str = 0;
            }
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if ((ch == '}' || ch == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/*
 * Drops from the message list the elements after offset `from` (each written as ",{...}")
 * that repeat its first element, the system instructions (io->b[0, sys_len)): a Responses
 * log record's input may hold them again as a system message (@opentelemetry/
 * instrumentation-openai does), without its content when content capture is off.
 */
static void drop_repeats(struct io *io, size_t sys_len, size_t from)
{
    static const char empty[] = "{\"role\":\"system\",\"content\":\"\"}";
    size_t i = from;
    while (i < io->b.len && io->b.data[i] == ',') {
        size_t end = object_end(&io->b, i + 1);
        if (end == 0) {
            return;
        }
        const uint8_t *el = io->b.data + i + 1;
        size_t len = end - (i + 1);
        if ((len == sys_len && memcmp(el, io->b.data, sys_len) == 0) ||
            (len == sizeof(empty) - 1 && memcmp(el, empty, len) == 0)) {
            memmove(io->b.data + i, io->b.data + end, io->b.len - end);
            io->b.len -= end - i;
            io->n--;
        } else {
            i = end;
        }
    }
}

static void llm_io(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    struct llmobs_span *sp = b->sp;
    /* the span's own attributes, as genai_io_scan would find them (first of each) */
    struct genai_io io = {b->ix.v[K_SYSTEM_INSTR], b->ix.v[K_INPUT_MESSAGES],
                          b->ix.v[K_OUTPUT_MESSAGES]};
    for (size_t i = 0; i < b->s->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = b->s->events[i];
        if (e->name != NULL && strcmp(e->name, OP_DETAILS) == 0) {
            genai_io_scan(&io, e->attributes, e->n_attributes);
        }
    }
    if (genai_messages(c, &b->io[0], io.system, io.input, "otel_warning_input_malformed")) {
        sp->in_src = SRC_SPAN;
        /* Responses: the instructions alone, the rest of the input may come as a log record
         * (llmobs_span_add_log merges them). */
        sp->system_only = io.input == NULL && b->io[0].n == 1;
    }
    if (genai_messages(c, &b->io[1], NULL, io.output, "otel_warning_output_malformed")) {
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
        if (indexed_messages(b, &b->io[fams[f].output], fams[f].prefix, fams[f].oi)) {
            *src = SRC_SPAN;
        }
    }
    if (sp->in_src == SRC_NONE && b->ix.v[K_INPUT_VALUE] != NULL) {
        io_value(c, &b->io[0], b->ix.v[K_INPUT_VALUE]);
        sp->in_src = SRC_VALUE;
    }
    if (sp->out_src == SRC_NONE && b->ix.v[K_OUTPUT_VALUE] != NULL) {
        io_value(c, &b->io[1], b->ix.v[K_OUTPUT_VALUE]);
        sp->out_src = SRC_VALUE;
    }
}

/* One input document {"text": s} (or {} when the message had no content). */
static void doc_text(struct llmobs_ctx *c, struct io *io, const char *s, size_t n)
{
    if (io->n++ > 0) {
        put(c, &io->b, ",");
    }
    if (s == NULL) {
        put(c, &io->b, "{}");
        return;
    }
    put(c, &io->b, "{\"text\":");
    put_str(c, &io->b, s, n);
    put(c, &io->b, "}");
}

static void embedding_io(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    struct io *in = &b->io[0];
    size_t vectors = 0;
    io_start(in, "documents", 1);
    /* gen_ai.input.messages -> documents (Datadog); each text part is one document. */
    const OtlpAnyValue *im = b->ix.v[K_INPUT_MESSAGES];
    if (im != NULL) {
        json_t *j = llmobs_value_json(c, im);
        if (json_is_string(j)) {
            doc_text(c, in, json_string_value(j), json_string_length(j));
        } else if (!json_is_array(j)) {
            llmobs_error(c, "otel_warning_embedding_input_malformed");
        } else {
            size_t i;
            json_t *m;
            json_array_foreach(j, i, m)
            {
                if (!llmobs_msg_read(c, m, NULL)) {
                    continue;
                }
                const struct llmobs_msg *msg = &c->msg;
                if (llmobs_msg_has_content(msg)) {
                    doc_text(c, in, (const char *)msg->content.data, msg->content.len);
                } else {
                    doc_text(c, in, NULL, 0);
                }
            }
        }
        json_decref(j);
    }
    static const char *const fams[] = {"gen_ai.prompt.", "embedding.embeddings."};
    for (size_t f = 0; f < 2 && in->n == 0; f++) {
        size_t plen = strlen(fams[f]);
        json_t *raw = json_array();
        for (size_t i = 0; raw != NULL && i < b->s->n_attributes; i++) {
            const OtlpKeyValue *kv = b->s->attributes[i];
            size_t idx;
            const char *rest;
            if (!starts_with(kv->key, fams[f], plen) ||
                (rest = index_of(kv->key + plen, &idx)) == NULL) {
                continue;
            }
            if (strcmp(rest, f == 0 ? "content" : "embedding.text") == 0) {
                llmobs_set(c, slot(c, raw, idx), "text", value_text(c, kv->value));
            } else if (f == 1 && strcmp(rest, "embedding.vector") == 0) {
                vectors++;
            }
        }
        if (raw == NULL) {
            c->nomem = 1;
            continue;
        }
        raw = compact(c, raw);
        size_t i;
        json_t *d;
        json_array_foreach(raw, i, d)
        {
            if (json_object_get(d, "text") != NULL) {
                io_push_json(c, in, d);
            }
        }
        json_decref(raw);
    }
    size_t n_docs = in->n;
    if (n_docs == 0) {
        in->key = NULL;
        if (b->ix.v[K_INPUT_VALUE] != NULL) {
            io_value(c, in, b->ix.v[K_INPUT_VALUE]);
        } else {
            llmobs_error(c, "otel_warning_embedding_input_missing");
        }
    }
    /* The count of vectors when the span reports them, else one per input document. */
    size_t n = vectors > 0 ? vectors : n_docs;
    if (n > 0) {
        struct io *out = &b->io[1];
        io_start(out, "value", 0);
        llmobs_check(c, o2d_buf_printf(&out->b, "\"[%zu embedding(s) returned]\"", n));
    } else if (b->ix.v[K_OUTPUT_VALUE] != NULL) {
        io_value(c, &b->io[1], b->ix.v[K_OUTPUT_VALUE]);
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
    struct llmobs_ctx *c = &b->c;
    const OtlpAnyValue *q =
        b->ix.v[K_RETR_QUERY] != NULL ? b->ix.v[K_RETR_QUERY] : b->ix.v[K_INPUT_VALUE];
    if (q != NULL) {
        io_value(c, &b->io[0], q);
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
        if (!starts_with(kv->key, prefix, sizeof(prefix) - 1) ||
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
                llmobs_set(c, d, "id", value_string(c, id));
            }
            if (text != NULL) {
                llmobs_set(c, d, "text", value_string(c, text));
            }
            if (json_object_get(e, "score") != NULL) {
                llmobs_set(c, d, "score", score_of(c, json_object_get(e, "score"), NULL));
            }
            llmobs_push(c, docs, d);
        }
        json_decref(j);
    }
    if (json_array_size(docs) > 0) {
        struct io *out = &b->io[1];
        io_start(out, "documents", 1);
        size_t i;
        json_t *d;
        json_array_foreach(docs, i, d)
        {
            io_push_json(c, out, d);
        }
    } else if (b->ix.v[K_OUTPUT_VALUE] != NULL) {
        io_value(c, &b->io[1], b->ix.v[K_OUTPUT_VALUE]);
    }
    json_decref(docs);
}

/* Flattens gen_ai.*.messages to the last text (agent spans of OTel GenAI). */
static void flatten_messages(struct build *b, struct io *io, enum akey k, const char *err)
{
    struct llmobs_ctx *c = &b->c;
    const OtlpAnyValue *v = b->ix.v[k];
    if (v == NULL) {
        return;
    }
    json_t *j = llmobs_value_json(c, v);
    size_t n = 0;
    o2d_buf_reset(&b->last);
    if (!json_is_array(j)) {
        llmobs_error(c, err);
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(j, i, m)
        {
            if (!llmobs_msg_read(c, m, NULL)) {
                continue;
            }
            n++;
            const struct llmobs_msg *msg = &c->msg;
            /* the last content that is not empty, as a C string */
            size_t len = strnlen(
                (const char *)msg->content.data != NULL ? (const char *)msg->content.data : "",
                msg->content.len);
            if (llmobs_msg_has_content(msg) && len > 0) {
                o2d_buf_reset(&b->last);
                llmobs_check(c, o2d_buf_append(&b->last, msg->content.data, len));
            }
        }
    }
    json_decref(j);
    if (n > 0) {
        io_start(io, "value", 0);
        put_str(c, &io->b, (const char *)b->last.data, b->last.len);
    } else {
        io_value(c, io, v);
    }
}

static void value_io(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    static const enum akey tool_in[] = {K_TOOL_ARGS, K_TL_ENTITY_INPUT, K_INPUT_VALUE};
    static const enum akey tool_out[] = {K_TOOL_RESULT, K_TL_ENTITY_OUTPUT, K_OUTPUT_VALUE};
    static const enum akey other_in[] = {K_TL_ENTITY_INPUT, K_TASK_INPUT, K_INPUT_VALUE};
    static const enum akey other_out[] = {K_TL_ENTITY_OUTPUT, K_TASK_OUTPUT, K_OUTPUT_VALUE};
    int tool = b->kind == LLMOBS_TOOL;
    const enum akey *in = tool ? tool_in : other_in, *out = tool ? tool_out : other_out;
    int vi = 0, vo = 0;
    for (int i = 0; i < 3 && !vi; i++) {
        vi = io_value(c, &b->io[0], b->ix.v[in[i]]);
    }
    for (int i = 0; i < 3 && !vo; i++) {
        vo = io_value(c, &b->io[1], b->ix.v[out[i]]);
    }
    if (!vi) {
        flatten_messages(b, &b->io[0], K_INPUT_MESSAGES, "otel_warning_input_malformed");
    }
    if (!vo) {
        flatten_messages(b, &b->io[1], K_OUTPUT_MESSAGES, "otel_warning_output_malformed");
    }
}

struct num {
    int set, is_int;
    long long i;
    double d;
};

static void put_num(struct llmobs_ctx *c, struct o2d_buf *b, const struct num *n)
{
    if (n->is_int) {
        llmobs_check(c, o2d_json_append_int(b, n->i));
    } else {
        llmobs_check(c, llmobs_real_write(b, n->d));
    }
}

static double num_double(const struct num *n)
{
    return !n->set ? 0 : n->is_int ? (double)n->i : n->d;
}

/* Token counts come from the sender as any int64: their sum saturates instead of wrapping
 * (the wrapped sum of two counts near INT64_MAX is negative). */
static long long add_tokens(long long a, long long b)
{
    long long r;
    if (__builtin_add_overflow(a, b, &r)) {
        return a > 0 ? LLONG_MAX : LLONG_MIN;
    }
    return r;
}

static void metrics(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    enum { N_METRICS = sizeof(metric_keys) / sizeof(metric_keys[0]) };
    struct num m[N_METRICS];
    memset(m, 0, sizeof(m));
    for (size_t i = 0; i < N_METRICS; i++) {
        for (int j = 0; j < 3; j++) {
            const OtlpAnyValue *v = b->ix.v[metric_keys[i].keys[j]];
            if (v == NULL) {
                continue;
            }
            if (v->value_case == INT_CASE) {
                m[i] = (struct num){1, 1, (long long)v->int_value, 0};
            } else if (v->value_case == DBL_CASE) {
                m[i] = (struct num){1, 0, 0, v->double_value};
            } else if (v->value_case == STR_CASE) {
                char *end;
                long long ll = strtoll(v->string_value, &end, 10);
                if (end != v->string_value && *end == '\0') {
                    m[i] = (struct num){1, 1, ll, 0};
                }
            }
            if (!m[i].set) {
                llmobs_error(c, "otel_warning_token_usage_unparseable");
                continue;
            }
            break;
        }
    }
    put(c, &b->main, ",\"metrics\":{");
    int first = 1;
    for (size_t i = 0; i < N_METRICS; i++) {
        if (m[i].set) {
            put(c, &b->main, first ? "\"" : ",\"");
            put(c, &b->main, metric_keys[i].metric);
            put(c, &b->main, "\":");
            put_num(c, &b->main, &m[i]);
            first = 0;
        }
    }
    /* total_tokens, when not given, is the sum of input and output (metric_keys 0, 1, 2), as
     * ddtrace's integrations compute it (dd-trace-py ddtrace/llmobs/_integrations/anthropic.py,
     * usage metrics: metrics[INPUT_TOKENS_METRIC_KEY] + output_tokens). Python's integers never
     * wrap, so neither does this sum: integer counts add with saturation at the int64 range. */
    const struct num *in = &m[0], *out = &m[1];
    if (!m[2].set && (in->set || out->set)) {
        struct num tot = {1, (!in->set || in->is_int) && (!out->set || out->is_int), 0, 0};
        if (tot.is_int) {
            tot.i = add_tokens(in->set ? in->i : 0, out->set ? out->i : 0);
        } else {
            tot.d = num_double(in) + num_double(out);
        }
        put(c, &b->main, first ? "\"total_tokens\":" : ",\"total_tokens\":");
        put_num(c, &b->main, &tot);
    }
    put(c, &b->main, "}");
}

/* ---- metadata ---- */

static const char *md_key(const struct md *md, const struct md_entry *e)
{
    return (const char *)md->text.data + e->koff;
}

static struct md_entry *md_find(struct md *md, const char *key)
{
    if (md->index != NULL) {
        json_t *i = json_object_get(md->index, key);
        return i != NULL ? &md->e[json_integer_value(i)] : NULL;
    }
    for (size_t i = 0; i < md->n; i++) {
        if (strcmp(md_key(md, &md->e[i]), key) == 0) {
            return &md->e[i];
        }
    }
    return NULL;
}

static int md_index_add(struct llmobs_ctx *c, struct md *md, size_t i)
{
    json_t *v = json_integer((json_int_t)i);
    if (v == NULL || json_object_set_new_nocheck(md->index, md_key(md, &md->e[i]), v) != 0) {
        c->nomem = 1;
        return 0;
    }
    return 1;
}

/* metadata[key] = the value text written at md.text[start..]: a new key goes last, a known
 * key keeps its place and takes the new value. */
static void md_put(struct llmobs_ctx *c, struct md *md, const char *key, size_t start)
{
    size_t vlen = md->text.len - start;
    struct md_entry *e = md_find(md, key);
    if (e != NULL) {
        e->voff = start;
        e->vlen = vlen;
        return;
    }
    if (md->n == md->cap) {
        size_t cap = md->cap ? md->cap * 2 : 8;
        struct md_entry *ne = o2d_realloc(md->e, cap * sizeof(*ne));
        if (ne == NULL) {
            c->nomem = 1;
            return;
        }
        md->e = ne;
        md->cap = cap;
    }
    size_t koff = md->text.len;
    if (o2d_buf_append(&md->text, key, strlen(key) + 1) != O2D_OK) {
        c->nomem = 1;
        return;
    }
    md->e[md->n] = (struct md_entry){koff, start, vlen};
    md->n++;
    if (md->index == NULL && md->n >= MD_INDEX_AT) {
        md->index = json_object();
        if (md->index == NULL) {
            c->nomem = 1;
            return;
        }
        for (size_t i = 0; i < md->n && md_index_add(c, md, i); i++) {
        }
    } else if (md->index != NULL) {
        md_index_add(c, md, md->n - 1);
    }
}

static void md_anyvalue(struct build *b, const char *key, const OtlpAnyValue *v)
{
    size_t start = b->md.text.len;
    if (llmobs_anyvalue_write(&b->c, &b->md.text, v, 1)) {
        md_put(&b->c, &b->md, key, start);
    }
}

/* metadata[key] = a JSON text attribute (OpenInference tool.parameters) parsed; when it is
 * not JSON, the text as it is, and err. */
static void md_json(struct build *b, const char *key, const OtlpAnyValue *v, const char *err)
{
    struct llmobs_ctx *c = &b->c;
    if (v == NULL || (v->value_case == STR_CASE && v->string_value[0] == '\0')) {
        return;
    }
    size_t start = b->md.text.len;
    json_t *j = llmobs_value_json(c, v);
    if (j != NULL) {
        llmobs_check(c, llmobs_json_write(&b->md.text, j, 1));
        json_decref(j);
    } else {
        llmobs_error(c, err);
        if (!llmobs_value_text_write(c, &b->md.text, v)) {
            return;
        }
    }
    md_put(c, &b->md, key, start);
}

/* Merges the members of a JSON object attribute into metadata. */
static void merge_object(struct build *b, const OtlpAnyValue *v, const char *err, int skip_reserved)
{
    if (v == NULL) {
        return;
    }
    json_t *j = llmobs_value_json(&b->c, v);
    if (!json_is_object(j)) {
        llmobs_error(&b->c, err);
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
        size_t start = b->md.text.len;
        llmobs_check(&b->c, llmobs_json_write(&b->md.text, e, 1));
        md_put(&b->c, &b->md, k, start);
    }
    json_decref(j);
}

static void metadata(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    struct md *md = &b->md;
    static const char req[] = "gen_ai.request.";
    for (size_t i = 0; i < b->s->n_attributes; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        if (starts_with(kv->key, req, sizeof(req) - 1) &&
            strcmp(kv->key, "gen_ai.request.model") != 0 && kv->key[sizeof(req) - 1] != '\0') {
            md_anyvalue(b, kv->key + sizeof(req) - 1, kv->value);
        }
    }
    if (b->ix.v[K_FINISH] != NULL) {
        md_anyvalue(b, "finish_reasons", b->ix.v[K_FINISH]);
    }
    merge_object(b, b->ix.v[K_OI_PARAMS], "otel_warning_params_malformed", 0);
    merge_object(b, b->ix.v[K_OI_METADATA], "otel_warning_params_malformed", 0);
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
        size_t start = md->text.len;
        if (llmobs_value_text_write(c, &md->text, v)) {
            md_put(c, md, tool[i].name, start);
        }
    }
    md_json(b, "tool_parameters", b->ix.v[K_OI_TOOL_PARAMS], "otel_warning_params_malformed");
    merge_object(b, b->ix.v[K_DD_METADATA], "otel_warning_params_malformed", 1);
}

static void metadata_write(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    const struct md *md = &b->md;
    put(c, &b->main, ",\"metadata\":{");
    for (size_t i = 0; i < md->n; i++) {
        const struct md_entry *e = &md->e[i];
        if (i > 0) {
            put(c, &b->main, ",");
        }
        put_cstr(c, &b->main, md_key(md, e));
        put(c, &b->main, ":");
        llmobs_check(c, o2d_buf_append(&b->main, md->text.data + e->voff, e->vlen));
    }
    put(c, &b->main, "}");
}

/* Writes the definitions of array `defs` (anything else adds none), up to
 * LLMOBS_MAX_TOOL_DEFS in all. */
static void add_tool_definitions(struct build *b, json_t *defs)
{
    size_t i;
    json_t *d;
    json_array_foreach(defs, i, d)
    {
        if (b->n_tdefs == LLMOBS_MAX_TOOL_DEFS) {
            break;
        }
        llmobs_tool_definition_write(&b->c, d, &b->tdefs, &b->n_tdefs);
    }
}

static void tool_definitions(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    if (b->ix.v[K_TOOL_DEFS] != NULL) {
        json_t *j = llmobs_value_json(c, b->ix.v[K_TOOL_DEFS]);
        if (!json_is_array(j)) {
            llmobs_error(c, "otel_warning_tool_definitions_malformed");
        }
        add_tool_definitions(b, j);
        json_decref(j);
    }
    if (b->n_tdefs > 0) {
        return;
    }
    /* OpenLLMetry llm.request.functions.<i>.{name,description,parameters}; OpenInference
     * llm.tools.<i>.tool.json_schema. */
    json_t *raw = NULL;
    for (size_t i = 0; i < b->s->n_attributes; i++) {
        const OtlpKeyValue *kv = b->s->attributes[i];
        size_t idx;
        const char *rest;
        if (kv->key[0] != 'l') {
            continue;
        }
        int fn = strncmp(kv->key, "llm.request.functions.", 22) == 0 &&
                 (rest = index_of(kv->key + 22, &idx)) != NULL &&
                 (strcmp(rest, "name") == 0 || strcmp(rest, "description") == 0 ||
                  strcmp(rest, "parameters") == 0);
        int schema = !fn && strncmp(kv->key, "llm.tools.", 10) == 0 &&
                     (rest = index_of(kv->key + 10, &idx)) != NULL &&
                     strcmp(rest, "tool.json_schema") == 0;
        if (!fn && !schema) {
            continue;
        }
        /* only now: most llm spans have llm.* keys and no tools */
        if (raw == NULL && (raw = json_array()) == NULL) {
            c->nomem = 1;
            return;
        }
        if (fn) {
            llmobs_set(c, slot(c, raw, idx), rest, llmobs_anyvalue(c, kv->value, 0));
        } else {
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
        add_tool_definitions(b, raw);
        json_decref(raw);
    }
}

static void model(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
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
    put(c, &b->main, ",\"model_name\":");
    put_cstr(c, &b->main, name != NULL ? name : "unknown");
    put(c, &b->main, ",\"model_provider\":");
    if (prov == NULL) {
        prov = "unknown";
    }
    struct o2d_buf *t = &c->scratch;
    o2d_buf_reset(t);
    llmobs_check(c, o2d_buf_append(t, prov, strlen(prov)));
    for (size_t i = 0; i < t->len; i++) {
        t->data[i] = (uint8_t)tolower(t->data[i]);
    }
    put_str(c, &b->main, (const char *)t->data, t->len);
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

/* At most MAX_TAGS: an insertion sort, where qsort's set-up cost more than the sort. */
static void sort_tags(const char **p, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        const char *x = p[i];
        size_t j = i;
        /* the first bytes differ for most pairs (env, ml_app, version, language...) */
        while (j > 0 && (p[j - 1][0] != x[0] ? (unsigned char)p[j - 1][0] > (unsigned char)x[0]
                                             : strcmp(p[j - 1], x) > 0)) {
            p[j] = p[j - 1];
            j--;
        }
        p[j] = x;
    }
}

/* Datadog's OTel mapping makes tags of attribute values of at most 256 characters. */
#define TAG_MAX_LEN 256
/* OpenInference tag.tags items used, at most, as many as DD_TAGS. */
#define MAX_SPAN_TAGS 32
#define MAX_TAGS      (10 + MAX_SPAN_TAGS + LLMOBS_MAX_USER_TAGS)

struct tagset {
    struct o2d_buf text; /* "k:v\0" each */
    size_t off[MAX_TAGS];
    size_t n;
};

/* "k:v\0" appended in one step (room reserved once); k is a literal, its length known
 * where this is inlined. */
static inline void add_tag(struct llmobs_ctx *c, struct tagset *t, const char *k, const char *v)
{
    if (v == NULL || v[0] == '\0' || t->n == MAX_TAGS) {
        return;
    }
    size_t kl = strlen(k), vl = strlen(v);
    int rv = o2d_buf_reserve(&t->text, kl + vl + 2);
    if (rv != O2D_OK) {
        llmobs_check(c, rv);
        return;
    }
    t->off[t->n++] = t->text.len;
    uint8_t *o = t->text.data + t->text.len;
    memcpy(o, k, kl);
    o[kl] = ':';
    memcpy(o + kl + 1, v, vl);
    o[kl + 1 + vl] = '\0';
    t->text.len += kl + vl + 2;
}

/* A tag whose key is kv[0..klen) (the whole tag when it has no ':') among the first n. */
static int has_tag_key(const struct tagset *t, size_t n, const char *kv, size_t klen)
{
    for (size_t j = 0; j < n; j++) {
        const char *e = (const char *)t->text.data + t->off[j];
        if (strncmp(e, kv, klen) == 0 && (e[klen] == ':' || e[klen] == '\0')) {
            return 1;
        }
    }
    return 0;
}

/* One OpenInference tag.tags item, as it is ("team:ml" or "beta": Datadog promotes the list
 * to tags directly), unless a base tag has its key or the same tag is there already. */
static void add_span_tag(struct llmobs_ctx *c, struct tagset *t, size_t n_base, const char *s,
                         size_t len, size_t *used)
{
    if (len == 0 || len > TAG_MAX_LEN || *used == MAX_SPAN_TAGS || t->n == MAX_TAGS ||
        memchr(s, '\0', len) != NULL) {
        return;
    }
    const char *colon = memchr(s, ':', len);
    size_t klen = colon != NULL ? (size_t)(colon - s) : len;
    for (size_t j = 0; j < t->n; j++) {
        const char *e = (const char *)t->text.data + t->off[j];
        if (strncmp(e, s, len) == 0 && e[len] == '\0') {
            return;
        }
    }
    if (has_tag_key(t, n_base, s, klen)) {
        return;
    }
    t->off[t->n++] = t->text.len;
    llmobs_check(c, o2d_buf_append(&t->text, s, len));
    llmobs_check(c, o2d_buf_append_byte(&t->text, '\0'));
    (*used)++;
}

/* tag.tags: a list of strings, or the same list as JSON text; any other string is one tag. */
static void span_tags(struct build *b, struct tagset *t, size_t n_base)
{
    struct llmobs_ctx *c = &b->c;
    const OtlpAnyValue *v = b->ix.v[K_OI_TAGS];
    size_t used = 0;
    if (v == NULL) {
        return;
    }
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE &&
        v->array_value != NULL) {
        for (size_t i = 0; i < v->array_value->n_values && !c->nomem; i++) {
            const char *s = sval(v->array_value->values[i]);
            if (s != NULL) {
                add_span_tag(c, t, n_base, s, strlen(s), &used);
            }
        }
        return;
    }
    const char *s = sval(v);
    if (s == NULL) {
        return;
    }
    size_t len = strlen(s);
    if (s[strspn(s, " \t\r\n")] != '[') {
        add_span_tag(c, t, n_base, s, len, &used);
        return;
    }
    json_t *j = llmobs_parse(c, s, len);
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
    {
        if (json_is_string(e)) {
            add_span_tag(c, t, n_base, json_string_value(e), json_string_length(e), &used);
        }
    }
    json_decref(j);
}

/* The resource strings the tags read, in one pass over the resource's attributes (six
 * otlp_resource_string() calls walked them six times, a strcmp per attribute each). Same
 * result: the first string-valued attribute of each key. */
struct res_strings {
    const char *service, *env_name, *env, *version, *ml_app, *language;
};

static void res_first(const char **slot, const char *k, const char *want, const char *v)
{
    if (*slot == NULL && strcmp(k, want) == 0) {
        *slot = v;
    }
}

static void res_strings(const OtlpResource *r, struct res_strings *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; r != NULL && i < r->n_attributes; i++) {
        const OtlpKeyValue *kv = r->attributes[i];
        if (kv->value == NULL ||
            kv->value->value_case !=
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            continue;
        }
        const char *k = kv->key, *v = kv->value->string_value;
        switch (k[0]) {
        case 's':
            res_first(&out->service, k, "service.name", v);
            res_first(&out->version, k, "service.version", v);
            break;
        case 'd':
            res_first(&out->env_name, k, "deployment.environment.name", v);
            res_first(&out->env, k, "deployment.environment", v);
            res_first(&out->ml_app, k, "datadog.ml_app", v);
            break;
        case 't':
            res_first(&out->language, k, "telemetry.sdk.language", v);
            break;
        default:
            break;
        }
    }
}

/* The first that is set: datadog.ml_app, the per-service rules, ml_app, the service. */
static const char *ml_app_of(const struct res_strings *rs, const char *service,
                             const struct llmobs_config *cfg)
{
    const char *ml_app = rs->ml_app;
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
    return ml_app;
}

const char *llmobs_ml_app(const OtlpResource *res, const struct llmobs_config *cfg)
{
    struct res_strings rs;
    res_strings(res, &rs);
    const char *service = rs.service;
    if (service == NULL || service[0] == '\0') {
        service = cfg->default_service;
    }
    return ml_app_of(&rs, service, cfg);
}

static void tags_write(struct build *b, const OtlpResource *res, const struct llmobs_config *cfg,
                       const char *error_type, const char *session, int error);

static void tags(struct build *b, const OtlpResource *res, const struct llmobs_config *cfg,
                 const char *error_type, const char *session, int error)
{
    struct llmobs_ctx *c = &b->c;
    struct tag_memo *tm = &b->memo;
    struct llmobs_span *sp = b->sp;
    int plain = tm->on && !error && session == NULL && astr(&b->ix, K_OI_USER_ID) == NULL &&
                b->ix.v[K_OI_TAGS] == NULL;
    size_t start = b->main.len;
    if (plain && tm->valid && tm->res == res && tm->cfg == cfg) {
        llmobs_check(c, o2d_buf_append(&b->main, tm->text.data, tm->text.len));
        b->ml_app = tm->ml_app;
        sp->ml_app_explicit = tm->ml_app_explicit;
        sp->sess_tag_mode = tm->sess_tag_mode;
        sp->ml_app_off = tm->ml_app_off != 0 ? start + tm->ml_app_off : 0;
        sp->ml_app_end = tm->ml_app_end != 0 ? start + tm->ml_app_end : 0;
        sp->sess_tag_off = tm->sess_tag_mode != SESS_NONE ? start + tm->sess_tag_off : 0;
        sp->sess_field_off = start + tm->sess_field_off;
        return;
    }
    tags_write(b, res, cfg, error_type, session, error);
    if (!plain || c->nomem) {
        return;
    }
    o2d_buf_reset(&tm->text);
    if (o2d_buf_append(&tm->text, b->main.data + start, b->main.len - start) != O2D_OK) {
        tm->valid = 0;
        return;
    }
    tm->valid = 1;
    tm->res = res;
    tm->cfg = cfg;
    tm->ml_app = b->ml_app;
    tm->ml_app_explicit = sp->ml_app_explicit;
    tm->sess_tag_mode = sp->sess_tag_mode;
    tm->ml_app_off = sp->ml_app_end != 0 ? sp->ml_app_off - start : 0;
    tm->ml_app_end = sp->ml_app_end != 0 ? sp->ml_app_end - start : 0;
    tm->sess_tag_off = sp->sess_tag_mode != SESS_NONE ? sp->sess_tag_off - start : 0;
    tm->sess_field_off = sp->sess_field_off - start;
}

static void tags_write(struct build *b, const OtlpResource *res, const struct llmobs_config *cfg,
                       const char *error_type, const char *session, int error)
{
    struct llmobs_ctx *c = &b->c;
    /* the builder's storage, lent for the call */
    struct tagset t = {.text = b->tagtext, .n = 0};
    o2d_buf_reset(&t.text);
    struct res_strings rs;
    res_strings(res, &rs);
    const char *service = rs.service;
    if (service == NULL || service[0] == '\0') {
        service = cfg->default_service;
    }
    const char *env = rs.env_name;
    if (env == NULL || env[0] == '\0') {
        env = rs.env;
    }
    if (env == NULL || env[0] == '\0') {
        env = cfg->default_env;
    }
    const char *version = rs.version;
    if (version == NULL || version[0] == '\0') {
        version = cfg->default_version;
    }
    const char *ml_app = ml_app_of(&rs, service, cfg);
    add_tag(c, &t, "env", env);
    add_tag(c, &t, "service", service);
    add_tag(c, &t, "version", version);
    add_tag(c, &t, "ml_app", ml_app);
    b->sp->ml_app_explicit = rs.ml_app != NULL && rs.ml_app[0] != '\0';
    b->ml_app = ml_app;
    add_tag(c, &t, "source", "otel");
    add_tag(c, &t, "error", error ? "1" : "0");
    if (error) {
        add_tag(c, &t, "error_type", error_type);
    }
    add_tag(c, &t, "session_id", session);
    add_tag(c, &t, "language", rs.language);
    /* OpenInference user.id and tag.tags, as Datadog's OTel mapping has them; no other
     * span attribute becomes a tag (README, LLM Observability). */
    const char *user = astr(&b->ix, K_OI_USER_ID);
    if (user != NULL && strlen(user) <= TAG_MAX_LEN) {
        add_tag(c, &t, "user_id", user);
    }
    if (!c->nomem) {
        span_tags(b, &t, t.n);
    }
    /* exporters.datadog.tags / DD_TAGS, unless a tag above has the key: the span's own
     * tags are the more specific. */
    for (size_t i = 0; i < cfg->n_tags && i < LLMOBS_MAX_USER_TAGS && !c->nomem; i++) {
        const char *kv = cfg->tags[i];
        size_t klen = strcspn(kv, ":");
        int have = 0;
        for (size_t j = 0; j < t.n && !have; j++) {
            const char *e = (const char *)t.text.data + t.off[j];
            have = strncmp(e, kv, klen) == 0 && e[klen] == ':';
        }
        if (!have && t.n < MAX_TAGS) {
            t.off[t.n++] = t.text.len;
            llmobs_check(c, o2d_buf_append(&t.text, kv, strlen(kv) + 1));
        }
    }
    /* Without a session of its own, the span may inherit its LLM Obs ancestor's when it is
     * written (llmobs_span_write_inherit): remember where that tag would sort. Tags that
     * compare below "session_id:" do so whatever the id, since none has that prefix. */
    int sess = session == NULL && !c->nomem;
    for (size_t i = 0; sess && i < t.n; i++) {
        const char *e = (const char *)t.text.data + t.off[i];
        if (e[0] == 's' && strncmp(e, "session_id", 10) == 0 && (e[10] == ':' || e[10] == '\0')) {
            sess = 0; /* a configured tag has the key */
        }
    }
    b->sp->sess_tag_mode = SESS_NONE;
    put(c, &b->main, ",\"tags\":[");
    if (!c->nomem) {
        const char *p[MAX_TAGS];
        for (size_t i = 0; i < t.n; i++) {
            p[i] = (const char *)t.text.data + t.off[i];
        }
        sort_tags(p, t.n);
        for (size_t i = 0; i < t.n; i++) {
            if (i > 0) {
                put(c, &b->main, ",");
            }
            /* first bytes first: a call per tag of every span shows in the profile */
            if (sess && (unsigned char)p[i][0] >= 's' &&
                (p[i][0] > 's' || strcmp(p[i], "session_id:") > 0)) {
                b->sp->sess_tag_mode = SESS_BEFORE;
                b->sp->sess_tag_off = b->main.len;
                sess = 0;
            }
            int is_ml_app = p[i][0] == 'm' && strncmp(p[i], "ml_app:", 7) == 0;
            if (is_ml_app) {
                b->sp->ml_app_off = b->main.len + 8; /* past the quote and "ml_app:" */
            }
            put_cstr(c, &b->main, p[i]);
            if (is_ml_app) {
                b->sp->ml_app_end = b->main.len - 1; /* before the closing quote */
            }
        }
    }
    if (sess) {
        b->sp->sess_tag_mode = t.n > 0 ? SESS_END : SESS_ONLY;
        b->sp->sess_tag_off = b->main.len;
    }
    put(c, &b->main, "]");
    b->sp->sess_field_off = b->main.len;
    b->tagtext = t.text;
}

/* The span in one block (see struct llmobs_span): b->sp then points to it. */
static void finish(struct build *b)
{
    struct llmobs_ctx *c = &b->c;
    size_t tail_end = b->main.len;
    b->tmp.tail_len = tail_end - b->tmp.head_len;
    size_t ml_len = b->ml_app != NULL ? strlen(b->ml_app) + 1 : 0;
    size_t sess_len = b->session != NULL ? strlen(b->session) + 1 : 0;
    size_t len = tail_end + b->io[0].b.len + b->io[1].b.len + ml_len + sess_len;
    struct llmobs_span *sp = o2d_malloc(sizeof(*sp) + len);
    if (sp == NULL) {
        c->nomem = 1;
        return;
    }
    *sp = b->tmp;
    uint8_t *text = (uint8_t *)(sp + 1);
    sp->text = text;
    sp->text_cap = len;
    memcpy(text, b->main.data, tail_end);
    size_t off = tail_end;
    for (int i = 0; i < 2; i++) {
        struct io *io = &b->io[i];
        sp->io[i] = (struct io_ref){io->key, io->array, io->n, off, io->b.len};
        if (io->b.len > 0) {
            memcpy(text + off, io->b.data, io->b.len);
            off += io->b.len;
        }
    }
    if (ml_len > 0) {
        memcpy(text + off, b->ml_app, ml_len);
        sp->ml_app = (const char *)text + off;
        off += ml_len;
    }
    if (sess_len > 0) {
        memcpy(text + off, b->session, sess_len);
        sp->session = (const char *)text + off;
    }
    b->sp = sp;
}

static void build_init(struct build *b)
{
    llmobs_ctx_init(&b->c, NULL);
    o2d_buf_init(&b->main, SIZE_MAX / 2);
    for (int i = 0; i < 2; i++) {
        b->io[i] = (struct io){.key = NULL};
        o2d_buf_init(&b->io[i].b, SIZE_MAX / 2);
    }
    o2d_buf_init(&b->tdefs, SIZE_MAX / 2);
    b->n_tdefs = 0;
    o2d_buf_init(&b->last, SIZE_MAX / 2);
    o2d_buf_init(&b->famtag, SIZE_MAX / 2);
    b->famtag_ready = 0;
    b->md = (struct md){.n = 0};
    o2d_buf_init(&b->md.text, SIZE_MAX / 2);
    o2d_buf_init(&b->tagtext, SIZE_MAX / 2);
    b->memo = (struct tag_memo){.on = 0};
    o2d_buf_init(&b->memo.text, SIZE_MAX / 2);
}

/* A builder is kept between requests: storage grown for an unusually large span goes. */
#define BUILDER_KEEP (256u * 1024)
static void build_trim(struct build *b)
{
    struct o2d_buf *bufs[] = {
        &b->main,          &b->io[0].b,       &b->io[1].b,   &b->tdefs,         &b->last,
        &b->md.text,       &b->c.msg.content, &b->c.scratch, &b->c.msg.list[0], &b->c.msg.list[1],
        &b->c.msg.list[2], &b->c.msg.list[3], &b->c.part[0], &b->c.part[1],     &b->c.part[2],
        &b->c.part[3],     &b->tagtext,       &b->memo.text, &b->famtag};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        if (bufs[i]->cap > BUILDER_KEEP) {
            o2d_buf_cleanup(bufs[i]);
        }
    }
    if (b->md.cap * sizeof(*b->md.e) > BUILDER_KEEP) {
        o2d_free(b->md.e);
        b->md.e = NULL;
        b->md.cap = 0;
    }
}

/* Ready for the next span: contents forgotten, storage kept. */
static void build_reset(struct build *b, struct llmobs_span *sp)
{
    memset(sp, 0, sizeof(*sp));
    b->ml_app = NULL;
    b->session = NULL;
    b->c.errors = &sp->errors;
    b->c.nomem = 0;
    o2d_buf_reset(&b->main);
    for (int i = 0; i < 2; i++) {
        b->io[i].key = NULL;
        b->io[i].array = 0;
        b->io[i].n = 0;
        o2d_buf_reset(&b->io[i].b);
    }
    o2d_buf_reset(&b->tdefs);
    b->n_tdefs = 0;
    o2d_buf_reset(&b->last);
    b->famtag_ready = 0;
    o2d_buf_reset(&b->md.text);
    b->md.n = 0;
    b->md.index = NULL; /* an arena value, dropped at the end of each build */
}

static void build_cleanup(struct build *b)
{
    llmobs_ctx_cleanup(&b->c);
    o2d_buf_cleanup(&b->main);
    o2d_buf_cleanup(&b->io[0].b);
    o2d_buf_cleanup(&b->io[1].b);
    o2d_buf_cleanup(&b->tdefs);
    o2d_buf_cleanup(&b->last);
    o2d_buf_cleanup(&b->famtag);
    o2d_buf_cleanup(&b->md.text);
    o2d_buf_cleanup(&b->tagtext);
    o2d_buf_cleanup(&b->memo.text);
    o2d_free(b->md.e);
}

struct llmobs_builder {
    struct build b;
    struct o2d_json_in_scratch js;
};

/*
 * Whether an llm span's message content may come as OTLP log records: the OTel GenAI
 * convention's events (<= 1.36 gen_ai.*.message / gen_ai.choice, >= 1.37 operation details)
 * are how its instrumentations send content by default: the span says gen_ai.provider.name
 * or gen_ai.system (opentelemetry-js-contrib @opentelemetry/instrumentation-openai,
 * opentelemetry-python-contrib opentelemetry-instrumentation-openai-v2, OpenLLMetry with
 * use_legacy_attributes off), or its scope is one of those instrumentations.
 */
static int sends_events(const struct build *b,
                        const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope)
{
    static const char *const scopes[] = {
        "@opentelemetry/instrumentation-openai",
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.instrumentation.vertexai",
        "opentelemetry.instrumentation.google_genai",
    };
    if (b->ix.v[K_PROVIDER] != NULL || b->ix.v[K_SYSTEM] != NULL) {
        return 1;
    }
    for (size_t i = 0; scope != NULL && scope->name != NULL && i < sizeof(scopes) / sizeof(*scopes);
         i++) {
        if (strcmp(scope->name, scopes[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int llmobs_builder_new(struct llmobs_builder **out)
{
    *out = o2d_malloc(sizeof(**out));
    if (*out == NULL) {
        return O2D_ERR_NOMEM;
    }
    build_init(&(*out)->b);
    o2d_json_in_scratch_init(&(*out)->js);
    return O2D_OK;
}

void llmobs_builder_begin(struct llmobs_builder *bl)
{
    if (bl != NULL) {
        bl->b.memo.on = 1;
        bl->b.memo.valid = 0;
    }
}

void llmobs_builder_end(struct llmobs_builder *bl)
{
    if (bl != NULL) {
        bl->b.memo.on = 0;
        bl->b.memo.valid = 0;
        build_trim(&bl->b);
    }
}

void llmobs_builder_free(struct llmobs_builder *bl)
{
    if (bl == NULL) {
        return;
    }
    build_cleanup(&bl->b);
    o2d_json_in_scratch_cleanup(&bl->js);
    o2d_free(bl);
}

int llmobs_span_build(const OtlpResource *res,
                      const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                      const OtlpSpan *s, enum llmobs_kind kind, const struct llmobs_config *cfg,
                      struct llmobs_span **out)
{
    return llmobs_span_build_with(NULL, res, scope, s, kind, cfg, out);
}

int llmobs_span_build_with(struct llmobs_builder *bl, const OtlpResource *res,
                           const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                           const OtlpSpan *s, enum llmobs_kind kind,
                           const struct llmobs_config *cfg, struct llmobs_span **out)
{
    static const struct llmobs_config no_cfg = {0};
    int rv = O2D_ERR_NOMEM;
    struct llmobs_vercel *vercel = NULL;
    *out = NULL;
    if (cfg == NULL) {
        cfg = &no_cfg;
    }
    if (kind == LLMOBS_NONE) {
        kind = LLMOBS_WORKFLOW;
    }
    struct llmobs_builder own;
    if (bl == NULL) {
        build_init(&own.b);
        o2d_json_in_scratch_init(&own.js);
    }
    struct llmobs_builder *use = bl != NULL ? bl : &own;
    struct build *b = &use->b;
    /* Every jansson value of the build (parsed attribute JSON, regrouped attributes) dies
     * before it returns: they come from the builder's arena, released at the end. */
    o2d_json_in_scratch_open(&use->js);
    struct llmobs_span *sp = &b->tmp; /* copied into its own block by finish() */
    build_reset(b, sp);
    index_attrs(&b->ix, s->attributes, s->n_attributes);
    /* Vercel AI SDK spans are read as the OTel GenAI span they amount to. */
    if (b->ix.v[K_VERCEL_OP] != NULL) {
        if (llmobs_vercel_rewrite(&b->c, s, kind, &vercel)) {
            s = llmobs_vercel_span(vercel);
            index_attrs(&b->ix, s->attributes, s->n_attributes);
        } else if (b->c.nomem) {
            goto out;
        }
    }
    b->sp = sp;
    b->s = s;
    b->kind = kind;
    struct llmobs_ctx *c = &b->c;
    sp->kind = kind;
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
    llmobs_check(c, o2d_buf_reserve(&b->main, 1024));

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
    struct o2d_buf *m = &b->main;
    put(c, m, ",\"name\":");
    put_cstr(c, m, name);
    int64_t start = (int64_t)s->start_time_unix_nano;
    int64_t dur = s->end_time_unix_nano > s->start_time_unix_nano
                      ? (int64_t)(s->end_time_unix_nano - s->start_time_unix_nano)
                      : 0;
    int error =
        s->status != NULL &&
        s->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    put(c, m, ",\"start_ns\":");
    llmobs_check(c, o2d_json_append_int(m, start));
    put(c, m, ",\"duration\":");
    llmobs_check(c, o2d_json_append_int(m, dur));
    put(c, m, error ? ",\"status\":\"error\"" : ",\"status\":\"ok\"");
    put(c, m, ",\"meta\":{\"span\":{\"kind\":\"");
    put(c, m, llmobs_kind_name(kind));
    put(c, m, "\"}");
    if (kind == LLMOBS_LLM || kind == LLMOBS_EMBEDDING) {
        model(b);
    }
    sp->head_len = m->len;
    sp->error = (uint8_t)error;
    switch (kind) {
    case LLMOBS_LLM:
        llm_io(b);
        sp->expects_logs = (sp->in_src == SRC_NONE || sp->system_only) && sp->out_src == SRC_NONE &&
                           sends_events(b, scope);
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
    metadata(b);
    metadata_write(b);
    if (b->n_tdefs > 0) {
        put(c, m, ",\"tool_definitions\":[");
        llmobs_check(c, o2d_buf_append(m, b->tdefs.data, b->tdefs.len));
        put(c, m, "]");
    }

    const char *error_type = NULL;
    if (error) {
        const char *msg = s->status->message != NULL && s->status->message[0] != '\0'
                              ? s->status->message
                              : exception_attr(s, "exception.message");
        error_type = astr(&b->ix, K_ERROR_TYPE);
        if (error_type == NULL) {
            error_type = exception_attr(s, "exception.type");
        }
        const char *stack = exception_attr(s, "exception.stacktrace");
        const char *sep = "";
        put(c, m, ",\"error\":{");
        if (msg != NULL) {
            put(c, m, "\"message\":");
            put_cstr(c, m, msg);
            sep = ",";
        }
        if (error_type != NULL) {
            put(c, m, sep);
            put(c, m, "\"type\":");
            put_cstr(c, m, error_type);
            sep = ",";
        }
        if (stack != NULL) {
            put(c, m, sep);
            put(c, m, "\"stack\":");
            put_cstr(c, m, stack);
        }
        put(c, m, "}");
    }
    put(c, m, "}"); /* meta */

    metrics(b);

    static const enum akey sess_keys[] = {K_CONV_ID, K_SESSION, K_TL_SESSION};
    const char *session = NULL;
    for (size_t i = 0; i < 3 && session == NULL; i++) {
        session = astr(&b->ix, sess_keys[i]);
    }
    tags(b, res, cfg, error_type, session, error);
    if (session != NULL) {
        put(c, m, ",\"session_id\":");
        put_cstr(c, m, session);
        b->session = session;
    }
    put(c, m, ",\"_dd\":{\"span_id\":");
    size_t sid_at = m->len + 1; /* past the quote */
    put_u64str(c, m, sp->ids.span_id);
    sp->sid_off = sid_at;
    sp->sid_len = (uint8_t)(m->len - 1 - sid_at);
    put(c, m, ",\"trace_id\":");
    size_t id_at = m->len;
    put_apm_trace_id(c, m, sp->ids.trace_id);
    size_t id_len = m->len - id_at;
    put(c, m, ",\"apm_trace_id\":");
    /* the same text again (m may move while it grows, so reserve first) */
    llmobs_check(c, o2d_buf_reserve(m, id_len));
    if (!c->nomem) {
        memcpy(m->data + m->len, m->data + id_at, id_len);
        m->len += id_len;
    }
    put(c, m, "}");
    if (c->nomem) {
        goto out;
    }
    finish(b);
    if (c->nomem) {
        goto out;
    }
    *out = b->sp;
    rv = O2D_OK;
out:
    /* on failure nothing is owned yet: the span being built is the builder's (tmp) */
    json_decref(b->md.index);
    b->md.index = NULL;
    llmobs_vercel_free(vercel);
    o2d_json_in_scratch_close(&use->js);
    if (!b->memo.on) {
        build_trim(b); /* else once the request is built (llmobs_builder_end) */
    }
    if (bl == NULL) {
        build_cleanup(&own.b);
        o2d_json_in_scratch_cleanup(&own.js);
    }
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

/* The io of a span that log records write to: a fresh, empty one the first time. */
static struct io *log_io(struct llmobs_span *sp, int i)
{
    if (sp->log_io[i] == NULL) {
        struct io *io = o2d_calloc(1, sizeof(*io));
        if (io == NULL) {
            return NULL;
        }
        o2d_buf_init(&io->b, SIZE_MAX / 2);
        sp->log_io[i] = io;
    }
    io_start(sp->log_io[i], NULL, 0);
    return sp->log_io[i];
}

/* Starts the input list of log records with the span's own system instructions (Responses:
 * the span has them, the log records the rest). */
static void take_span_system(struct llmobs_ctx *c, struct llmobs_span *sp, struct io *in)
{
    const struct io_ref *r = &sp->io[0];
    llmobs_check(c, o2d_buf_append(&in->b, io_bytes(sp, r), r->len));
    in->n = 1;
    sp->sys_len = r->len;
    sp->system_only = 0;
}

/* The message list a <= 1.36 event appends to, or NULL when the span's own messages win. */
static struct io *messages_of(struct llmobs_ctx *c, struct llmobs_span *sp, int i, enum io_src *src)
{
    int merge = i == 0 && *src == SRC_SPAN && sp->system_only;
    if (*src == SRC_SPAN && !merge) {
        return NULL; /* the span's own messages win; the log repeats them */
    }
    struct io *io = sp->log_io[i];
    if (*src != SRC_LOG || io == NULL || io->key == NULL || strcmp(io->key, "messages") != 0) {
        io = log_io(sp, i);
        if (io == NULL) {
            return NULL;
        }
        io_start(io, "messages", 1);
        if (i == 0) {
            sp->sys_len = 0;
        }
        if (merge) {
            take_span_system(c, sp, io);
        }
        *src = SRC_LOG;
    }
    return io;
}

int llmobs_span_add_log(struct llmobs_span *sp, const OtlpLogRecord *r)
{
    int ev = log_event_index(r);
    if (sp == NULL || ev < 0 || sp->kind != LLMOBS_LLM) {
        return O2D_OK; /* messages are only meaningful on llm spans (dd-trace-py) */
    }
    struct llmobs_ctx ctx;
    struct llmobs_ctx *c = &ctx;
    llmobs_ctx_init(c, &sp->errors);
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
        if ((io.system != NULL || io.input != NULL) &&
            (sp->in_src != SRC_SPAN || sp->system_only)) {
            struct io *in = log_io(sp, 0);
            if (in == NULL) {
                c->nomem = 1;
            } else {
                /* Instructions first (the record's own, else the span's), then the input
                 * messages without a repeat of them. */
                io_start(in, "messages", 1);
                sp->sys_len = 0;
                if (io.system != NULL) {
                    genai_messages_add(c, in, io.system, NULL, "otel_warning_input_malformed");
                    sp->sys_len = in->n == 1 ? in->b.len : 0;
                    sp->system_only = 0;
                } else if (sp->system_only) {
                    take_span_system(c, sp, in);
                }
                size_t from = in->b.len;
                genai_messages_add(c, in, NULL, io.input, "otel_warning_input_malformed");
                if (sp->sys_len > 0 && in->key != NULL && in->array) {
                    drop_repeats(in, sp->sys_len, from);
                }
                sp->in_src = SRC_LOG;
            }
        }
        if (io.output != NULL && sp->out_src != SRC_SPAN) {
            struct io *out = log_io(sp, 1);
            if (out == NULL) {
                c->nomem = 1;
            } else if (genai_messages(c, out, NULL, io.output, "otel_warning_output_malformed")) {
                sp->out_src = SRC_LOG;
            }
        }
        goto out;
    }
    int output = log_events[ev].output;
    struct io *list = messages_of(c, sp, output, output ? &sp->out_src : &sp->in_src);
    if (list == NULL) {
        if (*(output ? &sp->out_src : &sp->in_src) != SRC_SPAN) {
            c->nomem = 1;
        }
        goto out;
    }
    size_t from = list->b.len;
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
    if (llmobs_msg_read(c, m, log_events[ev].role)) {
        llmobs_msg_write(c, &list->b, &list->n);
        if (!output && sp->sys_len > 0 && from > 0) {
            drop_repeats(list, sp->sys_len, from);
        }
    }
    json_decref(body);
out:
    llmobs_ctx_cleanup(c);
    return c->nomem ? O2D_ERR_NOMEM : O2D_OK;
}

const struct llmobs_ids *llmobs_span_ids(const struct llmobs_span *sp)
{
    return &sp->ids;
}

int llmobs_span_awaits_logs(const struct llmobs_span *sp)
{
    if (!sp->expects_logs) {
        return 0;
    }
    /* The output comes last (gen_ai.choice, or the one operation-details record); a failed
     * call has none, its input is what can still come. */
    return sp->error ? sp->in_src != SRC_LOG : sp->out_src != SRC_LOG;
}

const char *llmobs_span_session(const struct llmobs_span *sp)
{
    return sp->session;
}

const char *llmobs_span_ml_app(const struct llmobs_span *sp, int *explicit_)
{
    *explicit_ = sp->ml_app_explicit;
    return sp->ml_app;
}

void *llmobs_span_hold(struct llmobs_span *sp)
{
    return &sp->hold;
}

size_t llmobs_span_size(const struct llmobs_span *sp)
{
    size_t n = sizeof(*sp) + sp->text_cap;
    for (int i = 0; i < 2; i++) {
        if (sp->log_io[i] != NULL) {
            n += sizeof(struct io) + sp->log_io[i]->b.cap;
        }
    }
    return n;
}

void llmobs_span_free(struct llmobs_span *sp)
{
    if (sp == NULL) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (sp->log_io[i] != NULL) {
            o2d_buf_cleanup(&sp->log_io[i]->b);
            o2d_free(sp->log_io[i]);
        }
    }
    o2d_free(sp); /* text, ml_app and session with it */
}

/* ---- writing ---- */

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rv = (x)) != O2D_OK) {                                                                \
            return rv;                                                                             \
        }                                                                                          \
    } while (0)

/* A string literal, its length known at compile time. */
#define APPEND_LIT(out, lit) o2d_buf_append((out), (lit), sizeof(lit) - 1)

static int write_io(struct o2d_buf *out, const struct llmobs_span *sp, int i, int drop_io)
{
    int rv;
    const struct io *lio = sp->log_io[i];
    const char *key = lio != NULL ? lio->key : sp->io[i].key;
    if (!drop_io && key == NULL) {
        return O2D_OK;
    }
    TRY(i == 0 ? APPEND_LIT(out, ",\"input\":{") : APPEND_LIT(out, ",\"output\":{"));
    if (drop_io) {
        TRY(APPEND_LIT(out, "\"value\":"));
        TRY(o2d_json_append_string(out, DROPPED_IO, sizeof(DROPPED_IO) - 1));
        return o2d_buf_append_byte(out, '}');
    }
    int array = lio != NULL ? lio->array : sp->io[i].array;
    TRY(o2d_buf_append_byte(out, '"'));
    TRY(o2d_buf_append_str(out, key));
    TRY(array ? APPEND_LIT(out, "\":[") : APPEND_LIT(out, "\":"));
    if (lio != NULL) {
        TRY(o2d_buf_append(out, lio->b.data, lio->b.len));
    } else {
        TRY(o2d_buf_append(out, io_bytes(sp, &sp->io[i]), sp->io[i].len));
    }
    return array ? APPEND_LIT(out, "]}") : o2d_buf_append_byte(out, '}');
}

/* Appends s as the inside of a JSON string (escaped, without the quotes). */
static int append_string_body(struct o2d_buf *out, const char *s)
{
    size_t q = out->len;
    int rv = o2d_json_append_string(out, s, strlen(s));
    if (rv == O2D_OK) {
        memmove(out->data + q, out->data + q + 1, out->len - q - 2);
        out->len -= 2;
    }
    return rv;
}

/* The tail (metadata, metrics, tags, session...), with what the span inherits put in: its
 * ancestor's ml_app in place of its own (unless its own was set for it), and the session it
 * lacks (tag and member). The splice points come in this order in the text. */
static int write_tail(const struct llmobs_span *sp, const struct llmobs_inherit *inh,
                      struct o2d_buf *out)
{
    int rv;
    const uint8_t *tail = sp->text + sp->head_len;
    const char *ml_app = inh != NULL ? inh->ml_app : NULL;
    const char *session = inh != NULL ? inh->session : NULL;
    if (ml_app != NULL && (sp->ml_app_explicit || sp->ml_app == NULL ||
                           sp->ml_app_end <= sp->ml_app_off || strcmp(ml_app, sp->ml_app) == 0)) {
        ml_app = NULL;
    }
    if (session != NULL && (sp->session != NULL || sp->sess_tag_mode == SESS_NONE)) {
        session = NULL;
    }
    size_t at = 0; /* of the tail, written so far */
    if (ml_app != NULL) {
        size_t ml_at = sp->ml_app_off - sp->head_len;
        TRY(o2d_buf_append(out, tail, ml_at));
        TRY(append_string_body(out, ml_app));
        at = sp->ml_app_end - sp->head_len;
    }
    if (session != NULL) {
        size_t tag_at = sp->sess_tag_off - sp->head_len;
        size_t field_at = sp->sess_field_off - sp->head_len;
        TRY(o2d_buf_append(out, tail + at, tag_at - at));
        TRY(o2d_buf_append_str(out,
                               sp->sess_tag_mode == SESS_END ? ",\"session_id:" : "\"session_id:"));
        TRY(append_string_body(out, session));
        TRY(o2d_buf_append_str(out, sp->sess_tag_mode == SESS_BEFORE ? "\"," : "\""));
        TRY(o2d_buf_append(out, tail + tag_at, field_at - tag_at));
        TRY(APPEND_LIT(out, ",\"session_id\":"));
        TRY(o2d_json_append_string(out, session, strlen(session)));
        at = field_at;
    }
    return o2d_buf_append(out, tail + at, sp->tail_len - at);
}

/* Appends p[0..n) where room was reserved (p may be NULL when n is 0: an empty buffer's). */
static inline void put_raw(struct o2d_buf *out, const void *p, size_t n)
{
    if (n > 0) {
        memcpy(out->data + out->len, p, n);
        out->len += n;
    }
}

#define PUT_LIT(out, lit) put_raw((out), (lit), sizeof(lit) - 1)

static inline void put_raw_uint(struct o2d_buf *out, uint64_t v)
{
    out->len += o2d_json_format_uint((char *)out->data + out->len, v);
}

/* write_event() without dropping I/O, once out has room for llmobs_span_write_size() plus
 * what a trace id longer than 32 characters may take escaped, from its end: the fixed parts and the
 * span's own text go in as stores, without a capacity check and a call each (a dozen per event were
 * half of what writing one cost past its bytes). */
static int write_event_reserved(const struct llmobs_span *sp, const char *llm_trace_id,
                                uint64_t parent_id, const struct llmobs_inherit *inh,
                                struct o2d_buf *out)
{
    int rv;
    PUT_LIT(out, "{\"trace_id\":");
    TRY(o2d_json_append_string(out, llm_trace_id, strlen(llm_trace_id)));
    PUT_LIT(out, ",\"span_id\":\"");
    put_raw(out, sp->text + sp->sid_off, sp->sid_len); /* as _dd has it */
    PUT_LIT(out, "\",\"parent_id\":\"");
    if (parent_id == 0) {
        PUT_LIT(out, "undefined\"");
    } else {
        put_raw_uint(out, parent_id);
        PUT_LIT(out, "\"");
    }
    put_raw(out, sp->text, sp->head_len);
    for (int i = 0; i < 2; i++) {
        const struct io *lio = sp->log_io[i];
        const char *key = lio != NULL ? lio->key : sp->io[i].key;
        if (key == NULL) {
            continue;
        }
        int array = lio != NULL ? lio->array : sp->io[i].array;
        if (i == 0) {
            PUT_LIT(out, ",\"input\":{\"");
        } else {
            PUT_LIT(out, ",\"output\":{\"");
        }
        put_raw(out, key, strlen(key));
        if (array) {
            PUT_LIT(out, "\":[");
        } else {
            PUT_LIT(out, "\":");
        }
        if (lio != NULL) {
            put_raw(out, lio->b.data, lio->b.len);
        } else {
            put_raw(out, io_bytes(sp, &sp->io[i]), sp->io[i].len);
        }
        if (array) {
            PUT_LIT(out, "]}");
        } else {
            PUT_LIT(out, "}");
        }
    }
    TRY(write_tail(sp, inh, out));
    if (sp->errors.n > 0) {
        TRY(APPEND_LIT(out, ",\"collection_errors\":["));
        for (size_t i = 0; i < sp->errors.n; i++) {
            if (i > 0) {
                TRY(o2d_buf_append_byte(out, ','));
            }
            TRY(o2d_json_append_string(out, sp->errors.name[i], strlen(sp->errors.name[i])));
        }
        TRY(o2d_buf_append_byte(out, ']'));
    }
    return o2d_buf_append_byte(out, '}');
}

static int write_event(const struct llmobs_span *sp, const char *llm_trace_id, uint64_t parent_id,
                       const struct llmobs_inherit *inh, int drop_io, struct o2d_buf *out)
{
    int rv;
    size_t tl = strlen(llm_trace_id);
    if (!drop_io && tl < SIZE_MAX / 8 &&
        o2d_buf_reserve(out, llmobs_span_write_size(sp, inh) + (tl > 32 ? 6 * tl : 0)) == O2D_OK) {
        return write_event_reserved(sp, llm_trace_id, parent_id, inh, out);
    }
    TRY(APPEND_LIT(out, "{\"trace_id\":"));
    TRY(o2d_json_append_string(out, llm_trace_id, strlen(llm_trace_id)));
    TRY(APPEND_LIT(out, ",\"span_id\":\""));
    TRY(o2d_json_append_uint(out, sp->ids.span_id));
    TRY(APPEND_LIT(out, "\",\"parent_id\":\""));
    if (parent_id == 0) {
        TRY(APPEND_LIT(out, "undefined\""));
    } else {
        TRY(o2d_json_append_uint(out, parent_id));
        TRY(o2d_buf_append_byte(out, '"'));
    }
    TRY(o2d_buf_append(out, sp->text, sp->head_len));
    TRY(write_io(out, sp, 0, drop_io));
    TRY(write_io(out, sp, 1, drop_io));
    TRY(write_tail(sp, inh, out));
    if (sp->errors.n > 0 || drop_io) {
        TRY(APPEND_LIT(out, ",\"collection_errors\":["));
        for (size_t i = 0; i < sp->errors.n; i++) {
            if (i > 0) {
                TRY(o2d_buf_append_byte(out, ','));
            }
            TRY(o2d_json_append_string(out, sp->errors.name[i], strlen(sp->errors.name[i])));
        }
        if (drop_io) {
            TRY(o2d_buf_append_str(out, sp->errors.n == 0 ? "\"dropped_io\"" : ",\"dropped_io\""));
        }
        TRY(o2d_buf_append_byte(out, ']'));
    }
    return o2d_buf_append_byte(out, '}');
}

size_t llmobs_span_write_size(const struct llmobs_span *sp, const struct llmobs_inherit *inh)
{
    /* {"trace_id":"<32 hex>","span_id":"<20 digits>","parent_id":"<20 digits>", the closing
     * brace, and room to spare */
    size_t n = 160 + sp->head_len + sp->tail_len;
    for (int i = 0; i < 2; i++) {
        /* ,"output":{"documents":[ ... ]} */
        n += 32 + (sp->log_io[i] != NULL ? sp->log_io[i]->b.len : sp->io[i].len);
    }
    /* an inherited string escaped takes at most 6 bytes a byte (\u00XX): ml_app once,
     * the session as a tag and as a member */
    if (inh != NULL && inh->ml_app != NULL) {
        n += 6 * strlen(inh->ml_app);
    }
    if (inh != NULL && inh->session != NULL) {
        n += 40 + 12 * strlen(inh->session);
    }
    /* ,"collection_errors":["...",...,"dropped_io"] */
    n += 40;
    for (size_t i = 0; i < sp->errors.n; i++) {
        n += strlen(sp->errors.name[i]) + 3;
    }
    return n;
}

int llmobs_span_write(const struct llmobs_span *sp, const char *llm_trace_id, uint64_t parent_id,
                      size_t max_event_size, struct o2d_buf *out)
{
    return llmobs_span_write_inherit(sp, llm_trace_id, parent_id, NULL, max_event_size, out);
}

int llmobs_span_write_inherit(const struct llmobs_span *sp, const char *llm_trace_id,
                              uint64_t parent_id, const struct llmobs_inherit *inh,
                              size_t max_event_size, struct o2d_buf *out)
{
    size_t start = out->len;
    int rv = write_event(sp, llm_trace_id, parent_id, inh, 0, out);
    if ((rv == O2D_OK && out->len - start <= max_event_size) ||
        (rv != O2D_OK && rv != O2D_ERR_TOO_LARGE)) {
        if (rv != O2D_OK) {
            out->len = start;
        }
        return rv;
    }
    /* Too large: drop input and output as the tracers do (_truncate_span_event). */
    out->len = start;
    rv = write_event(sp, llm_trace_id, parent_id, inh, 1, out);
    if (rv != O2D_OK) {
        out->len = start;
    }
    return rv;
}
