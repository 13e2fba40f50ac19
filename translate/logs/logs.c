/*
 * logs.c: OTLP log records -> Datadog log objects (logs.h), rule for rule as Datadog's OTLP
 * logs translator writes them: DataDog/datadog-agent pkg/opentelemetry-mapping-go/otlp/logs/
 * transform.go@021dec7 (transform, flattenAttribute, decodeTraceID/decodeSpanID,
 * statusFromSeverityNumber) and translator.go (MapLogs, Translate: host and service per
 * record, the otel_source tag); checked against transform_test.go and translate_test.go.
 *
 * 1. hostname: the resource's source when it is a host (attributes.SourceFromAttrs; an ECS
 *    Fargate task has none), else the record attributes' (per record, as Translate does;
 *    MapLogs lets a found one stick for the resource's later records). service: resource
 *    service.name (AsString), else the record's.
 * 2. Record attributes, keys compared case-insensitively: msg|message|log -> message;
 *    status|severity|level|syslog.severity -> status; traceid|trace_id|contextmap.traceid|
 *    oteltraceid (32 hex) -> dd.trace_id (low 64 bits, decimal) and otel.trace_id (as given),
 *    spanid|span_id|contextmap.spanid|otelspanid (16 hex) likewise, the first decodable one
 *    only, undecodable ones dropped; ddtags -> appended to the resource tags. Any other is
 *    flattened: maps with "." up to depth 10 (deeper: JSON text), arrays kept as arrays (their
 *    map elements flattened inside), scalars with their JSON type.
 * 3. Resource attributes as AsString (hostname, service -> otel.hostname, otel.service),
 *    arrays kept as arrays (transform_test.go@06514ea); scope attributes as AsString.
 * 4. The record's own trace and span ids win over the attributes': dd.* decimal, otel.* hex.
 * 5. status = the status attribute, else severity_text, else severity_number's range; ""
 *    when none. otel.severity_text, otel.severity_number (a string).
 * 6. time (else observed time) != 0: otel.timestamp (ns, a string) and @timestamp
 *    (2006-01-02T15:04:05.000Z07:00, UTC); otel.event_name when set.
 * 7. message = the message attribute, else Body().AsString(); ddtags = TagsFromAttributes of
 *    the resource (+ the ddtags attribute) + otel_source:<exporter>; ddsource
 *    otlp_log_ingestion.
 * HTTPLogItem.MarshalJSON writes its fields, then the additional properties over them (a
 * record attribute "hostname" replaces the hostname), and Go writes a map's keys sorted:
 * so do we, last write winning.
 *
 * Ours: an entry over max_entry_bytes has its message cut at a character boundary and marked
 * "...TRUNCATED..." (the intake would cut it anyway); NaN and infinite doubles, which Go's
 * encoder refuses (failing the whole payload), are written null.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "logs.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "o2d_hex.h"
#include "resource.h"

#define AV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

/* One property: key and JSON value, both in the builder's scratch. */
struct prop {
    size_t key_off, key_len;
    size_t val_off, val_len;
    size_t seq;
    int fixed; /* an HTTPLogItem field: any additional property of that name replaces it */
};

struct logs_builder {
    struct o2d_buf scratch; /* keys and values of one record */
    struct o2d_buf out;     /* one record's object */
    struct prop *props;
    size_t n_props, cap_props;
    size_t max_props;
    size_t *order;
    size_t cap_order;
    int have_dd_trace, have_dd_span; /* an additional dd.trace_id / dd.span_id was written */
};

int logs_builder_new(struct logs_builder **out, size_t max_bytes)
{
    struct logs_builder *b = o2d_calloc(1, sizeof(*b));
    if (b == NULL) {
        return O2D_ERR_NOMEM;
    }
    o2d_buf_init(&b->scratch, max_bytes);
    o2d_buf_init(&b->out, max_bytes);
    /* a property takes a few bytes at least: this bounds the array with the scratch */
    b->max_props = max_bytes / 4 + 16;
    *out = b;
    return O2D_OK;
}

void logs_builder_free(struct logs_builder *b)
{
    if (b == NULL) {
        return;
    }
    o2d_buf_cleanup(&b->scratch);
    o2d_buf_cleanup(&b->out);
    o2d_free(b->props);
    o2d_free(b->order);
    o2d_free(b);
}

const char *logs_status_of_severity(int n)
{
    if (n <= 4) {
        return "trace";
    }
    if (n <= 8) {
        return "debug";
    }
    if (n <= 12) {
        return "info";
    }
    if (n <= 16) {
        return "warn";
    }
    if (n <= 20) {
        return "error";
    }
    if (n <= 24) {
        return "fatal";
    }
    return "error";
}

/* ---- properties ---- */

static int key_is(const struct logs_builder *b, const struct prop *p, const char *lit)
{
    size_t n = strlen(lit);
    return p->key_len == n && memcmp(b->scratch.data + p->key_off, lit, n) == 0;
}

/* Adds a property whose key and value are already in the scratch. */
static int add_prop(struct logs_builder *b, size_t key_off, size_t key_len, size_t val_off,
                    size_t val_len, int fixed)
{
    if (b->n_props == b->cap_props) {
        if (b->cap_props >= b->max_props) {
            return O2D_ERR_TOO_LARGE;
        }
        size_t cap = b->cap_props > 0 ? b->cap_props * 2 : 64;
        struct prop *p = o2d_realloc(b->props, cap * sizeof(*p));
        if (p == NULL) {
            return O2D_ERR_NOMEM;
        }
        b->props = p;
        b->cap_props = cap;
    }
    struct prop *p = &b->props[b->n_props];
    *p = (struct prop){key_off, key_len, val_off, val_len, b->n_props, fixed};
    b->n_props++;
    if (!fixed) {
        b->have_dd_trace |= key_is(b, p, "dd.trace_id");
        b->have_dd_span |= key_is(b, p, "dd.span_id");
    }
    return O2D_OK;
}

/* Appends s to the scratch; *off is where it starts. */
static int put(struct logs_builder *b, const void *s, size_t n, size_t *off)
{
    *off = b->scratch.len;
    return o2d_buf_append(&b->scratch, s, n);
}

/* Appends scratch[off..off+n) again at its end (the source may move when it grows). */
static int put_again(struct logs_builder *b, size_t off, size_t n)
{
    int rv = o2d_buf_reserve(&b->scratch, n);
    if (rv == O2D_OK) {
        memcpy(b->scratch.data + b->scratch.len, b->scratch.data + off, n);
        b->scratch.len += n;
    }
    return rv;
}

/* A property with a literal key and a JSON string value. */
static int prop_str(struct logs_builder *b, const char *key, const char *v, size_t vn, int fixed)
{
    size_t ko, vo;
    int rv = put(b, key, strlen(key), &ko);
    if (rv == O2D_OK) {
        vo = b->scratch.len;
        rv = res_json_string(&b->scratch, v, vn);
    }
    return rv == O2D_OK ? add_prop(b, ko, strlen(key), vo, b->scratch.len - vo, fixed) : rv;
}

/* Appends, as a JSON string, pcommon Value.AsString() of v. */
static int json_as_string(struct logs_builder *b, struct o2d_arena *a, const OtlpAnyValue *v)
{
    struct res_str s;
    if (v != NULL && v->value_case == AV(STRING_VALUE)) {
        return res_json_string(&b->scratch, v->string_value, strlen(v->string_value));
    }
    int rv = res_value_as_string(a, v, &s);
    return rv == O2D_OK ? res_json_string(&b->scratch, s.p, s.n) : rv;
}

/* A property: key, and AsString(v) as a JSON string. */
static int prop_as_string(struct logs_builder *b, struct o2d_arena *a, const char *key,
                          const OtlpAnyValue *v)
{
    size_t ko;
    int rv = put(b, key, strlen(key), &ko);
    size_t vo = b->scratch.len;
    if (rv == O2D_OK) {
        rv = json_as_string(b, a, v);
    }
    return rv == O2D_OK ? add_prop(b, ko, strlen(key), vo, b->scratch.len - vo, 0) : rv;
}

/* ---- flattenAttribute ---- */

/* Writes props[from..n_props) as one JSON object into out: sorted by key, the last write of a
 * key winning (fields first). */
static int render(struct logs_builder *b, size_t from, struct o2d_buf *out);

/* flattenAttribute(key, v, depth): key is scratch[key_off..+key_len). */
static int flatten(struct logs_builder *b, struct o2d_arena *a, size_t key_off, size_t key_len,
                   const OtlpAnyValue *v, int depth)
{
    int rv;
    size_t vo;
    if (v != NULL && v->value_case == AV(ARRAY_VALUE)) {
        /* Each element is flattened under the key "": a scalar (or a map cut at the depth
         * limit) comes back as that key's value, a map as an object of its flattened keys. */
        struct o2d_buf arr;
        o2d_buf_init(&arr, b->scratch.max);
        rv = o2d_buf_append_byte(&arr, '[');
        const Opentelemetry__Proto__Common__V1__ArrayValue *av = v->array_value;
        for (size_t i = 0; av != NULL && i < av->n_values && rv == O2D_OK; i++) {
            size_t mark = b->n_props;
            size_t empty_key = b->scratch.len;
            /* keys inside an element are not top-level properties */
            int had_trace = b->have_dd_trace, had_span = b->have_dd_span;
            if (i > 0) {
                rv = o2d_buf_append_byte(&arr, ',');
            }
            if (rv == O2D_OK) {
                rv = flatten(b, a, empty_key, 0, av->values[i], depth + 1);
            }
            const struct prop *scalar = NULL;
            for (size_t k = mark; rv == O2D_OK && k < b->n_props; k++) {
                if (b->props[k].key_len == 0) {
                    scalar = &b->props[k];
                }
            }
            if (rv == O2D_OK && scalar != NULL) {
                rv = o2d_buf_append(&arr, b->scratch.data + scalar->val_off, scalar->val_len);
            } else if (rv == O2D_OK) {
                rv = render(b, mark, &arr);
            }
            /* the element is in arr now: its properties and their bytes are done with, so
             * nested arrays do not pile copies of their content up in the scratch */
            b->n_props = mark;
            b->scratch.len = empty_key;
            b->have_dd_trace = had_trace;
            b->have_dd_span = had_span;
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append_byte(&arr, ']');
        }
        if (rv == O2D_OK) {
            rv = put(b, arr.data, arr.len, &vo);
        }
        size_t n = arr.len;
        o2d_buf_cleanup(&arr);
        return rv == O2D_OK ? add_prop(b, key_off, key_len, vo, n, 0) : rv;
    }
    if (v == NULL || v->value_case != AV(KVLIST_VALUE) || depth >= LOGS_FLATTEN_DEPTH) {
        vo = b->scratch.len;
        switch (v != NULL ? v->value_case : AV(_NOT_SET)) {
        case AV(STRING_VALUE):
        case AV(BOOL_VALUE):
        case AV(INT_VALUE):
        case AV(DOUBLE_VALUE):
            rv = res_json_value(&b->scratch, a, v, 0); /* AsRaw: keeps its JSON type */
            break;
        default:
            rv = json_as_string(b, a, v);
        }
        return rv == O2D_OK ? add_prop(b, key_off, key_len, vo, b->scratch.len - vo, 0) : rv;
    }
    const Opentelemetry__Proto__Common__V1__KeyValueList *kl = v->kvlist_value;
    rv = O2D_OK;
    for (size_t i = 0; kl != NULL && i < kl->n_values && rv == O2D_OK; i++) {
        const OtlpKeyValue *kv = kl->values[i];
        size_t kn = strlen(kv->key);
        size_t nk = b->scratch.len;
        if (key_len > 0) {
            rv = put_again(b, key_off, key_len);
            if (rv == O2D_OK) {
                rv = o2d_buf_append_byte(&b->scratch, '.');
            }
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append(&b->scratch, kv->key, kn);
        }
        if (rv == O2D_OK) {
            rv = flatten(b, a, nk, b->scratch.len - nk, kv->value, depth + 1);
        }
    }
    return rv;
}

/* ---- rendering ---- */

/* qsort takes no context in C11; a builder is one thread's. */
static _Thread_local const struct logs_builder *sort_ctx;

static int cmp_order(const void *x, const void *y, const void *ctx)
{
    const struct logs_builder *b = ctx;
    const struct prop *p = &b->props[*(const size_t *)x];
    const struct prop *q = &b->props[*(const size_t *)y];
    size_t n = p->key_len < q->key_len ? p->key_len : q->key_len;
    int c = memcmp(b->scratch.data + p->key_off, b->scratch.data + q->key_off, n);
    if (c != 0) {
        return c;
    }
    if (p->key_len != q->key_len) {
        return p->key_len < q->key_len ? -1 : 1;
    }
    /* same key: fields before additional properties, then in the order written */
    if (p->fixed != q->fixed) {
        return p->fixed ? -1 : 1;
    }
    return p->seq < q->seq ? -1 : p->seq > q->seq;
}

static int cmp_order_qsort(const void *x, const void *y)
{
    return cmp_order(x, y, sort_ctx);
}

static int render(struct logs_builder *b, size_t from, struct o2d_buf *out)
{
    size_t n = b->n_props - from;
    if (n > b->cap_order) {
        size_t *o = o2d_realloc(b->order, n * sizeof(*o));
        if (o == NULL) {
            return O2D_ERR_NOMEM;
        }
        b->order = o;
        b->cap_order = n;
    }
    for (size_t i = 0; i < n; i++) {
        b->order[i] = from + i;
    }
    sort_ctx = b;
    qsort(b->order, n, sizeof(*b->order), cmp_order_qsort);
    int rv = o2d_buf_append_byte(out, '{');
    int first = 1;
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        const struct prop *p = &b->props[b->order[i]];
        if (i + 1 < n) {
            const struct prop *q = &b->props[b->order[i + 1]];
            if (p->key_len == q->key_len && memcmp(b->scratch.data + p->key_off,
                                                   b->scratch.data + q->key_off, p->key_len) == 0) {
                continue; /* a later write of the same key wins */
            }
        }
        if (!first) {
            rv = o2d_buf_append_byte(out, ',');
        }
        first = 0;
        if (rv == O2D_OK) {
            rv = res_json_string(out, (const char *)b->scratch.data + p->key_off, p->key_len);
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append_byte(out, ':');
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append(out, b->scratch.data + p->val_off, p->val_len);
        }
    }
    return rv == O2D_OK ? o2d_buf_append_byte(out, '}') : rv;
}

/* ---- one record ---- */

/* decodeTraceID / decodeSpanID: exactly 2*n hex digits (either case); the low 8 bytes. */
static int decode_id(struct res_str s, size_t n, uint64_t *low)
{
    if (s.n != 2 * n) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        int h = o2d_hex_digit(s.p[i]);
        if (h < 0) {
            return 0;
        }
        v = v << 4 | (uint64_t)h; /* the high bytes shift out */
    }
    *low = v;
    return 1;
}

static int any_nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 1;
        }
    }
    return 0;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* dd.<kind>_id (decimal, as a string) and otel.<kind>_id (the text given). */
static int prop_ids(struct logs_builder *b, const char *dd_key, const char *otel_key, uint64_t v,
                    const char *text, size_t text_len)
{
    char dec[24];
    int n = snprintf(dec, sizeof(dec), "%" PRIu64, v);
    int rv = prop_str(b, dd_key, dec, (size_t)n, 0);
    return rv == O2D_OK ? prop_str(b, otel_key, text, text_len, 0) : rv;
}

static int key_in(const char *k, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(k, set[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *const message_keys[] = {"msg", "message", "log"};
static const char *const status_keys[] = {"status", "severity", "level", "syslog.severity"};
static const char *const trace_keys[] = {"traceid", "trace_id", "contextmap.traceid",
                                         "oteltraceid"};
static const char *const span_keys[] = {"spanid", "span_id", "contextmap.spanid", "otelspanid"};
#define N(t) (sizeof(t) / sizeof((t)[0]))

/* What the record attributes set besides properties. */
struct consumed {
    struct res_str message;
    struct res_str status;
    int has_ddtags;
    struct res_str ddtags;
};

static int record_attributes(struct logs_builder *b, struct o2d_arena *a, const OtlpLogRecord *r,
                             struct consumed *c)
{
    int rv = O2D_OK;
    for (size_t i = 0; i < r->n_attributes && rv == O2D_OK; i++) {
        const char *k = r->attributes[i]->key;
        const OtlpAnyValue *v = r->attributes[i]->value;
        struct res_str s;
        uint64_t id;
        if (key_in(k, message_keys, N(message_keys))) {
            rv = res_value_as_string(a, v, &c->message);
        } else if (key_in(k, status_keys, N(status_keys))) {
            rv = res_value_as_string(a, v, &c->status);
        } else if (key_in(k, trace_keys, N(trace_keys))) {
            rv = res_value_as_string(a, v, &s);
            if (rv == O2D_OK && decode_id(s, 16, &id) && !b->have_dd_trace) {
                rv = prop_ids(b, "dd.trace_id", "otel.trace_id", id, s.p, s.n);
            }
        } else if (key_in(k, span_keys, N(span_keys))) {
            rv = res_value_as_string(a, v, &s);
            if (rv == O2D_OK && decode_id(s, 8, &id) && !b->have_dd_span) {
                rv = prop_ids(b, "dd.span_id", "otel.span_id", id, s.p, s.n);
            }
        } else if (strcasecmp(k, "ddtags") == 0) {
            c->has_ddtags = 1;
            rv = res_value_as_string(a, v, &c->ddtags);
        } else {
            size_t ko;
            rv = put(b, k, strlen(k), &ko);
            if (rv == O2D_OK) {
                rv = flatten(b, a, ko, strlen(k), v, 1);
            }
        }
    }
    return rv;
}

/* "2006-01-02T15:04:05.000Z07:00" of a UTC time: milliseconds, truncated. */
static int format_timestamp(uint64_t ns, char *out, size_t n)
{
    time_t sec = (time_t)(ns / 1000000000u);
    unsigned ms = (unsigned)(ns % 1000000000u / 1000000u);
    struct tm tm;
    if (gmtime_r(&sec, &tm) == NULL) {
        return 0;
    }
    return snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

/* The ddtags field: the resource's tags, the ddtags attribute, otel_source. */
static int ddtags_value(struct o2d_arena *a, const OtlpResource *res, const struct consumed *c,
                        const struct logs_config *cfg, struct o2d_buf *tmp)
{
    struct res_str *tags = NULL;
    size_t n = 0;
    int rv = O2D_OK;
    if (res != NULL) {
        rv = res_tags_from_attributes(a, res->attributes, res->n_attributes, &tags, &n);
    }
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        if (i > 0) {
            rv = o2d_buf_append_byte(tmp, ',');
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append(tmp, tags[i].p, tags[i].n);
        }
    }
    if (rv == O2D_OK && c->has_ddtags) {
        if (n > 0) {
            rv = o2d_buf_append_byte(tmp, ',');
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_append(tmp, c->ddtags.p, c->ddtags.n);
        }
    }
    if (rv == O2D_OK && cfg->otel_source != NULL && cfg->otel_source[0] != '\0') {
        if (tmp->len > 0) {
            rv = o2d_buf_append_byte(tmp, ',');
        }
        if (rv == O2D_OK) {
            rv = o2d_buf_printf(tmp, "otel_source:%s", cfg->otel_source);
        }
    }
    return rv;
}

/* Index of the winning "message" property when it is the field (not replaced). */
static struct prop *message_field(struct logs_builder *b)
{
    struct prop *field = NULL;
    for (size_t i = 0; i < b->n_props; i++) {
        if (key_is(b, &b->props[i], "message")) {
            if (!b->props[i].fixed) {
                return NULL;
            }
            field = &b->props[i];
        }
    }
    return field;
}

/* The longest prefix of s[0..n) that ends on a character boundary. */
static size_t char_boundary(const char *s, size_t n, size_t len)
{
    while (len > 0 && len < n && ((unsigned char)s[len] & 0xC0) == 0x80) {
        len--;
    }
    return len;
}

static int write_record(struct logs_builder *b, struct o2d_arena *a, const OtlpResource *res,
                        const OtlpScopeLogs *sl, const OtlpLogRecord *r,
                        const struct logs_config *cfg, int *truncated)
{
    o2d_buf_reset(&b->scratch);
    o2d_buf_reset(&b->out);
    b->n_props = 0;
    b->have_dd_trace = b->have_dd_span = 0;
    *truncated = 0;
    OtlpKeyValue *const *rattrs = res != NULL ? res->attributes : NULL;
    size_t n_rattrs = res != NULL ? res->n_attributes : 0;

    /* 1. host and service */
    struct res_source src;
    struct res_str host = {"", 0}, service = {"", 0};
    int rv = res_source_from_attrs(a, rattrs, n_rattrs, &src);
    if (rv == O2D_OK && src.found && !src.fargate) {
        host = src.hostname;
    }
    if (rv == O2D_OK && host.n == 0) {
        rv = res_source_from_attrs(a, r->attributes, r->n_attributes, &src);
        if (rv == O2D_OK && src.found && !src.fargate) {
            host = src.hostname;
        }
    }
    const OtlpAnyValue *sv = res_attr_get(rattrs, n_rattrs, "service.name");
    if (rv == O2D_OK && sv != NULL) {
        rv = res_value_as_string(a, sv, &service);
    }
    if (rv == O2D_OK && service.n == 0 &&
        (sv = res_attr_get(r->attributes, r->n_attributes, "service.name")) != NULL) {
        rv = res_value_as_string(a, sv, &service);
    }

    /* 2. record attributes */
    struct consumed c;
    memset(&c, 0, sizeof(c));
    if (rv == O2D_OK) {
        rv = record_attributes(b, a, r, &c);
    }
    /* 3. resource and scope attributes */
    for (size_t i = 0; i < n_rattrs && rv == O2D_OK; i++) {
        const char *k = rattrs[i]->key;
        const char *key = strcmp(k, "hostname") == 0  ? "otel.hostname"
                          : strcmp(k, "service") == 0 ? "otel.service"
                                                      : k;
        const OtlpAnyValue *v = rattrs[i]->value;
        if (v != NULL && v->value_case == AV(ARRAY_VALUE)) {
            /* kept as a JSON array (transform_test.go@06514ea "array resource attribute
             * preserved as array") */
            size_t ko, vo = 0;
            rv = put(b, key, strlen(key), &ko);
            if (rv == O2D_OK) {
                vo = b->scratch.len;
                rv = res_json_value(&b->scratch, a, v, 0);
            }
            if (rv == O2D_OK) {
                rv = add_prop(b, ko, strlen(key), vo, b->scratch.len - vo, 0);
            }
            continue;
        }
        rv = prop_as_string(b, a, key, v);
    }
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope = sl->scope;
    for (size_t i = 0; scope != NULL && i < scope->n_attributes && rv == O2D_OK; i++) {
        rv = prop_as_string(b, a, scope->attributes[i]->key, scope->attributes[i]->value);
    }
    /* 4. the record's own ids */
    char hex[33];
    if (rv == O2D_OK && r->trace_id.len == 16 && any_nonzero(r->trace_id.data, 16)) {
        for (int i = 0; i < 16; i++) {
            snprintf(hex + 2 * i, 3, "%02x", r->trace_id.data[i]);
        }
        rv = prop_ids(b, "dd.trace_id", "otel.trace_id", be64(r->trace_id.data + 8), hex, 32);
    }
    if (rv == O2D_OK && r->span_id.len == 8 && any_nonzero(r->span_id.data, 8)) {
        for (int i = 0; i < 8; i++) {
            snprintf(hex + 2 * i, 3, "%02x", r->span_id.data[i]);
        }
        rv = prop_ids(b, "dd.span_id", "otel.span_id", be64(r->span_id.data), hex, 16);
    }
    /* 5. status */
    struct res_str status = c.status;
    if (rv == O2D_OK && r->severity_text != NULL && r->severity_text[0] != '\0') {
        if (status.n == 0) {
            status = (struct res_str){r->severity_text, strlen(r->severity_text)};
        }
        rv = prop_str(b, "otel.severity_text", r->severity_text, strlen(r->severity_text), 0);
    }
    if (rv == O2D_OK && r->severity_number != 0) {
        char num[16];
        int n = snprintf(num, sizeof(num), "%d", (int)r->severity_number);
        if (status.n == 0) {
            const char *st = logs_status_of_severity((int)r->severity_number);
            status = (struct res_str){st, strlen(st)};
        }
        rv = prop_str(b, "otel.severity_number", num, (size_t)n, 0);
    }
    if (rv == O2D_OK) {
        rv = prop_str(b, "status", status.p, status.n, 0);
    }
    /* 6. time */
    uint64_t ts = r->time_unix_nano != 0 ? r->time_unix_nano : r->observed_time_unix_nano;
    if (rv == O2D_OK && ts != 0) {
        char num[24], when[40];
        int n = snprintf(num, sizeof(num), "%" PRId64, (int64_t)ts);
        rv = prop_str(b, "otel.timestamp", num, (size_t)n, 0);
        int wn = format_timestamp(ts, when, sizeof(when));
        if (rv == O2D_OK && wn > 0) {
            rv = prop_str(b, "@timestamp", when, (size_t)wn, 0);
        }
    }
    if (rv == O2D_OK && r->event_name != NULL && r->event_name[0] != '\0') {
        rv = prop_str(b, "otel.event_name", r->event_name, strlen(r->event_name), 0);
    }
    /* 7. the fields */
    struct res_str message = c.message;
    if (rv == O2D_OK && message.n == 0) {
        rv = res_value_as_string(a, r->body, &message);
    }
    if (rv == O2D_OK && cfg->ddsource != NULL) {
        rv = prop_str(b, "ddsource", cfg->ddsource, strlen(cfg->ddsource), 1);
    }
    if (rv == O2D_OK) {
        struct o2d_buf tags;
        o2d_buf_init(&tags, b->scratch.max);
        rv = ddtags_value(a, res, &c, cfg, &tags);
        if (rv == O2D_OK) {
            rv = prop_str(b, "ddtags", tags.len > 0 ? (const char *)tags.data : "", tags.len, 1);
        }
        o2d_buf_cleanup(&tags);
    }
    if (rv == O2D_OK && host.n > 0) {
        rv = prop_str(b, "hostname", host.p, host.n, 1);
    }
    if (rv == O2D_OK) {
        rv = prop_str(b, "message", message.p, message.n, 1);
    }
    if (rv == O2D_OK && service.n > 0) {
        rv = prop_str(b, "service", service.p, service.n, 1);
    }
    if (rv == O2D_OK) {
        rv = render(b, 0, &b->out);
    }
    if (rv != O2D_OK || cfg->max_entry_bytes == 0 || b->out.len <= cfg->max_entry_bytes) {
        return rv;
    }
    /* Too large: cut the message by what is over, and the marker. Escaping only ever made
     * the cut part longer, so the entry shrinks by at least as much. */
    size_t cut = b->out.len - cfg->max_entry_bytes + sizeof(LOGS_TRUNCATED_MARKER) - 1;
    struct prop *mp = message_field(b);
    if (mp == NULL || message.n < cut) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t keep = char_boundary(message.p, message.n, message.n - cut);
    size_t vo = b->scratch.len;
    struct o2d_buf m;
    o2d_buf_init(&m, b->scratch.max);
    rv = o2d_buf_append(&m, message.p, keep);
    if (rv == O2D_OK) {
        rv = o2d_buf_append_str(&m, LOGS_TRUNCATED_MARKER);
    }
    if (rv == O2D_OK) {
        rv = res_json_string(&b->scratch, (const char *)m.data, m.len);
    }
    o2d_buf_cleanup(&m);
    if (rv != O2D_OK) {
        return rv;
    }
    mp->val_off = vo;
    mp->val_len = b->scratch.len - vo;
    o2d_buf_reset(&b->out);
    rv = render(b, 0, &b->out);
    if (rv == O2D_OK && b->out.len > cfg->max_entry_bytes) {
        return O2D_ERR_TOO_LARGE;
    }
    *truncated = rv == O2D_OK;
    return rv;
}

int logs_translate(struct logs_builder *b, struct o2d_arena *a, const OtlpLogsReq *req,
                   const struct logs_config *cfg, logs_emit_fn emit, void *ctx,
                   struct logs_counts *counts)
{
    if (req == NULL) {
        return O2D_OK;
    }
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const OtlpResourceLogs *rl = req->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const OtlpScopeLogs *sl = rl->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const OtlpLogRecord *r = sl->log_records[k];
                if (cfg->skip != NULL && cfg->skip(r)) {
                    counts->skipped++;
                    continue;
                }
                int truncated = 0;
                int rv = write_record(b, a, rl->resource, sl, r, cfg, &truncated);
                if (rv == O2D_ERR_TOO_LARGE) {
                    counts->too_large++;
                    continue;
                }
                if (rv != O2D_OK) {
                    return rv;
                }
                rv = emit(ctx, b->out.data, b->out.len);
                if (rv != O2D_OK) {
                    return rv;
                }
                counts->translated++;
                counts->truncated += (uint64_t)truncated;
            }
        }
    }
    return O2D_OK;
}
