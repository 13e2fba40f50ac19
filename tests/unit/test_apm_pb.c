/*
 * test_apm_pb.c: apm_pb.c's TracerPayload bytes against protobuf-c's.
 *
 * - every tests/data/apm fixture, translated: our bytes equal
 *   datadog__trace__tracer_payload__pack's, and protobuf-c's unpack of our bytes gives back the
 *   translated payload field by field;
 * - the same fixtures translated with apm_config.input_utf8_valid on and off give the same
 *   bytes (their strings are valid UTF-8); with invalid UTF-8 the flag off repairs, on not;
 * - built payloads with the cases translation rarely makes: negative and zero numbers, -0.0
 *   and NaN metrics, empty keys and values, meta_struct, span links and events of every value
 *   type, submessages whose length takes more or fewer bytes than the one-pass guess;
 * - the writers given translation's string lengths (apm_pb_tracer_payload_translated,
 *   apm_msgpack_trace_translated) write the same bytes as the ones that measure every string,
 *   on every fixture, also after the payload was changed as apm_sample and others change it
 *   (a value replaced by a longer or shorter one, an entry dropped and the rest moved up, an
 *   entry of another origin added, service and resource replaced).
 */
#include <dirent.h>
#include <math.h>
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
#include "apm_pb.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "otlp.h"

/* ---- field-by-field comparison of a decoded payload with the one written ---- */

static const char *s0(const char *s)
{
    return s != NULL ? s : "";
}

static void same_str(const char *a, const char *b)
{
    assert_string_equal(s0(a), s0(b));
}

static void same_double(double a, double b)
{
    if (isnan(a)) {
        assert_true(isnan(b));
        return;
    }
    assert_true(a == b);
}

static void same_link(const Datadog__Trace__SpanLink *a, const Datadog__Trace__SpanLink *b)
{
    assert_true(a->traceid == b->traceid && a->traceid_high == b->traceid_high &&
                a->spanid == b->spanid && a->flags == b->flags);
    same_str(a->tracestate, b->tracestate);
    assert_int_equal(a->n_attributes, b->n_attributes);
    for (size_t i = 0; i < a->n_attributes; i++) {
        same_str(a->attributes[i]->key, b->attributes[i]->key);
        same_str(a->attributes[i]->value, b->attributes[i]->value);
    }
}

static void same_any(const Datadog__Trace__AttributeAnyValue *a,
                     const Datadog__Trace__AttributeAnyValue *b)
{
    assert_int_equal(a->type, b->type);
    same_str(a->string_value, b->string_value);
    assert_int_equal(a->bool_value != 0, b->bool_value != 0);
    assert_true(a->int_value == b->int_value);
    same_double(a->double_value, b->double_value);
    assert_int_equal(a->array_value != NULL, b->array_value != NULL);
    if (a->array_value != NULL) {
        assert_int_equal(a->array_value->n_values, b->array_value->n_values);
        for (size_t i = 0; i < a->array_value->n_values; i++) {
            const Datadog__Trace__AttributeArrayValue *x = a->array_value->values[i],
                                                      *y = b->array_value->values[i];
            assert_int_equal(x->type, y->type);
            same_str(x->string_value, y->string_value);
            assert_int_equal(x->bool_value != 0, y->bool_value != 0);
            assert_true(x->int_value == y->int_value);
            same_double(x->double_value, y->double_value);
        }
    }
}

static void same_span(const DdSpan *a, const DdSpan *b)
{
    same_str(a->service, b->service);
    same_str(a->name, b->name);
    same_str(a->resource, b->resource);
    same_str(a->type, b->type);
    assert_true(a->traceid == b->traceid && a->spanid == b->spanid && a->parentid == b->parentid);
    assert_true(a->start == b->start && a->duration == b->duration && a->error == b->error);
    assert_int_equal(a->n_meta, b->n_meta);
    for (size_t i = 0; i < a->n_meta; i++) {
        same_str(a->meta[i]->key, b->meta[i]->key);
        same_str(a->meta[i]->value, b->meta[i]->value);
    }
    assert_int_equal(a->n_metrics, b->n_metrics);
    for (size_t i = 0; i < a->n_metrics; i++) {
        same_str(a->metrics[i]->key, b->metrics[i]->key);
        same_double(a->metrics[i]->value, b->metrics[i]->value);
    }
    assert_int_equal(a->n_meta_struct, b->n_meta_struct);
    for (size_t i = 0; i < a->n_meta_struct; i++) {
        same_str(a->meta_struct[i]->key, b->meta_struct[i]->key);
        assert_int_equal(a->meta_struct[i]->value.len, b->meta_struct[i]->value.len);
        if (a->meta_struct[i]->value.len > 0) {
            assert_memory_equal(a->meta_struct[i]->value.data, b->meta_struct[i]->value.data,
                                a->meta_struct[i]->value.len);
        }
    }
    assert_int_equal(a->n_spanlinks, b->n_spanlinks);
    for (size_t i = 0; i < a->n_spanlinks; i++) {
        same_link(a->spanlinks[i], b->spanlinks[i]);
    }
    assert_int_equal(a->n_spanevents, b->n_spanevents);
    for (size_t i = 0; i < a->n_spanevents; i++) {
        const Datadog__Trace__SpanEvent *x = a->spanevents[i], *y = b->spanevents[i];
        assert_true(x->time_unix_nano == y->time_unix_nano);
        same_str(x->name, y->name);
        assert_int_equal(x->n_attributes, y->n_attributes);
        for (size_t j = 0; j < x->n_attributes; j++) {
            same_str(x->attributes[j]->key, y->attributes[j]->key);
            same_any(x->attributes[j]->value, y->attributes[j]->value);
        }
    }
}

static void same_payload(const DdTracerPayload *a, const DdTracerPayload *b)
{
    same_str(a->containerid, b->containerid);
    same_str(a->languagename, b->languagename);
    same_str(a->languageversion, b->languageversion);
    same_str(a->tracerversion, b->tracerversion);
    same_str(a->runtimeid, b->runtimeid);
    same_str(a->env, b->env);
    same_str(a->hostname, b->hostname);
    same_str(a->appversion, b->appversion);
    assert_int_equal(a->n_tags, b->n_tags);
    for (size_t i = 0; i < a->n_tags; i++) {
        same_str(a->tags[i]->key, b->tags[i]->key);
        same_str(a->tags[i]->value, b->tags[i]->value);
    }
    assert_int_equal(a->n_chunks, b->n_chunks);
    for (size_t i = 0; i < a->n_chunks; i++) {
        const DdTraceChunk *x = a->chunks[i], *y = b->chunks[i];
        assert_int_equal(x->priority, y->priority);
        same_str(x->origin, y->origin);
        assert_int_equal(x->droppedtrace != 0, y->droppedtrace != 0);
        assert_int_equal(x->n_tags, y->n_tags);
        for (size_t j = 0; j < x->n_tags; j++) {
            same_str(x->tags[j]->key, y->tags[j]->key);
            same_str(x->tags[j]->value, y->tags[j]->value);
        }
        assert_int_equal(x->n_spans, y->n_spans);
        for (size_t j = 0; j < x->n_spans; j++) {
            same_span(x->spans[j], y->spans[j]);
        }
    }
}

/* Our bytes of tp (appended after a few bytes already in the buffer, as a reused buffer has
 * them) equal protobuf-c's, and decode back to tp. Returns the length. */
static size_t check_payload(const DdTracerPayload *tp)
{
    size_t len = datadog__trace__tracer_payload__get_packed_size(tp);
    uint8_t *want = malloc(len + 1);
    assert_non_null(want);
    assert_int_equal(datadog__trace__tracer_payload__pack(tp, want), len);
    struct o2d_buf b;
    o2d_buf_init(&b, SIZE_MAX / 2);
    assert_int_equal(o2d_buf_append(&b, "xyz", 3), O2D_OK);
    assert_int_equal(apm_pb_tracer_payload(&b, tp), O2D_OK);
    assert_int_equal(b.len - 3, len);
    assert_memory_equal(b.data + 3, want, len);
    DdTracerPayload *back = datadog__trace__tracer_payload__unpack(NULL, len, b.data + 3);
    assert_non_null(back);
    same_payload(tp, back);
    datadog__trace__tracer_payload__free_unpacked(back, NULL);
    o2d_buf_cleanup(&b);
    free(want);
    return len;
}

/* ---- the fixtures ---- */

struct translated {
    struct o2d_arena a;
    struct apm_result res;
};

static void translate_json(struct translated *t, const char *text, const struct apm_config *cfg,
                           int64_t now_ns)
{
    o2d_arena_init(&t->a, 256u << 20);
    void *msg = NULL;
    const char *reason = NULL;
    assert_int_equal(otlp_json_decode(&t->a, OTLP_SIGNAL_TRACES, (const uint8_t *)text,
                                      strlen(text), &msg, &reason),
                     O2D_OK);
    assert_int_equal(apm_translate(&t->a, msg, cfg, now_ns, &t->res, &reason), O2D_OK);
}

/* All payloads' bytes, one after the other. */
static void all_bytes(const struct apm_result *res, struct o2d_buf *out)
{
    for (size_t i = 0; i < res->n_payloads; i++) {
        assert_int_equal(apm_pb_tracer_payload(out, res->payloads[i]), O2D_OK);
    }
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *dir = O2D_TEST_DATA "/apm";
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n > 0);
    int checked = 0;
    size_t bytes = 0, spans = 0;
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
        /* The options that change which fields are written; the others only change values. */
        struct apm_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        json_t *cj = json_object_get(fx, "config");
        cfg.span_name_as_resource_name =
            json_is_true(json_object_get(cj, "span_name_as_resource_name"));
        cfg.compute_top_level_by_span_kind =
            json_is_true(json_object_get(cj, "compute_top_level_by_span_kind"));
        cfg.default_service = json_string_value(json_object_get(cj, "DD_SERVICE"));
        cfg.default_env = json_string_value(json_object_get(cj, "DD_ENV"));
        cfg.default_version = json_string_value(json_object_get(cj, "DD_VERSION"));
        char *text = json_dumps(json_object_get(fx, "input"), JSON_COMPACT);
        struct translated off, on;
        translate_json(&off, text, &cfg, INT64_C(1700000001000000000));
        cfg.input_utf8_valid = 1;
        translate_json(&on, text, &cfg, INT64_C(1700000001000000000));
        for (size_t p = 0; p < off.res.n_payloads; p++) {
            bytes += check_payload(off.res.payloads[p]);
        }
        spans += off.res.spans;
        struct o2d_buf b1, b2;
        o2d_buf_init(&b1, SIZE_MAX / 2);
        o2d_buf_init(&b2, SIZE_MAX / 2);
        all_bytes(&off.res, &b1);
        all_bytes(&on.res, &b2);
        if (b1.len != b2.len || (b1.len > 0 && memcmp(b1.data, b2.data, b1.len) != 0)) {
            fail_msg("%s: input_utf8_valid changes the output", name);
        }
        o2d_buf_cleanup(&b1);
        o2d_buf_cleanup(&b2);
        o2d_arena_cleanup(&off.a);
        o2d_arena_cleanup(&on.a);
        free(text);
        json_decref(fx);
        free(ents[i]);
        checked++;
    }
    free(ents);
    fprintf(stderr, "%d fixtures, %zu spans, %zu bytes identical\n", checked, spans, bytes);
    assert_true(checked >= 90);
    assert_true(spans > (size_t)checked);
}

/* Both pairs of writers (lengths measured, lengths from translation) give the same bytes for
 * every payload and chunk of res. */
static void same_with_lengths(const struct apm_result *res, const char *name)
{
    struct o2d_buf a, b;
    o2d_buf_init(&a, SIZE_MAX / 2);
    o2d_buf_init(&b, SIZE_MAX / 2);
    for (size_t i = 0; i < res->n_payloads; i++) {
        const DdTracerPayload *tp = res->payloads[i];
        assert_int_equal(apm_pb_tracer_payload(&a, tp), O2D_OK);
        assert_int_equal(apm_pb_tracer_payload_translated(&b, tp), O2D_OK);
        for (size_t c = 0; c < tp->n_chunks; c++) {
            assert_int_equal(apm_msgpack_trace(&a, tp, tp->chunks[c]), O2D_OK);
            assert_int_equal(apm_msgpack_trace_translated(&b, tp, tp->chunks[c]), O2D_OK);
        }
    }
    if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0)) {
        fail_msg("%s: the bytes written with translation's lengths differ", name);
    }
    o2d_buf_cleanup(&a);
    o2d_buf_cleanup(&b);
}

/* Changes every span of res as code after translation may: meta value 0 replaced by a longer
 * string and value 1 by a shorter one, entry 2 dropped (the rest moved up), an entry of its own
 * added, service and resource replaced. */
static void change_spans(struct o2d_arena *a, struct apm_result *res)
{
    static char longer[] = "a value longer than any the fixtures' first meta entry holds, "
                           "to move what follows";
    for (size_t i = 0; i < res->n_payloads; i++) {
        DdTracerPayload *tp = res->payloads[i];
        for (size_t c = 0; c < tp->n_chunks; c++) {
            for (size_t j = 0; j < tp->chunks[c]->n_spans; j++) {
                DdSpan *s = tp->chunks[c]->spans[j];
                if (s->n_meta > 0) {
                    s->meta[0]->value = longer;
                }
                if (s->n_meta > 1) {
                    s->meta[1]->value = "x";
                }
                if (s->n_meta > 2) {
                    memmove(&s->meta[2], &s->meta[3], (s->n_meta - 3) * sizeof(*s->meta));
                    s->n_meta--;
                }
                Datadog__Trace__Span__MetaEntry **np =
                    o2d_arena_alloc(a, (s->n_meta + 1) * sizeof(*np));
                Datadog__Trace__Span__MetaEntry *e = o2d_arena_alloc(a, sizeof(*e));
                assert_non_null(np);
                assert_non_null(e);
                datadog__trace__span__meta_entry__init(e);
                e->key = "added.key";
                e->value = "added value";
                memcpy(np, s->meta, s->n_meta * sizeof(*np));
                np[s->n_meta++] = e;
                s->meta = np;
                s->service = "another-service";
                s->resource = "";
            }
        }
    }
}

static void test_translated_lengths(void **state)
{
    (void)state;
    const char *dir = O2D_TEST_DATA "/apm";
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n > 0);
    int checked = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        size_t len = strlen(name);
        if (len >= 6 && strcmp(name + len - 5, ".json") == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            json_error_t jerr;
            json_t *fx = json_load_file(path, 0, &jerr);
            assert_non_null(fx);
            struct apm_config cfg;
            memset(&cfg, 0, sizeof(cfg));
            json_t *cj = json_object_get(fx, "config");
            cfg.span_name_as_resource_name =
                json_is_true(json_object_get(cj, "span_name_as_resource_name"));
            cfg.compute_top_level_by_span_kind =
                json_is_true(json_object_get(cj, "compute_top_level_by_span_kind"));
            char *text = json_dumps(json_object_get(fx, "input"), JSON_COMPACT);
            struct translated t;
            translate_json(&t, text, &cfg, INT64_C(1700000001000000000));
            same_with_lengths(&t.res, name);
            change_spans(&t.a, &t.res);
            same_with_lengths(&t.res, name);
            o2d_arena_cleanup(&t.a);
            free(text);
            json_decref(fx);
            checked++;
        }
        free(ents[i]);
    }
    free(ents);
    assert_true(checked >= 90);
}

/* The value of meta[k] of the first span of a request whose one attribute k holds `val` (as
 * bytes, put into the decoded request), translated with the flag as given. */
static void translate_value(const char *val, size_t n, int utf8_valid, char *out, size_t outsz)
{
    struct apm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.input_utf8_valid = utf8_valid;
    const char *text =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
        "\"72df520af2bde7a5240031ead750e5f3\",\"spanId\":\"0000000000000001\",\"name\":\"x\","
        "\"kind\":2,\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":"
        "\"1700000000000000001\",\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":"
        "\"PLACEHOLDER\"}}]}]}]}]}";
    struct o2d_arena a;
    o2d_arena_init(&a, 1u << 20);
    void *msg = NULL;
    const char *reason = NULL;
    assert_int_equal(otlp_json_decode(&a, OTLP_SIGNAL_TRACES, (const uint8_t *)text, strlen(text),
                                      &msg, &reason),
                     O2D_OK);
    OtlpTraceReq *req = msg;
    OtlpKeyValue *kv = req->resource_spans[0]->scope_spans[0]->spans[0]->attributes[0];
    assert_true(n <= strlen(kv->value->string_value));
    memcpy(kv->value->string_value, val, n);
    kv->value->string_value[n] = '\0';
    struct apm_result res;
    assert_int_equal(apm_translate(&a, req, &cfg, 0, &res, &reason), O2D_OK);
    const DdSpan *s = res.payloads[0]->chunks[0]->spans[0];
    out[0] = '\0';
    for (size_t i = 0; i < s->n_meta; i++) {
        if (strcmp(s->meta[i]->key, "k") == 0) {
            snprintf(out, outsz, "%s", s->meta[i]->value);
        }
    }
    check_payload(res.payloads[0]);
    o2d_arena_cleanup(&a);
}

/* With the flag off invalid UTF-8 is repaired; with it on (the caller's promise broken) the
 * bytes pass as they are: the flag does skip the pass. Valid text is the same either way. */
static void test_utf8_flag(void **state)
{
    (void)state;
    char off[64], on[64];
    translate_value("P\xff\xfe"
                    "CE",
                    5, 0, off, sizeof(off));
    assert_string_equal(off, "P\xef\xbf\xbd\xef\xbf\xbd"
                             "CE");
    translate_value("P\xff\xfe"
                    "CE",
                    5, 1, on, sizeof(on));
    assert_string_equal(on, "P\xff\xfe"
                            "CE");
    translate_value("h\xc3\xa9\xe2\x82\xac", 6, 0, off, sizeof(off));
    translate_value("h\xc3\xa9\xe2\x82\xac", 6, 1, on, sizeof(on));
    assert_string_equal(off, "h\xc3\xa9\xe2\x82\xac");
    assert_string_equal(on, off);
}

/* ---- built payloads ---- */

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_edge_cases(void **state)
{
    (void)state;
    char *mid = repeat('m', 200);      /* an entry over 127 bytes: its guess is too small */
    char *big = repeat('b', 3u << 20); /* a span and chunk over 2 MiB: 4-byte lengths */
    uint8_t blob[] = {0, 1, 2, 255};

    Datadog__Trace__Span__MetaEntry me[5];
    Datadog__Trace__Span__MetaEntry *mp[5];
    const char *mk[5] = {"a", "", "c", NULL, "big"};
    const char *mv[5] = {"", "v", mid, "x", big};
    for (int i = 0; i < 5; i++) {
        datadog__trace__span__meta_entry__init(&me[i]);
        me[i].key = (char *)mk[i];
        me[i].value = (char *)mv[i];
        mp[i] = &me[i];
    }
    Datadog__Trace__Span__MetricsEntry xe[5];
    Datadog__Trace__Span__MetricsEntry *xp[5];
    const double xv[5] = {0.0, -0.0, NAN, -1.5, 1e300};
    for (int i = 0; i < 5; i++) {
        datadog__trace__span__metrics_entry__init(&xe[i]);
        xe[i].key = i == 2 ? "" : "m";
        xe[i].value = xv[i];
        xp[i] = &xe[i];
    }
    Datadog__Trace__Span__MetaStructEntry ms[2];
    Datadog__Trace__Span__MetaStructEntry *msp[2] = {&ms[0], &ms[1]};
    datadog__trace__span__meta_struct_entry__init(&ms[0]);
    datadog__trace__span__meta_struct_entry__init(&ms[1]);
    ms[0].key = "appsec";
    ms[0].value.data = blob;
    ms[0].value.len = sizeof(blob);
    ms[1].key = "empty";

    Datadog__Trace__SpanLink__AttributesEntry la;
    Datadog__Trace__SpanLink__AttributesEntry *lap = &la;
    datadog__trace__span_link__attributes_entry__init(&la);
    la.key = "lk";
    la.value = "lv";
    Datadog__Trace__SpanLink l[2];
    Datadog__Trace__SpanLink *lp[2] = {&l[0], &l[1]};
    datadog__trace__span_link__init(&l[0]);
    datadog__trace__span_link__init(&l[1]);
    l[0].traceid = UINT64_MAX;
    l[0].traceid_high = 1;
    l[0].spanid = 300;
    l[0].attributes = &lap;
    l[0].n_attributes = 1;
    l[0].tracestate = "dd=s:1";
    l[0].flags = 0x80000001u;

    Datadog__Trace__AttributeArrayValue av[2];
    Datadog__Trace__AttributeArrayValue *avp[2] = {&av[0], &av[1]};
    datadog__trace__attribute_array_value__init(&av[0]);
    datadog__trace__attribute_array_value__init(&av[1]);
    av[0].type = DATADOG__TRACE__ATTRIBUTE_ARRAY_VALUE__ATTRIBUTE_ARRAY_VALUE_TYPE__INT_VALUE;
    av[0].int_value = -7;
    av[1].type = DATADOG__TRACE__ATTRIBUTE_ARRAY_VALUE__ATTRIBUTE_ARRAY_VALUE_TYPE__DOUBLE_VALUE;
    av[1].double_value = 2.5;
    Datadog__Trace__AttributeArray arr;
    datadog__trace__attribute_array__init(&arr);
    arr.values = avp;
    arr.n_values = 2;
    Datadog__Trace__AttributeAnyValue any[4];
    for (int i = 0; i < 4; i++) {
        datadog__trace__attribute_any_value__init(&any[i]);
    }
    any[0].string_value = "s";
    any[1].type = DATADOG__TRACE__ATTRIBUTE_ANY_VALUE__ATTRIBUTE_ANY_VALUE_TYPE__BOOL_VALUE;
    any[1].bool_value = 1;
    any[2].type = DATADOG__TRACE__ATTRIBUTE_ANY_VALUE__ATTRIBUTE_ANY_VALUE_TYPE__ARRAY_VALUE;
    any[2].array_value = &arr;
    any[3].type = DATADOG__TRACE__ATTRIBUTE_ANY_VALUE__ATTRIBUTE_ANY_VALUE_TYPE__INT_VALUE;
    any[3].int_value = INT64_MIN;
    Datadog__Trace__SpanEvent__AttributesEntry ea[4];
    Datadog__Trace__SpanEvent__AttributesEntry *eap[4];
    for (int i = 0; i < 4; i++) {
        datadog__trace__span_event__attributes_entry__init(&ea[i]);
        ea[i].key = i == 0 ? "s" : i == 1 ? "b" : i == 2 ? "arr" : "i";
        ea[i].value = &any[i];
        eap[i] = &ea[i];
    }
    Datadog__Trace__SpanEvent ev;
    Datadog__Trace__SpanEvent *evp = &ev;
    datadog__trace__span_event__init(&ev);
    ev.time_unix_nano = 1700000000000000000ull;
    ev.name = "exception";
    ev.attributes = eap;
    ev.n_attributes = 4;

    DdSpan sp[3];
    DdSpan *spp[3] = {&sp[0], &sp[1], &sp[2]};
    for (int i = 0; i < 3; i++) {
        datadog__trace__span__init(&sp[i]);
    }
    /* a span with everything, and negative numbers */
    sp[0].service = "svc";
    sp[0].name = "op";
    sp[0].resource = "GET /";
    sp[0].type = "web";
    sp[0].traceid = 1;
    sp[0].spanid = UINT64_MAX;
    sp[0].start = -5;
    sp[0].duration = INT64_MAX;
    sp[0].error = -1;
    sp[0].meta = mp;
    sp[0].n_meta = 4; /* without the big one */
    sp[0].metrics = xp;
    sp[0].n_metrics = 5;
    sp[0].meta_struct = msp;
    sp[0].n_meta_struct = 2;
    sp[0].spanlinks = lp;
    sp[0].n_spanlinks = 2;
    sp[0].spanevents = &evp;
    sp[0].n_spanevents = 1;
    /* an empty span: its length (0) takes fewer bytes than the guess */
    /* a big one: its length takes more */
    sp[2].meta = &mp[4];
    sp[2].n_meta = 1;

    Datadog__Trace__TraceChunk__TagsEntry ct;
    Datadog__Trace__TraceChunk__TagsEntry *ctp = &ct;
    datadog__trace__trace_chunk__tags_entry__init(&ct);
    ct.key = "_dd.p.dm";
    ct.value = "-4";
    DdTraceChunk ch[3];
    DdTraceChunk *chp[3] = {&ch[0], &ch[1], &ch[2]};
    for (int i = 0; i < 3; i++) {
        datadog__trace__trace_chunk__init(&ch[i]);
    }
    ch[0].priority = -1;
    ch[0].origin = "lambda";
    ch[0].spans = spp;
    ch[0].n_spans = 2;
    ch[0].tags = &ctp;
    ch[0].n_tags = 1;
    ch[0].droppedtrace = 1;
    /* ch[1] empty */
    ch[2].spans = &spp[2];
    ch[2].n_spans = 1;

    Datadog__Trace__TracerPayload__TagsEntry pt;
    Datadog__Trace__TracerPayload__TagsEntry *ptp = &pt;
    datadog__trace__tracer_payload__tags_entry__init(&pt);
    pt.key = "_dd.tags.container";
    pt.value = "a:b";
    DdTracerPayload tp;
    datadog__trace__tracer_payload__init(&tp);
    check_payload(&tp); /* nothing at all: no bytes */
    tp.containerid = "cid";
    tp.languagename = "python";
    tp.languageversion = "";
    tp.tracerversion = "otlp-1";
    tp.runtimeid = NULL;
    tp.env = "prod";
    tp.hostname = "h";
    tp.appversion = "1.0";
    tp.tags = &ptp;
    tp.n_tags = 1;
    tp.chunks = chp;
    tp.n_chunks = 2;
    check_payload(&tp);
    tp.n_chunks = 3;
    assert_true(check_payload(&tp) > (3u << 20));

    /* past the buffer's maximum: an error, the buffer as it was */
    struct o2d_buf b;
    o2d_buf_init(&b, 1000);
    assert_int_equal(o2d_buf_append(&b, "ab", 2), O2D_OK);
    assert_int_equal(apm_pb_tracer_payload(&b, &tp), O2D_ERR_TOO_LARGE);
    assert_int_equal(b.len, 2);
    o2d_buf_cleanup(&b);
    free(mid);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_utf8_flag),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_translated_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
