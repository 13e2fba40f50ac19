/*
 * test_datadog_encode.c: the agentless traces destination (exporters/datadog_int.h) on the
 * delivery layer's body builder (delivery.h, dlv_build_bodies). An AgentPayload built by
 * concatenating encoded TracerPayloads as field 5 decodes with protobuf-c into the same
 * payloads; gzip round-trips and stops at its limit; bodies are split on TracerPayload
 * boundaries, then a lone TracerPayload by its trace chunks, so that every compressed body
 * stays under the limit and every span arrives exactly once; a chunk alone over the limit
 * is left out and counted; the headers name the bodies' languages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "datadog.h"
#include "datadog/trace/agent_payload.pb-c.h"
#include "datadog_int.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "o2d_log.h"

/* ---- building TracerPayloads ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* `len` characters that gzip cannot shrink much (64 symbols: ~6 bits each). */
static char *noise(size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *s = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        s[i] = abc[rnd() & 63];
    }
    s[len] = '\0';
    return s;
}

static uint64_t next_span_id = 1;

/* A TracerPayload of n_chunks chunks of spans_per_chunk spans, each span carrying `pad`
 * incompressible bytes in a meta value, packed into a queue item. */
static struct dlv_item *make_item(const char *lang, size_t n_chunks, size_t spans_per_chunk,
                                  size_t pad)
{
    Datadog__Trace__TracerPayload tp = DATADOG__TRACE__TRACER_PAYLOAD__INIT;
    tp.languagename = (char *)lang;
    tp.hostname = "host-a";
    tp.env = "prod";
    tp.appversion = "1.2.3";
    Datadog__Trace__TracerPayload__TagsEntry tag = DATADOG__TRACE__TRACER_PAYLOAD__TAGS_ENTRY__INIT;
    tag.key = "_dd.tags.container";
    tag.value = "task_arn:abc";
    Datadog__Trace__TracerPayload__TagsEntry *tags[] = {&tag};
    tp.n_tags = 1;
    tp.tags = tags;
    tp.n_chunks = n_chunks;
    tp.chunks = calloc(n_chunks, sizeof(*tp.chunks));
    for (size_t c = 0; c < n_chunks; c++) {
        Datadog__Trace__TraceChunk *ch = calloc(1, sizeof(*ch));
        datadog__trace__trace_chunk__init(ch);
        ch->priority = 1;
        ch->n_spans = spans_per_chunk;
        ch->spans = calloc(spans_per_chunk, sizeof(*ch->spans));
        uint64_t trace_id = rnd();
        for (size_t i = 0; i < spans_per_chunk; i++) {
            Datadog__Trace__Span *sp = calloc(1, sizeof(*sp));
            datadog__trace__span__init(sp);
            sp->service = "svc";
            sp->name = "http.server.request";
            sp->resource = "GET /x";
            sp->traceid = trace_id;
            sp->spanid = next_span_id++;
            sp->start = 1700000000000000000LL;
            sp->duration = 1000;
            if (pad > 0) {
                Datadog__Trace__Span__MetaEntry *m = calloc(1, sizeof(*m));
                datadog__trace__span__meta_entry__init(m);
                m->key = "pad";
                m->value = noise(pad);
                sp->n_meta = 1;
                sp->meta = calloc(1, sizeof(*sp->meta));
                sp->meta[0] = m;
            }
            ch->spans[i] = sp;
        }
        tp.chunks[c] = ch;
    }
    size_t len = datadog__trace__tracer_payload__get_packed_size(&tp);
    uint8_t *bytes = malloc(len);
    datadog__trace__tracer_payload__pack(&tp, bytes);
    struct dlv_item *it = datadog_trace_item(bytes, len, n_chunks * spans_per_chunk, lang);
    assert_non_null(it);
    free(bytes);
    for (size_t c = 0; c < n_chunks; c++) {
        Datadog__Trace__TraceChunk *ch = tp.chunks[c];
        for (size_t i = 0; i < ch->n_spans; i++) {
            if (ch->spans[i]->n_meta > 0) {
                free(ch->spans[i]->meta[0]->value);
                free(ch->spans[i]->meta[0]);
                free(ch->spans[i]->meta);
            }
            free(ch->spans[i]);
        }
        free(ch->spans);
        free(ch);
    }
    free(tp.chunks);
    return it;
}

static const struct datadog_header header = {
    .hostname = "collector-1",
    .env = "none",
    .agent_version = "otel2dd/test",
    .target_tps = 10,
    .error_tps = 10,
};
static const struct datadog_wire wire = {
    .h = {.hostname = "collector-1",
          .env = "none",
          .agent_version = "otel2dd/test",
          .target_tps = 10,
          .error_tps = 10},
    .key_header = "DD-Api-Key: k",
};

static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len)
{
    size_t cap = 64 * 1024 * 1024;
    uint8_t *out = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    inflateEnd(&zs);
    return out;
}

/* ---- what the emit callback received ---- */

#define MAX_BODIES 256
struct sink {
    size_t n;
    size_t max_body;
    size_t spans;
    char langs[MAX_BODIES][256];
    Datadog__Trace__AgentPayload *ap[MAX_BODIES];
    size_t span_counted[MAX_BODIES];
};

/* The value of X-Datadog-Reported-Languages the destination writes for a body. */
static void languages_of(const struct dlv_body *b, char *out, size_t cap)
{
    struct dlv_headers h;
    memset(&h, 0, sizeof(h));
    datadog_traces_dest.headers((void *)&wire, b->items, b->n, &h);
    static const char name[] = "X-Datadog-Reported-Languages";
    out[0] = '\0';
    int found = 0;
    for (size_t i = 0; i < h.n; i++) {
        if (strncmp(h.line[i], name, sizeof(name) - 1) == 0) {
            const char *v = h.line[i] + sizeof(name) - 1;
            assert_true(*v == ';' || *v == ':'); /* "Name;" is curl's empty value */
            snprintf(out, cap, "%s", *v == ':' ? v + 2 : "");
            found++;
        }
    }
    assert_int_equal(found, 1);
    assert_string_equal(h.line[0], "DD-Api-Key: k");
}

static void emit(void *ctx, struct dlv_body *b)
{
    struct sink *s = ctx;
    assert_true(s->n < MAX_BODIES);
    assert_true(b->len <= s->max_body);
    size_t raw_len;
    uint8_t *raw = gunzip(b->data, b->len, &raw_len);
    assert_int_equal(raw_len, b->raw_len);
    Datadog__Trace__AgentPayload *ap = datadog__trace__agent_payload__unpack(NULL, raw_len, raw);
    assert_non_null(ap);
    assert_int_equal(ap->n_tracerpayloads, b->n);
    size_t counted = 0;
    for (size_t i = 0; i < ap->n_tracerpayloads; i++) {
        for (size_t c = 0; c < ap->tracerpayloads[i]->n_chunks; c++) {
            counted += ap->tracerpayloads[i]->chunks[c]->n_spans;
        }
    }
    assert_int_equal(counted, b->units);
    s->span_counted[s->n] = counted;
    languages_of(b, s->langs[s->n], sizeof(s->langs[0]));
    s->ap[s->n++] = ap;
    s->spans += b->units;
    free(raw);
    /* the body's hold on a split half goes (it is freed once the builder lets go too);
     * queue items keep theirs, so that their refs count the bodies that carry them */
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i]->parent != NULL) {
            assert_null(dlv_item_release(b->items[i]));
        }
    }
    dlv_body_free(b);
}

/* dlv_build_bodies as the sender runs it for this destination. */
static int build(struct dlv_item **items, size_t n, size_t limit, struct sink *s, size_t *too_large,
                 size_t *failed)
{
    struct dlv_build b = {
        .type = &datadog_traces_dest,
        .ctx = (void *)&wire,
        .max_body = limit,
        .batch_bytes = DATADOG_BATCH_RAW_BYTES,
        .compression = DLV_COMPRESS_GZIP,
        .emit = emit,
        .emit_ctx = s,
    };
    int rv = dlv_build_bodies(&b, items, n);
    *too_large = b.too_large;
    *failed = b.failed;
    return rv;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        datadog__trace__agent_payload__free_unpacked(s->ap[i], NULL);
    }
}

/* Every span id in [first, last) appears exactly once over all bodies. */
static void assert_each_span_once(struct sink *s, uint64_t first, uint64_t last)
{
    size_t n = (size_t)(last - first);
    unsigned char *seen = calloc(n, 1);
    for (size_t b = 0; b < s->n; b++) {
        Datadog__Trace__AgentPayload *ap = s->ap[b];
        for (size_t i = 0; i < ap->n_tracerpayloads; i++) {
            Datadog__Trace__TracerPayload *tp = ap->tracerpayloads[i];
            for (size_t c = 0; c < tp->n_chunks; c++) {
                for (size_t k = 0; k < tp->chunks[c]->n_spans; k++) {
                    uint64_t id = tp->chunks[c]->spans[k]->spanid;
                    assert_true(id >= first && id < last);
                    assert_int_equal(seen[id - first], 0);
                    seen[id - first] = 1;
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!seen[i]) {
            fail_msg("span %llu missing", (unsigned long long)(first + i));
        }
    }
    free(seen);
}

static void free_items(struct dlv_item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dlv_item_free(items[i]);
    }
}

/* ---- tests ---- */

static void concatenation_decodes(void **state)
{
    (void)state;
    struct dlv_item *items[3] = {
        make_item("python", 2, 3, 0),
        make_item("go", 1, 1, 0),
        make_item("", 3, 2, 0),
    };
    struct o2d_buf b;
    o2d_buf_init(&b, 1 << 20);
    assert_int_equal(datadog_encode_agent_payload(&b, &header, items, 3), O2D_OK);
    Datadog__Trace__AgentPayload *ap = datadog__trace__agent_payload__unpack(NULL, b.len, b.data);
    assert_non_null(ap);
    assert_string_equal(ap->hostname, "collector-1");
    assert_string_equal(ap->env, "none");
    assert_string_equal(ap->agentversion, "otel2dd/test");
    assert_true(ap->targettps == 10.0 && ap->errortps == 10.0);
    assert_int_equal(ap->n_tracerpayloads, 3);
    for (size_t i = 0; i < 3; i++) {
        /* each payload re-encodes to exactly the bytes that went in */
        Datadog__Trace__TracerPayload *tp = ap->tracerpayloads[i];
        size_t len = datadog__trace__tracer_payload__get_packed_size(tp);
        assert_int_equal(len, dlv_item_body_len(items[i]));
        uint8_t *again = malloc(len);
        datadog__trace__tracer_payload__pack(tp, again);
        assert_memory_equal(again, dlv_item_body(items[i]), len);
        free(again);
        assert_string_equal(tp->hostname, "host-a");
        assert_int_equal(tp->n_tags, 1);
    }
    assert_string_equal(ap->tracerpayloads[0]->languagename, "python");
    assert_int_equal(ap->tracerpayloads[2]->n_chunks, 3);
    datadog__trace__agent_payload__free_unpacked(ap, NULL);
    /* nothing to add: only the header */
    o2d_buf_reset(&b);
    assert_int_equal(datadog_encode_agent_payload(&b, &header, items, 0), O2D_OK);
    ap = datadog__trace__agent_payload__unpack(NULL, b.len, b.data);
    assert_int_equal(ap->n_tracerpayloads, 0);
    datadog__trace__agent_payload__free_unpacked(ap, NULL);
    /* the buffer's maximum holds */
    struct o2d_buf small;
    o2d_buf_init(&small, 16);
    assert_int_equal(datadog_encode_agent_payload(&small, &header, items, 3), O2D_ERR_TOO_LARGE);
    assert_int_equal(small.len, 0);
    o2d_buf_cleanup(&small);
    o2d_buf_cleanup(&b);
    free_items(items, 3);
}

static void gzip_round_trip_and_limit(void **state)
{
    (void)state;
    char *text = noise(20000);
    struct o2d_buf gz;
    o2d_buf_init(&gz, 1 << 20);
    assert_int_equal(dlv_gzip((const uint8_t *)text, 20000, &gz), O2D_OK);
    assert_true(gz.data[0] == 0x1f && gz.data[1] == 0x8b);
    size_t n;
    uint8_t *back = gunzip(gz.data, gz.len, &n);
    assert_int_equal(n, 20000);
    assert_memory_equal(back, text, n);
    free(back);
    size_t full = gz.len;
    o2d_buf_cleanup(&gz);
    o2d_buf_init(&gz, full - 1);
    assert_int_equal(dlv_gzip((const uint8_t *)text, 20000, &gz), O2D_ERR_TOO_LARGE);
    o2d_buf_cleanup(&gz);
    o2d_buf_init(&gz, full);
    assert_int_equal(dlv_gzip((const uint8_t *)text, 20000, &gz), O2D_OK);
    o2d_buf_cleanup(&gz);
    free(text);
}

static void one_body_when_it_fits(void **state)
{
    (void)state;
    uint64_t first = next_span_id;
    struct dlv_item *items[4] = {
        make_item("python", 2, 5, 10),
        make_item("go", 1, 3, 10),
        make_item("python", 1, 1, 10),
        make_item("", 1, 1, 10),
    };
    struct sink s = {.max_body = DATADOG_MAX_BODY_BYTES};
    size_t too_large = 0, failed = 0;
    assert_int_equal(build(items, 4, DATADOG_MAX_BODY_BYTES, &s, &too_large, &failed), O2D_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.spans, 15);
    assert_string_equal(s.langs[0], "python|go");
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(atomic_load(&items[i]->refs), 1);
    }
    assert_int_equal(too_large, 0);
    assert_int_equal(failed, 0);
    assert_each_span_once(&s, first, next_span_id);
    sink_free(&s);
    free_items(items, 4);
}

static void split_on_payload_boundaries(void **state)
{
    (void)state;
    uint64_t first = next_span_id;
    enum { N = 40 };
    struct dlv_item *items[N];
    for (int i = 0; i < N; i++) {
        items[i] = make_item(i % 2 ? "go" : "java", 1, 2, 500); /* ~1 KB, ~750 B gzipped */
    }
    const size_t limit = 8000;
    struct sink s = {.max_body = limit};
    size_t too_large = 0, failed = 0;
    assert_int_equal(build(items, N, limit, &s, &too_large, &failed), O2D_OK);
    assert_true(s.n >= 4);
    assert_int_equal(s.spans, 2 * N);
    assert_int_equal(too_large, 0);
    assert_each_span_once(&s, first, next_span_id);
    /* every body carries the AgentPayload header */
    for (size_t b = 0; b < s.n; b++) {
        assert_string_equal(s.ap[b]->hostname, "collector-1");
        assert_string_equal(s.ap[b]->agentversion, "otel2dd/test");
    }
    sink_free(&s);
    free_items(items, N);
}

static void lone_payload_split_by_chunks(void **state)
{
    (void)state;
    uint64_t first = next_span_id;
    struct dlv_item *items[1] = {make_item("python", 10, 3, 400)}; /* ~12 KB */
    const size_t limit = 4000;
    struct sink s = {.max_body = limit};
    size_t too_large = 0, failed = 0;
    assert_int_equal(build(items, 1, limit, &s, &too_large, &failed), O2D_OK);
    assert_true(s.n >= 3);
    assert_int_equal(s.spans, 30);
    assert_int_equal(too_large, 0);
    assert_each_span_once(&s, first, next_span_id);
    /* every half was let go (by its body and the builder), and with it its hold */
    assert_int_equal(atomic_load(&items[0]->refs), 0);
    /* each part keeps the payload's own fields */
    for (size_t b = 0; b < s.n; b++) {
        assert_int_equal(s.ap[b]->n_tracerpayloads, 1);
        Datadog__Trace__TracerPayload *tp = s.ap[b]->tracerpayloads[0];
        assert_string_equal(tp->languagename, "python");
        assert_string_equal(tp->env, "prod");
        assert_string_equal(tp->appversion, "1.2.3");
        assert_int_equal(tp->n_tags, 1);
        assert_string_equal(tp->tags[0]->value, "task_arn:abc");
        assert_string_equal(s.langs[b], "python");
    }
    sink_free(&s);
    free_items(items, 1);
}

static void chunk_over_the_limit_dropped(void **state)
{
    (void)state;
    uint64_t first = next_span_id;
    struct dlv_item *big = make_item("go", 1, 4, 2000); /* one chunk, ~6 KB gzipped */
    uint64_t small_first = next_span_id;
    struct dlv_item *small = make_item("go", 2, 2, 10);
    struct dlv_item *items[2] = {big, small};
    const size_t limit = 3000;
    struct sink s = {.max_body = limit};
    size_t too_large = 0, failed = 0;
    assert_int_equal(build(items, 2, limit, &s, &too_large, &failed), O2D_OK);
    assert_int_equal(too_large, 4);
    assert_int_equal(failed, 0);
    assert_int_equal(s.spans, 4);
    assert_each_span_once(&s, small_first, next_span_id);
    (void)first;
    sink_free(&s);
    free_items(items, 2);
}

/* An item written in place (begin, the bytes appended, finish) is the item the copying
 * constructor makes from the same bytes: header, body, count; the language is cut the same
 * way; the buffer is left empty and a second item can be started in it. */
static void item_written_in_place(void **state)
{
    (void)state;
    char long_lang[DATADOG_LANG_MAX + 40];
    memset(long_lang, 'j', sizeof(long_lang) - 1);
    long_lang[sizeof(long_lang) - 1] = '\0';
    const char *langs[] = {"go", NULL, "", long_lang};
    uint8_t body[3000];
    for (size_t i = 0; i < sizeof(body); i++) {
        body[i] = (uint8_t)(i * 7 + 3);
    }
    struct o2d_buf b;
    o2d_buf_init(&b, SIZE_MAX / 2);
    for (size_t k = 0; k < sizeof(langs) / sizeof(langs[0]); k++) {
        /* hints below and above the body: growth and shrinking */
        size_t hint = k % 2 == 0 ? 16 : 10000;
        size_t n = 100 + k * 900;
        assert_int_equal(datadog_trace_item_begin(&b, langs[k], hint), O2D_OK);
        assert_int_equal(o2d_buf_append(&b, body, n), O2D_OK);
        struct dlv_item *it = datadog_trace_item_finish(&b, 7 + k, langs[k]);
        assert_non_null(it);
        assert_int_equal(b.len, 0);
        assert_null(b.data);
        struct dlv_item *ref = datadog_trace_item(body, n, 7 + k, langs[k]);
        assert_non_null(ref);
        assert_int_equal(it->head_len, ref->head_len);
        assert_int_equal(it->len, ref->len);
        assert_int_equal(it->count, 7 + k);
        assert_int_equal(it->tenant, -1);
        assert_null(it->next);
        assert_null(it->parent);
        assert_memory_equal(it->data, ref->data, ref->len);
        dlv_item_free(it);
        dlv_item_free(ref);
    }
    /* begin on a buffer that holds bytes is refused, the bytes kept */
    assert_int_equal(o2d_buf_append(&b, body, 5), O2D_OK);
    assert_int_equal(datadog_trace_item_begin(&b, "go", 0), O2D_ERR_INVALID);
    assert_int_equal(b.len, 5);
    o2d_buf_cleanup(&b);
}

static void split_item_edges(void **state)
{
    (void)state;
    struct dlv_item *one = make_item("go", 1, 2, 0);
    struct dlv_item *a = NULL, *b = NULL;
    assert_int_equal(datadog_split_item(one, &a, &b), O2D_ERR_TOO_LARGE);
    struct dlv_item *two = make_item("go", 5, 1, 0);
    assert_int_equal(datadog_split_item(two, &a, &b), O2D_OK);
    assert_int_equal(a->count, 2);
    assert_int_equal(b->count, 3);
    /* the header (the language) goes with each half */
    assert_int_equal(a->head_len, 2);
    assert_memory_equal(a->data, "go", 2);
    assert_memory_equal(b->data, "go", 2);
    Datadog__Trace__TracerPayload *pa =
        datadog__trace__tracer_payload__unpack(NULL, dlv_item_body_len(a), dlv_item_body(a));
    Datadog__Trace__TracerPayload *pb =
        datadog__trace__tracer_payload__unpack(NULL, dlv_item_body_len(b), dlv_item_body(b));
    assert_int_equal(pa->n_chunks, 2);
    assert_int_equal(pb->n_chunks, 3);
    assert_string_equal(pa->hostname, "host-a");
    assert_string_equal(pb->hostname, "host-a");
    datadog__trace__tracer_payload__free_unpacked(pa, NULL);
    datadog__trace__tracer_payload__free_unpacked(pb, NULL);
    dlv_item_free(a);
    dlv_item_free(b);
    /* truncated bytes are refused, not read past */
    two->len -= 3;
    assert_int_equal(datadog_split_item(two, &a, &b), O2D_ERR_INVALID);
    /* allocation failures clean up */
    two->len += 3;
    for (long n = 0; n < 4; n++) {
        o2d_alloc_fail_after(n);
        int rv = datadog_split_item(two, &a, &b);
        o2d_alloc_fail_after(-1);
        if (rv == O2D_OK) {
            dlv_item_free(a);
            dlv_item_free(b);
        } else {
            assert_int_equal(rv, O2D_ERR_NOMEM);
        }
    }
    dlv_item_free(one);
    dlv_item_free(two);
}

static void traces_base_url(void **state)
{
    (void)state;
    struct datadog_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char out[DATADOG_URL_MAX];
    datadog_traces_base(&cfg, out, sizeof(out));
    assert_string_equal(out, "https://trace.agent.datadoghq.com");
    snprintf(cfg.site, sizeof(cfg.site), "ap1.datadoghq.com");
    datadog_traces_base(&cfg, out, sizeof(out));
    assert_string_equal(out, "https://trace.agent.ap1.datadoghq.com");
    snprintf(cfg.traces_endpoint, sizeof(cfg.traces_endpoint), "http://127.0.0.1:9/");
    datadog_traces_base(&cfg, out, sizeof(out));
    assert_string_equal(out, "http://127.0.0.1:9");
    assert_string_equal(dlv_drop_reason_name(DLV_DROP_RETRIES_EXHAUSTED), "retries_exhausted");
    assert_string_equal(dlv_drop_reason_name(99), "unknown");
}

int main(void)
{
    o2d_log_set_level(O2D_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concatenation_decodes),
        cmocka_unit_test(gzip_round_trip_and_limit),
        cmocka_unit_test(one_body_when_it_fits),
        cmocka_unit_test(split_on_payload_boundaries),
        cmocka_unit_test(lone_payload_split_by_chunks),
        cmocka_unit_test(chunk_over_the_limit_dropped),
        cmocka_unit_test(split_item_edges),
        cmocka_unit_test(item_written_in_place),
        cmocka_unit_test(traces_base_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
