/*
 * apm_int.h: declarations shared by the apm*.c files and their unit tests; nothing outside
 * translate/apm*.c and tests/unit/test_apm*.c includes it.
 *
 * Strings travel as pointer + length (struct apm_str). Everything returned points either into
 * the decoded request or into the arena.
 */
#ifndef APM_INT_H
#define APM_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "apm.h"
#include "o2d.h"
#include "o2d_arena.h"
#include "o2d_buf.h"
#include "resource.h"

struct apm_str {
    const char *p;
    size_t n;
};

#define APM_STR_LIT(s) ((struct apm_str){(s), sizeof(s) - 1})

/* Limits of DataDog/datadog-agent pkg/trace/traceutil/normalize/normalize.go, agent/normalizer.go
 * and agent/truncator.go. */
#define APM_MAX_NAME_LEN     100
#define APM_MAX_SERVICE_LEN  100
#define APM_MAX_RESOURCE_LEN 5000
#define APM_MAX_TYPE_LEN     100
#define APM_MAX_META_KEY_LEN 200
#define APM_MAX_META_VAL_LEN 25000
#define APM_MAX_TAG_LEN      200

/* ---- what translation knows of its spans' string lengths (apm.c writes it; apm_pb.c and
 * apm_msgpack.c read it for payloads apm_translate made, so that no string is scanned for its
 * length again) ---- */

/* One meta entry as translation made it, and its strings' lengths beside it: what e held
 * when noted (k, v) and their lengths. 64 bytes: with the array aligned to 64, an entry and
 * its lengths are one cache line for the writers. */
struct apm_meta {
    Datadog__Trace__Span__MetaEntry e; /* first */
    const char *k, *v;
    uint32_t kn, vn;
};

/* Every DdSpan in an apm_result is the `dd` of one of these (apm_span_of). me[0..n_me) are the
 * meta entries translation made (dd.meta points at their `e`, in some order), each with what
 * it held when made; service, name, resource and type likewise. A string changed since (a
 * value apm_sample sets, an entry made elsewhere) no longer matches its note and is measured. */
struct apm_span {
    DdSpan dd; /* first */
    struct apm_meta *me;
    size_t n_me, cap_me;
    struct apm_str service, name, resource, type;
};

/* The apm_span of a DdSpan that apm_translate made (and only of one). */
static inline const struct apm_span *apm_span_of(const DdSpan *s)
{
    return (const struct apm_span *)(const void *)s;
}

static inline size_t apm_strlen0(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

/* The lengths of e's key and value; w is e's span's apm_span, or NULL when the span was not
 * made by apm_translate (then both are measured). */
static inline void apm_meta_entry_lens(const struct apm_span *w,
                                       const Datadog__Trace__Span__MetaEntry *e, size_t *kn,
                                       size_t *vn)
{
    if (w != NULL) {
        /* e is one of me[] when its address is inside it (compared as integers: e may be
         * any object) */
        uintptr_t off = (uintptr_t)e - (uintptr_t)w->me;
        if (off < w->n_me * sizeof(*w->me)) {
            const struct apm_meta *l = (const struct apm_meta *)(const void *)e;
            *kn = l->k == e->key ? l->kn : apm_strlen0(e->key);
            *vn = l->v == e->value ? l->vn : apm_strlen0(e->value);
            return;
        }
    }
    *kn = apm_strlen0(e->key);
    *vn = apm_strlen0(e->value);
}

/* The length of field s of a span, noted as `noted` (p NULL when not noted). */
static inline size_t apm_noted_len(const char *s, struct apm_str noted)
{
    return s != NULL && s == noted.p ? noted.n : apm_strlen0(s);
}

/* ---- apm_normalize.c: the agent's string normalizers, byte-exact for ASCII ---- */

/* Longest prefix of s[0..n) that is at most `limit` bytes and ends on a UTF-8 character
 * boundary (TruncateUTF8). */
size_t apm_normalize_truncate_utf8(const char *s, size_t n, size_t limit);
/* Leaves s alone when it is valid UTF-8, else points it at a copy in the arena with every
 * invalid byte replaced by U+FFFD (as o2d_json_append_string does). */
int apm_normalize_utf8(struct o2d_arena *a, struct apm_str *s);
/* NormalizeTagValue (tag_value = 0 -> NormalizeTag: also strips leading non-letters). The
 * result is in the arena unless it equals the input. */
int apm_normalize_tag(struct o2d_arena *a, struct apm_str in, int tag_value, struct apm_str *out);
/* NormalizeName: "" or invalid -> "unnamed_operation". */
int apm_normalize_name(struct o2d_arena *a, struct apm_str in, struct apm_str *out);
/* NormalizeService with an empty language: "" or invalid -> "unnamed-service". */
int apm_normalize_service(struct o2d_arena *a, struct apm_str in, struct apm_str *out);
/* NormalizePeerService: "" stays "", invalid -> "". */
int apm_normalize_peer_service(struct o2d_arena *a, struct apm_str in, struct apm_str *out);

/* ---- apm_names.c: attribute keys the mapping reads, and the naming rules ---- */

enum apm_key {
    AK_SERVICE_NAME,
    AK_OPERATION_NAME,
    AK_RESOURCE_NAME,
    AK_SPAN_TYPE,
    AK_HTTP_REQUEST_METHOD,
    AK_HTTP_METHOD,
    AK_HTTP_ROUTE,
    AK_URL_TEMPLATE,
    AK_HTTP_STATUS_CODE,
    AK_HTTP_RESPONSE_STATUS_CODE,
    AK_DB_SYSTEM_NAME,
    AK_DB_SYSTEM,
    AK_DB_STATEMENT,
    AK_DB_QUERY_TEXT,
    AK_DB_NAMESPACE,
    AK_MESSAGING_SYSTEM,
    AK_MESSAGING_OPERATION,
    AK_MESSAGING_DESTINATION,
    AK_MESSAGING_DESTINATION_NAME,
    AK_RPC_SYSTEM,
    AK_RPC_SYSTEM_NAME,
    AK_RPC_SERVICE,
    AK_RPC_METHOD,
    AK_RPC_GRPC_STATUS_CODE,
    AK_GRPC_CODE,
    AK_RPC_GRPC_STATUS_CODE_DOT,
    AK_GRPC_STATUS_CODE,
    AK_RPC_RESPONSE_STATUS_CODE,
    AK_FAAS_INVOKED_PROVIDER,
    AK_FAAS_INVOKED_NAME,
    AK_FAAS_TRIGGER,
    AK_GRAPHQL_OPERATION_TYPE,
    AK_GRAPHQL_OPERATION_NAME,
    AK_NETWORK_PROTOCOL_NAME,
    AK_DEPLOYMENT_ENVIRONMENT_NAME,
    AK_DEPLOYMENT_ENVIRONMENT,
    AK_SERVICE_VERSION,
    AK_DD_MEASURED,
    AK_DD_HOSTNAME,
    AK_SAMPLE_RATE,
    AK__COUNT
};

/* The attributes of one map the mapping reads, found in one pass (first occurrence wins). */
struct apm_attrs {
    const OtlpAnyValue *v[AK__COUNT];
    int has_gen_ai; /* some key starts with "gen_ai.", or an LLM Obs span kind is set */
};

/* What the mapping makes of one attribute key (apm_names_classify), found once per key. */
#define APM_KEYF_GEN_AI      1u /* gen_ai.*, or an LLM Obs span kind key (has_gen_ai) */
#define APM_KEYF_HTTP_HEADER 2u /* http.request.header.X: copied as http.request.headers.X */
struct apm_key_class {
    size_t n;          /* the key's length */
    int id;            /* enum apm_key, or -1 */
    struct apm_str dd; /* the meta/metric key it is copied under (GetDDKeyForOTLPAttribute):
                        * p NULL = the key itself (or the header rule), n 0 = not copied */
    unsigned flags;    /* APM_KEYF_* */
};
void apm_names_classify(const char *k, struct apm_key_class *out);
/* Indexes kv into ix; cls, when not NULL, receives each key's class (n entries). */
void apm_names_index(struct apm_attrs *ix, OtlpKeyValue *const *kv, size_t n,
                     struct apm_key_class *cls);
/* enum apm_key of a key, or -1. */
int apm_names_key_id(const char *k, size_t n);

/* What the naming rules read: span attributes first, then resource attributes. */
struct apm_lookup {
    struct o2d_arena *a;
    const struct apm_attrs *span;
    const struct apm_attrs *res;
};

/* The value of the first present key of keys[] (span, then resource, for each key in turn) as
 * a string (pcommon AsString); empty if none. Values that are not strings are formatted in the
 * arena. O2D_ERR_TOO_LARGE when the arena is full. */
int apm_lookup_str(const struct apm_lookup *lk, const enum apm_key *keys, size_t nkeys,
                   struct apm_str *out);

enum apm_kind {
    APM_KIND_UNSPECIFIED = 0,
    APM_KIND_INTERNAL = 1,
    APM_KIND_SERVER = 2,
    APM_KIND_CLIENT = 3,
    APM_KIND_PRODUCER = 4,
    APM_KIND_CONSUMER = 5,
};

/* "server", "client", ... ("unspecified" for anything unknown): meta span.kind. */
struct apm_str apm_names_kind(int kind);
/* getOTelOperationNameV2 (not yet NormalizeName'd). */
int apm_names_operation_v2(const struct apm_lookup *lk, int kind, struct apm_str *out);
/* GetOTelOperationNameV1 with span_name_as_resource_name and remappings. */
int apm_names_operation_v1(const struct apm_lookup *lk, const OtlpSpan *span,
                           const OtlpScopeSpans *ss, const struct apm_config *cfg,
                           struct apm_str *out);
/* getOTelResourceV2 / GetOTelResourceV1 (truncated to 5000 bytes later). */
int apm_names_resource_v2(const struct apm_lookup *lk, const OtlpSpan *span, int kind,
                          struct apm_str *out);
int apm_names_resource_v1(const struct apm_lookup *lk, const OtlpSpan *span, struct apm_str *out);
/* GetOTelSpanTypeWithAccessor. */
int apm_names_type(const struct apm_lookup *lk, int kind, struct apm_str *out);
/* attributes.DBTypes: the span type of a (normalized) db.system value. */
struct apm_str apm_names_db_type(struct apm_str db_system);

/* ---- apm_host.c: hostname, container id and container tags of a resource ---- */

struct apm_source {
    struct apm_str hostname; /* empty with fargate */
    int found;               /* a source was found in the attributes */
    int fargate;             /* AWS ECS Fargate: hostname "" and task_arn tag */
    struct apm_str task_arn;
};

/* attributes.SourceFromAttrs (source.go): the hostname rules of the resource. */
int apm_host_source(struct o2d_arena *a, const OtlpResource *res, struct apm_source *out);
/* `_dd.tags.container`: ContainerTagsFromResourceAttributes flattened as k:v,k:v (mapped tags in
 * ContainerMappings order, then datadog.container.tag.* in attribute order), plus the Fargate
 * task_arn tag when no mapped tag gave it. Empty when there is none. */
int apm_host_container_tags(struct o2d_arena *a, const OtlpResource *res,
                            const struct apm_source *src, struct o2d_buf *scratch,
                            struct apm_str *out);

/* ---- apm_sampling.c ---- */

/* The head-sampling probability of a W3C tracestate (`ot=th:` or `ot=p:`), as
 * samplingProbFromTracestate decodes it: 1 and *out in (0, 1] when it gives one, else 0. */
int apm_sample_rate_from_tracestate(const char *ts, size_t n, double *out);

/* ---- apm_json.c: JSON text of attribute values, events and links, as Go writes them ---- */

/* Attribute values as Go writes them live in translate/resource (res_json.c); apm's callers
 * use them under these names. */
static inline int apm_json_value(struct o2d_buf *b, struct o2d_arena *a, const OtlpAnyValue *v,
                                 int depth)
{
    return res_json_value(b, a, v, depth);
}
static inline int apm_json_string(struct o2d_buf *b, const char *s, size_t n)
{
    return res_json_string(b, s, n);
}
static inline int apm_json_float(struct o2d_buf *b, double f)
{
    return res_json_float(b, f);
}
/* MarshalEvents / MarshalLinks of transform.go. */
int apm_json_events(struct o2d_buf *b, struct o2d_arena *a, const OtlpSpan *span);
int apm_json_links(struct o2d_buf *b, struct o2d_arena *a, const OtlpSpan *span);
/* pcommon Value.AsString of v into the arena (or pointing into v for strings). */
static inline int apm_value_as_string(struct o2d_arena *a, const OtlpAnyValue *v,
                                      struct apm_str *out)
{
    /* most values are strings: the string itself, without the call */
    if (v != NULL &&
        v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        out->p = v->string_value;
        out->n = strlen(v->string_value);
        return O2D_OK;
    }
    struct res_str r;
    int rv = res_value_as_string(a, v, &r);
    out->p = r.p;
    out->n = r.n;
    return rv;
}

#endif
