/*
 * llmobs_messages.c: gen_ai message content -> LLM Obs messages (Message, ToolCall, ToolResult
 * and ToolDefinition of dd-trace-py ddtrace/llmobs/types.py), and the jansson helpers the
 * mapping uses. Every shape we meet is read here: OTel GenAI >= 1.37 parts (semantic-
 * conventions v1.41.1 gen-ai-input-messages.json / -output-messages.json), the OpenAI-like
 * objects of OTel GenAI <= 1.36 event bodies, and the per-index attributes of OpenLLMetry and
 * OpenInference once llmobs.c has regrouped them into the same OpenAI-like objects.
 *
 * Malformed content never fails: it is recorded as an otel_warning_* collection error (the
 * names Datadog's own OTel mapping uses) and what can be used is kept. Where the attribute
 * values come from and which kind gets what is llmobs.c's business.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmobs_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "o2d_json_out.h"

void llmobs_error(struct llmobs_ctx *c, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(c->errors, i, v)
    {
        if (strcmp(json_string_value(v), name) == 0) {
            return;
        }
    }
    if (json_array_append_new(c->errors, json_string(name)) != 0) {
        c->nomem = 1;
    }
}

json_t *llmobs_str(struct llmobs_ctx *c, const char *s, size_t n)
{
    json_t *v = json_stringn_nocheck(s != NULL ? s : "", s != NULL ? n : 0);
    if (v == NULL) {
        c->nomem = 1;
    }
    c->bytes += n + 16;
    return v;
}

void llmobs_set(struct llmobs_ctx *c, json_t *obj, const char *key, json_t *v)
{
    if (v == NULL) {
        return;
    }
    if (!json_is_object(obj)) {
        json_decref(v);
        return;
    }
    c->bytes += strlen(key) + 32;
    /* Keys are ours or come from parsed JSON (valid UTF-8) or OTLP keys (checked by the
     * writer, which escapes keys too). */
    if (json_object_set_new_nocheck(obj, key, v) != 0) {
        c->nomem = 1;
    }
}

void llmobs_push(struct llmobs_ctx *c, json_t *arr, json_t *v)
{
    if (v == NULL) {
        return;
    }
    if (!json_is_array(arr)) {
        json_decref(v);
        return;
    }
    c->bytes += 16;
    if (json_array_append_new(arr, v) != 0) {
        c->nomem = 1;
    }
}

static json_t *nn(struct llmobs_ctx *c, json_t *v)
{
    if (v == NULL) {
        c->nomem = 1;
    }
    return v;
}

json_t *llmobs_anyvalue(struct llmobs_ctx *c, const OtlpAnyValue *v, int depth)
{
    if (v == NULL || depth > LLMOBS_MAX_DEPTH) {
        return NULL;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return llmobs_str(c, v->string_value, strlen(v->string_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return nn(c, json_boolean(v->bool_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return nn(c, json_integer(v->int_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return nn(c, json_real(v->double_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        static const char hexd[] = "0123456789abcdef";
        size_t n = v->bytes_value.len;
        char *h = o2d_malloc(2 * n + 1);
        if (h == NULL) {
            c->nomem = 1;
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            h[2 * i] = hexd[v->bytes_value.data[i] >> 4];
            h[2 * i + 1] = hexd[v->bytes_value.data[i] & 15];
        }
        json_t *s = llmobs_str(c, h, 2 * n);
        o2d_free(h);
        return s;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        json_t *a = nn(c, json_array());
        if (a == NULL || v->array_value == NULL) {
            return a;
        }
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            json_t *e = llmobs_anyvalue(c, v->array_value->values[i], depth + 1);
            llmobs_push(c, a, e != NULL ? e : json_null());
        }
        return a;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        json_t *o = nn(c, json_object());
        if (o == NULL || v->kvlist_value == NULL) {
            return o;
        }
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            const OtlpKeyValue *kv = v->kvlist_value->values[i];
            json_t *e = llmobs_anyvalue(c, kv->value, depth + 1);
            llmobs_set(c, o, kv->key, e != NULL ? e : json_null());
        }
        return o;
    }
    default:
        return NULL;
    }
}

json_t *llmobs_parse(struct llmobs_ctx *c, const char *s, size_t n)
{
    char *fixed = NULL;
    size_t ok = o2d_utf8_valid_prefix(s, n);
    if (ok < n) {
        /* jansson refuses invalid UTF-8: repair it the way the writer would. */
        struct o2d_buf b;
        o2d_buf_init(&b, 4 * n + 16);
        size_t i = 0;
        while (i < n) {
            uint32_t cp;
            size_t l = o2d_utf8_decode((const unsigned char *)s + i, n - i, &cp);
            int rv = l > 0 ? o2d_buf_append(&b, s + i, l) : o2d_buf_append(&b, "\xEF\xBF\xBD", 3);
            if (rv != O2D_OK) {
                o2d_buf_cleanup(&b);
                c->nomem = 1;
                return NULL;
            }
            i += l > 0 ? l : 1;
        }
        fixed = (char *)b.data;
        n = b.len;
        s = fixed;
    }
    json_error_t err;
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    o2d_free(fixed);
    c->bytes += n + 64;
    return v;
}

json_t *llmobs_value_json(struct llmobs_ctx *c, const OtlpAnyValue *v)
{
    if (v == NULL) {
        return NULL;
    }
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        return llmobs_parse(c, v->string_value, strlen(v->string_value));
    }
    return llmobs_anyvalue(c, v, 0);
}

json_t *llmobs_value_string(struct llmobs_ctx *c, const json_t *v)
{
    if (v == NULL) {
        return NULL;
    }
    if (json_is_string(v)) {
        return llmobs_str(c, json_string_value(v), json_string_length(v));
    }
    struct o2d_buf b;
    o2d_buf_init(&b, SIZE_MAX / 2);
    if (llmobs_json_write(&b, v, 0) != O2D_OK) {
        o2d_buf_cleanup(&b);
        c->nomem = 1;
        return NULL;
    }
    json_t *s = llmobs_str(c, (const char *)b.data, b.len);
    o2d_buf_cleanup(&b);
    return s;
}

/* ---- messages ---- */

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Appends text to content, separating parts by a newline. */
static void add_text(struct llmobs_ctx *c, struct o2d_buf *content, const char *s, size_t n)
{
    if (content->len > 0 && o2d_buf_append_byte(content, '\n') != O2D_OK) {
        c->nomem = 1;
    }
    if (n > 0 && o2d_buf_append(content, s, n) != O2D_OK) {
        c->nomem = 1;
    }
}

static void add_text_json(struct llmobs_ctx *c, struct o2d_buf *content, const json_t *v)
{
    if (json_is_string(v)) {
        add_text(c, content, json_string_value(v), json_string_length(v));
    } else if (v != NULL && !json_is_null(v)) {
        json_t *s = llmobs_value_string(c, v);
        if (s != NULL) {
            add_text(c, content, json_string_value(s), json_string_length(s));
            json_decref(s);
        }
    }
}

/* ToolCall {name, arguments, tool_id, type}: arguments become an object (JSON text parsed;
 * text that is not a JSON object is kept as {"value": text}, as dd-trace-py does). */
static json_t *tool_call(struct llmobs_ctx *c, const json_t *tc)
{
    if (!json_is_object(tc)) {
        llmobs_error(c, "otel_warning_message_malformed");
        return NULL;
    }
    const json_t *fn = json_object_get(tc, "function");
    const json_t *src = json_is_object(fn) ? fn : tc;
    json_t *out = nn(c, json_object());
    if (out == NULL) {
        return NULL;
    }
    const json_t *name = json_object_get(src, "name");
    if (!json_is_string(name) || json_string_length(name) == 0) {
        llmobs_error(c, "otel_warning_tool_call_name_missing");
        llmobs_set(c, out, "name", llmobs_str(c, "", 0));
    } else {
        llmobs_set(c, out, "name",
                   llmobs_str(c, json_string_value(name), json_string_length(name)));
    }
    const json_t *args = json_object_get(src, "arguments");
    json_t *a = NULL;
    if (json_is_string(args)) {
        a = json_string_length(args) > 0
                ? llmobs_parse(c, json_string_value(args), json_string_length(args))
                : nn(c, json_object());
        if (a != NULL && !json_is_object(a)) {
            json_decref(a);
            a = NULL;
        }
        if (a == NULL && !c->nomem) {
            a = nn(c, json_object());
            llmobs_set(c, a, "value",
                       llmobs_str(c, json_string_value(args), json_string_length(args)));
        }
    } else if (json_is_object(args)) {
        a = nn(c, json_deep_copy(args));
    } else if (args != NULL && !json_is_null(args)) {
        a = nn(c, json_object());
        llmobs_set(c, a, "value", llmobs_value_string(c, args));
    } else {
        a = nn(c, json_object());
    }
    llmobs_set(c, out, "arguments", a);
    const char *id = sget(tc, "id");
    if (id != NULL) {
        llmobs_set(c, out, "tool_id", llmobs_str(c, id, strlen(id)));
    }
    const char *type = sget(tc, "type");
    /* OTel parts say "tool_call"; the LLM Obs type is the provider's ("function"). */
    if (type == NULL || strcmp(type, "tool_call") == 0) {
        type = "function";
    }
    llmobs_set(c, out, "type", llmobs_str(c, type, strlen(type)));
    return out;
}

static json_t *tool_result(struct llmobs_ctx *c, const char *id, const char *name,
                           const json_t *result)
{
    json_t *out = nn(c, json_object());
    if (out == NULL) {
        return NULL;
    }
    if (name != NULL) {
        llmobs_set(c, out, "name", llmobs_str(c, name, strlen(name)));
    }
    json_t *r = result != NULL && !json_is_null(result) ? llmobs_value_string(c, result)
                                                        : llmobs_str(c, "", 0);
    llmobs_set(c, out, "result", r);
    if (id != NULL) {
        llmobs_set(c, out, "tool_id", llmobs_str(c, id, strlen(id)));
    }
    llmobs_set(c, out, "type", llmobs_str(c, "tool_result", 11));
    return out;
}

static void push_list(struct llmobs_ctx *c, json_t *msg, const char *key, json_t *item)
{
    if (item == NULL) {
        return;
    }
    json_t *arr = json_object_get(msg, key);
    if (arr == NULL) {
        arr = nn(c, json_array());
        if (arr == NULL) {
            json_decref(item);
            return;
        }
        llmobs_set(c, msg, key, arr);
        if (c->nomem) {
            json_decref(item);
            return;
        }
    }
    llmobs_push(c, arr, item);
}

/* A blob/uri/file part: image and audio data go to image_parts/audio_parts, anything else
 * is described in the text, as Datadog's OTel mapping does. */
static void media_part(struct llmobs_ctx *c, json_t *msg, struct o2d_buf *content, const json_t *p,
                       const char *type)
{
    const char *modality = sget(p, "modality");
    const char *mime = sget(p, "mime_type");
    if (modality == NULL) {
        modality = "file";
    }
    const char *data = NULL;
    if (strcmp(type, "blob") == 0) {
        data = sget(p, "content");
    } else if (strcmp(type, "uri") == 0) {
        const char *uri = sget(p, "uri");
        if (uri != NULL && strncmp(uri, "data:", 5) == 0) {
            data = uri;
        } else {
            char buf[512];
            int n = snprintf(buf, sizeof(buf), "[%s: %s]", modality, uri != NULL ? uri : "");
            add_text(c, content, buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
            return;
        }
    } else {
        const char *fid = sget(p, "file_id");
        char buf[512];
        int n = snprintf(buf, sizeof(buf), "[%s file: %s]", modality, fid != NULL ? fid : "");
        add_text(c, content, buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
        return;
    }
    const char *key = strcmp(modality, "image") == 0   ? "image_parts"
                      : strcmp(modality, "audio") == 0 ? "audio_parts"
                                                       : NULL;
    if (key == NULL || data == NULL) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "[%.20s %s]", modality, type);
        add_text(c, content, buf, (size_t)n);
        return;
    }
    json_t *part = nn(c, json_object());
    if (part == NULL) {
        return;
    }
    if (mime != NULL) {
        llmobs_set(c, part, "mime_type", llmobs_str(c, mime, strlen(mime)));
    }
    llmobs_set(c, part, "content", llmobs_str(c, data, strlen(data)));
    push_list(c, msg, key, part);
}

static void parts_into(struct llmobs_ctx *c, json_t *msg, struct o2d_buf *content,
                       const json_t *parts)
{
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *type = sget(p, "type");
        if (type == NULL) {
            if (json_is_string(p)) {
                add_text_json(c, content, p);
            } else {
                llmobs_error(c, "otel_warning_invalid_parts");
            }
            continue;
        }
        if (strcmp(type, "text") == 0) {
            const json_t *t = json_object_get(p, "content");
            add_text_json(c, content, t != NULL ? t : json_object_get(p, "text"));
        } else if (strcmp(type, "tool_call") == 0 || strcmp(type, "function") == 0) {
            push_list(c, msg, "tool_calls", tool_call(c, p));
        } else if (strcmp(type, "tool_call_response") == 0) {
            /* The schema says `response`; the spans.md example says `result`: accept both. */
            const json_t *r = json_object_get(p, "response");
            push_list(c, msg, "tool_results",
                      tool_result(c, sget(p, "id"), sget(p, "name"),
                                  r != NULL ? r : json_object_get(p, "result")));
        } else if (strcmp(type, "blob") == 0 || strcmp(type, "uri") == 0 ||
                   strcmp(type, "file") == 0) {
            media_part(c, msg, content, p, type);
        }
        /* reasoning, server_tool_call(_response) and unknown types: not LLM Obs message
         * fields; left out. */
    }
}

json_t *llmobs_message(struct llmobs_ctx *c, const json_t *m, const char *role_default)
{
    if (!json_is_object(m)) {
        llmobs_error(c, "otel_warning_message_malformed");
        return NULL;
    }
    json_t *msg = nn(c, json_object());
    if (msg == NULL) {
        return NULL;
    }
    struct o2d_buf content;
    o2d_buf_init(&content, SIZE_MAX / 2);
    const char *role = sget(m, "role");
    if (role == NULL || role[0] == '\0') {
        role = role_default;
    }
    if (role == NULL) {
        llmobs_error(c, "otel_warning_message_malformed");
        role = ""; /* dd-trace-py forces a missing role to "" */
    }
    const json_t *parts = json_object_get(m, "parts");
    if (json_is_array(parts)) {
        parts_into(c, msg, &content, parts);
    } else if (parts != NULL) {
        llmobs_error(c, "otel_warning_invalid_parts");
    } else {
        const json_t *ct = json_object_get(m, "content");
        if (json_is_array(ct)) {
            parts_into(c, msg, &content, ct);
        } else {
            add_text_json(c, &content, ct);
        }
        const json_t *tcs = json_object_get(m, "tool_calls");
        size_t i;
        json_t *tc;
        json_array_foreach(tcs, i, tc)
        {
            push_list(c, msg, "tool_calls", tool_call(c, tc));
        }
        /* A tool message answers a call: its content is the result (role "tool" with
         * tool_call_id, or the <= 1.36 gen_ai.tool.message body's "id"). */
        const char *tcid = sget(m, "tool_call_id");
        if (tcid == NULL && strcmp(role, "tool") == 0) {
            tcid = sget(m, "id");
        }
        if (tcid != NULL && strcmp(role, "tool") == 0) {
            json_t *text = llmobs_str(c, (const char *)content.data, content.len);
            push_list(c, msg, "tool_results", tool_result(c, tcid, sget(m, "name"), text));
            json_decref(text);
            o2d_buf_reset(&content);
        }
    }
    llmobs_set(c, msg, "role", llmobs_str(c, role, strlen(role)));
    /* content is left out only when the message is all tool calls or tool results. */
    if (content.len > 0 || (json_object_get(msg, "tool_calls") == NULL &&
                            json_object_get(msg, "tool_results") == NULL)) {
        llmobs_set(c, msg, "content", llmobs_str(c, (const char *)content.data, content.len));
    }
    o2d_buf_cleanup(&content);
    return msg;
}

void llmobs_messages_append(struct llmobs_ctx *c, const json_t *msgs, json_t *out, const char *err)
{
    if (!json_is_array(msgs)) {
        llmobs_error(c, err);
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        llmobs_push(c, out, llmobs_message(c, m, NULL));
    }
}

json_t *llmobs_system_message(struct llmobs_ctx *c, const json_t *parts)
{
    json_t *m = nn(c, json_object());
    if (m == NULL) {
        return NULL;
    }
    if (json_is_string(parts)) {
        llmobs_set(c, m, "parts", json_pack("[{s:s,s:O}]", "type", "text", "content", parts));
    } else if (json_is_array(parts)) {
        llmobs_set(c, m, "parts", json_incref((json_t *)parts));
    } else {
        llmobs_error(c, "otel_warning_input_malformed");
        json_decref(m);
        return NULL;
    }
    json_t *out = llmobs_message(c, m, "system");
    json_decref(m);
    return out;
}

json_t *llmobs_tool_definition(struct llmobs_ctx *c, const json_t *d)
{
    if (!json_is_object(d)) {
        llmobs_error(c, "otel_warning_tool_definition_entry_malformed");
        return NULL;
    }
    const json_t *fn = json_object_get(d, "function");
    const json_t *src = json_is_object(fn) ? fn : d;
    const char *name = sget(src, "name");
    if (name == NULL) {
        llmobs_error(c, "otel_warning_tool_definition_entry_malformed");
        return NULL;
    }
    json_t *out = nn(c, json_object());
    if (out == NULL) {
        return NULL;
    }
    llmobs_set(c, out, "name", llmobs_str(c, name, strlen(name)));
    const char *desc = sget(src, "description");
    if (desc != NULL) {
        llmobs_set(c, out, "description", llmobs_str(c, desc, strlen(desc)));
    }
    const json_t *schema = json_object_get(src, "parameters");
    if (schema == NULL) {
        schema = json_object_get(src, "input_schema");
    }
    if (json_is_string(schema)) {
        json_t *p = llmobs_parse(c, json_string_value(schema), json_string_length(schema));
        if (json_is_object(p)) {
            llmobs_set(c, out, "schema", p);
        } else {
            json_decref(p);
            llmobs_error(c, "otel_warning_tool_definition_entry_malformed");
        }
    } else if (json_is_object(schema)) {
        llmobs_set(c, out, "schema", nn(c, json_deep_copy(schema)));
    }
    return out;
}

const char *llmobs_last_content(const json_t *msgs)
{
    for (size_t i = json_array_size(msgs); i > 0; i--) {
        const char *s = sget(json_array_get(msgs, i - 1), "content");
        if (s != NULL && s[0] != '\0') {
            return s;
        }
    }
    return "";
}

/* ---- writing ---- */

static int write_real(struct o2d_buf *b, double d)
{
    char tmp[40];
    if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
        return o2d_buf_append_str(b, "null");
    }
    snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d) {
        snprintf(tmp, sizeof(tmp), "%.17g", d);
    }
    if (strpbrk(tmp, ".eE") == NULL) {
        strcat(tmp, ".0");
    }
    return o2d_buf_append_str(b, tmp);
}

int llmobs_json_write(struct o2d_buf *b, const json_t *v, int depth)
{
    int rv = O2D_OK;
    if (v == NULL || depth > LLMOBS_MAX_DEPTH) {
        return o2d_buf_append_str(b, "null");
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *e;
        int first = 1;
        rv = o2d_buf_append_byte(b, '{');
        json_object_foreach((json_t *)v, k, e)
        {
            if (rv == O2D_OK && !first) {
                rv = o2d_buf_append_byte(b, ',');
            }
            first = 0;
            if (rv == O2D_OK) {
                rv = o2d_json_append_string(b, k, strlen(k));
            }
            if (rv == O2D_OK) {
                rv = o2d_buf_append_byte(b, ':');
            }
            if (rv == O2D_OK) {
                rv = llmobs_json_write(b, e, depth + 1);
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        rv = o2d_buf_append_byte(b, '[');
        json_array_foreach(v, i, e)
        {
            if (rv == O2D_OK && i > 0) {
                rv = o2d_buf_append_byte(b, ',');
            }
            if (rv == O2D_OK) {
                rv = llmobs_json_write(b, e, depth + 1);
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, ']') : rv;
    }
    case JSON_STRING:
        return o2d_json_append_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return o2d_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return write_real(b, json_real_value(v));
    case JSON_TRUE:
        return o2d_buf_append_str(b, "true");
    case JSON_FALSE:
        return o2d_buf_append_str(b, "false");
    default:
        return o2d_buf_append_str(b, "null");
    }
}
