/*
 * test_apm_msgpack.c: apm_msgpack.c's own msgpack writer against the msgpack-c packer it
 * replaced (kept below as the reference, as apm_msgpack.c was before): the same bytes for
 * every chunk of every tests/data/apm fixture, and for built spans with the values whose
 * msgpack forms change with size (fixstr/str8/16/32, fixmap/map16, negative and large
 * integers, bin8/16).
 */
#include <dirent.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "apm.h"
#include "apm_msgpack.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "o2d_msgpack.h"
#include "otlp.h"

#define PRIORITY_KEY "_sampling_priority_v1"
#define HOSTNAME_KEY "_dd.hostname"
#define ORIGIN_KEY   "_dd.origin"

/* ---- the reference: apm_msgpack.c as it was, on msgpack-c ---- */

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

static int ref_trace(struct o2d_buf *out, const DdTracerPayload *tp, const DdTraceChunk *ch)
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

/* ---- comparisons ---- */

static void same_bytes(const DdTracerPayload *tp, const DdTraceChunk *ch)
{
    struct o2d_buf a, b;
    o2d_buf_init(&a, SIZE_MAX / 2);
    o2d_buf_init(&b, SIZE_MAX / 2);
    assert_int_equal(apm_msgpack_trace(&a, tp, ch), O2D_OK);
    assert_int_equal(ref_trace(&b, tp, ch), O2D_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    o2d_buf_cleanup(&a);
    o2d_buf_cleanup(&b);
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *dir = O2D_TEST_DATA "/apm";
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n > 0);
    int checked = 0;
    size_t chunks = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        size_t len = strlen(name);
        if (len < 6 || strcmp(name + len - 5, ".json") != 0) {
            free(ents[i]);
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        json_error_t jerr;
        json_t *fx = json_load_file(path, 0, &jerr);
        assert_non_null(fx);
        char *text = json_dumps(json_object_get(fx, "input"), JSON_COMPACT);
        struct apm_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        struct o2d_arena a;
        o2d_arena_init(&a, 256u << 20);
        void *msg = NULL;
        const char *reason = NULL;
        assert_int_equal(otlp_json_decode(&a, OTLP_SIGNAL_TRACES, (const uint8_t *)text,
                                          strlen(text), &msg, &reason),
                         O2D_OK);
        struct apm_result res;
        assert_int_equal(apm_translate(&a, msg, &cfg, INT64_C(1700000001000000000), &res, &reason),
                         O2D_OK);
        for (size_t p = 0; p < res.n_payloads; p++) {
            for (size_t c = 0; c < res.payloads[p]->n_chunks; c++) {
                same_bytes(res.payloads[p], res.payloads[p]->chunks[c]);
                chunks++;
            }
        }
        o2d_arena_cleanup(&a);
        free(text);
        json_decref(fx);
        free(ents[i]);
        checked++;
    }
    free(ents);
    fprintf(stderr, "%d fixtures, %zu chunks identical\n", checked, chunks);
    assert_true(checked >= 90);
    assert_true(chunks >= (size_t)checked);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_sizes(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    enum { NL = sizeof(lens) / sizeof(lens[0]) };
    char *strs[NL];
    Datadog__Trace__Span__MetaEntry me[NL * 3];
    Datadog__Trace__Span__MetaEntry *mp[NL * 3];
    for (size_t i = 0; i < NL; i++) {
        strs[i] = repeat('a' + (char)i, lens[i]);
    }
    for (size_t i = 0; i < NL * 3; i++) {
        datadog__trace__span__meta_entry__init(&me[i]);
        me[i].key = strs[i % NL];
        me[i].value = strs[(i + 3) % NL];
        mp[i] = &me[i];
    }
    static const double dv[] = {0, -0.0, 1.5, 1e300};
    Datadog__Trace__Span__MetricsEntry xe[4];
    Datadog__Trace__Span__MetricsEntry *xp[4];
    for (int i = 0; i < 4; i++) {
        datadog__trace__span__metrics_entry__init(&xe[i]);
        xe[i].key = i == 0 ? PRIORITY_KEY : "m";
        xe[i].value = dv[i];
        xp[i] = &xe[i];
    }
    uint8_t blob[300];
    memset(blob, 7, sizeof(blob));
    Datadog__Trace__Span__MetaStructEntry ms[3];
    Datadog__Trace__Span__MetaStructEntry *msp[3] = {&ms[0], &ms[1], &ms[2]};
    static const size_t bl[3] = {0, 100, 300};
    for (int i = 0; i < 3; i++) {
        datadog__trace__span__meta_struct_entry__init(&ms[i]);
        ms[i].key = "k";
        ms[i].value.data = blob;
        ms[i].value.len = bl[i];
    }
    Datadog__Trace__SpanLink l;
    Datadog__Trace__SpanLink *lp = &l;
    datadog__trace__span_link__init(&l);
    l.traceid = 200;
    l.traceid_high = 70000;
    l.spanid = UINT64_MAX;
    l.flags = 0x80000001u;
    l.tracestate = "x";
    static const int64_t iv[] = {0,
                                 1,
                                 127,
                                 128,
                                 255,
                                 256,
                                 65535,
                                 65536,
                                 -1,
                                 -32,
                                 -33,
                                 -128,
                                 -129,
                                 -32768,
                                 -32769,
                                 INT32_MIN,
                                 (int64_t)INT32_MIN - 1,
                                 INT64_MIN,
                                 INT64_MAX,
                                 (int64_t)1 << 32};
    enum { NI = sizeof(iv) / sizeof(iv[0]) };
    DdSpan sp[NI];
    DdSpan *spp[NI];
    for (size_t i = 0; i < NI; i++) {
        datadog__trace__span__init(&sp[i]);
        sp[i].service = strs[i % NL];
        sp[i].start = iv[i];
        sp[i].duration = iv[(i + 3) % NI];
        sp[i].error = (int32_t)iv[i];
        sp[i].traceid = (uint64_t)iv[i];
        sp[i].spanid = (uint64_t)iv[(i + 1) % NI];
        sp[i].parentid = i == 3 ? 0 : (uint64_t)iv[(i + 2) % NI];
        sp[i].meta = mp;
        sp[i].n_meta = i % (NL * 3);
        sp[i].metrics = xp;
        sp[i].n_metrics = i % 5;
        sp[i].meta_struct = msp;
        sp[i].n_meta_struct = i % 4;
        sp[i].spanlinks = &lp;
        sp[i].n_spanlinks = i % 2;
        spp[i] = &sp[i];
    }
    Datadog__Trace__TraceChunk__TagsEntry ct[2];
    Datadog__Trace__TraceChunk__TagsEntry *ctp[2] = {&ct[0], &ct[1]};
    datadog__trace__trace_chunk__tags_entry__init(&ct[0]);
    datadog__trace__trace_chunk__tags_entry__init(&ct[1]);
    ct[0].key = "_dd.p.dm";
    ct[0].value = "-4";
    ct[1].key = "_dd.otlp_sr";
    ct[1].value = "1.00";
    DdTraceChunk ch;
    datadog__trace__trace_chunk__init(&ch);
    ch.spans = spp;
    ch.n_spans = NI;
    ch.tags = ctp;
    ch.n_tags = 2;
    ch.priority = -1;
    ch.origin = "lambda";
    DdTracerPayload tp;
    datadog__trace__tracer_payload__init(&tp);
    tp.hostname = "host";
    same_bytes(&tp, &ch);
    ch.n_spans = 1;
    same_bytes(NULL, &ch);
    ch.n_spans = 0;
    same_bytes(&tp, &ch);
    for (size_t i = 0; i < NL; i++) {
        free(strs[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
