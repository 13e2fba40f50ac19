/*
 * apm_msgpack.c: apm_msgpack.h, translated spans as the v0.4 msgpack Datadog's tracers send
 * to a local Agent (dd-trace-py's ddtrace/internal/_encoding.pyx MsgpackEncoderV04 writes the
 * same keys; the agent's decoder is pkg/proto/pbgo/trace/span_msgp.go and decoder_v04.go).
 *
 * Ids are msgpack unsigned integers (trace_id is the low 64 bits; apm.c puts the high half
 * in the first span's meta `_dd.p.tid`, as tracers do), start and duration signed integers,
 * metrics float64, meta strings, meta_struct binaries and only when a span has any. Span
 * links: `span_links`, an array of maps with the keys of the SpanLink msgp tags
 * (DataDog/datadog-agent pkg/proto/datadog/trace/span.proto: trace_id, trace_id_high,
 * span_id, attributes, tracestate, flags; the optional ones omitted when empty, as
 * `omitempty` does), decoded by agents 7.52 and later (older ones skip the unknown key);
 * apm.c also keeps the `_dd.span_links` meta JSON. Events stay meta JSON (`events`).
 * For a payload apm_translate made, the string lengths it noted (struct apm_span, apm_int.h)
 * are used instead of measuring the strings again (apm_msgpack_trace_translated).
 */
#include <string.h>

#include "apm_int.h"
#include "apm_msgpack.h"
#include "o2d.h"

#define PRIORITY_KEY "_sampling_priority_v1"
#define HOSTNAME_KEY "_dd.hostname"
#define ORIGIN_KEY   "_dd.origin"

/*
 * The msgpack writer: each value straight into the buffer, in the smallest form the
 * msgpack spec (https://github.com/msgpack/msgpack/blob/master/spec.md) allows, the forms
 * msgpack-c's packer picks (fixstr/str8/16/32, fixmap/map16/32, fixarray/array16/32, positive
 * and negative fixint, then uint8..64 or int8..64, float64, bin8/16/32), so the bytes are the
 * ones this file wrote through msgpack-c before (tests/unit/test_agent_encode.c compares).
 */
#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rv_ = (x);                                                                             \
        if (rv_ != O2D_OK) {                                                                       \
            return rv_;                                                                            \
        }                                                                                          \
    } while (0)

static inline int room(struct o2d_buf *b, size_t n)
{
    return b->cap - b->len >= n ? O2D_OK : o2d_buf_reserve(b, n);
}

static inline void be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
}

/* A header: `fix` | n when n < fixmax, else the 8/16/32-bit form (c8 0 = none). */
static int header(struct o2d_buf *b, uint8_t fix, size_t fixmax, uint8_t c8, uint8_t c16,
                  uint8_t c32, size_t n)
{
    TRY(room(b, 5));
    uint8_t *p = b->data + b->len;
    if (n < fixmax) {
        p[0] = (uint8_t)(fix | n);
        b->len += 1;
    } else if (c8 != 0 && n < 256) {
        p[0] = c8;
        p[1] = (uint8_t)n;
        b->len += 2;
    } else if (n < 65536) {
        p[0] = c16;
        be(p + 1, n, 2);
        b->len += 3;
    } else {
        p[0] = c32;
        be(p + 1, n, 4);
        b->len += 5;
    }
    return O2D_OK;
}

static int mp_map(struct o2d_buf *b, size_t n)
{
    return header(b, 0x80, 16, 0, 0xde, 0xdf, n);
}

static int mp_array(struct o2d_buf *b, size_t n)
{
    return header(b, 0x90, 16, 0, 0xdc, 0xdd, n);
}

static int mp_strn(struct o2d_buf *b, const char *s, size_t n)
{
    if (n < 32 && b->cap - b->len > n) {
        /* fixstr, most keys and values: one header byte, one room check */
        uint8_t *p = b->data + b->len;
        p[0] = (uint8_t)(0xa0 | n);
        if (n > 0) {
            memcpy(p + 1, s, n);
        }
        b->len += 1 + n;
        return O2D_OK;
    }
    TRY(header(b, 0xa0, 32, 0xd9, 0xda, 0xdb, n));
    TRY(room(b, n));
    if (n > 0) {
        memcpy(b->data + b->len, s, n);
    }
    b->len += n;
    return O2D_OK;
}

static int pack_str(struct o2d_buf *b, const char *s)
{
    return s != NULL ? mp_strn(b, s, strlen(s)) : mp_strn(b, "", 0);
}

#define pack_key(b, lit) mp_strn((b), (lit), sizeof(lit) - 1)

/* A span's string field, its length noted by translation (noted NULL: none, measured). */
static int pack_noted(struct o2d_buf *b, const char *s, const struct apm_str *noted)
{
    if (s == NULL) {
        return mp_strn(b, "", 0);
    }
    return mp_strn(b, s, noted != NULL ? apm_noted_len(s, *noted) : strlen(s));
}

static int mp_uint(struct o2d_buf *b, uint64_t v)
{
    TRY(room(b, 9));
    uint8_t *p = b->data + b->len;
    if (v < 128) {
        p[0] = (uint8_t)v;
        b->len += 1;
    } else if (v < 256) {
        p[0] = 0xcc;
        p[1] = (uint8_t)v;
        b->len += 2;
    } else if (v < 65536) {
        p[0] = 0xcd;
        be(p + 1, v, 2);
        b->len += 3;
    } else if (v < (UINT64_C(1) << 32)) {
        p[0] = 0xce;
        be(p + 1, v, 4);
        b->len += 5;
    } else {
        p[0] = 0xcf;
        be(p + 1, v, 8);
        b->len += 9;
    }
    return O2D_OK;
}

static int mp_int(struct o2d_buf *b, int64_t v)
{
    if (v >= 0) {
        return mp_uint(b, (uint64_t)v);
    }
    TRY(room(b, 9));
    uint8_t *p = b->data + b->len;
    if (v >= -32) {
        p[0] = (uint8_t)v; /* negative fixint */
        b->len += 1;
    } else if (v >= -128) {
        p[0] = 0xd0;
        p[1] = (uint8_t)v;
        b->len += 2;
    } else if (v >= -32768) {
        p[0] = 0xd1;
        be(p + 1, (uint64_t)v, 2);
        b->len += 3;
    } else if (v >= -(INT64_C(1) << 31)) {
        p[0] = 0xd2;
        be(p + 1, (uint64_t)v, 4);
        b->len += 5;
    } else {
        p[0] = 0xd3;
        be(p + 1, (uint64_t)v, 8);
        b->len += 9;
    }
    return O2D_OK;
}

static int mp_double(struct o2d_buf *b, double d)
{
    TRY(room(b, 9));
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    b->data[b->len] = 0xcb;
    be(b->data + b->len + 1, v, 8);
    b->len += 9;
    return O2D_OK;
}

static int mp_bin(struct o2d_buf *b, const uint8_t *p, size_t n)
{
    TRY(room(b, 5));
    uint8_t *h = b->data + b->len;
    if (n < 256) {
        h[0] = 0xc4;
        h[1] = (uint8_t)n;
        b->len += 2;
    } else if (n < 65536) {
        h[0] = 0xc5;
        be(h + 1, n, 2);
        b->len += 3;
    } else {
        h[0] = 0xc6;
        be(h + 1, n, 4);
        b->len += 5;
    }
    TRY(room(b, n));
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return O2D_OK;
}

static int has_meta(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_meta; i++) {
        if (s->meta[i]->key[0] == k[0] && strcmp(s->meta[i]->key, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static int has_metric(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        if (s->metrics[i]->key[0] == k[0] && strcmp(s->metrics[i]->key, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_propagated_tag(const char *k)
{
    return strncmp(k, "_dd.p.", 6) == 0;
}

/* What one span carries for its chunk and payload, beyond its own fields. */
struct extras {
    const DdTraceChunk *ch; /* its `_dd.p.*` tags are added (span 0 only) */
    const char *hostname;   /* added as _dd.hostname; NULL = none */
    const char *origin;     /* the chunk's origin, added as _dd.origin; NULL = none */
    int priority;           /* added as _sampling_priority_v1 */
    int has_priority;
};

static int pack_link(struct o2d_buf *b, const Datadog__Trace__SpanLink *l)
{
    int has_ts = l->tracestate != NULL && l->tracestate[0] != '\0';
    size_t n =
        2 + (l->traceid_high != 0) + (l->n_attributes > 0) + (size_t)has_ts + (l->flags != 0);
    TRY(mp_map(b, n));
    TRY(pack_key(b, "trace_id"));
    TRY(mp_uint(b, l->traceid));
    if (l->traceid_high != 0) {
        TRY(pack_key(b, "trace_id_high"));
        TRY(mp_uint(b, l->traceid_high));
    }
    TRY(pack_key(b, "span_id"));
    TRY(mp_uint(b, l->spanid));
    if (l->n_attributes > 0) {
        TRY(pack_key(b, "attributes"));
        TRY(mp_map(b, l->n_attributes));
        for (size_t i = 0; i < l->n_attributes; i++) {
            TRY(pack_str(b, l->attributes[i]->key));
            TRY(pack_str(b, l->attributes[i]->value));
        }
    }
    if (has_ts) {
        TRY(pack_key(b, "tracestate"));
        TRY(pack_str(b, l->tracestate));
    }
    if (l->flags != 0) {
        TRY(pack_key(b, "flags"));
        TRY(mp_uint(b, l->flags));
    }
    return O2D_OK;
}

/* w: s's apm_span when the payload is apm_translate's, else NULL. */
static int pack_span(struct o2d_buf *b, const DdSpan *s, const struct apm_span *w,
                     const struct extras *x)
{
    size_t n_meta = s->n_meta;
    size_t n_chunk_tags = 0;
    if (x->ch != NULL) {
        for (size_t i = 0; i < x->ch->n_tags; i++) {
            const char *k = x->ch->tags[i]->key;
            n_chunk_tags += is_propagated_tag(k) && !has_meta(s, k);
        }
    }
    int add_host = x->hostname != NULL && x->hostname[0] != '\0' && !has_meta(s, HOSTNAME_KEY);
    int add_origin = x->origin != NULL && x->origin[0] != '\0' && !has_meta(s, ORIGIN_KEY);
    n_meta += n_chunk_tags + (size_t)add_host + (size_t)add_origin;
    int add_prio = x->has_priority && !has_metric(s, PRIORITY_KEY);

    TRY(mp_map(b, 12 + (s->n_meta_struct > 0) + (s->n_spanlinks > 0)));
    TRY(pack_key(b, "service"));
    TRY(pack_noted(b, s->service, w != NULL ? &w->service : NULL));
    TRY(pack_key(b, "name"));
    TRY(pack_noted(b, s->name, w != NULL ? &w->name : NULL));
    TRY(pack_key(b, "resource"));
    TRY(pack_noted(b, s->resource, w != NULL ? &w->resource : NULL));
    TRY(pack_key(b, "trace_id"));
    TRY(mp_uint(b, s->traceid));
    TRY(pack_key(b, "span_id"));
    TRY(mp_uint(b, s->spanid));
    TRY(pack_key(b, "parent_id"));
    TRY(mp_uint(b, s->parentid));
    TRY(pack_key(b, "start"));
    TRY(mp_int(b, s->start));
    TRY(pack_key(b, "duration"));
    TRY(mp_int(b, s->duration));
    TRY(pack_key(b, "error"));
    TRY(mp_int(b, s->error));
    TRY(pack_key(b, "type"));
    TRY(pack_noted(b, s->type, w != NULL ? &w->type : NULL));
    TRY(pack_key(b, "meta"));
    TRY(mp_map(b, n_meta));
    for (size_t i = 0; i < s->n_meta; i++) {
        const Datadog__Trace__Span__MetaEntry *e = s->meta[i];
        size_t kn, vn;
        apm_meta_entry_lens(w, e, &kn, &vn);
        TRY(mp_strn(b, e->key != NULL ? e->key : "", kn));
        TRY(mp_strn(b, e->value != NULL ? e->value : "", vn));
    }
    for (size_t i = 0; x->ch != NULL && i < x->ch->n_tags; i++) {
        const char *k = x->ch->tags[i]->key;
        if (is_propagated_tag(k) && !has_meta(s, k)) {
            TRY(pack_str(b, k));
            TRY(pack_str(b, x->ch->tags[i]->value));
        }
    }
    if (add_host) {
        TRY(pack_key(b, HOSTNAME_KEY));
        TRY(pack_str(b, x->hostname));
    }
    if (add_origin) {
        TRY(pack_key(b, ORIGIN_KEY));
        TRY(pack_str(b, x->origin));
    }
    TRY(pack_key(b, "metrics"));
    TRY(mp_map(b, s->n_metrics + (size_t)add_prio));
    for (size_t i = 0; i < s->n_metrics; i++) {
        TRY(pack_str(b, s->metrics[i]->key));
        TRY(mp_double(b, s->metrics[i]->value));
    }
    if (add_prio) {
        TRY(pack_key(b, PRIORITY_KEY));
        TRY(mp_double(b, (double)x->priority));
    }
    if (s->n_meta_struct > 0) {
        TRY(pack_key(b, "meta_struct"));
        TRY(mp_map(b, s->n_meta_struct));
        for (size_t i = 0; i < s->n_meta_struct; i++) {
            const ProtobufCBinaryData *v = &s->meta_struct[i]->value;
            TRY(pack_str(b, s->meta_struct[i]->key));
            TRY(mp_bin(b, v->data, v->len));
        }
    }
    if (s->n_spanlinks > 0) {
        TRY(pack_key(b, "span_links"));
        TRY(mp_array(b, s->n_spanlinks));
        for (size_t i = 0; i < s->n_spanlinks; i++) {
            TRY(pack_link(b, s->spanlinks[i]));
        }
    }
    return O2D_OK;
}

static int pack_trace(struct o2d_buf *out, const DdTracerPayload *tp, const DdTraceChunk *ch,
                      int translated)
{
    /* The priority goes where the agent looks when no span names one. A span that has its
     * own (a user decision, which apm.c took as the chunk's) keeps it. */
    int any_prio = 0;
    for (size_t i = 0; i < ch->n_spans && !any_prio; i++) {
        any_prio = has_metric(ch->spans[i], PRIORITY_KEY);
    }
    /* The agent reads _dd.hostname and the chunk's origin (_dd.origin) from the root
     * (GetRoot: the last span without a parent): that span and the first one carry them. */
    size_t root = 0;
    for (size_t i = ch->n_spans; i > 0; i--) {
        if (ch->spans[i - 1]->parentid == 0) {
            root = i - 1;
            break;
        }
    }
    const char *host = tp != NULL && tp->hostname != NULL ? tp->hostname : NULL;

    TRY(mp_array(out, ch->n_spans));
    for (size_t i = 0; i < ch->n_spans; i++) {
        struct extras x = {
            .ch = i == 0 ? ch : NULL,
            .hostname = i == 0 || i == root ? host : NULL,
            .origin = i == 0 || i == root ? ch->origin : NULL,
            .priority = ch->priority,
            .has_priority = i == 0 && !any_prio,
        };
        TRY(pack_span(out, ch->spans[i], translated ? apm_span_of(ch->spans[i]) : NULL, &x));
    }
    return O2D_OK;
}

static int write_trace(struct o2d_buf *out, const DdTracerPayload *tp, const DdTraceChunk *ch,
                       int translated)
{
    size_t start = out->len;
    int rv = pack_trace(out, tp, ch, translated);
    if (rv != O2D_OK) {
        out->len = start;
    }
    return rv;
}

int apm_msgpack_trace(struct o2d_buf *out, const DdTracerPayload *tp, const DdTraceChunk *ch)
{
    return write_trace(out, tp, ch, 0);
}

int apm_msgpack_trace_translated(struct o2d_buf *out, const DdTracerPayload *tp,
                                 const DdTraceChunk *ch)
{
    return write_trace(out, tp, ch, 1);
}

size_t apm_msgpack_array_header(uint8_t hdr[APM_MSGPACK_ARRAY_HEADER_MAX], uint32_t n)
{
    if (n < 16) {
        hdr[0] = (uint8_t)(0x90 | n);
        return 1;
    }
    if (n <= 0xffff) {
        hdr[0] = 0xdc;
        hdr[1] = (uint8_t)(n >> 8);
        hdr[2] = (uint8_t)n;
        return 3;
    }
    hdr[0] = 0xdd;
    hdr[1] = (uint8_t)(n >> 24);
    hdr[2] = (uint8_t)(n >> 16);
    hdr[3] = (uint8_t)(n >> 8);
    hdr[4] = (uint8_t)n;
    return 5;
}
