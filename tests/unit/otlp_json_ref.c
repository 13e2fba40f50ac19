/*
 * otlp_json_ref.c: the reference for test_otlp_json_diff.c, included by it and built nowhere
 * else. It is the OTLP/JSON decoder as it was before otlp_json.c became a streaming one:
 * jansson parses the whole body into a tree, then a walk builds the messages. The one rule
 * added since is a string field holding "\u0000", refused as otlp_json.c refuses it, and
 * metrics decoded whole (they were only counted then), written here as a walk too. Kept
 * only as a second, independently shaped implementation of the same rules to compare with.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "o2d.h"
#include "otlp.h"

typedef Opentelemetry__Proto__Trace__V1__Span__Event OtlpEvent;
typedef Opentelemetry__Proto__Trace__V1__Span__Link OtlpLink;
typedef Opentelemetry__Proto__Trace__V1__Status OtlpStatus;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope OtlpScope;
typedef Opentelemetry__Proto__Common__V1__ArrayValue OtlpArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList OtlpKeyValueList;

static const char REASON_NOT_JSON[] = "body is not valid JSON";
static const char REASON_TOO_LARGE[] = "decoded request exceeds the memory limit";

struct jdec {
    struct o2d_arena *a;
    const char *reason; /* static; set with the first error */
};

/* Nothing here owns anything (the arena holds it all), so a failure simply returns. */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int try_rv_ = (expr);                                                                      \
        if (try_rv_ != O2D_OK) {                                                                   \
            return try_rv_;                                                                        \
        }                                                                                          \
    } while (0)

static int invalid(struct jdec *d, const char *reason)
{
    d->reason = reason;
    return O2D_ERR_INVALID;
}

static int too_large(struct jdec *d)
{
    d->reason = REASON_TOO_LARGE;
    return O2D_ERR_TOO_LARGE;
}

/* n zeroed elements of `size` bytes; NULL past the arena's limit. */
static void *alloc_array(struct jdec *d, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = o2d_arena_alloc(d->a, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

/* A member by its JSON name, else by its proto name; NULL when absent or null. */
static json_t *field(json_t *obj, const char *json_name, const char *proto_name)
{
    json_t *v = json_object_get(obj, json_name);
    if ((v == NULL || json_is_null(v)) && proto_name != NULL) {
        v = json_object_get(obj, proto_name);
    }
    return json_is_null(v) ? NULL : v;
}

/* An array member: *arr is NULL and *n 0 when absent. */
static int get_array(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                     const char *bad, json_t **arr, size_t *n)
{
    json_t *v = field(obj, json_name, proto_name);
    *arr = NULL;
    *n = 0;
    if (v == NULL) {
        return O2D_OK;
    }
    if (!json_is_array(v)) {
        return invalid(d, bad);
    }
    *arr = v;
    *n = json_array_size(v);
    return O2D_OK;
}

/* An object member, NULL when absent. */
static int get_object(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                      const char *bad, json_t **out)
{
    json_t *v = field(obj, json_name, proto_name);
    if (v != NULL && !json_is_object(v)) {
        return invalid(d, bad);
    }
    *out = v;
    return O2D_OK;
}

static int get_string(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                      const char *bad, char **out)
{
    json_t *v = field(obj, json_name, proto_name);
    if (v == NULL) {
        return O2D_OK;
    }
    if (!json_is_string(v)) {
        return invalid(d, bad);
    }
    if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL) {
        return invalid(d, "a string holds a NUL character");
    }
    char *s = o2d_arena_strndup(d->a, json_string_value(v), json_string_length(v));
    if (s == NULL) {
        return too_large(d);
    }
    *out = s;
    return O2D_OK;
}

/* Digits with an optional leading '-': the magnitude, 0 if it is not that or overflows. */
static int parse_decimal(const char *s, size_t len, int *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = 0;
    *mag = 0;
    if (len > 0 && s[0] == '-') {
        *neg = 1;
        i = 1;
    }
    if (i == len) {
        return 0;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        unsigned digit = (unsigned)(s[i] - '0');
        if (*mag > (UINT64_MAX - digit) / 10) {
            return 0;
        }
        *mag = *mag * 10 + digit;
    }
    return 1;
}

/*
 * proto3 JSON integers: a JSON number without a fraction, or a decimal string (the only way
 * to carry the whole 64-bit range through JavaScript). 1 on success.
 */
static int to_uint64(json_t *v, uint64_t max, uint64_t *out)
{
    uint64_t u;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0) {
            return 0;
        }
        u = (uint64_t)i;
    } else if (json_is_real(v)) {
        double r = json_real_value(v);
        if (r != floor(r) || r < 0 || r >= 18446744073709551616.0) {
            return 0;
        }
        u = (uint64_t)r;
    } else if (json_is_string(v)) {
        int neg;
        if (!parse_decimal(json_string_value(v), json_string_length(v), &neg, &u) || neg) {
            return 0;
        }
    } else {
        return 0;
    }
    if (u > max) {
        return 0;
    }
    *out = u;
    return 1;
}

static int to_int64(json_t *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double r = json_real_value(v);
        if (r != floor(r) || r < -9223372036854775808.0 || r >= 9223372036854775808.0) {
            return 0;
        }
        x = (int64_t)r;
    } else if (json_is_string(v)) {
        int neg;
        uint64_t mag;
        if (!parse_decimal(json_string_value(v), json_string_length(v), &neg, &mag)) {
            return 0;
        }
        if (!neg && mag > (uint64_t)INT64_MAX) {
            return 0;
        }
        if (neg && mag > (uint64_t)INT64_MAX + 1) {
            return 0;
        }
        /* -(2^63) does not fit the positive side, so negate after the cast. */
        x = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    } else {
        return 0;
    }
    if (x < min || x > max) {
        return 0;
    }
    *out = x;
    return 1;
}

static int get_u32(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                   const char *bad, uint32_t *out)
{
    json_t *v = field(obj, json_name, proto_name);
    uint64_t u;
    if (v == NULL) {
        return O2D_OK;
    }
    if (!to_uint64(v, UINT32_MAX, &u)) {
        return invalid(d, bad);
    }
    *out = (uint32_t)u;
    return O2D_OK;
}

static int get_u64(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                   const char *bad, uint64_t *out)
{
    json_t *v = field(obj, json_name, proto_name);
    if (v == NULL) {
        return O2D_OK;
    }
    if (!to_uint64(v, UINT64_MAX, out)) {
        return invalid(d, bad);
    }
    return O2D_OK;
}

/* proto3 enums are open: any int32 is kept, as protobuf-c keeps it; a name must be known. */
static int get_enum(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                    const ProtobufCEnumDescriptor *desc, const char *bad, int *out)
{
    json_t *v = field(obj, json_name, proto_name);
    if (v == NULL) {
        return O2D_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v)) {
            return invalid(d, bad);
        }
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(desc, s);
        if (ev == NULL) {
            return invalid(d, bad);
        }
        *out = ev->value;
        return O2D_OK;
    }
    int64_t x;
    if (!json_is_number(v) || !to_int64(v, INT32_MIN, INT32_MAX, &x)) {
        return invalid(d, bad);
    }
    *out = (int)x;
    return O2D_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* OTLP/JSON departs from proto3 JSON here: trace and span ids are hex, not base64. */
static int get_hex_id(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                      const char *bad, ProtobufCBinaryData *out)
{
    json_t *v = field(obj, json_name, proto_name);
    if (v == NULL) {
        return O2D_OK;
    }
    if (!json_is_string(v)) {
        return invalid(d, bad);
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len % 2 != 0) {
        return invalid(d, bad);
    }
    if (len == 0) {
        out->len = 0;
        out->data = NULL;
        return O2D_OK;
    }
    uint8_t *p = o2d_arena_alloc(d->a, len / 2);
    if (p == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_digit(s[i]);
        int lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return invalid(d, bad);
        }
        p[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->len = len / 2;
    out->data = p;
    return O2D_OK;
}

/* Standard and URL-safe alphabets both, as proto3 JSON parsers accept either. */
static int base64_digit(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

/* Padding is optional, but when present it must complete the last group of four. */
static int decode_base64(struct jdec *d, const char *s, size_t len, const char *bad,
                         ProtobufCBinaryData *out)
{
    size_t pad = 0;
    if (len > 0 && s[len - 1] == '=') {
        pad = (len > 1 && s[len - 2] == '=') ? 2 : 1;
        if (len % 4 != 0) {
            return invalid(d, bad);
        }
    }
    size_t n = len - pad;
    if (n % 4 == 1) {
        return invalid(d, bad);
    }
    size_t out_len = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    out->len = 0;
    out->data = NULL;
    if (out_len == 0) {
        return O2D_OK;
    }
    uint8_t *p = o2d_arena_alloc(d->a, out_len);
    if (p == NULL) {
        return too_large(d);
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = base64_digit(s[i]);
        if (v < 0) {
            return invalid(d, bad);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out->len = out_len;
    out->data = p;
    return O2D_OK;
}

static int decode_keyvalues(struct jdec *d, json_t *arr, size_t n, unsigned depth, size_t *n_out,
                            OtlpKeyValue ***out);

static int decode_anyvalue(struct jdec *d, json_t *v, unsigned depth, OtlpAnyValue **out)
{
    if (depth > OTLP_MAX_ANYVALUE_DEPTH) {
        return invalid(d, "AnyValue nesting is too deep");
    }
    if (!json_is_object(v)) {
        return invalid(d, "AnyValue is not an object");
    }
    json_t *sv = field(v, "stringValue", "string_value");
    json_t *bv = field(v, "boolValue", "bool_value");
    json_t *iv = field(v, "intValue", "int_value");
    json_t *dv = field(v, "doubleValue", "double_value");
    json_t *av = field(v, "arrayValue", "array_value");
    json_t *kv = field(v, "kvlistValue", "kvlist_value");
    json_t *yv = field(v, "bytesValue", "bytes_value");
    int set = (sv != NULL) + (bv != NULL) + (iv != NULL) + (dv != NULL) + (av != NULL) +
              (kv != NULL) + (yv != NULL);
    if (set > 1) {
        return invalid(d, "AnyValue has more than one type");
    }

    OtlpAnyValue *val = o2d_arena_alloc(d->a, sizeof(*val));
    if (val == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__common__v1__any_value__init(val);

    if (sv != NULL) {
        TRY(get_string(d, v, "stringValue", "string_value", "AnyValue stringValue is not a string",
                       &val->string_value));
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    } else if (bv != NULL) {
        if (!json_is_boolean(bv)) {
            return invalid(d, "AnyValue boolValue is not a boolean");
        }
        val->bool_value = json_is_true(bv);
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    } else if (iv != NULL) {
        if (!to_int64(iv, INT64_MIN, INT64_MAX, &val->int_value)) {
            return invalid(d, "AnyValue intValue is not a valid int64");
        }
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    } else if (dv != NULL) {
        /* proto3 JSON spells the non-finite doubles as these strings. */
        const char *s = json_string_value(dv);
        if (json_is_number(dv)) {
            val->double_value = json_number_value(dv);
        } else if (s != NULL && strcmp(s, "NaN") == 0 && json_string_length(dv) == 3) {
            val->double_value = NAN;
        } else if (s != NULL && strcmp(s, "Infinity") == 0 && json_string_length(dv) == 8) {
            val->double_value = INFINITY;
        } else if (s != NULL && strcmp(s, "-Infinity") == 0 && json_string_length(dv) == 9) {
            val->double_value = -INFINITY;
        } else {
            return invalid(d, "AnyValue doubleValue is not a number");
        }
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    } else if (yv != NULL) {
        if (!json_is_string(yv)) {
            return invalid(d, "AnyValue bytesValue is not base64");
        }
        TRY(decode_base64(d, json_string_value(yv), json_string_length(yv),
                          "AnyValue bytesValue is not base64", &val->bytes_value));
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    } else if (av != NULL) {
        json_t *arr;
        size_t n;
        if (!json_is_object(av)) {
            return invalid(d, "AnyValue arrayValue is not an object");
        }
        TRY(get_array(d, av, "values", NULL, "ArrayValue values is not an array", &arr, &n));
        OtlpArrayValue *a = o2d_arena_alloc(d->a, sizeof(*a));
        if (a == NULL) {
            return too_large(d);
        }
        opentelemetry__proto__common__v1__array_value__init(a);
        if (n > 0) {
            a->values = alloc_array(d, n, sizeof(*a->values));
            if (a->values == NULL) {
                return too_large(d);
            }
        }
        for (size_t i = 0; i < n; i++) {
            TRY(decode_anyvalue(d, json_array_get(arr, i), depth + 1, &a->values[i]));
            a->n_values++;
        }
        val->array_value = a;
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    } else if (kv != NULL) {
        json_t *arr;
        size_t n;
        if (!json_is_object(kv)) {
            return invalid(d, "AnyValue kvlistValue is not an object");
        }
        TRY(get_array(d, kv, "values", NULL, "KeyValueList values is not an array", &arr, &n));
        OtlpKeyValueList *l = o2d_arena_alloc(d->a, sizeof(*l));
        if (l == NULL) {
            return too_large(d);
        }
        opentelemetry__proto__common__v1__key_value_list__init(l);
        TRY(decode_keyvalues(d, arr, n, depth + 1, &l->n_values, &l->values));
        val->kvlist_value = l;
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    }
    *out = val;
    return O2D_OK;
}

/* `depth` is that of the values; an absent value stays NULL, as in the binary form. */
static int decode_keyvalue(struct jdec *d, json_t *v, unsigned depth, OtlpKeyValue **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "attribute is not an object");
    }
    OtlpKeyValue *kv = o2d_arena_alloc(d->a, sizeof(*kv));
    if (kv == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    TRY(get_string(d, v, "key", NULL, "attribute key is not a string", &kv->key));
    json_t *value = field(v, "value", NULL);
    if (value != NULL) {
        TRY(decode_anyvalue(d, value, depth, &kv->value));
    }
    *out = kv;
    return O2D_OK;
}

static int decode_keyvalues(struct jdec *d, json_t *arr, size_t n, unsigned depth, size_t *n_out,
                            OtlpKeyValue ***out)
{
    if (n == 0) {
        return O2D_OK;
    }
    OtlpKeyValue **kvs = alloc_array(d, n, sizeof(*kvs));
    if (kvs == NULL) {
        return too_large(d);
    }
    *out = kvs;
    for (size_t i = 0; i < n; i++) {
        TRY(decode_keyvalue(d, json_array_get(arr, i), depth, &kvs[i]));
        (*n_out)++;
    }
    return O2D_OK;
}

/* An "attributes" member; `bad` names its owner when it is not an array. */
static int decode_attributes(struct jdec *d, json_t *obj, const char *json_name,
                             const char *proto_name, const char *bad, size_t *n_out,
                             OtlpKeyValue ***out)
{
    json_t *arr;
    size_t n;
    TRY(get_array(d, obj, json_name, proto_name, bad, &arr, &n));
    return decode_keyvalues(d, arr, n, 1, n_out, out);
}

static int decode_resource(struct jdec *d, json_t *obj, OtlpResource **out)
{
    json_t *v;
    TRY(get_object(d, obj, "resource", NULL, "resource is not an object", &v));
    if (v == NULL) {
        return O2D_OK;
    }
    OtlpResource *r = o2d_arena_alloc(d->a, sizeof(*r));
    if (r == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__resource__v1__resource__init(r);
    TRY(decode_attributes(d, v, "attributes", NULL, "resource attributes is not an array",
                          &r->n_attributes, &r->attributes));
    TRY(get_u32(d, v, "droppedAttributesCount", "dropped_attributes_count",
                "resource droppedAttributesCount is not a valid uint32",
                &r->dropped_attributes_count));
    *out = r;
    return O2D_OK;
}

static int decode_scope(struct jdec *d, json_t *obj, OtlpScope **out)
{
    json_t *v;
    TRY(get_object(d, obj, "scope", NULL, "scope is not an object", &v));
    if (v == NULL) {
        return O2D_OK;
    }
    OtlpScope *s = o2d_arena_alloc(d->a, sizeof(*s));
    if (s == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    TRY(get_string(d, v, "name", NULL, "scope name is not a string", &s->name));
    TRY(get_string(d, v, "version", NULL, "scope version is not a string", &s->version));
    TRY(decode_attributes(d, v, "attributes", NULL, "scope attributes is not an array",
                          &s->n_attributes, &s->attributes));
    TRY(get_u32(d, v, "droppedAttributesCount", "dropped_attributes_count",
                "scope droppedAttributesCount is not a valid uint32",
                &s->dropped_attributes_count));
    *out = s;
    return O2D_OK;
}

/* ---- traces ---- */

static int decode_event(struct jdec *d, json_t *v, OtlpEvent **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "span event is not an object");
    }
    OtlpEvent *e = o2d_arena_alloc(d->a, sizeof(*e));
    if (e == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__trace__v1__span__event__init(e);
    TRY(get_u64(d, v, "timeUnixNano", "time_unix_nano",
                "span event timeUnixNano is not a valid fixed64", &e->time_unix_nano));
    TRY(get_string(d, v, "name", NULL, "span event name is not a string", &e->name));
    TRY(decode_attributes(d, v, "attributes", NULL, "span event attributes is not an array",
                          &e->n_attributes, &e->attributes));
    TRY(get_u32(d, v, "droppedAttributesCount", "dropped_attributes_count",
                "span event droppedAttributesCount is not a valid uint32",
                &e->dropped_attributes_count));
    *out = e;
    return O2D_OK;
}

static int decode_link(struct jdec *d, json_t *v, OtlpLink **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "span link is not an object");
    }
    OtlpLink *l = o2d_arena_alloc(d->a, sizeof(*l));
    if (l == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__trace__v1__span__link__init(l);
    TRY(get_hex_id(d, v, "traceId", "trace_id", "span link traceId is not a hex string",
                   &l->trace_id));
    TRY(get_hex_id(d, v, "spanId", "span_id", "span link spanId is not a hex string", &l->span_id));
    TRY(get_string(d, v, "traceState", "trace_state", "span link traceState is not a string",
                   &l->trace_state));
    TRY(decode_attributes(d, v, "attributes", NULL, "span link attributes is not an array",
                          &l->n_attributes, &l->attributes));
    TRY(get_u32(d, v, "droppedAttributesCount", "dropped_attributes_count",
                "span link droppedAttributesCount is not a valid uint32",
                &l->dropped_attributes_count));
    TRY(get_u32(d, v, "flags", NULL, "span link flags is not a valid fixed32", &l->flags));
    *out = l;
    return O2D_OK;
}

static int decode_status(struct jdec *d, json_t *obj, OtlpStatus **out)
{
    json_t *v;
    TRY(get_object(d, obj, "status", NULL, "span status is not an object", &v));
    if (v == NULL) {
        return O2D_OK;
    }
    OtlpStatus *s = o2d_arena_alloc(d->a, sizeof(*s));
    if (s == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__trace__v1__status__init(s);
    TRY(get_string(d, v, "message", NULL, "span status message is not a string", &s->message));
    int code = s->code;
    TRY(get_enum(d, v, "code", NULL,
                 &opentelemetry__proto__trace__v1__status__status_code__descriptor,
                 "span status code is not a valid StatusCode", &code));
    s->code = code;
    *out = s;
    return O2D_OK;
}

static int decode_span(struct jdec *d, json_t *v, OtlpSpan **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "span is not an object");
    }
    OtlpSpan *s = o2d_arena_alloc(d->a, sizeof(*s));
    if (s == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__trace__v1__span__init(s);
    TRY(get_hex_id(d, v, "traceId", "trace_id", "span traceId is not a hex string", &s->trace_id));
    TRY(get_hex_id(d, v, "spanId", "span_id", "span spanId is not a hex string", &s->span_id));
    TRY(get_string(d, v, "traceState", "trace_state", "span traceState is not a string",
                   &s->trace_state));
    TRY(get_hex_id(d, v, "parentSpanId", "parent_span_id", "span parentSpanId is not a hex string",
                   &s->parent_span_id));
    TRY(get_u32(d, v, "flags", NULL, "span flags is not a valid fixed32", &s->flags));
    TRY(get_string(d, v, "name", NULL, "span name is not a string", &s->name));
    int kind = s->kind;
    TRY(get_enum(d, v, "kind", NULL, &opentelemetry__proto__trace__v1__span__span_kind__descriptor,
                 "span kind is not a valid SpanKind", &kind));
    s->kind = kind;
    TRY(get_u64(d, v, "startTimeUnixNano", "start_time_unix_nano",
                "span startTimeUnixNano is not a valid fixed64", &s->start_time_unix_nano));
    TRY(get_u64(d, v, "endTimeUnixNano", "end_time_unix_nano",
                "span endTimeUnixNano is not a valid fixed64", &s->end_time_unix_nano));
    TRY(decode_attributes(d, v, "attributes", NULL, "span attributes is not an array",
                          &s->n_attributes, &s->attributes));
    TRY(get_u32(d, v, "droppedAttributesCount", "dropped_attributes_count",
                "span droppedAttributesCount is not a valid uint32", &s->dropped_attributes_count));

    TRY(get_array(d, v, "events", NULL, "span events is not an array", &arr, &n));
    if (n > 0 && (s->events = alloc_array(d, n, sizeof(*s->events))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_event(d, json_array_get(arr, i), &s->events[i]));
        s->n_events++;
    }
    TRY(get_u32(d, v, "droppedEventsCount", "dropped_events_count",
                "span droppedEventsCount is not a valid uint32", &s->dropped_events_count));

    TRY(get_array(d, v, "links", NULL, "span links is not an array", &arr, &n));
    if (n > 0 && (s->links = alloc_array(d, n, sizeof(*s->links))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_link(d, json_array_get(arr, i), &s->links[i]));
        s->n_links++;
    }
    TRY(get_u32(d, v, "droppedLinksCount", "dropped_links_count",
                "span droppedLinksCount is not a valid uint32", &s->dropped_links_count));
    TRY(decode_status(d, v, &s->status));
    *out = s;
    return O2D_OK;
}

static int decode_scope_spans(struct jdec *d, json_t *v, OtlpScopeSpans **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "scopeSpans entry is not an object");
    }
    OtlpScopeSpans *ss = o2d_arena_alloc(d->a, sizeof(*ss));
    if (ss == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    TRY(decode_scope(d, v, &ss->scope));
    TRY(get_array(d, v, "spans", NULL, "spans is not an array", &arr, &n));
    if (n > 0 && (ss->spans = alloc_array(d, n, sizeof(*ss->spans))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_span(d, json_array_get(arr, i), &ss->spans[i]));
        ss->n_spans++;
    }
    TRY(get_string(d, v, "schemaUrl", "schema_url", "scopeSpans schemaUrl is not a string",
                   &ss->schema_url));
    *out = ss;
    return O2D_OK;
}

static int decode_resource_spans(struct jdec *d, json_t *v, OtlpResourceSpans **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "resourceSpans entry is not an object");
    }
    OtlpResourceSpans *rs = o2d_arena_alloc(d->a, sizeof(*rs));
    if (rs == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    TRY(decode_resource(d, v, &rs->resource));
    TRY(get_array(d, v, "scopeSpans", "scope_spans", "scopeSpans is not an array", &arr, &n));
    if (n > 0 && (rs->scope_spans = alloc_array(d, n, sizeof(*rs->scope_spans))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_scope_spans(d, json_array_get(arr, i), &rs->scope_spans[i]));
        rs->n_scope_spans++;
    }
    TRY(get_string(d, v, "schemaUrl", "schema_url", "resourceSpans schemaUrl is not a string",
                   &rs->schema_url));
    *out = rs;
    return O2D_OK;
}

static int decode_traces(struct jdec *d, json_t *root, void **msg)
{
    json_t *arr;
    size_t n;
    OtlpTraceReq *req = o2d_arena_alloc(d->a, sizeof(*req));
    if (req == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    TRY(get_array(d, root, "resourceSpans", "resource_spans", "resourceSpans is not an array", &arr,
                  &n));
    if (n > 0 && (req->resource_spans = alloc_array(d, n, sizeof(*req->resource_spans))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_resource_spans(d, json_array_get(arr, i), &req->resource_spans[i]));
        req->n_resource_spans++;
    }
    *msg = req;
    return O2D_OK;
}

/* ---- logs ---- */

static int decode_log_record(struct jdec *d, json_t *v, OtlpLogRecord **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "log record is not an object");
    }
    OtlpLogRecord *lr = o2d_arena_alloc(d->a, sizeof(*lr));
    if (lr == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__logs__v1__log_record__init(lr);
    TRY(get_u64(d, v, "timeUnixNano", "time_unix_nano",
                "log record timeUnixNano is not a valid fixed64", &lr->time_unix_nano));
    TRY(get_u64(d, v, "observedTimeUnixNano", "observed_time_unix_nano",
                "log record observedTimeUnixNano is not a valid fixed64",
                &lr->observed_time_unix_nano));
    int sev = lr->severity_number;
    TRY(get_enum(d, v, "severityNumber", "severity_number",
                 &opentelemetry__proto__logs__v1__severity_number__descriptor,
                 "log record severityNumber is not a valid SeverityNumber", &sev));
    lr->severity_number = sev;
    TRY(get_string(d, v, "severityText", "severity_text", "log record severityText is not a string",
                   &lr->severity_text));
    json_t *body = field(v, "body", NULL);
    if (body != NULL) {
        TRY(decode_anyvalue(d, body, 1, &lr->body));
    }
    TRY(decode_attributes(d, v, "attributes", NULL, "log record attributes is not an array",
                          &lr->n_attributes, &lr->attributes));
    TRY(get_u32(d, v, "droppedAttributesCount", "dropped_attributes_count",
                "log record droppedAttributesCount is not a valid uint32",
                &lr->dropped_attributes_count));
    TRY(get_u32(d, v, "flags", NULL, "log record flags is not a valid fixed32", &lr->flags));
    TRY(get_hex_id(d, v, "traceId", "trace_id", "log record traceId is not a hex string",
                   &lr->trace_id));
    TRY(get_hex_id(d, v, "spanId", "span_id", "log record spanId is not a hex string",
                   &lr->span_id));
    TRY(get_string(d, v, "eventName", "event_name", "log record eventName is not a string",
                   &lr->event_name));
    *out = lr;
    return O2D_OK;
}

static int decode_scope_logs(struct jdec *d, json_t *v, OtlpScopeLogs **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "scopeLogs entry is not an object");
    }
    OtlpScopeLogs *sl = o2d_arena_alloc(d->a, sizeof(*sl));
    if (sl == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    TRY(decode_scope(d, v, &sl->scope));
    TRY(get_array(d, v, "logRecords", "log_records", "logRecords is not an array", &arr, &n));
    if (n > 0 && (sl->log_records = alloc_array(d, n, sizeof(*sl->log_records))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_log_record(d, json_array_get(arr, i), &sl->log_records[i]));
        sl->n_log_records++;
    }
    TRY(get_string(d, v, "schemaUrl", "schema_url", "scopeLogs schemaUrl is not a string",
                   &sl->schema_url));
    *out = sl;
    return O2D_OK;
}

static int decode_resource_logs(struct jdec *d, json_t *v, OtlpResourceLogs **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "resourceLogs entry is not an object");
    }
    OtlpResourceLogs *rl = o2d_arena_alloc(d->a, sizeof(*rl));
    if (rl == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    TRY(decode_resource(d, v, &rl->resource));
    TRY(get_array(d, v, "scopeLogs", "scope_logs", "scopeLogs is not an array", &arr, &n));
    if (n > 0 && (rl->scope_logs = alloc_array(d, n, sizeof(*rl->scope_logs))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_scope_logs(d, json_array_get(arr, i), &rl->scope_logs[i]));
        rl->n_scope_logs++;
    }
    TRY(get_string(d, v, "schemaUrl", "schema_url", "resourceLogs schemaUrl is not a string",
                   &rl->schema_url));
    *out = rl;
    return O2D_OK;
}

static int decode_logs(struct jdec *d, json_t *root, void **msg)
{
    json_t *arr;
    size_t n;
    OtlpLogsReq *req = o2d_arena_alloc(d->a, sizeof(*req));
    if (req == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(req);
    TRY(get_array(d, root, "resourceLogs", "resource_logs", "resourceLogs is not an array", &arr,
                  &n));
    if (n > 0 && (req->resource_logs = alloc_array(d, n, sizeof(*req->resource_logs))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_resource_logs(d, json_array_get(arr, i), &req->resource_logs[i]));
        req->n_resource_logs++;
    }
    *msg = req;
    return O2D_OK;
}

/* ---- metrics ---- */

#define MCASE(msg, c) OPENTELEMETRY__PROTO__METRICS__V1__##msg##__##c

/* proto3 JSON doubles: a number, or the non-finite ones spelled as these strings. */
static int to_double(json_t *v, double *out)
{
    const char *s = json_string_value(v);
    if (json_is_number(v)) {
        *out = json_number_value(v);
    } else if (s != NULL && json_string_length(v) == 3 && strcmp(s, "NaN") == 0) {
        *out = NAN;
    } else if (s != NULL && json_string_length(v) == 8 && strcmp(s, "Infinity") == 0) {
        *out = INFINITY;
    } else if (s != NULL && json_string_length(v) == 9 && strcmp(s, "-Infinity") == 0) {
        *out = -INFINITY;
    } else {
        return 0;
    }
    return 1;
}

/* *present (when not NULL) says whether the member was there. */
static int get_double(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                      const char *bad, double *out, int *present)
{
    json_t *v = field(obj, json_name, proto_name);
    if (v == NULL) {
        return O2D_OK;
    }
    if (!to_double(v, out)) {
        return invalid(d, bad);
    }
    if (present != NULL) {
        *present = 1;
    }
    return O2D_OK;
}

static int get_i32(struct jdec *d, json_t *obj, const char *json_name, const char *bad,
                   int32_t *out)
{
    json_t *v = field(obj, json_name, NULL);
    int64_t x;
    if (v == NULL) {
        return O2D_OK;
    }
    if (!to_int64(v, INT32_MIN, INT32_MAX, &x)) {
        return invalid(d, bad);
    }
    *out = (int32_t)x;
    return O2D_OK;
}

/* A repeated uint64 (u64 != NULL) or double member, into an arena array. */
static int get_numbers(struct jdec *d, json_t *obj, const char *json_name, const char *proto_name,
                       const char *bad, const char *bad_array, size_t *n_out, uint64_t **u64,
                       double **dbl)
{
    json_t *arr;
    size_t n;
    TRY(get_array(d, obj, json_name, proto_name, bad_array, &arr, &n));
    if (n == 0) {
        return O2D_OK;
    }
    void *p = alloc_array(d, n, 8);
    if (p == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        int ok = u64 != NULL ? to_uint64(e, UINT64_MAX, &((uint64_t *)p)[i])
                             : to_double(e, &((double *)p)[i]);
        if (!ok) {
            return invalid(d, bad);
        }
    }
    if (u64 != NULL) {
        *u64 = p;
    } else {
        *dbl = p;
    }
    *n_out = n;
    return O2D_OK;
}

static int decode_times(struct jdec *d, json_t *v, uint64_t *start, uint64_t *time)
{
    TRY(get_u64(d, v, "startTimeUnixNano", "start_time_unix_nano",
                "data point startTimeUnixNano is not a valid fixed64", start));
    return get_u64(d, v, "timeUnixNano", "time_unix_nano",
                   "data point timeUnixNano is not a valid fixed64", time);
}

static int decode_exemplar(struct jdec *d, json_t *v, OtlpExemplar **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "exemplar is not an object");
    }
    OtlpExemplar *e = o2d_arena_alloc(d->a, sizeof(*e));
    if (e == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__exemplar__init(e);
    TRY(decode_attributes(d, v, "filteredAttributes", "filtered_attributes",
                          "exemplar filteredAttributes is not an array", &e->n_filtered_attributes,
                          &e->filtered_attributes));
    TRY(get_u64(d, v, "timeUnixNano", "time_unix_nano",
                "exemplar timeUnixNano is not a valid fixed64", &e->time_unix_nano));
    TRY(get_hex_id(d, v, "spanId", "span_id", "exemplar spanId is not a hex string", &e->span_id));
    TRY(get_hex_id(d, v, "traceId", "trace_id", "exemplar traceId is not a hex string",
                   &e->trace_id));
    json_t *dv = field(v, "asDouble", "as_double");
    json_t *iv = field(v, "asInt", "as_int");
    if (dv != NULL && iv != NULL) {
        return invalid(d, "exemplar has more than one value");
    }
    if (dv != NULL) {
        if (!to_double(dv, &e->as_double)) {
            return invalid(d, "exemplar asDouble is not a number");
        }
        e->value_case = MCASE(EXEMPLAR, VALUE_AS_DOUBLE);
    } else if (iv != NULL) {
        if (!to_int64(iv, INT64_MIN, INT64_MAX, &e->as_int)) {
            return invalid(d, "exemplar asInt is not a valid int64");
        }
        e->value_case = MCASE(EXEMPLAR, VALUE_AS_INT);
    }
    *out = e;
    return O2D_OK;
}

static int decode_exemplars(struct jdec *d, json_t *v, size_t *n_out, OtlpExemplar ***out)
{
    json_t *arr;
    size_t n;
    TRY(get_array(d, v, "exemplars", NULL, "data point exemplars is not an array", &arr, &n));
    if (n > 0 && (*out = alloc_array(d, n, sizeof(**out))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_exemplar(d, json_array_get(arr, i), &(*out)[i]));
        (*n_out)++;
    }
    return O2D_OK;
}

static int get_flags(struct jdec *d, json_t *v, uint32_t *out)
{
    return get_u32(d, v, "flags", NULL, "data point flags is not a valid uint32", out);
}

static int get_count(struct jdec *d, json_t *v, uint64_t *out)
{
    return get_u64(d, v, "count", NULL, "data point count is not a valid fixed64", out);
}

/* An upstream `optional double`: its case set when present. */
static int get_opt(struct jdec *d, json_t *v, const char *name, const char *bad, double *out,
                   int *case_out, int case_value)
{
    int present = 0;
    TRY(get_double(d, v, name, NULL, bad, out, &present));
    if (present) {
        *case_out = case_value;
    }
    return O2D_OK;
}

static int decode_number_point(struct jdec *d, json_t *v, OtlpNumberPoint **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "metric data point is not an object");
    }
    OtlpNumberPoint *p = o2d_arena_alloc(d->a, sizeof(*p));
    if (p == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    TRY(decode_attributes(d, v, "attributes", NULL, "data point attributes is not an array",
                          &p->n_attributes, &p->attributes));
    TRY(decode_times(d, v, &p->start_time_unix_nano, &p->time_unix_nano));
    TRY(decode_exemplars(d, v, &p->n_exemplars, &p->exemplars));
    TRY(get_flags(d, v, &p->flags));
    json_t *dv = field(v, "asDouble", "as_double");
    json_t *iv = field(v, "asInt", "as_int");
    if (dv != NULL && iv != NULL) {
        return invalid(d, "data point has more than one value");
    }
    if (dv != NULL) {
        if (!to_double(dv, &p->as_double)) {
            return invalid(d, "data point asDouble is not a number");
        }
        p->value_case = MCASE(NUMBER_DATA_POINT, VALUE_AS_DOUBLE);
    } else if (iv != NULL) {
        if (!to_int64(iv, INT64_MIN, INT64_MAX, &p->as_int)) {
            return invalid(d, "data point asInt is not a valid int64");
        }
        p->value_case = MCASE(NUMBER_DATA_POINT, VALUE_AS_INT);
    }
    *out = p;
    return O2D_OK;
}

static int decode_histogram_point(struct jdec *d, json_t *v, OtlpHistogramPoint **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "metric data point is not an object");
    }
    OtlpHistogramPoint *p = o2d_arena_alloc(d->a, sizeof(*p));
    if (p == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
    int c = 0;
    TRY(decode_attributes(d, v, "attributes", NULL, "data point attributes is not an array",
                          &p->n_attributes, &p->attributes));
    TRY(decode_times(d, v, &p->start_time_unix_nano, &p->time_unix_nano));
    TRY(get_count(d, v, &p->count));
    TRY(get_opt(d, v, "sum", "data point sum is not a number", &p->sum, &c,
                MCASE(HISTOGRAM_DATA_POINT, _SUM_SUM)));
    p->_sum_case = c;
    TRY(get_numbers(d, v, "bucketCounts", "bucket_counts",
                    "data point bucketCounts holds a value that is not a valid uint64",
                    "data point bucketCounts is not an array", &p->n_bucket_counts,
                    &p->bucket_counts, NULL));
    TRY(get_numbers(d, v, "explicitBounds", "explicit_bounds",
                    "data point explicitBounds holds a value that is not a number",
                    "data point explicitBounds is not an array", &p->n_explicit_bounds, NULL,
                    &p->explicit_bounds));
    TRY(decode_exemplars(d, v, &p->n_exemplars, &p->exemplars));
    TRY(get_flags(d, v, &p->flags));
    c = 0;
    TRY(get_opt(d, v, "min", "data point min is not a number", &p->min, &c,
                MCASE(HISTOGRAM_DATA_POINT, _MIN_MIN)));
    p->_min_case = c;
    c = 0;
    TRY(get_opt(d, v, "max", "data point max is not a number", &p->max, &c,
                MCASE(HISTOGRAM_DATA_POINT, _MAX_MAX)));
    p->_max_case = c;
    *out = p;
    return O2D_OK;
}

static int decode_buckets(struct jdec *d, json_t *obj, const char *name, OtlpExpBuckets **out)
{
    json_t *v;
    TRY(get_object(d, obj, name, NULL, "data point buckets is not an object", &v));
    if (v == NULL) {
        return O2D_OK;
    }
    OtlpExpBuckets *b = o2d_arena_alloc(d->a, sizeof(*b));
    if (b == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(b);
    TRY(get_i32(d, v, "offset", "buckets offset is not a valid sint32", &b->offset));
    TRY(get_numbers(d, v, "bucketCounts", "bucket_counts",
                    "buckets bucketCounts holds a value that is not a valid uint64",
                    "buckets bucketCounts is not an array", &b->n_bucket_counts, &b->bucket_counts,
                    NULL));
    *out = b;
    return O2D_OK;
}

static int decode_exp_point(struct jdec *d, json_t *v, OtlpExpHistogramPoint **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "metric data point is not an object");
    }
    OtlpExpHistogramPoint *p = o2d_arena_alloc(d->a, sizeof(*p));
    if (p == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(p);
    int c = 0;
    TRY(decode_attributes(d, v, "attributes", NULL, "data point attributes is not an array",
                          &p->n_attributes, &p->attributes));
    TRY(decode_times(d, v, &p->start_time_unix_nano, &p->time_unix_nano));
    TRY(get_count(d, v, &p->count));
    TRY(get_opt(d, v, "sum", "data point sum is not a number", &p->sum, &c,
                MCASE(EXPONENTIAL_HISTOGRAM_DATA_POINT, _SUM_SUM)));
    p->_sum_case = c;
    TRY(get_i32(d, v, "scale", "data point scale is not a valid sint32", &p->scale));
    TRY(get_u64(d, v, "zeroCount", "zero_count", "data point zeroCount is not a valid fixed64",
                &p->zero_count));
    TRY(decode_buckets(d, v, "positive", &p->positive));
    TRY(decode_buckets(d, v, "negative", &p->negative));
    TRY(get_flags(d, v, &p->flags));
    TRY(decode_exemplars(d, v, &p->n_exemplars, &p->exemplars));
    c = 0;
    TRY(get_opt(d, v, "min", "data point min is not a number", &p->min, &c,
                MCASE(EXPONENTIAL_HISTOGRAM_DATA_POINT, _MIN_MIN)));
    p->_min_case = c;
    c = 0;
    TRY(get_opt(d, v, "max", "data point max is not a number", &p->max, &c,
                MCASE(EXPONENTIAL_HISTOGRAM_DATA_POINT, _MAX_MAX)));
    p->_max_case = c;
    TRY(get_double(d, v, "zeroThreshold", "zero_threshold",
                   "data point zeroThreshold is not a number", &p->zero_threshold, NULL));
    *out = p;
    return O2D_OK;
}

static int decode_quantile(struct jdec *d, json_t *v, OtlpQuantile **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "quantile value is not an object");
    }
    OtlpQuantile *q = o2d_arena_alloc(d->a, sizeof(*q));
    if (q == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(q);
    TRY(get_double(d, v, "quantile", NULL, "quantile value quantile is not a number", &q->quantile,
                   NULL));
    TRY(get_double(d, v, "value", NULL, "quantile value value is not a number", &q->value, NULL));
    *out = q;
    return O2D_OK;
}

static int decode_summary_point(struct jdec *d, json_t *v, OtlpSummaryPoint **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "metric data point is not an object");
    }
    OtlpSummaryPoint *p = o2d_arena_alloc(d->a, sizeof(*p));
    if (p == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__summary_data_point__init(p);
    TRY(decode_attributes(d, v, "attributes", NULL, "data point attributes is not an array",
                          &p->n_attributes, &p->attributes));
    TRY(decode_times(d, v, &p->start_time_unix_nano, &p->time_unix_nano));
    TRY(get_count(d, v, &p->count));
    TRY(get_double(d, v, "sum", NULL, "data point sum is not a number", &p->sum, NULL));
    TRY(get_array(d, v, "quantileValues", "quantile_values",
                  "data point quantileValues is not an array", &arr, &n));
    if (n > 0 && (p->quantile_values = alloc_array(d, n, sizeof(*p->quantile_values))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_quantile(d, json_array_get(arr, i), &p->quantile_values[i]));
        p->n_quantile_values++;
    }
    TRY(get_flags(d, v, &p->flags));
    *out = p;
    return O2D_OK;
}

/* The points of one metric, of whichever kind, then its temporality and monotonicity. */
static int decode_metric_data(struct jdec *d, json_t *v, OtlpMetric *m)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "metric data is not an object");
    }
    TRY(get_array(d, v, "dataPoints", "data_points", "metric dataPoints is not an array", &arr,
                  &n));
    void **pts = NULL;
    if (n > 0 && (pts = alloc_array(d, n, sizeof(void *))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        switch (m->data_case) {
        case MCASE(METRIC, DATA_GAUGE):
        case MCASE(METRIC, DATA_SUM):
            TRY(decode_number_point(d, e, (OtlpNumberPoint **)&pts[i]));
            break;
        case MCASE(METRIC, DATA_HISTOGRAM):
            TRY(decode_histogram_point(d, e, (OtlpHistogramPoint **)&pts[i]));
            break;
        case MCASE(METRIC, DATA_EXPONENTIAL_HISTOGRAM):
            TRY(decode_exp_point(d, e, (OtlpExpHistogramPoint **)&pts[i]));
            break;
        default:
            TRY(decode_summary_point(d, e, (OtlpSummaryPoint **)&pts[i]));
            break;
        }
    }
    int temporality = 0;
    if (m->data_case != MCASE(METRIC, DATA_GAUGE) && m->data_case != MCASE(METRIC, DATA_SUMMARY)) {
        TRY(get_enum(d, v, "aggregationTemporality", "aggregation_temporality",
                     &opentelemetry__proto__metrics__v1__aggregation_temporality__descriptor,
                     "metric aggregationTemporality is not a valid AggregationTemporality",
                     &temporality));
    }
    switch (m->data_case) {
    case MCASE(METRIC, DATA_GAUGE): {
        Opentelemetry__Proto__Metrics__V1__Gauge *g = o2d_arena_alloc(d->a, sizeof(*g));
        if (g == NULL) {
            return too_large(d);
        }
        opentelemetry__proto__metrics__v1__gauge__init(g);
        g->n_data_points = n;
        g->data_points = (OtlpNumberPoint **)pts;
        m->gauge = g;
        break;
    }
    case MCASE(METRIC, DATA_SUM): {
        Opentelemetry__Proto__Metrics__V1__Sum *s = o2d_arena_alloc(d->a, sizeof(*s));
        if (s == NULL) {
            return too_large(d);
        }
        opentelemetry__proto__metrics__v1__sum__init(s);
        json_t *mono = field(v, "isMonotonic", "is_monotonic");
        if (mono != NULL && !json_is_boolean(mono)) {
            return invalid(d, "metric isMonotonic is not a boolean");
        }
        s->is_monotonic = mono != NULL && json_is_true(mono);
        s->aggregation_temporality = temporality;
        s->n_data_points = n;
        s->data_points = (OtlpNumberPoint **)pts;
        m->sum = s;
        break;
    }
    case MCASE(METRIC, DATA_HISTOGRAM): {
        Opentelemetry__Proto__Metrics__V1__Histogram *h = o2d_arena_alloc(d->a, sizeof(*h));
        if (h == NULL) {
            return too_large(d);
        }
        opentelemetry__proto__metrics__v1__histogram__init(h);
        h->aggregation_temporality = temporality;
        h->n_data_points = n;
        h->data_points = (OtlpHistogramPoint **)pts;
        m->histogram = h;
        break;
    }
    case MCASE(METRIC, DATA_EXPONENTIAL_HISTOGRAM): {
        Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *e =
            o2d_arena_alloc(d->a, sizeof(*e));
        if (e == NULL) {
            return too_large(d);
        }
        opentelemetry__proto__metrics__v1__exponential_histogram__init(e);
        e->aggregation_temporality = temporality;
        e->n_data_points = n;
        e->data_points = (OtlpExpHistogramPoint **)pts;
        m->exponential_histogram = e;
        break;
    }
    default: {
        Opentelemetry__Proto__Metrics__V1__Summary *s = o2d_arena_alloc(d->a, sizeof(*s));
        if (s == NULL) {
            return too_large(d);
        }
        opentelemetry__proto__metrics__v1__summary__init(s);
        s->n_data_points = n;
        s->data_points = (OtlpSummaryPoint **)pts;
        m->summary = s;
        break;
    }
    }
    return O2D_OK;
}

static const struct {
    const char *json_name;
    const char *proto_name;
    Opentelemetry__Proto__Metrics__V1__Metric__DataCase data_case;
} metric_kinds[] = {
    {"gauge", NULL, MCASE(METRIC, DATA_GAUGE)},
    {"sum", NULL, MCASE(METRIC, DATA_SUM)},
    {"histogram", NULL, MCASE(METRIC, DATA_HISTOGRAM)},
    {"exponentialHistogram", "exponential_histogram", MCASE(METRIC, DATA_EXPONENTIAL_HISTOGRAM)},
    {"summary", NULL, MCASE(METRIC, DATA_SUMMARY)},
};

static int decode_metric(struct jdec *d, json_t *v, OtlpMetric **out)
{
    if (!json_is_object(v)) {
        return invalid(d, "metric is not an object");
    }
    OtlpMetric *m = o2d_arena_alloc(d->a, sizeof(*m));
    if (m == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__metric__init(m);
    TRY(get_string(d, v, "name", NULL, "metric name is not a string", &m->name));
    TRY(get_string(d, v, "description", NULL, "metric description is not a string",
                   &m->description));
    TRY(get_string(d, v, "unit", NULL, "metric unit is not a string", &m->unit));
    TRY(decode_attributes(d, v, "metadata", NULL, "metric metadata is not an array", &m->n_metadata,
                          &m->metadata));

    json_t *data = NULL;
    size_t kind = 0;
    for (size_t i = 0; i < sizeof(metric_kinds) / sizeof(metric_kinds[0]); i++) {
        json_t *x = field(v, metric_kinds[i].json_name, metric_kinds[i].proto_name);
        if (x == NULL) {
            continue;
        }
        if (data != NULL) {
            return invalid(d, "metric has more than one data type");
        }
        data = x;
        kind = i;
    }
    if (data != NULL) {
        m->data_case = metric_kinds[kind].data_case;
        TRY(decode_metric_data(d, data, m));
    }
    *out = m;
    return O2D_OK;
}

static int decode_scope_metrics(struct jdec *d, json_t *v, OtlpScopeMetrics **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "scopeMetrics entry is not an object");
    }
    OtlpScopeMetrics *sm = o2d_arena_alloc(d->a, sizeof(*sm));
    if (sm == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    TRY(decode_scope(d, v, &sm->scope));
    TRY(get_array(d, v, "metrics", NULL, "metrics is not an array", &arr, &n));
    if (n > 0 && (sm->metrics = alloc_array(d, n, sizeof(*sm->metrics))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_metric(d, json_array_get(arr, i), &sm->metrics[i]));
        sm->n_metrics++;
    }
    TRY(get_string(d, v, "schemaUrl", "schema_url", "scopeMetrics schemaUrl is not a string",
                   &sm->schema_url));
    *out = sm;
    return O2D_OK;
}

static int decode_resource_metrics(struct jdec *d, json_t *v, OtlpResourceMetrics **out)
{
    json_t *arr;
    size_t n;
    if (!json_is_object(v)) {
        return invalid(d, "resourceMetrics entry is not an object");
    }
    OtlpResourceMetrics *rm = o2d_arena_alloc(d->a, sizeof(*rm));
    if (rm == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    TRY(decode_resource(d, v, &rm->resource));
    TRY(get_array(d, v, "scopeMetrics", "scope_metrics", "scopeMetrics is not an array", &arr, &n));
    if (n > 0 && (rm->scope_metrics = alloc_array(d, n, sizeof(*rm->scope_metrics))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_scope_metrics(d, json_array_get(arr, i), &rm->scope_metrics[i]));
        rm->n_scope_metrics++;
    }
    TRY(get_string(d, v, "schemaUrl", "schema_url", "resourceMetrics schemaUrl is not a string",
                   &rm->schema_url));
    *out = rm;
    return O2D_OK;
}

static int decode_metrics(struct jdec *d, json_t *root, void **msg)
{
    json_t *arr;
    size_t n;
    OtlpMetricsReq *req = o2d_arena_alloc(d->a, sizeof(*req));
    if (req == NULL) {
        return too_large(d);
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(req);
    TRY(get_array(d, root, "resourceMetrics", "resource_metrics", "resourceMetrics is not an array",
                  &arr, &n));
    if (n > 0 &&
        (req->resource_metrics = alloc_array(d, n, sizeof(*req->resource_metrics))) == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        TRY(decode_resource_metrics(d, json_array_get(arr, i), &req->resource_metrics[i]));
        req->n_resource_metrics++;
    }
    *msg = req;
    return O2D_OK;
}

static int otlp_json_ref_decode(struct o2d_arena *a, enum otlp_signal sig, const uint8_t *body,
                                size_t len, void **msg, const char **reason)
{
    struct jdec d = {.a = a, .reason = NULL};
    json_t *root = NULL;
    json_error_t err;
    int rv = O2D_ERR_INVALID;

    *msg = NULL;
    *reason = NULL;
    if (len == 0) {
        /* Like otlp_decode(): an empty body is an empty request. */
        root = json_object();
    } else {
        /* NULs inside strings are allowed because protobuf strings may hold them too. */
        root = json_loadb((const char *)body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    }
    if (root == NULL) {
        if (len == 0 || json_error_code(&err) == json_error_out_of_memory) {
            rv = O2D_ERR_NOMEM;
            d.reason = "out of memory";
        } else if (json_error_code(&err) == json_error_numeric_overflow) {
            d.reason = "a number in the body is out of range";
        } else {
            d.reason = REASON_NOT_JSON;
        }
        goto out;
    }
    if (!json_is_object(root)) {
        d.reason = "body is not a JSON object";
        goto out;
    }

    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        rv = decode_traces(&d, root, msg);
        break;
    case OTLP_SIGNAL_LOGS:
        rv = decode_logs(&d, root, msg);
        break;
    case OTLP_SIGNAL_METRICS:
        rv = decode_metrics(&d, root, msg);
        break;
    default:
        rv = O2D_ERR_INTERNAL;
        d.reason = "unknown signal";
        break;
    }
    if (rv != O2D_OK) {
        *msg = NULL;
    }

out:
    json_decref(root);
    *reason = d.reason;
    return rv;
}
