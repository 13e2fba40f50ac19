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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_source_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_fargate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
