/*
 * redact_json.c: LLM message contents. A message attribute holds JSON (gen_ai.input.messages
 * of OTel GenAI >= 1.37, the OpenAI-like arrays of older instrumentations, OpenInference's
 * input.value) or plain text (gen_ai.prompt of some SDKs, OpenInference's flattened
 * llm.input_messages.N.message.content). JSON is parsed (o2d_json_in, jansson values), its
 * string leaves redacted, and it is written back compact only when something changed; text
 * that is not JSON, or JSON nested deeper than we walk, is redacted as text. Patterns on
 * the raw JSON text would miss what JSON escapes ("\u0040" for '@') and could cut an escape
 * in two.
 *
 * drop_message_contents replaces every string leaf with a marker except those under the
 * keys that say what the message is (role, type, name, id, tool_call_id, finish_reason,
 * model, ...), so LLM Observability still shows the conversation's shape, the models and
 * the tools called; token counts are attributes of their own and never touched. Which keys
 * carry messages is what translate/llmobs reads (llmobs.c, llmobs_messages.c; OTel GenAI
 * semantic conventions v1.37+ gen-ai-input-messages.json, OpenInference semantic
 * conventions, OpenLLMetry's gen_ai.prompt.N.*).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_json_in.h"
#include "redact_int.h"

static const char *const message_keys[] = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.task.input",
    "gen_ai.task.output",
    "input.value",
    "output.value",
    "input.messages",
    "output.messages",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "llm.prompts",
    "tool.parameters",
};

/* Per-index families: the prefix, and a content leaf at the end of the key. */
static const char *const indexed_prefixes[] = {
    "gen_ai.prompt.",       "gen_ai.completion.",   "llm.input_messages.",
    "llm.output_messages.", "retrieval.documents.", "llm.prompts.",
};
static const char *const content_suffixes[] = {
    ".content", ".text", ".arguments", ".document.content", ".message_content.text",
};

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

int redact_is_message_key(const char *key)
{
    /* Every message key starts with one of these letters (gen_ai., input., llm., output.,
     * traceloop., tool., retrieval.): most keys are out after one test. */
    switch (key[0]) {
    case 'g':
    case 'i':
    case 'l':
    case 'o':
    case 't':
    case 'r':
        break;
    default:
        return 0;
    }
    for (size_t i = 0; i < sizeof(message_keys) / sizeof(message_keys[0]); i++) {
        if (strcmp(key, message_keys[i]) == 0) {
            return 1;
        }
    }
    size_t len = strlen(key);
    for (size_t i = 0; i < sizeof(indexed_prefixes) / sizeof(indexed_prefixes[0]); i++) {
        if (strncmp(key, indexed_prefixes[i], strlen(indexed_prefixes[i])) != 0) {
            continue;
        }
        for (size_t k = 0; k < sizeof(content_suffixes) / sizeof(content_suffixes[0]); k++) {
            if (ends_with(key, len, content_suffixes[k])) {
                return 1;
            }
        }
        /* llm.prompts.N holds the prompt text itself */
        return strncmp(key, "llm.prompts.", 12) == 0;
    }
    return 0;
}

int redact_is_structural_key(const char *key)
{
    static const char *const keep[] = {
        "role",  "type",       "name",     "id",          "tool_call_id", "finish_reason",
        "model", "mime_type",  "modality", "index",       "tool_name",    "call_id",
        "kind",  "media_type", "format",   "stop_reason",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        if (strcmp(key, keep[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Walks v: *changed set when a leaf was replaced. -1 too deep, else a status. */
static int walk(struct redact_run *run, json_t *v, int depth, int keep_leaf, int *changed)
{
    if (depth > REDACT_JSON_DEPTH) {
        return -1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            int keep = run->r->drop_message_contents && redact_is_structural_key(k);
            if (json_is_string(m)) {
                int rv = O2D_OK;
                const char *s = json_string_value(m);
                size_t n = json_string_length(m);
                if (run->r->drop_message_contents && !keep) {
                    if (n > 0) {
                        rv = json_string_setn(m, REDACT_CONTENT_MARK,
                                              sizeof(REDACT_CONTENT_MARK) - 1) == 0
                                 ? O2D_OK
                                 : O2D_ERR_NOMEM;
                        redact_count(run->r, REDACT_MAX_PATTERNS + REDACT_CTR_CONTENTS, 1);
                        *changed = 1;
                    }
                    if (rv != O2D_OK) {
                        return rv;
                    }
                    continue;
                }
                const char *out;
                int c;
                if ((rv = redact_patterns(run, s, n, &out, &c)) != O2D_OK) {
                    return rv;
                }
                if (c) {
                    if (json_string_setn_nocheck(m, out, strlen(out)) != 0) {
                        return O2D_ERR_NOMEM;
                    }
                    *changed = 1;
                }
                continue;
            }
            int rv = walk(run, m, depth + 1, keep, changed);
            if (rv != O2D_OK) {
                return rv;
            }
        }
        return O2D_OK;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            /* a string element is a leaf as an object's member is */
            int rv = walk(run, e, depth + 1, keep_leaf, changed);
            if (rv != O2D_OK) {
                return rv;
            }
        }
        return O2D_OK;
    }
    if (json_is_string(v)) {
        /* an array's element, or the top-level value */
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (run->r->drop_message_contents && !keep_leaf) {
            if (n > 0) {
                redact_count(run->r, REDACT_MAX_PATTERNS + REDACT_CTR_CONTENTS, 1);
                *changed = 1;
                return json_string_setn(v, REDACT_CONTENT_MARK, sizeof(REDACT_CONTENT_MARK) - 1) ==
                               0
                           ? O2D_OK
                           : O2D_ERR_NOMEM;
            }
            return O2D_OK;
        }
        const char *out;
        int c;
        int rv = redact_patterns(run, s, n, &out, &c);
        if (rv == O2D_OK && c) {
            rv = json_string_setn_nocheck(v, out, strlen(out)) == 0 ? O2D_OK : O2D_ERR_NOMEM;
            *changed = 1;
        }
        return rv;
    }
    return O2D_OK;
}

static int is_json_start(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
            continue;
        }
        return s[i] == '{' || s[i] == '[';
    }
    return 0;
}

/* The text as a whole: patterns, or with drop_message_contents the marker. */
static int as_text(struct redact_run *run, const char *s, size_t len, const char **out,
                   int *changed)
{
    if (run->r->drop_message_contents) {
        *out = s;
        *changed = 0;
        if (len > 0) {
            *out = REDACT_CONTENT_MARK;
            *changed = 1;
            redact_count(run->r, REDACT_MAX_PATTERNS + REDACT_CTR_CONTENTS, 1);
        }
        return O2D_OK;
    }
    return redact_patterns(run, s, len, out, changed);
}

int redact_message(struct redact_run *run, const char *s, size_t len, const char **out,
                   int *changed)
{
    *out = s;
    *changed = 0;
    if (!is_json_start(s, len)) {
        return as_text(run, s, len, out, changed);
    }
    json_t *root = NULL;
    const char *reason;
    int rv = o2d_json_in_load(s, len, &root, &reason);
    if (rv == O2D_ERR_NOMEM) {
        return rv;
    }
    if (rv != O2D_OK) {
        return as_text(run, s, len, out, changed);
    }
    int c = 0;
    rv = walk(run, root, 1, 0, &c);
    if (rv == -1) {
        json_decref(root);
        return as_text(run, s, len, out, changed);
    }
    if (rv == O2D_OK && c) {
        size_t n = json_dumpb(root, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        char *copy = n > 0 ? o2d_arena_alloc(run->a, n + 1) : NULL;
        if (copy == NULL || json_dumpb(root, copy, n, JSON_COMPACT | JSON_ENCODE_ANY) != n) {
            rv = O2D_ERR_NOMEM;
        } else {
            copy[n] = '\0';
            *out = copy;
            *changed = 1;
        }
    }
    json_decref(root);
    return rv;
}
