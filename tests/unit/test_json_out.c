/*
 * test_json_out.c: o2d_json_append_string() and the decimal writers against plain reference
 * versions (one byte at a time; snprintf): the same bytes for random inputs mixing text,
 * escapes and broken UTF-8, and the same answer at a buffer's max (fits exactly, one byte
 * short), where a failed append leaves the buffer as it was; and an empty string given as
 * (NULL, 0), as an empty o2d_buf holds it.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "o2d.h"
#include "o2d_buf.h"
#include "o2d_json_out.h"

/* The escaping rules one byte at a time. */
static void reference(struct o2d_buf *b, const unsigned char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    assert_int_equal(o2d_buf_append_byte(b, '"'), O2D_OK);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        char e[8];
        size_t n = 0;
        if (c >= 0x80) {
            uint32_t cp;
            size_t l = o2d_utf8_decode(p + i, len - i, &cp);
            assert_int_equal(
                l > 0 ? o2d_buf_append(b, p + i, l) : o2d_buf_append(b, "\xEF\xBF\xBD", 3), O2D_OK);
            i += l > 0 ? l : 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            e[n++] = '\\';
            e[n++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            e[n++] = '\\';
            e[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
        } else if (c < 0x20) {
            n = (size_t)snprintf(e, sizeof(e), "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else {
            e[n++] = (char)c;
        }
        assert_int_equal(o2d_buf_append(b, e, n), O2D_OK);
        i++;
    }
    assert_int_equal(o2d_buf_append_byte(b, '"'), O2D_OK);
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state >> 16);
}

static void test_strings(void **state)
{
    (void)state;
    static const char *const pieces[] = {"plain text ",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "caf\xc3\xa9",
                                         "\xc3",
                                         "\xed\xa0\x80",
                                         "\x80",
                                         "\xf0\x9f\x98\x80",
                                         "\xf4\x90\x80\x80",
                                         "/",
                                         "{}"};
    unsigned char in[512];
    for (int round = 0; round < 5000; round++) {
        size_t n = 0;
        int k = (int)(rnd() % 12);
        for (int j = 0; j < k; j++) {
            const char *pc = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t l = strlen(pc);
            memcpy(in + n, pc, l);
            n += l;
        }
        struct o2d_buf want, got;
        o2d_buf_init(&want, SIZE_MAX / 2);
        reference(&want, in, n);
        /* unbounded, and at exactly the size needed (fits) and one byte less (fails, no change) */
        for (int bound = 0; bound < 3; bound++) {
            size_t max = bound == 0 ? SIZE_MAX / 2 : 3 + want.len - (bound == 2);
            o2d_buf_init(&got, max);
            assert_int_equal(o2d_buf_append(&got, "ab,", 3), O2D_OK);
            int rv = o2d_json_append_string(&got, (const char *)in, n);
            if (bound == 2) {
                assert_int_equal(rv, O2D_ERR_TOO_LARGE);
                assert_int_equal(got.len, 3);
            } else {
                assert_int_equal(rv, O2D_OK);
                assert_int_equal(got.len, 3 + want.len);
                assert_memory_equal(got.data + 3, want.data, want.len);
            }
            o2d_buf_cleanup(&got);
        }
        o2d_buf_cleanup(&want);
    }
}

/* Every length up to a few vector widths, with one byte that is not plain at every place (or
 * none): the scanners' block, overlapping-tail and word paths each meet its edges. */
static void test_runs(void **state)
{
    (void)state;
    static const unsigned char specials[] = {'"', '\\', '\n', 0x01, 0x7f, 0xc3, 0x80, 0xe9};
    unsigned char in[100];
    for (size_t n = 0; n <= sizeof(in); n++) {
        for (size_t at = 0; at <= n; at++) {
            for (size_t k = 0; k < (at < n ? sizeof(specials) : 1); k++) {
                for (size_t i = 0; i < n; i++) {
                    in[i] = (unsigned char)('a' + (i * 7) % 26);
                }
                if (at < n) {
                    in[at] = specials[k];
                }
                size_t plain = at < n && specials[k] != 0x7f ? at : n;
                assert_int_equal(o2d_json_plain_len((const char *)in, n), plain);
                struct o2d_buf want, got;
                o2d_buf_init(&want, SIZE_MAX / 2);
                o2d_buf_init(&got, SIZE_MAX / 2);
                reference(&want, in, n);
                assert_int_equal(o2d_json_append_string(&got, (const char *)in, n), O2D_OK);
                assert_int_equal(got.len, want.len);
                assert_memory_equal(got.data, want.data, want.len);
                o2d_buf_cleanup(&want);
                o2d_buf_cleanup(&got);
            }
        }
    }
}

/* An empty o2d_buf's data is NULL: writing it as a string must not do arithmetic on NULL
 * (the ASan/UBSan build aborts on NULL + 0), into an empty buffer or an exactly full one. */
static void test_empty_from_null(void **state)
{
    (void)state;
    struct o2d_buf empty, out;
    o2d_buf_init(&empty, 16);
    o2d_buf_init(&out, 2);
    assert_int_equal(o2d_json_append_string(&out, (const char *)empty.data, empty.len), O2D_OK);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "\"\"", 2);
    assert_int_equal(o2d_json_append_string(&out, NULL, 0), O2D_ERR_TOO_LARGE);
    assert_int_equal(out.len, 2);
    o2d_buf_cleanup(&out);
    o2d_buf_cleanup(&empty);
}

static void test_numbers(void **state)
{
    (void)state;
    static const int64_t ints[] = {0,         1,        -1, 9, 10, -10, 1768478414002000000LL,
                                   INT64_MAX, INT64_MIN};
    static const uint64_t uints[] = {0, 7, 10, 14987993476612893167ULL, UINT64_MAX};
    char want[32];
    struct o2d_buf b;
    o2d_buf_init(&b, 64);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        o2d_buf_reset(&b);
        assert_int_equal(o2d_json_append_int(&b, ints[i]), O2D_OK);
        int n = snprintf(want, sizeof(want), "%" PRId64, ints[i]);
        assert_int_equal(b.len, (size_t)n);
        assert_memory_equal(b.data, want, (size_t)n);
    }
    for (size_t i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
        o2d_buf_reset(&b);
        assert_int_equal(o2d_json_append_uint(&b, uints[i]), O2D_OK);
        int n = snprintf(want, sizeof(want), "%" PRIu64, uints[i]);
        assert_int_equal(b.len, (size_t)n);
        assert_memory_equal(b.data, want, (size_t)n);
    }
    /* every length, both sides of each power of ten (the digits go two at a time) */
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t u = i < 64 ? (i % 2 ? 1 : 0) : x >> (i % 64);
        for (uint64_t p = 1, k = 0; k < 20; k++, p *= 10) {
            uint64_t vals[] = {u, p - 1, p, p + 1};
            for (size_t j = 0; j < 4; j++) {
                o2d_buf_reset(&b);
                assert_int_equal(o2d_json_append_uint(&b, vals[j]), O2D_OK);
                int n = snprintf(want, sizeof(want), "%" PRIu64, vals[j]);
                assert_int_equal(b.len, (size_t)n);
                assert_memory_equal(b.data, want, (size_t)n);
                int64_t sv = (int64_t)vals[j] * (j % 2 ? -1 : 1);
                o2d_buf_reset(&b);
                assert_int_equal(o2d_json_append_int(&b, sv), O2D_OK);
                n = snprintf(want, sizeof(want), "%" PRId64, sv);
                assert_int_equal(b.len, (size_t)n);
                assert_memory_equal(b.data, want, (size_t)n);
            }
            if (i >= 64) {
                break;
            }
        }
    }
    /* eight-digit groups (written by fixed-point arithmetic) across their whole range */
    for (uint64_t r = 0; r < 100000000; r += r < 1000 || r > 99999000 ? 1 : 997) {
        uint64_t v = 1768478414ull * 100000000 + r;
        char got[20];
        size_t n = o2d_json_format_uint(got, v);
        int wn = snprintf(want, sizeof(want), "%" PRIu64, v);
        assert_int_equal(n, (size_t)wn);
        assert_memory_equal(got, want, n);
    }
    o2d_buf_cleanup(&b);
}

static void test_hex(void **state)
{
    (void)state;
    static const uint8_t id[16] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff,
                                   0x10, 0x09, 0xa0, 0x5a, 0x3c, 0xc3, 0x0f, 0xf0};
    struct o2d_buf b;
    o2d_buf_init(&b, 64);
    assert_int_equal(o2d_buf_append(&b, "x", 1), O2D_OK);
    assert_int_equal(o2d_hex_append(&b, id, 16), O2D_OK);
    assert_int_equal(b.len, 33);
    assert_memory_equal(b.data, "x00017f80abcdefff1009a05a3cc30ff0", 33);
    o2d_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_empty_from_null),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
