/*
 * res_host.c: where a resource runs (DataDog/datadog-agent
 * pkg/opentelemetry-mapping-go/otlp/attributes/source.go@000ac37, SourceFromAttrs and
 * unsanitizedHostnameFromAttributes; ec2.go, gcp.go, azure.go HostnameFromAttrs).
 *
 * Left out: Azure App Service and Container Apps sources (they need several attributes and give
 * no hostname, so they fall to the caller's fallback instead of ""), and the EC2 cluster-name
 * tag lookup for Kubernetes nodes.
 */
#include <string.h>

#include "o2d.h"
#include "resource.h"

#define LIT(s) ((struct res_str){(s), sizeof(s) - 1})

const OtlpAnyValue *res_attr_get(OtlpKeyValue *const *attrs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (attrs[i] != NULL && strcmp(attrs[i]->key, key) == 0) {
            return attrs[i]->value;
        }
    }
    return NULL;
}

struct res_str res_value_str(const OtlpAnyValue *v)
{
    if (v == NULL ||
        v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        return LIT("");
    }
    return (struct res_str){v->string_value, strlen(v->string_value)};
}

static int str_eq(struct res_str s, const char *lit)
{
    return strlen(lit) == s.n && memcmp(s.p, lit, s.n) == 0;
}

static int concat3(struct o2d_arena *a, struct res_str x, const char *sep, struct res_str y,
                   struct res_str *out)
{
    size_t sl = strlen(sep);
    char *d = o2d_arena_alloc(a, x.n + sl + y.n + 1);
    if (d == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memcpy(d, x.p, x.n);
    memcpy(d + x.n, sep, sl);
    memcpy(d + x.n + sl, y.p, y.n);
    d[x.n + sl + y.n] = '\0';
    out->p = d;
    out->n = x.n + sl + y.n;
    return O2D_OK;
}

struct attrs {
    OtlpKeyValue *const *kv;
    size_t n;
};

static const OtlpAnyValue *get(const struct attrs *at, const char *key)
{
    return res_attr_get(at->kv, at->n, key);
}

/* unsanitizedHostnameFromAttributes; *found = 0 when no rule applies. */
static int hostname_from_attrs(struct o2d_arena *a, const struct attrs *at, struct res_str *out,
                               int *found)
{
    const OtlpAnyValue *v;
    *found = 1;
    if ((v = get(at, "host")) != NULL) {
        /* Used even if not a string (AsString), to avoid double tagging. */
        return res_value_as_string(a, v, out);
    }
    if ((v = get(at, "datadog.host.name")) != NULL) {
        *out = res_value_str(v);
        return O2D_OK;
    }
    if (str_eq(res_value_str(get(at, "aws.ecs.launchtype")), "fargate")) {
        *found = 0;
        return O2D_OK;
    }
    const OtlpAnyValue *provider = get(at, "cloud.provider");
    struct res_str cp = res_value_str(provider);
    if (provider != NULL && str_eq(cp, "aws")) {
        /* ec2.HostnameFromAttrs: the instance id, and nothing else. */
        v = get(at, "host.id");
        *found = v != NULL;
        *out = res_value_str(v);
        return O2D_OK;
    }
    if (provider != NULL && str_eq(cp, "gcp")) {
        /* gcp.HostnameFromAttrs: host.name (cut at the first dot when it has 3+ dots, the
         * GCE internal form) + "." + cloud.account.id; both required. */
        const OtlpAnyValue *hn = get(at, "host.name");
        const OtlpAnyValue *acct = get(at, "cloud.account.id");
        if (hn == NULL || acct == NULL) {
            *found = 0;
            return O2D_OK;
        }
        struct res_str h = res_value_str(hn);
        size_t dots = 0;
        for (size_t i = 0; i < h.n; i++) {
            dots += h.p[i] == '.';
        }
        if (dots >= 3) {
            h.n = (size_t)((const char *)memchr(h.p, '.', h.n) - h.p);
        }
        return concat3(a, h, ".", res_value_str(acct), out);
    }
    if (provider != NULL && str_eq(cp, "azure")) {
        /* azure.HostnameFromAttrs: the VM id, else host.name. */
        if ((v = get(at, "host.id")) != NULL && res_value_str(v).n > 0) {
            *out = res_value_str(v);
            return O2D_OK;
        }
        v = get(at, "host.name");
        *found = v != NULL;
        *out = res_value_str(v);
        return O2D_OK;
    }
    if ((v = get(at, "k8s.node.name")) != NULL) {
        const OtlpAnyValue *cluster = get(at, "k8s.cluster.name");
        if (cluster != NULL) {
            return concat3(a, res_value_str(v), "-", res_value_str(cluster), out);
        }
        *out = res_value_str(v);
        return O2D_OK;
    }
    if ((v = get(at, "host.id")) != NULL) {
        *out = res_value_str(v);
        return O2D_OK;
    }
    if ((v = get(at, "host.name")) != NULL) {
        *out = res_value_str(v);
        return O2D_OK;
    }
    *found = 0;
    return O2D_OK;
}

int res_source_from_attrs(struct o2d_arena *a, OtlpKeyValue *const *kv, size_t n,
                          struct res_source *out)
{
    static const char *const invalid[] = {"0.0.0.0",
                                          "127.0.0.1",
                                          "localhost",
                                          "localhost.localdomain",
                                          "localhost6.localdomain6",
                                          "ip6-localhost"};
    struct attrs at = {kv, n};
    memset(out, 0, sizeof(*out));
    out->hostname = LIT("");
    out->task_arn = LIT("");
    if (str_eq(res_value_str(get(&at, "aws.ecs.launchtype")), "fargate")) {
        const OtlpAnyValue *arn = get(&at, "aws.ecs.task.arn");
        if (arn != NULL) {
            out->found = 1;
            out->fargate = 1;
            out->task_arn = res_value_str(arn);
            return O2D_OK;
        }
    }
    struct res_str h;
    int found;
    int rv = hostname_from_attrs(a, &at, &h, &found);
    if (rv != O2D_OK || !found) {
        return rv;
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        if (str_eq(h, invalid[i])) {
            return O2D_OK;
        }
    }
    out->found = 1;
    out->hostname = h;
    return O2D_OK;
}

int res_source(struct o2d_arena *a, const OtlpResource *res, struct res_source *out)
{
    if (res == NULL) {
        return res_source_from_attrs(a, NULL, 0, out);
    }
    return res_source_from_attrs(a, res->attributes, res->n_attributes, out);
}
