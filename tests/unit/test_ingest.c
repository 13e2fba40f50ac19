/*
 * test_ingest.c: ingest_request's memory accounting. What a request grows into (its inflated
 * body, the blocks its decoded structures take) is charged to memory_limit while it is
 * served: "too large" when one request alone needs more than the whole budget, "retry later"
 * when others hold it, and every byte is given back when the request is done. An OTLP/JSON
 * body is charged once more for its reader's string buffer. The bodies are
 * built here with protobuf-c and zlib, none of otel2dd's encoders.
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

#include "config.h"
#include "ingest.h"
#include "o2d.h"
#include "otlp.h"
#include "pipeline.h"

#define MIB   (1024u * 1024)
#define ATTRS 20

struct fixture {
    struct o2d_config cfg;
    struct pipeline *p;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    o2d_config_defaults(&f->cfg);
    f->cfg.debug_verbosity = O2D_DEBUG_QUIET;
    assert_int_equal(pipeline_new(&f->p, &f->cfg), O2D_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pipeline_free(f->p);
    free(f);
    return 0;
}

/* n spans of ATTRS int attributes with one-byte keys: about 8 bytes on the wire each, and
 * some 100 bytes once decoded (KeyValue, AnyValue, key, pointer). Caller frees. */
static uint8_t *trace_body(size_t n, size_t *len)
{
    OtlpSpan *spans = calloc(n, sizeof(*spans));
    OtlpSpan **sp = calloc(n, sizeof(*sp));
    OtlpKeyValue *kv = calloc(ATTRS, sizeof(*kv));
    OtlpKeyValue **kvp = calloc(ATTRS, sizeof(*kvp));
    OtlpAnyValue *av = calloc(ATTRS, sizeof(*av));
    assert_true(spans && sp && kv && kvp && av);
    static uint8_t trace_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static uint8_t span_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (size_t a = 0; a < ATTRS; a++) {
        opentelemetry__proto__common__v1__any_value__init(&av[a]);
        av[a].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        av[a].int_value = (int64_t)a;
        opentelemetry__proto__common__v1__key_value__init(&kv[a]);
        kv[a].key = "k";
        kv[a].value = &av[a];
        kvp[a] = &kv[a];
    }
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        spans[i].trace_id.data = trace_id;
        spans[i].trace_id.len = 16;
        spans[i].span_id.data = span_id;
        spans[i].span_id.len = 8;
        spans[i].name = "s";
        spans[i].start_time_unix_nano = 1;
        spans[i].end_time_unix_nano = 2;
        spans[i].n_attributes = ATTRS;
        spans[i].attributes = kvp;
        sp[i] = &spans[i];
    }
    OtlpScopeSpans ss;
    opentelemetry__proto__trace__v1__scope_spans__init(&ss);
    ss.n_spans = n;
    ss.spans = sp;
    OtlpScopeSpans *ssp = &ss;
    OtlpResourceSpans rs;
    opentelemetry__proto__trace__v1__resource_spans__init(&rs);
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    OtlpResourceSpans *rsp = &rs;
    OtlpTraceReq req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    protobuf_c_message_pack(&req.base, out);
    free(spans);
    free(sp);
    free(kv);
    free(kvp);
    free(av);
    return out;
}

static uint8_t *gzip_of(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len);
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* Whether the whole budget is free again: nothing a request took is still held. */
static void assert_all_given_back(struct ingest *ing, size_t limit)
{
    assert_int_equal(ingest_reserve(ing, limit), O2D_OK);
    ingest_release(ing, limit);
}

static int send(struct ingest *ing, enum o2d_compression comp, const uint8_t *body, size_t len,
                struct ingest_result *res)
{
    return ingest_request(ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, comp,
                          body, len, 20 * MIB, res);
}

static void decoded_structures_count(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *body = trace_body(2000, &len); /* ~350 KB, several MiB decoded */
    assert_true(len < MIB);
    struct ingest_result res;

    /* One request alone needs more than a 2 MiB budget: too large, and nothing stays held. */
    struct ingest *small = NULL;
    assert_int_equal(ingest_new(&small, pipeline_ingest_submit, f->p, 2 * MIB), O2D_OK);
    assert_int_equal(send(small, O2D_COMP_NONE, body, len, &res), O2D_ERR_TOO_LARGE);
    assert_non_null(strstr(res.reason, "memory_limit_mib"));
    assert_all_given_back(small, 2 * MIB);
    ingest_free(small);

    /* With room, it is accepted; while others hold the room, "retry later". */
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, pipeline_ingest_submit, f->p, 64 * MIB), O2D_OK);
    assert_int_equal(send(ing, O2D_COMP_NONE, body, len, &res), O2D_OK);
    assert_int_equal(res.accepted, 2000);
    assert_all_given_back(ing, 64 * MIB);
    assert_int_equal(ingest_reserve(ing, 63 * MIB), O2D_OK);
    assert_int_equal(send(ing, O2D_COMP_NONE, body, len, &res), O2D_ERR_BUSY);
    assert_non_null(strstr(res.reason, "retry later"));
    ingest_release(ing, 63 * MIB);
    assert_all_given_back(ing, 64 * MIB);
    assert_int_equal(send(ing, O2D_COMP_NONE, body, len, &res), O2D_OK);
    assert_all_given_back(ing, 64 * MIB);
    ingest_free(ing);
    free(body);
}

static void inflated_body_counts(void **state)
{
    struct fixture *f = *state;
    size_t len, zlen;
    uint8_t *body = trace_body(10000, &len); /* ~1.7 MB, compresses to a few KB */
    uint8_t *z = gzip_of(body, len, &zlen);
    assert_true(zlen < len / 20);
    struct ingest_result res;

    /* The inflated body alone is larger than a 1 MiB budget. */
    struct ingest *small = NULL;
    assert_int_equal(ingest_new(&small, pipeline_ingest_submit, f->p, MIB), O2D_OK);
    assert_int_equal(send(small, O2D_COMP_GZIP, z, zlen, &res), O2D_ERR_TOO_LARGE);
    assert_all_given_back(small, MIB);
    ingest_free(small);

    /* Room for it: accepted; the room taken: retry later, before anything is inflated. */
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, pipeline_ingest_submit, f->p, 128 * MIB), O2D_OK);
    assert_int_equal(send(ing, O2D_COMP_GZIP, z, zlen, &res), O2D_OK);
    assert_int_equal(res.accepted, 10000);
    assert_int_equal(ingest_reserve(ing, 127 * MIB), O2D_OK);
    assert_int_equal(send(ing, O2D_COMP_GZIP, z, zlen, &res), O2D_ERR_BUSY);
    ingest_release(ing, 127 * MIB);
    assert_all_given_back(ing, 128 * MIB);

    /* Two members, the trailer announcing only the small second one: inflated again
     * within the size limit, accepted whole. */
    size_t slen, szlen;
    uint8_t *sbody = trace_body(1, &slen);
    uint8_t *sz = gzip_of(sbody, slen, &szlen);
    uint8_t *two = malloc(zlen + szlen);
    assert_non_null(two);
    memcpy(two, z, zlen);
    memcpy(two + zlen, sz, szlen);
    assert_int_equal(send(ing, O2D_COMP_GZIP, two, zlen + szlen, &res), O2D_OK);
    assert_int_equal(res.accepted, 10001);
    assert_all_given_back(ing, 128 * MIB);
    ingest_free(ing);
    free(two);
    free(sz);
    free(sbody);
    free(z);
    free(body);
}

static void json_reader_buffer_counts(void **state)
{
    struct fixture *f = *state;
    /* One span whose name is a 1 MiB string full of escapes: the reader unescapes it into a
     * buffer outside the arena, charged at the body's size. */
    size_t n = MIB;
    char *body = malloc(n + 256);
    assert_non_null(body);
    int h = snprintf(body, 256,
                     "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                     "\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
                     "\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\",\"name\":\"");
    size_t len = (size_t)h;
    while (len + 2 < n) {
        body[len++] = '\\';
        body[len++] = 'n';
    }
    len += (size_t)snprintf(body + len, 256, "\"}]}]}]}");
    struct ingest_result res;

    /* The body and its decoded string fit in 3 MiB; with the reader's buffer they do not. */
    struct ingest *small = NULL;
    assert_int_equal(ingest_new(&small, pipeline_ingest_submit, f->p, 3 * MIB), O2D_OK);
    assert_int_equal(ingest_request(small, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON,
                                    O2D_COMP_NONE, (const uint8_t *)body, len, 20 * MIB, &res),
                     O2D_ERR_TOO_LARGE);
    assert_non_null(strstr(res.reason, "memory_limit_mib"));
    assert_all_given_back(small, 3 * MIB);
    ingest_free(small);

    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, pipeline_ingest_submit, f->p, 8 * MIB), O2D_OK);
    assert_int_equal(ingest_request(ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_JSON,
                                    O2D_COMP_NONE, (const uint8_t *)body, len, 20 * MIB, &res),
                     O2D_OK);
    assert_int_equal(res.accepted, 1);
    assert_all_given_back(ing, 8 * MIB);
    ingest_free(ing);
    free(body);
}

/* The ids a submit callback saw: each request decoded gets its own, kept to delivery. */
struct ids_seen {
    uint64_t ids[8];
    size_t n;
};

static int record_id(void *ctx, enum o2d_transport tr, const struct otlp_request *req)
{
    struct ids_seen *s = ctx;
    (void)tr;
    if (s->n < 8) {
        s->ids[s->n++] = req->id;
    }
    return O2D_OK;
}

static void each_request_gets_an_id(void **state)
{
    (void)state;
    size_t len;
    uint8_t *body = trace_body(3, &len);
    struct ids_seen seen = {.n = 0};
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, record_id, &seen, 8 * MIB), O2D_OK);
    struct ingest_result res;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(send(ing, O2D_COMP_NONE, body, len, &res), O2D_OK);
    }
    assert_int_equal(seen.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(seen.ids[i] != 0);
        for (size_t j = 0; j < i; j++) {
            assert_true(seen.ids[i] != seen.ids[j]);
        }
    }
    ingest_free(ing);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(decoded_structures_count, setup, teardown),
        cmocka_unit_test(each_request_gets_an_id),
        cmocka_unit_test_setup_teardown(inflated_body_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(json_reader_buffer_counts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
