/*
 * apm_pb.c: apm_pb.h, a TracerPayload's protobuf bytes in one pass.
 *
 * Wire format: https://protobuf.dev/programming-guides/encoding/ (varints, tags as
 * field << 3 | wire type, length-delimited submessages, repeated fields and map entries as
 * one length-delimited record each). The messages are DataDog/datadog-agent
 * pkg/proto/datadog/trace/{tracer_payload,span}.proto (our copies in proto/datadog/trace).
 * What protobuf-c 1.4 writes for proto3 fields, which this matches byte for byte
 * (tests/unit/test_apm_pb.c compares on every tests/data/apm fixture, and
 * tests/fuzz/fuzz_apm_pb.c on translated fuzz input): a field is skipped when it is zero
 * (numbers), NULL or "" (strings), of length 0 (bytes) or a NULL pointer (singular
 * messages); a NULL element of a repeated message field is written as an empty message.
 *
 * One pass: a submessage's length is not known before its body is written, so a guess of its
 * varint's size is reserved (1 byte for small entries, 2 for spans, 2 or 3 for chunks by their
 * number of spans) and the body moved when the guess was wrong, which for these messages is
 * rare. A
 * string map entry's length is computed from its two strings and written first.
 *
 * A payload apm_translate made carries its spans' string lengths (struct apm_span, apm_int.h):
 * apm_pb_tracer_payload_translated takes them from there, so that each meta string is read
 * once, by its copy; any other payload's strings are measured with strlen.
 */
#include <string.h>

#include "apm_int.h"
#include "apm_pb.h"
#include "o2d.h"
#include "o2d_varint.h"

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rv_ = (x);                                                                             \
        if (rv_ != O2D_OK) {                                                                       \
            return rv_;                                                                            \
        }                                                                                          \
    } while (0)

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

#define TAG(field, wt) ((uint8_t)(((field) << 3) | (wt)))

static inline int ensure(struct o2d_buf *b, size_t n)
{
    if (b->cap - b->len >= n) {
        return O2D_OK;
    }
    return o2d_buf_reserve(b, n);
}

/* Copies n bytes from s to d, the short strings (most keys and values) without a call: two
 * overlapping loads and stores stay inside both [s, s + n) and [d, d + n). */
static inline void copy_bytes(uint8_t *d, const char *s, size_t n)
{
    if (n > 32) {
        memcpy(d, s, n);
    } else if (n >= 16) {
        uint8_t x[16], y[16];
        memcpy(x, s, 16);
        memcpy(y, s + n - 16, 16);
        memcpy(d, x, 16);
        memcpy(d + n - 16, y, 16);
    } else if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, s, 8);
        memcpy(&y, s + n - 8, 8);
        memcpy(d, &x, 8);
        memcpy(d + n - 8, &y, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else if (n > 0) {
        d[0] = (uint8_t)s[0];
        d[n / 2] = (uint8_t)s[n / 2];
        d[n - 1] = (uint8_t)s[n - 1];
    }
}

/* A tag and a varint at p (room for 11 bytes); returns the bytes written. */
static inline size_t put_tag_varint(uint8_t *p, uint8_t tag, uint64_t v)
{
    p[0] = tag;
    return 1 + o2d_put_varint(p + 1, v);
}

static int field_varint(struct o2d_buf *b, uint8_t tag, uint64_t v)
{
    if (v == 0) {
        return O2D_OK;
    }
    TRY(ensure(b, 11)); /* the tag and a varint of at most 10 bytes: one pass, not two */
    b->data[b->len++] = tag;
    b->len += o2d_put_varint(b->data + b->len, v);
    return O2D_OK;
}

/* int32 and enums: a negative value is sign-extended to 64 bits (ten bytes). */
static int field_int32(struct o2d_buf *b, uint8_t tag, int32_t v)
{
    return field_varint(b, tag, (uint64_t)(int64_t)v);
}

static int put_fixed64(struct o2d_buf *b, uint8_t tag, uint64_t v)
{
    TRY(ensure(b, 9));
    uint8_t *p = b->data + b->len;
    p[0] = tag;
    for (int i = 0; i < 8; i++) {
        p[1 + i] = (uint8_t)(v >> (8 * i));
    }
    b->len += 9;
    return O2D_OK;
}

static int field_double(struct o2d_buf *b, uint8_t tag, double d)
{
    if (d == 0) { /* 0.0 and -0.0, as protobuf-c's zero test */
        return O2D_OK;
    }
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return put_fixed64(b, tag, v);
}

static int field_bytes(struct o2d_buf *b, uint8_t tag, const void *p, size_t n)
{
    TRY(ensure(b, 1 + o2d_varint_len(n) + n));
    b->data[b->len++] = tag;
    b->len += o2d_put_varint(b->data + b->len, n);
    copy_bytes(b->data + b->len, p, n);
    b->len += n;
    return O2D_OK;
}

/* A string field of n bytes (left out when empty). */
static int field_strn(struct o2d_buf *b, uint8_t tag, const char *s, size_t n)
{
    if (n == 0) {
        return O2D_OK;
    }
    return field_bytes(b, tag, s, n);
}

static int field_str(struct o2d_buf *b, uint8_t tag, const char *s)
{
    return field_strn(b, tag, s, apm_strlen0(s));
}

/* A submessage: open() writes its tag and reserves `guess` bytes for its length, close()
 * writes the length, moving the body when it takes another number of bytes. */
static int open_msg(struct o2d_buf *b, uint8_t tag, size_t guess, size_t *at)
{
    TRY(ensure(b, 1 + guess));
    b->data[b->len++] = tag;
    *at = b->len;
    b->len += guess;
    return O2D_OK;
}

static int close_msg(struct o2d_buf *b, size_t at, size_t guess)
{
    size_t body = b->len - at - guess;
    size_t need = o2d_varint_len(body);
    if (need > guess) {
        TRY(ensure(b, need - guess));
    }
    if (need != guess) {
        memmove(b->data + at + need, b->data + at + guess, body);
        b->len = at + need + body;
    }
    o2d_put_varint(b->data + at, body);
    return O2D_OK;
}

/* A map<string, string> entry: both lengths are known first, so it is written in one go. */
static int str_entry_n(struct o2d_buf *b, uint8_t tag, const char *k, size_t kn, const char *v,
                       size_t vn)
{
    /* Most entries: both strings non-empty and the entry under 128 bytes, so every length is
     * one byte (kn - 1 and vn - 1 wrap around when a string is empty). */
    if (kn - 1 < 120 && vn - 1 < 120 && kn + vn + 4 < 128) {
        size_t body = kn + vn + 4;
        TRY(ensure(b, 2 + body));
        uint8_t *p = b->data + b->len;
        p[0] = tag;
        p[1] = (uint8_t)body;
        p[2] = TAG(1, WT_LEN);
        p[3] = (uint8_t)kn;
        copy_bytes(p + 4, k, kn);
        p += 4 + kn;
        p[0] = TAG(2, WT_LEN);
        p[1] = (uint8_t)vn;
        copy_bytes(p + 2, v, vn);
        b->len += 2 + body;
        return O2D_OK;
    }
    size_t body =
        (kn > 0 ? 1 + o2d_varint_len(kn) + kn : 0) + (vn > 0 ? 1 + o2d_varint_len(vn) + vn : 0);
    TRY(ensure(b, 1 + o2d_varint_len(body) + body));
    uint8_t *p = b->data + b->len;
    *p++ = tag;
    p += o2d_put_varint(p, body);
    if (kn > 0) {
        *p++ = TAG(1, WT_LEN);
        p += o2d_put_varint(p, kn);
        copy_bytes(p, k, kn);
        p += kn;
    }
    if (vn > 0) {
        *p++ = TAG(2, WT_LEN);
        p += o2d_put_varint(p, vn);
        copy_bytes(p, v, vn);
        p += vn;
    }
    b->len = (size_t)(p - b->data);
    return O2D_OK;
}

static int str_entry(struct o2d_buf *b, uint8_t tag, const char *k, const char *v)
{
    return str_entry_n(b, tag, k, apm_strlen0(k), v, apm_strlen0(v));
}

static int array_value(struct o2d_buf *b, const Datadog__Trace__AttributeArrayValue *v)
{
    TRY(field_int32(b, TAG(1, WT_VARINT), (int32_t)v->type));
    TRY(field_str(b, TAG(2, WT_LEN), v->string_value));
    TRY(field_varint(b, TAG(3, WT_VARINT), v->bool_value != 0));
    TRY(field_varint(b, TAG(4, WT_VARINT), (uint64_t)v->int_value));
    return field_double(b, TAG(5, WT_I64), v->double_value);
}

static int any_value(struct o2d_buf *b, const Datadog__Trace__AttributeAnyValue *v)
{
    TRY(field_int32(b, TAG(1, WT_VARINT), (int32_t)v->type));
    TRY(field_str(b, TAG(2, WT_LEN), v->string_value));
    TRY(field_varint(b, TAG(3, WT_VARINT), v->bool_value != 0));
    TRY(field_varint(b, TAG(4, WT_VARINT), (uint64_t)v->int_value));
    TRY(field_double(b, TAG(5, WT_I64), v->double_value));
    if (v->array_value != NULL) {
        size_t at;
        TRY(open_msg(b, TAG(6, WT_LEN), 1, &at));
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            size_t at2;
            TRY(open_msg(b, TAG(1, WT_LEN), 1, &at2));
            if (v->array_value->values[i] != NULL) {
                TRY(array_value(b, v->array_value->values[i]));
            }
            TRY(close_msg(b, at2, 1));
        }
        TRY(close_msg(b, at, 1));
    }
    return O2D_OK;
}

static int span_event(struct o2d_buf *b, const Datadog__Trace__SpanEvent *e)
{
    if (e->time_unix_nano != 0) {
        TRY(put_fixed64(b, TAG(1, WT_I64), e->time_unix_nano));
    }
    TRY(field_str(b, TAG(2, WT_LEN), e->name));
    for (size_t i = 0; i < e->n_attributes; i++) {
        const Datadog__Trace__SpanEvent__AttributesEntry *a = e->attributes[i];
        size_t at;
        TRY(open_msg(b, TAG(3, WT_LEN), 1, &at));
        if (a != NULL) {
            TRY(field_str(b, TAG(1, WT_LEN), a->key));
            if (a->value != NULL) {
                size_t at2;
                TRY(open_msg(b, TAG(2, WT_LEN), 1, &at2));
                TRY(any_value(b, a->value));
                TRY(close_msg(b, at2, 1));
            }
        }
        TRY(close_msg(b, at, 1));
    }
    return O2D_OK;
}

static int span_link(struct o2d_buf *b, const Datadog__Trace__SpanLink *l)
{
    TRY(field_varint(b, TAG(1, WT_VARINT), l->traceid));
    TRY(field_varint(b, TAG(2, WT_VARINT), l->traceid_high));
    TRY(field_varint(b, TAG(3, WT_VARINT), l->spanid));
    for (size_t i = 0; i < l->n_attributes; i++) {
        const Datadog__Trace__SpanLink__AttributesEntry *a = l->attributes[i];
        TRY(str_entry(b, TAG(4, WT_LEN), a != NULL ? a->key : NULL, a != NULL ? a->value : NULL));
    }
    TRY(field_str(b, TAG(5, WT_LEN), l->tracestate));
    return field_varint(b, TAG(6, WT_VARINT), l->flags);
}

/* w: s's apm_span when the payload is apm_translate's, else NULL. */
static int span(struct o2d_buf *b, const DdSpan *s, const struct apm_span *w)
{
    if (w != NULL) {
        TRY(field_strn(b, TAG(1, WT_LEN), s->service, apm_noted_len(s->service, w->service)));
        TRY(field_strn(b, TAG(2, WT_LEN), s->name, apm_noted_len(s->name, w->name)));
        TRY(field_strn(b, TAG(3, WT_LEN), s->resource, apm_noted_len(s->resource, w->resource)));
    } else {
        TRY(field_str(b, TAG(1, WT_LEN), s->service));
        TRY(field_str(b, TAG(2, WT_LEN), s->name));
        TRY(field_str(b, TAG(3, WT_LEN), s->resource));
    }
    /* fields 4 to 9, varints of at most 11 bytes with their tags, after one room check */
    const uint64_t nums[6] = {s->traceid,
                              s->spanid,
                              s->parentid,
                              (uint64_t)s->start,
                              (uint64_t)s->duration,
                              (uint64_t)(int64_t)s->error};
    TRY(ensure(b, 6 * 11));
    uint8_t *p = b->data + b->len;
    for (int f = 0; f < 6; f++) {
        if (nums[f] != 0) {
            p += put_tag_varint(p, TAG(4 + f, WT_VARINT), nums[f]);
        }
    }
    b->len = (size_t)(p - b->data);
    for (size_t i = 0; i < s->n_meta; i++) {
        const Datadog__Trace__Span__MetaEntry *e = s->meta[i];
        size_t kn = 0, vn = 0;
        if (e != NULL) {
            apm_meta_entry_lens(w, e, &kn, &vn);
        }
        TRY(str_entry_n(b, TAG(10, WT_LEN), e != NULL ? e->key : NULL, kn,
                        e != NULL ? e->value : NULL, vn));
    }
    for (size_t i = 0; i < s->n_metrics; i++) {
        const Datadog__Trace__Span__MetricsEntry *e = s->metrics[i];
        size_t kn = e != NULL ? apm_strlen0(e->key) : 0;
        if (kn - 1 < 100) { /* a key of 1 to 100 bytes: the entry's length in one byte */
            int has_value = e->value != 0; /* 0.0 and -0.0 are left out */
            size_t body = 2 + kn + (has_value ? 9 : 0);
            TRY(ensure(b, 2 + body));
            uint8_t *q = b->data + b->len;
            q[0] = TAG(11, WT_LEN);
            q[1] = (uint8_t)body;
            q[2] = TAG(1, WT_LEN);
            q[3] = (uint8_t)kn;
            copy_bytes(q + 4, e->key, kn);
            q += 4 + kn;
            if (has_value) {
                uint64_t bits;
                memcpy(&bits, &e->value, sizeof(bits));
                q[0] = TAG(2, WT_I64);
                for (int j = 0; j < 8; j++) {
                    q[1 + j] = (uint8_t)(bits >> (8 * j));
                }
            }
            b->len += 2 + body;
            continue;
        }
        size_t at;
        TRY(open_msg(b, TAG(11, WT_LEN), 1, &at));
        if (e != NULL) {
            TRY(field_str(b, TAG(1, WT_LEN), e->key));
            TRY(field_double(b, TAG(2, WT_I64), e->value));
        }
        TRY(close_msg(b, at, 1));
    }
    TRY(field_strn(b, TAG(12, WT_LEN), s->type,
                   w != NULL ? apm_noted_len(s->type, w->type) : apm_strlen0(s->type)));
    for (size_t i = 0; i < s->n_meta_struct; i++) {
        const Datadog__Trace__Span__MetaStructEntry *e = s->meta_struct[i];
        size_t at;
        TRY(open_msg(b, TAG(13, WT_LEN), 1, &at));
        if (e != NULL) {
            TRY(field_str(b, TAG(1, WT_LEN), e->key));
            if (e->value.len > 0) {
                TRY(field_bytes(b, TAG(2, WT_LEN), e->value.data, e->value.len));
            }
        }
        TRY(close_msg(b, at, 1));
    }
    for (size_t i = 0; i < s->n_spanlinks; i++) {
        size_t at;
        TRY(open_msg(b, TAG(14, WT_LEN), 1, &at));
        if (s->spanlinks[i] != NULL) {
            TRY(span_link(b, s->spanlinks[i]));
        }
        TRY(close_msg(b, at, 1));
    }
    for (size_t i = 0; i < s->n_spanevents; i++) {
        size_t at;
        TRY(open_msg(b, TAG(15, WT_LEN), 2, &at));
        if (s->spanevents[i] != NULL) {
            TRY(span_event(b, s->spanevents[i]));
        }
        TRY(close_msg(b, at, 2));
    }
    return O2D_OK;
}

static int chunk(struct o2d_buf *b, const DdTraceChunk *c, int translated)
{
    TRY(field_int32(b, TAG(1, WT_VARINT), c->priority));
    TRY(field_str(b, TAG(2, WT_LEN), c->origin));
    for (size_t i = 0; i < c->n_spans; i++) {
        size_t at;
        TRY(open_msg(b, TAG(3, WT_LEN), 2, &at));
        if (c->spans[i] != NULL) {
            TRY(span(b, c->spans[i], translated ? apm_span_of(c->spans[i]) : NULL));
        }
        TRY(close_msg(b, at, 2));
    }
    for (size_t i = 0; i < c->n_tags; i++) {
        const Datadog__Trace__TraceChunk__TagsEntry *e = c->tags[i];
        TRY(str_entry(b, TAG(4, WT_LEN), e != NULL ? e->key : NULL, e != NULL ? e->value : NULL));
    }
    return field_varint(b, TAG(5, WT_VARINT), c->droppedtrace != 0);
}

static int payload(struct o2d_buf *b, const DdTracerPayload *tp, int translated)
{
    TRY(field_str(b, TAG(1, WT_LEN), tp->containerid));
    TRY(field_str(b, TAG(2, WT_LEN), tp->languagename));
    TRY(field_str(b, TAG(3, WT_LEN), tp->languageversion));
    TRY(field_str(b, TAG(4, WT_LEN), tp->tracerversion));
    TRY(field_str(b, TAG(5, WT_LEN), tp->runtimeid));
    /* A chunk's length takes 2 bytes under 16 KiB, else 3: guessed from the bytes a span took
     * in the chunks before (400 at first); a wrong guess moves the chunk's bytes once. */
    size_t done_at = b->len, done_spans = 0;
    for (size_t i = 0; i < tp->n_chunks; i++) {
        const DdTraceChunk *ch = tp->chunks[i];
        size_t per_span = done_spans > 0 ? (b->len - done_at) / done_spans : 400;
        size_t guess = ch == NULL || ch->n_spans * per_span < 16000 ? 2 : 3;
        done_spans += ch != NULL ? ch->n_spans : 0;
        size_t at;
        TRY(open_msg(b, TAG(6, WT_LEN), guess, &at));
        if (ch != NULL) {
            TRY(chunk(b, ch, translated));
        }
        TRY(close_msg(b, at, guess));
    }
    for (size_t i = 0; i < tp->n_tags; i++) {
        const Datadog__Trace__TracerPayload__TagsEntry *e = tp->tags[i];
        TRY(str_entry(b, TAG(7, WT_LEN), e != NULL ? e->key : NULL, e != NULL ? e->value : NULL));
    }
    TRY(field_str(b, TAG(8, WT_LEN), tp->env));
    TRY(field_str(b, TAG(9, WT_LEN), tp->hostname));
    return field_str(b, TAG(10, WT_LEN), tp->appversion);
}

static int write_payload(struct o2d_buf *out, const DdTracerPayload *tp, int translated)
{
    size_t start = out->len;
    int rv = payload(out, tp, translated);
    if (rv != O2D_OK) {
        out->len = start;
    }
    return rv;
}

int apm_pb_tracer_payload(struct o2d_buf *out, const DdTracerPayload *tp)
{
    return write_payload(out, tp, 0);
}

int apm_pb_tracer_payload_translated(struct o2d_buf *out, const DdTracerPayload *tp)
{
    return write_payload(out, tp, 1);
}
