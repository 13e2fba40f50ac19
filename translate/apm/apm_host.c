/*
 * apm_host.c: what a resource says about where it runs: the hostname (DataDog/datadog-agent
 * pkg/opentelemetry-mapping-go/otlp/attributes/source.go@000ac37, SourceFromAttrs and
 * unsanitizedHostnameFromAttributes) and the container tags of the TracerPayload
 * (attributes.go ContainerMappings / ContainerTagsFromResourceAttributes, and
 * pkg/trace/api/otlp.go receiveResourceSpansV2 for the Fargate task_arn tag).
 *
 * Left out: Azure App Service and Container Apps sources (they need several attributes and give
 * no hostname, so a span from there gets the fallback hostname instead of ""), and the EC2
 * cluster-name tag lookup for Kubernetes nodes.
 */
#include <string.h>

#include "apm_int.h"
#include "o2d.h"

static const OtlpAnyValue *res_get(const OtlpResource *res, const char *key)
{
    if (res == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < res->n_attributes; i++) {
        if (strcmp(res->attributes[i]->key, key) == 0) {
            return res->attributes[i]->value;
        }
    }
    return NULL;
}

/* pcommon Value.Str(): the string, or "" for any other type. */
static struct apm_str str_of(const OtlpAnyValue *v)
{
    if (v == NULL ||
        v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        return APM_STR_LIT("");
    }
    return (struct apm_str){v->string_value, strlen(v->string_value)};
}

static int str_eq(struct apm_str s, const char *lit)
{
    return strlen(lit) == s.n && memcmp(s.p, lit, s.n) == 0;
}

static int concat3(struct o2d_arena *a, struct apm_str x, const char *sep, struct apm_str y,
                   struct apm_str *out)
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

/* unsanitizedHostnameFromAttributes; *found = 0 when no rule applies. */
static int hostname_from_attrs(struct o2d_arena *a, const OtlpResource *res, struct apm_str *out,
                               int *found)
{
    const OtlpAnyValue *v;
    *found = 1;
    if ((v = res_get(res, "host")) != NULL) {
        /* Used even if not a string (AsString), to avoid double tagging. */
        return apm_value_as_string(a, v, out);
    }
    if ((v = res_get(res, "datadog.host.name")) != NULL) {
        *out = str_of(v);
        return O2D_OK;
    }
    if (str_eq(str_of(res_get(res, "aws.ecs.launchtype")), "fargate")) {
        *found = 0;
        return O2D_OK;
    }
    const OtlpAnyValue *provider = res_get(res, "cloud.provider");
    struct apm_str cp = str_of(provider);
    if (provider != NULL && str_eq(cp, "aws")) {
        /* ec2.HostnameFromAttrs: the instance id, and nothing else. */
        v = res_get(res, "host.id");
        *found = v != NULL;
        *out = str_of(v);
        return O2D_OK;
    }
    if (provider != NULL && str_eq(cp, "gcp")) {
        /* gcp.HostnameFromAttrs: host.name (cut at the first dot when it has 3+ dots, the
         * GCE internal form) + "." + cloud.account.id; both required. */
        const OtlpAnyValue *hn = res_get(res, "host.name");
        const OtlpAnyValue *acct = res_get(res, "cloud.account.id");
        if (hn == NULL || acct == NULL) {
            *found = 0;
            return O2D_OK;
        }
        struct apm_str h = str_of(hn);
        size_t dots = 0;
        for (size_t i = 0; i < h.n; i++) {
            dots += h.p[i] == '.';
        }
        if (dots >= 3) {
            h.n = (size_t)((const char *)memchr(h.p, '.', h.n) - h.p);
        }
        return concat3(a, h, ".", str_of(acct), out);
    }
    if (provider != NULL && str_eq(cp, "azure")) {
        /* azure.HostnameFromAttrs: the VM id, else host.name. */
        if ((v = res_get(res, "host.id")) != NULL && str_of(v).n > 0) {
            *out = str_of(v);
            return O2D_OK;
        }
        v = res_get(res, "host.name");
        *found = v != NULL;
        *out = str_of(v);
        return O2D_OK;
    }
    if ((v = res_get(res, "k8s.node.name")) != NULL) {
        const OtlpAnyValue *cluster = res_get(res, "k8s.cluster.name");
        if (cluster != NULL) {
            return concat3(a, str_of(v), "-", str_of(cluster), out);
        }
        *out = str_of(v);
        return O2D_OK;
    }
    if ((v = res_get(res, "host.id")) != NULL) {
        *out = str_of(v);
        return O2D_OK;
    }
    if ((v = res_get(res, "host.name")) != NULL) {
        *out = str_of(v);
        return O2D_OK;
    }
    *found = 0;
    return O2D_OK;
}

int apm_host_source(struct o2d_arena *a, const OtlpResource *res, struct apm_source *out)
{
    static const char *const invalid[] = {"0.0.0.0",
                                          "127.0.0.1",
                                          "localhost",
                                          "localhost.localdomain",
                                          "localhost6.localdomain6",
                                          "ip6-localhost"};
    memset(out, 0, sizeof(*out));
    out->hostname = APM_STR_LIT("");
    out->task_arn = APM_STR_LIT("");
    if (str_eq(str_of(res_get(res, "aws.ecs.launchtype")), "fargate")) {
        const OtlpAnyValue *arn = res_get(res, "aws.ecs.task.arn");
        if (arn != NULL) {
            out->found = 1;
            out->fargate = 1;
            out->task_arn = str_of(arn);
            return O2D_OK;
        }
    }
    struct apm_str h;
    int found;
    int rv = hostname_from_attrs(a, res, &h, &found);
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

struct container_mapping {
    const char *otel;
    const char *dd;
};

/* attributes.ContainerMappings, in the order we write them. */
static const struct container_mapping container_mappings[] = {
    {"container.id", "container_id"},
    {"container.name", "container_name"},
    {"container.image.name", "image_name"},
    {"container.image.tag", "image_tag"},
    {"container.runtime", "runtime"},
    {"cloud.provider", "cloud_provider"},
    {"cloud.region", "region"},
    {"cloud.availability_zone", "zone"},
    {"aws.ecs.task.family", "task_family"},
    {"aws.ecs.task.arn", "task_arn"},
    {"aws.ecs.cluster.arn", "ecs_cluster_name"},
    {"aws.ecs.task.revision", "task_version"},
    {"aws.ecs.container.arn", "ecs_container_name"},
    {"k8s.container.name", "kube_container_name"},
    {"k8s.cluster.name", "kube_cluster_name"},
    {"k8s.deployment.name", "kube_deployment"},
    {"k8s.replicaset.name", "kube_replica_set"},
    {"k8s.statefulset.name", "kube_stateful_set"},
    {"k8s.daemonset.name", "kube_daemon_set"},
    {"k8s.job.name", "kube_job"},
    {"k8s.cronjob.name", "kube_cronjob"},
    {"k8s.namespace.name", "kube_namespace"},
    {"k8s.pod.name", "pod_name"},
};
#define N_MAPPINGS (sizeof(container_mappings) / sizeof(container_mappings[0]))

#define CUSTOM_PREFIX     "datadog.container.tag."
#define CUSTOM_PREFIX_LEN (sizeof(CUSTOM_PREFIX) - 1)

static int is_mapped_dd_key(const char *k, size_t n, const OtlpResource *res)
{
    for (size_t i = 0; i < N_MAPPINGS; i++) {
        const char *dd = container_mappings[i].dd;
        if (strlen(dd) == n && memcmp(dd, k, n) == 0) {
            return str_of(res_get(res, container_mappings[i].otel)).n > 0;
        }
    }
    return 0;
}

static int append_tag(struct o2d_buf *b, const char *k, size_t kn, struct apm_str v)
{
    int rv = O2D_OK;
    if (b->len > 0) {
        rv = o2d_buf_append_byte(b, ',');
    }
    rv = rv == O2D_OK ? o2d_buf_append(b, k, kn) : rv;
    rv = rv == O2D_OK ? o2d_buf_append_byte(b, ':') : rv;
    return rv == O2D_OK ? o2d_buf_append(b, v.p, v.n) : rv;
}

int apm_host_container_tags(struct o2d_arena *a, const OtlpResource *res,
                            const struct apm_source *src, struct o2d_buf *scratch,
                            struct apm_str *out)
{
    int rv = O2D_OK;
    int have_task_arn = 0;
    o2d_buf_reset(scratch);
    *out = APM_STR_LIT("");
    if (res == NULL) {
        return O2D_OK;
    }
    for (size_t i = 0; i < N_MAPPINGS && rv == O2D_OK; i++) {
        struct apm_str v = str_of(res_get(res, container_mappings[i].otel));
        if (v.n > 0) {
            rv = append_tag(scratch, container_mappings[i].dd, strlen(container_mappings[i].dd), v);
            have_task_arn |= strcmp(container_mappings[i].dd, "task_arn") == 0;
        }
    }
    /* Custom tags never replace a mapped one; the first of duplicates wins. */
    for (size_t i = 0; i < res->n_attributes && rv == O2D_OK; i++) {
        const char *k = res->attributes[i]->key;
        if (strncmp(k, CUSTOM_PREFIX, CUSTOM_PREFIX_LEN) != 0) {
            continue;
        }
        const char *ck = k + CUSTOM_PREFIX_LEN;
        size_t ckn = strlen(ck);
        struct apm_str v = str_of(res->attributes[i]->value);
        if (ckn == 0 || v.n == 0 || is_mapped_dd_key(ck, ckn, res)) {
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(res->attributes[j]->key, k) == 0 &&
                str_of(res->attributes[j]->value).n > 0) {
                dup = 1;
                break;
            }
        }
        if (!dup) {
            rv = append_tag(scratch, ck, ckn, v);
            have_task_arn |= ckn == 8 && memcmp(ck, "task_arn", 8) == 0;
        }
    }
    /* receiveResourceSpansV2 appends the Fargate source's tag (task_arn:<arn>) when the tagger
     * gave none; the agent may then write task_arn twice, we write it once. */
    if (rv == O2D_OK && src->fargate && !have_task_arn) {
        rv = append_tag(scratch, "task_arn", 8, src->task_arn);
    }
    if (rv != O2D_OK || scratch->len == 0) {
        return rv;
    }
    char *s = o2d_arena_strndup(a, (const char *)scratch->data, scratch->len);
    if (s == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    out->p = s;
    out->n = scratch->len;
    return O2D_OK;
}
