/*
 * test_otlp_pbtrace.c: the one-pass trace decoder (otlp_pbtrace.c) against the path it
 * replaces (otlp_pb_check, then protobuf_c_message_unpack): the same status and reason on
 * malformed, truncated, oversized, deeply nested and hostile input, the same structs on what
 * both accept (compared by packing both again: protobuf-c packs unknown fields too), and
 * protobuf-c's merge and oneof rules checked by value. Bodies are written by hand with the
 * wire format (https://protobuf.dev/programming-guides/encoding/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "otlp.h"

struct w {
    uint8_t b[1 << 16];
    size_t n;
};

static void put_varint(struct w *w, uint64_t v)
{
    while (v >= 0x80) {
        w->b[w->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->b[w->n++] = (uint8_t)v;
}

static void put_raw(struct w *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put_len(struct w *w, unsigned num, const void *p, size_t n)
{
    put_varint(w, (uint64_t)num << 3 | 2);
    put_varint(w, n);
    put_raw(w, p, n);
}

static void put_sub(struct w *w, unsigned num, const struct w *sub)
{
    put_len(w, num, sub->b, sub->n);
}

static void put_str(struct w *w, unsigned num, const char *s)
{
    put_len(w, num, s, strlen(s));
}

static void put_uint(struct w *w, unsigned num, uint64_t v)
{
    put_varint(w, (uint64_t)num << 3);
    put_varint(w, v);
}

static const uint8_t TID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t SID[8] = {1, 1, 1, 1, 1, 1, 1, 2};

/* A request around one span body. */
static void wrap_span(struct w *out, const struct w *span)
{
    static struct w ss, rs;
    ss.n = rs.n = 0;
    put_sub(&ss, 2, span);
    put_sub(&rs, 2, &ss);
    out->n = 0;
    put_sub(out, 1, &rs);
}

static void span_ids(struct w *span)
{
    put_len(span, 1, TID, 16);
    put_len(span, 2, SID, 8);
}

struct fixture {
    struct o2d_arena ref, one;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    o2d_arena_init(&f->ref, 64 * 1024 * 1024);
    o2d_arena_init(&f->one, 64 * 1024 * 1024);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    o2d_arena_cleanup(&f->ref);
    o2d_arena_cleanup(&f->one);
    free(f);
    return 0;
}

static const ProtobufCMessageDescriptor *const REQ =
    &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;

/* Both paths on b[0..n): asserts they agree (status, reason, and the bytes the structs pack
 * to) and returns the status; *out is the one-pass result, *reason its reason. */
static int both(struct fixture *f, const uint8_t *b, size_t n, OtlpTraceReq **out,
                const char **reason, int *utf8)
{
    o2d_arena_reset(&f->ref);
    o2d_arena_reset(&f->one);
    const char *rr = NULL;
    OtlpTraceReq *rm = NULL;
    int rv = otlp_pb_check(REQ, b, n, OTLP_MAX_MESSAGE_DEPTH, &rr);
    if (rv == O2D_OK) {
        rm = (OtlpTraceReq *)protobuf_c_message_unpack(REQ, &f->ref.pb, n, b);
        if (rm == NULL) {
            rv = f->ref.failed ? O2D_ERR_TOO_LARGE : O2D_ERR_INVALID;
            rr = f->ref.failed ? "decoded request exceeds the memory limit"
                               : "protobuf message could not be decoded";
        }
    }
    int u = -1;
    int ov = otlp_pb_decode_traces(&f->one, b, n, out, &u, reason);
    assert_int_equal(ov, rv);
    if (rv != O2D_OK) {
        assert_non_null(*reason);
        assert_string_equal(*reason, rr);
        return rv;
    }
    size_t ln = protobuf_c_message_get_packed_size(&rm->base);
    assert_int_equal(protobuf_c_message_get_packed_size(&(*out)->base), ln);
    uint8_t *x = malloc(ln + 1), *y = malloc(ln + 1);
    protobuf_c_message_pack(&rm->base, x);
    protobuf_c_message_pack(&(*out)->base, y);
    assert_memory_equal(x, y, ln);
    free(x);
    free(y);
    if (utf8 != NULL) {
        *utf8 = u;
    }
    return rv;
}

/* A span with everything a real SDK sends, plus events, links, status, nested values. */
static void rich_request(struct w *req)
{
    static struct w span, kv, av, arr, kvl, inner, ev, ln, st, res, scope, ss, rs, er;
    span.n = kv.n = av.n = arr.n = kvl.n = inner.n = ev.n = ln.n = st.n = 0;
    res.n = scope.n = ss.n = rs.n = er.n = 0;
    span_ids(&span);
    put_str(&span, 3, "k=v");
    put_len(&span, 4, SID, 8);
    put_str(&span, 5, "GET /items/{id}");
    put_uint(&span, 6, 2);
    put_varint(&span, 7 << 3 | 1);
    put_raw(&span, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    put_varint(&span, 8 << 3 | 1);
    put_raw(&span, "\x01\x02\x03\x04\x05\x06\x07\x09", 8);
    put_varint(&span, 16 << 3 | 5);
    put_raw(&span, "\x01\x03\x00\x00", 4);
    /* attributes: a string, an int, a bool, a double, bytes, an array, a kvlist */
    const char *keys[] = {"http.method", "http.status_code", "ok", "ratio", "blob"};
    for (int i = 0; i < 5; i++) {
        kv.n = av.n = 0;
        switch (i) {
        case 0:
            put_str(&av, 1, "GET");
            break;
        case 1:
            put_uint(&av, 3, (uint64_t)-200);
            break;
        case 2:
            put_uint(&av, 2, 1);
            break;
        case 3:
            put_varint(&av, 4 << 3 | 1);
            put_raw(&av, "\x00\x00\x00\x00\x00\x00\xf0\x3f", 8);
            break;
        default:
            put_len(&av, 7, "\x00\x01", 2);
        }
        put_str(&kv, 1, keys[i]);
        put_sub(&kv, 2, &av);
        put_sub(&span, 9, &kv);
    }
    put_str(&inner, 1, "x");
    put_sub(&arr, 1, &inner);
    put_sub(&arr, 1, &inner);
    av.n = 0;
    put_sub(&av, 5, &arr);
    kv.n = 0;
    put_str(&kv, 1, "list");
    put_sub(&kv, 2, &av);
    put_sub(&kvl, 1, &kv);
    av.n = 0;
    put_sub(&av, 6, &kvl);
    kv.n = 0;
    put_str(&kv, 1, "map");
    put_sub(&kv, 2, &av);
    put_sub(&span, 9, &kv);
    put_uint(&span, 10, 3);
    put_varint(&ev, 1 << 3 | 1);
    put_raw(&ev, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    put_str(&ev, 2, "exception");
    put_sub(&ev, 3, &kv);
    put_uint(&ev, 4, 1);
    put_sub(&span, 11, &ev);
    put_sub(&span, 11, &ev);
    put_uint(&span, 12, 4);
    put_len(&ln, 1, TID, 16);
    put_len(&ln, 2, SID, 8);
    put_str(&ln, 3, "a=b");
    put_sub(&ln, 4, &kv);
    put_uint(&ln, 5, 2);
    put_varint(&ln, 6 << 3 | 5);
    put_raw(&ln, "\x01\x00\x00\x00", 4);
    put_sub(&span, 13, &ln);
    put_uint(&span, 14, 5);
    put_str(&st, 2, "boom");
    put_uint(&st, 3, 2);
    put_sub(&span, 15, &st);
    put_str(&er, 1, "https://schema");
    put_str(&er, 2, "service");
    put_str(&er, 3, "service.name");
    put_str(&er, 3, "service.namespace");
    put_str(&er, 4, "service.version");
    put_sub(&res, 1, &kv);
    put_uint(&res, 2, 7);
    put_sub(&res, 3, &er);
    put_str(&scope, 1, "io.opentelemetry.http");
    put_str(&scope, 2, "1.2.3");
    put_sub(&scope, 3, &kv);
    put_uint(&scope, 4, 1);
    put_sub(&ss, 1, &scope);
    put_sub(&ss, 2, &span);
    put_sub(&ss, 2, &span);
    put_str(&ss, 3, "https://opentelemetry.io/schemas/1.21.0");
    put_sub(&rs, 1, &res);
    put_sub(&rs, 2, &ss);
    put_str(&rs, 3, "https://opentelemetry.io/schemas/1.21.0");
    req->n = 0;
    put_sub(req, 1, &rs);
    put_sub(req, 1, &rs);
}

static void rich_request_decodes_alike(void **state)
{
    struct fixture *f = *state;
    static struct w req;
    rich_request(&req);
    OtlpTraceReq *m;
    const char *reason;
    int utf8 = -1;
    assert_int_equal(both(f, req.b, req.n, &m, &reason, &utf8), O2D_OK);
    assert_int_equal(utf8, 1);
    assert_int_equal(m->n_resource_spans, 2);
    const OtlpSpan *s = m->resource_spans[1]->scope_spans[0]->spans[1];
    assert_string_equal(s->name, "GET /items/{id}");
    assert_int_equal(s->n_attributes, 6);
    assert_int_equal(s->attributes[1]->value->int_value, -200);
    assert_int_equal(s->n_events, 2);
    assert_int_equal(s->n_links, 1);
    assert_int_equal(s->links[0]->flags, 1);
    assert_int_equal(s->flags, 0x301);
    assert_string_equal(s->status->message, "boom");
    const OtlpResource *r = m->resource_spans[0]->resource;
    assert_int_equal(r->n_entity_refs, 1);
    assert_int_equal(r->entity_refs[0]->n_id_keys, 2);
    assert_string_equal(r->entity_refs[0]->id_keys[1], "service.namespace");
}

/* Every prefix of a valid body: truncation is refused alike, with the same reason. */
static void every_truncation_agrees(void **state)
{
    struct fixture *f = *state;
    static struct w req;
    rich_request(&req);
    OtlpTraceReq *m;
    const char *reason;
    size_t refused = 0;
    for (size_t n = 0; n < req.n; n++) {
        if (both(f, req.b, n, &m, &reason, NULL) != O2D_OK) {
            refused++;
        }
    }
    assert_true(refused > req.n / 2);
}

/* Every single-byte change of a valid body, a few values each: same answers both ways. */
static void byte_flips_agree(void **state)
{
    struct fixture *f = *state;
    static struct w req, mut;
    rich_request(&req);
    const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x1b, 0x22, 0x3c};
    OtlpTraceReq *m;
    const char *reason;
    for (size_t i = 0; i < req.n; i += 3) {
        for (size_t k = 0; k < sizeof(vals); k++) {
            mut = req;
            mut.b[i] = vals[k];
            both(f, mut.b, mut.n, &m, &reason, NULL);
        }
    }
}

/* protobuf-c merges a singular message given twice: repeated fields concatenate, a string the
 * later one leaves unset keeps the earlier value, scalars are the later one's. */
static void repeated_singular_messages_merge(void **state)
{
    struct fixture *f = *state;
    static struct w span, st, res, kv, av, scope, ss, rs, req;
    span.n = st.n = res.n = kv.n = av.n = scope.n = ss.n = rs.n = req.n = 0;
    span_ids(&span);
    put_str(&st, 2, "first");
    put_uint(&st, 3, 2);
    put_sub(&span, 15, &st);
    st.n = 0;
    put_uint(&st, 3, 1);
    put_sub(&span, 15, &st);
    put_str(&av, 1, "svc");
    put_str(&kv, 1, "service.name");
    put_sub(&kv, 2, &av);
    put_sub(&res, 1, &kv);
    put_uint(&res, 2, 9);
    put_sub(&rs, 1, &res);
    res.n = 0;
    put_sub(&res, 1, &kv);
    put_sub(&rs, 1, &res);
    put_str(&scope, 1, "lib");
    put_sub(&ss, 1, &scope);
    scope.n = 0;
    put_str(&scope, 2, "2.0");
    put_sub(&ss, 1, &scope);
    put_sub(&ss, 2, &span);
    put_sub(&rs, 2, &ss);
    put_sub(&req, 1, &rs);
    OtlpTraceReq *m;
    const char *reason;
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_OK);
    const OtlpResourceSpans *r = m->resource_spans[0];
    assert_int_equal(r->resource->n_attributes, 2);
    assert_int_equal(r->resource->dropped_attributes_count, 0);
    assert_string_equal(r->scope_spans[0]->scope->name, "lib");
    assert_string_equal(r->scope_spans[0]->scope->version, "2.0");
    const OtlpSpan *s = r->scope_spans[0]->spans[0];
    assert_string_equal(s->status->message, "first");
    assert_int_equal(s->status->code, 1);
}

/* KeyValue.value twice: the AnyValues merge as protobuf-c does it (a oneof member carries
 * over, except a string; two empty ones make the unpack fail). */
static void key_value_value_twice(void **state)
{
    struct fixture *f = *state;
    static struct w span, kv, av, req;
    OtlpTraceReq *m;
    const char *reason;

    span.n = kv.n = av.n = 0;
    span_ids(&span);
    put_str(&kv, 1, "n");
    put_uint(&av, 3, 42);
    put_sub(&kv, 2, &av);
    put_len(&kv, 2, "", 0);
    put_sub(&span, 9, &kv);
    kv.n = av.n = 0;
    put_str(&kv, 1, "s");
    put_str(&av, 1, "lost");
    put_sub(&kv, 2, &av);
    put_len(&kv, 2, "", 0);
    put_sub(&span, 9, &kv);
    kv.n = av.n = 0;
    put_str(&kv, 1, "last");
    put_str(&av, 1, "a");
    put_sub(&kv, 2, &av);
    av.n = 0;
    put_uint(&av, 2, 1);
    put_sub(&kv, 2, &av);
    put_sub(&span, 9, &kv);
    wrap_span(&req, &span);
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_OK);
    const OtlpSpan *s = m->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(s->attributes[0]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    assert_int_equal(s->attributes[0]->value->int_value, 42);
    assert_int_equal(s->attributes[1]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    assert_int_equal(s->attributes[2]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);

    span.n = kv.n = 0;
    span_ids(&span);
    put_str(&kv, 1, "k");
    put_len(&kv, 2, "", 0);
    put_len(&kv, 2, "", 0);
    put_sub(&span, 9, &kv);
    wrap_span(&req, &span);
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_ERR_INVALID);
    assert_string_equal(reason, "protobuf message could not be decoded");
}

/* A tag padded past 5 bytes passes the pre-scan and not protobuf-c; a wire error after it is
 * what the sender is told, as the pre-scan runs over the whole body first. */
static void refusals_only_protobuf_c_makes(void **state)
{
    struct fixture *f = *state;
    static struct w req;
    OtlpTraceReq *m;
    const char *reason;
    const uint8_t long_tag[] = {0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00};
    assert_int_equal(both(f, long_tag, sizeof(long_tag), &m, &reason, NULL), O2D_ERR_INVALID);
    assert_string_equal(reason, "protobuf message could not be decoded");
    const uint8_t then_bad[] = {0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x0a, 0x05, 0x00};
    assert_int_equal(both(f, then_bad, sizeof(then_bad), &m, &reason, NULL), O2D_ERR_INVALID);
    assert_string_equal(reason, "length-delimited field runs past the end of its message");
    /* a length padded past 5 bytes */
    req.n = 0;
    put_varint(&req, 1 << 3 | 2);
    put_raw(&req, "\x80\x80\x80\x80\x80\x00", 6);
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_ERR_INVALID);
    assert_string_equal(reason, "protobuf message could not be decoded");
}

static void hostile_wire_is_refused_alike(void **state)
{
    struct fixture *f = *state;
    OtlpTraceReq *m;
    const char *reason;
    static const struct {
        const char *bytes;
        size_t n;
        const char *reason;
    } cases[] = {
        {"\x0a", 1, "truncated message: length runs past the end"},
        {"\x0a\x05\x00", 3, "length-delimited field runs past the end of its message"},
        {"\x08\x01", 2, "wrong wire type for a known field"},
        {"\x0b", 1, "protobuf groups are not supported"},
        {"\x0e", 1, "invalid wire type"},
        {"\x02\x00", 2, "invalid field number"},
        {"\x80", 1, "truncated message: field tag runs past the end"},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, "malformed field tag"},
        {"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, "malformed varint"},
        {"\x10\xff", 2, "truncated message: varint runs past the end"},
        {"\x11\x00\x00", 3, "truncated message: fixed-size field runs past the end"},
        {"\x0a\xff\xff\xff\xff\x0f", 6, "length-delimited field runs past the end of its message"},
        /* span name (field 5) given as a varint, inside ResourceSpans/ScopeSpans/Span */
        {"\x0a\x06\x12\x04\x12\x02\x28\x01", 8, "wrong wire type for a known field"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(both(f, (const uint8_t *)cases[i].bytes, cases[i].n, &m, &reason, NULL),
                         O2D_ERR_INVALID);
        assert_string_equal(reason, cases[i].reason);
    }
}

/* Unknown fields of every wire type are kept, as protobuf-c keeps them (both pack them). */
static void unknown_fields_are_kept(void **state)
{
    struct fixture *f = *state;
    static struct w span, req;
    span.n = 0;
    span_ids(&span);
    put_uint(&span, 99, 300);
    put_str(&span, 1000, "x");
    put_varint(&span, 77 << 3 | 5);
    put_raw(&span, "abcd", 4);
    put_varint(&span, 78 << 3 | 1);
    put_raw(&span, "abcdefgh", 8);
    wrap_span(&req, &span);
    put_uint(&req, 5, 1);
    OtlpTraceReq *m;
    const char *reason;
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_OK);
    assert_int_equal(m->base.n_unknown_fields, 1);
    const OtlpSpan *s = m->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(s->base.n_unknown_fields, 4);
    assert_int_equal(s->base.unknown_fields[1].tag, 1000);
    assert_int_equal(s->base.unknown_fields[1].len, 2);
}

/* Nested kvlists: within the budget decoded, one level past it refused alike. */
static void deep_nesting(void **state)
{
    struct fixture *f = *state;
    static struct w a, b, req;
    OtlpTraceReq *m;
    const char *reason;
    for (int levels = 30; levels <= 40; levels += 10) {
        a.n = 0;
        put_uint(&a, 3, 1);
        for (int i = 0; i < levels; i++) {
            b.n = 0;
            put_str(&b, 1, "k");
            put_sub(&b, 2, &a); /* KeyValue{k, value} */
            a.n = 0;
            put_sub(&a, 1, &b); /* KeyValueList{values} */
            b = a;
            a.n = 0;
            put_sub(&a, 6, &b); /* AnyValue{kvlist_value} */
        }
        b.n = 0;
        span_ids(&b);
        static struct w kv;
        kv.n = 0;
        put_str(&kv, 1, "deep");
        put_sub(&kv, 2, &a);
        put_sub(&b, 9, &kv);
        wrap_span(&req, &b);
        int rv = both(f, req.b, req.n, &m, &reason, NULL);
        if (levels == 30) {
            assert_int_equal(rv, O2D_OK);
        } else {
            assert_int_equal(rv, O2D_ERR_INVALID);
            assert_string_equal(reason, "messages nested too deeply");
        }
    }
}

/* Decodes req through both paths from a heap copy of exactly its size (so that reading past
 * its end is a fault under ASan) and returns the status. */
static int both_exact(struct fixture *f, const struct w *req, OtlpTraceReq **m, int *utf8)
{
    uint8_t *b = malloc(req->n);
    assert_non_null(b);
    memcpy(b, req->b, req->n);
    const char *reason;
    int rv = both(f, b, req->n, m, &reason, utf8);
    free(b);
    return rv;
}

/* Strings of every length from 0 to 40 (the 16-byte fast path and past it), a NUL or a
 * non-ASCII byte at every position, each string followed by bytes that are NUL and >= 0x80
 * (which the 16-byte window reads and must ignore) or ending the body itself. */
static void string_lengths_and_windows(void **state)
{
    struct fixture *f = *state;
    static struct w span, req;
    static const uint8_t noisy[8] = {0, 0xff, 0, 0x80, 0, 0xc3, 0, 1};
    /* 0..40, then around the 16- and 64-byte blocks of the copy and 2-byte lengths */
    static const size_t longer[] = {63, 64, 65, 79, 80, 127, 128, 129, 130, 200};
    char s[256];
    for (size_t ni = 0; ni <= 40 + sizeof(longer) / sizeof(longer[0]); ni++) {
        size_t n = ni <= 40 ? ni : longer[ni - 41];
        for (int last = 0; last <= 2; last++) {
            for (size_t p = 0; p <= n; p++) {
                for (int kind = 0; kind < 4; kind++) {
                    /* kind 0: plain; 1: NUL at p; 2: 0xff at p; 3: "\xc3\xa9" at p */
                    if (kind != 0 && p == n) {
                        continue;
                    }
                    if (kind == 0 && p > 0) {
                        continue;
                    }
                    memset(s, 'a' + (int)(n % 26), n);
                    size_t len = n;
                    if (kind == 1) {
                        s[p] = 0;
                    } else if (kind == 2) {
                        s[p] = (char)0xff;
                    } else if (kind == 3) {
                        s[p] = (char)0xc3;
                        s[p + 1 < n ? p + 1 : p] = (char)0xa9;
                        if (p + 1 >= n) {
                            s[p] = 'x'; /* no room for both bytes: plain */
                        }
                    }
                    span.n = 0;
                    span_ids(&span);
                    if (last == 0) {
                        put_len(&span, 5, s, len);
                        put_len(&span, 4, noisy, sizeof(noisy));
                    } else if (last == 1) {
                        put_len(&span, 4, noisy, sizeof(noisy));
                        put_len(&span, 5, s, len); /* the body's last bytes */
                    } else {
                        /* an attribute's string value, the last bytes too */
                        static struct w kv, av;
                        kv.n = av.n = 0;
                        put_len(&av, 1, s, len);
                        put_str(&kv, 1, "k");
                        put_sub(&kv, 2, &av);
                        put_len(&span, 5, s, len);
                        put_sub(&span, 9, &kv);
                    }
                    wrap_span(&req, &span);
                    OtlpTraceReq *m;
                    int utf8 = -1;
                    int rv = both_exact(f, &req, &m, &utf8);
                    if (kind == 1) {
                        assert_int_equal(rv, O2D_ERR_INVALID);
                        continue;
                    }
                    assert_int_equal(rv, O2D_OK);
                    const OtlpSpan *sp = m->resource_spans[0]->scope_spans[0]->spans[0];
                    assert_int_equal(strlen(sp->name), len);
                    assert_memory_equal(sp->name, s, len);
                    if (last == 2) {
                        const char *v = sp->attributes[0]->value->string_value;
                        assert_int_equal(strlen(v), len);
                        assert_memory_equal(v, s, len);
                    }
                    assert_int_equal(utf8, kind == 2 ? 0 : 1);
                }
            }
        }
    }
}

static void nul_and_utf8(void **state)
{
    struct fixture *f = *state;
    static struct w span, req;
    OtlpTraceReq *m;
    const char *reason;
    int utf8 = -1;

    span.n = 0;
    span_ids(&span);
    put_len(&span, 5, "a\0b", 3);
    wrap_span(&req, &span);
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_ERR_INVALID);
    assert_string_equal(reason, "a string holds a NUL character");

    span.n = 0;
    span_ids(&span);
    put_len(&span, 3, "0123456789abcdef\0", 17); /* NUL past the first 8-byte word */
    wrap_span(&req, &span);
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_ERR_INVALID);

    span.n = 0;
    span_ids(&span);
    put_len(&span, 4, "\0\0\0\0\0\0\0\1", 8); /* bytes may hold NUL */
    put_str(&span, 5, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    wrap_span(&req, &span);
    assert_int_equal(both(f, req.b, req.n, &m, &reason, &utf8), O2D_OK);
    assert_int_equal(utf8, 1);

    const char *bad[] = {"\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf", "abcdefgh\xf5\x80\x80\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        span.n = 0;
        span_ids(&span);
        put_str(&span, 5, "fine");
        static struct w kv, av;
        kv.n = av.n = 0;
        put_str(&av, 1, bad[i]);
        put_str(&kv, 1, "k");
        put_sub(&kv, 2, &av);
        put_sub(&span, 9, &kv);
        wrap_span(&req, &span);
        utf8 = -1;
        assert_int_equal(both(f, req.b, req.n, &m, &reason, &utf8), O2D_OK);
        assert_int_equal(utf8, 0);
    }
}

/* Through otlp_decode: the request carries the verdict; JSON's strings are always UTF-8. */
static void request_carries_utf8_verdict(void **state)
{
    struct fixture *f = *state;
    static struct w span, req;
    struct otlp_request r;
    const char *reason;
    span.n = 0;
    span_ids(&span);
    put_str(&span, 5, "ok");
    wrap_span(&req, &span);
    o2d_arena_reset(&f->one);
    assert_int_equal(
        otlp_decode(&f->one, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, req.b, req.n, &r, &reason),
        O2D_OK);
    assert_int_equal(r.utf8_valid, 1);
    assert_int_equal(r.accepted, 1);
    span.n = 0;
    span_ids(&span);
    put_str(&span, 5, "\xff");
    wrap_span(&req, &span);
    o2d_arena_reset(&f->one);
    assert_int_equal(
        otlp_decode(&f->one, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, req.b, req.n, &r, &reason),
        O2D_OK);
    assert_int_equal(r.utf8_valid, 0);
    const char *json = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                       "\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0101010101010102\","
                       "\"name\":\"caf\\u00e9\"}]}]}]}";
    o2d_arena_reset(&f->one);
    assert_int_equal(otlp_decode(&f->one, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON, (const uint8_t *)json,
                                 strlen(json), &r, &reason),
                     O2D_OK);
    assert_int_equal(r.utf8_valid, 1);
    assert_int_equal(r.accepted, 1);
}

/* More elements than the scratch stack holds inline, and a memory limit that runs out. */
static void many_elements_and_memory_limit(void **state)
{
    struct fixture *f = *state;
    static struct w span, kv, av, req;
    OtlpTraceReq *m;
    const char *reason;
    span.n = 0;
    span_ids(&span);
    for (int i = 0; i < 600; i++) {
        kv.n = av.n = 0;
        put_uint(&av, 3, (uint64_t)i);
        put_str(&kv, 1, "attr");
        put_sub(&kv, 2, &av);
        put_sub(&span, 9, &kv);
    }
    wrap_span(&req, &span);
    assert_int_equal(both(f, req.b, req.n, &m, &reason, NULL), O2D_OK);
    const OtlpSpan *s = m->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(s->n_attributes, 600);
    assert_int_equal(s->attributes[599]->value->int_value, 599);

    o2d_arena_reset(&f->one);
    o2d_arena_set_limit(&f->one, 4096);
    int utf8;
    assert_int_equal(otlp_pb_decode_traces(&f->one, req.b, req.n, &m, &utf8, &reason),
                     O2D_ERR_TOO_LARGE);
    assert_string_equal(reason, "decoded request exceeds the memory limit");
    /* a wire error anywhere in the body is the answer, as the pre-scan came first */
    req.b[req.n++] = 0x0b;
    o2d_arena_reset(&f->one);
    assert_int_equal(otlp_pb_decode_traces(&f->one, req.b, req.n, &m, &utf8, &reason),
                     O2D_ERR_INVALID);
    assert_string_equal(reason, "protobuf groups are not supported");
    o2d_arena_set_limit(&f->one, 64 * 1024 * 1024);

    /* the scratch stack cannot grow: the request is too large, nothing leaks */
    req.n--;
    o2d_arena_reset(&f->one);
    o2d_alloc_fail_after(0);
    int rv = otlp_pb_decode_traces(&f->one, req.b, req.n, &m, &utf8, &reason);
    o2d_alloc_fail_after(-1);
    assert_int_equal(rv, O2D_ERR_TOO_LARGE);
}

/* Decodes req into f->one after `pre` bytes allocated, with the limit at `limit`. */
static int decode_limited(struct fixture *f, const struct w *req, size_t pre, size_t limit)
{
    OtlpTraceReq *m;
    const char *reason;
    int utf8;
    o2d_arena_reset(&f->one);
    o2d_arena_set_limit(&f->one, 64 * 1024 * 1024);
    assert_non_null(o2d_arena_alloc_bytes(&f->one, pre));
    o2d_arena_set_limit(&f->one, limit);
    int rv = otlp_pb_decode_traces(&f->one, req->b, req->n, &m, &utf8, &reason);
    if (rv == O2D_OK) {
        assert_true(o2d_arena_owns(&f->one, m->resource_spans[0]));
    } else {
        assert_string_equal(reason, "decoded request exceeds the memory limit");
    }
    return rv;
}

/* The decoder allocates through a window on the arena's block: the memory limit decides as
 * the arena does, to the byte (the request fits in exactly what it used, not a byte less),
 * also when the arena was used before and its offset is not aligned. */
static void memory_limit_is_exact(void **state)
{
    struct fixture *f = *state;
    static struct w req, span, kv, av;
    static char big[3000];
    memset(big, 'm', sizeof(big));
    for (int body = 0; body < 2; body++) {
        if (body == 0) {
            rich_request(&req);
        } else {
            span.n = 0;
            span_ids(&span);
            for (int i = 0; i < 40; i++) {
                kv.n = av.n = 0;
                put_len(&av, 1, big, (size_t)(i * 71) % sizeof(big));
                put_str(&kv, 1, i % 2 ? "gen_ai.prompt" : "k");
                put_sub(&kv, 2, &av);
                put_sub(&span, 9, &kv);
            }
            wrap_span(&req, &span);
        }
        for (size_t pre = 1; pre < 15000; pre += 5000) {
            assert_int_equal(decode_limited(f, &req, pre, 64 * 1024 * 1024), O2D_OK);
            size_t used = f->one.used;
            /* what is allocated next comes after the decoded request */
            assert_non_null(o2d_arena_alloc_bytes(&f->one, 1));
            assert_int_equal(f->one.used, used + 1);
            size_t step = (used - pre) / 97 + 1;
            for (size_t limit = pre; limit < used; limit += step) {
                assert_int_equal(decode_limited(f, &req, pre, limit), O2D_ERR_TOO_LARGE);
            }
            assert_int_equal(decode_limited(f, &req, pre, used - 1), O2D_ERR_TOO_LARGE);
            assert_int_equal(decode_limited(f, &req, pre, used), O2D_OK);
            assert_int_equal(f->one.used, used);
            assert_int_equal(decode_limited(f, &req, pre, used + 1), O2D_OK);
        }
    }
    o2d_arena_set_limit(&f->one, 64 * 1024 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rich_request_decodes_alike),
        cmocka_unit_test(every_truncation_agrees),
        cmocka_unit_test(byte_flips_agree),
        cmocka_unit_test(repeated_singular_messages_merge),
        cmocka_unit_test(key_value_value_twice),
        cmocka_unit_test(refusals_only_protobuf_c_makes),
        cmocka_unit_test(hostile_wire_is_refused_alike),
        cmocka_unit_test(unknown_fields_are_kept),
        cmocka_unit_test(deep_nesting),
        cmocka_unit_test(nul_and_utf8),
        cmocka_unit_test(string_lengths_and_windows),
        cmocka_unit_test(request_carries_utf8_verdict),
        cmocka_unit_test(many_elements_and_memory_limit),
        cmocka_unit_test(memory_limit_is_exact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
