/*
 * test_config.c: the configuration loader (collector/config/). Valid files are checked
 * field by field; invalid ones are golden fixtures, tests/data/config/invalid/NAME.yaml
 * beside NAME.err holding the exact message after the file name, walked by one test.
 * ${env:...} expansion is tested on inline YAML with variables set here.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"

#define DATA O2D_TEST_DATA "/config"
#define MIB  (1024 * 1024)

static void assert_config_equal(const struct o2d_config *a, const struct o2d_config *b)
{
    const struct o2d_sampling_config *sa = &a->sampling, *sb = &b->sampling;
    assert_int_equal(sa->apm_section, sb->apm_section);
    assert_true(sa->apm_percent == sb->apm_percent);
    assert_int_equal(sa->apm_mode, sb->apm_mode);
    assert_int_equal(sa->apm_precision, sb->apm_precision);
    assert_int_equal(sa->apm_seed, sb->apm_seed);
    assert_int_equal(sa->apm_fail_closed, sb->apm_fail_closed);
    assert_int_equal(sa->apm_keep_errors, sb->apm_keep_errors);
    assert_int_equal(sa->apm_slow_ms, sb->apm_slow_ms);
    assert_int_equal(sa->n_services, sb->n_services);
    for (size_t i = 0; i < sa->n_services; i++) {
        assert_string_equal(sa->services[i], sb->services[i]);
        assert_true(sa->service_percent[i] == sb->service_percent[i]);
    }
    assert_int_equal(sa->llmobs_section, sb->llmobs_section);
    assert_true(sa->llmobs_percent == sb->llmobs_percent);
    assert_int_equal(sa->llmobs_mode, sb->llmobs_mode);
    assert_int_equal(sa->llmobs_precision, sb->llmobs_precision);
    assert_int_equal(sa->llmobs_keep_errors, sb->llmobs_keep_errors);
    assert_int_equal(sa->n_apps, sb->n_apps);
    for (size_t i = 0; i < sa->n_apps; i++) {
        assert_string_equal(sa->apps[i], sb->apps[i]);
        assert_true(sa->app_percent[i] == sb->app_percent[i]);
    }
    assert_int_equal(a->grpc.enabled, b->grpc.enabled);
    assert_string_equal(a->grpc.endpoint, b->grpc.endpoint);
    assert_int_equal(a->grpc.max_recv_msg_size, b->grpc.max_recv_msg_size);
    assert_int_equal(a->grpc.max_concurrent_streams, b->grpc.max_concurrent_streams);
    assert_int_equal(a->grpc.max_connections, b->grpc.max_connections);
    assert_int_equal(a->grpc.max_connection_idle_ms, b->grpc.max_connection_idle_ms);
    assert_int_equal(a->grpc.max_connection_age_ms, b->grpc.max_connection_age_ms);
    assert_int_equal(a->grpc.max_connection_age_grace_ms, b->grpc.max_connection_age_grace_ms);
    assert_int_equal(a->grpc.request_timeout_ms, b->grpc.request_timeout_ms);
    assert_int_equal(a->http.enabled, b->http.enabled);
    assert_string_equal(a->http.endpoint, b->http.endpoint);
    assert_int_equal(a->http.max_request_body_size, b->http.max_request_body_size);
    assert_int_equal(a->http.max_connections, b->http.max_connections);
    assert_int_equal(a->http.idle_timeout_ms, b->http.idle_timeout_ms);
    assert_int_equal(a->http.read_timeout_ms, b->http.read_timeout_ms);
    assert_int_equal(a->memory_limit, b->memory_limit);
    assert_string_equal(a->health_endpoint, b->health_endpoint);
    assert_int_equal(a->debug_verbosity, b->debug_verbosity);
    assert_int_equal(a->log_level, b->log_level);
    assert_string_equal(a->source, b->source);
    assert_int_equal(a->datadog_section, b->datadog_section);
    assert_string_equal(a->datadog.hostname, b->datadog.hostname);
    assert_string_equal(a->datadog.api_key, b->datadog.api_key);
    assert_string_equal(a->datadog_key_file, b->datadog_key_file);
    assert_string_equal(a->datadog.site, b->datadog.site);
    assert_string_equal(a->datadog.api_endpoint, b->datadog.api_endpoint);
    assert_string_equal(a->datadog.traces_endpoint, b->datadog.traces_endpoint);
    assert_int_equal(a->datadog.apm.span_name_as_resource_name,
                     b->datadog.apm.span_name_as_resource_name);
    assert_int_equal(a->n_remappings, b->n_remappings);
    assert_int_equal(a->n_ignore_resources, b->n_ignore_resources);
    assert_int_equal(a->datadog.compute_stats_by_span_kind, b->datadog.compute_stats_by_span_kind);
    assert_int_equal(a->datadog.apm.compute_top_level_by_span_kind,
                     b->datadog.apm.compute_top_level_by_span_kind);
    assert_int_equal(a->datadog.peer_tags_aggregation, b->datadog.peer_tags_aggregation);
    assert_int_equal(a->datadog.sql_cache_enabled, b->datadog.sql_cache_enabled);
    assert_int_equal(a->datadog.sql_cache_max_bytes, b->datadog.sql_cache_max_bytes);
    assert_int_equal(a->datadog.flush_interval_ms, b->datadog.flush_interval_ms);
    assert_int_equal(a->datadog.queue_max_bytes, b->datadog.queue_max_bytes);
    assert_int_equal(a->datadog.max_elapsed_ms, b->datadog.max_elapsed_ms);
    assert_string_equal(a->grpc.tls_cert_file, b->grpc.tls_cert_file);
    assert_string_equal(a->grpc.tls_key_file, b->grpc.tls_key_file);
    assert_string_equal(a->http.tls_cert_file, b->http.tls_cert_file);
    assert_string_equal(a->http.tls_key_file, b->http.tls_key_file);
    assert_string_equal(a->metrics_endpoint, b->metrics_endpoint);
    assert_int_equal(a->shutdown_timeout_ms, b->shutdown_timeout_ms);
    assert_string_equal(a->dd_tags, b->dd_tags);
    assert_string_equal(a->datadog.agent_endpoint, b->datadog.agent_endpoint);
    assert_int_equal(a->datadog.traces_enabled, b->datadog.traces_enabled);
    assert_int_equal(a->datadog.llmobs.enabled, b->datadog.llmobs.enabled);
    assert_string_equal(a->datadog.llmobs.ml_app, b->datadog.llmobs.ml_app);
    const struct datadog_metrics_config *ma = &a->datadog.metrics, *mb = &b->datadog.metrics;
    assert_int_equal(ma->enabled, mb->enabled);
    assert_string_equal(ma->endpoint, mb->endpoint);
    assert_int_equal(ma->delta_ttl_s, mb->delta_ttl_s);
    assert_int_equal(ma->resource_attributes_as_tags, mb->resource_attributes_as_tags);
    assert_int_equal(ma->instrumentation_scope_metadata_as_tags,
                     mb->instrumentation_scope_metadata_as_tags);
    assert_int_equal(ma->histogram_mode, mb->histogram_mode);
    assert_int_equal(ma->histogram_aggregations, mb->histogram_aggregations);
    assert_int_equal(ma->cumulative_mode, mb->cumulative_mode);
    assert_int_equal(ma->initial_value, mb->initial_value);
    assert_int_equal(ma->summary_mode, mb->summary_mode);
    assert_int_equal(a->datadog.logs.enabled, b->datadog.logs.enabled);
    assert_string_equal(a->datadog.logs.endpoint, b->datadog.logs.endpoint);
    assert_int_equal(a->datadog.logs.include_genai_events, b->datadog.logs.include_genai_events);
}

/* The DD_* variables the embedded default and prepare read. */
static void clear_dd_env(void)
{
    static const char *const names[] = {
        "DD_API_KEY",         "DD_SITE",    "DD_TAGS", "DD_TRACE_ENABLED", "DD_LLMOBS_ENABLED",
        "DD_TRACE_AGENT_URL", "DD_SERVICE", "DD_ENV",  "DD_VERSION",       "DD_LLMOBS_ML_APP",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        unsetenv(names[i]);
    }
}

static int load(struct o2d_config *cfg, const char *yaml, char *err, size_t errlen)
{
    o2d_config_defaults(cfg);
    return o2d_config_load_string(cfg, "t.yaml", yaml, strlen(yaml), err, errlen);
}

static void test_defaults(void **state)
{
    struct o2d_config c;
    o2d_config_defaults(&c);
    assert_int_equal(c.grpc.enabled, 1);
    assert_string_equal(c.grpc.endpoint, "0.0.0.0:4317");
    assert_int_equal(c.grpc.max_recv_msg_size, 4 * MIB);
    assert_int_equal(c.grpc.max_concurrent_streams, 100);
    assert_int_equal(c.grpc.max_connections, 1024);
    assert_int_equal(c.grpc.max_connection_idle_ms, 300000);
    assert_int_equal(c.grpc.max_connection_age_ms, 0);
    assert_int_equal(c.grpc.max_connection_age_grace_ms, 30000);
    assert_int_equal(c.grpc.request_timeout_ms, 30000);
    assert_int_equal(c.http.enabled, 1);
    assert_string_equal(c.http.endpoint, "0.0.0.0:4318");
    assert_int_equal(c.http.max_request_body_size, 20971520);
    assert_int_equal(c.http.max_connections, 1024);
    assert_int_equal(c.http.idle_timeout_ms, 60000);
    assert_int_equal(c.http.read_timeout_ms, 30000);
    assert_int_equal(c.memory_limit, 256 * MIB);
    assert_string_equal(c.health_endpoint, "0.0.0.0:13133");
    assert_int_equal(c.debug_verbosity, O2D_DEBUG_BASIC);
    assert_int_equal(c.log_level, O2D_LOG_INFO);
    assert_string_equal(c.source, "<embedded default>");
    /* exporters.datadog.metrics: the Collector Datadog exporter's defaults */
    assert_int_equal(c.datadog.metrics.enabled, 1);
    assert_string_equal(c.datadog.metrics.endpoint, "");
    assert_int_equal(c.datadog.metrics.delta_ttl_s, 3600);
    assert_int_equal(c.datadog.metrics.resource_attributes_as_tags, 0);
    assert_int_equal(c.datadog.metrics.instrumentation_scope_metadata_as_tags, 1);
    assert_int_equal(c.datadog.metrics.histogram_mode, DATADOG_HIST_DISTRIBUTIONS);
    assert_int_equal(c.datadog.metrics.histogram_aggregations, 0);
    assert_int_equal(c.datadog.metrics.cumulative_mode, DATADOG_CUMULATIVE_TO_DELTA);
    assert_int_equal(c.datadog.metrics.initial_value, DATADOG_INITIAL_AUTO);
    assert_int_equal(c.datadog.metrics.summary_mode, DATADOG_SUMMARY_GAUGES);
}

/* The embedded text must say every default itself: load it over garbage. */
static void test_embedded_equals_defaults(void **state)
{
    struct o2d_config want;
    struct o2d_config got;
    char err[512];
    o2d_config_defaults(&want);
    /* The embedded text names exporters.datadog (on when DD_API_KEY is set) and debug. */
    want.datadog_section = 1;
    clear_dd_env();
    memset(&got, 0x5a, sizeof(got));
    int rc = o2d_config_load_string(&got, "<embedded default>", o2d_config_embedded,
                                    strlen(o2d_config_embedded), err, sizeof(err));
    if (rc != O2D_OK) {
        fail_msg("%s", err);
    }
    assert_config_equal(&got, &want);
}

static void test_full_file(void **state)
{
    struct o2d_config c;
    char err[512];
    o2d_config_defaults(&c);
    int rc = o2d_config_load_file(&c, DATA "/full.yaml", err, sizeof(err));
    if (rc != O2D_OK) {
        fail_msg("%s", err);
    }
    assert_int_equal(c.grpc.enabled, 1);
    assert_string_equal(c.grpc.endpoint, "127.0.0.1:14317");
    assert_int_equal(c.grpc.max_recv_msg_size, 16 * MIB);
    assert_int_equal(c.grpc.max_concurrent_streams, 250);
    assert_int_equal(c.grpc.max_connections, 64);
    assert_int_equal(c.grpc.request_timeout_ms, 90000);
    assert_int_equal(c.grpc.max_connection_idle_ms, 600000);
    assert_int_equal(c.grpc.max_connection_age_ms, 7200000);
    assert_int_equal(c.grpc.max_connection_age_grace_ms, 500);
    assert_int_equal(c.http.enabled, 1);
    assert_string_equal(c.http.endpoint, "[::1]:14318");
    assert_int_equal(c.http.max_request_body_size, 1048576);
    assert_int_equal(c.http.max_connections, 32);
    assert_int_equal(c.http.idle_timeout_ms, 15000);
    assert_int_equal(c.http.read_timeout_ms, 5000);
    assert_int_equal(c.memory_limit, 512 * MIB);
    assert_string_equal(c.health_endpoint, ":13134");
    assert_int_equal(c.debug_verbosity, O2D_DEBUG_DETAILED);
    assert_int_equal(c.log_level, O2D_LOG_WARN);
    assert_string_equal(c.source, DATA "/full.yaml");
}

static void test_collector_style_file(void **state)
{
    struct o2d_config want;
    struct o2d_config c;
    char err[512];
    o2d_config_defaults(&want);
    o2d_config_defaults(&c);
    int rc = o2d_config_load_file(&c, DATA "/collector_style.yaml", err, sizeof(err));
    if (rc != O2D_OK) {
        fail_msg("%s", err);
    }
    snprintf(want.source, sizeof(want.source), "%s", DATA "/collector_style.yaml");
    assert_config_equal(&c, &want);
}

static void test_http_only(void **state)
{
    struct o2d_config c;
    char err[512];
    o2d_config_defaults(&c);
    int rc = o2d_config_load_file(&c, DATA "/http_only.yaml", err, sizeof(err));
    if (rc != O2D_OK) {
        fail_msg("%s", err);
    }
    assert_int_equal(c.grpc.enabled, 0);
    assert_int_equal(c.http.enabled, 1);
    assert_string_equal(c.http.endpoint, "0.0.0.0:4318");

    /* And the other way round, inline. */
    rc = load(&c, "receivers:\n  otlp:\n    protocols:\n      grpc: {}\n", err, sizeof(err));
    assert_int_equal(rc, O2D_OK);
    assert_int_equal(c.grpc.enabled, 1);
    assert_int_equal(c.http.enabled, 0);

    /* Without a protocols section both stay as they were. */
    rc = load(&c, "receivers:\n  otlp:\n    memory_limit_mib: 64\n", err, sizeof(err));
    assert_int_equal(rc, O2D_OK);
    assert_int_equal(c.grpc.enabled, 1);
    assert_int_equal(c.http.enabled, 1);
    assert_int_equal(c.memory_limit, 64 * MIB);
}

static void test_empty_files(void **state)
{
    static const char *const files[] = {DATA "/empty.yaml", DATA "/comments_only.yaml"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct o2d_config want;
        struct o2d_config c;
        char err[512];
        o2d_config_defaults(&want);
        o2d_config_defaults(&c);
        int rc = o2d_config_load_file(&c, files[i], err, sizeof(err));
        if (rc != O2D_OK) {
            fail_msg("%s", err);
        }
        snprintf(want.source, sizeof(want.source), "%s", files[i]);
        assert_config_equal(&c, &want);
    }
    struct o2d_config c;
    char err[64];
    assert_int_equal(load(&c, "", err, sizeof(err)), O2D_OK);
    assert_int_equal(load(&c, "~\n", err, sizeof(err)), O2D_OK);
    assert_string_equal(c.source, "t.yaml");
}

static void test_env_substitution(void **state)
{
    struct o2d_config c;
    char err[512];
    setenv("O2D_TEST_HOST", "127.0.0.1", 1);
    setenv("O2D_TEST_PORT", "5555", 1);
    setenv("O2D_TEST_CONNS", "77", 1);
    setenv("O2D_TEST_EMPTY", "", 1);
    unsetenv("O2D_TEST_UNSET");

    /* inside a longer string, twice */
    int rc = load(&c,
                  "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
                  "        endpoint: ${env:O2D_TEST_HOST}:${env:O2D_TEST_PORT}\n"
                  "        max_connections: ${env:O2D_TEST_CONNS}\n"
                  "      http:\n"
                  "        endpoint: \"localhost:${env:O2D_TEST_UNSET:-4319}\"\n"
                  "        read_timeout: ${env:O2D_TEST_PORT:-1}ms\n",
                  err, sizeof(err));
    if (rc != O2D_OK) {
        fail_msg("%s", err);
    }
    assert_string_equal(c.grpc.endpoint, "127.0.0.1:5555");
    assert_int_equal(c.grpc.max_connections, 77);
    assert_string_equal(c.http.endpoint, "localhost:4319"); /* unset: the default */
    assert_int_equal(c.http.read_timeout_ms, 5555);         /* set: the default is ignored */

    /* ${NAME}: the Collector's default scheme is env */
    rc = load(&c, "extensions:\n  health_check:\n    endpoint: :${O2D_TEST_PORT}\n", err,
              sizeof(err));
    assert_int_equal(rc, O2D_OK);
    assert_string_equal(c.health_endpoint, ":5555");

    /* unset without a default is "", which turns the health check off */
    rc = load(&c, "extensions:\n  health_check:\n    endpoint: ${env:O2D_TEST_UNSET}\n", err,
              sizeof(err));
    assert_int_equal(rc, O2D_OK);
    assert_string_equal(c.health_endpoint, "");

    /* set but empty is empty: the default is for unset variables only */
    rc = load(&c, "extensions:\n  health_check:\n    endpoint: ${env:O2D_TEST_EMPTY:-:1}\n", err,
              sizeof(err));
    assert_int_equal(rc, O2D_OK);
    assert_string_equal(c.health_endpoint, "");

    /* where "" is not allowed, the message shows the expanded value */
    rc = load(&c,
              "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
              "        endpoint: ${env:O2D_TEST_UNSET}\n",
              err, sizeof(err));
    assert_int_equal(rc, O2D_ERR_CONFIG);
    assert_string_equal(err, "t.yaml:5: endpoint must be host:port, [ipv6]:port or :port "
                             "(port 0-65535), got ''");

    /* $$ is a literal $ */
    rc = load(&c, "extensions:\n  health_check:\n    endpoint: $${env:O2D_TEST_PORT}\n", err,
              sizeof(err));
    assert_int_equal(rc, O2D_ERR_CONFIG);
    assert_string_equal(err, "t.yaml:3: endpoint must be host:port, [ipv6]:port or :port (port "
                             "0-65535), or empty for off, got '${env:O2D_TEST_PORT}'");

    /* the expanded length is bounded */
    char *big = malloc(5001);
    assert_non_null(big);
    memset(big, '7', 5000);
    big[5000] = '\0';
    setenv("O2D_TEST_BIG", big, 1);
    free(big);
    rc = load(&c, "receivers:\n  otlp:\n    memory_limit_mib: ${env:O2D_TEST_BIG}\n", err,
              sizeof(err));
    assert_int_equal(rc, O2D_ERR_CONFIG);
    assert_string_equal(err,
                        "t.yaml:3: memory_limit_mib is longer than 4096 bytes after ${env:...} "
                        "expansion");
    unsetenv("O2D_TEST_BIG");
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *s = calloc(1, 4096);
    size_t n = s ? fread(s, 1, 4095, f) : 0;
    fclose(f);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    return s;
}

/* Every tests/data/config/invalid/NAME.yaml fails with the message in NAME.err, and leaves
 * the configuration it was given untouched. */
static void test_invalid_fixtures(void **state)
{
    DIR *d = opendir(DATA "/invalid");
    struct dirent *e;
    int count = 0;
    int failures = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char yaml[1024];
        char errf[1024];
        char want[4200];
        char err[1024];
        struct o2d_config before;
        struct o2d_config c;
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) {
            continue;
        }
        count++;
        snprintf(yaml, sizeof(yaml), "%s/invalid/%s", DATA, e->d_name);
        snprintf(errf, sizeof(errf), "%s/invalid/%.*s.err", DATA, (int)(len - 5), e->d_name);
        char *expected = read_text(errf);
        if (expected == NULL) {
            print_error("%s: missing %s\n", e->d_name, errf);
            failures++;
            continue;
        }
        snprintf(want, sizeof(want), "%s%s", yaml, expected);
        free(expected);
        o2d_config_defaults(&before);
        o2d_config_defaults(&c);
        int rc = o2d_config_load_file(&c, yaml, err, sizeof(err));
        if (rc != O2D_ERR_CONFIG || strcmp(err, want) != 0) {
            print_error("%s: rc %d\n  got:  %s\n  want: %s\n", e->d_name, rc, err, want);
            failures++;
            continue;
        }
        assert_config_equal(&c, &before);
    }
    closedir(d);
    assert_int_equal(failures, 0);
    assert_true(count >= 25);
}

static void test_missing_file(void **state)
{
    struct o2d_config c;
    char err[512];
    o2d_config_defaults(&c);
    int rc = o2d_config_load_file(&c, DATA "/no-such-file.yaml", err, sizeof(err));
    assert_int_equal(rc, O2D_ERR_CONFIG);
    assert_string_equal(err, DATA "/no-such-file.yaml: cannot open: No such file or directory");

    rc = o2d_config_load_file(&c, DATA, err, sizeof(err));
    assert_int_equal(rc, O2D_ERR_CONFIG);
    assert_string_equal(err, DATA ": cannot read: Is a directory");
}

static void test_inline_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *err;
    } cases[] = {
        {"receivers:\n  otlp:\n    protocols:\n      grpc:\n        max_connections: \"\\0\"\n",
         "t.yaml:5: max_connections must not contain a NUL byte"},
        {"receivers:\n  otlp:\n    protocols:\n      grpc:\n        max_connections: "
         "99999999999999999999999999\n",
         "t.yaml:5: max_connections must be between 1 and 1000000, got "
         "'99999999999999999999999999'"},
        {"receivers:\n  otlp:\n    protocols:\n      http:\n        read_timeout: "
         "99999999999999999999999h\n",
         "t.yaml:5: read_timeout must be a duration from 1ms to 168h such as 500ms, 30s, 5m or "
         "1h, got '99999999999999999999999h'"},
        {"receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: \"a\\tb:1\"\n",
         "t.yaml:5: endpoint must be host:port, [ipv6]:port or :port (port 0-65535), got 'a?b:1'"},
        {"? [a, b]\n: c\n", "t.yaml:1: keys at the top level must be names, got a sequence"},
        {"receivers: 7\n", "t.yaml:1: receivers must be a map, got a single value"},
        {"\"receivers.otlp\": {}\n",
         "t.yaml:1: unknown key 'receivers.otlp' at the top level; expected one of: receivers, "
         "extensions, exporters, processors, service"},
        {"a:\n\tb: 1\n",
         "t.yaml:2: invalid YAML: found character that cannot start any token (while scanning "
         "for the next token at line 2)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct o2d_config c;
        char err[512];
        int rc = load(&c, cases[i].yaml, err, sizeof(err));
        if (rc != O2D_ERR_CONFIG || strcmp(err, cases[i].err) != 0) {
            fail_msg("case %zu: rc %d\n  got:  %s\n  want: %s", i, rc, err, cases[i].err);
        }
    }
}

/* Every allocation the loader makes may fail; it must clean up and say so. */
static void test_allocation_failures(void **state)
{
    char *full = read_text(DATA "/full.yaml");
    assert_non_null(full);
    for (long n = 0;; n++) {
        struct o2d_config c;
        char err[512];
        o2d_config_defaults(&c);
        o2d_alloc_fail_after(n);
        int rc = o2d_config_load_string(&c, "full.yaml", full, strlen(full), err, sizeof(err));
        long failed = o2d_alloc_failures();
        o2d_alloc_fail_after(-1);
        if (failed == 0) {
            assert_int_equal(rc, O2D_OK);
            break;
        }
        assert_int_equal(rc, O2D_ERR_NOMEM);
        assert_string_equal(err, "full.yaml: out of memory while reading the configuration");
        assert_int_equal(c.grpc.max_connections, 1024);
    }
    free(full);
}

static int load_text(struct o2d_config *c, const char *yaml, char *err, size_t errlen)
{
    o2d_config_defaults(c);
    return o2d_config_load_string(c, "dd.yaml", yaml, strlen(yaml), err, errlen);
}

static void test_datadog_keys_and_prepare(void **state)
{
    struct o2d_config c;
    char err[512];
    char keyfile[] = "/tmp/o2d-test-key-XXXXXX";
    int fd = mkstemp(keyfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789abcdef\n", 17), 17);
    close(fd);
    setenv("DD_SERVICE", "checkout", 1);
    setenv("DD_ENV", "staging", 1);
    unsetenv("DD_VERSION");
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "exporters:\n"
             "  datadog:\n"
             "    api:\n"
             "      key_file: %s\n"
             "      site: ap1.datadoghq.com\n"
             "    traces:\n"
             "      endpoint: http://127.0.0.1:9\n"
             "      span_name_as_resource_name: true\n"
             "      span_name_remappings:\n"
             "        django.request: web.request\n"
             "      ignore_resources: [\"GET /health.*\", \"^OPTIONS \"]\n"
             "      compute_stats_by_span_kind: false\n"
             "      peer_tags_aggregation: false\n"
             "      obfuscation:\n"
             "        cache:\n"
             "          enabled: false\n"
             "          max_size: 100000\n"
             "    sending_queue:\n"
             "      max_size_mib: 8\n",
             keyfile);
    assert_int_equal(load_text(&c, yaml, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    unlink(keyfile);
    assert_true(c.datadog.enabled);
    assert_string_equal(c.datadog.api_key, "0123456789abcdef");
    assert_string_equal(c.datadog.site, "ap1.datadoghq.com");
    assert_string_equal(c.datadog.traces_endpoint, "http://127.0.0.1:9");
    assert_int_equal(c.datadog.apm.span_name_as_resource_name, 1);
    assert_int_equal(c.datadog.apm.n_remappings, 1);
    assert_string_equal(c.datadog.apm.remappings[0].from, "django.request");
    assert_string_equal(c.datadog.apm.remappings[0].to, "web.request");
    assert_int_equal(c.datadog.apm.n_ignore_resources, 2);
    assert_int_equal(regexec(&c.datadog.apm.ignore_resources[0], "GET /healthz", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&c.datadog.apm.ignore_resources[1], "GET /", 0, NULL, 0), 0);
    assert_int_equal(c.datadog.compute_stats_by_span_kind, 0);
    assert_int_equal(c.datadog.peer_tags_aggregation, 0);
    assert_int_equal(c.datadog.sql_cache_enabled, 0);
    assert_int_equal(c.datadog.sql_cache_max_bytes, 100000);
    assert_int_equal(c.datadog.queue_max_bytes, 8 * MIB);
    assert_string_equal(c.datadog.apm.default_service, "checkout");
    assert_string_equal(c.datadog.apm.default_env, "staging");
    assert_null(c.datadog.apm.default_version);
    o2d_config_cleanup(&c);
    unsetenv("DD_SERVICE");
    unsetenv("DD_ENV");

    /* a file that configures Datadog without a key is an error; the embedded default
     * without DD_API_KEY is not */
    assert_int_equal(
        load_text(&c, "exporters:\n  datadog:\n    api:\n      site: x.com\n", err, sizeof(err)),
        O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "no API key is set"));
    unsetenv("DD_API_KEY");
    o2d_config_defaults(&c);
    assert_int_equal(o2d_config_load_string(&c, "<embedded default>", o2d_config_embedded,
                                            strlen(o2d_config_embedded), err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_false(c.datadog.enabled);
    assert_false(c.debug_section);
    setenv("DD_API_KEY", "abc", 1);
    setenv("DD_SITE", "datadoghq.eu", 1);
    o2d_config_defaults(&c);
    assert_int_equal(o2d_config_load_string(&c, "<embedded default>", o2d_config_embedded,
                                            strlen(o2d_config_embedded), err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_true(c.datadog.enabled);
    assert_string_equal(c.datadog.site, "datadoghq.eu");
    unsetenv("DD_API_KEY");
    unsetenv("DD_SITE");

    /* bad values */
    assert_int_equal(load_text(&c,
                               "exporters:\n  datadog:\n    api:\n      key: k\n    traces:\n"
                               "      ignore_resources: [\"(unclosed\"]\n",
                               err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "'(unclosed' is not a regular expression"));
    assert_int_equal(load_text(&c,
                               "exporters:\n  datadog:\n    traces:\n"
                               "      peer_tags_aggregation: yes please\n",
                               err, sizeof(err)),
                     O2D_ERR_CONFIG);
    assert_string_equal(err, "dd.yaml:4: peer_tags_aggregation must be true, false, 1 or 0, got "
                             "'yes please'");
    assert_int_equal(load_text(&c,
                               "exporters:\n  datadog:\n    traces:\n"
                               "      span_name_remappings: [a, b]\n",
                               err, sizeof(err)),
                     O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "must be a map of names to names, got a sequence"));
    /* the key is never echoed, even when it is what is wrong */
    char longkey[600];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    snprintf(yaml, sizeof(yaml), "exporters:\n  datadog:\n    api:\n      key: %s\n", longkey);
    assert_int_equal(load_text(&c, yaml, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_null(strstr(err, "kkkk"));
    assert_non_null(strstr(err, "<secret>"));
}

static void check_round_trip(const struct o2d_config *c, const char *key, const char *name);

/* exporters.datadog.metrics: every key read, the enums both ways, written back the same. */
static void test_metrics_keys(void **state)
{
    (void)state;
    struct o2d_config c;
    char err[512];
    const char *yaml = "exporters:\n"
                       "  datadog:\n"
                       "    hostname: my-host\n"
                       "    api:\n"
                       "      key: k\n"
                       "      site: datadoghq.eu\n"
                       "    metrics:\n"
                       "      enabled: false\n"
                       "      endpoint: http://127.0.0.1:9/\n"
                       "      delta_ttl: 120\n"
                       "      resource_attributes_as_tags: true\n"
                       "      instrumentation_scope_metadata_as_tags: false\n"
                       "      histograms:\n"
                       "        mode: nobuckets\n"
                       "        send_aggregation_metrics: true\n"
                       "      sums:\n"
                       "        cumulative_monotonic_mode: raw_value\n"
                       "        initial_cumulative_monotonic_value: keep\n"
                       "      summaries:\n"
                       "        mode: noquantiles\n";
    assert_int_equal(load_text(&c, yaml, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    const struct datadog_metrics_config *m = &c.datadog.metrics;
    assert_string_equal(c.datadog.hostname, "my-host");
    assert_int_equal(m->enabled, 0);
    assert_string_equal(m->endpoint, "http://127.0.0.1:9/");
    assert_int_equal(m->delta_ttl_s, 120);
    assert_int_equal(m->resource_attributes_as_tags, 1);
    assert_int_equal(m->instrumentation_scope_metadata_as_tags, 0);
    assert_int_equal(m->histogram_mode, DATADOG_HIST_NOBUCKETS);
    assert_int_equal(m->histogram_aggregations, 1);
    assert_int_equal(m->cumulative_mode, DATADOG_CUMULATIVE_RAW_VALUE);
    assert_int_equal(m->initial_value, DATADOG_INITIAL_KEEP);
    assert_int_equal(m->summary_mode, DATADOG_SUMMARY_NOQUANTILES);
    assert_int_equal(datadog_metrics_route_of(&c.datadog), DATADOG_METRICS_OFF);
    char base[600];
    datadog_metrics_base(&c.datadog, base, sizeof(base));
    assert_string_equal(base, "http://127.0.0.1:9");
    check_round_trip(&c, "k", "metrics keys");
    o2d_config_cleanup(&c);
    /* The other values of each enum. */
    const char *yaml2 = "exporters:\n"
                        "  datadog:\n"
                        "    api: {key: k}\n"
                        "    metrics:\n"
                        "      histograms: {mode: counters}\n"
                        "      sums: {initial_cumulative_monotonic_value: drop}\n";
    assert_int_equal(load_text(&c, yaml2, err, sizeof(err)), O2D_OK);
    assert_int_equal(c.datadog.metrics.histogram_mode, DATADOG_HIST_COUNTERS);
    assert_int_equal(c.datadog.metrics.initial_value, DATADOG_INITIAL_DROP);
    assert_int_equal(c.datadog.metrics.cumulative_mode, DATADOG_CUMULATIVE_TO_DELTA);
    assert_int_equal(c.datadog.metrics.enabled, 1);
}

/* exporters.datadog.logs: the Collector exporter's names and defaults (enabled, endpoint),
 * and ours (include_genai_events, default false). */
static void test_logs_keys(void **state)
{
    (void)state;
    struct o2d_config c;
    char err[512];
    o2d_config_defaults(&c);
    assert_true(c.datadog.logs.enabled);
    assert_string_equal(c.datadog.logs.endpoint, "");
    assert_false(c.datadog.logs.include_genai_events);
    const char *yaml = "exporters:\n"
                       "  datadog:\n"
                       "    api:\n"
                       "      key: k\n"
                       "    logs:\n"
                       "      enabled: false\n"
                       "      endpoint: http://127.0.0.1:9\n"
                       "      include_genai_events: true\n";
    assert_int_equal(load_text(&c, yaml, err, sizeof(err)), O2D_OK);
    assert_false(c.datadog.logs.enabled);
    assert_string_equal(c.datadog.logs.endpoint, "http://127.0.0.1:9");
    assert_true(c.datadog.logs.include_genai_events);
    o2d_config_cleanup(&c);
    const char *bad = "exporters:\n"
                      "  datadog:\n"
                      "    logs:\n"
                      "      include_genai_event: true\n";
    assert_int_not_equal(load_text(&c, bad, err, sizeof(err)), O2D_OK);
    assert_non_null(strstr(err, "include_genai_event"));
    o2d_config_cleanup(&c);
}

static void test_llmobs_keys(void **state)
{
    struct o2d_config c;
    char err[512];
    const char *yaml = "exporters:\n"
                       "  datadog:\n"
                       "    api:\n"
                       "      key: k\n"
                       "    llmobs:\n"
                       "      endpoint: http://127.0.0.1:9\n"
                       "      ml_app_by_service:\n"
                       "        chat-api: support-bot\n"
                       "        rag-worker: search\n"
                       "      log_join_window: 1500ms\n"
                       "      trace_buffer:\n"
                       "        timeout: 3s\n"
                       "        max_spans: 500\n"
                       "        max_size_mib: 2\n";
    setenv("DD_LLMOBS_ML_APP", "fallback-app", 1);
    unsetenv("DD_LLMOBS_ENABLED");
    assert_int_equal(load_text(&c, yaml, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    const struct datadog_llmobs_config *lo = &c.datadog.llmobs;
    assert_true(lo->enabled);
    assert_string_equal(lo->endpoint, "http://127.0.0.1:9");
    assert_string_equal(lo->map.ml_app, "fallback-app");
    assert_int_equal(lo->map.n_ml_app_by_service, 2);
    assert_string_equal(lo->map.ml_app_by_service[1].service, "rag-worker");
    assert_string_equal(lo->map.ml_app_by_service[1].ml_app, "search");
    assert_int_equal(lo->buffer_timeout_ms, 3000);
    assert_int_equal(lo->log_join_window_ms, 1500);
    assert_int_equal(lo->buffer_max_spans, 500);
    assert_int_equal(lo->buffer_max_bytes, 2 * MIB);
    /* the remappings table is a separate map */
    assert_int_equal(c.n_remappings, 0);
    o2d_config_cleanup(&c);

    setenv("DD_LLMOBS_ENABLED", "0", 1);
    assert_int_equal(load_text(&c, yaml, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_false(c.datadog.llmobs.enabled);
    o2d_config_cleanup(&c);
    /* the window's default, and 0 (no hold) is accepted */
    assert_int_equal(load_text(&c, "exporters: {}\n", err, sizeof(err)), O2D_OK);
    assert_int_equal(c.datadog.llmobs.log_join_window_ms, 3000);
    o2d_config_cleanup(&c);
    assert_int_equal(load_text(&c,
                               "exporters:\n  datadog:\n    llmobs:\n      log_join_window: 0s\n",
                               err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(c.datadog.llmobs.log_join_window_ms, 0);
    o2d_config_cleanup(&c);
    unsetenv("DD_LLMOBS_ENABLED");
    unsetenv("DD_LLMOBS_ML_APP");

    assert_int_equal(load_text(&c, "exporters:\n  datadog:\n    llmobs:\n      enabled: no way\n",
                               err, sizeof(err)),
                     O2D_ERR_CONFIG);
    assert_string_equal(err, "dd.yaml:4: enabled must be true, false, 1 or 0, got 'no way'");
}

/* ---- the keys added for issue 5, DD_* variables, and the YAML writer ---- */

/* The effective configuration as `otel2dd validate` prints it, without its first line (the
 * source). Caller frees. */
static char *written(const struct o2d_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(o2d_config_write_yaml(c, f), O2D_OK);
    assert_int_equal(fclose(f), 0);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    memmove(text, nl + 1, strlen(nl + 1) + 1);
    return text;
}

/* Replaces every "<secret>" in text (malloc'd) with key. */
static char *unmask(char *text, const char *key)
{
    const char *m = "<secret>";
    char *p;
    while ((p = strstr(text, m)) != NULL) {
        size_t head = (size_t)(p - text), tail = strlen(p + strlen(m));
        char *n = malloc(head + strlen(key) + tail + 1);
        assert_non_null(n);
        memcpy(n, text, head);
        memcpy(n + head, key, strlen(key));
        memcpy(n + head + strlen(key), p + strlen(m), tail + 1);
        free(text);
        text = n;
    }
    return text;
}

/* Loads and prepares `c` from what it writes (secret put back), and checks that the result
 * writes the same text and has the same fields. */
static void check_round_trip(const struct o2d_config *c, const char *key, const char *name)
{
    char err[1024];
    char *first = written(c);
    assert_null(strstr(first, "fixture-key"));
    char *text = unmask(strdup(first), key);
    struct o2d_config back;
    o2d_config_defaults(&back);
    int rc = o2d_config_load_string(&back, "written.yaml", text, strlen(text), err, sizeof(err));
    if (rc == O2D_OK) {
        rc = o2d_config_prepare(&back, 0, err, sizeof(err));
    }
    if (rc != O2D_OK) {
        fail_msg("%s: the written configuration does not load: %s\n%s", name, err, text);
    }
    char *second = written(&back);
    /* Without a key the Datadog section is only comments: read back, it is simply absent,
     * which is the same effective configuration (Datadog off, the debug exporter on). */
    if (!c->datadog.enabled) {
        assert_false(back.datadog.enabled);
        assert_null(strstr(second, "datadog:"));
        assert_non_null(strstr(second, "  debug:\n"));
    } else if (strcmp(first, second) != 0) {
        fail_msg("%s: written twice differently:\n%s\n----\n%s", name, first, second);
    }
    if (c->datadog.enabled) {
        struct o2d_config a = *c;
        snprintf(a.source, sizeof(a.source), "%s", back.source);
        assert_config_equal(&back, &a);
        assert_int_equal(back.n_tags, c->n_tags);
    }
    o2d_config_cleanup(&back);
    free(first);
    free(second);
    free(text);
}

/* Every tests/data/config/valid/NAME.yaml loads, prepares, and round-trips through the
 * writer. */
static void test_valid_fixtures(void **state)
{
    DIR *d = opendir(DATA "/valid");
    struct dirent *e;
    int count = 0;
    assert_non_null(d);
    clear_dd_env();
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[1024];
        char err[1024];
        struct o2d_config c;
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) {
            continue;
        }
        count++;
        snprintf(path, sizeof(path), "%s/valid/%s", DATA, e->d_name);
        o2d_config_defaults(&c);
        int rc = o2d_config_load_file(&c, path, err, sizeof(err));
        if (rc == O2D_OK) {
            rc = o2d_config_prepare(&c, 0, err, sizeof(err));
        }
        if (rc != O2D_OK) {
            fail_msg("%s: %s", e->d_name, err);
        }
        check_round_trip(&c, "fixture-key", e->d_name);
        o2d_config_cleanup(&c);
    }
    closedir(d);
    assert_true(count >= 3);
}

static void test_new_keys(void **state)
{
    struct o2d_config c;
    char err[512];
    clear_dd_env();
    o2d_config_defaults(&c);
    assert_int_equal(o2d_config_load_file(&c, DATA "/valid/new_keys.yaml", err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_string_equal(c.grpc.tls_cert_file, "/etc/otel2dd/tls/cert.pem");
    assert_string_equal(c.grpc.tls_key_file, "/etc/otel2dd/tls/key.pem");
    assert_string_equal(c.http.tls_cert_file, "/etc/otel2dd/tls/http-cert.pem");
    assert_string_equal(c.http.tls_key_file, "/etc/otel2dd/tls/http-key.pem");
    assert_string_equal(c.datadog.agent_endpoint, "http://127.0.0.1:8126");
    assert_string_equal(c.metrics_endpoint, "");
    assert_int_equal(c.shutdown_timeout_ms, 25000);
    assert_false(c.datadog.traces_enabled);
    assert_true(c.datadog.llmobs.enabled);
    /* tags: split at commas (the text has one), trimmed, a lone key gets "" */
    assert_int_equal(c.n_tags, 3);
    assert_string_equal(c.tag_kv[0], "team:ml");
    assert_string_equal(c.tag_kv[1], "cost-center:42");
    assert_string_equal(c.tag_kv[2], "lone:");
    assert_int_equal(c.datadog.apm.n_tags, 3);
    assert_string_equal(c.datadog.apm.tags[1].key, "cost-center");
    assert_string_equal(c.datadog.apm.tags[1].value, "42");
    assert_string_equal(c.datadog.apm.tags[2].key, "lone");
    assert_string_equal(c.datadog.apm.tags[2].value, "");
    assert_int_equal(c.datadog.llmobs.map.n_tags, 3);
    assert_string_equal(c.datadog.llmobs.map.tags[0], "team:ml");
    o2d_config_cleanup(&c);
}

/* dd-trace-py parse_tags_str, case by case. */
static void test_parse_tags(void **state)
{
    static const struct {
        const char *in;
        const char *out; /* the pairs joined by '|' */
    } cases[] = {
        {"", ""},
        {"   ", ""},
        {"a:1,b:2", "a:1|b:2"},
        {"a:1 b:2", "a:1|b:2"},
        {"a:1, b:2 ,  c:3", "a:1|b:2|c:3"},
        /* a comma anywhere makes commas the only separator */
        {"a:1 b:2,c:3", "a:1 b:2|c:3"},
        {"a:1  b:2", "a:1|b:2"},
        {"key1,key2", "key1:|key2:"},
        {"url:http://x:80/p", "url:http://x:80/p"},
        /* blanks split "k : v" when there is no comma, as in ddtrace */
        {" k : v ", "k:|v:"},
        {" k : v ,x", "k:v|x:"},
        {":v,k:", "k:"},
        {"a:1,a:2", "a:2"},
        {",,a:1,,", "a:1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char kv[O2D_MAX_TAGS][O2D_TAG_MAX + 1];
        char why[160];
        char got[1024] = "";
        size_t n = 99;
        assert_int_equal(o2d_config_parse_tags(cases[i].in, kv, &n, why, sizeof(why)), O2D_OK);
        for (size_t j = 0; j < n; j++) {
            strcat(got, j ? "|" : "");
            strcat(got, kv[j]);
        }
        if (strcmp(got, cases[i].out) != 0) {
            fail_msg("case %zu '%s': got '%s', want '%s'", i, cases[i].in, got, cases[i].out);
        }
    }
    /* exactly 32 keys (and repeats of them) fit */
    char many[1024] = "";
    for (int i = 0; i < 32; i++) {
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d:v,", i);
    }
    strcat(many, "k0:again");
    char kv[O2D_MAX_TAGS][O2D_TAG_MAX + 1];
    char why[160];
    size_t n;
    assert_int_equal(o2d_config_parse_tags(many, kv, &n, why, sizeof(why)), O2D_OK);
    assert_int_equal(n, 32);
    assert_string_equal(kv[0], "k0:again");
    strcat(many, ",k32:v");
    assert_int_equal(o2d_config_parse_tags(many, kv, &n, why, sizeof(why)), O2D_ERR_CONFIG);
    assert_string_equal(why, "more than 32 key:value pairs");
    /* 200 bytes fit, 201 do not */
    char big[256];
    memset(big, 'x', sizeof(big));
    memcpy(big, "k:", 2);
    big[200] = '\0';
    assert_int_equal(o2d_config_parse_tags(big, kv, &n, why, sizeof(why)), O2D_OK);
    big[200] = 'x';
    big[201] = '\0';
    assert_int_equal(o2d_config_parse_tags(big, kv, &n, why, sizeof(why)), O2D_ERR_CONFIG);
}

static void test_bool_spellings(void **state)
{
    static const struct {
        const char *v;
        int want;
    } cases[] = {{"true", 1},  {"True", 1},  {"TRUE", 1}, {"tRuE", 1}, {"1", 1},   {"false", 0},
                 {"False", 0}, {"FALSE", 0}, {"0", 0},    {"yes", -1}, {"no", -1}, {"on", -1},
                 {"off", -1},  {"", -1},     {"01", -1},  {"2", -1},   {"t", -1},  {" true", -1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (o2d_config_parse_bool(cases[i].v) != cases[i].want) {
            fail_msg("'%s': want %d", cases[i].v, cases[i].want);
        }
    }
    struct o2d_config c;
    char err[512];
    assert_int_equal(
        load(&c, "exporters:\n  datadog:\n    traces:\n      enabled: 0\n", err, sizeof(err)),
        O2D_OK);
    assert_false(c.datadog.traces_enabled);
    assert_int_equal(
        load(&c, "exporters:\n  datadog:\n    traces:\n      enabled: \"1\"\n", err, sizeof(err)),
        O2D_OK);
    assert_true(c.datadog.traces_enabled);
}

static int load_embedded(struct o2d_config *c, char *err, size_t errlen)
{
    o2d_config_defaults(c);
    int rc = o2d_config_load_string(c, "<embedded default>", o2d_config_embedded,
                                    strlen(o2d_config_embedded), err, errlen);
    return rc == O2D_OK ? o2d_config_prepare(c, 0, err, errlen) : rc;
}

/* extensions.preview: in the embedded default, on exactly when nothing goes to Datadog (a
 * dry run); in a file, when its section is there; an empty endpoint turns it off. */
static void test_preview_switch(void **state)
{
    struct o2d_config c;
    char err[512];
    clear_dd_env();
    unsetenv("OTEL2DD_PREVIEW_ENDPOINT");
    assert_int_equal(load_embedded(&c, err, sizeof(err)), O2D_OK);
    assert_true(o2d_config_preview_on(&c));
    assert_string_equal(c.preview_endpoint, "localhost:55679");
    assert_int_equal(c.preview_max_bytes, 32 * MIB);
    o2d_config_cleanup(&c);

    setenv("DD_API_KEY", "0123456789abcdef0123456789abcdef", 1);
    assert_int_equal(load_embedded(&c, err, sizeof(err)), O2D_OK);
    assert_false(o2d_config_preview_on(&c));
    o2d_config_cleanup(&c);
    unsetenv("DD_API_KEY");

    setenv("OTEL2DD_PREVIEW_ENDPOINT", "0.0.0.0:55679", 1); /* the compose file's */
    assert_int_equal(load_embedded(&c, err, sizeof(err)), O2D_OK);
    assert_true(o2d_config_preview_on(&c));
    assert_string_equal(c.preview_endpoint, "0.0.0.0:55679");
    o2d_config_cleanup(&c);
    unsetenv("OTEL2DD_PREVIEW_ENDPOINT");

    /* a file: the section turns it on, with Datadog too */
    const char *with = "extensions:\n  preview:\n    max_size_mib: 4\n"
                       "exporters:\n  datadog:\n    api:\n      key: k\n";
    assert_int_equal(load(&c, with, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_true(o2d_config_preview_on(&c));
    assert_int_equal(c.preview_max_bytes, 4 * MIB);
    o2d_config_cleanup(&c);
    /* a dry-run file without the section: off */
    assert_int_equal(load(&c, "exporters:\n  debug: {}\n", err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_false(o2d_config_preview_on(&c));
    o2d_config_cleanup(&c);
    /* an empty endpoint: off */
    assert_int_equal(load(&c, "extensions:\n  preview:\n    endpoint: \"\"\n", err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_false(o2d_config_preview_on(&c));
    o2d_config_cleanup(&c);
}

/* The variables a ddtrace user already sets, through the embedded default and prepare. */
static void test_dd_variables(void **state)
{
    struct o2d_config c;
    char err[512];
    clear_dd_env();

    /* unset: the defaults */
    assert_int_equal(load_embedded(&c, err, sizeof(err)), O2D_OK);
    assert_true(c.datadog.traces_enabled);
    assert_true(c.datadog.llmobs.enabled);
    assert_int_equal(c.n_tags, 0);
    assert_string_equal(c.datadog.agent_endpoint, "");
    o2d_config_cleanup(&c);

    setenv("DD_TAGS", "team:ml env:shadow", 1);
    setenv("DD_TRACE_ENABLED", "0", 1);
    setenv("DD_LLMOBS_ENABLED", "False", 1);
    setenv("DD_TRACE_AGENT_URL", "http://127.0.0.1:8126", 1);
    assert_int_equal(load_embedded(&c, err, sizeof(err)), O2D_OK);
    assert_string_equal(c.dd_tags, "team:ml env:shadow");
    assert_int_equal(c.n_tags, 2);
    assert_string_equal(c.tag_kv[1], "env:shadow");
    assert_false(c.datadog.traces_enabled);
    assert_false(c.datadog.llmobs.enabled);
    assert_string_equal(c.datadog.agent_endpoint, "http://127.0.0.1:8126");
    o2d_config_cleanup(&c);
    unsetenv("DD_TRACE_AGENT_URL");

    /* A file that does not read them: false still wins, true leaves the file's choice. */
    const char *file = "exporters:\n  datadog:\n    api:\n      key: k\n    llmobs:\n"
                       "      enabled: false\n";
    assert_int_equal(load(&c, file, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_false(c.datadog.traces_enabled);
    assert_int_equal(c.n_tags, 0); /* DD_TAGS is read through ${env:DD_TAGS} only */
    o2d_config_cleanup(&c);
    setenv("DD_TRACE_ENABLED", "true", 1);
    setenv("DD_LLMOBS_ENABLED", "1", 1);
    assert_int_equal(load(&c, file, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_true(c.datadog.traces_enabled);
    assert_false(c.datadog.llmobs.enabled);
    o2d_config_cleanup(&c);

    /* a value ddtrace would silently read as false is refused, naming the variable */
    setenv("DD_TRACE_ENABLED", "yes", 1);
    assert_int_equal(load(&c, file, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_string_equal(err, "DD_TRACE_ENABLED must be true, false, 1 or 0, got 'yes'");
    unsetenv("DD_TRACE_ENABLED");
    setenv("DD_LLMOBS_ENABLED", "on", 1);
    assert_int_equal(load(&c, file, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_string_equal(err, "DD_LLMOBS_ENABLED must be true, false, 1 or 0, got 'on'");

    /* through the embedded default a bad value is a loader error with its line */
    setenv("DD_LLMOBS_ENABLED", "2", 1);
    o2d_config_defaults(&c);
    assert_int_equal(o2d_config_load_string(&c, "<embedded default>", o2d_config_embedded,
                                            strlen(o2d_config_embedded), err, sizeof(err)),
                     O2D_ERR_CONFIG);
    assert_non_null(strstr(err, ": enabled must be true, false, 1 or 0, got '2'"));
    unsetenv("DD_LLMOBS_ENABLED");
    setenv("DD_TAGS", "a:1,b:\x01", 1);
    o2d_config_defaults(&c);
    assert_int_equal(o2d_config_load_string(&c, "<embedded default>", o2d_config_embedded,
                                            strlen(o2d_config_embedded), err, sizeof(err)),
                     O2D_ERR_CONFIG);
    assert_non_null(strstr(err, ": tags: 'b:?' holds a control character"));
    clear_dd_env();
}

/* The API key, inline, from the environment or from key_file, is never written, and its text
 * is never quoted in an error. */
static void test_secret_masked(void **state)
{
    struct o2d_config c;
    char err[512];
    clear_dd_env();
    setenv("DD_API_KEY", "s3cr3t-from-env", 1);
    assert_int_equal(load_embedded(&c, err, sizeof(err)), O2D_OK);
    assert_string_equal(c.datadog.api_key, "s3cr3t-from-env");
    char *out = written(&c);
    assert_null(strstr(out, "s3cr3t"));
    assert_non_null(strstr(out, "      key: <secret>\n"));
    check_round_trip(&c, "s3cr3t-from-env", "embedded with DD_API_KEY");
    free(out);
    o2d_config_cleanup(&c);
    unsetenv("DD_API_KEY");

    char keyfile[] = "/tmp/o2d-test-secret-XXXXXX";
    int fd = mkstemp(keyfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cr3t-from-file\n", 17), 17);
    close(fd);
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "exporters:\n  datadog:\n    api:\n      key_file: %s\n", keyfile);
    assert_int_equal(load(&c, yaml, err, sizeof(err)), O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    assert_string_equal(c.datadog.api_key, "s3cr3t-from-file");
    out = written(&c);
    assert_null(strstr(out, "s3cr3t"));
    assert_non_null(strstr(out, keyfile)); /* the path is no secret */
    free(out);
    o2d_config_cleanup(&c);
    unlink(keyfile);

    /* broken ${ around an inline key */
    static const char *const bad[] = {
        "exporters:\n  datadog:\n    api:\n      key: s3cr3t${\n",
        "exporters:\n  datadog:\n    api:\n      key: ${s3cr3t-x}\n",
        "exporters:\n  datadog:\n    api:\n      key: ${vault:s3cr3t}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load(&c, bad[i], err, sizeof(err)), O2D_ERR_CONFIG);
        if (strstr(err, "s3cr3t") != NULL) {
            fail_msg("case %zu shows the key: %s", i, err);
        }
        assert_non_null(strstr(err, "t.yaml:4: key"));
    }
}

/* Without an API key the Datadog section is written as comments, so the output loads as a
 * file (which, naming exporters.datadog without a key, would be refused). */
static void test_write_without_key(void **state)
{
    struct o2d_config c;
    char err[512];
    clear_dd_env();
    assert_int_equal(load_embedded(&c, err, sizeof(err)), O2D_OK);
    assert_false(c.datadog.enabled);
    char *out = written(&c);
    assert_non_null(strstr(out, "exporters:\n  # datadog:\n    # hostname: \"\"\n"));
    assert_non_null(strstr(out, "  debug:\n    verbosity: basic\n"));
    check_round_trip(&c, "unused", "embedded without a key");
    free(out);
    o2d_config_cleanup(&c);
}

/* processors: which run for which signal, with and without service.pipelines, and the
 * redaction keys compiled by prepare (a bad pattern names its list, entry and offset). */
static void test_processors(void **state)
{
    (void)state;
    struct o2d_config c;
    char err[1024];
    clear_dd_env();
    /* no pipelines: a configured processor runs for every signal it fits */
    assert_int_equal(load_text(&c,
                               "processors:\n  redaction:\n    allow_all_keys: true\n"
                               "    patterns: [email]\n",
                               err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_OK);
    for (int s = 0; s < O2D_SIGNALS; s++) {
        assert_int_equal(c.processors[s].n, 1);
        assert_int_equal(c.processors[s].ids[0], O2D_PROCESSOR_REDACTION);
    }
    assert_non_null(c.redaction.rules);
    assert_int_equal(c.redaction.allow_all_keys, 1);
    assert_string_equal(c.redaction.patterns[0], "email");
    o2d_config_cleanup(&c);
    assert_null(c.redaction.rules);

    /* pipelines: only what they list; here the logs pipeline only */
    assert_int_equal(load_text(&c,
                               "processors:\n  redaction:\nservice:\n  pipelines:\n"
                               "    traces:\n      receivers: [otlp]\n"
                               "      exporters: [datadog]\n"
                               "    logs:\n      processors: [redaction]\n",
                               err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(c.pipelines_given, 1);
    assert_int_equal(c.processors[OTLP_SIGNAL_TRACES].n, 0);
    assert_int_equal(c.processors[OTLP_SIGNAL_LOGS].n, 1);
    assert_int_equal(c.processors[OTLP_SIGNAL_METRICS].n, 0);
    assert_true(o2d_processor_listed(&c, O2D_PROCESSOR_REDACTION));

    /* configured, listed nowhere: off */
    assert_int_equal(load_text(&c,
                               "processors:\n  redaction:\nservice:\n  pipelines:\n"
                               "    traces:\n      receivers: [otlp]\n",
                               err, sizeof(err)),
                     O2D_OK);
    assert_true(o2d_processor_configured(&c, O2D_PROCESSOR_REDACTION));
    assert_false(o2d_processor_listed(&c, O2D_PROCESSOR_REDACTION));

    /* nothing configured: nothing runs */
    assert_int_equal(load_text(&c, "exporters:\n  debug:\n", err, sizeof(err)), O2D_OK);
    for (int s = 0; s < O2D_SIGNALS; s++) {
        assert_int_equal(c.processors[s].n, 0);
    }

    /* prepare refuses a pattern that does not compile, with PCRE2's offset */
    assert_int_equal(load_text(&c, "processors:\n  redaction:\n    blocked_values: [\"a(b\"]\n",
                               err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "processors.redaction.blocked_values[0]: 'a(b' is not a regular "
                                "expression: missing closing parenthesis at offset 3"));
    assert_null(c.redaction.rules);
    /* an unknown built-in pattern, and a hash without its key (never quoted) */
    assert_int_equal(
        load_text(&c, "processors:\n  redaction:\n    patterns: [ssn]\n", err, sizeof(err)),
        O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "patterns[0]: unknown pattern 'ssn'"));
    assert_int_equal(load_text(&c, "processors:\n  redaction:\n    hash_function: hmac-sha256\n",
                               err, sizeof(err)),
                     O2D_OK);
    assert_int_equal(o2d_config_prepare(&c, 0, err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "hmac_key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_embedded_equals_defaults),
        cmocka_unit_test(test_datadog_keys_and_prepare),
        cmocka_unit_test(test_llmobs_keys),
        cmocka_unit_test(test_logs_keys),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_collector_style_file),
        cmocka_unit_test(test_http_only),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_env_substitution),
        cmocka_unit_test(test_invalid_fixtures),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_inline_errors),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_valid_fixtures),
        cmocka_unit_test(test_metrics_keys),
        cmocka_unit_test(test_new_keys),
        cmocka_unit_test(test_parse_tags),
        cmocka_unit_test(test_bool_spellings),
        cmocka_unit_test(test_dd_variables),
        cmocka_unit_test(test_preview_switch),
        cmocka_unit_test(test_secret_masked),
        cmocka_unit_test(test_write_without_key),
        cmocka_unit_test(test_processors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
