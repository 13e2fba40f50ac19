/*
 * test_auth.c: the bearer token store (collector/receivers/auth.c) and the per-tenant share of
 * the memory budget it feeds (ingest.c): the entry grammar (o2d_config_parse_token_entry),
 * header values right and wrong, tenants, the token file read at start, re-read when it
 * changes and kept when it becomes unusable, and a tenant held to its share while another
 * takes what it needs, by its token or by its service.name. No receiver and no pipeline (a
 * submit function of the test's own stands in for it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>

#include "auth.h"
#include "config.h"
#include "ingest.h"
#include "o2d.h"
#include "otlp.h"
#include "prom.h"

#define MIB ((size_t)1 << 20)

static int check(struct auth *a, const char *v, int *tenant, enum auth_failure *why)
{
    const char *reason = NULL;
    int rv = auth_check(a, v, v != NULL ? strlen(v) : 0, tenant, why, &reason);
    if (rv != O2D_OK) {
        assert_non_null(reason);
    }
    return rv;
}

static void entry_grammar(void **state)
{
    (void)state;
    const char *t, *k, *why;
    size_t tl, kl;
    assert_int_equal(o2d_config_parse_token_entry("abc", 3, &t, &tl, &k, &kl, &why), O2D_OK);
    assert_null(t);
    assert_int_equal(kl, 3);
    assert_int_equal(
        o2d_config_parse_token_entry("team-a:Zm9v+/_.~-==", 19, &t, &tl, &k, &kl, &why), O2D_OK);
    assert_int_equal(tl, 6);
    assert_memory_equal(t, "team-a", 6);
    assert_int_equal(kl, 12);
    assert_memory_equal(k, "Zm9v+/_.~-==", 12);
    static const char *const bad[] = {"",     ":tok", "a:",    "a b:tok", "tok en",
                                      "=abc", "ab=c", "a:b:c", "tök",     "a\tb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(
            o2d_config_parse_token_entry(bad[i], strlen(bad[i]), &t, &tl, &k, &kl, &why),
            O2D_ERR_CONFIG);
        assert_non_null(why);
        /* The reason never quotes the entry. */
        if (strlen(bad[i]) > 2) {
            assert_null(strstr(why, bad[i]));
        }
    }
    char longtok[300];
    memset(longtok, 'a', sizeof(longtok));
    assert_int_equal(o2d_config_parse_token_entry(longtok, 255, &t, &tl, &k, &kl, &why), O2D_OK);
    assert_int_equal(o2d_config_parse_token_entry(longtok, 256, &t, &tl, &k, &kl, &why),
                     O2D_ERR_CONFIG);
}

static void header_values(void **state)
{
    (void)state;
    struct auth *a = NULL;
    char err[256];
    const char *entries[] = {"appA:tokA", "tokB", "appB:tokC", "appA:tokD"};
    assert_int_equal(auth_new(&a, NULL, entries, 4, "", err, sizeof(err)), O2D_OK);
    int tenant = 99;
    enum auth_failure why;
    assert_int_equal(check(a, "Bearer tokA", &tenant, &why), O2D_OK);
    assert_int_equal(tenant, 0);
    assert_int_equal(check(a, "Bearer tokB", &tenant, &why), O2D_OK);
    assert_int_equal(tenant, -1);
    assert_int_equal(check(a, "Bearer tokC", &tenant, &why), O2D_OK);
    assert_int_equal(tenant, 1);
    /* Two tokens of one tenant: one name, one index. */
    assert_int_equal(check(a, "Bearer tokD", &tenant, &why), O2D_OK);
    assert_int_equal(tenant, 0);
    assert_int_equal(auth_tenant_count(a), 2);
    char name[AUTH_TENANT_MAX + 1];
    assert_string_equal(auth_tenant_name(a, 1, name), "appB");
    assert_string_equal(auth_tenant_name(a, 7, name), "");
    assert_int_equal(auth_tenant_find(a, "appB", 4), 1);
    assert_int_equal(auth_tenant_find(a, "appC", 4), -1);
    /* The scheme in any case, blanks around and between. */
    assert_int_equal(check(a, "bearer tokA", &tenant, &why), O2D_OK);
    assert_int_equal(check(a, "  BEARER   tokA  ", &tenant, &why), O2D_OK);
    /* Missing, empty, another scheme, no token, a wrong one, a prefix, a longer one. */
    assert_int_equal(check(a, NULL, &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(why, AUTH_FAIL_MISSING);
    assert_int_equal(tenant, -1);
    assert_int_equal(check(a, "   ", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(why, AUTH_FAIL_MISSING);
    assert_int_equal(check(a, "Basic tokA", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(why, AUTH_FAIL_SCHEME);
    assert_int_equal(check(a, "Bearer", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(why, AUTH_FAIL_SCHEME);
    assert_int_equal(check(a, "BearertokA", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(why, AUTH_FAIL_SCHEME);
    assert_int_equal(check(a, "tokA", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(check(a, "Bearer tokE", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(why, AUTH_FAIL_TOKEN);
    assert_int_equal(check(a, "Bearer tok", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(check(a, "Bearer tokAA", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(check(a, "Bearer appA:tokA", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    /* The length given is what counts, not a NUL further on. */
    const char *reason;
    assert_int_equal(auth_check(a, "Bearer tokAxyz", 11, &tenant, &why, &reason), O2D_OK);
    auth_free(a);

    /* Another scheme, as the Collector's `scheme` key allows. */
    const char *one[] = {"s3cret"};
    assert_int_equal(auth_new(&a, "Token", one, 1, NULL, err, sizeof(err)), O2D_OK);
    assert_int_equal(check(a, "Token s3cret", &tenant, &why), O2D_OK);
    assert_int_equal(check(a, "Bearer s3cret", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    auth_free(a);
    auth_free(NULL);
}

static void bad_configuration(void **state)
{
    (void)state;
    struct auth *a = NULL;
    char err[256];
    assert_int_equal(auth_new(&a, NULL, NULL, 0, NULL, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "token, tokens or filename"));
    const char *entries[] = {"good", "sec ret"};
    assert_int_equal(auth_new(&a, NULL, entries, 2, NULL, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "token 2"));
    assert_null(strstr(err, "sec ret"));
    assert_int_equal(auth_new(&a, NULL, NULL, 0, "/nonexistent/tokens", err, sizeof(err)),
                     O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "/nonexistent/tokens"));
    assert_null(a);
}

static void write_file(const char *path, const char *text)
{
    /* Written beside and renamed, as a secrets agent does: never half a file. */
    char tmp[256];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_true(n > 0 && (size_t)n < sizeof(tmp));
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

/* Polls until the store has loaded the file n times (the watcher looks every AUTH_POLL_MS). */
static int wait_loads(struct auth *a, uint64_t n)
{
    for (int i = 0; i < 200; i++) {
        if (auth_loads(a) >= n) {
            return 1;
        }
        struct timespec ts = {0, 25 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void token_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/o2d_auth_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/tokens", dir);
    write_file(path, "# rotated by the secrets agent\n\n  old-one  \r\nappA:first\n");
    struct auth *a = NULL;
    char err[256];
    const char *ignored[] = {"fromconfig"};
    /* The file wins over tokens, as in the Collector. */
    assert_int_equal(auth_new(&a, NULL, ignored, 1, path, err, sizeof(err)), O2D_OK);
    assert_int_equal(auth_loads(a), 1);
    assert_int_equal(auth_start(a), O2D_OK);
    int tenant;
    enum auth_failure why;
    assert_int_equal(check(a, "Bearer fromconfig", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(check(a, "Bearer old-one", &tenant, &why), O2D_OK);
    assert_int_equal(check(a, "Bearer first", &tenant, &why), O2D_OK);
    assert_int_equal(tenant, 0);

    /* Rotation: the new token is added, then the old one removed. */
    write_file(path, "old-one\nappA:first\nappA:second\n");
    assert_true(wait_loads(a, 2));
    assert_int_equal(check(a, "Bearer second", &tenant, &why), O2D_OK);
    assert_int_equal(tenant, 0);
    assert_int_equal(check(a, "Bearer old-one", &tenant, &why), O2D_OK);
    write_file(path, "appA:second\nappB:third\n");
    assert_true(wait_loads(a, 3));
    assert_int_equal(check(a, "Bearer old-one", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(check(a, "Bearer first", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    assert_int_equal(check(a, "Bearer third", &tenant, &why), O2D_OK);
    assert_int_equal(tenant, 1);

    /* An invalid file, then no file: the tokens loaded before stay. */
    write_file(path, "appA:second\nnot a token\n");
    struct timespec ts = {1, 200 * 1000000L}; /* more than two looks at the file */
    nanosleep(&ts, NULL);
    assert_int_equal(auth_loads(a), 3);
    assert_int_equal(check(a, "Bearer third", &tenant, &why), O2D_OK);
    unlink(path);
    nanosleep(&ts, NULL);
    assert_int_equal(check(a, "Bearer third", &tenant, &why), O2D_OK);
    /* Back again: read again. */
    write_file(path, "fourth\n");
    assert_true(wait_loads(a, 4));
    assert_int_equal(check(a, "Bearer fourth", &tenant, &why), O2D_OK);
    assert_int_equal(check(a, "Bearer third", &tenant, &why), O2D_ERR_UNAUTHENTICATED);
    /* Tenants are never forgotten: indexes stay valid labels. */
    assert_int_equal(auth_tenant_count(a), 2);
    auth_free(a);
    unlink(path);
    rmdir(dir);
}

/* A tenant's bytes are held to its share; another tenant still gets what it asks for, and
 * what is released comes back. */
static void tenant_share(void **state)
{
    (void)state;
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, NULL, NULL, 100 * MIB), O2D_OK);
    ingest_set_tenant_share(ing, 50);
    struct ingest_share a1, a2, b;
    ingest_share_init(ing, &a1, 40 * MIB);
    ingest_share_init(ing, &a2, 40 * MIB);
    ingest_share_init(ing, &b, 40 * MIB);
    ingest_share_set_tenant(&a1, 0);
    ingest_share_set_tenant(&a2, 0);
    ingest_share_set_tenant(&b, 1);
    const char *why = NULL;
    assert_int_equal(ingest_share_reserve(ing, &a1, 30 * MIB, &why), O2D_OK);
    /* 30 + 25 > 50: tenant 0 is past its share, on another connection too. */
    assert_int_equal(ingest_share_reserve(ing, &a2, 25 * MIB, &why), O2D_ERR_BUSY);
    assert_non_null(strstr(why, "tenant"));
    assert_int_equal(ingest_share_admit(ing, &a2, 25 * MIB, &why), O2D_ERR_BUSY);
    assert_int_equal(ingest_share_reserve(ing, &a2, 20 * MIB, &why), O2D_OK);
    /* Tenant 1 still gets its own. */
    assert_int_equal(ingest_share_reserve(ing, &b, 40 * MIB, &why), O2D_OK);
    /* Held at its share exactly: a new request of tenant 0 is refused at its head. */
    assert_int_equal(ingest_tenant_admit(ing, 0, &why), O2D_ERR_BUSY);
    assert_int_equal(ingest_tenant_admit(ing, 1, &why), O2D_OK);
    assert_int_equal(ingest_tenant_admit(ing, -1, &why), O2D_OK);
    ingest_share_release(ing, &a1, 30 * MIB);
    assert_int_equal(ingest_tenant_admit(ing, 0, &why), O2D_OK);
    assert_int_equal(ingest_share_reserve(ing, &a1, 30 * MIB, &why), O2D_OK);
    /* The share keeps its tenant while it holds bytes. */
    ingest_share_set_tenant(&a1, 1);
    assert_int_equal(a1.tenant, 0);
    ingest_share_release(ing, &a1, 30 * MIB);
    ingest_share_release(ing, &a2, 20 * MIB);
    ingest_share_release(ing, &b, 40 * MIB);
    ingest_share_set_tenant(&a1, 1);
    assert_int_equal(a1.tenant, 1);
    /* A connection's first bytes always fit its tenant, even past the share. */
    assert_int_equal(ingest_share_reserve(ing, &a1, 60 * MIB, &why), O2D_ERR_BUSY);
    assert_non_null(strstr(why, "connection")); /* its own cap (40 MiB), not the tenant's */
    ingest_free(ing);

    /* 100 %: no rule. */
    assert_int_equal(ingest_new(&ing, NULL, NULL, 100 * MIB), O2D_OK);
    ingest_share_init(ing, &a1, 60 * MIB);
    ingest_share_init(ing, &a2, 60 * MIB);
    ingest_share_set_tenant(&a1, 0);
    ingest_share_set_tenant(&a2, 0);
    assert_int_equal(ingest_share_reserve(ing, &a1, 50 * MIB, &why), O2D_OK);
    assert_int_equal(ingest_share_reserve(ing, &a2, 50 * MIB, &why), O2D_OK);
    assert_int_equal(ingest_tenant_admit(ing, 0, &why), O2D_OK);
    ingest_share_release(ing, &a1, 50 * MIB);
    ingest_share_release(ing, &a2, 50 * MIB);
    ingest_free(ing);
}

#define ATTRS 20

/* n spans of ATTRS attributes under a resource with service.name `service`: about 2 KiB a
 * span once decoded. Caller frees. */
static uint8_t *service_body(const char *service, size_t n, size_t *len)
{
    static uint8_t trace_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static uint8_t span_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    OtlpSpan *spans = calloc(n, sizeof(*spans));
    OtlpSpan **sp = calloc(n, sizeof(*sp));
    OtlpKeyValue kv[ATTRS], *kvp[ATTRS];
    OtlpAnyValue av[ATTRS];
    assert_true(spans && sp);
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
    OtlpAnyValue sv;
    opentelemetry__proto__common__v1__any_value__init(&sv);
    sv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    sv.string_value = (char *)service;
    OtlpKeyValue skv, *skvp = &skv;
    opentelemetry__proto__common__v1__key_value__init(&skv);
    skv.key = "service.name";
    skv.value = &sv;
    OtlpResource res;
    opentelemetry__proto__resource__v1__resource__init(&res);
    res.n_attributes = 1;
    res.attributes = &skvp;
    OtlpScopeSpans ss, *ssp = &ss;
    opentelemetry__proto__trace__v1__scope_spans__init(&ss);
    ss.n_spans = n;
    ss.spans = sp;
    OtlpResourceSpans rs, *rsp = &rs;
    opentelemetry__proto__trace__v1__resource_spans__init(&rs);
    rs.resource = &res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
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
    return out;
}

/* While the first request is being handed on, two more are ingested from another thread
 * (ingest keeps one arena per thread): one of the same service, one of another. */
struct nested {
    struct ingest *ing;
    const uint8_t *same, *other;
    size_t same_len, other_len;
    int calls;
    struct ingest_result same_res, other_res;
};

static void *send_two(void *arg)
{
    struct nested *n = arg;
    ingest_request(n->ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, O2D_COMP_NONE,
                   n->same, n->same_len, 20 << 20, &n->same_res);
    ingest_request(n->ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF, O2D_COMP_NONE,
                   n->other, n->other_len, 20 << 20, &n->other_res);
    return NULL;
}

static int submit_nested(void *ctx, enum o2d_transport tr, const struct otlp_request *req)
{
    struct nested *n = ctx;
    (void)tr;
    (void)req;
    if (n->calls++ == 0) {
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, send_two, n), 0);
        pthread_join(th, NULL);
    }
    return O2D_OK;
}

static void service_tenants(void **state)
{
    (void)state;
    size_t la, lb;
    uint8_t *a = service_body("flood", 300, &la);
    uint8_t *b = service_body("steady", 300, &lb);
    struct nested n = {.same = a, .same_len = la, .other = b, .other_len = lb};
    /* 10 % of 8 MiB: one 300-span request (some 600 KiB decoded) fits, two do not. */
    assert_int_equal(ingest_new(&n.ing, submit_nested, &n, 8 * MIB), O2D_OK);
    ingest_set_tenant_share(n.ing, 10);
    struct ingest_result res;
    assert_int_equal(ingest_request(n.ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES,
                                    OTLP_ENC_PROTOBUF, O2D_COMP_NONE, a, la, 20 << 20, &res),
                     O2D_OK);
    assert_int_equal(n.calls, 2);
    assert_int_equal(n.same_res.status, O2D_ERR_BUSY);
    assert_non_null(strstr(n.same_res.reason, "tenant"));
    assert_int_equal(n.other_res.status, O2D_OK);
    /* Once the first is done, the same service is served again. */
    assert_int_equal(ingest_request(n.ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES,
                                    OTLP_ENC_PROTOBUF, O2D_COMP_NONE, a, la, 20 << 20, &res),
                     O2D_OK);
    ingest_free(n.ing);

    /* Without the rule both are taken. */
    n.calls = 0;
    assert_int_equal(ingest_new(&n.ing, submit_nested, &n, 8 * MIB), O2D_OK);
    assert_int_equal(ingest_request(n.ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES,
                                    OTLP_ENC_PROTOBUF, O2D_COMP_NONE, a, la, 20 << 20, &res),
                     O2D_OK);
    assert_int_equal(n.same_res.status, O2D_OK);
    ingest_free(n.ing);
    free(a);
    free(b);
}

/* The request's tenant slot reaches the exporters (otlp_request.tenant), and an exporter's
 * "this tenant holds its share of my queue" is answered busy and counted as its own reason. */
struct seen_tenant {
    int tenant;
    int rv;
};

static int submit_seen(void *ctx, enum o2d_transport tr, const struct otlp_request *req)
{
    struct seen_tenant *s = ctx;
    (void)tr;
    s->tenant = req->tenant;
    return s->rv;
}

static void request_tenant_reaches_exporters(void **state)
{
    (void)state;
    size_t la, lb;
    uint8_t *a = service_body("flood", 2, &la);
    uint8_t *b = service_body("steady", 2, &lb);
    struct seen_tenant s = {.tenant = -2, .rv = O2D_OK};
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, submit_seen, &s, 8 * MIB), O2D_OK);
    ingest_set_tenant_share(ing, 50);
    struct ingest_result res;
    /* a token's tenant: its named slot */
    assert_int_equal(ingest_request_as(ing, 3, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES,
                                       OTLP_ENC_PROTOBUF, O2D_COMP_NONE, a, la, 1 << 20, &res),
                     O2D_OK);
    assert_int_equal(s.tenant, 3);
    /* no token: the service's hashed slot, the same for the same service */
    assert_int_equal(ingest_request(ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF,
                                    O2D_COMP_NONE, a, la, 1 << 20, &res),
                     O2D_OK);
    int flood = s.tenant;
    assert_true(flood >= INGEST_TENANT_NAMED && flood < OTLP_TENANT_SLOTS);
    s.tenant = -2;
    assert_int_equal(ingest_request(ing, O2D_TRANSPORT_HTTP, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF,
                                    O2D_COMP_NONE, a, la, 1 << 20, &res),
                     O2D_OK);
    assert_int_equal(s.tenant, flood);
    /* an exporter refuses the tenant for its queue share: busy, with a reason that says so */
    s.rv = O2D_ERR_TENANT_BUSY;
    assert_int_equal(ingest_request(ing, O2D_TRANSPORT_GRPC, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF,
                                    O2D_COMP_NONE, b, lb, 1 << 20, &res),
                     O2D_ERR_BUSY);
    assert_non_null(strstr(res.reason, "share of an exporter's queue"));
    s.rv = O2D_ERR_BUSY; /* a full queue stays queue_full */
    assert_int_equal(ingest_request(ing, O2D_TRANSPORT_GRPC, OTLP_SIGNAL_TRACES, OTLP_ENC_PROTOBUF,
                                    O2D_COMP_NONE, b, lb, 1 << 20, &res),
                     O2D_ERR_BUSY);
    struct prom_writer w;
    prom_writer_init(&w, 1 << 20);
    ingest_write_metrics(ing, &w);
    assert_int_equal(prom_writer_status(&w), O2D_OK);
    char *text = malloc(w.buf.len + 1);
    assert_non_null(text);
    memcpy(text, w.buf.data, w.buf.len);
    text[w.buf.len] = '\0';
    assert_non_null(strstr(text, "otel2dd_receiver_refused_requests_total{transport=\"grpc\","
                                 "signal=\"traces\",reason=\"tenant_queue_share\"} 1\n"));
    assert_non_null(strstr(text, "otel2dd_receiver_refused_requests_total{transport=\"grpc\","
                                 "signal=\"traces\",reason=\"queue_full\"} 1\n"));
    assert_non_null(
        strstr(text, "otel2dd_receiver_tenant_refused_requests_total{tenant=\"other\"} 2\n"));
    free(text);
    prom_writer_cleanup(&w);
    ingest_free(ing);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entry_grammar),
        cmocka_unit_test(header_values),
        cmocka_unit_test(bad_configuration),
        cmocka_unit_test(token_file),
        cmocka_unit_test(tenant_share),
        cmocka_unit_test(service_tenants),
        cmocka_unit_test(request_tenant_reaches_exporters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
