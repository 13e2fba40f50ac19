/*
 * otlp_json.c: OTLP/JSON request bodies into the protobuf-c structures that
 * protobuf_c_message_unpack() gives for the same request in binary form, so everything after
 * decoding is shared by both encodings.
 *
 * Follows the OTLP JSON mapping (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding),
 * which is proto3 JSON with ids as hex: lowerCamelCase names with the proto names accepted too
 * (the lowerCamelCase one wins when both are present), null as absent, unknown fields ignored,
 * 64-bit integers as numbers or decimal strings, enums as integers or names, bytes as base64
 * (standard or URL-safe, padded or not). The text must be one JSON value exactly as jansson's
 * json_loadb(JSON_DECODE_ANY | JSON_ALLOW_NUL) accepts it (UTF-8 checked, integers within
 * int64 and reals within a double, "a number in the body is out of range" otherwise), and a
 * repeated key keeps its last value, as jansson's object does.
 *
 * Streaming: the body is read once with o2d_json_in's pull reader and the messages are built
 * as it goes, straight into the request's arena; no tree of the body is ever built. Every
 * byte the decoding keeps is arena bytes, so the arena's limit bounds it and a body that
 * expands past it is refused as "decoded request exceeds the memory limit". Arrays of unknown
 * length collect their element pointers on one stack in the arena (grown by doubling) and are
 * copied once to their exact size when they close. Strings with escapes are decoded straight
 * into the arena too, so nothing outside it grows with the body: the reader's 64-byte key
 * buffer, and about 1.3 KiB of C stack per open object, some 130 KiB at the deepest (kvlists
 * nested to the AnyValue limit). A body that is one long number is the one exception: the
 * reader copies it to parse it.
 *
 * Cost, measured with tests/bench/json_arena.c (arena bytes used / body bytes): 1.4 to 1.9
 * for what SDKs send (the OTel JS SDK's JSON from gen_json_bodies.js: 1.84 for 10 to 21000
 * spans, 1.47 for the LLM mix; the tests/data/json fixtures: 1.4 to 1.7; bodies under 1 KB pay
 * a fixed few hundred bytes more), about 3 for bodies of many small int attributes, and more
 * for hostile bodies of empty objects, each of which still costs a whole message: 26 for {}
 * attributes or array values, 42 for {} gauge points, 63 and 68 for {} histogram and
 * exponential histogram points (bodies of 10^5 points), 79 for {} spans (a 200-byte Span for
 * 3 bytes of text); metric points that say something cost 2 to 5 (a timestamp and a value:
 * 2.3; eight buckets: 4.7).
 * The receivers' memory budget, which every arena block is charged to
 * (collector/receivers/ingest.c), bounds those.
 * The jansson tree walk this replaced needed 8 to 11.5 times the body for SDK bodies, 20 for
 * small attributes, and most of it outside the arena's limit.
 *
 * Errors keep the old tree walk's order: a body that is not JSON is refused as such wherever
 * the fault is; otherwise an object's fields are checked in a fixed order (the order of the
 * tables below), not in the order of the text, and an array stops at its first bad element.
 * So a member's value that is wrong is remembered, not reported, until the object closes: a
 * later member with the same name may still replace it.
 *
 * A string field holding "\u0000" is refused ("a string holds a NUL character"): protobuf-c
 * strings are NUL-terminated, so everything after decoding would silently cut it there.
 * otlp_pbcheck.c refuses a NUL byte in a protobuf string field with the same reason.
 *
 * Metrics are decoded whole, as metrics.proto declares them: repeated numbers (bucketCounts as
 * numbers or decimal strings, explicitBounds as numbers or the non-finite names), the one-field
 * oneofs that stand for upstream's `optional double` sum, min and max, and exemplars (with
 * their ids in hex, as OTLP/JSON writes every trace and span id).
 *
 * Deliberately left to others: id lengths and all-zero ids (otlp_decode() checks them for both
 * encodings), counting, what metric data points mean (translate/metrics). Resource entityRefs
 * are skipped.
 *
 * AnyValue depth counts AnyValues: an attribute value or a log body is at depth 1, a value
 * inside its arrayValue or kvlistValue at depth 2, and so on; past OTLP_MAX_ANYVALUE_DEPTH the
 * request is invalid.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "o2d.h"
#include "o2d_hex.h"
#include "o2d_json_in.h"
#include "otlp.h"

typedef Opentelemetry__Proto__Trace__V1__Span__Event OtlpEvent;
typedef Opentelemetry__Proto__Trace__V1__Span__Link OtlpLink;
typedef Opentelemetry__Proto__Trace__V1__Status OtlpStatus;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope OtlpScope;
typedef Opentelemetry__Proto__Common__V1__ArrayValue OtlpArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList OtlpKeyValueList;
typedef Opentelemetry__Proto__Metrics__V1__Gauge OtlpGauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum OtlpSum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram OtlpHistogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram OtlpExpHistogram;
typedef Opentelemetry__Proto__Metrics__V1__Summary OtlpSummary;

static const char REASON_NOT_JSON[] = "body is not valid JSON";
static const char REASON_RANGE[] = "a number in the body is out of range";
static const char REASON_TOO_LARGE[] = "decoded request exceeds the memory limit";
static const char REASON_NUL[] = "a string holds a NUL character";

/*
 * What a decoding step returns: OK, or BAD when the value was wrong for its field (d->bad
 * says why; the value has been read to its end, so the caller goes on), or STOP when nothing
 * more can be read (the text is not JSON, or memory ran out; d says which).
 */
enum { OK = 0, BAD = 1, STOP = 2 };

enum kind {
    K_STRING, /* char *, NUL-terminated copy */
    K_HEX,    /* ProtobufCBinaryData from a hex string (trace and span ids) */
    K_BYTES,  /* ProtobufCBinaryData from base64 */
    K_U32,
    K_U64,
    K_INT64,
    K_I32,        /* int32_t (sint32) */
    K_DOUBLE,     /* a number, or "NaN", "Infinity", "-Infinity" */
    K_OPT_DOUBLE, /* a K_DOUBLE, and case_value stored at n_off: a one-field oneof's case */
    K_BOOL,       /* protobuf_c_boolean */
    K_ENUM,       /* int: a number, or a name of the enum */
    K_MSG,        /* pointer to a message of `sub` */
    K_REP,        /* size_t count at n_off and an array of pointers to messages of `sub` */
    K_REP_U64,    /* size_t count at n_off and an array of uint64_t (K_U64 elements) */
    K_REP_DOUBLE, /* size_t count at n_off and an array of double (K_DOUBLE elements) */
};

struct jmsg;

struct jfield {
    const char *json_name;
    const char *proto_name; /* NULL when the same */
    unsigned char kind;
    unsigned char av_inc; /* 1 where the AnyValues below sit one level deeper */
    unsigned short off;
    unsigned short n_off;
    int case_value; /* for a member of the message's oneof */
    const struct jmsg *sub;
    const ProtobufCEnumDescriptor *en;
    const char *bad; /* the value has the wrong type (K_REP_*: an element has) */
    const char *bad_array;
};

#define MAX_FIELDS 16

struct jmsg {
    size_t size;
    void (*init)(void *);
    const char *not_object;
    const struct jfield *fields;
    unsigned n_fields;
    unsigned oneof_first; /* fields from here on are one oneof; n_fields when there is none */
    size_t case_off;
    const char *oneof_bad;
    int anyvalue; /* its depth is bounded */
};

/* One member's value as read, before the object closes and picks what it keeps. */
union jvalue {
    char *s;
    ProtobufCBinaryData b;
    uint64_t u;
    int64_t i;
    double d;
    int e;
    void *p;
    struct {
        void *a;
        size_t n;
    } r;
};

enum { ABSENT = 0, SET, WRONG };

struct jslot {
    unsigned char state;
    const char *bad;
    union jvalue v;
};

/* One element of an array being read: a message, or a number of a repeated scalar field. */
union jelem {
    void *p;
    uint64_t u;
    double d;
};

struct jdec {
    struct o2d_arena *a;
    struct o2d_json_in_pull r;
    const char *bad;    /* why the last BAD */
    int stop_status;    /* with STOP: O2D_ERR_TOO_LARGE, or 0 when the reader failed */
    union jelem *stack; /* elements of the arrays being read, in the arena */
    size_t top, cap;
};

static int bad(struct jdec *d, const char *reason)
{
    d->bad = reason;
    return BAD;
}

static int too_large(struct jdec *d)
{
    d->stop_status = O2D_ERR_TOO_LARGE;
    return STOP;
}

/* Skips a wrong value and reports it as `reason`. */
static int skip_bad(struct jdec *d, size_t depth, const char *reason)
{
    if (!o2d_json_in_pull_skip(&d->r, depth)) {
        return STOP;
    }
    return bad(d, reason);
}

static int push(struct jdec *d, union jelem e)
{
    if (d->top == d->cap) {
        /* The old block stays in the arena: at most as much again as the largest stack. */
        size_t cap = d->cap ? d->cap * 2 : 64;
        union jelem *s = o2d_arena_alloc(d->a, cap * sizeof(*s));
        if (s == NULL) {
            return too_large(d);
        }
        if (d->top > 0) {
            memcpy(s, d->stack, d->top * sizeof(*s));
        }
        d->stack = s;
        d->cap = cap;
    }
    d->stack[d->top++] = e;
    return OK;
}

/* ---- scalars ---- */

enum jtype { T_OTHER, T_STRING, T_INT, T_REAL, T_TRUE, T_FALSE };

struct jscalar {
    enum jtype type;
    const char *s; /* T_STRING: in the text, or in the arena and NUL-terminated */
    size_t len;
    int in_arena;
    struct o2d_json_in_num num;
};

/* Reads any value; an object or array is skipped and typed T_OTHER. null never comes here. */
static int read_scalar(struct jdec *d, size_t depth, struct jscalar *v)
{
    int c = o2d_json_in_pull_peek(&d->r);
    v->type = T_OTHER;
    if (c == '"') {
        int rv = o2d_json_in_pull_string_arena(&d->r, d->a, &v->s, &v->len, &v->in_arena);
        if (rv <= 0) {
            return rv < 0 ? too_large(d) : STOP;
        }
        v->type = T_STRING;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (!o2d_json_in_pull_number(&d->r, &v->num)) {
            return STOP;
        }
        v->type = v->num.real ? T_REAL : T_INT;
    } else if (c == 't' || c == 'f') {
        int lit = o2d_json_in_pull_literal(&d->r);
        if (lit == 0) {
            return STOP;
        }
        v->type = lit == 't' ? T_TRUE : lit == 'f' ? T_FALSE : T_OTHER;
    } else if (!o2d_json_in_pull_skip(&d->r, depth)) {
        return STOP;
    }
    return OK;
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
static int to_uint64(const struct jscalar *v, uint64_t max, uint64_t *out)
{
    uint64_t u;
    if (v->type == T_INT) {
        if (v->num.i < 0) {
            return 0;
        }
        u = (uint64_t)v->num.i;
    } else if (v->type == T_REAL) {
        double r = v->num.d;
        if (r != floor(r) || r < 0 || r >= 18446744073709551616.0) {
            return 0;
        }
        u = (uint64_t)r;
    } else if (v->type == T_STRING) {
        int neg;
        if (!parse_decimal(v->s, v->len, &neg, &u) || neg) {
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

static int to_int64(const struct jscalar *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t x;
    if (v->type == T_INT) {
        x = v->num.i;
    } else if (v->type == T_REAL) {
        double r = v->num.d;
        if (r != floor(r) || r < -9223372036854775808.0 || r >= 9223372036854775808.0) {
            return 0;
        }
        x = (int64_t)r;
    } else if (v->type == T_STRING) {
        int neg;
        uint64_t mag;
        if (!parse_decimal(v->s, v->len, &neg, &mag)) {
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

/* OTLP/JSON departs from proto3 JSON here: trace and span ids are hex, not base64. */
static int decode_hex(struct jdec *d, const char *s, size_t len, const char *why,
                      ProtobufCBinaryData *out)
{
    out->len = 0;
    out->data = NULL;
    if (len % 2 != 0) {
        return bad(d, why);
    }
    for (size_t i = 0; i < len; i++) {
        if (o2d_hex_digit(s[i]) < 0) {
            return bad(d, why);
        }
    }
    if (len == 0) {
        return OK;
    }
    uint8_t *p = o2d_arena_alloc(d->a, len / 2);
    if (p == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < len; i += 2) {
        p[i / 2] = (uint8_t)(o2d_hex_digit(s[i]) << 4 | o2d_hex_digit(s[i + 1]));
    }
    out->len = len / 2;
    out->data = p;
    return OK;
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
static int decode_base64(struct jdec *d, const char *s, size_t len, const char *why,
                         ProtobufCBinaryData *out)
{
    size_t pad = 0;
    out->len = 0;
    out->data = NULL;
    if (len > 0 && s[len - 1] == '=') {
        pad = (len > 1 && s[len - 2] == '=') ? 2 : 1;
        if (len % 4 != 0) {
            return bad(d, why);
        }
    }
    size_t n = len - pad;
    if (n % 4 == 1) {
        return bad(d, why);
    }
    for (size_t i = 0; i < n; i++) {
        if (base64_digit(s[i]) < 0) {
            return bad(d, why);
        }
    }
    size_t out_len = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (out_len == 0) {
        return OK;
    }
    uint8_t *p = o2d_arena_alloc(d->a, out_len);
    if (p == NULL) {
        return too_large(d);
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (uint32_t)base64_digit(s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out->len = out_len;
    out->data = p;
    return OK;
}

/* proto3 enums are open: any int32 is kept, as protobuf-c keeps it; a name must be known. */
static int to_enum(const struct jscalar *v, const ProtobufCEnumDescriptor *desc, int *out)
{
    if (v->type == T_STRING) {
        char name[64];
        if (v->len >= sizeof(name) || memchr(v->s, '\0', v->len) != NULL) {
            return 0; /* longer than any name we know */
        }
        memcpy(name, v->s, v->len);
        name[v->len] = '\0';
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(desc, name);
        if (ev == NULL) {
            return 0;
        }
        *out = ev->value;
        return 1;
    }
    int64_t x;
    if ((v->type != T_INT && v->type != T_REAL) || !to_int64(v, INT32_MIN, INT32_MAX, &x)) {
        return 0;
    }
    *out = (int)x;
    return 1;
}

/* proto3 JSON doubles: a number, or the non-finite ones spelled as these strings. */
static int to_double(const struct jscalar *v, double *out)
{
    if (v->type == T_INT || v->type == T_REAL) {
        *out = v->num.d;
    } else if (v->type == T_STRING && v->len == 3 && memcmp(v->s, "NaN", 3) == 0) {
        *out = NAN;
    } else if (v->type == T_STRING && v->len == 8 && memcmp(v->s, "Infinity", 8) == 0) {
        *out = INFINITY;
    } else if (v->type == T_STRING && v->len == 9 && memcmp(v->s, "-Infinity", 9) == 0) {
        *out = -INFINITY;
    } else {
        return 0;
    }
    return 1;
}

static int decode_scalar(struct jdec *d, const struct jfield *f, size_t depth, union jvalue *out)
{
    struct jscalar v;
    int rv = read_scalar(d, depth, &v);
    if (rv != OK) {
        return rv;
    }
    switch (f->kind) {
    case K_STRING:
        if (v.type != T_STRING) {
            return bad(d, f->bad);
        }
        if (memchr(v.s, '\0', v.len) != NULL) {
            return bad(d, REASON_NUL);
        }
        out->s = v.in_arena ? (char *)v.s : o2d_arena_strndup(d->a, v.s, v.len);
        return out->s != NULL ? OK : too_large(d);
    case K_HEX:
        return v.type == T_STRING ? decode_hex(d, v.s, v.len, f->bad, &out->b) : bad(d, f->bad);
    case K_BYTES:
        return v.type == T_STRING ? decode_base64(d, v.s, v.len, f->bad, &out->b) : bad(d, f->bad);
    case K_U32:
        return to_uint64(&v, UINT32_MAX, &out->u) ? OK : bad(d, f->bad);
    case K_U64:
        return to_uint64(&v, UINT64_MAX, &out->u) ? OK : bad(d, f->bad);
    case K_INT64:
        return to_int64(&v, INT64_MIN, INT64_MAX, &out->i) ? OK : bad(d, f->bad);
    case K_I32:
        return to_int64(&v, INT32_MIN, INT32_MAX, &out->i) ? OK : bad(d, f->bad);
    case K_BOOL:
        if (v.type != T_TRUE && v.type != T_FALSE) {
            return bad(d, f->bad);
        }
        out->e = v.type == T_TRUE;
        return OK;
    case K_ENUM:
        return to_enum(&v, f->en, &out->e) ? OK : bad(d, f->bad);
    default: /* K_DOUBLE, K_OPT_DOUBLE */
        return to_double(&v, &out->d) ? OK : bad(d, f->bad);
    }
}

/* ---- messages and arrays ---- */

static int decode_msg(struct jdec *d, const struct jmsg *m, size_t depth, unsigned av, void **out);

/* After a bad element: the rest of the array is only checked to be JSON. */
static int skip_rest(struct jdec *d, size_t depth)
{
    for (;;) {
        int more = o2d_json_in_pull_next(&d->r, ']');
        if (more < 0) {
            return STOP;
        }
        if (more == 0) {
            return BAD;
        }
        if (!o2d_json_in_pull_skip(&d->r, depth + 1)) {
            return STOP;
        }
    }
}

/* One element of a K_REP_U64 or K_REP_DOUBLE array. */
static int decode_number_elem(struct jdec *d, const struct jfield *f, size_t depth, union jelem *e)
{
    struct jscalar v;
    int rv = read_scalar(d, depth, &v);
    if (rv != OK) {
        return rv;
    }
    int ok = f->kind == K_REP_U64 ? to_uint64(&v, UINT64_MAX, &e->u) : to_double(&v, &e->d);
    return ok ? OK : bad(d, f->bad);
}

/* An array of messages of f->sub, or (K_REP_U64, K_REP_DOUBLE) of numbers. */
static int decode_array(struct jdec *d, const struct jfield *f, size_t depth, unsigned av,
                        union jvalue *out)
{
    if (o2d_json_in_pull_peek(&d->r) != '[') {
        return skip_bad(d, depth, f->bad_array);
    }
    o2d_json_in_pull_take(&d->r, '[');
    size_t base = d->top, n = 0;
    int rv = OK;
    if (!o2d_json_in_pull_take(&d->r, ']')) {
        for (;;) {
            union jelem elem = {.p = NULL};
            if (f->kind == K_REP) {
                rv = decode_msg(d, f->sub, depth + 1, av, &elem.p);
            } else {
                rv = decode_number_elem(d, f, depth + 1, &elem);
            }
            if (rv == OK) {
                rv = push(d, elem);
            }
            if (rv == BAD) {
                const char *why = d->bad;
                rv = skip_rest(d, depth);
                d->bad = why;
            }
            if (rv != OK) {
                d->top = base;
                return rv;
            }
            n++;
            int more = o2d_json_in_pull_next(&d->r, ']');
            if (more < 0) {
                return STOP;
            }
            if (more == 0) {
                break;
            }
        }
    }
    out->r.n = n;
    out->r.a = NULL;
    if (n == 0) {
        return OK;
    }
    size_t esize = f->kind == K_REP ? sizeof(void *) : sizeof(uint64_t);
    if (n > SIZE_MAX / esize) {
        return too_large(d);
    }
    void *arr = o2d_arena_alloc(d->a, n * esize);
    if (arr == NULL) {
        return too_large(d);
    }
    for (size_t i = 0; i < n; i++) {
        const union jelem *e = &d->stack[base + i];
        if (f->kind == K_REP) {
            ((void **)arr)[i] = e->p;
        } else if (f->kind == K_REP_U64) {
            ((uint64_t *)arr)[i] = e->u;
        } else {
            ((double *)arr)[i] = e->d;
        }
    }
    d->top = base;
    out->r.a = arr;
    return OK;
}

static int decode_field(struct jdec *d, const struct jfield *f, size_t depth, unsigned av,
                        union jvalue *out)
{
    switch (f->kind) {
    case K_MSG:
        return decode_msg(d, f->sub, depth, av + f->av_inc, &out->p);
    case K_REP:
    case K_REP_U64:
    case K_REP_DOUBLE:
        return decode_array(d, f, depth, av + f->av_inc, out);
    default:
        return decode_scalar(d, f, depth, out);
    }
}

static int name_is(const char *name, const char *k, size_t kn)
{
    return name != NULL && strlen(name) == kn && memcmp(name, k, kn) == 0;
}

/* The field a key names, and whether by its proto name; NULL for an unknown key. k is NULL for
 * an escaped key too long for the reader to hold: no name is that long. */
static const struct jfield *find_field(const struct jmsg *m, const char *k, size_t kn, int *proto)
{
    if (k == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < m->n_fields; i++) {
        const struct jfield *f = &m->fields[i];
        if (name_is(f->json_name, k, kn)) {
            *proto = 0;
            return f;
        }
        if (name_is(f->proto_name, k, kn)) {
            *proto = 1;
            return f;
        }
    }
    return NULL;
}

static void store(void *msg, const struct jfield *f, const union jvalue *v)
{
    char *base = msg;
    switch (f->kind) {
    case K_STRING:
        memcpy(base + f->off, &v->s, sizeof(v->s));
        break;
    case K_HEX:
    case K_BYTES:
        memcpy(base + f->off, &v->b, sizeof(v->b));
        break;
    case K_U32: {
        uint32_t x = (uint32_t)v->u;
        memcpy(base + f->off, &x, sizeof(x));
        break;
    }
    case K_U64:
        memcpy(base + f->off, &v->u, sizeof(v->u));
        break;
    case K_INT64:
        memcpy(base + f->off, &v->i, sizeof(v->i));
        break;
    case K_I32: {
        int32_t x = (int32_t)v->i;
        memcpy(base + f->off, &x, sizeof(x));
        break;
    }
    case K_DOUBLE:
        memcpy(base + f->off, &v->d, sizeof(v->d));
        break;
    case K_OPT_DOUBLE:
        memcpy(base + f->off, &v->d, sizeof(v->d));
        memcpy(base + f->n_off, &f->case_value, sizeof(int));
        break;
    case K_BOOL: {
        protobuf_c_boolean x = v->e;
        memcpy(base + f->off, &x, sizeof(x));
        break;
    }
    case K_ENUM:
        memcpy(base + f->off, &v->e, sizeof(v->e));
        break;
    case K_MSG:
        memcpy(base + f->off, &v->p, sizeof(v->p));
        break;
    default: /* K_REP, K_REP_U64, K_REP_DOUBLE */
        memcpy(base + f->off, &v->r.a, sizeof(v->r.a));
        memcpy(base + f->n_off, &v->r.n, sizeof(v->r.n));
        break;
    }
}

/*
 * A message of m from the object that comes next (at nesting level `depth`); `av` is the
 * AnyValue depth of what it holds. Members are read in the text's order into slots, one for
 * the lowerCamelCase name and one for the proto name of each field; when the object closes,
 * the fields are checked and kept in the table's order.
 */
static int decode_msg(struct jdec *d, const struct jmsg *m, size_t depth, unsigned av, void **out)
{
    struct jslot slots[2][MAX_FIELDS];
    if (m->anyvalue && av > OTLP_MAX_ANYVALUE_DEPTH) {
        return skip_bad(d, depth, "AnyValue nesting is too deep");
    }
    if (o2d_json_in_pull_peek(&d->r) != '{') {
        return skip_bad(d, depth, m->not_object);
    }
    o2d_json_in_pull_take(&d->r, '{');
    memset(slots, 0, sizeof(slots));
    if (!o2d_json_in_pull_take(&d->r, '}')) {
        for (;;) {
            const char *k;
            size_t kn;
            int proto = 0;
            if (!o2d_json_in_pull_key(&d->r, &k, &kn)) {
                return STOP;
            }
            const struct jfield *f = find_field(m, k, kn, &proto);
            if (f == NULL) {
                if (!o2d_json_in_pull_skip(&d->r, depth + 1)) {
                    return STOP;
                }
            } else {
                struct jslot *s = &slots[proto][f - m->fields];
                if (o2d_json_in_pull_peek(&d->r) == 'n') {
                    if (o2d_json_in_pull_literal(&d->r) != 'n') {
                        return STOP;
                    }
                    s->state = ABSENT;
                } else {
                    int rv = decode_field(d, f, depth + 1, av, &s->v);
                    if (rv == STOP) {
                        return STOP;
                    }
                    s->state = rv == OK ? SET : WRONG;
                    s->bad = d->bad;
                }
            }
            int more = o2d_json_in_pull_next(&d->r, '}');
            if (more < 0) {
                return STOP;
            }
            if (more == 0) {
                break;
            }
        }
    }

    const struct jslot *keep[MAX_FIELDS];
    for (unsigned i = 0; i < m->n_fields; i++) {
        if (i == m->oneof_first) {
            unsigned set = 0;
            for (unsigned j = i; j < m->n_fields; j++) {
                set += slots[0][j].state != ABSENT || slots[1][j].state != ABSENT;
            }
            if (set > 1) {
                return bad(d, m->oneof_bad);
            }
        }
        keep[i] = slots[0][i].state != ABSENT   ? &slots[0][i]
                  : slots[1][i].state != ABSENT ? &slots[1][i]
                                                : NULL;
        if (keep[i] != NULL && keep[i]->state == WRONG) {
            return bad(d, keep[i]->bad);
        }
    }
    void *msg = o2d_arena_alloc(d->a, m->size);
    if (msg == NULL) {
        return too_large(d);
    }
    m->init(msg);
    for (unsigned i = 0; i < m->n_fields; i++) {
        if (keep[i] == NULL) {
            continue;
        }
        store(msg, &m->fields[i], &keep[i]->v);
        if (i >= m->oneof_first) {
            memcpy((char *)msg + m->case_off, &m->fields[i].case_value, sizeof(int));
        }
    }
    *out = msg;
    return OK;
}

/* ---- the tables: one per message, fields in the order they are checked ---- */

#define INIT(fn) ((void (*)(void *))(fn))
#define N(a)     (sizeof(a) / sizeof((a)[0]))
#define MSG(type, init_fn, not_obj, fields)                                                        \
    {                                                                                              \
        sizeof(type), INIT(init_fn), not_obj, fields, N(fields), N(fields), 0, NULL, 0             \
    }

#define F_STR(type, member, jn, pn, why)                                                           \
    {                                                                                              \
        jn, pn, K_STRING, 0, offsetof(type, member), 0, 0, NULL, NULL, why, NULL                   \
    }
#define F_SCALAR(k, type, member, jn, pn, why)                                                     \
    {                                                                                              \
        jn, pn, k, 0, offsetof(type, member), 0, 0, NULL, NULL, why, NULL                          \
    }
#define F_ENUM(type, member, jn, pn, en, why)                                                      \
    {                                                                                              \
        jn, pn, K_ENUM, 0, offsetof(type, member), 0, 0, NULL, en, why, NULL                       \
    }
#define F_MSG(type, member, jn, pn, sub)                                                           \
    {                                                                                              \
        jn, pn, K_MSG, 0, offsetof(type, member), 0, 0, sub, NULL, NULL, NULL                      \
    }
#define F_REP(type, member, jn, pn, sub, why)                                                      \
    {                                                                                              \
        jn, pn, K_REP, 0, offsetof(type, member), offsetof(type, n_##member), 0, sub, NULL, NULL,  \
            why                                                                                    \
    }

static const struct jmsg any_msg, kv_msg;

static const struct jfield array_value_fields[] = {
    F_REP(OtlpArrayValue, values, "values", NULL, &any_msg, "ArrayValue values is not an array"),
};
static const struct jmsg array_value_msg =
    MSG(OtlpArrayValue, opentelemetry__proto__common__v1__array_value__init,
        "AnyValue arrayValue is not an object", array_value_fields);

static const struct jfield kvlist_fields[] = {
    F_REP(OtlpKeyValueList, values, "values", NULL, &kv_msg, "KeyValueList values is not an array"),
};
static const struct jmsg kvlist_msg =
    MSG(OtlpKeyValueList, opentelemetry__proto__common__v1__key_value_list__init,
        "AnyValue kvlistValue is not an object", kvlist_fields);

#define ANY_CASE(c) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##c
#define F_ANY(k, member, jn, pn, c, sub, why)                                                      \
    {                                                                                              \
        jn, pn, k, 0, offsetof(OtlpAnyValue, member), 0, ANY_CASE(c), sub, NULL, why, NULL         \
    }
/* The values inside an arrayValue or kvlistValue are one AnyValue deeper. */
#define F_ANY_LIST(member, jn, pn, c, sub)                                                         \
    {                                                                                              \
        jn, pn, K_MSG, 1, offsetof(OtlpAnyValue, member), 0, ANY_CASE(c), sub, NULL, NULL, NULL    \
    }
static const struct jfield any_fields[] = {
    F_ANY(K_STRING, string_value, "stringValue", "string_value", STRING_VALUE, NULL,
          "AnyValue stringValue is not a string"),
    F_ANY(K_BOOL, bool_value, "boolValue", "bool_value", BOOL_VALUE, NULL,
          "AnyValue boolValue is not a boolean"),
    F_ANY(K_INT64, int_value, "intValue", "int_value", INT_VALUE, NULL,
          "AnyValue intValue is not a valid int64"),
    F_ANY(K_DOUBLE, double_value, "doubleValue", "double_value", DOUBLE_VALUE, NULL,
          "AnyValue doubleValue is not a number"),
    F_ANY(K_BYTES, bytes_value, "bytesValue", "bytes_value", BYTES_VALUE, NULL,
          "AnyValue bytesValue is not base64"),
    F_ANY_LIST(array_value, "arrayValue", "array_value", ARRAY_VALUE, &array_value_msg),
    F_ANY_LIST(kvlist_value, "kvlistValue", "kvlist_value", KVLIST_VALUE, &kvlist_msg),
};
static const struct jmsg any_msg = {sizeof(OtlpAnyValue),
                                    INIT(opentelemetry__proto__common__v1__any_value__init),
                                    "AnyValue is not an object",
                                    any_fields,
                                    N(any_fields),
                                    0,
                                    offsetof(OtlpAnyValue, value_case),
                                    "AnyValue has more than one type",
                                    1};

/* `value` is that of the values; an absent value stays NULL, as in the binary form. */
static const struct jfield kv_fields[] = {
    F_STR(OtlpKeyValue, key, "key", NULL, "attribute key is not a string"),
    F_MSG(OtlpKeyValue, value, "value", NULL, &any_msg),
};
static const struct jmsg kv_msg =
    MSG(OtlpKeyValue, opentelemetry__proto__common__v1__key_value__init,
        "attribute is not an object", kv_fields);

#define F_ATTRS(type, why) F_REP(type, attributes, "attributes", NULL, &kv_msg, why)
#define F_DROPPED(type, owner)                                                                     \
    F_SCALAR(K_U32, type, dropped_attributes_count, "droppedAttributesCount",                      \
             "dropped_attributes_count", owner " droppedAttributesCount is not a valid uint32")
#define F_SCHEMA(type, owner)                                                                      \
    F_STR(type, schema_url, "schemaUrl", "schema_url", owner " schemaUrl is not a string")

static const struct jfield resource_fields[] = {
    F_ATTRS(OtlpResource, "resource attributes is not an array"),
    F_DROPPED(OtlpResource, "resource"),
};
static const struct jmsg resource_msg =
    MSG(OtlpResource, opentelemetry__proto__resource__v1__resource__init,
        "resource is not an object", resource_fields);

static const struct jfield scope_fields[] = {
    F_STR(OtlpScope, name, "name", NULL, "scope name is not a string"),
    F_STR(OtlpScope, version, "version", NULL, "scope version is not a string"),
    F_ATTRS(OtlpScope, "scope attributes is not an array"),
    F_DROPPED(OtlpScope, "scope"),
};
static const struct jmsg scope_msg =
    MSG(OtlpScope, opentelemetry__proto__common__v1__instrumentation_scope__init,
        "scope is not an object", scope_fields);

/* ---- traces ---- */

static const struct jfield event_fields[] = {
    F_SCALAR(K_U64, OtlpEvent, time_unix_nano, "timeUnixNano", "time_unix_nano",
             "span event timeUnixNano is not a valid fixed64"),
    F_STR(OtlpEvent, name, "name", NULL, "span event name is not a string"),
    F_ATTRS(OtlpEvent, "span event attributes is not an array"),
    F_DROPPED(OtlpEvent, "span event"),
};
static const struct jmsg event_msg =
    MSG(OtlpEvent, opentelemetry__proto__trace__v1__span__event__init,
        "span event is not an object", event_fields);

static const struct jfield link_fields[] = {
    F_SCALAR(K_HEX, OtlpLink, trace_id, "traceId", "trace_id",
             "span link traceId is not a hex string"),
    F_SCALAR(K_HEX, OtlpLink, span_id, "spanId", "span_id", "span link spanId is not a hex string"),
    F_STR(OtlpLink, trace_state, "traceState", "trace_state",
          "span link traceState is not a string"),
    F_ATTRS(OtlpLink, "span link attributes is not an array"),
    F_DROPPED(OtlpLink, "span link"),
    F_SCALAR(K_U32, OtlpLink, flags, "flags", NULL, "span link flags is not a valid fixed32"),
};
static const struct jmsg link_msg = MSG(OtlpLink, opentelemetry__proto__trace__v1__span__link__init,
                                        "span link is not an object", link_fields);

static const struct jfield status_fields[] = {
    F_STR(OtlpStatus, message, "message", NULL, "span status message is not a string"),
    F_ENUM(OtlpStatus, code, "code", NULL,
           &opentelemetry__proto__trace__v1__status__status_code__descriptor,
           "span status code is not a valid StatusCode"),
};
static const struct jmsg status_msg = MSG(OtlpStatus, opentelemetry__proto__trace__v1__status__init,
                                          "span status is not an object", status_fields);

static const struct jfield span_fields[] = {
    F_SCALAR(K_HEX, OtlpSpan, trace_id, "traceId", "trace_id", "span traceId is not a hex string"),
    F_SCALAR(K_HEX, OtlpSpan, span_id, "spanId", "span_id", "span spanId is not a hex string"),
    F_STR(OtlpSpan, trace_state, "traceState", "trace_state", "span traceState is not a string"),
    F_SCALAR(K_HEX, OtlpSpan, parent_span_id, "parentSpanId", "parent_span_id",
             "span parentSpanId is not a hex string"),
    F_SCALAR(K_U32, OtlpSpan, flags, "flags", NULL, "span flags is not a valid fixed32"),
    F_STR(OtlpSpan, name, "name", NULL, "span name is not a string"),
    F_ENUM(OtlpSpan, kind, "kind", NULL,
           &opentelemetry__proto__trace__v1__span__span_kind__descriptor,
           "span kind is not a valid SpanKind"),
    F_SCALAR(K_U64, OtlpSpan, start_time_unix_nano, "startTimeUnixNano", "start_time_unix_nano",
             "span startTimeUnixNano is not a valid fixed64"),
    F_SCALAR(K_U64, OtlpSpan, end_time_unix_nano, "endTimeUnixNano", "end_time_unix_nano",
             "span endTimeUnixNano is not a valid fixed64"),
    F_ATTRS(OtlpSpan, "span attributes is not an array"),
    F_DROPPED(OtlpSpan, "span"),
    F_REP(OtlpSpan, events, "events", NULL, &event_msg, "span events is not an array"),
    F_SCALAR(K_U32, OtlpSpan, dropped_events_count, "droppedEventsCount", "dropped_events_count",
             "span droppedEventsCount is not a valid uint32"),
    F_REP(OtlpSpan, links, "links", NULL, &link_msg, "span links is not an array"),
    F_SCALAR(K_U32, OtlpSpan, dropped_links_count, "droppedLinksCount", "dropped_links_count",
             "span droppedLinksCount is not a valid uint32"),
    F_MSG(OtlpSpan, status, "status", NULL, &status_msg),
};
static const struct jmsg span_msg = MSG(OtlpSpan, opentelemetry__proto__trace__v1__span__init,
                                        "span is not an object", span_fields);

static const struct jfield scope_spans_fields[] = {
    F_MSG(OtlpScopeSpans, scope, "scope", NULL, &scope_msg),
    F_REP(OtlpScopeSpans, spans, "spans", NULL, &span_msg, "spans is not an array"),
    F_SCHEMA(OtlpScopeSpans, "scopeSpans"),
};
static const struct jmsg scope_spans_msg =
    MSG(OtlpScopeSpans, opentelemetry__proto__trace__v1__scope_spans__init,
        "scopeSpans entry is not an object", scope_spans_fields);

static const struct jfield resource_spans_fields[] = {
    F_MSG(OtlpResourceSpans, resource, "resource", NULL, &resource_msg),
    F_REP(OtlpResourceSpans, scope_spans, "scopeSpans", "scope_spans", &scope_spans_msg,
          "scopeSpans is not an array"),
    F_SCHEMA(OtlpResourceSpans, "resourceSpans"),
};
static const struct jmsg resource_spans_msg =
    MSG(OtlpResourceSpans, opentelemetry__proto__trace__v1__resource_spans__init,
        "resourceSpans entry is not an object", resource_spans_fields);

static const struct jfield traces_fields[] = {
    F_REP(OtlpTraceReq, resource_spans, "resourceSpans", "resource_spans", &resource_spans_msg,
          "resourceSpans is not an array"),
};
static const struct jmsg traces_msg = MSG(
    OtlpTraceReq, opentelemetry__proto__collector__trace__v1__export_trace_service_request__init,
    NULL, traces_fields);

/* ---- logs ---- */

static const struct jfield log_record_fields[] = {
    F_SCALAR(K_U64, OtlpLogRecord, time_unix_nano, "timeUnixNano", "time_unix_nano",
             "log record timeUnixNano is not a valid fixed64"),
    F_SCALAR(K_U64, OtlpLogRecord, observed_time_unix_nano, "observedTimeUnixNano",
             "observed_time_unix_nano", "log record observedTimeUnixNano is not a valid fixed64"),
    F_ENUM(OtlpLogRecord, severity_number, "severityNumber", "severity_number",
           &opentelemetry__proto__logs__v1__severity_number__descriptor,
           "log record severityNumber is not a valid SeverityNumber"),
    F_STR(OtlpLogRecord, severity_text, "severityText", "severity_text",
          "log record severityText is not a string"),
    F_MSG(OtlpLogRecord, body, "body", NULL, &any_msg),
    F_ATTRS(OtlpLogRecord, "log record attributes is not an array"),
    F_DROPPED(OtlpLogRecord, "log record"),
    F_SCALAR(K_U32, OtlpLogRecord, flags, "flags", NULL, "log record flags is not a valid fixed32"),
    F_SCALAR(K_HEX, OtlpLogRecord, trace_id, "traceId", "trace_id",
             "log record traceId is not a hex string"),
    F_SCALAR(K_HEX, OtlpLogRecord, span_id, "spanId", "span_id",
             "log record spanId is not a hex string"),
    F_STR(OtlpLogRecord, event_name, "eventName", "event_name",
          "log record eventName is not a string"),
};
static const struct jmsg log_record_msg =
    MSG(OtlpLogRecord, opentelemetry__proto__logs__v1__log_record__init,
        "log record is not an object", log_record_fields);

static const struct jfield scope_logs_fields[] = {
    F_MSG(OtlpScopeLogs, scope, "scope", NULL, &scope_msg),
    F_REP(OtlpScopeLogs, log_records, "logRecords", "log_records", &log_record_msg,
          "logRecords is not an array"),
    F_SCHEMA(OtlpScopeLogs, "scopeLogs"),
};
static const struct jmsg scope_logs_msg =
    MSG(OtlpScopeLogs, opentelemetry__proto__logs__v1__scope_logs__init,
        "scopeLogs entry is not an object", scope_logs_fields);

static const struct jfield resource_logs_fields[] = {
    F_MSG(OtlpResourceLogs, resource, "resource", NULL, &resource_msg),
    F_REP(OtlpResourceLogs, scope_logs, "scopeLogs", "scope_logs", &scope_logs_msg,
          "scopeLogs is not an array"),
    F_SCHEMA(OtlpResourceLogs, "resourceLogs"),
};
static const struct jmsg resource_logs_msg =
    MSG(OtlpResourceLogs, opentelemetry__proto__logs__v1__resource_logs__init,
        "resourceLogs entry is not an object", resource_logs_fields);

static const struct jfield logs_fields[] = {
    F_REP(OtlpLogsReq, resource_logs, "resourceLogs", "resource_logs", &resource_logs_msg,
          "resourceLogs is not an array"),
};
static const struct jmsg logs_msg =
    MSG(OtlpLogsReq, opentelemetry__proto__collector__logs__v1__export_logs_service_request__init,
        NULL, logs_fields);

/* ---- metrics ---- */

#define MCASE(msg, c) OPENTELEMETRY__PROTO__METRICS__V1__##msg##__##c
/* A member of a message's one oneof (the table's last fields). */
#define F_ONEOF(k, type, member, jn, pn, c, why)                                                   \
    {                                                                                              \
        jn, pn, k, 0, offsetof(type, member), 0, c, NULL, NULL, why, NULL                          \
    }
/* Upstream's `optional double`: a oneof of its own, its case at n_off. */
#define F_OPT(type, member, jn, c, why)                                                            \
    {                                                                                              \
        jn, NULL, K_OPT_DOUBLE, 0, offsetof(type, member), offsetof(type, _##member##_case), c,    \
            NULL, NULL, why, NULL                                                                  \
    }
#define F_NUMS(k, type, member, jn, pn, why, why_array)                                            \
    {                                                                                              \
        jn, pn, k, 0, offsetof(type, member), offsetof(type, n_##member), 0, NULL, NULL, why,      \
            why_array                                                                              \
    }
#define F_TIMES(type)                                                                              \
    F_SCALAR(K_U64, type, start_time_unix_nano, "startTimeUnixNano", "start_time_unix_nano",       \
             "data point startTimeUnixNano is not a valid fixed64"),                               \
        F_SCALAR(K_U64, type, time_unix_nano, "timeUnixNano", "time_unix_nano",                    \
                 "data point timeUnixNano is not a valid fixed64")
#define F_POINT_ATTRS(type) F_ATTRS(type, "data point attributes is not an array")
#define F_EXEMPLARS(type)                                                                          \
    F_REP(type, exemplars, "exemplars", NULL, &exemplar_msg, "data point exemplars is not an array")
#define F_FLAGS(type)                                                                              \
    F_SCALAR(K_U32, type, flags, "flags", NULL, "data point flags is not a valid uint32")
#define F_COUNT(type)                                                                              \
    F_SCALAR(K_U64, type, count, "count", NULL, "data point count is not a valid fixed64")
#define ONEOF_MSG(type, init_fn, not_obj, fields, first, case_member, why)                         \
    {                                                                                              \
        sizeof(type), INIT(init_fn), not_obj, fields, N(fields), first,                            \
            offsetof(type, case_member), why, 0                                                    \
    }

static const struct jfield exemplar_fields[] = {
    F_REP(OtlpExemplar, filtered_attributes, "filteredAttributes", "filtered_attributes", &kv_msg,
          "exemplar filteredAttributes is not an array"),
    F_SCALAR(K_U64, OtlpExemplar, time_unix_nano, "timeUnixNano", "time_unix_nano",
             "exemplar timeUnixNano is not a valid fixed64"),
    F_SCALAR(K_HEX, OtlpExemplar, span_id, "spanId", "span_id",
             "exemplar spanId is not a hex string"),
    F_SCALAR(K_HEX, OtlpExemplar, trace_id, "traceId", "trace_id",
             "exemplar traceId is not a hex string"),
    F_ONEOF(K_DOUBLE, OtlpExemplar, as_double, "asDouble", "as_double",
            MCASE(EXEMPLAR, VALUE_AS_DOUBLE), "exemplar asDouble is not a number"),
    F_ONEOF(K_INT64, OtlpExemplar, as_int, "asInt", "as_int", MCASE(EXEMPLAR, VALUE_AS_INT),
            "exemplar asInt is not a valid int64"),
};
static const struct jmsg exemplar_msg = ONEOF_MSG(
    OtlpExemplar, opentelemetry__proto__metrics__v1__exemplar__init, "exemplar is not an object",
    exemplar_fields, 4, value_case, "exemplar has more than one value");

static const struct jfield number_point_fields[] = {
    F_POINT_ATTRS(OtlpNumberPoint),
    F_TIMES(OtlpNumberPoint),
    F_EXEMPLARS(OtlpNumberPoint),
    F_FLAGS(OtlpNumberPoint),
    F_ONEOF(K_DOUBLE, OtlpNumberPoint, as_double, "asDouble", "as_double",
            MCASE(NUMBER_DATA_POINT, VALUE_AS_DOUBLE), "data point asDouble is not a number"),
    F_ONEOF(K_INT64, OtlpNumberPoint, as_int, "asInt", "as_int",
            MCASE(NUMBER_DATA_POINT, VALUE_AS_INT), "data point asInt is not a valid int64"),
};
static const struct jmsg number_point_msg =
    ONEOF_MSG(OtlpNumberPoint, opentelemetry__proto__metrics__v1__number_data_point__init,
              "metric data point is not an object", number_point_fields, 5, value_case,
              "data point has more than one value");

static const struct jfield histogram_point_fields[] = {
    F_POINT_ATTRS(OtlpHistogramPoint),
    F_TIMES(OtlpHistogramPoint),
    F_COUNT(OtlpHistogramPoint),
    F_OPT(OtlpHistogramPoint, sum, "sum", MCASE(HISTOGRAM_DATA_POINT, _SUM_SUM),
          "data point sum is not a number"),
    F_NUMS(K_REP_U64, OtlpHistogramPoint, bucket_counts, "bucketCounts", "bucket_counts",
           "data point bucketCounts holds a value that is not a valid uint64",
           "data point bucketCounts is not an array"),
    F_NUMS(K_REP_DOUBLE, OtlpHistogramPoint, explicit_bounds, "explicitBounds", "explicit_bounds",
           "data point explicitBounds holds a value that is not a number",
           "data point explicitBounds is not an array"),
    F_EXEMPLARS(OtlpHistogramPoint),
    F_FLAGS(OtlpHistogramPoint),
    F_OPT(OtlpHistogramPoint, min, "min", MCASE(HISTOGRAM_DATA_POINT, _MIN_MIN),
          "data point min is not a number"),
    F_OPT(OtlpHistogramPoint, max, "max", MCASE(HISTOGRAM_DATA_POINT, _MAX_MAX),
          "data point max is not a number"),
};
static const struct jmsg histogram_point_msg =
    MSG(OtlpHistogramPoint, opentelemetry__proto__metrics__v1__histogram_data_point__init,
        "metric data point is not an object", histogram_point_fields);

static const struct jfield buckets_fields[] = {
    F_SCALAR(K_I32, OtlpExpBuckets, offset, "offset", NULL, "buckets offset is not a valid sint32"),
    F_NUMS(K_REP_U64, OtlpExpBuckets, bucket_counts, "bucketCounts", "bucket_counts",
           "buckets bucketCounts holds a value that is not a valid uint64",
           "buckets bucketCounts is not an array"),
};
static const struct jmsg buckets_msg =
    MSG(OtlpExpBuckets,
        opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init,
        "data point buckets is not an object", buckets_fields);

static const struct jfield exp_point_fields[] = {
    F_POINT_ATTRS(OtlpExpHistogramPoint),
    F_TIMES(OtlpExpHistogramPoint),
    F_COUNT(OtlpExpHistogramPoint),
    F_OPT(OtlpExpHistogramPoint, sum, "sum", MCASE(EXPONENTIAL_HISTOGRAM_DATA_POINT, _SUM_SUM),
          "data point sum is not a number"),
    F_SCALAR(K_I32, OtlpExpHistogramPoint, scale, "scale", NULL,
             "data point scale is not a valid sint32"),
    F_SCALAR(K_U64, OtlpExpHistogramPoint, zero_count, "zeroCount", "zero_count",
             "data point zeroCount is not a valid fixed64"),
    F_MSG(OtlpExpHistogramPoint, positive, "positive", NULL, &buckets_msg),
    F_MSG(OtlpExpHistogramPoint, negative, "negative", NULL, &buckets_msg),
    F_FLAGS(OtlpExpHistogramPoint),
    F_EXEMPLARS(OtlpExpHistogramPoint),
    F_OPT(OtlpExpHistogramPoint, min, "min", MCASE(EXPONENTIAL_HISTOGRAM_DATA_POINT, _MIN_MIN),
          "data point min is not a number"),
    F_OPT(OtlpExpHistogramPoint, max, "max", MCASE(EXPONENTIAL_HISTOGRAM_DATA_POINT, _MAX_MAX),
          "data point max is not a number"),
    F_SCALAR(K_DOUBLE, OtlpExpHistogramPoint, zero_threshold, "zeroThreshold", "zero_threshold",
             "data point zeroThreshold is not a number"),
};
static const struct jmsg exp_point_msg =
    MSG(OtlpExpHistogramPoint,
        opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init,
        "metric data point is not an object", exp_point_fields);

static const struct jfield quantile_fields[] = {
    F_SCALAR(K_DOUBLE, OtlpQuantile, quantile, "quantile", NULL,
             "quantile value quantile is not a number"),
    F_SCALAR(K_DOUBLE, OtlpQuantile, value, "value", NULL, "quantile value value is not a number"),
};
static const struct jmsg quantile_msg = MSG(
    OtlpQuantile, opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init,
    "quantile value is not an object", quantile_fields);

static const struct jfield summary_point_fields[] = {
    F_POINT_ATTRS(OtlpSummaryPoint),
    F_TIMES(OtlpSummaryPoint),
    F_COUNT(OtlpSummaryPoint),
    F_SCALAR(K_DOUBLE, OtlpSummaryPoint, sum, "sum", NULL, "data point sum is not a number"),
    F_REP(OtlpSummaryPoint, quantile_values, "quantileValues", "quantile_values", &quantile_msg,
          "data point quantileValues is not an array"),
    F_FLAGS(OtlpSummaryPoint),
};
static const struct jmsg summary_point_msg =
    MSG(OtlpSummaryPoint, opentelemetry__proto__metrics__v1__summary_data_point__init,
        "metric data point is not an object", summary_point_fields);

#define F_POINTS(type, sub)                                                                        \
    F_REP(type, data_points, "dataPoints", "data_points", sub, "metric dataPoints is not an array")
#define F_TEMPORALITY(type)                                                                        \
    F_ENUM(type, aggregation_temporality, "aggregationTemporality", "aggregation_temporality",     \
           &opentelemetry__proto__metrics__v1__aggregation_temporality__descriptor,                \
           "metric aggregationTemporality is not a valid AggregationTemporality")

static const struct jfield gauge_fields[] = {F_POINTS(OtlpGauge, &number_point_msg)};
static const struct jmsg gauge_msg = MSG(OtlpGauge, opentelemetry__proto__metrics__v1__gauge__init,
                                         "metric data is not an object", gauge_fields);
static const struct jfield sum_fields[] = {
    F_POINTS(OtlpSum, &number_point_msg),
    F_TEMPORALITY(OtlpSum),
    F_SCALAR(K_BOOL, OtlpSum, is_monotonic, "isMonotonic", "is_monotonic",
             "metric isMonotonic is not a boolean"),
};
static const struct jmsg sum_msg = MSG(OtlpSum, opentelemetry__proto__metrics__v1__sum__init,
                                       "metric data is not an object", sum_fields);
static const struct jfield histogram_fields[] = {
    F_POINTS(OtlpHistogram, &histogram_point_msg),
    F_TEMPORALITY(OtlpHistogram),
};
static const struct jmsg histogram_msg =
    MSG(OtlpHistogram, opentelemetry__proto__metrics__v1__histogram__init,
        "metric data is not an object", histogram_fields);
static const struct jfield exp_histogram_fields[] = {
    F_POINTS(OtlpExpHistogram, &exp_point_msg),
    F_TEMPORALITY(OtlpExpHistogram),
};
static const struct jmsg exp_histogram_msg =
    MSG(OtlpExpHistogram, opentelemetry__proto__metrics__v1__exponential_histogram__init,
        "metric data is not an object", exp_histogram_fields);
static const struct jfield summary_fields[] = {F_POINTS(OtlpSummary, &summary_point_msg)};
static const struct jmsg summary_msg =
    MSG(OtlpSummary, opentelemetry__proto__metrics__v1__summary__init,
        "metric data is not an object", summary_fields);

#define METRIC_CASE(c) OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_##c
#define F_DATA(member, jn, pn, c, sub)                                                             \
    {                                                                                              \
        jn, pn, K_MSG, 0, offsetof(OtlpMetric, member), 0, METRIC_CASE(c), sub, NULL, NULL, NULL   \
    }
static const struct jfield metric_fields[] = {
    F_STR(OtlpMetric, name, "name", NULL, "metric name is not a string"),
    F_STR(OtlpMetric, description, "description", NULL, "metric description is not a string"),
    F_STR(OtlpMetric, unit, "unit", NULL, "metric unit is not a string"),
    F_REP(OtlpMetric, metadata, "metadata", NULL, &kv_msg, "metric metadata is not an array"),
    F_DATA(gauge, "gauge", NULL, GAUGE, &gauge_msg),
    F_DATA(sum, "sum", NULL, SUM, &sum_msg),
    F_DATA(histogram, "histogram", NULL, HISTOGRAM, &histogram_msg),
    F_DATA(exponential_histogram, "exponentialHistogram", "exponential_histogram",
           EXPONENTIAL_HISTOGRAM, &exp_histogram_msg),
    F_DATA(summary, "summary", NULL, SUMMARY, &summary_msg),
};
static const struct jmsg metric_msg = {sizeof(OtlpMetric),
                                       INIT(opentelemetry__proto__metrics__v1__metric__init),
                                       "metric is not an object",
                                       metric_fields,
                                       N(metric_fields),
                                       4,
                                       offsetof(OtlpMetric, data_case),
                                       "metric has more than one data type",
                                       0};

static const struct jfield scope_metrics_fields[] = {
    F_MSG(OtlpScopeMetrics, scope, "scope", NULL, &scope_msg),
    F_REP(OtlpScopeMetrics, metrics, "metrics", NULL, &metric_msg, "metrics is not an array"),
    F_SCHEMA(OtlpScopeMetrics, "scopeMetrics"),
};
static const struct jmsg scope_metrics_msg =
    MSG(OtlpScopeMetrics, opentelemetry__proto__metrics__v1__scope_metrics__init,
        "scopeMetrics entry is not an object", scope_metrics_fields);

static const struct jfield resource_metrics_fields[] = {
    F_MSG(OtlpResourceMetrics, resource, "resource", NULL, &resource_msg),
    F_REP(OtlpResourceMetrics, scope_metrics, "scopeMetrics", "scope_metrics", &scope_metrics_msg,
          "scopeMetrics is not an array"),
    F_SCHEMA(OtlpResourceMetrics, "resourceMetrics"),
};
static const struct jmsg resource_metrics_msg =
    MSG(OtlpResourceMetrics, opentelemetry__proto__metrics__v1__resource_metrics__init,
        "resourceMetrics entry is not an object", resource_metrics_fields);

static const struct jfield metrics_fields[] = {
    F_REP(OtlpMetricsReq, resource_metrics, "resourceMetrics", "resource_metrics",
          &resource_metrics_msg, "resourceMetrics is not an array"),
};
static const struct jmsg metrics_msg =
    MSG(OtlpMetricsReq,
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init, NULL,
        metrics_fields);

/* ---- the body ---- */

/* Why the text itself is refused, read again from its start: a body that is not JSON is
 * refused as such even when the decoding stopped earlier for another reason. */
static int check_text(const uint8_t *body, size_t len, const char **reason)
{
    struct o2d_json_in_pull r;
    int rv = O2D_OK;
    o2d_json_in_pull_init(&r, (const char *)body, len);
    if (!o2d_json_in_pull_skip(&r, 1) || !o2d_json_in_pull_end(&r)) {
        const char *why;
        rv = o2d_json_in_pull_failure(&r, &why);
        *reason = rv == O2D_ERR_NOMEM        ? "out of memory"
                  : why == o2d_json_in_range ? REASON_RANGE
                                             : REASON_NOT_JSON;
    }
    o2d_json_in_pull_cleanup(&r);
    return rv;
}

int otlp_json_decode(struct o2d_arena *a, enum otlp_signal sig, const uint8_t *body, size_t len,
                     void **msg, const char **reason)
{
    struct jdec d = {.a = a};
    const struct jmsg *m;
    int rv;

    *msg = NULL;
    *reason = NULL;
    switch (sig) {
    case OTLP_SIGNAL_TRACES:
        m = &traces_msg;
        break;
    case OTLP_SIGNAL_LOGS:
        m = &logs_msg;
        break;
    case OTLP_SIGNAL_METRICS:
        m = &metrics_msg;
        break;
    default:
        *reason = "unknown signal";
        return O2D_ERR_INTERNAL;
    }
    if (len == 0) {
        /* Like otlp_decode(): an empty body is an empty request. */
        void *req = o2d_arena_alloc(a, m->size);
        if (req == NULL) {
            *reason = REASON_TOO_LARGE;
            return O2D_ERR_TOO_LARGE;
        }
        m->init(req);
        *msg = req;
        return O2D_OK;
    }

    o2d_json_in_pull_init(&d.r, (const char *)body, len);
    void *req = NULL;
    int step;
    if (o2d_json_in_pull_peek(&d.r) != '{') {
        step = skip_bad(&d, 1, "body is not a JSON object");
    } else {
        step = decode_msg(&d, m, 1, 1, &req);
    }
    if (step == STOP && d.stop_status == O2D_ERR_TOO_LARGE) {
        /* Not JSON wins over too large, as when the text was parsed before it was walked. */
        rv = check_text(body, len, reason);
        if (rv == O2D_OK) {
            rv = O2D_ERR_TOO_LARGE;
            *reason = REASON_TOO_LARGE;
        }
    } else if (step == STOP) {
        /* The reader stopped at the first fault of the text, where jansson would. */
        const char *why;
        rv = o2d_json_in_pull_failure(&d.r, &why);
        *reason = rv == O2D_ERR_NOMEM        ? "out of memory"
                  : why == o2d_json_in_range ? REASON_RANGE
                                             : REASON_NOT_JSON;
    } else if (!o2d_json_in_pull_end(&d.r)) {
        rv = O2D_ERR_INVALID; /* something after the value */
        *reason = d.r.reason == o2d_json_in_range ? REASON_RANGE : REASON_NOT_JSON;
    } else if (step == BAD) {
        rv = O2D_ERR_INVALID;
        *reason = d.bad;
    } else {
        rv = O2D_OK;
        *msg = req;
    }
    o2d_json_in_pull_cleanup(&d.r);
    return rv;
}
