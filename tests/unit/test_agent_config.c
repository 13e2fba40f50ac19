/*
 * test_agent_config.c: what o2d_config_prepare decides for exporters.datadog.agent.endpoint.
 * Set, it turns the Datadog exporters on without an API key (agent mode), and wins over a key;
 * it must be an http:// or https:// base URL, and every other value is an error that names
 * the key. A table of endpoints and verdicts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "o2d.h"

static int prepare_with(struct o2d_config *c, const char *endpoint, const char *key, char *err,
                        size_t errlen)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "exporters:\n  datadog:\n    api:\n      key: \"%s\"\n    agent:\n      endpoint: "
             "\"%s\"\n",
             key, endpoint);
    o2d_config_defaults(c);
    int rv = o2d_config_load_string(c, "agent.yaml", yaml, strlen(yaml), err, errlen);
    assert_int_equal(rv, O2D_OK);
    return o2d_config_prepare(c, 0, err, errlen);
}

static void test_valid_endpoints_turn_datadog_on_without_key(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "http://localhost:8126",  "http://datadog-agent:8126/", "https://agent.internal",
        "HTTP://10.0.0.7:8126//", "http://[::1]:8126",          "http://[fd00:ec2::254]",
        "http://agent:1",         "http://agent:65535",
    };
    unsetenv("DD_API_KEY");
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct o2d_config c;
        char err[512] = "";
        int rv = prepare_with(&c, ok[i], "", err, sizeof(err));
        if (rv != O2D_OK) {
            fail_msg("%s: %s", ok[i], err);
        }
        assert_true(c.datadog.enabled);
        assert_string_equal(c.datadog.agent_endpoint, ok[i]);
        o2d_config_cleanup(&c);
    }
}

static void test_agent_wins_over_key(void **state)
{
    (void)state;
    struct o2d_config c;
    char err[512] = "";
    assert_int_equal(prepare_with(&c, "http://agent:8126", "abc", err, sizeof(err)), O2D_OK);
    assert_true(c.datadog.enabled);
    assert_string_equal(c.datadog.agent_endpoint, "http://agent:8126");
    o2d_config_cleanup(&c);
    /* Neither: still the error that says what to set, agent.endpoint included. */
    assert_int_equal(prepare_with(&c, "", "", err, sizeof(err)), O2D_ERR_CONFIG);
    assert_non_null(strstr(err, "no API key is set"));
    assert_non_null(strstr(err, "agent.endpoint"));
}

static void test_invalid_endpoints_name_the_key(void **state)
{
    (void)state;
    static const struct {
        const char *endpoint;
        const char *why;
    } bad[] = {
        {"datadog-agent:8126", "not an http:// or https:// URL"},
        {"unix:///var/run/datadog/apm.socket", "not an http:// or https:// URL"},
        {"ftp://agent", "not an http:// or https:// URL"},
        {"http://", "no host"},
        {"http://:8126", "no host"},
        {"http://[]:8126", "no host"},
        {"http://[::1:8126", "unterminated"},
        {"http://agent:", "invalid port"},
        {"http://agent:0", "invalid port"},
        {"http://agent:65536", "invalid port"},
        {"http://agent:999999999999999999999", "invalid port"},
        {"http://agent:8126/v0.4/traces", "path"},
        {"http://agent:8126?a=b", "path"},
        {"http://agent:8126#x", "path"},
        {"http://user@agent:8126", "character"},
        {"http://age nt:8126", "character"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct o2d_config c;
        char err[512] = "";
        int rv = prepare_with(&c, bad[i].endpoint, "abc", err, sizeof(err));
        if (rv != O2D_ERR_CONFIG || strstr(err, "exporters.datadog.agent.endpoint") == NULL ||
            strstr(err, bad[i].why) == NULL) {
            fail_msg("%s: rv %d, err '%s', want '%s'", bad[i].endpoint, rv, err, bad[i].why);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_endpoints_turn_datadog_on_without_key),
        cmocka_unit_test(test_agent_wins_over_key),
        cmocka_unit_test(test_invalid_endpoints_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
