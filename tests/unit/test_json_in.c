/*
 * test_json_in.c: o2d_json_in_load() against jansson's own json_loadb(JSON_DECODE_ANY |
 * JSON_ALLOW_NUL), which it replaces on the LLM Obs path: for hand-picked edge cases and for
 * many mutations of real gen_ai message texts, both accept or both refuse, and what they
 * build dumps to the same text (values, key order, repeated keys).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "o2d_json_in.h"

static size_t mismatches;

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Compares both readers on s[0..n); returns 1 when they agree. */
static int agree(const char *s, size_t n)
{
    json_error_t err;
    json_t *want = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    json_t *got = NULL;
    const char *reason = NULL;
    int rv = o2d_json_in_load(s, n, &got, &reason);
    int ok;
    if (want == NULL) {
        ok = rv == O2D_ERR_INVALID && got == NULL && reason != NULL;
    } else {
        ok = rv == O2D_OK && got != NULL;
        if (ok) {
            char *a = dump(want), *b = dump(got);
            ok = a != NULL && b != NULL && strcmp(a, b) == 0 &&
                 json_typeof(want) == json_typeof(got);
            free(a);
            free(b);
        }
    }
    if (!ok && mismatches++ < 10) {
        fprintf(stderr, "disagree on %zu bytes: '%.*s' (jansson %s, o2d %d %s)\n", n, (int)n, s,
                want != NULL ? "ok" : err.text, rv, reason != NULL ? reason : "");
    }
    json_decref(want);
    json_decref(got);
    return ok;
}

static void test_cases(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        " ",
        "{}",
        "[]",
        " [ ] ",
        "{ }",
        "\"\"",
        "0",
        "-0",
        "01",
        "-",
        "-a",
        "1.",
        "1.5",
        ".5",
        "1e",
        "1e+",
        "1e5",
        "1E-5",
        "1e400",
        "-1e400",
        "1e-400",
        "0.1e1",
        "2.50",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "00",
        "1 2",
        "1,",
        "true",
        "false",
        "null",
        "truex",
        "tru",
        "nulll",
        "True",
        "NaN",
        "Infinity",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{,}",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1,\"b\":2,\"a\":3}",
        "{\"b\":[1,{\"c\":null}],\"a\":\"x\"}",
        "\"a\\u0000b\"",
        "{\"a\\u0000\":1}",
        "{\"\":1}",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\ud83dx\"",
        "\"\\ud83d\\u0041\"",
        "\"\\u00e9\\u00E9\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\x\"",
        "\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "\"unterminated",
        "\"caf\xc3\xa9\"",
        "\"\xc3\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xc0\xaf\"",
        "\xc3\xa9",
        "[\"a\" , \"b\"]\r\n",
        "[1]x",
        "{\"a\":1}}",
        "[[[]]]",
        "{\"k\":\"\\u00e9\",\"\\u00e9\":\"v\"}",
        "[1.0,2.5e3,-0.0,1e-7,123.456]",
        "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"hi\"}]}]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(agree(cases[i], strlen(cases[i])));
    }
    /* NUL bytes in the text (not escaped) */
    assert_true(agree("\"a\0b\"", 5));
    assert_true(agree("[1]\0", 4));
    assert_true(agree("[1,\0]", 5));
}

static void test_depth(void **state)
{
    (void)state;
    for (size_t depth = JSON_PARSER_MAX_DEPTH - 1; depth <= JSON_PARSER_MAX_DEPTH + 1; depth++) {
        size_t n = 2 * depth + 1;
        char *s = malloc(n + 1);
        assert_non_null(s);
        /* depth arrays and a scalar inside the innermost */
        memset(s, '[', depth);
        s[depth] = '1';
        memset(s + depth + 1, ']', depth);
        assert_true(agree(s, n));
        /* depth arrays, the innermost empty */
        memset(s, '[', depth);
        memset(s + depth, ']', depth);
        assert_true(agree(s, 2 * depth));
        free(s);
    }
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state >> 16);
}

static void test_mutations(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "[{\"role\":\"system\",\"parts\":[{\"type\":\"text\",\"content\":\"You are the support "
        "assistant.\"}]},{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Where is "
        "order 88231? caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"}]}]",
        "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\",\"id\":\"c1\",\"name\":"
        "\"lookup\",\"arguments\":{\"q\":[1,2.5,-3e2,true,false,null]}}],\"finish_reason\":"
        "\"stop\"}]",
        ("{\"inputs\":{\"question\":\"a\\\"b\\\\c\\n\",\"order_id\":\"88231\"},\"tags\":[],"
         "\"metadata\":{},\"n\":-0.5e-3,\"big\":9223372036854775807}"),
    };
    static const char alphabet[] = "{}[]:,\"\\u0123456789abcdefABCDEF-+.eE tfnrl\t\n\x01\x1f";
    static const char *const multi[] = {"\xc3\xa9",         "\xed\xa0\x80", "\xc3",    "\x80",
                                        "\xf0\x9f\x98\x80", "\\ud83d",      "\\ude00", "\\u0000"};
    char buf[1024];
    size_t total = 0;
    for (int round = 0; round < 60000; round++) {
        const char *seed = seeds[round % 3];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits && n > 0; e++) {
            size_t at = rnd() % n;
            uint32_t op = rnd() % 4;
            if (op == 0) {
                memmove(buf + at, buf + at + 1, n - at - 1); /* delete */
                n--;
            } else if (op == 1 && n < sizeof(buf) - 8) {
                const char *m = multi[rnd() % (sizeof(multi) / sizeof(multi[0]))];
                size_t ml = strlen(m);
                memmove(buf + at + ml, buf + at, n - at); /* insert */
                memcpy(buf + at, m, ml);
                n += ml;
            } else if (op == 2 && n < sizeof(buf) - 1) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = alphabet[rnd() % (sizeof(alphabet) - 1)];
                n++;
            } else {
                buf[at] = alphabet[rnd() % (sizeof(alphabet) - 1)]; /* replace */
            }
        }
        total += agree(buf, n);
    }
    assert_int_equal(mismatches, 0);
    assert_int_equal(total, 60000);
}

static void test_failmalloc(void **state)
{
    (void)state;
    /* escapes in keys and values use our buffers; jansson's own nodes use malloc here */
    static const char text[] = "{\"k\\u00e9\":\"v\\n\",\"n\":1.5}";
    int ok = 0;
    for (long n = 0; n < 20 && !ok; n++) {
        o2d_alloc_fail_after(n);
        json_t *v = NULL;
        const char *reason = NULL;
        int rv = o2d_json_in_load(text, sizeof(text) - 1, &v, &reason);
        o2d_alloc_fail_after(-1);
        if (rv == O2D_OK) {
            ok = o2d_alloc_failures() == 0;
            json_decref(v);
        } else {
            assert_int_equal(rv, O2D_ERR_NOMEM);
            assert_null(v);
        }
    }
    assert_true(ok);
}

/* Inside a scratch, values come from the arena and die with it; a value made before it is
 * still freed to the heap from inside; after the close, allocation is the heap's again. */
static void test_scratch(void **state)
{
    (void)state;
    json_set_alloc_funcs(o2d_json_in_malloc, o2d_json_in_free);
    json_t *outside = json_string("made before");
    assert_non_null(outside);
    struct o2d_json_in_scratch js;
    o2d_json_in_scratch_init(&js);
    o2d_json_in_scratch_open(&js);
    static const char text[] = "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\","
                               "\"content\":\"hi\"}]},1.5,true,\"x\\ny\"]";
    json_t *v = NULL;
    const char *reason = NULL;
    assert_int_equal(o2d_json_in_load(text, sizeof(text) - 1, &v, &reason), O2D_OK);
    assert_true(o2d_arena_owns(&js.arena, v));
    assert_false(o2d_arena_owns(&js.arena, outside));
    json_decref(outside); /* heap: really freed (ASan would see a leak otherwise) */
    json_decref(v);
    o2d_json_in_scratch_close(&js);
    o2d_json_in_scratch_cleanup(&js);
    json_t *after = json_string("made after");
    assert_non_null(after);
    json_decref(after);
    json_set_alloc_funcs(malloc, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),     cmocka_unit_test(test_depth),
        cmocka_unit_test(test_mutations), cmocka_unit_test(test_failmalloc),
        cmocka_unit_test(test_scratch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
