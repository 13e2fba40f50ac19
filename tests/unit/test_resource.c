/*
 * test_resource.c: translate/resource: the host source (Datadog source_test.go cases:
 * Fargate first, host, datadog.host.name, AWS, GCP, Azure, Kubernetes node with cluster,
 * localhost refused) and TagsFromAttributes (attributes_test.go TestTagsFromAttributes and
 * TestTagsFromAttributesEmpty, ContainerTagsFromResourceAttributes' precedence, process and
 * os.type tags). Resources are written as OTLP/JSON and decoded by translate/otlp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "o2d.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "res_ecs.h"
#include "resource.h"

static struct o2d_arena arena;

static int setup(void **state)
{
    (void)state;
    o2d_arena_init(&arena, 16u << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    o2d_arena_cleanup(&arena);
    return 0;
}

/* A resource with the OTLP/JSON attributes `attrs` (the inside of "attributes":[...]). */
static const OtlpResource *resource(const char *attrs)
{
    char body[8192];
    snprintf(body, sizeof(body),
             "{\"resourceLogs\":[{\"resource\":{\"attributes\":[%s]},\"scopeLogs\":[]}]}", attrs);
    void *msg = NULL;
    const char *reason = NULL;
    int rv = otlp_json_decode(&arena, OTLP_SIGNAL_LOGS, (const uint8_t *)body, strlen(body), &msg,
                              &reason);
    if (rv != O2D_OK) {
        fail_msg("decode: %s", reason);
    }
    const OtlpLogsReq *req = msg;
    return req->resource_logs[0]->resource;
}

#define S(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"
#define I(k, v) "{\"key\":\"" k "\",\"value\":{\"intValue\":\"" v "\"}}"

static void expect_host(const char *attrs, int found, const char *host)
{
    struct res_source src;
    assert_int_equal(res_source(&arena, resource(attrs), &src), O2D_OK);
    assert_int_equal(src.found, found);
    assert_int_equal(src.fargate, 0);
    if (found) {
        assert_int_equal(src.hostname.n, strlen(host));
        assert_memory_equal(src.hostname.p, host, src.hostname.n);
    }
}

static void test_source_rules(void **state)
{
    (void)state;
    expect_host(S("host.name", "node-1"), 1, "node-1");
    expect_host(S("host.id", "i-1") "," S("host.name", "node-1"), 1, "i-1");
    /* "host" wins over everything, any type (AsString) */
    expect_host(I("host", "42") "," S("datadog.host.name", "dd"), 1, "42");
    expect_host(S("datadog.host.name", "dd") "," S("host.name", "n"), 1, "dd");
    /* AWS: the instance id or nothing */
    expect_host(S("cloud.provider", "aws") "," S("host.name", "n"), 0, NULL);
    expect_host(S("cloud.provider", "aws") "," S("host.id", "i-0abc"), 1, "i-0abc");
    /* GCP: host.name cut at the first dot when it has 3+ dots, plus the project */
    expect_host(S("cloud.provider",
                  "gcp") "," S("host.name", "vm.c.proj.internal") "," S("cloud.account.id", "proj"),
                1, "vm.proj");
    expect_host(S("cloud.provider", "gcp") "," S("host.name", "vm"), 0, NULL);
    expect_host(S("cloud.provider", "azure") "," S("host.name", "az"), 1, "az");
    expect_host(S("k8s.node.name", "node") "," S("k8s.cluster.name", "c1"), 1, "node-c1");
    expect_host(S("host.name", "localhost"), 0, NULL);
    expect_host(S("host.name", "127.0.0.1"), 0, NULL);
    expect_host(S("service.name", "svc"), 0, NULL);
}

static void test_source_fargate(void **state)
{
    (void)state;
    struct res_source src;
    const char *arn = "arn:aws:ecs:us-east-1:123:task/c/abc";
    char attrs[512];
    snprintf(attrs, sizeof(attrs),
             S("aws.ecs.launchtype", "fargate") "," S("host.name", "h") ",{\"key\":"
                                                                        "\"aws.ecs.task.arn\","
                                                                        "\"value\":{"
                                                                        "\"stringValue\":\"%s\"}}",
             arn);
    assert_int_equal(res_source(&arena, resource(attrs), &src), O2D_OK);
    assert_int_equal(src.found, 1);
    assert_int_equal(src.fargate, 1);
    assert_int_equal(src.hostname.n, 0);
    assert_int_equal(src.task_arn.n, strlen(arn));
    /* Fargate without a task ARN: no host at all (not host.name) */
    assert_int_equal(
        res_source(&arena, resource(S("aws.ecs.launchtype", "fargate") "," S("host.name", "h")),
                   &src),
        O2D_OK);
    assert_int_equal(src.found, 0);
}

/* The tags, joined by ',' for comparison. */
static const char *tags_of(const char *attrs)
{
    const OtlpResource *r = resource(attrs);
    struct res_str *t;
    size_t n;
    assert_int_equal(res_tags_from_attributes(&arena, r->attributes, r->n_attributes, &t, &n),
                     O2D_OK);
    static char out[4096];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%.*s", i > 0 ? "," : "", (int)t[i].n,
                              t[i].p);
    }
    out[o] = '\0';
    return out;
}

static void test_tags(void **state)
{
    (void)state;
    /* TestTagsFromAttributes: process.executable.name wins over the path, the command and
     * the pid; os.type; unified service tags; non-table attributes are not tags */
    assert_string_equal(
        tags_of(S("process.executable.name", "otelcol") "," S(
            "process.executable.path",
            "/usr/bin/"
            "cmd/"
            "otelcol") "," S("process.command",
                             "cmd/otelcol") "," I("process.pid",
                                                  "1") "," S("os.type",
                                                             "linux") "," S("service.name",
                                                                            "svc") "," S("deploymen"
                                                                                         "t."
                                                                                         "environme"
                                                                                         "nt."
                                                                                         "name",
                                                                                         "prod") "," S("service."
                                                                                                       "version",
                                                                                                       "1.2") "," S("custom.attr",
                                                                                                                    "x")),
        "service:svc,env:prod,version:1.2,process.executable.name:otelcol,os.type:linux");
    /* TestTagsFromAttributesEmpty */
    assert_string_equal(tags_of(""), "");
    /* empty values are no unified tags */
    assert_string_equal(tags_of(S("service.name", "")), "");
    /* the old deployment.environment too; Kubernetes labels; verbatim Datadog names */
    assert_string_equal(
        tags_of(S("deployment.environment", "stg") "," S("app.kubernetes.io/name", "app") "," S(
            "tags.datadoghq.com/service", "ksvc") "," S("kube_qos", "Burstable")),
        "env:stg,kube_app_name:app,service:ksvc,kube_qos:Burstable");
    /* container, cloud, ECS: table order; custom tags never replace a mapped one */
    assert_string_equal(
        tags_of(S("datadog.container.tag.container_id", "custom") "," S(
            "cloud.region",
            "us-east-1") "," S("container.id",
                               "c1") "," S("aws.ecs.task.family",
                                           "fam") "," S("datadog.container.tag.team",
                                                        "a") "," S("datadog.container.tag.team",
                                                                   "b") "," S("datadog.container."
                                                                              "tag.",
                                                                              "x")),
        "container_id:c1,region:us-east-1,task_family:fam,team:a");
    /* the process: the first of name, path, command, command line that is set */
    assert_string_equal(tags_of(S("process.command_line", "a b") "," S("process.command", "a")),
                        "process.command:a");
}

static char *slurp(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/ecs/%s", O2D_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static void expect_tags(const char *const *tags, size_t n, const char *want)
{
    char got[4096];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? "," : "", tags[i]);
    }
    if (strcmp(got, want) != 0) {
        fail_msg("tags\n got  %s\n want %s", got, want);
    }
}

#define TASK_TAGS                                                                                  \
    "task_name:shop-api,task_family:shop-api,task_version:17,aws_account:111122223333,"            \
    "region:us-west-2,"                                                                            \
    "task_arn:arn:aws:ecs:us-west-2:111122223333:task/shop-prod/5e5c7a3a1b2c4d5e8f90a1b2c3d4e5f6," \
    "cluster_name:shop-prod,ecs_cluster_name:shop-prod,"                                           \
    "ecs_cluster_arn:arn:aws:ecs:us-west-2:111122223333:cluster/shop-prod,"                        \
    "availability-zone:us-west-2b,availability_zone:us-west-2b,ecs_service:shop-api"

/* res_ecs: the tags of handleECSTask / handleContainer from a Fargate task's metadata, and
 * which resources get them. */
static void test_ecs_tags(void **state)
{
    (void)state;
    size_t tn, sn;
    char *task = slurp("task-fargate.json", &tn);
    char *self = slurp("container-otel2dd.json", &sn);
    struct res_ecs *e;
    const char *reason;
    assert_int_equal(res_ecs_parse(task, tn, self, sn, &e, &reason), O2D_OK);
    assert_true(res_ecs_fargate(e));
    assert_true(res_ecs_sidecar(e)); /* the app is another container */
    const char *const *tags;
    size_t n;
    /* the app's container id: the task's tags and the container's */
    assert_true(res_ecs_tags_for(
        e, resource(S("container.id", "5e5c7a3a1b2c4d5e8f90a1b2c3d4e5f6-1111111111")), &tags, &n));
    expect_tags(tags, n,
                TASK_TAGS ",ecs_container_name:app,container_name:app,"
                          "image_name:111122223333.dkr.ecr.us-west-2.amazonaws.com/shop/api,"
                          "short_image:api,image_tag:2.4.1,"
                          "container_id:5e5c7a3a1b2c4d5e8f90a1b2c3d4e5f6-1111111111");
    /* this task's ARN, or nothing to tell (a sidecar's app without the ECS detector) */
    assert_true(res_ecs_tags_for(
        e,
        resource(S(
            "aws.ecs.task.arn",
            "arn:aws:ecs:us-west-2:111122223333:task/shop-prod/5e5c7a3a1b2c4d5e8f90a1b2c3d4e5f6")),
        &tags, &n));
    expect_tags(tags, n, TASK_TAGS);
    assert_true(res_ecs_tags_for(e, resource(S("service.name", "shop")), &tags, &n));
    expect_tags(tags, n, TASK_TAGS);
    /* another task, or another task's container: not ours */
    assert_false(res_ecs_tags_for(
        e, resource(S("aws.ecs.task.arn", "arn:aws:ecs:us-west-2:111122223333:task/x/other")),
        &tags, &n));
    assert_int_equal(n, 0);
    assert_false(res_ecs_tags_for(e, resource(S("container.id", "abcdef")), &tags, &n));
    assert_false(res_ecs_tags_for(NULL, resource(S("service.name", "shop")), &tags, &n));
    res_ecs_free(e);

    /* without our own container's document, two containers still make a sidecar; the image
     * pinned by digest has no tag: "latest", as workloadmeta fills it in */
    assert_int_equal(res_ecs_parse(task, tn, NULL, 0, &e, &reason), O2D_OK);
    assert_true(res_ecs_sidecar(e));
    assert_true(res_ecs_tags_for(
        e, resource(S("container.id", "5e5c7a3a1b2c4d5e8f90a1b2c3d4e5f6-2222222222")), &tags, &n));
    assert_string_equal(tags[n - 4], "image_name:otel2dd");
    assert_string_equal(tags[n - 2], "image_tag:latest");
    res_ecs_free(e);

    /* a shared service: otel2dd alone in its task (plus ECS's own container) tags nothing it
     * cannot attribute; an EC2 task has no availability zone tags */
    static const char alone[] =
        "{\"TaskARN\":\"arn:aws:ecs:eu-west-1:1:task/c/t1\",\"Cluster\":\"c\",\"Family\":\"f\","
        "\"Revision\":\"2\",\"LaunchType\":\"EC2\",\"AvailabilityZone\":\"eu-west-1a\","
        "\"Containers\":[{\"DockerId\":\"d1\",\"Name\":\"otel2dd\",\"Image\":\"otel2dd:1\"},"
        "{\"DockerId\":\"d2\",\"Name\":\"~internal~ecs~pause\",\"Image\":\"pause\"}]}";
    static const char alone_self[] = "{\"DockerId\":\"d1\",\"Name\":\"otel2dd\"}";
    assert_int_equal(
        res_ecs_parse(alone, strlen(alone), alone_self, strlen(alone_self), &e, &reason), O2D_OK);
    assert_false(res_ecs_fargate(e));
    assert_false(res_ecs_sidecar(e));
    assert_false(res_ecs_tags_for(e, resource(S("service.name", "shop")), &tags, &n));
    assert_true(res_ecs_tags_for(
        e, resource(S("aws.ecs.task.arn", "arn:aws:ecs:eu-west-1:1:task/c/t1")), &tags, &n));
    expect_tags(tags, n,
                "task_name:f,task_family:f,task_version:2,aws_account:1,region:eu-west-1,"
                "task_arn:arn:aws:ecs:eu-west-1:1:task/c/t1,cluster_name:c,ecs_cluster_name:c");
    res_ecs_free(e);

    /* garbage is refused with a reason */
    static const char *const bad[] = {"", "not json", "[1,2]", "{\"Family\":\"f\"}",
                                      "{\"TaskARN\":7}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = NULL;
        assert_int_equal(res_ecs_parse(bad[i], strlen(bad[i]), NULL, 0, &e, &reason),
                         O2D_ERR_INVALID);
        assert_null(e);
        assert_non_null(reason);
    }
    free(task);
    free(self);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_source_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_fargate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_tags, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
