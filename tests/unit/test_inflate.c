/*
 * test_inflate.c: bounded gzip: round trip, exact limit, a bomb that never allocates past the
 * limit, corrupt, truncated, trailing junk, concatenated members, allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_inflate.h"

static uint8_t *gz(const uint8_t *in, size_t n, size_t *out_len)
{
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, n) + 32;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void round_trip_and_exact_limit(void **state)
{
    (void)state;
    uint8_t data[100000];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7 + i / 13);
    }
    size_t zl;
    uint8_t *z = gz(data, sizeof(data), &zl);
    struct o2d_buf out;
    const char *reason;
    o2d_buf_init(&out, sizeof(data));
    assert_int_equal(o2d_gunzip(z, zl, &out, &reason), O2D_OK);
    assert_int_equal(out.len, sizeof(data));
    assert_memory_equal(out.data, data, sizeof(data));
    o2d_buf_cleanup(&out);
    o2d_buf_init(&out, sizeof(data) - 1);
    assert_int_equal(o2d_gunzip(z, zl, &out, &reason), O2D_ERR_TOO_LARGE);
    assert_string_equal(reason, "decompressed body exceeds the size limit");
    assert_true(out.cap <= sizeof(data) - 1);
    o2d_buf_cleanup(&out);
    free(z);
}

static void bomb_stops_at_the_limit(void **state)
{
    (void)state;
    size_t big = 64u * 1024 * 1024;
    uint8_t *zeros = calloc(1, big);
    size_t zl;
    uint8_t *z = gz(zeros, big, &zl);
    free(zeros);
    assert_true(zl < 100 * 1024); /* ~65 KB that would inflate to 64 MiB */
    struct o2d_buf out;
    const char *reason;
    o2d_buf_init(&out, 1024 * 1024);
    assert_int_equal(o2d_gunzip(z, zl, &out, &reason), O2D_ERR_TOO_LARGE);
    assert_true(out.cap <= 1024 * 1024);
    o2d_buf_cleanup(&out);
    free(z);
}

static void corrupt_truncated_trailing(void **state)
{
    (void)state;
    const char *text = "hello hello hello hello";
    size_t zl;
    uint8_t *z = gz((const uint8_t *)text, strlen(text), &zl);
    struct o2d_buf out;
    const char *reason;
    o2d_buf_init(&out, 1 << 20);

    assert_int_equal(o2d_gunzip(z, zl - 4, &out, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, "gzip body is truncated");

    o2d_buf_reset(&out);
    uint8_t *bad = malloc(zl);
    memcpy(bad, z, zl);
    bad[12] ^= 0xff;
    bad[13] ^= 0x55;
    assert_int_equal(o2d_gunzip(bad, zl, &out, &reason), O2D_ERR_INVALID);
    free(bad);

    o2d_buf_reset(&out);
    assert_int_equal(o2d_gunzip((const uint8_t *)"not gzip at all", 15, &out, &reason),
                     O2D_ERR_INVALID);
    assert_string_equal(reason, "gzip body is corrupt");

    o2d_buf_reset(&out);
    assert_int_equal(o2d_gunzip(z, 0, &out, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, "gzip body is empty");

    o2d_buf_reset(&out);
    uint8_t *junk = malloc(zl + 3);
    memcpy(junk, z, zl);
    memcpy(junk + zl, "xyz", 3);
    assert_int_equal(o2d_gunzip(junk, zl + 3, &out, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, "gzip body has trailing data");
    free(junk);

    /* two members concatenated are one body */
    o2d_buf_reset(&out);
    uint8_t *two = malloc(2 * zl);
    memcpy(two, z, zl);
    memcpy(two + zl, z, zl);
    assert_int_equal(o2d_gunzip(two, 2 * zl, &out, &reason), O2D_OK);
    assert_int_equal(out.len, 2 * strlen(text));
    free(two);

    o2d_buf_cleanup(&out);
    free(z);
}

static void allocation_failure_is_nomem(void **state)
{
    (void)state;
    const char *text = "some text to compress, some text to compress";
    size_t zl;
    uint8_t *z = gz((const uint8_t *)text, strlen(text), &zl);
    struct o2d_buf out;
    const char *reason;
    o2d_buf_init(&out, 1 << 20);
    o2d_alloc_fail_after(0);
    int rv = o2d_gunzip(z, zl, &out, &reason);
    o2d_alloc_fail_after(-1);
    assert_int_equal(rv, O2D_ERR_NOMEM);
    o2d_buf_cleanup(&out);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_exact_limit),
        cmocka_unit_test(bomb_stops_at_the_limit),
        cmocka_unit_test(corrupt_truncated_trailing),
        cmocka_unit_test(allocation_failure_is_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
