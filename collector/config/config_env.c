/*
 * config_env.c: ${env:NAME} and ${env:NAME:-default} in the values the key table reads,
 * expanded as the OpenTelemetry Collector does: ${NAME} is ${env:NAME}, an unset variable
 * without a default is the empty string, $$ is a literal $. Other schemes (${file:...})
 * are refused with a message. Where a value goes is left to config_walk.c.
 */
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "o2d.h"
#include "o2d_buf.h"

#define VALUE_MAX    4096 /* one value after ${env:...} expansion */
#define ENV_NAME_MAX 255

/* Resolves the inside of one ${...} into *out / *outlen (borrowed from the environment or
 * from the value itself). */
static int resolve_ref(struct loader *ld, unsigned long line, const char *key, int secret,
                       const char *ref, size_t rlen, const char **out, size_t *outlen)
{
    char a[SHOW_MAX + 4];
    char name[ENV_NAME_MAX + 1];
    const char *p = ref;
    size_t plen = rlen;
    const char *def = NULL;
    size_t dlen = 0;

    /* The Collector's default scheme is env: ${NAME} is ${env:NAME}. */
    if (rlen >= 4 && memcmp(ref, "env:", 4) == 0) {
        p += 4;
        plen -= 4;
    } else if (memchr(ref, ':', rlen) != NULL) {
        return config_fail(&ld->err, line,
                           "%s: '${%s}' is not supported; use ${env:NAME} or ${env:NAME:-default}",
                           key, secret ? "<secret>" : config_show(a, ref, rlen));
    }
    for (size_t i = 0; i + 1 < plen; i++) {
        if (p[i] == ':' && p[i + 1] == '-') {
            def = p + i + 2;
            dlen = plen - i - 2;
            plen = i;
            break;
        }
    }
    int ok = plen > 0 && plen <= ENV_NAME_MAX && (is_alpha(p[0]) || p[0] == '_');
    for (size_t i = 0; ok && i < plen; i++) {
        ok = is_alpha(p[i]) || is_digit(p[i]) || p[i] == '_';
    }
    if (!ok) {
        return config_fail(&ld->err, line, "%s: '%s' is not a valid environment variable name", key,
                           secret ? "<secret>" : config_show(a, p, plen));
    }
    memcpy(name, p, plen);
    name[plen] = '\0';
    const char *v = getenv(name);
    if (v != NULL) {
        *out = v;
        *outlen = strlen(v);
    } else if (def != NULL) {
        *out = def;
        *outlen = dlen;
    } else {
        /* As the Collector: an unset variable without a default is the empty string. */
        *out = "";
        *outlen = 0;
    }
    return O2D_OK;
}

/* Expands ${env:NAME}, ${env:NAME:-default} and $$ (a literal $) in s[0..len). A secret's
 * text is never quoted in a message: a key written inline may sit inside a broken ${. */
int config_expand_env(struct loader *ld, unsigned long line, const char *key, const char *s,
                      size_t len, int secret, const char **out)
{
    struct o2d_buf b;
    int rc = O2D_OK;
    size_t i = 0;

    o2d_buf_init(&b, VALUE_MAX);
    while (i < len && rc == O2D_OK) {
        const char *piece = s + i;
        size_t plen = 1;
        if (s[i] == '$' && i + 1 < len && s[i + 1] == '$') {
            i += 2;
        } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            const char *close = memchr(s + i + 2, '}', len - i - 2);
            if (close == NULL) {
                rc = config_fail(&ld->err, line, "%s: '${' without a closing '}'", key);
                break;
            }
            rc = resolve_ref(ld, line, key, secret, s + i + 2, (size_t)(close - s) - i - 2, &piece,
                             &plen);
            i = (size_t)(close - s) + 1;
        } else {
            i++;
        }
        if (rc == O2D_OK) {
            rc = o2d_buf_append(&b, piece, plen);
        }
    }
    if (rc == O2D_ERR_TOO_LARGE) {
        rc = config_fail(&ld->err, line, "%s is longer than %d bytes after ${env:...} expansion",
                         key, VALUE_MAX);
    } else if (rc == O2D_ERR_NOMEM) {
        rc = config_fail_nomem(&ld->err);
    }
    if (rc == O2D_OK) {
        *out = o2d_arena_strndup(&ld->arena, b.data ? (const char *)b.data : "", b.len);
        if (*out == NULL) {
            rc = config_fail_nomem(&ld->err);
        }
    }
    o2d_buf_cleanup(&b);
    return rc;
}
