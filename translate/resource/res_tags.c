/*
 * res_tags.c: the tags Datadog derives from resource attributes (DataDog/datadog-agent
 * pkg/opentelemetry-mapping-go/otlp/attributes/attributes.go@021dec7 TagsFromAttributes,
 * coreMapping, kubernetesMapping, KubernetesDDTags, ContainerMappings and
 * ContainerTagsFromResourceAttributes; process.go and system.go extractTags).
 *
 * Only this fixed table becomes tags; every other attribute is left to the caller (logs keep
 * them as attributes, metrics drop them unless configured otherwise).
 */
#include <string.h>

#include "o2d.h"
#include "resource.h"

struct mapping {
    const char *otel;
    const char *dd;
};

/* coreMapping: unified service tagging (and the instance id Fleet Automation reads). */
static const struct mapping core_mapping[] = {
    {"deployment.environment", "env"},
    {"service.name", "service"},
    {"service.version", "version"},
    {"deployment.environment.name", "env"},
    {"service.instance.id", "service.instance.id"},
};

/* kubernetesMapping: Datadog's and Kubernetes' standard labels ("kuberenetes" is Datadog's
 * spelling, kept so the same attribute maps). */
static const struct mapping kubernetes_mapping[] = {
    {"tags.datadoghq.com/env", "env"},
    {"tags.datadoghq.com/service", "service"},
    {"tags.datadoghq.com/version", "version"},
    {"app.kubernetes.io/name", "kube_app_name"},
    {"app.kubernetes.io/instance", "kube_app_instance"},
    {"app.kubernetes.io/version", "kube_app_version"},
    {"app.kuberenetes.io/component", "kube_app_component"},
    {"app.kubernetes.io/part-of", "kube_app_part_of"},
    {"app.kubernetes.io/managed-by", "kube_app_managed_by"},
};

/* KubernetesDDTags: Datadog tag names given verbatim as attribute keys. */
static const char *const kubernetes_dd_tags[] = {
    "architecture",
    "availability-zone",
    "chronos_job",
    "chronos_job_owner",
    "cluster_name",
    "container_id",
    "container_name",
    "dd_remote_config_id",
    "dd_remote_config_rev",
    "display_container_name",
    "docker_image",
    "ecs_cluster_name",
    "ecs_container_name",
    "eks_fargate_node",
    "env",
    "git.commit.sha",
    "git.repository_url",
    "image_id",
    "image_name",
    "image_tag",
    "kube_app_component",
    "kube_app_instance",
    "kube_app_managed_by",
    "kube_app_name",
    "kube_app_part_of",
    "kube_app_version",
    "kube_container_name",
    "kube_cronjob",
    "kube_daemon_set",
    "kube_deployment",
    "kube_job",
    "kube_namespace",
    "kube_ownerref_kind",
    "kube_ownerref_name",
    "kube_priority_class",
    "kube_qos",
    "kube_replica_set",
    "kube_replication_controller",
    "kube_service",
    "kube_stateful_set",
    "language",
    "marathon_app",
    "mesos_task",
    "nomad_dc",
    "nomad_group",
    "nomad_job",
    "nomad_namespace",
    "nomad_task",
    "oshift_deployment",
    "oshift_deployment_config",
    "os_name",
    "os_version",
    "persistentvolumeclaim",
    "pod_name",
    "pod_phase",
    "rancher_container",
    "rancher_service",
    "rancher_stack",
    "region",
    "service",
    "short_image",
    "swarm_namespace",
    "swarm_service",
    "task_name",
    "task_family",
    "task_version",
    "task_arn",
    "version",
};

/* ContainerMappings: container, cloud, ECS and Kubernetes resource conventions. */
const struct res_mapping res_container_mappings[] = {
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
const size_t res_n_container_mappings =
    sizeof(res_container_mappings) / sizeof(res_container_mappings[0]);

#define COUNT(t)          (sizeof(t) / sizeof((t)[0]))
#define CUSTOM_PREFIX     "datadog.container.tag."
#define CUSTOM_PREFIX_LEN (sizeof(CUSTOM_PREFIX) - 1)

/* process.go: the first of these that is set identifies the process. */
static const char *const process_keys[] = {"process.executable.name", "process.executable.path",
                                           "process.command", "process.command_line"};

struct tags {
    struct o2d_arena *a;
    struct res_str *v;
    size_t n;
};

static int add(struct tags *t, const char *k, size_t kn, struct res_str v)
{
    char *s = o2d_arena_alloc(t->a, kn + 1 + v.n + 1);
    if (s == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    memcpy(s, k, kn);
    s[kn] = ':';
    memcpy(s + kn + 1, v.p, v.n);
    s[kn + 1 + v.n] = '\0';
    t->v[t->n++] = (struct res_str){s, kn + 1 + v.n};
    return O2D_OK;
}

static int add_map(struct tags *t, const struct mapping *m, size_t nm, const char *key,
                   struct res_str v)
{
    for (size_t i = 0; i < nm; i++) {
        if (strcmp(m[i].otel, key) == 0 && v.n > 0) {
            return add(t, m[i].dd, strlen(m[i].dd), v);
        }
    }
    return O2D_OK;
}

/* ContainerTagsFromResourceAttributes: a mapped tag's value is the last attribute's; a custom
 * tag never replaces a mapped one, and the first of duplicate custom tags wins. */
static int container_tags(struct tags *t, OtlpKeyValue *const *attrs, size_t n)
{
    struct res_str mapped[COUNT(res_container_mappings)];
    memset(mapped, 0, sizeof(mapped));
    for (size_t i = 0; i < n; i++) {
        struct res_str v = res_value_str(attrs[i]->value);
        for (size_t m = 0; m < COUNT(res_container_mappings); m++) {
            if (v.n > 0 && strcmp(attrs[i]->key, res_container_mappings[m].otel) == 0) {
                mapped[m] = v;
            }
        }
    }
    int rv = O2D_OK;
    for (size_t m = 0; m < COUNT(res_container_mappings) && rv == O2D_OK; m++) {
        if (mapped[m].n > 0) {
            rv = add(t, res_container_mappings[m].dd, strlen(res_container_mappings[m].dd),
                     mapped[m]);
        }
    }
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        const char *k = attrs[i]->key;
        struct res_str v = res_value_str(attrs[i]->value);
        if (strncmp(k, CUSTOM_PREFIX, CUSTOM_PREFIX_LEN) != 0 || v.n == 0 ||
            k[CUSTOM_PREFIX_LEN] == '\0') {
            continue;
        }
        const char *ck = k + CUSTOM_PREFIX_LEN;
        int taken = 0;
        for (size_t m = 0; m < COUNT(res_container_mappings) && !taken; m++) {
            taken = mapped[m].n > 0 && strcmp(res_container_mappings[m].dd, ck) == 0;
        }
        for (size_t j = 0; j < i && !taken; j++) {
            taken = strcmp(attrs[j]->key, k) == 0 && res_value_str(attrs[j]->value).n > 0;
        }
        if (!taken) {
            rv = add(t, ck, strlen(ck), v);
        }
    }
    return rv;
}

int res_tags_from_attributes(struct o2d_arena *a, OtlpKeyValue *const *attrs, size_t n,
                             struct res_str **tags, size_t *n_tags)
{
    *tags = NULL;
    *n_tags = 0;
    if (n == 0) {
        return O2D_OK;
    }
    /* At most three tags per attribute (core, Kubernetes label, verbatim name), one container
     * tag per attribute, the process and the OS. */
    struct tags t = {.a = a, .n = 0};
    t.v = o2d_arena_alloc(a, (4 * n + 2) * sizeof(*t.v));
    if (t.v == NULL) {
        return O2D_ERR_TOO_LARGE;
    }
    struct res_str process[COUNT(process_keys)];
    struct res_str os_type = {"", 0};
    memset(process, 0, sizeof(process));
    int rv = O2D_OK;
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        const char *k = attrs[i]->key;
        struct res_str v = res_value_str(attrs[i]->value);
        for (size_t p = 0; p < COUNT(process_keys); p++) {
            if (strcmp(k, process_keys[p]) == 0) {
                process[p] = v;
            }
        }
        if (strcmp(k, "os.type") == 0) {
            os_type = v;
        }
        rv = add_map(&t, core_mapping, COUNT(core_mapping), k, v);
        if (rv == O2D_OK) {
            rv = add_map(&t, kubernetes_mapping, COUNT(kubernetes_mapping), k, v);
        }
        for (size_t d = 0; d < COUNT(kubernetes_dd_tags) && rv == O2D_OK; d++) {
            if (strcmp(k, kubernetes_dd_tags[d]) == 0) {
                rv = add(&t, k, strlen(k), v); /* even when empty, as Datadog does */
                break;
            }
        }
    }
    if (rv == O2D_OK) {
        rv = container_tags(&t, attrs, n);
    }
    for (size_t p = 0; p < COUNT(process_keys) && rv == O2D_OK; p++) {
        if (process[p].n > 0) {
            rv = add(&t, process_keys[p], strlen(process_keys[p]), process[p]);
            break;
        }
    }
    if (rv == O2D_OK && os_type.n > 0) {
        rv = add(&t, "os.type", 7, os_type);
    }
    if (rv != O2D_OK) {
        return rv;
    }
    *tags = t.v;
    *n_tags = t.n;
    return O2D_OK;
}
