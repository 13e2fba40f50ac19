/*
 * otlp_print.c: OTLP attributes and values rendered as JSON for humans.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "o2d.h"
#include "o2d_json_out.h"
#include "otlp_print.h"

static int print_value(struct o2d_buf *b, const OtlpAnyValue *v, unsigned depth)
{
    if (v == NULL) {
        return o2d_buf_append_str(b, "null");
    }
    if (depth > OTLP_MAX_ANYVALUE_DEPTH * 2) {
        return o2d_buf_append_str(b, "\"...\"");
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return o2d_json_append_string(b, v->string_value, strlen(v->string_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return o2d_buf_append_str(b, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return o2d_buf_printf(b, "%" PRId64, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (!isfinite(v->double_value)) {
            return o2d_buf_append_str(b, isnan(v->double_value) ? "\"NaN\""
                                         : v->double_value > 0  ? "\"Infinity\""
                                                                : "\"-Infinity\"");
        }
        return o2d_buf_printf(b, "%.17g", v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        int rv = o2d_buf_append_str(b, "{\"bytes\":\"");
        if (rv == O2D_OK) {
            rv = o2d_hex_append(b, v->bytes_value.data, v->bytes_value.len);
        }
        return rv == O2D_OK ? o2d_buf_append_str(b, "\"}") : rv;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        int rv = o2d_buf_append_byte(b, '[');
        const Opentelemetry__Proto__Common__V1__ArrayValue *a = v->array_value;
        for (size_t i = 0; a != NULL && i < a->n_values && rv == O2D_OK; i++) {
            if (i > 0) {
                rv = o2d_buf_append_byte(b, ',');
            }
            if (rv == O2D_OK) {
                rv = print_value(b, a->values[i], depth + 1);
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, ']') : rv;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const Opentelemetry__Proto__Common__V1__KeyValueList *l = v->kvlist_value;
        int rv = o2d_buf_append_byte(b, '{');
        for (size_t i = 0; l != NULL && i < l->n_values && rv == O2D_OK; i++) {
            const OtlpKeyValue *kv = l->values[i];
            if (i > 0) {
                rv = o2d_buf_append_byte(b, ',');
            }
            if (rv == O2D_OK) {
                rv = o2d_json_append_string(b, kv->key, strlen(kv->key));
            }
            if (rv == O2D_OK) {
                rv = o2d_buf_append_byte(b, ':');
            }
            if (rv == O2D_OK) {
                rv = print_value(b, kv->value, depth + 1);
            }
        }
        return rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
    }
    default:
        return o2d_buf_append_str(b, "null");
    }
}

int otlp_print_anyvalue(struct o2d_buf *b, const OtlpAnyValue *v)
{
    return print_value(b, v, 0);
}

int otlp_print_attributes(struct o2d_buf *b, OtlpKeyValue *const *kv, size_t n)
{
    int rv = o2d_buf_append_byte(b, '{');
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        if (i > 0) {
            rv = o2d_buf_append_byte(b, ',');
        }
        if (rv == O2D_OK) {
            rv = o2d_json_append_string(b, kv[i]->key, strlen(kv[i]->key));
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append_byte(b, ':');
        }
        if (rv == O2D_OK) {
            rv = print_value(b, kv[i]->value, 0);
        }
    }
    return rv == O2D_OK ? o2d_buf_append_byte(b, '}') : rv;
}

const char *otlp_resource_string(const OtlpResource *r, const char *key)
{
    if (r == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < r->n_attributes; i++) {
        const OtlpKeyValue *kv = r->attributes[i];
        if (kv->value != NULL &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            strcmp(kv->key, key) == 0) {
            return kv->value->string_value;
        }
    }
    return NULL;
}

const char *otlp_span_kind_name(int kind)
{
    static const char *const names[] = {"unspecified", "internal", "server",
                                        "client",      "producer", "consumer"};
    return kind >= 0 && kind < 6 ? names[kind] : "unspecified";
}
