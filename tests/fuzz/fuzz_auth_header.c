/*
 * fuzz_auth_header.c: the bearer token checks a client's bytes reach (collector/receivers/
 * auth.c): an authorization header value against a fixed token store, and the input read as
 * a token entry (o2d_config_parse_token_entry, which also reads each line of a token file).
 * Invariants: a value is accepted only when it is the scheme, blanks and one of the
 * configured tokens, with the tenant of that token; an entry that parses has a non-empty
 * token inside the input, without ':'.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "config.h"
#include "o2d.h"

static struct auth *store;

static const char *const entries[] = {"appA:tokA", "tokB", "appB:c2VjcmV0LXRva2Vu=="};

/* The token of value after "<scheme> " and blanks, or NULL; the independent reading. */
static int expected(const uint8_t *v, size_t n, int *tenant)
{
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    if (n - i < 7 || strncasecmp((const char *)v + i, "bearer ", 7) != 0) {
        return 0;
    }
    i += 7;
    while (i < n && v[i] == ' ') {
        i++;
    }
    static const char *const tok[] = {"tokA", "tokB", "c2VjcmV0LXRva2Vu=="};
    static const int ten[] = {0, -1, 1};
    for (int k = 0; k < 3; k++) {
        if (n - i == strlen(tok[k]) && memcmp(v + i, tok[k], n - i) == 0) {
            *tenant = ten[k];
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (store == NULL) {
        char err[256];
        if (auth_new(&store, NULL, entries, 3, NULL, err, sizeof(err)) != O2D_OK) {
            abort();
        }
    }
    int tenant = 7, want_tenant = -1;
    enum auth_failure why;
    const char *reason = NULL;
    int rv = auth_check(store, (const char *)data, size, &tenant, &why, &reason);
    int want = expected(data, size, &want_tenant);
    if ((rv == O2D_OK) != want || (rv == O2D_OK && tenant != want_tenant)) {
        abort();
    }
    if (rv != O2D_OK && (reason == NULL || tenant != -1 || (int)why < 0 || why >= AUTH_FAIL_N)) {
        abort();
    }

    const char *t, *k, *w = NULL;
    size_t tl, kl;
    if (o2d_config_parse_token_entry((const char *)data, size, &t, &tl, &k, &kl, &w) == O2D_OK) {
        const char *end = (const char *)data + size;
        if (kl == 0 || k < (const char *)data || k + kl > end || memchr(k, ':', kl) != NULL ||
            (t != NULL && (tl == 0 || t + tl >= end))) {
            abort();
        }
    } else if (w == NULL) {
        abort();
    }
    return 0;
}
