/*
 * test_body_pool.c: the receivers' kept request bodies (collector/receivers/body_pool.c): the
 * best fit taken (the smallest that holds the body, else the largest), the three bounds on
 * what is given back (slots, capacity each, capacity in all), the byte count kept exact
 * through takes and gives, and the pool emptied only after idle_ms without use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "body_pool.h"
#include "o2d_buf.h"

/* A buffer with `cap` bytes of storage, as a finished request leaves it (some bytes in). */
static void filled(struct o2d_buf *b, size_t cap)
{
    o2d_buf_init(b, cap);
    assert_int_equal(o2d_buf_reserve(b, cap), 0);
    assert_int_equal(b->cap, cap);
    memset(b->data, 0x5a, cap);
    b->len = cap / 2;
}

static void give_cap(struct body_pool *p, size_t cap, int64_t now)
{
    struct o2d_buf b;
    filled(&b, cap);
    body_pool_give(p, &b, now);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.len, 0);
}

/* Takes for a body of `want` bytes; returns the capacity it got (0: none). */
static size_t take_cap(struct body_pool *p, size_t want, struct o2d_buf *b)
{
    o2d_buf_init(b, 1234);
    if (!body_pool_take(p, b, want, 10)) {
        assert_null(b->data);
        return 0;
    }
    assert_non_null(b->data);
    assert_int_equal(b->len, 0);
    assert_int_equal(b->max, 1234); /* what the request reserved stays its own */
    return b->cap;
}

static void test_best_fit(void **state)
{
    (void)state;
    struct body_pool p;
    body_pool_init(&p, 1 << 20, 16 << 20);
    struct o2d_buf b;
    assert_int_equal(take_cap(&p, 100, &b), 0); /* empty */
    give_cap(&p, 4096, 1);
    give_cap(&p, 65536, 1);
    give_cap(&p, 16384, 1);
    give_cap(&p, 262144, 1);
    assert_int_equal(p.n, 4);
    assert_int_equal(p.bytes, 4096 + 65536 + 16384 + 262144);

    /* the smallest that holds it */
    assert_int_equal(take_cap(&p, 10000, &b), 16384);
    o2d_buf_cleanup(&b);
    assert_int_equal(p.bytes, 4096 + 65536 + 262144);
    assert_int_equal(take_cap(&p, 65536, &b), 65536);
    o2d_buf_cleanup(&b);
    /* none holds it: the largest */
    assert_int_equal(take_cap(&p, 1 << 20, &b), 262144);
    /* written through, given back and taken again: the same storage */
    memset(b.data, 1, b.cap);
    uint8_t *data = b.data;
    body_pool_give(&p, &b, 2);
    assert_int_equal(take_cap(&p, 200000, &b), 262144);
    assert_ptr_equal(b.data, data);
    o2d_buf_cleanup(&b);
    assert_int_equal(take_cap(&p, 0, &b), 4096);
    o2d_buf_cleanup(&b);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.bytes, 0);
    body_pool_cleanup(&p);
}

static void test_bounds(void **state)
{
    (void)state;
    struct body_pool p;
    body_pool_init(&p, 65536, 100000);
    give_cap(&p, 65537, 1); /* larger than max_each: freed */
    assert_int_equal(p.n, 0);
    give_cap(&p, 65536, 1);
    give_cap(&p, 32768, 1);
    assert_int_equal(p.bytes, 98304);
    give_cap(&p, 2048, 1); /* past max_bytes: freed */
    assert_int_equal(p.n, 2);
    give_cap(&p, 1024, 1); /* exactly up to it: kept */
    assert_int_equal(p.n, 3);
    assert_int_equal(p.bytes, 99328);
    body_pool_cleanup(&p);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.bytes, 0);

    /* no more than BODY_POOL_SLOTS buffers, however small */
    body_pool_init(&p, 65536, 16 << 20);
    for (int k = 0; k < BODY_POOL_SLOTS + 5; k++) {
        give_cap(&p, 256, 1);
    }
    assert_int_equal(p.n, BODY_POOL_SLOTS);
    assert_int_equal(p.bytes, BODY_POOL_SLOTS * 256);
    body_pool_cleanup(&p);

    /* a buffer that never got storage is not kept */
    struct o2d_buf none;
    o2d_buf_init(&none, 100);
    body_pool_give(&p, &none, 1);
    assert_int_equal(p.n, 0);
}

static void test_trim_after_idle(void **state)
{
    (void)state;
    struct body_pool p;
    body_pool_init(&p, 1 << 20, 16 << 20);
    give_cap(&p, 4096, 1000);
    give_cap(&p, 4096, 1000);
    body_pool_trim(&p, 2999, 2000); /* used 1999 ms ago */
    assert_int_equal(p.n, 2);
    struct o2d_buf b;
    o2d_buf_init(&b, 0);
    assert_int_equal(body_pool_take(&p, &b, 10, 2500), 1); /* a take counts as use */
    o2d_buf_cleanup(&b);
    body_pool_trim(&p, 4000, 2000);
    assert_int_equal(p.n, 1);
    body_pool_trim(&p, 4500, 2000);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.bytes, 0);
    body_pool_trim(&p, 9000, 2000); /* empty: nothing to do */
    body_pool_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_fit),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_trim_after_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
