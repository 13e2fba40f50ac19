/*
 * apm_names.c: the attributes the mapping reads and the naming rules built on them:
 * operation name, resource and span type, as DataDog/datadog-agent pkg/trace/transform/
 * otelutil.go@90b1f4c (getOTelOperationNameV2, getOTelResourceV2, GetOTelSpanTypeWithAccessor,
 * GetOTelOperationNameV1, GetOTelResourceV1) computes them. The key precedence of each concept
 * is the semantic registry's (pkg/trace/semantics/mappings.json): for each key in turn, span
 * attributes first, then resource attributes, first non-empty value wins.
 *
 * Normalization of the results (NormalizeName, truncation) is left to apm.c, which applies the
 * agent normalizer to every span whatever rule named it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "apm_int.h"
#include "o2d.h"

/*
 * Every attribute key the mapping reads or renames, classified once per key: the concept it
 * names for the naming rules (enum apm_key) and the meta/metric key it is copied under
 * (GetDDKeyForOTLPAttribute, DataDog/datadog-agent pkg/trace/transform/transform.go and
 * pkg/trace/semantics/attributes.go HTTPMappings). One hash lookup per key replaces the
 * string compares of each rule.
 */
struct key_entry {
    const char *name;
    size_t len;
    int id;         /* enum apm_key or -1 */
    const char *dd; /* the key it is copied under; NULL: itself; "": not copied */
    unsigned flags; /* APM_KEYF_* */
};

#define KEY(s, id)                                                                                 \
    {                                                                                              \
        s, sizeof(s) - 1, id, NULL, 0                                                              \
    }
#define KEYD(s, id, dd)                                                                            \
    {                                                                                              \
        s, sizeof(s) - 1, id, dd, 0                                                                \
    }
static const struct key_entry key_table[] = {
    /* read for the span's service, operation, resource and type, never copied */
    KEYD("service.name", AK_SERVICE_NAME, ""),
    KEYD("operation.name", AK_OPERATION_NAME, ""),
    KEYD("resource.name", AK_RESOURCE_NAME, ""),
    KEYD("span.type", AK_SPAN_TYPE, ""),
    /* HTTPMappings */
    KEYD("client.address", -1, "http.client_ip"),
    KEYD("http.response.body.size", -1, "http.response.content_length"),
    KEYD("http.response.status_code", AK_HTTP_RESPONSE_STATUS_CODE, "http.status_code"),
    KEYD("http.request.body.size", -1, "http.request.content_length"),
    KEYD("http.request.header.referrer", -1, "http.referrer"),
    KEYD("http.request.method", AK_HTTP_REQUEST_METHOD, "http.method"),
    KEYD("network.protocol.version", -1, "http.version"),
    KEYD("server.address", -1, "http.server_name"),
    KEYD("url.full", -1, "http.url"),
    KEYD("user_agent.original", -1, "http.useragent"),
    /* read by the rules, copied as they are */
    KEY("http.method", AK_HTTP_METHOD),
    KEY("http.route", AK_HTTP_ROUTE),
    KEY("url.template", AK_URL_TEMPLATE),
    KEY("http.status_code", AK_HTTP_STATUS_CODE),
    KEY("db.system.name", AK_DB_SYSTEM_NAME),
    KEY("db.system", AK_DB_SYSTEM),
    KEY("db.statement", AK_DB_STATEMENT),
    KEY("db.query.text", AK_DB_QUERY_TEXT),
    KEY("db.namespace", AK_DB_NAMESPACE),
    KEY("messaging.system", AK_MESSAGING_SYSTEM),
    KEY("messaging.operation", AK_MESSAGING_OPERATION),
    KEY("messaging.destination", AK_MESSAGING_DESTINATION),
    KEY("messaging.destination.name", AK_MESSAGING_DESTINATION_NAME),
    KEY("rpc.system", AK_RPC_SYSTEM),
    KEY("rpc.system.name", AK_RPC_SYSTEM_NAME),
    KEY("rpc.service", AK_RPC_SERVICE),
    KEY("rpc.method", AK_RPC_METHOD),
    KEY("rpc.grpc.status_code", AK_RPC_GRPC_STATUS_CODE),
    KEY("grpc.code", AK_GRPC_CODE),
    KEY("rpc.grpc.status.code", AK_RPC_GRPC_STATUS_CODE_DOT),
    KEY("grpc.status.code", AK_GRPC_STATUS_CODE),
    KEY("rpc.response.status_code", AK_RPC_RESPONSE_STATUS_CODE),
    KEY("faas.invoked_provider", AK_FAAS_INVOKED_PROVIDER),
    KEY("faas.invoked_name", AK_FAAS_INVOKED_NAME),
    KEY("faas.trigger", AK_FAAS_TRIGGER),
    KEY("graphql.operation.type", AK_GRAPHQL_OPERATION_TYPE),
    KEY("graphql.operation.name", AK_GRAPHQL_OPERATION_NAME),
    KEY("network.protocol.name", AK_NETWORK_PROTOCOL_NAME),
    KEY("deployment.environment.name", AK_DEPLOYMENT_ENVIRONMENT_NAME),
    KEY("deployment.environment", AK_DEPLOYMENT_ENVIRONMENT),
    KEY("service.version", AK_SERVICE_VERSION),
    KEY("_dd.measured", AK_DD_MEASURED),
    KEY("_dd.hostname", AK_DD_HOSTNAME),
    KEY("_sample_rate", AK_SAMPLE_RATE),
    /* OpenInference and OpenLLMetry spans that carry no gen_ai.* key are LLM Obs spans too
     * (llmobs.c): typed llm like gen_ai spans, so APM and LLM Obs show them alike. Datadog's
     * ingest types only gen_ai.* spans llm (its OTel path has no such kinds). */
    {"openinference.span.kind", sizeof("openinference.span.kind") - 1, -1, NULL, APM_KEYF_GEN_AI},
    {"traceloop.span.kind", sizeof("traceloop.span.kind") - 1, -1, NULL, APM_KEYF_GEN_AI},
};
#undef KEY
#undef KEYD
#define N_KEYS (sizeof(key_table) / sizeof(key_table[0]))

/* Open addressing over key_table, built once; a power of two over 4x the keys. */
#define KEY_SLOTS 256
static uint8_t key_slots[KEY_SLOTS]; /* index + 1 into key_table, 0 = free */
static pthread_once_t key_slots_once = PTHREAD_ONCE_INIT;

/* A cheap hash of a key: its length and its first and last 8 bytes (attribute keys differ
 * in their ends); collisions only cost a probe. */
static uint32_t key_hash(const char *k, size_t n)
{
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, k, 8);
        memcpy(&b, k + n - 8, 8);
    } else {
        memcpy(&a, k, n);
    }
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ n) * 0xC2B2AE3D27D4EB4Full;
    return (uint32_t)(h >> 32);
}

static void key_slots_build(void)
{
    _Static_assert(N_KEYS * 4 <= KEY_SLOTS && N_KEYS < 255, "key_slots too small");
    for (size_t i = 0; i < N_KEYS; i++) {
        size_t h = key_hash(key_table[i].name, key_table[i].len) & (KEY_SLOTS - 1);
        while (key_slots[h] != 0) {
            h = (h + 1) & (KEY_SLOTS - 1);
        }
        key_slots[h] = (uint8_t)(i + 1);
    }
}

static const struct key_entry *key_find(const char *k, size_t n)
{
    size_t h = key_hash(k, n) & (KEY_SLOTS - 1);
    for (;;) {
        unsigned s = key_slots[h];
        if (s == 0) {
            return NULL;
        }
        const struct key_entry *e = &key_table[s - 1];
        if (e->len == n && memcmp(e->name, k, n) == 0) {
            return e;
        }
        h = (h + 1) & (KEY_SLOTS - 1);
    }
}

static const char HDR_PREFIX[] = "http.request.header.";

void apm_names_classify(const char *k, struct apm_key_class *out)
{
    pthread_once(&key_slots_once, key_slots_build);
    size_t n = strlen(k);
    out->n = n;
    out->id = -1;
    out->dd = (struct apm_str){NULL, 0};
    out->flags = 0;
    const struct key_entry *e = key_find(k, n);
    if (e != NULL) {
        out->id = e->id;
        out->flags = e->flags;
        if (e->dd != NULL) {
            out->dd = (struct apm_str){e->dd, strlen(e->dd)};
        }
        return;
    }
    if (n >= 7 && memcmp(k, "gen_ai.", 7) == 0) {
        out->flags = APM_KEYF_GEN_AI;
    } else if (n > sizeof(HDR_PREFIX) - 1 && memcmp(k, HDR_PREFIX, sizeof(HDR_PREFIX) - 1) == 0) {
        out->flags = APM_KEYF_HTTP_HEADER;
    }
}

int apm_names_key_id(const char *k, size_t n)
{
    pthread_once(&key_slots_once, key_slots_build);
    const struct key_entry *e = key_find(k, n);
    return e != NULL ? e->id : -1;
}

void apm_names_index(struct apm_attrs *ix, OtlpKeyValue *const *kv, size_t n,
                     struct apm_key_class *cls)
{
    memset(ix, 0, sizeof(*ix));
    for (size_t i = 0; i < n; i++) {
        struct apm_key_class local;
        struct apm_key_class *kc = cls != NULL ? &cls[i] : &local;
        apm_names_classify(kv[i]->key, kc);
        if (kc->flags & APM_KEYF_GEN_AI) {
            ix->has_gen_ai = 1;
        } else if (kc->id >= 0 && ix->v[kc->id] == NULL) {
            ix->v[kc->id] = kv[i]->value;
        }
    }
}

int apm_lookup_str(const struct apm_lookup *lk, const enum apm_key *keys, size_t nkeys,
                   struct apm_str *out)
{
    *out = APM_STR_LIT("");
    for (size_t i = 0; i < nkeys; i++) {
        const OtlpAnyValue *cand[2] = {lk->span->v[keys[i]], lk->res->v[keys[i]]};
        for (int j = 0; j < 2; j++) {
            if (cand[j] == NULL) {
                continue;
            }
            int rv = apm_value_as_string(lk->a, cand[j], out);
            if (rv != O2D_OK || out->n > 0) {
                return rv;
            }
        }
    }
    return O2D_OK;
}

static int lookup1(const struct apm_lookup *lk, enum apm_key k, int normalize, struct apm_str *out)
{
    int rv = apm_lookup_str(lk, &k, 1, out);
    if (rv == O2D_OK && normalize && out->n > 0) {
        rv = apm_normalize_tag(lk->a, *out, 1, out);
    }
    return rv;
}

static int lookup2(const struct apm_lookup *lk, enum apm_key k1, enum apm_key k2, int normalize,
                   struct apm_str *out)
{
    enum apm_key keys[2] = {k1, k2};
    int rv = apm_lookup_str(lk, keys, 2, out);
    if (rv == O2D_OK && normalize && out->n > 0) {
        rv = apm_normalize_tag(lk->a, *out, 1, out);
    }
    return rv;
}

/* p1 s1 p2 s2 p3, concatenated in the arena. */
static int concat(struct o2d_arena *a, struct apm_str *out, struct apm_str p1, const char *s1,
                  struct apm_str p2, const char *s2, struct apm_str p3)
{
    size_t l1 = strlen(s1), l2 = strlen(s2);
    size_t n = p1.n + l1 + p2.n + l2 + p3.n;
    char *d = o2d_arena_alloc(a, n + 1);
    if (d == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    char *w = d;
    memcpy(w, p1.p, p1.n);
    w += p1.n;
    memcpy(w, s1, l1);
    w += l1;
    memcpy(w, p2.p, p2.n);
    w += p2.n;
    memcpy(w, s2, l2);
    w += l2;
    memcpy(w, p3.p, p3.n);
    w += p3.n;
    *w = '\0';
    out->p = d;
    out->n = n;
    return O2D_OK;
}

static const struct apm_str empty = {"", 0};

struct apm_str apm_names_kind(int kind)
{
    switch (kind) {
    case APM_KIND_INTERNAL:
        return APM_STR_LIT("internal");
    case APM_KIND_SERVER:
        return APM_STR_LIT("server");
    case APM_KIND_CLIENT:
        return APM_STR_LIT("client");
    case APM_KIND_PRODUCER:
        return APM_STR_LIT("producer");
    case APM_KIND_CONSUMER:
        return APM_STR_LIT("consumer");
    default:
        return APM_STR_LIT("unspecified");
    }
}

/* pdata SpanKind.String(): "Unspecified", "Internal", ...; "" for values it does not know. */
static struct apm_str kind_go_string(int kind)
{
    switch (kind) {
    case APM_KIND_UNSPECIFIED:
        return APM_STR_LIT("Unspecified");
    case APM_KIND_INTERNAL:
        return APM_STR_LIT("Internal");
    case APM_KIND_SERVER:
        return APM_STR_LIT("Server");
    case APM_KIND_CLIENT:
        return APM_STR_LIT("Client");
    case APM_KIND_PRODUCER:
        return APM_STR_LIT("Producer");
    case APM_KIND_CONSUMER:
        return APM_STR_LIT("Consumer");
    default:
        return APM_STR_LIT("");
    }
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rv_ = (x);                                                                             \
        if (rv_ != O2D_OK) {                                                                       \
            return rv_;                                                                            \
        }                                                                                          \
    } while (0)

int apm_names_operation_v2(const struct apm_lookup *lk, int kind, struct apm_str *out)
{
    struct apm_str v, w;
    int client = kind == APM_KIND_CLIENT, server = kind == APM_KIND_SERVER;

    TRY(lookup1(lk, AK_OPERATION_NAME, 1, out));
    if (out->n > 0) {
        return O2D_OK;
    }
    TRY(lookup2(lk, AK_HTTP_REQUEST_METHOD, AK_HTTP_METHOD, 0, &v));
    if (v.n > 0 && (server || client)) {
        *out = server ? APM_STR_LIT("http.server.request") : APM_STR_LIT("http.client.request");
        return O2D_OK;
    }
    TRY(lookup2(lk, AK_DB_SYSTEM_NAME, AK_DB_SYSTEM, 1, &v));
    if (v.n > 0 && client) {
        return concat(lk->a, out, v, ".query", empty, "", empty);
    }
    TRY(lookup1(lk, AK_MESSAGING_SYSTEM, 1, &v));
    TRY(lookup1(lk, AK_MESSAGING_OPERATION, 1, &w));
    if (v.n > 0 && w.n > 0 &&
        (client || server || kind == APM_KIND_CONSUMER || kind == APM_KIND_PRODUCER)) {
        return concat(lk->a, out, v, ".", w, "", empty);
    }
    TRY(lookup1(lk, AK_RPC_SYSTEM, 1, &v));
    if (v.n > 0) {
        if (client && v.n == 7 && memcmp(v.p, "aws-api", 7) == 0) {
            TRY(lookup1(lk, AK_RPC_SERVICE, 1, &w));
            if (w.n > 0) {
                return concat(lk->a, out, APM_STR_LIT("aws."), "", w, ".request", empty);
            }
            *out = APM_STR_LIT("aws.client.request");
            return O2D_OK;
        }
        if (client) {
            return concat(lk->a, out, v, ".client.request", empty, "", empty);
        }
        if (server) {
            return concat(lk->a, out, v, ".server.request", empty, "", empty);
        }
    }
    TRY(lookup1(lk, AK_FAAS_INVOKED_PROVIDER, 1, &v));
    TRY(lookup1(lk, AK_FAAS_INVOKED_NAME, 1, &w));
    if (v.n > 0 && w.n > 0 && client) {
        return concat(lk->a, out, v, ".", w, ".invoke", empty);
    }
    TRY(lookup1(lk, AK_FAAS_TRIGGER, 1, &v));
    if (v.n > 0 && server) {
        return concat(lk->a, out, v, ".invoke", empty, "", empty);
    }
    TRY(lookup1(lk, AK_GRAPHQL_OPERATION_TYPE, 1, &v));
    if (v.n > 0) {
        *out = APM_STR_LIT("graphql.server.request");
        return O2D_OK;
    }
    TRY(lookup1(lk, AK_NETWORK_PROTOCOL_NAME, 1, &v));
    if (server || client) {
        const char *suffix = server ? "server.request" : "client.request";
        if (v.n > 0) {
            return concat(lk->a, out, v, ".", APM_STR_LIT(""), suffix, empty);
        }
        return concat(lk->a, out, empty, suffix, empty, "", empty);
    }
    *out = kind == APM_KIND_UNSPECIFIED ? APM_STR_LIT("Internal") : kind_go_string(kind);
    return O2D_OK;
}

int apm_names_resource_v2(const struct apm_lookup *lk, const OtlpSpan *span, int kind,
                          struct apm_str *out)
{
    struct apm_str v, w;
    TRY(lookup1(lk, AK_RESOURCE_NAME, 0, out));
    if (out->n > 0) {
        return O2D_OK;
    }
    TRY(lookup2(lk, AK_HTTP_REQUEST_METHOD, AK_HTTP_METHOD, 0, &v));
    if (v.n > 0) {
        if (v.n == 6 && memcmp(v.p, "_OTHER", 6) == 0) {
            v = APM_STR_LIT("HTTP");
        }
        w = empty;
        if (kind == APM_KIND_CLIENT) {
            TRY(lookup1(lk, AK_URL_TEMPLATE, 0, &w));
        } else if (kind == APM_KIND_SERVER) {
            TRY(lookup1(lk, AK_HTTP_ROUTE, 0, &w));
        }
        if (w.n > 0) {
            return concat(lk->a, out, v, " ", w, "", empty);
        }
        *out = v;
        return O2D_OK;
    }
    TRY(lookup1(lk, AK_MESSAGING_OPERATION, 0, &v));
    if (v.n > 0) {
        TRY(lookup2(lk, AK_MESSAGING_DESTINATION, AK_MESSAGING_DESTINATION_NAME, 0, &w));
        return w.n > 0 ? concat(lk->a, out, v, " ", w, "", empty) : (*out = v, O2D_OK);
    }
    TRY(lookup1(lk, AK_RPC_METHOD, 0, &v));
    if (v.n > 0) {
        TRY(lookup1(lk, AK_RPC_SERVICE, 0, &w));
        return w.n > 0 ? concat(lk->a, out, v, " ", w, "", empty) : (*out = v, O2D_OK);
    }
    TRY(lookup1(lk, AK_GRAPHQL_OPERATION_TYPE, 0, &v));
    if (v.n > 0) {
        TRY(lookup1(lk, AK_GRAPHQL_OPERATION_NAME, 0, &w));
        return w.n > 0 ? concat(lk->a, out, v, " ", w, "", empty) : (*out = v, O2D_OK);
    }
    TRY(lookup2(lk, AK_DB_SYSTEM_NAME, AK_DB_SYSTEM, 0, &v));
    if (v.n > 0) {
        TRY(lookup2(lk, AK_DB_STATEMENT, AK_DB_QUERY_TEXT, 0, &w));
        if (w.n > 0) {
            *out = w;
            return O2D_OK;
        }
    }
    out->p = span->name;
    out->n = strlen(span->name);
    return O2D_OK;
}

/* GetOTelAttrValInResAndSpanAttrs: resource attributes first, then span; within one map the
 * first key present wins even when its value is empty. */
static int lookup_v1(const struct apm_lookup *lk, enum apm_key k1, int k2, struct apm_str *out)
{
    const struct apm_attrs *maps[2] = {lk->res, lk->span};
    for (int m = 0; m < 2; m++) {
        const OtlpAnyValue *v = maps[m]->v[k1];
        if (v == NULL && k2 >= 0) {
            v = maps[m]->v[k2];
        }
        if (v != NULL) {
            TRY(apm_value_as_string(lk->a, v, out));
            if (out->n > 0) {
                return O2D_OK;
            }
        }
    }
    *out = empty;
    return O2D_OK;
}

int apm_names_resource_v1(const struct apm_lookup *lk, const OtlpSpan *span, struct apm_str *out)
{
    struct apm_str v, w;
    TRY(lookup_v1(lk, AK_RESOURCE_NAME, -1, out));
    if (out->n > 0) {
        return O2D_OK;
    }
    static const int pairs[4][3] = {
        {AK_HTTP_REQUEST_METHOD, AK_HTTP_METHOD, AK_HTTP_ROUTE},
        {AK_MESSAGING_OPERATION, -1, AK_MESSAGING_DESTINATION},
        {AK_RPC_METHOD, -1, AK_RPC_SERVICE},
        {AK_GRAPHQL_OPERATION_TYPE, -1, AK_GRAPHQL_OPERATION_NAME},
    };
    for (int i = 0; i < 4; i++) {
        TRY(lookup_v1(lk, (enum apm_key)pairs[i][0], pairs[i][1], &v));
        if (v.n == 0) {
            continue;
        }
        TRY(lookup_v1(lk, (enum apm_key)pairs[i][2], i == 1 ? AK_MESSAGING_DESTINATION_NAME : -1,
                      &w));
        if (w.n > 0) {
            return concat(lk->a, out, v, " ", w, "", empty);
        }
        *out = v;
        return O2D_OK;
    }
    out->p = span->name;
    out->n = strlen(span->name);
    return O2D_OK;
}

int apm_names_operation_v1(const struct apm_lookup *lk, const OtlpSpan *span,
                           const OtlpScopeSpans *ss, const struct apm_config *cfg,
                           struct apm_str *out)
{
    TRY(lookup_v1(lk, AK_OPERATION_NAME, -1, out));
    if (out->n == 0) {
        if (cfg->span_name_as_resource_name) {
            out->p = span->name;
            out->n = strlen(span->name);
        } else {
            struct apm_str k = kind_go_string(span->kind);
            char low[16];
            for (size_t i = 0; i < k.n; i++) {
                low[i] = (char)(k.p[i] >= 'A' && k.p[i] <= 'Z' ? k.p[i] + 32 : k.p[i]);
            }
            struct apm_str lib = empty;
            if (ss->scope != NULL && ss->scope->name[0] != '\0') {
                lib.p = ss->scope->name;
                lib.n = strlen(ss->scope->name);
            } else {
                lib = APM_STR_LIT("opentelemetry");
            }
            TRY(concat(lk->a, out, lib, ".", (struct apm_str){low, k.n}, "", empty));
        }
    }
    for (size_t i = 0; i < cfg->n_remappings; i++) {
        const char *from = cfg->remappings[i].from;
        if (strlen(from) == out->n && memcmp(from, out->p, out->n) == 0) {
            out->p = cfg->remappings[i].to;
            out->n = strlen(cfg->remappings[i].to);
            break;
        }
    }
    return O2D_OK;
}

struct db_type {
    const char *system;
    size_t system_n;
    const char *type;
    size_t type_n;
};
#define DBT(system, type)                                                                          \
    {                                                                                              \
        system, sizeof(system) - 1, type, sizeof(type) - 1                                         \
    }

/* attributes.DBTypes (pkg/opentelemetry-mapping-go/otlp/attributes/constants.go), sorted by
 * name as memcmp orders bytes (a shorter name before the longer ones it begins): searched by
 * halves. */
static const struct db_type db_types[] = {
    DBT("adabas", "sql"),
    DBT("cache", "sql"),
    DBT("cassandra", "cassandra"),
    DBT("clickhouse", "sql"),
    DBT("cloudscape", "sql"),
    DBT("cockroachdb", "sql"),
    DBT("coldfusion", "sql"),
    DBT("cosmosdb", "db"),
    DBT("couchbase", "db"),
    DBT("couchdb", "db"),
    DBT("db2", "sql"),
    DBT("derby", "sql"),
    DBT("dynamodb", "db"),
    DBT("edb", "sql"),
    DBT("elasticsearch", "elasticsearch"),
    DBT("filemaker", "sql"),
    DBT("firebird", "sql"),
    DBT("firstsql", "sql"),
    DBT("geode", "db"),
    DBT("h2", "sql"),
    DBT("hanadb", "sql"),
    DBT("hbase", "db"),
    DBT("hive", "db"),
    DBT("hsqldb", "sql"),
    DBT("informix", "sql"),
    DBT("ingres", "sql"),
    DBT("instantdb", "sql"),
    DBT("interbase", "sql"),
    DBT("mariadb", "sql"),
    DBT("maxdb", "sql"),
    DBT("memcached", "memcached"),
    DBT("mongodb", "mongodb"),
    DBT("mssql", "sql"),
    DBT("mysql", "sql"),
    DBT("neo4j", "db"),
    DBT("netezza", "sql"),
    DBT("opensearch", "opensearch"),
    DBT("oracle", "sql"),
    DBT("other_sql", "sql"),
    DBT("pervasive", "sql"),
    DBT("pointbase", "sql"),
    DBT("postgresql", "sql"),
    DBT("progress", "sql"),
    DBT("redis", "redis"),
    DBT("redshift", "sql"),
    DBT("sqlite", "sql"),
    DBT("sybase", "sql"),
    DBT("teradata", "sql"),
    DBT("vertica", "sql"),
};

struct apm_str apm_names_db_type(struct apm_str db)
{
    size_t lo = 0, hi = sizeof(db_types) / sizeof(db_types[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct db_type *t = &db_types[mid];
        size_t n = t->system_n < db.n ? t->system_n : db.n;
        int r = memcmp(t->system, db.p, n);
        if (r == 0) {
            r = t->system_n < db.n ? -1 : t->system_n > db.n;
        }
        if (r == 0) {
            return (struct apm_str){t->type, t->type_n};
        }
        if (r < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return APM_STR_LIT("db");
}

int apm_names_type(const struct apm_lookup *lk, int kind, struct apm_str *out)
{
    TRY(lookup1(lk, AK_SPAN_TYPE, 0, out));
    if (lk->span->has_gen_ai) {
        *out = APM_STR_LIT("llm");
        return O2D_OK;
    }
    if (out->n > 0) {
        return O2D_OK;
    }
    if (kind == APM_KIND_SERVER) {
        *out = APM_STR_LIT("web");
    } else if (kind == APM_KIND_CLIENT) {
        struct apm_str db;
        TRY(lookup2(lk, AK_DB_SYSTEM_NAME, AK_DB_SYSTEM, 1, &db));
        *out = db.n == 0 ? APM_STR_LIT("http") : apm_names_db_type(db);
    } else {
        *out = APM_STR_LIT("custom");
    }
    return O2D_OK;
}
