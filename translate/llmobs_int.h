/*
 * llmobs_int.h: what llmobs.c and llmobs_messages.c share; nothing outside translate/llmobs*.c
 * and tests/unit/test_llmobs*.c includes it.
 *
 * An LLM Obs span is held as a jansson tree until it is written. Strings go into the tree
 * unchecked (json_stringn_nocheck): invalid UTF-8 stays as it came and is repaired once, when
 * llmobs_span_write() escapes it with o2d_json_append_string(). Allocation failures inside
 * jansson are not returned one by one: they set ctx->nomem, which the entry points turn into
 * O2D_ERR_NOMEM.
 */
#ifndef LLMOBS_INT_H
#define LLMOBS_INT_H

#include <stddef.h>

#include <jansson.h>

#include "llmobs.h"

/* Indexed attribute families (gen_ai.prompt.<i>, llm.input_messages.<i>, ...) past this
 * index are ignored: a single attribute must not make us allocate a huge sparse array. */
#define LLMOBS_MAX_INDEX 1024
/* Nesting written or converted past this depth becomes null. */
#define LLMOBS_MAX_DEPTH 64

struct llmobs_ctx {
    json_t *errors; /* collection_errors: array of strings, each at most once */
    int nomem;
    size_t bytes; /* rough size of what was added, for llmobs_span_size() */
};

/* ---- llmobs_messages.c: helpers for jansson values ---- */

/* Records a collection error (e.g. "otel_warning_input_malformed") once. */
void llmobs_error(struct llmobs_ctx *c, const char *name);
/* A string value (copied, not checked for UTF-8); NULL (and nomem) on failure. */
json_t *llmobs_str(struct llmobs_ctx *c, const char *s, size_t n);
/* obj[key] = v, taking v (NULL v is a no-op). */
void llmobs_set(struct llmobs_ctx *c, json_t *obj, const char *key, json_t *v);
/* arr += v, taking v (NULL v is a no-op). */
void llmobs_push(struct llmobs_ctx *c, json_t *arr, json_t *v);
/* An OTLP value as JSON (kvlists become objects, bytes a hex string). NULL if not set. */
json_t *llmobs_anyvalue(struct llmobs_ctx *c, const OtlpAnyValue *v, int depth);
/* Parses JSON text (invalid UTF-8 replaced by U+FFFD first); NULL when it is not JSON. */
json_t *llmobs_parse(struct llmobs_ctx *c, const char *s, size_t n);
/* A value that is either JSON text in a string or already structured; NULL if malformed. */
json_t *llmobs_value_json(struct llmobs_ctx *c, const OtlpAnyValue *v);
/* A string of the value: strings as they are, anything else as compact JSON text. */
json_t *llmobs_value_string(struct llmobs_ctx *c, const json_t *v);

/* ---- llmobs_messages.c: messages ---- */

/* One message in any shape we read (OTel GenAI parts {role, parts[]}, OpenAI-like {role,
 * content, tool_calls, tool_call_id}, ≤1.36 event bodies) -> an LLM Obs Message
 * {role, content, tool_calls, tool_results}. role_default is used when it has none. NULL and
 * otel_warning_message_malformed when m is not an object. */
json_t *llmobs_message(struct llmobs_ctx *c, const json_t *m, const char *role_default);
/* Appends every message of JSON array `msgs` to `out`; `err` is recorded when msgs is not an
 * array. */
void llmobs_messages_append(struct llmobs_ctx *c, const json_t *msgs, json_t *out, const char *err);
/* gen_ai.system_instructions (an array of parts, or a plain string) -> a system message. */
json_t *llmobs_system_message(struct llmobs_ctx *c, const json_t *parts);
/* gen_ai.tool.definitions / OpenAI tools -> [{name, description, schema}]. */
json_t *llmobs_tool_definition(struct llmobs_ctx *c, const json_t *d);
/* Content of the last message of `msgs` with non-empty content ("" if none). */
const char *llmobs_last_content(const json_t *msgs);

/* Writes any jansson value as JSON with o2d_json_append_string for every string. */
int llmobs_json_write(struct o2d_buf *b, const json_t *v, int depth);

#endif
