/*
 * test_auth.c: the bearer token store (collector/receivers/auth.c) and the per-tenant share of
 * the memory budget it feeds (ingest.c): the entry grammar (o2d_config_parse_token_entry),
 * header values right and wrong, tenants, the token file read at start, re-read when it
 * changes and kept when it becomes unusable, and a tenant held to its share while another
 * takes what it needs. No receiver and no pipeline.
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

#include <cmocka.h>

#include "auth.h"
#include "config.h"
#include "ingest.h"
#include "o2d.h"

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
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entry_grammar),     cmocka_unit_test(header_values),
        cmocka_unit_test(bad_configuration), cmocka_unit_test(token_file),
        cmocka_unit_test(tenant_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
