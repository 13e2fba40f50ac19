/*
 * test_llmobs_buffer.c: the LLM Obs trace buffer (translate/llmobs/llmobs_buffer.c). LLM Obs spans
 * are built with llmobs_span_build() from small hand-made OTLP spans; the events written are
 * parsed with jansson to check trace_id and parent_id (../shared/reference/llmobs.md 1.3, 7.3).
 * Covers parent resolution through non-LLM spans, child-first arrival, remote parents, the
 * deadline, log records before and after their span, the bounds, parent cycles, allocation
 * failure at every step, and the trace id test vector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "llmobs.h"
#include "llmobs_buffer.h"
#include "o2d.h"
#include "o2d_alloc.h"

#define SEC      1000000000LL
#define DEADLINE (10 * SEC)
#define T0       (1000 * SEC)

static const uint8_t TRACE_A[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t TRACE_B[16] = {0xb0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t TRACE_C[16] = {0xc0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t TRACE_S[16] = {0x50, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

enum kind { HTTP, LLM, WORKFLOW };

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    }
}

static struct llmobs_ids ids_of(const uint8_t trace[16], uint64_t span, uint64_t parent, int remote)
{
    struct llmobs_ids ids;
    memset(&ids, 0, sizeof(ids));
    memcpy(ids.trace_id, trace, 16);
    ids.span_id = span;
    ids.parent_span_id = parent;
    ids.parent_is_remote = remote;
    return ids;
}

/* An owned LLM Obs span: gen_ai.operation.name=chat, plus traceloop.span.kind=workflow for a
 * workflow span. */
static struct llmobs_span *build(const uint8_t trace[16], uint64_t span, uint64_t parent,
                                 enum kind k)
{
    OtlpSpan s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    OtlpKeyValue kv[2] = {OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT,
                          OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT};
    OtlpAnyValue av[2] = {OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
                          OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT};
    OtlpKeyValue *kvp[2] = {&kv[0], &kv[1]};
    uint8_t tid[16], sid[8], pid[8];

    memcpy(tid, trace, 16);
    put_be64(sid, span);
    put_be64(pid, parent);
    s.trace_id.data = tid;
    s.trace_id.len = 16;
    s.span_id.data = sid;
    s.span_id.len = 8;
    if (parent != 0) {
        s.parent_span_id.data = pid;
        s.parent_span_id.len = 8;
    }
    s.name = k == WORKFLOW ? "workflow.task" : "chat gpt-4o";
    s.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
    s.start_time_unix_nano = 1700000000000000000ULL + span;
    s.end_time_unix_nano = s.start_time_unix_nano + 1000;
    kv[0].key = "gen_ai.operation.name";
    kv[0].value = &av[0];
    av[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av[0].string_value = "chat";
    kv[1].key = "traceloop.span.kind";
    kv[1].value = &av[1];
    av[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av[1].string_value = "workflow";
    s.attributes = kvp;
    s.n_attributes = k == WORKFLOW ? 2 : 1;

    struct llmobs_config cfg = {.ml_app = "test-app"};
    struct llmobs_span *sp = NULL;
    assert_int_equal(
        llmobs_span_build(NULL, NULL, &s, k == WORKFLOW ? LLMOBS_WORKFLOW : LLMOBS_LLM, &cfg, &sp),
        O2D_OK);
    assert_non_null(sp);
    return sp;
}

/* Adds an LLM Obs span (LLM, WORKFLOW) or a plain one (HTTP). */
static int add(struct llmobs_buffer *b, const uint8_t trace[16], uint64_t span, uint64_t parent,
               int remote, enum kind k, int64_t now)
{
    struct llmobs_ids ids = ids_of(trace, span, parent, remote);
    return llmobs_buffer_add_span(b, &ids, k == HTTP ? NULL : build(trace, span, parent, k), now);
}

/* A log record of OTel GenAI <= 1.36 event `event` with body {"content": content}. */
static int add_event(struct llmobs_buffer *b, const uint8_t trace[16], uint64_t span,
                     const char *event, const char *content, int64_t now)
{
    OtlpLogRecord r = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    OtlpAnyValue body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__KeyValueList kvl =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    OtlpKeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    OtlpAnyValue v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    OtlpKeyValue *kvp[1] = {&kv};
    OtlpKeyValue attr = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    OtlpAnyValue attr_v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    OtlpKeyValue *attrp[1] = {&attr};
    uint8_t tid[16], sid[8];

    memcpy(tid, trace, 16);
    put_be64(sid, span);
    r.trace_id.data = tid;
    r.trace_id.len = 16;
    r.span_id.data = sid;
    r.span_id.len = 8;
    r.event_name = (char *)event;
    attr.key = "gen_ai.system";
    attr.value = &attr_v;
    attr_v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    attr_v.string_value = "openai";
    r.attributes = attrp;
    r.n_attributes = 1;
    kv.key = "content";
    kv.value = &v;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = (char *)content;
    kvl.values = kvp;
    kvl.n_values = 1;
    body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    body.kvlist_value = &kvl;
    r.body = &body;
    return llmobs_buffer_add_log(b, &r, now);
}

/* A gen_ai.user.message log record for trace/span. */
static int add_log(struct llmobs_buffer *b, const uint8_t trace[16], uint64_t span,
                   const char *content, int64_t now)
{
    return add_event(b, trace, span, "gen_ai.user.message", content, now);
}

/* An llm or workflow span with string attributes kv[0..n) ({key, value} pairs), e.g. as the
 * OTel GenAI instrumentations send it without content (gen_ai.system, no messages). */
static struct llmobs_span *build_kv(const uint8_t trace[16], uint64_t span, uint64_t parent,
                                    enum llmobs_kind kind, const char *const (*kv)[2], size_t n)
{
    OtlpSpan s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    OtlpKeyValue kvs[8];
    OtlpAnyValue av[8];
    OtlpKeyValue *kvp[8];
    uint8_t tid[16], sid[8], pid[8];
    assert_true(n <= 8);
    memcpy(tid, trace, 16);
    put_be64(sid, span);
    put_be64(pid, parent);
    s.trace_id.data = tid;
    s.trace_id.len = 16;
    s.span_id.data = sid;
    s.span_id.len = 8;
    if (parent != 0) {
        s.parent_span_id.data = pid;
        s.parent_span_id.len = 8;
    }
    s.name = "chat gpt-4o";
    s.start_time_unix_nano = 1700000000000000000ULL + span;
    s.end_time_unix_nano = s.start_time_unix_nano + 1000;
    for (size_t i = 0; i < n; i++) {
        kvs[i] = (OtlpKeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        av[i] = (OtlpAnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        kvs[i].key = (char *)kv[i][0];
        kvs[i].value = &av[i];
        av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        av[i].string_value = (char *)kv[i][1];
        kvp[i] = &kvs[i];
    }
    s.attributes = kvp;
    s.n_attributes = n;
    struct llmobs_config cfg = {.ml_app = "test-app"};
    struct llmobs_span *sp = NULL;
    assert_int_equal(llmobs_span_build(NULL, NULL, &s, kind, &cfg, &sp), O2D_OK);
    return sp;
}

static int add_kv(struct llmobs_buffer *b, const uint8_t trace[16], uint64_t span, uint64_t parent,
                  enum llmobs_kind kind, const char *const (*kv)[2], size_t n, int64_t now)
{
    struct llmobs_ids ids = ids_of(trace, span, parent, 0);
    return llmobs_buffer_add_span(b, &ids, build_kv(trace, span, parent, kind, kv, n), now);
}

/* What OTel GenAI instrumentations put on a chat span when content goes to log records. */
static const char *const NO_CONTENT[][2] = {
    {"gen_ai.operation.name", "chat"},
    {"gen_ai.system", "openai"},
};

/* ---- what came out ---- */

#define MAX_EVENTS 256

struct sink {
    int n;
    char *ev[MAX_EVENTS];
    int fail; /* emit returns O2D_ERR_BUSY while set */
};

static int sink_emit(void *ctx, const uint8_t *json, size_t len)
{
    struct sink *k = ctx;
    if (k->fail) {
        return O2D_ERR_BUSY;
    }
    assert_true(k->n < MAX_EVENTS);
    /* Plain malloc: the sink is not under test and must not eat injected failures. */
    char *c = malloc(len + 1);
    assert_non_null(c);
    memcpy(c, json, len);
    c[len] = '\0';
    k->ev[k->n++] = c;
    return O2D_OK;
}

static void sink_clear(struct sink *k)
{
    for (int i = 0; i < k->n; i++) {
        free(k->ev[i]);
    }
    k->n = 0;
}

static json_t *event_json(const struct sink *k, int i)
{
    json_error_t err;
    json_t *j = json_loads(k->ev[i], 0, &err);
    if (j == NULL) {
        fail_msg("event %d is not JSON: %s: %s", i, err.text, k->ev[i]);
    }
    return j;
}

/* The index of the event for span `span` (decimal span_id), or fails. */
static int find_event(const struct sink *k, uint64_t span)
{
    char want[32];
    snprintf(want, sizeof(want), "%llu", (unsigned long long)span);
    for (int i = 0; i < k->n; i++) {
        json_t *j = event_json(k, i);
        const char *sid = json_string_value(json_object_get(j, "span_id"));
        int match = sid != NULL && strcmp(sid, want) == 0;
        json_decref(j);
        if (match) {
            return i;
        }
    }
    fail_msg("no event for span %s", want);
    return -1;
}

/* Checks the event of `span`: parent_id (0 = "undefined") and the LLM Obs trace id, which
 * must be that of root `root` in OTel trace `trace`. */
static void check_event(const struct sink *k, uint64_t span, uint64_t parent,
                        const uint8_t trace[16], uint64_t root)
{
    json_t *j = event_json(k, find_event(k, span));
    char want_parent[32], want_trace[33];
    if (parent == 0) {
        strcpy(want_parent, "undefined");
    } else {
        snprintf(want_parent, sizeof(want_parent), "%llu", (unsigned long long)parent);
    }
    llmobs_trace_id(trace, root, want_trace);
    assert_string_equal(json_string_value(json_object_get(j, "parent_id")), want_parent);
    assert_string_equal(json_string_value(json_object_get(j, "trace_id")), want_trace);
    json_decref(j);
}

static const char *trace_of(const struct sink *k, uint64_t span, char out[64])
{
    json_t *j = event_json(k, find_event(k, span));
    snprintf(out, 64, "%s", json_string_value(json_object_get(j, "trace_id")));
    json_decref(j);
    return out;
}

static struct llmobs_buffer *new_buffer_window(size_t max_spans, size_t max_bytes, int64_t window)
{
    struct llmobs_buffer_config cfg = {
        .deadline_ns = DEADLINE,
        .max_spans = max_spans,
        .max_bytes = max_bytes,
        .max_event_size = 5000000,
        .log_window_ns = window,
    };
    struct llmobs_buffer *b = NULL;
    assert_int_equal(llmobs_buffer_new(&b, &cfg), O2D_OK);
    return b;
}

static struct llmobs_buffer *new_buffer(size_t max_spans, size_t max_bytes)
{
    return new_buffer_window(max_spans, max_bytes, 0);
}

static struct llmobs_buffer_counters counters(const struct llmobs_buffer *b)
{
    struct llmobs_buffer_counters c;
    llmobs_buffer_get_counters(b, &c);
    return c;
}

static int poll(struct llmobs_buffer *b, int64_t now, int force, struct sink *k)
{
    return llmobs_buffer_poll(b, now, force, sink_emit, k);
}

/* Drains the buffer and checks that nothing is left accounted. */
static void drain_and_free(struct llmobs_buffer *b, struct sink *k)
{
    assert_int_equal(poll(b, INT64_MAX, 1, k), O2D_OK);
    struct llmobs_buffer_counters c = counters(b);
    assert_int_equal(c.spans_held, 0);
    assert_int_equal(c.bytes_held, 0);
    llmobs_buffer_free(b);
    sink_clear(k);
}

/* ---- tests ---- */

static void test_trace_id_vector(void **state)
{
    (void)state;
    char id[33], again[33], other[33];
    /* python3 -c "import hashlib; print(hashlib.sha256(bytes(range(1,17)) +
     *   (0x1112131415161718).to_bytes(8,'big')).hexdigest()[:32])" */
    llmobs_trace_id(TRACE_A, 0x1112131415161718ULL, id);
    assert_string_equal(id, "91a306446e73d07e7f3b5a28892b7617");
    llmobs_trace_id(TRACE_A, 0x1112131415161718ULL, again);
    assert_string_equal(id, again);
    /* W3C example ids: trace 4bf92f3577b34da6a3ce929d0e0e4736, span 00f067aa0ba902b7. */
    static const uint8_t w3c[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    llmobs_trace_id(w3c, 0x00f067aa0ba902b7ULL, other);
    assert_string_equal(other, "69c97120d558449c756766ddc3532d85");
}

/* HTTP root with two LLM calls under it: two LLM Obs traces, both roots. */
static void test_http_root_two_llm_calls(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(llmobs_buffer_note_trace(b, TRACE_A, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 1, 0, 0, HTTP, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 2, 1, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 3, 1, 0, LLM, T0), O2D_OK);
    assert_int_equal(counters(b).spans_held, 2);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    check_event(&k, 2, 0, TRACE_A, 2);
    check_event(&k, 3, 0, TRACE_A, 3);
    char t2[64], t3[64];
    assert_string_not_equal(trace_of(&k, 2, t2), trace_of(&k, 3, t3));
    struct llmobs_buffer_counters c = counters(b);
    assert_int_equal(c.events_emitted, 2);
    assert_int_equal(c.settled_by_root, 2);
    assert_int_equal(c.spans_held, 0);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* A FastAPI request: HTTP server span -> http receive / send, and a LangChain workflow ->
 * a custom non-LLM span -> the llm span. The llm's parent is the workflow; one LLM Obs
 * trace. The non-LLM spans of the request come first, in one batch that notes the trace. */
static void test_fastapi_langchain(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(llmobs_buffer_note_trace(b, TRACE_A, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 0x11, 0x10, 0, HTTP, T0), O2D_OK); /* http receive */
    assert_int_equal(add(b, TRACE_A, 0x15, 0x14, 0, HTTP, T0), O2D_OK); /* custom span */
    assert_int_equal(add(b, TRACE_A, 0x16, 0x15, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 0x14, 0x10, 0, WORKFLOW, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 0x12, 0x10, 0, HTTP, T0), O2D_OK); /* http send */
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0); /* the HTTP server span has not come */
    assert_int_equal(add(b, TRACE_A, 0x10, 0, 0, HTTP, T0 + SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    check_event(&k, 0x14, 0, TRACE_A, 0x14);
    check_event(&k, 0x16, 0x14, TRACE_A, 0x14);
    /* Parents before children, though the llm came first. */
    assert_int_equal(find_event(&k, 0x14), 0);
    assert_int_equal(find_event(&k, 0x16), 1);
    assert_int_equal(counters(b).settled_by_root, 2);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* Child-first in separate add calls: the child waits until the root arrives. */
static void test_child_first(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_A, 3, 2, 0, LLM, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    assert_int_equal(add(b, TRACE_A, 2, 1, 0, WORKFLOW, T0 + SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    /* A plain span of a trace with LLM Obs spans is kept as a skeleton without a note. */
    assert_int_equal(add(b, TRACE_A, 1, 0, 0, HTTP, T0 + 2 * SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + 2 * SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    check_event(&k, 2, 0, TRACE_A, 2);
    check_event(&k, 3, 2, TRACE_A, 2);
    assert_int_equal(counters(b).settled_by_root, 2);
    assert_int_equal(counters(b).settled_by_deadline, 0);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* A plain span of a trace nobody said has LLM Obs spans is not kept. */
static void test_plain_trace_not_kept(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_B, 1, 0, 0, HTTP, T0), O2D_OK);
    assert_int_equal(counters(b).bytes_held, 0);
    drain_and_free(b, &k);
}

/* Distributed trace: the parent lives in another process, so the chain is settled at once. */
static void test_remote_parent(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_A, 5, 4, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 4, 0x99, 1, HTTP, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_B, 7, 0x98, 1, LLM, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    check_event(&k, 5, 0, TRACE_A, 5);
    check_event(&k, 7, 0, TRACE_B, 7);
    assert_int_equal(counters(b).settled_by_root, 2);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* A link that never comes: emitted at the deadline with the chain as far as known. */
static void test_deadline_missing_link(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    /* 3 (llm) -> 2 (workflow) -> 1 (never comes). */
    assert_int_equal(add(b, TRACE_A, 3, 2, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 2, 1, 0, WORKFLOW, T0 + SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + DEADLINE - 1, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    /* The deadline runs from each span's arrival: 3 goes, 2 waits one more second. */
    assert_int_equal(poll(b, T0 + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1);
    check_event(&k, 3, 2, TRACE_A, 2);
    assert_true(counters(b).bytes_held > 0);
    assert_int_equal(poll(b, T0 + SEC + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    check_event(&k, 2, 0, TRACE_A, 2);
    struct llmobs_buffer_counters c = counters(b);
    assert_int_equal(c.settled_by_deadline, 2);
    assert_int_equal(c.settled_by_root, 0);
    assert_int_equal(c.spans_held, 0);
    /* Nothing waits and the skeleton is older than the deadline: the trace is gone. */
    assert_int_equal(c.bytes_held, 0);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* Log records before their span are joined when it comes; after it was written they are
 * unmatched; for a span that never comes they are unmatched at the deadline. */
static void test_logs(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add_log(b, TRACE_A, 5, "what is the capital of France", T0), O2D_OK);
    assert_int_equal(add_log(b, TRACE_A, 9, "never joined", T0), O2D_OK);
    assert_int_equal(counters(b).logs_joined, 0);
    assert_int_equal(add(b, TRACE_A, 5, 0, 0, LLM, T0 + SEC), O2D_OK);
    assert_int_equal(counters(b).logs_joined, 1);
    /* Held span: joined at once. */
    assert_int_equal(add(b, TRACE_A, 6, 1, 0, LLM, T0 + SEC), O2D_OK);
    assert_int_equal(add_log(b, TRACE_A, 6, "second", T0 + SEC), O2D_OK);
    assert_int_equal(counters(b).logs_joined, 2);

    assert_int_equal(poll(b, T0 + SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1);
    assert_non_null(strstr(k.ev[find_event(&k, 5)], "what is the capital of France"));
    /* After its span was written. */
    assert_int_equal(add_log(b, TRACE_A, 5, "too late", T0 + 2 * SEC), O2D_OK);
    assert_int_equal(counters(b).logs_unmatched, 1);

    assert_int_equal(poll(b, T0 + DEADLINE - 1, 0, &k), O2D_OK);
    assert_int_equal(counters(b).logs_unmatched, 1);
    assert_int_equal(poll(b, T0 + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(counters(b).logs_unmatched, 2);
    assert_int_equal(poll(b, T0 + SEC + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    assert_non_null(strstr(k.ev[find_event(&k, 6)], "second"));

    /* Malformed ids are refused. */
    OtlpLogRecord bad = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    assert_int_equal(llmobs_buffer_add_log(b, &bad, T0), O2D_ERR_INVALID);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* max_spans reached: the skeleton-only trace goes first, then the oldest trace with held
 * spans is decided early (forced_by_bound). */
static void test_bounds_spans(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(4, 1 << 20);
    struct sink k = {0};
    assert_int_equal(llmobs_buffer_note_trace(b, TRACE_S, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_S, 0x51, 0, 0, HTTP, T0), O2D_OK);   /* 1 */
    assert_int_equal(add(b, TRACE_A, 0xa1, 0xa0, 0, LLM, T0), O2D_OK); /* 2 */
    assert_int_equal(add(b, TRACE_B, 0xb1, 0xb0, 0, LLM, T0), O2D_OK); /* 3 */
    assert_int_equal(add(b, TRACE_B, 0xb2, 0xb1, 0, LLM, T0), O2D_OK); /* 4 */
    assert_int_equal(add(b, TRACE_C, 0xc1, 0xc0, 0, LLM, T0), O2D_OK); /* S goes */
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    assert_int_equal(counters(b).forced_by_bound, 0);
    assert_int_equal(add(b, TRACE_C, 0xc2, 0xc1, 0, LLM, T0), O2D_OK); /* A is decided */
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1);
    check_event(&k, 0xa1, 0, TRACE_A, 0xa1);
    assert_int_equal(counters(b).forced_by_bound, 1);
    assert_int_equal(counters(b).spans_held, 4);
    /* The rest settles when their roots come. */
    assert_int_equal(add(b, TRACE_B, 0xb0, 0, 0, HTTP, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    struct llmobs_buffer_counters c = counters(b);
    assert_int_equal(c.forced_by_bound + c.settled_by_root, k.n);
    check_event(&k, 0xb2, 0xb1, TRACE_B, 0xb1);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* At its bound the buffer decides the oldest trace that still has skeletons, however many
 * older traces only wait to be sent (make_room starts past those). A trace that was passed
 * over and gains a skeleton again is the oldest again. */
static void test_bounds_start_moves_back(void **state)
{
    (void)state;
    static const uint8_t TRACE_D[16] = {0xd0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t TRACE_E[16] = {0xe0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    struct llmobs_buffer *b = new_buffer(2, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_A, 0xa1, 0xa0, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_B, 0xb1, 0xb0, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_C, 0xc1, 0xc0, 0, LLM, T0), O2D_OK); /* A decided */
    assert_int_equal(add(b, TRACE_D, 0xd1, 0xd0, 0, LLM, T0), O2D_OK); /* B decided */
    /* A, its span waiting to be sent (no poll yet), gains a skeleton: C is decided (A is the
     * trace being added to) */
    assert_int_equal(add(b, TRACE_A, 0xa2, 0xa1, 0, LLM, T0), O2D_OK);
    /* the oldest trace with skeletons is A again, not D */
    assert_int_equal(add(b, TRACE_E, 0xe1, 0xe0, 0, LLM, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 4); /* a1, b1, c1, a2 */
    /* decided by the bound, its parent's skeleton gone with A's first decision */
    check_event(&k, 0xa2, 0, TRACE_A, 0xa2);
    assert_int_equal(counters(b).forced_by_bound, 4);
    assert_int_equal(counters(b).spans_held, 2); /* d1, e1 */
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* max_bytes reached: the oldest trace is decided early, nothing refused or lost. */
static void test_bounds_bytes(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_A, 0xa2, 0xa1, 0, LLM, T0), O2D_OK);
    size_t one = counters(b).bytes_held;
    llmobs_buffer_free(b);

    b = new_buffer(1000, one + one / 2);
    assert_int_equal(add(b, TRACE_A, 0xa2, 0xa1, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_B, 0xb2, 0xb1, 0, LLM, T0 + 1), O2D_OK);
    assert_int_equal(poll(b, T0 + 1, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1);
    check_event(&k, 0xa2, 0, TRACE_A, 0xa2);
    assert_int_equal(counters(b).forced_by_bound, 1);
    assert_int_equal(counters(b).spans_held, 1);
    assert_true(counters(b).bytes_held <= one + one / 2);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* A sustained overload: traces whose spans all wait (their roots never come) keep arriving,
 * some with skeletons only, and the sender takes what a poll releases. The bytes held never
 * pass max_bytes by more than the span being added, the bound decides spans early (counted),
 * and nothing is lost: every span comes out, parents as far as known. */
static void test_bounds_bytes_sustained(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_A, 2, 1, 0, LLM, T0), O2D_OK);
    size_t one = counters(b).bytes_held;
    llmobs_buffer_free(b);

    size_t max = 8 * one;
    b = new_buffer(100000, max);
    int n = 0;
    for (int i = 0; i < 200; i++) {
        uint8_t tr[16] = {0};
        tr[0] = (uint8_t)(i + 1);
        tr[15] = 7;
        assert_int_equal(llmobs_buffer_note_trace(b, tr, T0 + i), O2D_OK);
        /* an LLM span under a parent that never comes, and a plain span beside it */
        assert_int_equal(add(b, tr, 2, 1, 0, LLM, T0 + i), O2D_OK);
        assert_int_equal(add(b, tr, 3, 1, 0, HTTP, T0 + i), O2D_OK);
        n++;
        assert_true(counters(b).bytes_held <= max + one);
        assert_int_equal(poll(b, T0 + i, 0, &k), O2D_OK);
        assert_true(counters(b).bytes_held <= max);
    }
    assert_true(counters(b).forced_by_bound > 0);
    assert_int_equal(poll(b, T0 + DEADLINE + 1000, 1, &k), O2D_OK);
    assert_int_equal(k.n, n);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* Parent links that loop (hostile input) do not hang: the spans wait for the deadline. */
static void test_parent_cycle(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_A, 1, 2, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 2, 1, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 7, 7, 0, LLM, T0), O2D_OK); /* its own parent */
    /* 6 (llm) -> 3 -> 4 -> 5 -> 4: a loop above, not through the span. */
    assert_int_equal(add(b, TRACE_A, 3, 4, 0, HTTP, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 4, 5, 0, HTTP, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 5, 4, 0, HTTP, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 6, 3, 0, LLM, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    assert_int_equal(poll(b, T0 + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(k.n, 4);
    check_event(&k, 1, 2, TRACE_A, 2);
    check_event(&k, 2, 1, TRACE_A, 1);
    check_event(&k, 7, 0, TRACE_A, 7);
    check_event(&k, 6, 0, TRACE_A, 6);
    assert_int_equal(counters(b).settled_by_deadline, 4);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* emit fails: the event stays and goes out with the next poll. */
static void test_emit_error_keeps_event(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    assert_int_equal(add(b, TRACE_A, 1, 0, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 2, 1, 0, LLM, T0), O2D_OK);
    k.fail = 1;
    assert_int_equal(poll(b, T0, 0, &k), O2D_ERR_BUSY);
    assert_int_equal(counters(b).spans_held, 2);
    k.fail = 0;
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    check_event(&k, 2, 1, TRACE_A, 1);
    assert_int_equal(counters(b).events_emitted, 2);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* One scenario with everything: notes, logs before and after, child-first, a bound. */
static void scenario(struct llmobs_buffer *b, struct llmobs_span **sp, struct sink *k)
{
    struct llmobs_ids ids;
    (void)llmobs_buffer_note_trace(b, TRACE_A, T0);
    (void)add_log(b, TRACE_A, 3, "before", T0);
    (void)add_log(b, TRACE_A, 3, "before again", T0);
    (void)add(b, TRACE_A, 2, 1, 0, HTTP, T0);
    ids = ids_of(TRACE_A, 3, 2, 0);
    (void)llmobs_buffer_add_span(b, &ids, sp[0], T0);
    ids = ids_of(TRACE_A, 4, 3, 0);
    (void)llmobs_buffer_add_span(b, &ids, sp[1], T0);
    (void)add_log(b, TRACE_A, 4, "joined at once", T0);
    (void)llmobs_buffer_poll(b, T0, 0, sink_emit, k);
    for (uint64_t i = 10; i < 20; i++) {
        (void)add(b, TRACE_B, i, i - 1, 0, HTTP, T0 + 1); /* not noted yet */
    }
    ids = ids_of(TRACE_B, 20, 19, 0);
    (void)llmobs_buffer_add_span(b, &ids, sp[2], T0 + 1);
    for (uint64_t i = 30; i < 40; i++) {
        (void)add(b, TRACE_B, i, i - 1, 0, HTTP, T0 + 1); /* skeletons now */
    }
    (void)add(b, TRACE_A, 1, 0, 0, HTTP, T0 + 2);
    (void)llmobs_buffer_poll(b, T0 + 2, 0, sink_emit, k);
    (void)add_log(b, TRACE_A, 3, "after", T0 + 3);
    ids = ids_of(TRACE_C, 50, 0, 0);
    (void)llmobs_buffer_add_span(b, &ids, sp[3], T0 + 3);
    (void)llmobs_buffer_poll(b, T0 + DEADLINE + 2, 0, sink_emit, k);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct llmobs_buffer_config cfg = {
        .deadline_ns = DEADLINE,
        .max_spans = 12,
        .max_bytes = 1 << 20,
        .max_event_size = 5000000,
    };
    int completed = 0;
    for (long n = 0; n < 100000 && !completed; n++) {
        struct llmobs_span *sp[4] = {
            build(TRACE_A, 3, 2, WORKFLOW),
            build(TRACE_A, 4, 3, LLM),
            build(TRACE_B, 20, 19, LLM),
            build(TRACE_C, 50, 0, LLM),
        };
        struct sink k = {0};
        struct llmobs_buffer *b = NULL;
        o2d_alloc_fail_after(n);
        if (llmobs_buffer_new(&b, &cfg) != O2D_OK) {
            o2d_alloc_fail_after(-1);
            for (int i = 0; i < 4; i++) {
                llmobs_span_free(sp[i]);
            }
            continue;
        }
        scenario(b, sp, &k);
        completed = o2d_alloc_failures() == 0;
        o2d_alloc_fail_after(-1);
        /* Whatever failed on the way, a forced poll writes every span still held and leaves
         * nothing accounted. */
        size_t held = counters(b).spans_held;
        size_t before = (size_t)k.n;
        assert_int_equal(poll(b, T0 + DEADLINE + 3, 1, &k), O2D_OK);
        assert_int_equal((size_t)k.n, before + held);
        if (completed) {
            assert_int_equal(k.n, 4);
            struct llmobs_buffer_counters c = counters(b);
            assert_int_equal(c.logs_joined, 3);
            assert_int_equal(c.logs_unmatched, 1);
        }
        drain_and_free(b, &k);
    }
    assert_true(completed);
}

/* Many traces and a long chain: the trace table and the span maps grow. */
static void test_growth(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(100000, 64 << 20);
    struct sink k = {0};
    uint8_t trace[16];
    memcpy(trace, TRACE_A, 16);
    /* 300 traces, each a 40-span chain (plain spans, child first) under a workflow, with
     * the llm at the bottom. */
    for (int t = 0; t < 300; t++) {
        trace[0] = (uint8_t)t;
        trace[1] = (uint8_t)(t >> 8);
        assert_int_equal(add(b, trace, 100, 99, 0, LLM, T0), O2D_OK);
        for (uint64_t i = 99; i > 60; i--) {
            assert_int_equal(add(b, trace, i, i - 1, 0, HTTP, T0), O2D_OK);
        }
        assert_int_equal(add(b, trace, 60, 0, 0, WORKFLOW, T0), O2D_OK);
        if (t % 100 == 99) {
            assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
            assert_int_equal(k.n, 2 * 100);
            for (int i = 0; i < k.n; i += 2) {
                /* the workflow first: parents leave before their children */
                json_t *wf = event_json(&k, i), *llm = event_json(&k, i + 1);
                assert_string_equal(json_string_value(json_object_get(llm, "parent_id")), "60");
                assert_string_equal(json_string_value(json_object_get(llm, "trace_id")),
                                    json_string_value(json_object_get(wf, "trace_id")));
                json_decref(llm);
                json_decref(wf);
            }
            sink_clear(&k);
        }
    }
    assert_int_equal(counters(b).settled_by_root, 600);
    drain_and_free(b, &k);
}

/* Same inputs, same bytes out. */
static void test_deterministic(void **state)
{
    (void)state;
    struct sink k1 = {0}, k2 = {0};
    struct sink *ks[2] = {&k1, &k2};
    for (int r = 0; r < 2; r++) {
        struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
        assert_int_equal(add(b, TRACE_B, 0x22, 0x21, 0, LLM, T0), O2D_OK);
        assert_int_equal(add(b, TRACE_A, 0x12, 0x11, 0, LLM, T0), O2D_OK);
        assert_int_equal(add(b, TRACE_A, 0x11, 0, 0, WORKFLOW, T0), O2D_OK);
        assert_int_equal(add(b, TRACE_B, 0x21, 0x20, 1, WORKFLOW, T0), O2D_OK);
        assert_int_equal(poll(b, T0, 0, ks[r]), O2D_OK);
        assert_int_equal(poll(b, T0, 1, ks[r]), O2D_OK);
        llmobs_buffer_free(b);
    }
    assert_int_equal(k1.n, 4);
    assert_int_equal(k2.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(k1.ev[i], k2.ev[i]);
    }
    /* Traces by first seen (B), then parents before children. */
    assert_int_equal(find_event(&k1, 0x21), 0);
    assert_int_equal(find_event(&k1, 0x22), 1);
    assert_int_equal(find_event(&k1, 0x11), 2);
    assert_int_equal(find_event(&k1, 0x12), 3);
    check_event(&k1, 0x22, 0x21, TRACE_B, 0x21);
    check_event(&k1, 0x12, 0x11, TRACE_A, 0x11);
    sink_clear(&k1);
    sink_clear(&k2);
}

/* llmobs_buffer_poll_buf: each event in its buffer after `front` bytes the emitter owns;
 * an emitter that takes the storage gets the same events as one that copies. */
struct take_sink {
    struct sink k;
    size_t front;
    int taken;
};

static int take_emit(void *ctx, struct o2d_buf *out, size_t front)
{
    struct take_sink *t = ctx;
    assert_int_equal(front, t->front);
    assert_true(out->len >= front);
    memset(out->data, 0xa5, front); /* the front is the emitter's to write */
    int rv = sink_emit(&t->k, out->data + front, out->len - front);
    if (rv == O2D_OK && t->k.n % 2 == 0) {
        size_t len;
        uint8_t *p = o2d_buf_take(out, &len); /* every other one kept, as an item adopts it */
        assert_non_null(p);
        o2d_free(p);
        t->taken++;
    }
    return rv;
}

static void test_poll_buf(void **state)
{
    (void)state;
    struct sink k1 = {0};
    struct take_sink k2 = {.front = 56};
    for (int r = 0; r < 2; r++) {
        struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
        assert_int_equal(add(b, TRACE_B, 0x22, 0x21, 0, LLM, T0), O2D_OK);
        assert_int_equal(add(b, TRACE_A, 0x12, 0x11, 0, LLM, T0), O2D_OK);
        assert_int_equal(add(b, TRACE_A, 0x11, 0, 0, WORKFLOW, T0), O2D_OK);
        assert_int_equal(add(b, TRACE_B, 0x21, 0x20, 1, WORKFLOW, T0), O2D_OK);
        assert_int_equal(add(b, TRACE_A, 0x13, 0x11, 0, LLM, T0), O2D_OK);
        if (r == 0) {
            assert_int_equal(poll(b, T0, 1, &k1), O2D_OK);
        } else {
            assert_int_equal(llmobs_buffer_poll_buf(b, T0, 1, k2.front, take_emit, &k2), O2D_OK);
        }
        llmobs_buffer_free(b);
    }
    assert_int_equal(k1.n, 5);
    assert_int_equal(k2.k.n, 5);
    assert_int_equal(k2.taken, 2);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(k1.ev[i], k2.k.ev[i]);
    }
    sink_clear(&k1);
    sink_clear(&k2.k);
}

/* A request's spans in one llmobs_buffer_add_spans call, traces interleaved and child-first,
 * give what one llmobs_buffer_add_span call a span gives; a plain trace nobody noted is not
 * kept; the spans after an invalid one are taken and freed, not added. */
static void test_add_spans(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    struct llmobs_ids ids[7] = {
        ids_of(TRACE_A, 3, 2, 0), ids_of(TRACE_A, 2, 1, 0), ids_of(TRACE_B, 6, 0, 0),
        ids_of(TRACE_C, 9, 0, 0), ids_of(TRACE_B, 7, 6, 0), ids_of(TRACE_A, 1, 0, 0),
        ids_of(TRACE_A, 4, 1, 0),
    };
    struct llmobs_span *sp[7] = {
        build(TRACE_A, 3, 2, LLM), NULL, NULL, NULL, build(TRACE_B, 7, 6, LLM), NULL, NULL,
    };
    assert_int_equal(llmobs_buffer_note_trace(b, TRACE_A, T0), O2D_OK);
    assert_int_equal(llmobs_buffer_add_spans(b, ids, sp, 7, T0), O2D_OK);
    for (int i = 0; i < 7; i++) {
        assert_null(sp[i]);
    }
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1); /* B's root 6 was not kept: B was not noted before it came */
    check_event(&k, 3, 0, TRACE_A, 3);
    assert_int_equal(poll(b, T0 + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    check_event(&k, 7, 0, TRACE_B, 7);
    assert_int_equal(counters(b).settled_by_root, 1);
    assert_int_equal(counters(b).settled_by_deadline, 1);
    sink_clear(&k);

    struct llmobs_ids bad[3] = {ids_of(TRACE_A, 0x10, 0, 0), ids_of(TRACE_A, 0, 0, 0),
                                ids_of(TRACE_A, 0x11, 0x10, 0)};
    struct llmobs_span *bsp[3] = {build(TRACE_A, 0x10, 0, LLM), build(TRACE_A, 1, 0, LLM),
                                  build(TRACE_A, 0x11, 0x10, LLM)};
    assert_int_equal(llmobs_buffer_add_spans(b, bad, bsp, 3, T0 + DEADLINE), O2D_ERR_INVALID);
    for (int i = 0; i < 3; i++) {
        assert_null(bsp[i]);
    }
    assert_int_equal(counters(b).spans_held, 1);
    drain_and_free(b, &k);
}

/* A poll visits only the traces that are due, but in first-seen order, whichever fell due
 * first; a trace left by an emit error is due again at the next poll. */
static void test_due_order(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    /* A first seen, its missing link's deadline later than B's. */
    assert_int_equal(add(b, TRACE_A, 3, 2, 0, LLM, T0 + 2 * SEC), O2D_OK);
    assert_int_equal(add(b, TRACE_B, 5, 4, 0, LLM, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_C, 7, 6, 0, LLM, T0 + 5 * SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    k.fail = 1;
    assert_int_equal(poll(b, T0 + 2 * SEC + DEADLINE, 0, &k), O2D_ERR_BUSY);
    k.fail = 0;
    assert_int_equal(poll(b, T0 + 2 * SEC + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    assert_int_equal(find_event(&k, 3), 0);
    assert_int_equal(find_event(&k, 5), 1);
    assert_int_equal(poll(b, T0 + 5 * SEC + DEADLINE - 1, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    assert_int_equal(poll(b, T0 + 5 * SEC + DEADLINE, 0, &k), O2D_OK);
    assert_int_equal(k.n, 3);
    assert_int_equal(counters(b).settled_by_deadline, 3);
    sink_clear(&k);
    drain_and_free(b, &k);
}

#define WINDOW (3 * SEC)

/* The messages of meta.<io> of the event for span (a JSON array, owned), or NULL. */
static json_t *messages_of(const struct sink *k, uint64_t span, const char *io)
{
    json_t *j = event_json(k, find_event(k, span));
    json_t *m = json_object_get(json_object_get(json_object_get(j, "meta"), io), "messages");
    json_incref(m);
    json_decref(j);
    return m;
}

/* Log records 0.1 s and 1 s after their span join it: the span waits for its output record
 * (gen_ai.choice), then leaves at once; one 3 s past the window finds it written. */
static void test_log_join_window(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer_window(1000, 1 << 20, WINDOW);
    struct sink k = {0};
    assert_int_equal(add_kv(b, TRACE_A, 1, 0, LLMOBS_LLM, NO_CONTENT, 2, T0), O2D_OK);
    assert_int_equal(counters(b).held_for_logs, 1);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0); /* its chain is settled, its content is not */
    assert_int_equal(add_log(b, TRACE_A, 1, "hi", T0 + SEC / 10), O2D_OK);
    assert_int_equal(poll(b, T0 + SEC / 10, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0); /* the input alone: the output may still come */
    assert_int_equal(add_event(b, TRACE_A, 1, "gen_ai.choice", "hello", T0 + SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1);
    json_t *in = messages_of(&k, 1, "input"), *out = messages_of(&k, 1, "output");
    assert_string_equal(json_string_value(json_object_get(json_array_get(in, 0), "content")), "hi");
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "role")),
                        "assistant");
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "content")),
                        "hello");
    json_decref(in);
    json_decref(out);
    assert_int_equal(add_event(b, TRACE_A, 1, "gen_ai.choice", "late", T0 + WINDOW + 3 * SEC),
                     O2D_OK);
    struct llmobs_buffer_counters c = counters(b);
    assert_int_equal(c.logs_joined, 2);
    assert_int_equal(c.hold_expired, 0);
    assert_int_equal(c.logs_unmatched, 1);
    assert_int_equal(c.logs_unmatched_late, 1);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* No record comes: the span leaves at the window's end, without content, counted; records
 * after it are unmatched (span_written), one for a span that never comes is no_span. */
static void test_log_window_expires(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer_window(1000, 1 << 20, WINDOW);
    struct sink k = {0};
    assert_int_equal(add_kv(b, TRACE_A, 1, 0, LLMOBS_LLM, NO_CONTENT, 2, T0), O2D_OK);
    assert_int_equal(poll(b, T0 + WINDOW - 1, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    assert_int_equal(poll(b, T0 + WINDOW, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1);
    json_t *j = event_json(&k, 0);
    assert_null(json_object_get(json_object_get(j, "meta"), "input"));
    json_decref(j);
    assert_int_equal(counters(b).hold_expired, 1);
    assert_int_equal(add_log(b, TRACE_A, 1, "hi", T0 + WINDOW + 3 * SEC), O2D_OK);
    assert_int_equal(add_log(b, TRACE_A, 7, "nobody", T0 + WINDOW + 3 * SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + WINDOW + 3 * SEC + DEADLINE, 0, &k), O2D_OK);
    struct llmobs_buffer_counters c = counters(b);
    assert_int_equal(c.logs_unmatched_late, 1);
    assert_int_equal(c.logs_unmatched_no_span, 1);
    assert_int_equal(c.logs_unmatched, 2);
    assert_int_equal(c.spans_held, 0);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* Spans that have their content, or whose instrumentation does not send events, or a
 * failed call's span whose input came, are not held; log records that came first count. */
static void test_log_window_not_held(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer_window(1000, 1 << 20, WINDOW);
    struct sink k = {0};
    static const char *const with_content[][2] = {
        {"gen_ai.operation.name", "chat"},
        {"gen_ai.system", "openai"},
        {"gen_ai.input.messages", "[{\"role\":\"user\",\"content\":\"hi\"}]"},
    };
    static const char *const openinference[][2] = {{"openinference.span.kind", "LLM"}};
    assert_int_equal(add_kv(b, TRACE_A, 1, 0, LLMOBS_LLM, with_content, 3, T0), O2D_OK);
    assert_int_equal(add_kv(b, TRACE_B, 2, 0, LLMOBS_LLM, openinference, 1, T0), O2D_OK);
    /* both records first, then the span: nothing left to wait for */
    assert_int_equal(add_log(b, TRACE_C, 3, "hi", T0), O2D_OK);
    assert_int_equal(add_event(b, TRACE_C, 3, "gen_ai.choice", "hello", T0), O2D_OK);
    assert_int_equal(add_kv(b, TRACE_C, 3, 0, LLMOBS_LLM, NO_CONTENT, 2, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 3);
    assert_int_equal(counters(b).held_for_logs, 0);
    assert_int_equal(counters(b).logs_joined, 2);
    sink_clear(&k);
    drain_and_free(b, &k);
    /* a window of 0 holds nothing */
    b = new_buffer_window(1000, 1 << 20, 0);
    assert_int_equal(add_kv(b, TRACE_A, 1, 0, LLMOBS_LLM, NO_CONTENT, 2, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* A span held for its records holds its LLM Obs children back (parents first); a forced
 * poll (shutdown) lets everything go, parents first. */
static void test_children_wait_for_held_parent(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer_window(1000, 1 << 20, WINDOW);
    struct sink k = {0};
    static const char *const tool[][2] = {{"gen_ai.operation.name", "execute_tool"}};
    assert_int_equal(add_kv(b, TRACE_A, 2, 1, LLMOBS_TOOL, tool, 1, T0), O2D_OK);
    assert_int_equal(add_kv(b, TRACE_A, 1, 0, LLMOBS_LLM, NO_CONTENT, 2, T0), O2D_OK);
    assert_int_equal(poll(b, T0 + SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 0);
    assert_int_equal(add_event(b, TRACE_A, 1, "gen_ai.choice", "x", T0 + 2 * SEC), O2D_OK);
    assert_int_equal(poll(b, T0 + 2 * SEC, 0, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    assert_int_equal(find_event(&k, 1), 0);
    assert_int_equal(find_event(&k, 2), 1);
    check_event(&k, 2, 1, TRACE_A, 1);
    sink_clear(&k);
    assert_int_equal(add_kv(b, TRACE_B, 5, 4, LLMOBS_TOOL, tool, 1, T0), O2D_OK);
    assert_int_equal(add_kv(b, TRACE_B, 4, 0, LLMOBS_LLM, NO_CONTENT, 2, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 1, &k), O2D_OK);
    assert_int_equal(k.n, 2);
    assert_int_equal(find_event(&k, 4), 0);
    assert_int_equal(find_event(&k, 5), 1);
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* An LLM Obs span without a session takes its nearest LLM Obs ancestor's that has one, even
 * after that ancestor was written and through plain spans (dd-trace-py _get_session_id);
 * its own session wins. */
static void test_session_inherited(void **state)
{
    (void)state;
    struct llmobs_buffer *b = new_buffer(1000, 1 << 20);
    struct sink k = {0};
    static const char *const agent[][2] = {{"gen_ai.operation.name", "invoke_agent"},
                                           {"gen_ai.conversation.id", "conv-1"}};
    static const char *const wf[][2] = {{"traceloop.span.kind", "workflow"}};
    static const char *const own[][2] = {{"gen_ai.operation.name", "chat"}, {"session.id", "mine"}};
    assert_int_equal(add_kv(b, TRACE_A, 1, 0, LLMOBS_AGENT, agent, 2, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 1); /* the agent is written before its children come */
    assert_int_equal(add_kv(b, TRACE_A, 2, 1, LLMOBS_WORKFLOW, wf, 1, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 3, 2, 0, HTTP, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_A, 4, 3, 0, LLM, T0), O2D_OK);
    assert_int_equal(add_kv(b, TRACE_A, 5, 2, LLMOBS_LLM, own, 2, T0), O2D_OK);
    assert_int_equal(add(b, TRACE_B, 6, 0, 0, LLM, T0), O2D_OK);
    assert_int_equal(poll(b, T0, 0, &k), O2D_OK);
    assert_int_equal(k.n, 5);
    static const struct {
        uint64_t span;
        const char *session;
    } want[] = {{1, "conv-1"}, {2, "conv-1"}, {4, "conv-1"}, {5, "mine"}, {6, NULL}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *j = event_json(&k, find_event(&k, want[i].span));
        const char *got = json_string_value(json_object_get(j, "session_id"));
        char tag[64] = "";
        size_t n_tags = 0, idx;
        json_t *t, *tags = json_object_get(j, "tags");
        const char *prev = "";
        json_array_foreach(tags, idx, t)
        {
            const char *v = json_string_value(t);
            assert_true(strcmp(prev, v) < 0); /* still sorted */
            prev = v;
            if (strncmp(v, "session_id:", 11) == 0) {
                snprintf(tag, sizeof(tag), "%s", v + 11);
                n_tags++;
            }
        }
        if (want[i].session == NULL) {
            assert_null(got);
            assert_int_equal(n_tags, 0);
        } else {
            assert_non_null(got);
            assert_string_equal(got, want[i].session);
            assert_int_equal(n_tags, 1);
            assert_string_equal(tag, want[i].session);
        }
        json_decref(j);
    }
    sink_clear(&k);
    drain_and_free(b, &k);
}

/* Allocation failure at every step of a held span with a session ancestor and its records:
 * a forced poll still writes every span held and leaves nothing accounted. */
static void test_hold_alloc_failures(void **state)
{
    (void)state;
    static const char *const agent[][2] = {{"gen_ai.operation.name", "invoke_agent"},
                                           {"gen_ai.conversation.id", "conv-1"}};
    int completed = 0;
    for (long n = 0; n < 100000 && !completed; n++) {
        struct llmobs_span *a = build_kv(TRACE_A, 1, 0, LLMOBS_AGENT, agent, 2);
        struct llmobs_span *l = build_kv(TRACE_A, 2, 1, LLMOBS_LLM, NO_CONTENT, 2);
        struct llmobs_ids ia = ids_of(TRACE_A, 1, 0, 0), il = ids_of(TRACE_A, 2, 1, 0);
        struct sink k = {0};
        struct llmobs_buffer *b = NULL;
        struct llmobs_buffer_config cfg = {.deadline_ns = DEADLINE,
                                           .max_spans = 100,
                                           .max_bytes = 1 << 20,
                                           .max_event_size = 5000000,
                                           .log_window_ns = WINDOW};
        o2d_alloc_fail_after(n);
        if (llmobs_buffer_new(&b, &cfg) != O2D_OK) {
            o2d_alloc_fail_after(-1);
            llmobs_span_free(a);
            llmobs_span_free(l);
            continue;
        }
        (void)llmobs_buffer_add_span(b, &il, l, T0);
        (void)llmobs_buffer_add_span(b, &ia, a, T0);
        (void)poll(b, T0, 0, &k);
        (void)add_log(b, TRACE_A, 2, "q", T0 + SEC);
        (void)add_event(b, TRACE_A, 2, "gen_ai.choice", "a", T0 + SEC);
        (void)poll(b, T0 + SEC, 0, &k);
        completed = o2d_alloc_failures() == 0;
        o2d_alloc_fail_after(-1);
        size_t held = counters(b).spans_held;
        size_t before = (size_t)k.n;
        assert_int_equal(poll(b, T0 + DEADLINE + WINDOW, 1, &k), O2D_OK);
        assert_int_equal((size_t)k.n, before + held);
        if (completed) {
            assert_int_equal(k.n, 2);
            assert_int_equal(find_event(&k, 1), 0);
            json_t *in = messages_of(&k, 2, "input");
            assert_int_equal(json_array_size(in), 1);
            json_decref(in);
            json_t *j = event_json(&k, 1);
            assert_string_equal(json_string_value(json_object_get(j, "session_id")), "conv-1");
            json_decref(j);
        }
        drain_and_free(b, &k);
    }
    assert_true(completed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_id_vector),
        cmocka_unit_test(test_poll_buf),
        cmocka_unit_test(test_http_root_two_llm_calls),
        cmocka_unit_test(test_fastapi_langchain),
        cmocka_unit_test(test_child_first),
        cmocka_unit_test(test_plain_trace_not_kept),
        cmocka_unit_test(test_remote_parent),
        cmocka_unit_test(test_deadline_missing_link),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_bounds_spans),
        cmocka_unit_test(test_bounds_start_moves_back),
        cmocka_unit_test(test_bounds_bytes),
        cmocka_unit_test(test_bounds_bytes_sustained),
        cmocka_unit_test(test_parent_cycle),
        cmocka_unit_test(test_emit_error_keeps_event),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_add_spans),
        cmocka_unit_test(test_due_order),
        cmocka_unit_test(test_log_join_window),
        cmocka_unit_test(test_log_window_expires),
        cmocka_unit_test(test_log_window_not_held),
        cmocka_unit_test(test_children_wait_for_held_parent),
        cmocka_unit_test(test_session_inherited),
        cmocka_unit_test(test_hold_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
