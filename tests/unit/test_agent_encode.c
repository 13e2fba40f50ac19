/*
 * test_agent_encode.c: agent mode's encoders. A trace chunk encoded by apm_msgpack_trace
 * decodes with msgpack-c's own unpacker into the v0.4 span maps Datadog's tracers send, field
 * by field: uint64 ids up to 2^64-1 (the low half of a 128-bit trace id; the high half stays
 * in _dd.p.tid), empty meta, UTF-8, meta_struct, and the chunk's priority, `_dd.p.*` tags,
 * origin and hostname carried on the first span (and the root). The delivery layer's builder
 * (dlv_build_bodies) with datadog_agent_traces_dest makes v0.4 bodies that decode as arrays of
 * whole traces, under the size limit, one header set per body, every span exactly once, a
 * trace alone over the limit left out and counted; every allocation failure on the way is an
 * error, not a leak or a crash; and each body gets the headers tracers send the Agent. Client
 * stats payloads go one a body, with their language's header.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "apm_msgpack.h"
#include "datadog_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "stats.h"

/* ---- building spans (test storage, plain malloc: freed with the fixture) ---- */

struct fixture {
    DdTracerPayload tp;
    DdTraceChunk ch;
    DdSpan spans[8];
    DdSpan *sp[8];
    Datadog__Trace__Span__MetaEntry meta[8][4];
    Datadog__Trace__Span__MetaEntry *mp[8][4];
    Datadog__Trace__Span__MetricsEntry metrics[8][4];
    Datadog__Trace__Span__MetricsEntry *np[8][4];
    Datadog__Trace__Span__MetaStructEntry ms;
    Datadog__Trace__Span__MetaStructEntry *msp[1];
    Datadog__Trace__TraceChunk__TagsEntry tags[2];
    Datadog__Trace__TraceChunk__TagsEntry *tagp[2];
};

static void add_meta(struct fixture *f, size_t i, const char *k, const char *v)
{
    DdSpan *s = &f->spans[i];
    Datadog__Trace__Span__MetaEntry *e = &f->meta[i][s->n_meta];
    datadog__trace__span__meta_entry__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    f->mp[i][s->n_meta] = e;
    s->meta = f->mp[i];
    s->n_meta++;
}

static void add_metric(struct fixture *f, size_t i, const char *k, double v)
{
    DdSpan *s = &f->spans[i];
    Datadog__Trace__Span__MetricsEntry *e = &f->metrics[i][s->n_metrics];
    datadog__trace__span__metrics_entry__init(e);
    e->key = (char *)k;
    e->value = v;
    f->np[i][s->n_metrics] = e;
    s->metrics = f->np[i];
    s->n_metrics++;
}

/* A chunk of n spans: span 0 is a child of span 1, the local root (parent 0), the others
 * children of the root; the 128-bit trace id's high half is in span 0's _dd.p.tid, as apm.c
 * writes it. */
static struct fixture *make_fixture(size_t n)
{
    struct fixture *f = calloc(1, sizeof(*f));
    datadog__trace__tracer_payload__init(&f->tp);
    datadog__trace__trace_chunk__init(&f->ch);
    f->tp.hostname = "host-1";
    f->tp.languagename = "python";
    for (size_t i = 0; i < n; i++) {
        DdSpan *s = &f->spans[i];
        datadog__trace__span__init(s);
        s->service = "svc";
        s->name = "http.server.request";
        s->resource = "GET /users/{id}";
        s->type = "web";
        s->traceid = UINT64_MAX;
        s->spanid = 100 + i;
        s->parentid = i == 1 ? 0 : 101;
        s->start = 1700000000000000000LL + (int64_t)i;
        s->duration = 5000 + (int64_t)i;
        s->error = i == 2;
        f->sp[i] = s;
    }
    add_meta(f, 0, "_dd.p.tid", "0123456789abcdef");
    add_meta(f, 0, "env", "prod");
    add_metric(f, 0, "_top_level", 1);
    f->ch.spans = f->sp;
    f->ch.n_spans = n;
    f->ch.priority = 1;
    for (size_t i = 0; i < 2; i++) {
        datadog__trace__trace_chunk__tags_entry__init(&f->tags[i]);
        f->tagp[i] = &f->tags[i];
    }
    f->tags[0].key = "_dd.otlp_sr";
    f->tags[0].value = "1.00";
    f->tags[1].key = "_dd.p.dm";
    f->tags[1].value = "-9";
    f->ch.tags = f->tagp;
    f->ch.n_tags = 2;
    return f;
}

/* ---- reading msgpack back ---- */

static const msgpack_object *map_get(const msgpack_object *m, const char *k)
{
    assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *key = &m->via.map.ptr[i].key;
        assert_int_equal(key->type, MSGPACK_OBJECT_STR);
        if (key->via.str.size == strlen(k) && memcmp(key->via.str.ptr, k, key->via.str.size) == 0) {
            assert_null(found); /* keys are unique */
            found = &m->via.map.ptr[i].val;
        }
    }
    return found;
}

static void assert_str(const msgpack_object *o, const char *want)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
}

static void assert_uint(const msgpack_object *o, uint64_t want)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(o->via.u64 == want);
}

static void assert_double(const msgpack_object *o, double want)
{
    assert_non_null(o);
    assert_true(o->type == MSGPACK_OBJECT_FLOAT64);
    assert_true(o->via.f64 == want);
}

/* Unpacks exactly one object that spans all of data[0..len). */
static void unpack_all(msgpack_unpacked *u, const uint8_t *data, size_t len)
{
    size_t off = 0;
    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, (const char *)data, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
}

/* ---- apm_msgpack_trace ---- */

static void test_trace_fields(void **state)
{
    (void)state;
    struct fixture *f = make_fixture(3);
    f->spans[2].service = "serviço-ü-日本"; /* UTF-8 goes through as is */
    add_meta(f, 2, "note", "ça va ✓");
    struct o2d_buf b;
    o2d_buf_init(&b, 1 << 20);
    assert_int_equal(apm_msgpack_trace(&b, &f->tp, &f->ch), O2D_OK);

    msgpack_unpacked u;
    unpack_all(&u, b.data, b.len);
    const msgpack_object *t = &u.data;
    assert_int_equal(t->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(t->via.array.size, 3);
    for (size_t i = 0; i < 3; i++) {
        const msgpack_object *s = &t->via.array.ptr[i];
        assert_int_equal(s->via.map.size, 12); /* no meta_struct: the key is left out */
        assert_str(map_get(s, "service"), i == 2 ? "serviço-ü-日本" : "svc");
        assert_str(map_get(s, "name"), "http.server.request");
        assert_str(map_get(s, "resource"), "GET /users/{id}");
        assert_str(map_get(s, "type"), "web");
        assert_uint(map_get(s, "trace_id"), UINT64_MAX);
        assert_uint(map_get(s, "span_id"), 100 + i);
        assert_uint(map_get(s, "parent_id"), i == 1 ? 0 : 101);
        assert_uint(map_get(s, "start"), 1700000000000000000ULL + i);
        assert_uint(map_get(s, "duration"), 5000 + i);
        const msgpack_object *err = map_get(s, "error");
        assert_non_null(err);
        assert_int_equal(err->via.u64, i == 2);
        assert_null(map_get(s, "meta_struct"));
    }
    /* Span 0: its own meta, the chunk's _dd.p.* tags (not _dd.otlp_sr), the hostname; its
     * metrics plus the chunk's priority, as no span names one. */
    const msgpack_object *s0 = &t->via.array.ptr[0];
    const msgpack_object *meta = map_get(s0, "meta");
    assert_int_equal(meta->via.map.size, 4);
    assert_str(map_get(meta, "_dd.p.tid"), "0123456789abcdef");
    assert_str(map_get(meta, "env"), "prod");
    assert_str(map_get(meta, "_dd.p.dm"), "-9");
    assert_str(map_get(meta, "_dd.hostname"), "host-1");
    assert_null(map_get(meta, "_dd.otlp_sr"));
    const msgpack_object *metrics = map_get(s0, "metrics");
    assert_int_equal(metrics->via.map.size, 2);
    assert_double(map_get(metrics, "_top_level"), 1);
    assert_double(map_get(metrics, "_sampling_priority_v1"), 1);
    /* Span 1, the root (parent 0): the hostname only; empty metrics stay an empty map. */
    const msgpack_object *s1 = &t->via.array.ptr[1];
    meta = map_get(s1, "meta");
    assert_int_equal(meta->via.map.size, 1);
    assert_str(map_get(meta, "_dd.hostname"), "host-1");
    assert_int_equal(map_get(s1, "metrics")->via.map.size, 0);
    /* Span 2: nothing added. */
    const msgpack_object *s2 = &t->via.array.ptr[2];
    meta = map_get(s2, "meta");
    assert_int_equal(meta->via.map.size, 1);
    assert_str(map_get(meta, "note"), "ça va ✓");
    msgpack_unpacked_destroy(&u);
    o2d_buf_cleanup(&b);
    free(f);
}

static void test_trace_keeps_span_values(void **state)
{
    (void)state;
    /* A span's own priority, dm and hostname win; nothing is added twice; a user priority on
     * any span means no chunk priority is added. A span that is neither first nor root, with
     * no meta: an empty map. */
    struct fixture *f = make_fixture(3);
    f->tp.hostname = "";
    f->ch.priority = 2;
    f->ch.origin = "synthetics";
    add_meta(f, 0, "_dd.p.dm", "-4");
    add_metric(f, 1, "_sampling_priority_v1", 2);
    f->spans[1].n_meta = 0;                        /* but the root gets the origin */
    unsigned char raw[] = {0x81, 0xa1, 'k', 0x01}; /* {"k": 1}, as tracers msgpack it */
    datadog__trace__span__meta_struct_entry__init(&f->ms);
    f->ms.key = "appsec";
    f->ms.value.data = raw;
    f->ms.value.len = sizeof(raw);
    f->msp[0] = &f->ms;
    f->spans[1].meta_struct = f->msp;
    f->spans[1].n_meta_struct = 1;
    struct o2d_buf b;
    o2d_buf_init(&b, 1 << 20);
    assert_int_equal(apm_msgpack_trace(&b, &f->tp, &f->ch), O2D_OK);
    msgpack_unpacked u;
    unpack_all(&u, b.data, b.len);
    const msgpack_object *s0 = &u.data.via.array.ptr[0];
    const msgpack_object *meta = map_get(s0, "meta");
    assert_int_equal(meta->via.map.size, 4); /* tid, env, dm, origin */
    assert_str(map_get(meta, "_dd.p.dm"), "-4");
    assert_str(map_get(meta, "_dd.origin"), "synthetics");
    assert_null(map_get(meta, "_dd.hostname"));
    assert_null(map_get(map_get(s0, "metrics"), "_sampling_priority_v1"));
    const msgpack_object *s1 = &u.data.via.array.ptr[1];
    assert_int_equal(s1->via.map.size, 13);
    /* The root (parent 0) carries the origin too: the agent reads it from there. */
    assert_int_equal(map_get(s1, "meta")->via.map.size, 1);
    assert_str(map_get(map_get(s1, "meta"), "_dd.origin"), "synthetics");
    assert_double(map_get(map_get(s1, "metrics"), "_sampling_priority_v1"), 2);
    const msgpack_object *ms = map_get(map_get(s1, "meta_struct"), "appsec");
    assert_non_null(ms);
    assert_int_equal(ms->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(ms->via.bin.size, sizeof(raw));
    assert_memory_equal(ms->via.bin.ptr, raw, sizeof(raw));
    const msgpack_object *s2 = &u.data.via.array.ptr[2];
    assert_int_equal(map_get(s2, "meta")->via.map.size, 0);
    assert_int_equal(map_get(s2, "metrics")->via.map.size, 0);
    msgpack_unpacked_destroy(&u);
    o2d_buf_cleanup(&b);
    free(f);
}

static void test_trace_limit_and_alloc_failures(void **state)
{
    (void)state;
    struct fixture *f = make_fixture(3);
    /* Over the buffer's maximum: TOO_LARGE, and what was there before is kept. */
    struct o2d_buf b;
    o2d_buf_init(&b, 64);
    assert_int_equal(o2d_buf_append(&b, "xyz", 3), O2D_OK);
    assert_int_equal(apm_msgpack_trace(&b, &f->tp, &f->ch), O2D_ERR_TOO_LARGE);
    assert_int_equal(b.len, 3);
    o2d_buf_cleanup(&b);
    /* Every allocation that can fail, failing: an error each time, never a crash. */
    for (long n = 0;; n++) {
        o2d_buf_init(&b, 1 << 20);
        o2d_alloc_fail_after(n);
        int rv = apm_msgpack_trace(&b, &f->tp, &f->ch);
        long failed = o2d_alloc_failures();
        o2d_alloc_fail_after(-1);
        o2d_buf_cleanup(&b);
        if (failed == 0) {
            assert_int_equal(rv, O2D_OK);
            break;
        }
        assert_int_equal(rv, O2D_ERR_NOMEM);
        assert_true(n < 1000);
    }
    free(f);
}

static void test_array_header(void **state)
{
    (void)state;
    const uint32_t ns[] = {0, 1, 15, 16, 65535, 65536, UINT32_MAX};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        uint8_t h[APM_MSGPACK_ARRAY_HEADER_MAX];
        size_t len = apm_msgpack_array_header(h, ns[i]);
        /* msgpack-c's packer writes the same bytes. */
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, ns[i]);
        assert_int_equal(len, sb.size);
        assert_memory_equal(h, sb.data, len);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* ---- bodies: dlv_build_bodies with datadog_agent_traces_dest ---- */

/* One queue item: one encoded trace of n spans with ids from *next_id, `pad` bytes of meta. */
static struct dlv_item *make_item(const char *lang, const char *cid, size_t n, size_t pad,
                                  uint64_t *next_id)
{
    struct fixture *f = make_fixture(n);
    char *padding = malloc(pad + 1);
    memset(padding, 'p', pad);
    padding[pad] = '\0';
    add_meta(f, 0, "pad", padding);
    /* The service names the item's header set, so that a body can be checked against it. */
    char service[128];
    snprintf(service, sizeof(service), "%s/%s", lang, cid);
    for (size_t i = 0; i < n; i++) {
        f->spans[i].spanid = (*next_id)++;
        f->spans[i].service = service;
    }
    struct o2d_buf b;
    o2d_buf_init(&b, 64u << 20);
    assert_int_equal(apm_msgpack_trace(&b, &f->tp, &f->ch), O2D_OK);
    struct datadog_agent_meta m = {
        .lang = lang,
        .tracer_version = "otlp-1.0",
        .container_id = cid,
    };
    struct dlv_item *it = datadog_agent_trace_item(b.data, b.len, n, &m);
    assert_non_null(it);
    assert_int_equal(it->count, n);
    assert_int_equal(dlv_item_body_len(it), b.len);
    assert_memory_equal(dlv_item_body(it), b.data, b.len);
    o2d_buf_cleanup(&b);
    free(padding);
    free(f);
    return it;
}

static int same_meta(const struct datadog_agent_meta *a, const struct datadog_agent_meta *b)
{
    return strcmp(a->lang, b->lang) == 0 && strcmp(a->lang_version, b->lang_version) == 0 &&
           strcmp(a->lang_interpreter, b->lang_interpreter) == 0 &&
           strcmp(a->tracer_version, b->tracer_version) == 0 &&
           strcmp(a->container_id, b->container_id) == 0;
}

/* The value of header `name` among h's lines, or NULL; a name appears at most once. */
static const char *header_value(const struct dlv_headers *h, const char *name)
{
    const char *found = NULL;
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->n; i++) {
        if (strncmp(h->line[i], name, nl) == 0 && h->line[i][nl] == ':') {
            assert_null(found);
            assert_true(h->line[i][nl + 1] == ' ');
            found = h->line[i] + nl + 2;
        }
    }
    return found;
}

#define GOT_BODIES_MAX 64

struct got {
    size_t bodies;
    size_t spans;
    size_t traces;
    size_t max_len;
    uint64_t seen[4096]; /* span ids, counted by id - 1 */
    /* the items of each body, in the order emitted */
    struct dlv_item *items[GOT_BODIES_MAX][32];
    size_t n[GOT_BODIES_MAX];
    const struct dlv_item *left[16];
    int left_reason[16];
    size_t n_left;
};

/* Checks a body as the Agent would read it, and its headers; frees it. */
static void collect(void *ctx, struct dlv_body *body)
{
    struct got *g = ctx;
    assert_true(g->bodies < GOT_BODIES_MAX && body->n <= 32);
    memcpy(g->items[g->bodies], body->items, body->n * sizeof(body->items[0]));
    g->n[g->bodies] = body->n;
    g->bodies++;
    g->spans += body->units;
    g->traces += body->n;
    if (body->len > g->max_len) {
        g->max_len = body->len;
    }
    assert_int_equal(body->raw_len, body->len);
    /* Every item of a body has the same header fields: the first one's. */
    struct datadog_agent_meta meta;
    datadog_agent_item_meta(body->items[0], &meta);
    size_t units = 0;
    for (size_t i = 0; i < body->n; i++) {
        struct datadog_agent_meta mi;
        datadog_agent_item_meta(body->items[i], &mi);
        assert_true(same_meta(&meta, &mi));
        units += body->items[i]->count;
    }
    assert_int_equal(units, body->units);
    msgpack_unpacked u;
    unpack_all(&u, body->data, body->len);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u.data.via.array.size, body->n);
    /* The array's elements are the items' traces as they are, in order. */
    uint8_t hdr[APM_MSGPACK_ARRAY_HEADER_MAX];
    size_t off = apm_msgpack_array_header(hdr, (uint32_t)body->n);
    assert_memory_equal(body->data, hdr, off);
    for (size_t i = 0; i < body->n; i++) {
        size_t bl = dlv_item_body_len(body->items[i]);
        assert_true(off + bl <= body->len);
        assert_memory_equal(body->data + off, dlv_item_body(body->items[i]), bl);
        off += bl;
    }
    assert_int_equal(off, body->len);
    size_t n = 0;
    char service[DATADOG_LANG_MAX + DATADOG_AGENT_HDR_MAX + 2];
    snprintf(service, sizeof(service), "%s/%s", meta.lang, meta.container_id);
    for (uint32_t t = 0; t < u.data.via.array.size; t++) {
        const msgpack_object *tr = &u.data.via.array.ptr[t];
        assert_int_equal(tr->type, MSGPACK_OBJECT_ARRAY);
        for (uint32_t s = 0; s < tr->via.array.size; s++) {
            assert_str(map_get(&tr->via.array.ptr[s], "service"), service);
            const msgpack_object *id = map_get(&tr->via.array.ptr[s], "span_id");
            assert_true(id->via.u64 >= 1 && id->via.u64 <= 4096);
            g->seen[id->via.u64 - 1]++;
            n++;
        }
    }
    assert_int_equal(n, body->units);
    msgpack_unpacked_destroy(&u);
    /* The body's headers: its language and trace count. */
    struct dlv_headers h;
    memset(&h, 0, sizeof(h));
    datadog_agent_traces_dest.headers(NULL, body->items, body->n, &h);
    assert_string_equal(header_value(&h, "Datadog-Meta-Lang"), meta.lang);
    char count[32];
    snprintf(count, sizeof(count), "%zu", body->n);
    assert_string_equal(header_value(&h, "X-Datadog-Trace-Count"), count);
    dlv_body_free(body);
}

static void left_out(void *ctx, const struct dlv_item *it, int reason)
{
    struct got *g = ctx;
    assert_true(g->n_left < 16);
    g->left[g->n_left] = it;
    g->left_reason[g->n_left++] = reason;
}

static struct dlv_build agent_build(size_t max_body, struct got *g)
{
    struct dlv_build b = {
        .type = &datadog_agent_traces_dest,
        .ctx = NULL,
        .max_body = max_body,
        .compression = DLV_COMPRESS_NONE,
        .emit = collect,
        .emit_ctx = g,
        .left_out = left_out,
    };
    return b;
}

static void free_items(struct dlv_item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(items[i]);
    }
}

static void test_bodies_split_on_traces_by_headers(void **state)
{
    (void)state;
    /* 40 traces of 1..8 spans and ~2 KB each, from two languages and two containers, with a
     * 20 KB limit: several bodies, none over it, whole traces, each span once, and a body
     * never mixes header sets (collect checks each item's meta, and each span's service,
     * which names its set). */
    enum { N = 40 };
    const size_t max_body = 20000;
    struct dlv_item *items[N];
    uint64_t next_id = 1;
    size_t total = 0;
    const char *langs[] = {"python", "go"};
    const char *cids[] = {"", "c0ffee"};
    for (size_t i = 0; i < N; i++) {
        items[i] = make_item(langs[i % 2], cids[(i / 3) % 2], 1 + i % 8, 2000, &next_id);
        total += items[i]->count;
    }
    struct got *g = calloc(1, sizeof(*g));
    struct dlv_build b = agent_build(max_body, g);
    assert_int_equal(dlv_build_bodies(&b, items, N), O2D_OK);
    assert_int_equal(b.too_large, 0);
    assert_int_equal(b.failed, 0);
    assert_int_equal(g->n_left, 0);
    assert_int_equal(g->spans, total);
    assert_int_equal(g->traces, N);
    assert_true(g->bodies >= 5);
    assert_true(g->max_len <= max_body);
    for (uint64_t id = 1; id < next_id; id++) {
        assert_int_equal(g->seen[id - 1], 1);
    }
    /* Each item is in exactly one body, held once; the bodies take the header sets in order
     * of first appearance and, within one, the items in order, each body filled while the
     * next item fits (next-fit). */
    size_t k = 0;
    struct dlv_item *order[N];
    for (size_t bi = 0; bi < g->bodies; bi++) {
        for (size_t j = 0; j < g->n[bi]; j++) {
            assert_true(k < N);
            order[k++] = g->items[bi][j];
        }
    }
    assert_int_equal(k, N);
    k = 0;
    uint8_t placed[N] = {0};
    for (size_t first = 0; first < N; first++) {
        if (placed[first]) {
            continue;
        }
        struct datadog_agent_meta mf;
        datadog_agent_item_meta(items[first], &mf);
        for (size_t i = first; i < N; i++) {
            struct datadog_agent_meta mi;
            datadog_agent_item_meta(items[i], &mi);
            if (!placed[i] && same_meta(&mf, &mi)) {
                assert_ptr_equal(order[k++], items[i]);
                placed[i] = 1;
            }
        }
    }
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&items[i]->refs), 1);
    }
    const size_t room = max_body - datadog_agent_traces_dest.body_overhead;
    for (size_t bi = 0; bi + 1 < g->bodies; bi++) {
        struct datadog_agent_meta ma;
        struct datadog_agent_meta mb;
        datadog_agent_item_meta(g->items[bi][0], &ma);
        datadog_agent_item_meta(g->items[bi + 1][0], &mb);
        if (!same_meta(&ma, &mb)) {
            continue;
        }
        size_t size = 0;
        for (size_t j = 0; j < g->n[bi]; j++) {
            size += dlv_item_body_len(g->items[bi][j]);
        }
        assert_true(size <= room);
        assert_true(size + dlv_item_body_len(g->items[bi + 1][0]) > room);
    }
    free(g);
    free_items(items, N);
}

static void test_bodies_large_trace_dropped(void **state)
{
    (void)state;
    /* A trace alone over the limit is left out, counted and reported; its neighbours go. */
    uint64_t next_id = 1;
    struct dlv_item *items[3] = {
        make_item("python", "", 2, 100, &next_id),
        make_item("python", "", 5, 50000, &next_id),
        make_item("python", "", 3, 100, &next_id),
    };
    struct got *g = calloc(1, sizeof(*g));
    struct dlv_build b = agent_build(10000, g);
    assert_int_equal(dlv_build_bodies(&b, items, 3), O2D_OK);
    assert_int_equal(b.too_large, 5);
    assert_int_equal(b.failed, 0);
    assert_int_equal(g->n_left, 1);
    assert_ptr_equal(g->left[0], items[1]);
    assert_int_equal(g->left_reason[0], DLV_DROP_TOO_LARGE);
    assert_int_equal(atomic_load(&items[1]->refs), 0);
    /* Next-fit in order: the large trace closes the first trace's body before it is found
     * too large, so the third goes in a body of its own (first-fit made one body of the
     * first and third). */
    assert_int_equal(g->bodies, 2);
    assert_int_equal(g->max_len <= 10000, 1);
    assert_int_equal(g->spans, 5);
    assert_int_equal(g->seen[0] + g->seen[1], 2);
    assert_int_equal(g->seen[7] + g->seen[8] + g->seen[9], 3);
    for (size_t i = 2; i < 7; i++) {
        assert_int_equal(g->seen[i], 0);
    }
    free(g);
    free_items(items, 3);
}

static void test_bodies_alloc_failures(void **state)
{
    (void)state;
    uint64_t next_id = 1;
    struct dlv_item *items[6];
    for (size_t i = 0; i < 6; i++) {
        items[i] = make_item(i < 3 ? "python" : "go", "", 2, 3000, &next_id);
    }
    /* Whatever fails, each span is either emitted or counted as failed, once; what failed is
     * reported as such and held by no body. */
    for (long n = 0;; n++) {
        struct got *g = calloc(1, sizeof(*g));
        struct dlv_build b = agent_build(7000, g);
        o2d_alloc_fail_after(n);
        int rv = dlv_build_bodies(&b, items, 6);
        long fails = o2d_alloc_failures();
        o2d_alloc_fail_after(-1);
        assert_int_equal(g->spans + b.failed, 12);
        assert_int_equal(b.too_large, 0);
        size_t left_units = 0;
        for (size_t i = 0; i < g->n_left; i++) {
            assert_int_equal(g->left_reason[i], DLV_DROP_RETRIES_EXHAUSTED);
            assert_int_equal(atomic_load(&g->left[i]->refs), 0);
            left_units += g->left[i]->count;
        }
        assert_int_equal(left_units, b.failed);
        for (size_t i = 0; i < 6; i++) {
            atomic_store(&items[i]->refs, 0);
        }
        free(g);
        if (fails == 0) {
            assert_int_equal(rv, O2D_OK);
            assert_int_equal(b.failed, 0);
            break;
        }
        assert_int_equal(rv, O2D_ERR_NOMEM);
        assert_true(n < 100);
    }
    free_items(items, 6);
}

/* The headers of a v0.4 body, as tracers send them: its meta fields (control characters
 * left out, empty ones not sent, each cut to its limit), and its trace count. */
static void test_agent_trace_headers(void **state)
{
    (void)state;
    const uint8_t trace[] = {0x90}; /* an empty trace */
    char long_lang[100];
    memset(long_lang, 'l', sizeof(long_lang) - 1);
    long_lang[sizeof(long_lang) - 1] = '\0';
    struct datadog_agent_meta m = {
        .lang = "python",
        .lang_version = "3.12\r\nX-Evil: 1",
        .lang_interpreter = "\t\x7f\n",
        .tracer_version = "otlp-1.0",
        .container_id = "",
    };
    struct dlv_item *items[3];
    for (size_t i = 0; i < 3; i++) {
        items[i] = datadog_agent_trace_item(trace, sizeof(trace), 1, &m);
        assert_non_null(items[i]);
    }
    /* The meta reads back as it was given. */
    struct datadog_agent_meta back;
    datadog_agent_item_meta(items[0], &back);
    assert_true(same_meta(&m, &back));
    struct dlv_headers h;
    memset(&h, 0, sizeof(h));
    datadog_agent_traces_dest.headers(NULL, items, 3, &h);
    const char *want[] = {
        "Content-Type: application/msgpack",        "X-Datadog-Trace-Count: 3",
        "Datadog-Client-Computed-Stats: yes",       "Datadog-Client-Computed-Top-Level: yes",
        "Datadog-Send-Real-Http-Status: yes",       "Datadog-Meta-Lang: python",
        "Datadog-Meta-Lang-Version: 3.12X-Evil: 1", "Datadog-Meta-Tracer-Version: otlp-1.0",
    };
    assert_int_equal(h.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < h.n; i++) {
        assert_string_equal(h.line[i], want[i]);
        for (const char *p = h.line[i]; *p != '\0'; p++) {
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
        }
    }
    assert_null(header_value(&h, "Datadog-Meta-Lang-Interpreter"));
    assert_null(header_value(&h, "Datadog-Container-ID"));
    /* One item, and fields past their limit: cut there. */
    m.lang = long_lang;
    m.container_id = "c0ffee";
    struct dlv_item *cut = datadog_agent_trace_item(trace, sizeof(trace), 1, &m);
    assert_non_null(cut);
    memset(&h, 0, sizeof(h));
    datadog_agent_traces_dest.headers(NULL, &cut, 1, &h);
    assert_string_equal(header_value(&h, "X-Datadog-Trace-Count"), "1");
    assert_int_equal(strlen(header_value(&h, "Datadog-Meta-Lang")), DATADOG_LANG_MAX - 1);
    assert_memory_equal(header_value(&h, "Datadog-Meta-Lang"), long_lang, DATADOG_LANG_MAX - 1);
    assert_string_equal(header_value(&h, "Datadog-Container-ID"), "c0ffee");
    dlv_item_free(cut);
    /* No meta at all (NULL fields are allowed): every field reads back empty, and only the
     * fixed headers are sent. */
    struct datadog_agent_meta none = {0};
    struct dlv_item *bare = datadog_agent_trace_item(trace, sizeof(trace), 1, &none);
    assert_non_null(bare);
    assert_int_equal(bare->head_len, 5);
    datadog_agent_item_meta(bare, &back);
    const char *fields[5] = {back.lang, back.lang_version, back.lang_interpreter,
                             back.tracer_version, back.container_id};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(fields[i], "");
    }
    memset(&h, 0, sizeof(h));
    datadog_agent_traces_dest.headers(NULL, &bare, 1, &h);
    assert_int_equal(h.n, 5);
    for (size_t i = 0; i < h.n; i++) {
        assert_string_equal(h.line[i], i == 1 ? "X-Datadog-Trace-Count: 1" : want[i]);
    }
    dlv_item_free(bare);
    free_items(items, 3);
}

/* ---- stats_flush_client ---- */

struct stats_got {
    size_t payloads;
    uint64_t hits;
    uint64_t last_seq;
    char langs[4][16];
    struct dlv_item *items[4]; /* the payloads as items of datadog_agent_stats_dest */
};

static int collect_stats(void *ctx, const uint8_t *data, size_t len, const char *lang)
{
    struct stats_got *g = ctx;
    msgpack_unpacked u;
    unpack_all(&u, data, len);
    const msgpack_object *p = &u.data;
    /* The tracers' ClientStatsPayload, not the agent's StatsPayload wrapper. */
    assert_int_equal(p->via.map.size, 14);
    assert_null(map_get(p, "AgentHostname"));
    assert_str(map_get(p, "Lang"), lang);
    /* Empty env and host stay empty: the Agent fills in its own, as for the traces. */
    assert_str(map_get(p, "Hostname"), strcmp(lang, "go") == 0 ? "" : "host-1");
    assert_str(map_get(p, "Env"), "");
    const msgpack_object *seq = map_get(p, "Sequence");
    assert_int_equal(seq->via.u64, g->last_seq + 1);
    g->last_seq = seq->via.u64;
    const msgpack_object *buckets = map_get(p, "Stats");
    for (uint32_t b = 0; b < buckets->via.array.size; b++) {
        const msgpack_object *bk = &buckets->via.array.ptr[b];
        assert_uint(map_get(bk, "Duration"), 10000000000ULL);
        const msgpack_object *groups = map_get(bk, "Stats");
        for (uint32_t i = 0; i < groups->via.array.size; i++) {
            g->hits += map_get(&groups->via.array.ptr[i], "Hits")->via.u64;
        }
    }
    snprintf(g->langs[g->payloads % 4], 16, "%s", lang);
    if (g->payloads < 4) {
        g->items[g->payloads] = datadog_stats_item(data, len, lang);
        assert_non_null(g->items[g->payloads]);
    }
    g->payloads++;
    msgpack_unpacked_destroy(&u);
    return O2D_OK;
}

struct stats_bodies {
    struct dlv_body *bodies[4];
    size_t n;
};

static void collect_stats_body(void *ctx, struct dlv_body *body)
{
    struct stats_bodies *sb = ctx;
    assert_true(sb->n < 4);
    sb->bodies[sb->n++] = body;
}

static void test_stats_client_payloads(void **state)
{
    (void)state;
    struct stats_config sc = {
        .bucket_ns = 10000000000LL,
        .max_groups_per_bucket = 1000,
        .agent_env = "none",
        .agent_hostname = "otel2dd-host",
        .agent_version = "test",
        .agent_fills_defaults = 1,
    };
    struct stats_concentrator *c = NULL;
    assert_int_equal(stats_concentrator_new(&c, &sc), O2D_OK);
    /* Two payloads of different languages: two ClientStatsPayloads, numbered 1 and 2. */
    struct fixture *f = make_fixture(3);
    struct fixture *h = make_fixture(2);
    h->tp.languagename = "go";
    h->tp.hostname = "";
    for (size_t i = 1; i < 3; i++) {
        add_metric(f, i, "_top_level", 1);
    }
    add_metric(h, 1, "_top_level", 1);
    DdTraceChunk *fc[1] = {&f->ch};
    DdTraceChunk *hc[1] = {&h->ch};
    f->tp.chunks = fc;
    f->tp.n_chunks = 1;
    h->tp.chunks = hc;
    h->tp.n_chunks = 1;
    assert_int_equal(stats_add_payload(c, &f->tp), O2D_OK);
    assert_int_equal(stats_add_payload(c, &h->tp), O2D_OK);
    struct stats_got g = {0};
    assert_int_equal(stats_flush_client(c, 1700000100000000000LL, 1, collect_stats, &g), O2D_OK);
    assert_int_equal(g.payloads, 2);
    assert_int_equal(g.hits, 5);
    assert_int_equal(g.last_seq, 2);
    assert_true((strcmp(g.langs[0], "python") == 0 && strcmp(g.langs[1], "go") == 0) ||
                (strcmp(g.langs[0], "go") == 0 && strcmp(g.langs[1], "python") == 0));
    /* As the Agent destination sends them: one payload a body, as it is, with its
     * language's header; payloads of one language go one after the other (grouped by
     * header, in order of first appearance). */
    struct dlv_item *copy =
        datadog_stats_item(dlv_item_body(g.items[0]), dlv_item_body_len(g.items[0]), g.langs[0]);
    assert_non_null(copy);
    struct dlv_item *items[3] = {g.items[0], g.items[1], copy};
    struct stats_bodies sb = {.n = 0};
    struct dlv_build b = {
        .type = &datadog_agent_stats_dest,
        .max_body = DATADOG_STATS_BODY_MAX,
        .compression = DLV_COMPRESS_NONE,
        .emit = collect_stats_body,
        .emit_ctx = &sb,
    };
    assert_int_equal(dlv_build_bodies(&b, items, 3), O2D_OK);
    assert_int_equal(b.too_large + b.failed, 0);
    assert_int_equal(sb.n, 3);
    struct dlv_item *want[3] = {g.items[0], copy, g.items[1]};
    for (size_t i = 0; i < 3; i++) {
        struct dlv_body *body = sb.bodies[i];
        assert_int_equal(body->n, 1);
        assert_int_equal(body->units, 1);
        assert_ptr_equal(body->items[0], want[i]);
        assert_int_equal(body->len, dlv_item_body_len(want[i]));
        assert_memory_equal(body->data, dlv_item_body(want[i]), body->len);
        struct dlv_headers hd;
        memset(&hd, 0, sizeof(hd));
        datadog_agent_stats_dest.headers(NULL, body->items, body->n, &hd);
        char lang[64];
        snprintf(lang, sizeof(lang), "Datadog-Meta-Lang: %s", i < 2 ? g.langs[0] : g.langs[1]);
        assert_int_equal(hd.n, 3);
        assert_string_equal(hd.line[0], "Content-Type: application/msgpack");
        assert_string_equal(hd.line[1], "Datadog-Meta-Tracer-Version: " O2D_VERSION);
        assert_string_equal(hd.line[2], lang);
        dlv_body_free(body);
    }
    /* No language: no Datadog-Meta-Lang header. */
    struct dlv_item *anon = datadog_stats_item(dlv_item_body(copy), dlv_item_body_len(copy), NULL);
    assert_non_null(anon);
    assert_int_equal(anon->head_len, 0);
    struct dlv_headers hd;
    memset(&hd, 0, sizeof(hd));
    datadog_agent_stats_dest.headers(NULL, &anon, 1, &hd);
    assert_int_equal(hd.n, 2);
    assert_null(header_value(&hd, "Datadog-Meta-Lang"));
    dlv_item_free(anon);
    dlv_item_free(copy);
    dlv_item_free(g.items[0]);
    dlv_item_free(g.items[1]);
    g.items[0] = g.items[1] = NULL;
    /* Nothing left: the buckets were forgotten. */
    g.payloads = 0;
    assert_int_equal(stats_flush_client(c, 1700000200000000000LL, 1, collect_stats, &g), O2D_OK);
    assert_int_equal(g.payloads, 0);
    stats_concentrator_free(c);
    free(f);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_fields),
        cmocka_unit_test(test_trace_keeps_span_values),
        cmocka_unit_test(test_trace_limit_and_alloc_failures),
        cmocka_unit_test(test_array_header),
        cmocka_unit_test(test_bodies_split_on_traces_by_headers),
        cmocka_unit_test(test_bodies_large_trace_dropped),
        cmocka_unit_test(test_bodies_alloc_failures),
        cmocka_unit_test(test_agent_trace_headers),
        cmocka_unit_test(test_stats_client_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
