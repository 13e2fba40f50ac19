/*
 * redact.c: the compiled rules of the redaction processor, its built-in patterns and the
 * redaction of one text. Key rules and their order follow the Collector's redaction
 * processor (opentelemetry-collector-contrib processor/redactionprocessor/processor.go):
 * ignored keys pass, keys not allowed are removed, values matching allowed_values pass, a
 * blocked key's whole value is masked, then every value pattern replaces what it matches.
 *
 * The built-in patterns are ours. Card numbers are kept only when their digits pass the
 * Luhn check (ISO/IEC 7812-1) and start like a card of a major network; the provider key
 * shapes follow their issuers' documented prefixes (AWS access key ids "AKIA"/"ASIA" plus
 * 16 characters: AWS IAM "Understanding unique ID prefixes"; OpenAI "sk-", "sk-proj-";
 * Anthropic "sk-ant-"; Google "AIza" plus 35 characters). Every built-in names the byte
 * classes all its matches hold ('@' and '.', a digit, ...), found for all patterns in one
 * pass over a value, and some a needle (memmem): PCRE2 runs only where a match is possible,
 * which is what keeps the common value cheap.
 *
 * PCRE2 limits: a match limit (backtracking steps) and a depth limit for the interpreter,
 * a bounded JIT stack for the JIT. A match that hits one fails closed: the whole value is
 * replaced and counted under the pattern's name.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "redact_int.h"

#define JIT_STACK_MIN  (32 * 1024)
#define JIT_STACK_MAX  (1024 * 1024)
#define HEAP_LIMIT_KIB (16 * 1024)
#define VALUE_MAX      ((size_t)64 * 1024 * 1024) /* a rebuilt value never grows past this */

static int check_card(const char *s, size_t len);

/* Byte classes a value holds, found in one pass over it (value_classes): a pattern runs
 * only on values that hold every class it needs, and its needle, if any. */
enum {
    C_AT = 1,
    C_DIGIT = 2,
    C_DOT = 4,
    C_COLON = 8,
    C_UPPER_A = 16,
    C_S = 32,
    C_B = 64,
    C_K = 128,
    C_DASH = 256,
    C_Z = 512,
};

/* What one pass over a value finds: its byte classes, and how many digits, dots and colons
 * it holds (a card number needs 13 digits, an IPv4 address 3 dots, an IPv6 one 2 colons). */
struct value_scan {
    unsigned classes;
    size_t n[4]; /* [1] digits, [2] dots, [3] colons */
};

/* The built-ins, in the order they run. \b on both sides keeps matches whole tokens. */
struct builtin {
    const char *name;
    const char *re;
    const char *needle;
    int needle_ci;
    int (*check)(const char *s, size_t len);
    unsigned classes;
    unsigned min_digits, min_dots, min_colons;
};

/* clang-format off */
static const struct builtin builtins[] = {
    /* Provider keys first: they are the most specific, and a bearer token may hold one. */
    {"anthropic_api_key", "\\bsk-ant-[A-Za-z0-9]{2,8}-[A-Za-z0-9_\\-]{20,}", "sk-ant-", 0, NULL,
     C_S | C_K | C_DASH, 0, 0, 0},
    {"openai_api_key",
     "\\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\\-]{20,}", "sk-", 0, NULL,
     C_S | C_K | C_DASH, 0, 0, 0},
    {"google_api_key", "\\bAIza[0-9A-Za-z_\\-]{35}(?![0-9A-Za-z_\\-])", "AIza", 0, NULL,
     C_UPPER_A | C_Z, 0, 0, 0},
    {"aws_access_key",
     "\\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\\b", NULL, 0,
     NULL, C_UPPER_A, 0, 0, 0},
    {"bearer_token", "\\b[Bb][Ee][Aa][Rr][Ee][Rr][ \\t]+[A-Za-z0-9\\-._~+/]{16,}=*", "bearer", 1,
     NULL, C_B, 0, 0, 0},
    /* Local part, '@', a domain of labels, an alphabetic top-level domain that is not a file
     * extension (icon@2x.png and the like in code are not addresses). */
    {"email",
     "(?<![A-Za-z0-9._%+\\-])[A-Za-z0-9._%+\\-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}"
     "[A-Za-z0-9])?\\.)+(?!(?:png|jpe?g|gif|svg|webp|ico|js|mjs|ts|css|json|map)\\b)"
     "[A-Za-z]{2,24}\\b", NULL, 0, NULL, C_AT | C_DOT, 0, 1, 0},
    /* 13 to 19 digits, single blanks or dashes between them; Luhn and issuer checked. */
    {"credit_card", "(?<![0-9])[0-9](?:[ \\-]?[0-9]){12,18}(?![0-9])", NULL, 0, check_card,
     C_DIGIT, 13, 0, 0},
    {"ipv4",
     "(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}"
     "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?![0-9]|\\.[0-9])", NULL, 0, NULL,
     C_DIGIT | C_DOT, 4, 3, 0},
    {"ipv6",
     "(?<![:0-9A-Za-z])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
     "|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?![0-9A-Za-z])"
     "|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}"
     "|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}"
     "|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}"
     "|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}"
     "|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}"
     "|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}"
     "|::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})(?![:0-9A-Za-z])", NULL, 0, NULL, C_COLON, 0, 0,
     2},
};
/* clang-format on */
#define N_BUILTINS (sizeof(builtins) / sizeof(builtins[0]))

static unsigned short byte_class[256];
static unsigned char byte_kind[256]; /* 1 digit, 2 dot, 3 colon, else 0 */

static void init_classes(void)
{
    byte_class['@'] = C_AT;
    byte_class['.'] = C_DOT;
    byte_class[':'] = C_COLON;
    byte_class['A'] = C_UPPER_A;
    byte_class['s'] = C_S;
    byte_class['b'] = C_B;
    byte_class['B'] = C_B;
    byte_class['k'] = C_K;
    byte_class['-'] = C_DASH;
    byte_class['z'] = C_Z;
    for (int c = '0'; c <= '9'; c++) {
        byte_class[c] = C_DIGIT;
        byte_kind[c] = 1;
    }
    byte_kind['.'] = 2;
    byte_kind[':'] = 3;
}

/* The classes and counts of s[0..len): one pass, whatever the number of patterns. */
static void value_scan(const char *s, size_t len, struct value_scan *v)
{
    unsigned m = 0;
    size_t n[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        m |= byte_class[c];
        n[byte_kind[c]]++;
    }
    v->classes = m;
    memcpy(v->n, n, sizeof(n));
}

const char *redact_builtin_name(size_t i)
{
    return i < N_BUILTINS ? builtins[i].name : NULL;
}

int redact_builtin_known(const char *name)
{
    for (size_t i = 0; i < N_BUILTINS; i++) {
        if (strcmp(builtins[i].name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

int redact_luhn_ok(const char *s, size_t len)
{
    int sum = 0;
    int dbl = 0;
    int digits = 0;
    for (size_t i = len; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9') {
            continue;
        }
        int d = s[i] - '0';
        if (dbl) {
            d *= 2;
            d = d > 9 ? d - 9 : d;
        }
        sum += d;
        dbl = !dbl;
        digits++;
    }
    return digits > 0 && sum % 10 == 0;
}

/* Luhn, one kind of separator at most, and a major network's leading digits (Visa 4,
 * Mastercard 51-55 and 2221-2720, American Express 34/37, Discover 6011/644-649/65, JCB
 * 3528-3589, Diners 300-305/36/38, UnionPay 62). */
static int check_card(const char *s, size_t len)
{
    char d[20];
    size_t n = 0;
    char sep = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (n == sizeof(d)) {
                return 0;
            }
            d[n++] = s[i];
        } else if (sep == 0) {
            sep = s[i];
        } else if (s[i] != sep) {
            return 0;
        }
    }
    if (n < 13 || n > 19 || !redact_luhn_ok(d, n)) {
        return 0;
    }
    int p2 = (d[0] - '0') * 10 + (d[1] - '0');
    int p3 = p2 * 10 + (d[2] - '0');
    int p4 = p3 * 10 + (d[3] - '0');
    return d[0] == '4' || (p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720) || p2 == 34 ||
           p2 == 37 || p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 ||
           (p4 >= 3528 && p4 <= 3589) || (p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 ||
           p2 == 62;
}

/* ---- compiling ---- */

static int compile(const char *list, size_t idx, const char *re, uint32_t options, pcre2_code **out,
                   char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *c =
        pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, options, &code, &off, NULL);
    if (c == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "%s[%zu]: '%.100s' is not a regular expression: %s at offset %zu",
                 list, idx, re, (const char *)msg, (size_t)off);
        return O2D_ERR_CONFIG;
    }
    /* Without a JIT (some platforms, or SELinux's execmem) the interpreter runs, bounded by
     * the same limits. */
    (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
    *out = c;
    return O2D_OK;
}

/* The user's expressions are UTF-8 (as Go's regexp, which the Collector uses, reads them);
 * PCRE2_MATCH_INVALID_UTF lets them run on values that are not valid UTF-8. */
#define USER_RE_OPTIONS (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)

static int copy_list(char (*dst)[256], size_t *n, const char *const *src, size_t count,
                     const char *list, char *err, size_t errlen)
{
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(src[i]);
        if (len >= 256) {
            snprintf(err, errlen, "%s[%zu]: longer than 255 bytes", list, i);
            return O2D_ERR_CONFIG;
        }
        memcpy(dst[i], src[i], len + 1);
    }
    *n = count;
    return O2D_OK;
}

static int add_builtin(struct redact_rules *r, const struct builtin *b, char *err, size_t errlen)
{
    for (size_t i = 0; i < r->n_pats; i++) {
        if (r->pats[i].builtin && strcmp(r->pats[i].name, b->name) == 0) {
            return O2D_OK; /* named twice */
        }
    }
    struct redact_pattern *p = &r->pats[r->n_pats];
    int rv = compile("patterns", r->n_pats, b->re, 0, &p->code, err, errlen);
    if (rv != O2D_OK) {
        return rv;
    }
    snprintf(p->name, sizeof(p->name), "%s", b->name);
    snprintf(p->replace, sizeof(p->replace), "[REDACTED:%s]", b->name);
    p->source = b->re;
    p->check = b->check;
    p->needle = b->needle;
    p->needle_ci = b->needle_ci;
    p->classes = b->classes;
    p->min_digits = b->min_digits;
    p->min_dots = b->min_dots;
    p->min_colons = b->min_colons;
    p->builtin = 1;
    r->n_pats++;
    return O2D_OK;
}

int redact_rules_new(struct redact_rules **out, const struct redact_config *c, char *err,
                     size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_classes);
    struct redact_rules *r = o2d_calloc(1, sizeof(*r));
    int rv = O2D_ERR_NOMEM;
    if (r == NULL) {
        snprintf(err, errlen, "out of memory compiling the redaction rules");
        goto out;
    }
    r->allow_all_keys = c->allow_all_keys;
    r->summary = c->summary;
    r->hash = c->hash;
    r->drop_message_contents = c->drop_message_contents;
    r->match_limit = c->match_limit ? c->match_limit : REDACT_DEFAULT_MATCH_LIMIT;
    rv = O2D_ERR_CONFIG;
    if (c->n_allowed_keys > REDACT_MAX_LIST || c->n_ignored_keys > REDACT_MAX_LIST ||
        c->n_blocked_key_patterns > REDACT_MAX_LIST || c->n_blocked_values > REDACT_MAX_LIST ||
        c->n_allowed_values > REDACT_MAX_LIST || c->n_patterns > REDACT_MAX_LIST) {
        snprintf(err, errlen, "a redaction list holds more than %d entries", REDACT_MAX_LIST);
        goto out;
    }
    if (c->hash != REDACT_HASH_NONE) {
        size_t klen = c->hmac_key != NULL ? strlen(c->hmac_key) : 0;
        if (klen == 0 || klen > sizeof(r->hmac_key)) {
            /* The key itself is never quoted. */
            snprintf(err, errlen,
                     "hmac_key: hash_function %s needs a key of 1 to %zu bytes (for example "
                     "${env:OTEL2DD_REDACTION_KEY})",
                     c->hash == REDACT_HASH_HMAC_SHA512 ? "hmac-sha512" : "hmac-sha256",
                     sizeof(r->hmac_key));
            goto out;
        }
        memcpy(r->hmac_key, c->hmac_key, klen);
        r->hmac_key_len = klen;
    }
    if ((rv = copy_list(r->allowed_keys, &r->n_allowed_keys, c->allowed_keys, c->n_allowed_keys,
                        "allowed_keys", err, errlen)) != O2D_OK ||
        (rv = copy_list(r->ignored_keys, &r->n_ignored_keys, c->ignored_keys, c->n_ignored_keys,
                        "ignored_keys", err, errlen)) != O2D_OK ||
        (rv = copy_list(r->blocked_keys_src, &r->n_blocked_keys, c->blocked_key_patterns,
                        c->n_blocked_key_patterns, "blocked_key_patterns", err, errlen)) !=
            O2D_OK ||
        (rv = copy_list(r->allowed_values_src, &r->n_allowed_values, c->allowed_values,
                        c->n_allowed_values, "allowed_values", err, errlen)) != O2D_OK) {
        goto out;
    }
    for (size_t i = 0; i < r->n_blocked_keys; i++) {
        if ((rv = compile("blocked_key_patterns", i, r->blocked_keys_src[i], USER_RE_OPTIONS,
                          &r->blocked_keys[i], err, errlen)) != O2D_OK) {
            r->n_blocked_keys = i;
            goto out;
        }
    }
    for (size_t i = 0; i < r->n_allowed_values; i++) {
        if ((rv = compile("allowed_values", i, r->allowed_values_src[i], USER_RE_OPTIONS,
                          &r->allowed_values[i], err, errlen)) != O2D_OK) {
            r->n_allowed_values = i;
            goto out;
        }
    }
    /* blocked_values first, in their order, as the Collector applies them; then the
     * built-ins in their fixed order, whatever order `patterns` names them in. */
    for (size_t i = 0; i < c->n_blocked_values; i++) {
        struct redact_pattern *p = &r->pats[r->n_pats];
        size_t len = strlen(c->blocked_values[i]);
        if (len >= sizeof(r->pats_src[i])) {
            snprintf(err, errlen, "blocked_values[%zu]: longer than 255 bytes", i);
            rv = O2D_ERR_CONFIG;
            goto out;
        }
        memcpy(r->pats_src[i], c->blocked_values[i], len + 1);
        if ((rv = compile("blocked_values", i, r->pats_src[i], USER_RE_OPTIONS, &p->code, err,
                          errlen)) != O2D_OK) {
            goto out;
        }
        snprintf(p->name, sizeof(p->name), "blocked_values.%zu", i);
        snprintf(p->replace, sizeof(p->replace), "****"); /* the Collector's mask */
        p->source = r->pats_src[i];
        r->n_pats++;
    }
    for (size_t i = 0; i < c->n_patterns; i++) {
        if (!redact_builtin_known(c->patterns[i])) {
            snprintf(err, errlen, "patterns[%zu]: unknown pattern '%.64s'; known:", i,
                     c->patterns[i]);
            for (size_t k = 0; k < N_BUILTINS; k++) {
                size_t used = strlen(err);
                snprintf(err + used, errlen - used, "%s %s", k ? "," : "", builtins[k].name);
            }
            rv = O2D_ERR_CONFIG;
            goto out;
        }
    }
    for (size_t k = 0; k < N_BUILTINS; k++) {
        for (size_t i = 0; i < c->n_patterns; i++) {
            if (strcmp(c->patterns[i], builtins[k].name) == 0) {
                if ((rv = add_builtin(r, &builtins[k], err, errlen)) != O2D_OK) {
                    goto out;
                }
                break;
            }
        }
    }
    *out = r;
    r = NULL;
    rv = O2D_OK;
out:
    redact_rules_free(r);
    return rv;
}

void redact_rules_free(struct redact_rules *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n_blocked_keys; i++) {
        pcre2_code_free(r->blocked_keys[i]);
    }
    for (size_t i = 0; i < r->n_allowed_values; i++) {
        pcre2_code_free(r->allowed_values[i]);
    }
    for (size_t i = 0; i < REDACT_MAX_PATTERNS; i++) {
        pcre2_code_free(r->pats[i].code); /* NULL is a no-op */
    }
    /* The key must not linger in freed memory. */
    OPENSSL_cleanse(r->hmac_key, sizeof(r->hmac_key));
    o2d_free(r);
}

/* ---- counters and description ---- */

void redact_count(const struct redact_rules *r, size_t counter, uint64_t n)
{
    struct redact_rules *w = (struct redact_rules *)r; /* counters only */
    atomic_fetch_add_explicit(&w->counters[counter], n, memory_order_relaxed);
}

size_t redact_rules_counters(const struct redact_rules *r)
{
    return r->n_pats + REDACT_CTR_EXTRA;
}

const char *redact_counter_name(const struct redact_rules *r, size_t i)
{
    static const char *const extra[REDACT_CTR_EXTRA] = {"allowed_keys", "blocked_key_patterns",
                                                        "drop_message_contents"};
    return i < r->n_pats ? r->pats[i].name : extra[i - r->n_pats];
}

uint64_t redact_counter_value(const struct redact_rules *r, size_t i)
{
    size_t c = i < r->n_pats ? i : REDACT_MAX_PATTERNS + (i - r->n_pats);
    struct redact_rules *w = (struct redact_rules *)r;
    return atomic_load_explicit(&w->counters[c], memory_order_relaxed);
}

void redact_rules_describe(const struct redact_rules *r, void (*line)(void *ctx, const char *s),
                           void *ctx)
{
    char b[600];
    if (r->allow_all_keys) {
        line(ctx, "keys: all kept (allow_all_keys)");
    } else {
        snprintf(b, sizeof(b),
                 "keys: only the %zu allowed_keys are kept; every other attribute is removed%s",
                 r->n_allowed_keys,
                 r->n_allowed_keys == 0 ? " (allowed_keys is empty: ALL attributes go)" : "");
        line(ctx, b);
    }
    for (size_t i = 0; i < r->n_ignored_keys; i++) {
        snprintf(b, sizeof(b), "ignored key (never changed): %s", r->ignored_keys[i]);
        line(ctx, b);
    }
    for (size_t i = 0; i < r->n_blocked_keys; i++) {
        snprintf(b, sizeof(b), "blocked key pattern (whole value masked): %s",
                 r->blocked_keys_src[i]);
        line(ctx, b);
    }
    for (size_t i = 0; i < r->n_allowed_values; i++) {
        snprintf(b, sizeof(b), "allowed value (never masked): %s", r->allowed_values_src[i]);
        line(ctx, b);
    }
    for (size_t i = 0; i < r->n_pats; i++) {
        const struct redact_pattern *p = &r->pats[i];
        if (r->hash == REDACT_HASH_NONE) {
            snprintf(b, sizeof(b), "%s -> %s: %.480s", p->name, p->replace, p->source);
        } else if (p->builtin) {
            snprintf(b, sizeof(b), "%s -> [REDACTED:%s:<hmac hex>]: %.480s", p->name, p->name,
                     p->source);
        } else {
            snprintf(b, sizeof(b), "%s -> <hmac hex>: %.480s", p->name, p->source);
        }
        line(ctx, b);
    }
    snprintf(b, sizeof(b), "hash: %s; summary: %s; message contents: %s; match limit: %u",
             r->hash == REDACT_HASH_HMAC_SHA256   ? "hmac-sha256 (key set)"
             : r->hash == REDACT_HASH_HMAC_SHA512 ? "hmac-sha512 (key set)"
                                                  : "none",
             r->summary == REDACT_SUMMARY_DEBUG  ? "debug"
             : r->summary == REDACT_SUMMARY_INFO ? "info"
                                                 : "silent",
             r->drop_message_contents ? "dropped (roles, models, tokens, tool names kept)"
                                      : "kept, patterns applied",
             r->match_limit);
    line(ctx, b);
}

/* ---- one run ---- */

int redact_run_init(struct redact_run *run, const struct redact_rules *r, struct o2d_arena *a)
{
    memset(run, 0, sizeof(*run));
    run->r = r;
    run->a = a;
    o2d_buf_init(&run->buf, VALUE_MAX);
    run->md = pcre2_match_data_create(1, NULL);
    run->mctx = pcre2_match_context_create(NULL);
    run->jit = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
    if (run->md == NULL || run->mctx == NULL || run->jit == NULL) {
        redact_run_cleanup(run);
        return O2D_ERR_NOMEM;
    }
    pcre2_set_match_limit(run->mctx, r->match_limit);
    pcre2_set_depth_limit(run->mctx, r->match_limit);
    pcre2_set_heap_limit(run->mctx, HEAP_LIMIT_KIB);
    pcre2_jit_stack_assign(run->mctx, NULL, run->jit);
    return O2D_OK;
}

void redact_run_cleanup(struct redact_run *run)
{
    pcre2_match_data_free(run->md);
    pcre2_match_context_free(run->mctx);
    pcre2_jit_stack_free(run->jit);
    o2d_buf_cleanup(&run->buf);
    run->md = NULL;
    run->mctx = NULL;
    run->jit = NULL;
}

/* PCRE2 answers for a subject: 1 matched at ov, 0 no match, -1 a limit or an error. */
static int match_at(struct redact_run *run, const pcre2_code *code, const char *s, size_t len,
                    size_t start)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, len, start, 0, run->md, run->mctx);
    if (rc >= 0) {
        return 1;
    }
    return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

int redact_re_matches(struct redact_run *run, const pcre2_code *code, const char *s, size_t len)
{
    return match_at(run, code, s, len, 0) != 0;
}

/* Whether p can match in s at all: its byte classes, then its needle. */
static int may_match(const struct redact_pattern *p, const struct value_scan *v, const char *s,
                     size_t len)
{
    if ((p->classes & v->classes) != p->classes || v->n[1] < p->min_digits ||
        v->n[2] < p->min_dots || v->n[3] < p->min_colons) {
        return 0;
    }
    if (p->needle == NULL) {
        return 1;
    }
    size_t nl = strlen(p->needle);
    if (!p->needle_ci) {
        return memmem(s, len, p->needle, nl) != NULL;
    }
    for (size_t i = 0; i + nl <= len; i++) {
        if ((s[i] | 0x20) == p->needle[0] && strncasecmp(s + i, p->needle, nl) == 0) {
            return 1;
        }
    }
    return 0;
}

/* What replaces one match: the marker, or a keyed digest of the matched text. */
static int append_replacement(struct redact_run *run, const struct redact_pattern *p, const char *m,
                              size_t mlen)
{
    const struct redact_rules *r = run->r;
    if (r->hash == REDACT_HASH_NONE) {
        return o2d_buf_append_str(&run->buf, p != NULL ? p->replace : "****");
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const EVP_MD *alg = r->hash == REDACT_HASH_HMAC_SHA512 ? EVP_sha512() : EVP_sha256();
    if (HMAC(alg, r->hmac_key, (int)r->hmac_key_len, (const unsigned char *)m, mlen, md, &mdlen) ==
        NULL) {
        return O2D_ERR_INTERNAL;
    }
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < mdlen; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * mdlen] = '\0';
    if (p != NULL && p->builtin) {
        return o2d_buf_printf(&run->buf, "[REDACTED:%s:%s]", p->name, hex);
    }
    return o2d_buf_append_str(&run->buf, hex);
}

/* One pattern over s[0..len) into run->buf; *n the matches replaced (0: buf unused). */
static int apply_one(struct redact_run *run, const struct redact_pattern *p, const char *s,
                     size_t len, size_t *n)
{
    *n = 0;
    size_t start = 0;
    size_t copied = 0;
    int rv = O2D_OK;
    o2d_buf_reset(&run->buf);
    while (start <= len) {
        int m = match_at(run, p->code, s, len, start);
        if (m == 0) {
            break;
        }
        if (m < 0) {
            /* A limit (or an error): fail closed, the whole value goes. */
            o2d_buf_reset(&run->buf);
            *n = 1;
            return append_replacement(run, p, s, len);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(run->md);
        size_t ms = ov[0];
        size_t me = ov[1];
        if (me <= ms) {
            start = ms + 1; /* an empty match replaces nothing */
            continue;
        }
        if (p->check != NULL && !p->check(s + ms, me - ms)) {
            start = me;
            continue;
        }
        if ((rv = o2d_buf_append(&run->buf, s + copied, ms - copied)) != O2D_OK ||
            (rv = append_replacement(run, p, s + ms, me - ms)) != O2D_OK) {
            return rv;
        }
        copied = me;
        start = me;
        (*n)++;
    }
    if (*n > 0) {
        rv = o2d_buf_append(&run->buf, s + copied, len - copied);
    }
    return rv;
}

int redact_patterns(struct redact_run *run, const char *s, size_t len, const char **out,
                    int *changed)
{
    const struct redact_rules *r = run->r;
    *out = s;
    *changed = 0;
    struct value_scan v;
    value_scan(s, len, &v);
    for (size_t i = 0; i < r->n_pats; i++) {
        if (!may_match(&r->pats[i], &v, s, len)) {
            continue;
        }
        size_t n;
        int rv = apply_one(run, &r->pats[i], s, len, &n);
        if (rv != O2D_OK) {
            return rv == O2D_ERR_TOO_LARGE ? O2D_ERR_TOO_LARGE : O2D_ERR_NOMEM;
        }
        if (n == 0) {
            continue;
        }
        redact_count(r, i, n);
        char *copy = o2d_arena_strndup(run->a, (const char *)run->buf.data, run->buf.len);
        if (copy == NULL) {
            return O2D_ERR_NOMEM;
        }
        s = copy;
        len = run->buf.len;
        value_scan(s, len, &v);
        *out = copy;
        *changed = 1;
    }
    return O2D_OK;
}

int redact_mask_whole(struct redact_run *run, const char *s, size_t len, const char **out)
{
    o2d_buf_reset(&run->buf);
    int rv = append_replacement(run, NULL, s, len);
    if (rv != O2D_OK) {
        return rv;
    }
    char *copy = o2d_arena_strndup(run->a, (const char *)run->buf.data, run->buf.len);
    if (copy == NULL) {
        return O2D_ERR_NOMEM;
    }
    *out = copy;
    return O2D_OK;
}
