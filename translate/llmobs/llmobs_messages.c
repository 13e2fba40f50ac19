/*
 * llmobs_messages.c: gen_ai message content -> LLM Obs messages (Message, ToolCall, ToolResult
 * and ToolDefinition of dd-trace-py ddtrace/llmobs/types.py), written straight as JSON text,
 * and the jansson and writing helpers the mapping uses. Every shape we meet is read here: OTel
 * GenAI >= 1.37 parts (semantic-conventions v1.41.1 gen-ai-input-messages.json /
 * -output-messages.json), the OpenAI-like objects of OTel GenAI <= 1.36 event bodies, and the
 * per-index attributes of OpenLLMetry and OpenInference once llmobs.c has regrouped them into
 * the same OpenAI-like objects.
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
#include "o2d_json_in.h"
#include "o2d_json_out.h"

/* Writer depth of a message's tool call arguments: input 0, messages 1, message 2, tool_calls
 * 3, tool call 4. */
#define ARGS_DEPTH 5
/* Writer depth of a tool definition's schema: tool_definitions 0, definition 1. */
#define SCHEMA_DEPTH 2

void llmobs_ctx_init(struct llmobs_ctx *c, struct llmobs_errors *errors)
{
    memset(c, 0, sizeof(*c));
    c->errors = errors;
    o2d_buf_init(&c->msg.content, SIZE_MAX / 2);
    for (int i = 0; i < 4; i++) {
        o2d_buf_init(&c->msg.list[i], SIZE_MAX / 2);
    }
    o2d_buf_init(&c->scratch, SIZE_MAX / 2);
    for (int i = 0; i < 4; i++) {
        o2d_buf_init(&c->part[i], SIZE_MAX / 2);
    }
}

void llmobs_ctx_cleanup(struct llmobs_ctx *c)
{
    o2d_buf_cleanup(&c->msg.content);
    for (int i = 0; i < 4; i++) {
        o2d_buf_cleanup(&c->msg.list[i]);
    }
    o2d_buf_cleanup(&c->scratch);
    for (int i = 0; i < 4; i++) {
        o2d_buf_cleanup(&c->part[i]);
    }
}

void llmobs_error(struct llmobs_ctx *c, const char *name)
{
    struct llmobs_errors *e = c->errors;
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->name[i], name) == 0) {
            return;
        }
    }
    if (e->n < LLMOBS_MAX_ERRORS) {
        e->name[e->n++] = name;
    }
}

void llmobs_check(struct llmobs_ctx *c, int rv)
{
    if (rv != O2D_OK) {
        c->nomem = 1;
    }
}

/* ---- jansson, input side ---- */

json_t *llmobs_str(struct llmobs_ctx *c, const char *s, size_t n)
{
    json_t *v = json_stringn_nocheck(s != NULL ? s : "", s != NULL ? n : 0);
    if (v == NULL) {
        c->nomem = 1;
    }
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

static const char hexd[] = "0123456789abcdef";

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
    json_t *v;
    const char *reason;
    int rv = o2d_json_in_load(s, n, &v, &reason);
    if (rv == O2D_ERR_INVALID && reason == o2d_json_in_bad_utf8) {
        /* Invalid UTF-8 is refused (as jansson does): repair it the way the writer would and
         * read again. Repairing only swaps bytes past ASCII, so text refused for any other
         * reason would be refused after a repair too. */
        struct o2d_buf b;
        o2d_buf_init(&b, 4 * n + 16);
        size_t i = 0;
        while (i < n) {
            uint32_t cp;
            size_t l = o2d_utf8_decode((const unsigned char *)s + i, n - i, &cp);
            int arv = l > 0 ? o2d_buf_append(&b, s + i, l) : o2d_buf_append(&b, "\xEF\xBF\xBD", 3);
            if (arv != O2D_OK) {
                o2d_buf_cleanup(&b);
                c->nomem = 1;
                return NULL;
            }
            i += l > 0 ? l : 1;
        }
        rv = o2d_json_in_load((const char *)b.data, b.len, &v, &reason);
        o2d_buf_cleanup(&b);
    }
    if (rv == O2D_ERR_NOMEM) {
        c->nomem = 1;
    }
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

/* ---- writing ---- */

/*
 * "%.15g" for a value that is a decimal with at most 6 places and under 1e9 (temperatures,
 * top_p, scores), without printf: such a decimal has at most 15 significant digits and the
 * double nearest to it is well within half a unit of the 15th digit, so "%.15g" prints
 * exactly that decimal (trailing zeros dropped, no exponent between 1e-4 and 1e15), and it
 * reads back as d. Returns 0 when d is not such a value.
 */
static int short_decimal(char out[40], double d)
{
    static const double pow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    double a = d < 0 ? -d : d;
    if (!(a >= 1e-4 && a < 1e9)) {
        return 0;
    }
    for (int p = 0; p <= 6; p++) {
        double m = a * pow10[p];
        uint64_t mi = (uint64_t)(m + 0.5);
        /* mi / 10^p is correctly rounded, so equality means the decimal reads back as a */
        if ((double)mi / pow10[p] != a) {
            continue;
        }
        uint64_t scale = (uint64_t)pow10[p];
        uint64_t ip = mi / scale, frac = mi % scale;
        char digits[24];
        size_t n = 0;
        do {
            digits[n++] = (char)('0' + ip % 10);
            ip /= 10;
        } while (ip != 0);
        size_t o = 0;
        if (d < 0) {
            out[o++] = '-';
        }
        while (n > 0) {
            out[o++] = digits[--n];
        }
        out[o++] = '.';
        if (frac == 0) {
            out[o++] = '0';
        } else {
            for (int k = p - 1; k >= 0; k--) {
                digits[k] = (char)('0' + frac % 10);
                frac /= 10;
            }
            int last = p - 1;
            while (digits[last] == '0') {
                last--;
            }
            for (int k = 0; k <= last; k++) {
                out[o++] = digits[k];
            }
        }
        out[o] = '\0';
        return 1;
    }
    return 0;
}

int llmobs_real_write(struct o2d_buf *b, double d)
{
    char tmp[40];
    if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
        return o2d_buf_append_str(b, "null");
    }
    if (short_decimal(tmp, d)) {
        return o2d_buf_append_str(b, tmp);
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

static int int_write(struct o2d_buf *b, long long v)
{
    return o2d_json_append_int(b, (int64_t)v);
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
        return int_write(b, (long long)json_integer_value(v));
    case JSON_REAL:
        return llmobs_real_write(b, json_real_value(v));
    case JSON_TRUE:
        return o2d_buf_append_str(b, "true");
    case JSON_FALSE:
        return o2d_buf_append_str(b, "false");
    default:
        return o2d_buf_append_str(b, "null");
    }
}

/* av_depth: llmobs_anyvalue's depth; depth: the writer's. */
static void anyvalue_write(struct llmobs_ctx *c, struct o2d_buf *b, const OtlpAnyValue *v,
                           int av_depth, int depth)
{
    if (depth > LLMOBS_MAX_DEPTH) {
        llmobs_check(c, o2d_buf_append_str(b, "null"));
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        llmobs_check(c, o2d_json_append_string(b, v->string_value, strlen(v->string_value)));
        return;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        llmobs_check(c, o2d_buf_append_str(b, v->bool_value ? "true" : "false"));
        return;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        llmobs_check(c, int_write(b, (long long)v->int_value));
        return;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        llmobs_check(c, llmobs_real_write(b, v->double_value));
        return;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        int rv = o2d_buf_append_byte(b, '"');
        if (rv == O2D_OK) {
            rv = o2d_hex_append(b, v->bytes_value.data, v->bytes_value.len);
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append_byte(b, '"');
        }
        llmobs_check(c, rv);
        return;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        llmobs_check(c, o2d_buf_append_byte(b, '['));
        for (size_t i = 0; v->array_value != NULL && i < v->array_value->n_values; i++) {
            const OtlpAnyValue *e = v->array_value->values[i];
            if (i > 0) {
                llmobs_check(c, o2d_buf_append_byte(b, ','));
            }
            if (e == NULL || av_depth + 1 > LLMOBS_MAX_DEPTH ||
                e->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
                llmobs_check(c, o2d_buf_append_str(b, "null"));
            } else {
                anyvalue_write(c, b, e, av_depth + 1, depth + 1);
            }
        }
        llmobs_check(c, o2d_buf_append_byte(b, ']'));
        return;
    default: {
        /* kvlists (rare): an object keeps the first place and the last value of a key. */
        json_t *j = llmobs_anyvalue(c, v, av_depth);
        llmobs_check(c, llmobs_json_write(b, j, depth));
        json_decref(j);
        return;
    }
    }
}

static int is_set(const OtlpAnyValue *v)
{
    switch (v != NULL ? v->value_case
                      : OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return 1;
    default:
        return 0;
    }
}

int llmobs_anyvalue_write(struct llmobs_ctx *c, struct o2d_buf *b, const OtlpAnyValue *v, int depth)
{
    if (!is_set(v)) {
        return 0;
    }
    anyvalue_write(c, b, v, 0, depth);
    return 1;
}

void llmobs_value_string_write(struct llmobs_ctx *c, struct o2d_buf *b, const json_t *v)
{
    if (json_is_string(v)) {
        llmobs_check(c, o2d_json_append_string(b, json_string_value(v), json_string_length(v)));
        return;
    }
    o2d_buf_reset(&c->scratch);
    llmobs_check(c, llmobs_json_write(&c->scratch, v, 0));
    llmobs_check(c, o2d_json_append_string(b, (const char *)c->scratch.data, c->scratch.len));
}

int llmobs_value_text_write(struct llmobs_ctx *c, struct o2d_buf *b, const OtlpAnyValue *v)
{
    if (!is_set(v)) {
        return 0;
    }
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        llmobs_check(c, o2d_json_append_string(b, v->string_value, strlen(v->string_value)));
        return 1;
    }
    o2d_buf_reset(&c->scratch);
    anyvalue_write(c, &c->scratch, v, 0, 0);
    llmobs_check(c, o2d_json_append_string(b, (const char *)c->scratch.data, c->scratch.len));
    return 1;
}

/* Inline so that the length of a literal is known at compile time. */
static inline void put(struct llmobs_ctx *c, struct o2d_buf *b, const char *s)
{
    llmobs_check(c, o2d_buf_append(b, s, strlen(s)));
}

static void put_str(struct llmobs_ctx *c, struct o2d_buf *b, const char *s, size_t n)
{
    llmobs_check(c, o2d_json_append_string(b, s, n));
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
        if (content->len > 0) {
            llmobs_check(c, o2d_buf_append_byte(content, '\n'));
        }
        llmobs_check(c, llmobs_json_write(content, v, 0));
    }
}

/* Starts a new element of one of the message's lists. */
static struct o2d_buf *list_item(struct llmobs_ctx *c, enum llmobs_msg_list which)
{
    struct llmobs_msg *m = &c->msg;
    struct o2d_buf *b = &m->list[which];
    if (b->len == 0) {
        /* Once per list: a list whose first append failed (nomem) is still empty here. */
        size_t i = 0;
        while (i < m->n_order && m->order[i] != (unsigned char)which) {
            i++;
        }
        if (i == m->n_order) {
            m->order[m->n_order++] = (unsigned char)which;
        }
    } else {
        llmobs_check(c, o2d_buf_append_byte(b, ','));
    }
    return b;
}

/* ToolCall {name, arguments, tool_id, type}: arguments become an object (JSON text parsed;
 * text that is not a JSON object is kept as {"value": text}, as dd-trace-py does). */
static void tool_call(struct llmobs_ctx *c, const json_t *tc)
{
    if (!json_is_object(tc)) {
        llmobs_error(c, "otel_warning_message_malformed");
        return;
    }
    struct o2d_buf *b = list_item(c, MSG_TOOL_CALLS);
    const json_t *fn = json_object_get(tc, "function");
    const json_t *src = json_is_object(fn) ? fn : tc;
    put(c, b, "{\"name\":");
    const json_t *name = json_object_get(src, "name");
    if (!json_is_string(name) || json_string_length(name) == 0) {
        llmobs_error(c, "otel_warning_tool_call_name_missing");
        put(c, b, "\"\"");
    } else {
        put_str(c, b, json_string_value(name), json_string_length(name));
    }
    put(c, b, ",\"arguments\":");
    const json_t *args = json_object_get(src, "arguments");
    if (json_is_string(args)) {
        if (json_string_length(args) == 0) {
            put(c, b, "{}");
        } else {
            json_t *a = llmobs_parse(c, json_string_value(args), json_string_length(args));
            if (json_is_object(a)) {
                llmobs_check(c, llmobs_json_write(b, a, ARGS_DEPTH));
            } else {
                put(c, b, "{\"value\":");
                put_str(c, b, json_string_value(args), json_string_length(args));
                put(c, b, "}");
            }
            json_decref(a);
        }
    } else if (json_is_object(args)) {
        llmobs_check(c, llmobs_json_write(b, args, ARGS_DEPTH));
    } else if (args != NULL && !json_is_null(args)) {
        put(c, b, "{\"value\":");
        llmobs_value_string_write(c, b, args);
        put(c, b, "}");
    } else {
        put(c, b, "{}");
    }
    const char *id = sget(tc, "id");
    if (id != NULL) {
        put(c, b, ",\"tool_id\":");
        put_str(c, b, id, strlen(id));
    }
    const char *type = sget(tc, "type");
    /* OTel parts say "tool_call"; the LLM Obs type is the provider's ("function"). */
    if (type == NULL || strcmp(type, "tool_call") == 0) {
        type = "function";
    }
    put(c, b, ",\"type\":");
    put_str(c, b, type, strlen(type));
    put(c, b, "}");
}

/* ToolResult {name, result, tool_id, type}; the result is `result` as a string, or `text`
 * when result is NULL. */
static void tool_result(struct llmobs_ctx *c, const char *id, const char *name,
                        const json_t *result, const struct o2d_buf *text)
{
    struct o2d_buf *b = list_item(c, MSG_TOOL_RESULTS);
    put(c, b, "{");
    if (name != NULL) {
        put(c, b, "\"name\":");
        put_str(c, b, name, strlen(name));
        put(c, b, ",");
    }
    put(c, b, "\"result\":");
    if (text != NULL) {
        put_str(c, b, (const char *)text->data, text->len);
    } else if (result != NULL && !json_is_null(result)) {
        llmobs_value_string_write(c, b, result);
    } else {
        put(c, b, "\"\"");
    }
    if (id != NULL) {
        put(c, b, ",\"tool_id\":");
        put_str(c, b, id, strlen(id));
    }
    put(c, b, ",\"type\":\"tool_result\"}");
}

/* A blob/uri/file part: image and audio data go to image_parts/audio_parts, anything else
 * is described in the text, as Datadog's OTel mapping does. */
static void media_part(struct llmobs_ctx *c, struct o2d_buf *content, const json_t *p,
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
    int which = strcmp(modality, "image") == 0   ? MSG_IMAGE_PARTS
                : strcmp(modality, "audio") == 0 ? MSG_AUDIO_PARTS
                                                 : -1;
    if (which < 0 || data == NULL) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "[%.20s %s]", modality, type);
        add_text(c, content, buf, (size_t)n);
        return;
    }
    struct o2d_buf *b = list_item(c, (enum llmobs_msg_list)which);
    put(c, b, "{");
    if (mime != NULL) {
        put(c, b, "\"mime_type\":");
        put_str(c, b, mime, strlen(mime));
        put(c, b, ",");
    }
    put(c, b, "\"content\":");
    put_str(c, b, data, strlen(data));
    put(c, b, "}");
}

static void parts_into(struct llmobs_ctx *c, const json_t *parts)
{
    struct o2d_buf *content = &c->msg.content;
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
            tool_call(c, p);
        } else if (strcmp(type, "tool_call_response") == 0) {
            /* The schema says `response`; the spans.md example says `result`: accept both. */
            const json_t *r = json_object_get(p, "response");
            tool_result(c, sget(p, "id"), sget(p, "name"),
                        r != NULL ? r : json_object_get(p, "result"), NULL);
        } else if (strcmp(type, "blob") == 0 || strcmp(type, "uri") == 0 ||
                   strcmp(type, "file") == 0) {
            media_part(c, content, p, type);
        }
        /* reasoning, server_tool_call(_response) and unknown types: not LLM Obs message
         * fields; left out. */
    }
}

static void msg_reset(struct llmobs_msg *m)
{
    m->role = NULL;
    m->content_json = 0;
    m->cjson = NULL;
    m->cjson_len = 0;
    o2d_buf_reset(&m->content);
    for (int i = 0; i < 4; i++) {
        o2d_buf_reset(&m->list[i]);
    }
    m->n_order = 0;
}

int llmobs_msg_read(struct llmobs_ctx *c, const json_t *m, const char *role_default)
{
    struct llmobs_msg *msg = &c->msg;
    msg_reset(msg);
    if (!json_is_object(m)) {
        llmobs_error(c, "otel_warning_message_malformed");
        return 0;
    }
    const char *role = sget(m, "role");
    if (role == NULL || role[0] == '\0') {
        role = role_default;
    }
    if (role == NULL) {
        llmobs_error(c, "otel_warning_message_malformed");
        role = ""; /* dd-trace-py forces a missing role to "" */
    }
    msg->role = role;
    const json_t *parts = json_object_get(m, "parts");
    if (json_is_array(parts)) {
        parts_into(c, parts);
    } else if (parts != NULL) {
        llmobs_error(c, "otel_warning_invalid_parts");
    } else {
        const json_t *ct = json_object_get(m, "content");
        if (json_is_array(ct)) {
            parts_into(c, ct);
        } else {
            add_text_json(c, &msg->content, ct);
        }
        const json_t *tcs = json_object_get(m, "tool_calls");
        size_t i;
        json_t *tc;
        json_array_foreach(tcs, i, tc)
        {
            tool_call(c, tc);
        }
        /* A tool message answers a call: its content is the result (role "tool" with
         * tool_call_id, or the <= 1.36 gen_ai.tool.message body's "id"). */
        const char *tcid = sget(m, "tool_call_id");
        if (tcid == NULL && strcmp(role, "tool") == 0) {
            tcid = sget(m, "id");
        }
        if (tcid != NULL && strcmp(role, "tool") == 0) {
            tool_result(c, tcid, sget(m, "name"), NULL, &msg->content);
            o2d_buf_reset(&msg->content);
        }
    }
    return 1;
}

int llmobs_msg_read_system(struct llmobs_ctx *c, const json_t *parts, const char *text,
                           size_t text_len)
{
    struct llmobs_msg *msg = &c->msg;
    msg_reset(msg);
    if (text == NULL && json_is_string(parts)) {
        text = json_string_value(parts);
        text_len = json_string_length(parts);
    }
    if (text != NULL) {
        msg->role = "system";
        add_text(c, &msg->content, text, text_len);
        return 1;
    }
    if (json_is_array(parts)) {
        msg->role = "system";
        parts_into(c, parts);
        return 1;
    }
    llmobs_error(c, "otel_warning_input_malformed");
    return 0;
}

int llmobs_msg_has_content(const struct llmobs_msg *m)
{
    return m->content.len > 0 || m->cjson_len > 0 ||
           (m->list[MSG_TOOL_CALLS].len == 0 && m->list[MSG_TOOL_RESULTS].len == 0);
}

void llmobs_msg_write(struct llmobs_ctx *c, struct o2d_buf *b, size_t *n)
{
    static const char *const keys[] = {"{\"tool_calls\":[", "{\"tool_results\":[",
                                       "{\"image_parts\":[", "{\"audio_parts\":["};
    const struct llmobs_msg *m = &c->msg;
    if (*n > 0) {
        llmobs_check(c, o2d_buf_append_byte(b, ','));
    }
    (*n)++;
    for (size_t i = 0; i < m->n_order; i++) {
        const struct o2d_buf *l = &m->list[m->order[i]];
        /* the first key opens the object; the others follow a comma */
        put(c, b, i == 0 ? keys[m->order[i]] : keys[m->order[i]] + 1);
        llmobs_check(c, o2d_buf_append(b, l->data, l->len));
        put(c, b, "],");
    }
    put(c, b, m->n_order == 0 ? "{\"role\":" : "\"role\":");
    put_str(c, b, m->role, strlen(m->role));
    /* content is left out only when the message is all tool calls or tool results. */
    if (llmobs_msg_has_content(m)) {
        put(c, b, ",\"content\":");
        if (m->content_json) {
            /* already escaped: one copy between the quotes */
            put(c, b, "\"");
            if (m->cjson != NULL) {
                llmobs_check(c, o2d_buf_append(b, m->cjson, m->cjson_len));
            } else {
                llmobs_check(c, o2d_buf_append(b, m->content.data, m->content.len));
            }
            put(c, b, "\"");
        } else {
            put_str(c, b, (const char *)m->content.data, m->content.len);
        }
    }
    put(c, b, "}");
}

void llmobs_messages_write(struct llmobs_ctx *c, const json_t *msgs, struct o2d_buf *b, size_t *n,
                           const char *err)
{
    if (!json_is_array(msgs)) {
        llmobs_error(c, err);
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (llmobs_msg_read(c, m, NULL)) {
            llmobs_msg_write(c, b, n);
        }
    }
}

/* The string that comes next, or 0. */
static int pull_str(struct o2d_json_in_pull *r, const char **s, size_t *n)
{
    return o2d_json_in_pull_string(r, s, n);
}

static int key_is(const char *k, size_t n, const char *want)
{
    size_t l = strlen(want);
    return n == l && memcmp(k, want, l) == 0;
}

/* Appends a text part to the content kept escaped (content_json), as add_text would append
 * it raw: a newline between parts, none after empty text. `plain` says that s is the text as
 * the input holds it, without escapes: then it is its own JSON string body (only printable
 * ASCII other than '"' and '\\', and valid UTF-8: o2d_json_plain_len's and o2d_utf8_decode's
 * rules, which the writer applies too), borrowed while it is the only part. */
static void add_text_escaped(struct llmobs_ctx *c, const char *s, size_t n, int plain)
{
    struct llmobs_msg *m = &c->msg;
    m->content_json = 1;
    if (m->cjson == NULL && m->content.len == 0 && plain) {
        m->cjson = s;
        m->cjson_len = n;
        return;
    }
    if (m->cjson != NULL) {
        llmobs_check(c, o2d_buf_append(&m->content, m->cjson, m->cjson_len));
        m->cjson = NULL;
        m->cjson_len = 0;
    }
    if (m->content.len > 0) {
        put(c, &m->content, "\\n");
    }
    if (n == 0) {
        return;
    }
    if (plain) {
        llmobs_check(c, o2d_buf_append(&m->content, s, n));
        return;
    }
    /* escaped as the writer would, then without its quotes */
    size_t q = m->content.len;
    int rv = o2d_json_append_string(&m->content, s, n);
    llmobs_check(c, rv);
    if (rv == O2D_OK) {
        memmove(m->content.data + q, m->content.data + q + 1, m->content.len - q - 2);
        m->content.len -= 2;
    }
}

/* Whether s[0, n) lies inside the input text in[0, in_n) (a string read without escapes). */
static int inside(const char *s, size_t n, const char *in, size_t in_n)
{
    uintptr_t a = (uintptr_t)s, lo = (uintptr_t)in;
    return a >= lo && a - lo <= in_n && n <= in_n - (a - lo);
}

enum { CANON_MAX_DEPTH = 16, CANON_MAX_KEYS = 32 };

/*
 * The JSON value that comes next in r, appended to out as llmobs_json_write(llmobs_parse())
 * would write it (compact, strings decoded and escaped again, integers as parsed), for the
 * shapes where that is certain: no real, no key twice in an object (jansson keeps one), at
 * most CANON_MAX_KEYS keys an object and CANON_MAX_DEPTH levels. 0 otherwise (out then holds
 * part of the value).
 */
static int canon_value(struct llmobs_ctx *c, struct o2d_json_in_pull *r, struct o2d_buf *out,
                       int depth)
{
    if (depth > CANON_MAX_DEPTH) {
        return 0;
    }
    int ch = o2d_json_in_pull_peek(r);
    if (ch == '{' || ch == '[') {
        int obj = ch == '{', close = obj ? '}' : ']';
        o2d_json_in_pull_take(r, ch);
        put(c, out, obj ? "{" : "[");
        if (o2d_json_in_pull_take(r, close)) {
            put(c, out, obj ? "}" : "]");
            return 1;
        }
        size_t koff[CANON_MAX_KEYS], klen[CANON_MAX_KEYS], nk = 0;
        for (;;) {
            if (obj) {
                const char *k;
                size_t kn;
                /* a key of jansson's is NUL-terminated: pull_key refuses "\u0000" in one */
                if (nk == CANON_MAX_KEYS || !o2d_json_in_pull_key(r, &k, &kn) || k == NULL) {
                    return 0;
                }
                size_t at = out->len;
                put_str(c, out, k, kn);
                size_t l = out->len - at;
                for (size_t i = 0; i < nk; i++) {
                    if (klen[i] == l && memcmp(out->data + koff[i], out->data + at, l) == 0) {
                        return 0;
                    }
                }
                koff[nk] = at;
                klen[nk++] = l;
                put(c, out, ":");
            }
            if (!canon_value(c, r, out, depth + 1)) {
                return 0;
            }
            int more = o2d_json_in_pull_next(r, close);
            if (more == 0) {
                break;
            }
            if (more < 0) {
                return 0;
            }
            put(c, out, ",");
        }
        put(c, out, obj ? "}" : "]");
        return !c->nomem;
    }
    if (ch == '"') {
        const char *v;
        size_t vn;
        if (!pull_str(r, &v, &vn)) {
            return 0;
        }
        put_str(c, out, v, vn);
        return !c->nomem;
    }
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        struct o2d_json_in_num num;
        if (!o2d_json_in_pull_number(r, &num) || num.real) {
            return 0;
        }
        llmobs_check(c, o2d_json_append_int(out, num.i));
        return !c->nomem;
    }
    switch (o2d_json_in_pull_literal(r)) {
    case 't':
        put(c, out, "true");
        return 1;
    case 'f':
        put(c, out, "false");
        return 1;
    case 'n':
        put(c, out, "null");
        return 1;
    default:
        return 0;
    }
}

/* A string value into out, escaped (with its quotes); 0 when none comes next, or it holds a
 * NUL (what the general path reads with strlen). */
static int fast_cstr(struct llmobs_ctx *c, struct o2d_json_in_pull *r, struct o2d_buf *out)
{
    const char *v;
    size_t vn;
    if (!pull_str(r, &v, &vn) || memchr(v, '\0', vn) != NULL) {
        return 0;
    }
    o2d_buf_reset(out);
    put_str(c, out, v, vn);
    return !c->nomem;
}

/*
 * One part (keys in any order, each once): {"type": "text", "content": "..."} into content;
 * {"type": "tool_call", "id", "name", "arguments": {...}} (id optional) into tool_calls and
 * {"type": "tool_call_response", "id", "name", "response"} (id and name optional, response
 * not null) into tool_results, as parts_into's tool_call and tool_result write them.
 */
static int fast_part(struct llmobs_ctx *c, struct o2d_json_in_pull *r, const char *in, size_t in_n)
{
    enum { P_NONE, P_TEXT, P_CALL, P_RESP } type = P_NONE;
    int have_type = 0, have_content = 0, have_id = 0, have_name = 0, have_val = 0;
    struct o2d_buf *id = &c->part[0], *name = &c->part[1], *val = &c->part[2];
    if (!o2d_json_in_pull_take(r, '{')) {
        return 0;
    }
    do {
        const char *k, *v;
        size_t kn, vn;
        if (!pull_str(r, &k, &kn) || !o2d_json_in_pull_take(r, ':')) {
            return 0;
        }
        if (key_is(k, kn, "type") && !have_type) {
            if (!pull_str(r, &v, &vn)) {
                return 0;
            }
            type = key_is(v, vn, "text")                 ? P_TEXT
                   : key_is(v, vn, "tool_call")          ? P_CALL
                   : key_is(v, vn, "tool_call_response") ? P_RESP
                                                         : P_NONE;
            if (type == P_NONE) {
                return 0;
            }
            have_type = 1;
        } else if (key_is(k, kn, "content") && !have_content) {
            if (!pull_str(r, &v, &vn)) {
                return 0;
            }
            add_text_escaped(c, v, vn, inside(v, vn, in, in_n));
            have_content = 1;
        } else if (key_is(k, kn, "id") && !have_id) {
            if (!fast_cstr(c, r, id)) {
                return 0;
            }
            have_id = 1;
        } else if (key_is(k, kn, "name") && !have_name) {
            if (!fast_cstr(c, r, name)) {
                return 0;
            }
            have_name = 1;
        } else if (key_is(k, kn, "arguments") && !have_val && type != P_RESP) {
            /* an object: other shapes are read the general way */
            o2d_buf_reset(val);
            if (o2d_json_in_pull_peek(r) != '{' || !canon_value(c, r, val, 1)) {
                return 0;
            }
            have_val = P_CALL;
        } else if (key_is(k, kn, "response") && !have_val && type != P_CALL) {
            int ch = o2d_json_in_pull_peek(r);
            o2d_buf_reset(val);
            if (ch == '"') {
                if (!pull_str(r, &v, &vn)) {
                    return 0;
                }
                put_str(c, val, v, vn);
            } else {
                /* as llmobs_value_string_write: the compact JSON text, as a string */
                struct o2d_buf *t = &c->part[3];
                o2d_buf_reset(t);
                if (ch == 'n' || !canon_value(c, r, t, 1)) {
                    return 0;
                }
                put_str(c, val, (const char *)t->data, t->len);
            }
            have_val = P_RESP;
        } else {
            return 0;
        }
    } while (o2d_json_in_pull_take(r, ','));
    if (!have_type || !o2d_json_in_pull_take(r, '}') || c->nomem) {
        return 0;
    }
    if (type == P_TEXT) {
        return have_content && !have_id && !have_name && !have_val;
    }
    if (have_content || have_val != (int)type) {
        return 0;
    }
    struct o2d_buf *b;
    if (type == P_CALL) {
        /* an empty name is otel_warning_tool_call_name_missing: the general way */
        if (!have_name || name->len <= 2) {
            return 0;
        }
        b = list_item(c, MSG_TOOL_CALLS);
        put(c, b, "{\"name\":");
        llmobs_check(c, o2d_buf_append(b, name->data, name->len));
        put(c, b, ",\"arguments\":");
        llmobs_check(c, o2d_buf_append(b, val->data, val->len));
        if (have_id) {
            put(c, b, ",\"tool_id\":");
            llmobs_check(c, o2d_buf_append(b, id->data, id->len));
        }
        put(c, b, ",\"type\":\"function\"}");
    } else {
        b = list_item(c, MSG_TOOL_RESULTS);
        put(c, b, "{");
        if (have_name) {
            put(c, b, "\"name\":");
            llmobs_check(c, o2d_buf_append(b, name->data, name->len));
            put(c, b, ",");
        }
        put(c, b, "\"result\":");
        llmobs_check(c, o2d_buf_append(b, val->data, val->len));
        if (have_id) {
            put(c, b, ",\"tool_id\":");
            llmobs_check(c, o2d_buf_append(b, id->data, id->len));
        }
        put(c, b, ",\"type\":\"tool_result\"}");
    }
    return !c->nomem;
}

/* One message {"role": "...", "parts": [text parts], "finish_reason": "..."} (keys in any
 * order, each once; finish_reason optional) into c->msg. */
static int fast_message(struct llmobs_ctx *c, struct o2d_json_in_pull *r, const char *in,
                        size_t in_n)
{
    int have_role = 0, have_parts = 0, have_finish = 0;
    msg_reset(&c->msg);
    o2d_buf_reset(&c->scratch);
    if (!o2d_json_in_pull_take(r, '{')) {
        return 0;
    }
    do {
        const char *k, *v;
        size_t kn, vn;
        if (!pull_str(r, &k, &kn) || !o2d_json_in_pull_take(r, ':')) {
            return 0;
        }
        if (key_is(k, kn, "role") && !have_role) {
            /* an empty role (or one cut by a NUL) takes the general path's defaults */
            if (!pull_str(r, &v, &vn) || vn == 0 || memchr(v, '\0', vn) != NULL) {
                return 0;
            }
            llmobs_check(c, o2d_buf_append(&c->scratch, v, vn));
            llmobs_check(c, o2d_buf_append_byte(&c->scratch, '\0'));
            have_role = 1;
        } else if (key_is(k, kn, "parts") && !have_parts) {
            if (!o2d_json_in_pull_take(r, '[')) {
                return 0;
            }
            if (!o2d_json_in_pull_take(r, ']')) {
                do {
                    if (!fast_part(c, r, in, in_n)) {
                        return 0;
                    }
                } while (o2d_json_in_pull_take(r, ','));
                if (!o2d_json_in_pull_take(r, ']')) {
                    return 0;
                }
            }
            have_parts = 1;
        } else if (key_is(k, kn, "finish_reason") && !have_finish) {
            if (!pull_str(r, &v, &vn)) {
                return 0;
            }
            have_finish = 1;
        } else {
            return 0;
        }
    } while (o2d_json_in_pull_take(r, ','));
    if (!have_role || !have_parts || !o2d_json_in_pull_take(r, '}') || c->nomem) {
        return 0;
    }
    c->msg.role = (const char *)c->scratch.data;
    return 1;
}

int llmobs_messages_write_fast(struct llmobs_ctx *c, const char *s, size_t n, struct o2d_buf *b,
                               size_t *count)
{
    size_t len0 = b->len, count0 = *count;
    struct o2d_json_in_pull r;
    o2d_json_in_pull_init(&r, s, n);
    int ok = o2d_json_in_pull_take(&r, '[') && o2d_json_in_pull_peek(&r) == '{';
    while (ok) {
        ok = fast_message(c, &r, s, n);
        if (ok) {
            llmobs_msg_write(c, b, count);
            if (!o2d_json_in_pull_take(&r, ',')) {
                ok = o2d_json_in_pull_take(&r, ']') && o2d_json_in_pull_peek(&r) == -1;
                break;
            }
        }
    }
    o2d_json_in_pull_cleanup(&r);
    if (!ok) {
        b->len = len0;
        *count = count0;
    }
    return ok;
}

int llmobs_args_write_fast(struct llmobs_ctx *c, const char *s, size_t n, struct o2d_buf *out)
{
    if (n == 0) {
        put(c, out, "{}");
        return 1;
    }
    size_t mark = out->len;
    struct o2d_json_in_pull r;
    o2d_json_in_pull_init(&r, s, n);
    int ok;
    if (o2d_json_in_pull_peek(&r) == '{') {
        ok = canon_value(c, &r, out, ARGS_DEPTH) && o2d_json_in_pull_end(&r);
    } else {
        /* whatever it parses to, it is no object */
        put(c, out, "{\"value\":");
        put_str(c, out, s, n);
        put(c, out, "}");
        ok = 1;
    }
    o2d_json_in_pull_cleanup(&r);
    if (!ok || c->nomem) {
        out->len = mark;
        return 0;
    }
    return 1;
}

int llmobs_system_read_fast(struct llmobs_ctx *c, const char *s, size_t n)
{
    msg_reset(&c->msg);
    struct o2d_json_in_pull r;
    o2d_json_in_pull_init(&r, s, n);
    int ok = o2d_json_in_pull_take(&r, '[') && o2d_json_in_pull_peek(&r) == '{';
    while (ok) {
        ok = fast_part(c, &r, s, n);
        if (ok && !o2d_json_in_pull_take(&r, ',')) {
            ok = o2d_json_in_pull_take(&r, ']') && o2d_json_in_pull_peek(&r) == -1;
            break;
        }
    }
    o2d_json_in_pull_cleanup(&r);
    if (!ok || c->nomem) {
        msg_reset(&c->msg);
        return 0;
    }
    c->msg.role = "system";
    return 1;
}

void llmobs_tool_definition_write(struct llmobs_ctx *c, const json_t *d, struct o2d_buf *b,
                                  size_t *n)
{
    if (!json_is_object(d)) {
        llmobs_error(c, "otel_warning_tool_definition_entry_malformed");
        return;
    }
    const json_t *fn = json_object_get(d, "function");
    const json_t *src = json_is_object(fn) ? fn : d;
    const char *name = sget(src, "name");
    if (name == NULL) {
        llmobs_error(c, "otel_warning_tool_definition_entry_malformed");
        return;
    }
    if (*n > 0) {
        llmobs_check(c, o2d_buf_append_byte(b, ','));
    }
    (*n)++;
    put(c, b, "{\"name\":");
    put_str(c, b, name, strlen(name));
    const char *desc = sget(src, "description");
    if (desc != NULL) {
        put(c, b, ",\"description\":");
        put_str(c, b, desc, strlen(desc));
    }
    const json_t *schema = json_object_get(src, "parameters");
    if (schema == NULL) {
        schema = json_object_get(src, "input_schema");
    }
    if (json_is_string(schema)) {
        json_t *p = llmobs_parse(c, json_string_value(schema), json_string_length(schema));
        if (json_is_object(p)) {
            put(c, b, ",\"schema\":");
            llmobs_check(c, llmobs_json_write(b, p, SCHEMA_DEPTH));
        } else {
            llmobs_error(c, "otel_warning_tool_definition_entry_malformed");
        }
        json_decref(p);
    } else if (json_is_object(schema)) {
        put(c, b, ",\"schema\":");
        llmobs_check(c, llmobs_json_write(b, schema, SCHEMA_DEPTH));
    }
    put(c, b, "}");
}
