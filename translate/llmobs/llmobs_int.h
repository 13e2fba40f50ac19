/*
 * llmobs_int.h: what llmobs.c and llmobs_messages.c share; nothing outside translate/llmobs*.c
 * and tests/unit/test_llmobs*.c includes it.
 *
 * An LLM Obs event is written as JSON text while the span is built: jansson only parses the
 * JSON the instrumentations put into attributes (gen_ai.input.messages, tool arguments, ...),
 * and the parsed value is walked and written out directly. Strings are escaped with
 * o2d_json_append_string() as they are written, which also repairs invalid UTF-8. Allocation
 * failures are not returned one by one: they set ctx->nomem, which the entry points turn into
 * O2D_ERR_NOMEM.
 *
 * Writer depths: nested values are cut to null past LLMOBS_MAX_DEPTH counted from the members
 * of the event's meta object (meta.input is at depth 0, its messages at 1, a message at 2),
 * as they were when the event was a tree serialised at the end.
 */
#ifndef LLMOBS_INT_H
#define LLMOBS_INT_H

#include <stddef.h>

#include <jansson.h>

#include "llmobs.h"

/* Indexed attribute families (gen_ai.prompt.<i>, llm.input_messages.<i>, ...) past this
 * index are ignored: a single attribute must not make us allocate a huge sparse array. */
#define LLMOBS_MAX_INDEX 1024
/* meta.tool_definitions entries written, at most: OpenAI's limit of tools per request
 * (128); entries past it are left out. */
#define LLMOBS_MAX_TOOL_DEFS 128
/* Nesting written or converted past this depth becomes null. */
#define LLMOBS_MAX_DEPTH 64
/* More than the distinct collection error names we record (13). */
#define LLMOBS_MAX_ERRORS 16

/* collection_errors: static names, each at most once, in the order first met. */
struct llmobs_errors {
    const char *name[LLMOBS_MAX_ERRORS];
    size_t n;
};

/* The LLM Obs list members of one message, in the order each first appears. */
enum llmobs_msg_list { MSG_TOOL_CALLS, MSG_TOOL_RESULTS, MSG_IMAGE_PARTS, MSG_AUDIO_PARTS };

/* One message read from any input shape, ready to be written: content is raw text (escaped
 * when written), the lists hold their elements as JSON text separated by commas. The fast
 * readers (llmobs_messages_write_fast, llmobs_system_write_fast) keep the content escaped
 * instead (content_json): the inside of its JSON string, borrowed from the input while it is
 * one part that needed no escaping (cjson), else in content. */
struct llmobs_msg {
    const char *role; /* borrowed from the input value or static */
    struct o2d_buf content;
    int content_json;
    const char *cjson;
    size_t cjson_len;
    struct o2d_buf list[4];
    unsigned char order[4];
    size_t n_order;
};

struct llmobs_ctx {
    struct llmobs_errors *errors;
    int nomem;
    struct llmobs_msg msg;  /* reused for every message read */
    struct o2d_buf scratch; /* JSON text of a value that is written as a string */
    struct o2d_buf part[4]; /* llmobs_messages_write_fast: a tool part's id, name, value */
};

/* Tests only: 1 reads every message the general way (jansson values), so that the unit
 * tests can check that the fast readers write the same events. 0 in the collector. */
extern int llmobs_fast_off;

/* ---- llmobs_messages.c: context and jansson helpers ---- */

void llmobs_ctx_init(struct llmobs_ctx *c, struct llmobs_errors *errors);
void llmobs_ctx_cleanup(struct llmobs_ctx *c);
/* Records a collection error (e.g. "otel_warning_input_malformed", a static string) once. */
void llmobs_error(struct llmobs_ctx *c, const char *name);
/* Records an append's status (O2D_ERR_NOMEM or O2D_ERR_TOO_LARGE) as nomem. */
void llmobs_check(struct llmobs_ctx *c, int rv);

/* Input side only (values regrouped or converted before they are read): */
/* A string value (copied, not checked for UTF-8); NULL (and nomem) on failure. */
json_t *llmobs_str(struct llmobs_ctx *c, const char *s, size_t n);
/* obj[key] = v, taking v (NULL v is a no-op). */
void llmobs_set(struct llmobs_ctx *c, json_t *obj, const char *key, json_t *v);
/* arr += v, taking v (NULL v is a no-op). */
void llmobs_push(struct llmobs_ctx *c, json_t *arr, json_t *v);
/* An OTLP value as JSON (kvlists become objects, bytes a hex string). NULL if not set. */
json_t *llmobs_anyvalue(struct llmobs_ctx *c, const OtlpAnyValue *v, int depth);
/* Parses JSON text as json_loadb(JSON_DECODE_ANY | JSON_ALLOW_NUL) would after invalid UTF-8
 * is replaced by U+FFFD (o2d_json_in.h); NULL when it is not JSON (or nomem). */
json_t *llmobs_parse(struct llmobs_ctx *c, const char *s, size_t n);
/* A value that is either JSON text in a string or already structured; NULL if malformed. */
json_t *llmobs_value_json(struct llmobs_ctx *c, const OtlpAnyValue *v);

/* ---- llmobs_messages.c: writing ---- */

/* Writes any jansson value as JSON; `depth` is the writer depth of v (see above). */
int llmobs_json_write(struct o2d_buf *b, const json_t *v, int depth);
/* Writes an OTLP value as llmobs_anyvalue() + llmobs_json_write() would. Returns 0 (writing
 * nothing) when the value is not set. */
int llmobs_anyvalue_write(struct llmobs_ctx *c, struct o2d_buf *b, const OtlpAnyValue *v,
                          int depth);
/* Writes a JSON string of v: strings as they are, anything else as compact JSON text. */
void llmobs_value_string_write(struct llmobs_ctx *c, struct o2d_buf *b, const json_t *v);
/* Writes a JSON string of an OTLP value the same way; 0 (nothing written) when not set. */
int llmobs_value_text_write(struct llmobs_ctx *c, struct o2d_buf *b, const OtlpAnyValue *v);
/* Writes a double the way the event always has. */
int llmobs_real_write(struct o2d_buf *b, double d);

/* ---- llmobs_messages.c: messages ---- */

/* Reads one message in any shape we read (OTel GenAI parts {role, parts[]}, OpenAI-like
 * {role, content, tool_calls, tool_call_id}, <= 1.36 event bodies) into c->msg: an LLM Obs
 * Message {role, content, tool_calls, tool_results}. role_default is used when it has none.
 * 0 and otel_warning_message_malformed when m is not an object. */
int llmobs_msg_read(struct llmobs_ctx *c, const json_t *m, const char *role_default);
/* gen_ai.system_instructions (an array of parts, or a plain string) -> c->msg, role system;
 * 0 and otel_warning_input_malformed when it is neither. */
int llmobs_msg_read_system(struct llmobs_ctx *c, const json_t *parts, const char *text,
                           size_t text_len);
/* Writes c->msg as an element of a list: a comma first when *n > 0; counts it in *n. */
void llmobs_msg_write(struct llmobs_ctx *c, struct o2d_buf *b, size_t *n);
/* Content as it is written: present unless the message is all tool calls or results. */
int llmobs_msg_has_content(const struct llmobs_msg *m);
/* Writes every message of JSON array `msgs` as list elements; `err` is recorded when msgs is
 * not an array. */
void llmobs_messages_write(struct llmobs_ctx *c, const json_t *msgs, struct o2d_buf *b, size_t *n,
                           const char *err);
/* The common shape of gen_ai.input/output.messages, [{"role", "parts": [{"type": "text",
 * "content"} or {"type": "tool_call", "id", "name", "arguments": {...}} or {"type":
 * "tool_call_response", "id", "response"}], "finish_reason"}], written as
 * llmobs_messages_write(llmobs_parse(s)) would write it, in one pass and without jansson
 * values. Anything else (other keys or part types, a key twice, values that are not strings,
 * reals or nesting past 16 in arguments and responses, an empty array, bad UTF-8) returns 0
 * having written nothing and recorded nothing: read it the general way then. */
int llmobs_messages_write_fast(struct llmobs_ctx *c, const char *s, size_t n, struct o2d_buf *b,
                               size_t *count);
/* gen_ai.system_instructions text of the common shape, [{"type": "text", "content"}, ...],
 * read into c->msg as llmobs_msg_read_system(llmobs_parse(s)) would read it, without jansson
 * values (write it with llmobs_msg_write). Anything else (other keys or part types, no part,
 * bad UTF-8) returns 0 having recorded nothing: read it the general way then. */
int llmobs_system_read_fast(struct llmobs_ctx *c, const char *s, size_t n);
/* A tool call's arguments given as JSON text, appended to out as tool_call() writes them:
 * "{}" for empty text, an object as the general writer writes it, {"value": text} for text
 * that cannot be one. 0 (out as it was) when that is not certain (reals, a key twice, deep
 * nesting, text after the object...): read them the general way then. */
int llmobs_args_write_fast(struct llmobs_ctx *c, const char *s, size_t n, struct o2d_buf *out);
/* gen_ai.tool.definitions / OpenAI tools entry -> {name, description, schema}, as a list
 * element. */
void llmobs_tool_definition_write(struct llmobs_ctx *c, const json_t *d, struct o2d_buf *b,
                                  size_t *n);

/* ---- llmobs_vercel.c: Vercel AI SDK v4-v6 ai.* spans ---- */

/* The LLM Obs kind of a Vercel AI SDK span by its ai.operationId ("ai.generateText",
 * "ai.streamText.doStream", ...), or LLMOBS_NONE for other ids. */
enum llmobs_kind llmobs_vercel_kind(const char *operation_id);
/* A copy of a Vercel span whose first attributes are the OTel GenAI ones the builder maps. */
struct llmobs_vercel;
/* 1 and *out (owned by the caller) when s is a Vercel AI SDK span of one of those kinds; 0
 * (and *out NULL) otherwise, or on allocation failure (then c->nomem). Parses through c,
 * so the jansson values it makes die with the build's scratch; malformed ai.* content is
 * recorded in c's collection errors. The copy borrows s. */
int llmobs_vercel_rewrite(struct llmobs_ctx *c, const OtlpSpan *s, enum llmobs_kind kind,
                          struct llmobs_vercel **out);
const OtlpSpan *llmobs_vercel_span(const struct llmobs_vercel *v);
void llmobs_vercel_free(struct llmobs_vercel *v);

#endif
