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
 */
#include <msgpack.h>
#include <string.h>

#include "apm_msgpack.h"
#include "o2d.h"
#include "o2d_msgpack.h"

#define PRIORITY_KEY "_sampling_priority_v1"
#define HOSTNAME_KEY "_dd.hostname"
#define ORIGIN_KEY   "_dd.origin"

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s != NULL ? s : "", n);
}

static int has_meta(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_meta; i++) {
        if (strcmp(s->meta[i]->key, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static int has_metric(const DdSpan *s, const char *k)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        if (strcmp(s->metrics[i]->key, k) == 0) {
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

static int pack_link(msgpack_packer *pk, const Datadog__Trace__SpanLink *l)
{
    int has_ts = l->tracestate != NULL && l->tracestate[0] != '\0';
    size_t n =
        2 + (l->traceid_high != 0) + (l->n_attributes > 0) + (size_t)has_ts + (l->flags != 0);
    int r = msgpack_pack_map(pk, n);
    r |= pack_str(pk, "trace_id") | msgpack_pack_uint64(pk, l->traceid);
    if (l->traceid_high != 0) {
        r |= pack_str(pk, "trace_id_high") | msgpack_pack_uint64(pk, l->traceid_high);
    }
    r |= pack_str(pk, "span_id") | msgpack_pack_uint64(pk, l->spanid);
    if (l->n_attributes > 0) {
        r |= pack_str(pk, "attributes") | msgpack_pack_map(pk, l->n_attributes);
        for (size_t i = 0; i < l->n_attributes && r == 0; i++) {
            r |= pack_str(pk, l->attributes[i]->key) | pack_str(pk, l->attributes[i]->value);
        }
    }
    if (has_ts) {
        r |= pack_str(pk, "tracestate") | pack_str(pk, l->tracestate);
    }
    if (l->flags != 0) {
        r |= pack_str(pk, "flags") | msgpack_pack_uint32(pk, l->flags);
    }
    return r;
}

static int pack_span(msgpack_packer *pk, const DdSpan *s, const struct extras *x)
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

    int r = msgpack_pack_map(pk, 12 + (s->n_meta_struct > 0) + (s->n_spanlinks > 0));
    r |= pack_str(pk, "service") | pack_str(pk, s->service);
    r |= pack_str(pk, "name") | pack_str(pk, s->name);
    r |= pack_str(pk, "resource") | pack_str(pk, s->resource);
    r |= pack_str(pk, "trace_id") | msgpack_pack_uint64(pk, s->traceid);
    r |= pack_str(pk, "span_id") | msgpack_pack_uint64(pk, s->spanid);
    r |= pack_str(pk, "parent_id") | msgpack_pack_uint64(pk, s->parentid);
    r |= pack_str(pk, "start") | msgpack_pack_int64(pk, s->start);
    r |= pack_str(pk, "duration") | msgpack_pack_int64(pk, s->duration);
    r |= pack_str(pk, "error") | msgpack_pack_int32(pk, s->error);
    r |= pack_str(pk, "type") | pack_str(pk, s->type);
    r |= pack_str(pk, "meta") | msgpack_pack_map(pk, n_meta);
    for (size_t i = 0; i < s->n_meta && r == 0; i++) {
        r |= pack_str(pk, s->meta[i]->key) | pack_str(pk, s->meta[i]->value);
    }
    for (size_t i = 0; x->ch != NULL && i < x->ch->n_tags && r == 0; i++) {
        const char *k = x->ch->tags[i]->key;
        if (is_propagated_tag(k) && !has_meta(s, k)) {
            r |= pack_str(pk, k) | pack_str(pk, x->ch->tags[i]->value);
        }
    }
    if (add_host) {
        r |= pack_str(pk, HOSTNAME_KEY) | pack_str(pk, x->hostname);
    }
    if (add_origin) {
        r |= pack_str(pk, ORIGIN_KEY) | pack_str(pk, x->origin);
    }
    r |= pack_str(pk, "metrics") | msgpack_pack_map(pk, s->n_metrics + (size_t)add_prio);
    for (size_t i = 0; i < s->n_metrics && r == 0; i++) {
        r |= pack_str(pk, s->metrics[i]->key) | msgpack_pack_double(pk, s->metrics[i]->value);
    }
    if (add_prio) {
        r |= pack_str(pk, PRIORITY_KEY) | msgpack_pack_double(pk, (double)x->priority);
    }
    if (s->n_meta_struct > 0) {
        r |= pack_str(pk, "meta_struct") | msgpack_pack_map(pk, s->n_meta_struct);
        for (size_t i = 0; i < s->n_meta_struct && r == 0; i++) {
            const ProtobufCBinaryData *v = &s->meta_struct[i]->value;
            r |= pack_str(pk, s->meta_struct[i]->key) | msgpack_pack_bin(pk, v->len) |
                 msgpack_pack_bin_body(pk, v->data, v->len);
        }
    }
    if (s->n_spanlinks > 0) {
        r |= pack_str(pk, "span_links") | msgpack_pack_array(pk, s->n_spanlinks);
        for (size_t i = 0; i < s->n_spanlinks && r == 0; i++) {
            r |= pack_link(pk, s->spanlinks[i]);
        }
    }
    return r;
}

int apm_msgpack_trace(struct o2d_buf *out, const DdTracerPayload *tp, const DdTraceChunk *ch)
{
    size_t start = out->len;
    struct o2d_msgpack_out oc;
    msgpack_packer pk;
    o2d_msgpack_init(&pk, &oc, out);

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

    int r = msgpack_pack_array(&pk, ch->n_spans);
    for (size_t i = 0; i < ch->n_spans && r == 0; i++) {
        struct extras x = {
            .ch = i == 0 ? ch : NULL,
            .hostname = i == 0 || i == root ? host : NULL,
            .origin = i == 0 || i == root ? ch->origin : NULL,
            .priority = ch->priority,
            .has_priority = i == 0 && !any_prio,
        };
        r |= pack_span(&pk, ch->spans[i], &x);
    }
    if (r != 0) {
        out->len = start;
        return oc.rv != O2D_OK ? oc.rv : O2D_ERR_NOMEM;
    }
    return O2D_OK;
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
