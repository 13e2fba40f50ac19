/*
 * test_sql_cache.c: the SQL obfuscation cache (sql_cache.h) against sql_obfuscate() itself:
 * a hit gives the same status and bytes as obfuscating again (valid, non-parsable and
 * too-large-for-the-buffer queries), the byte bound holds while entries are evicted least
 * recently used first, queries too long to keep are obfuscated and not kept, a failed
 * allocation only costs the cache its entry, and four threads sharing a small cache (so
 * evicting all the time) each get the right result for every query.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "sql_cache.h"
#include "sql_obfuscate.h"

/* Obfuscates q without a cache: its status, and its bytes in *want (malloc'd, NUL-ended). */
static int reference(const char *q, char **want)
{
    struct o2d_buf b;
    o2d_buf_init(&b, 1u << 20);
    int rv = sql_obfuscate(q, strlen(q), &b);
    *want = malloc(b.len + 1);
    assert_non_null(*want);
    if (b.len > 0) {
        memcpy(*want, b.data, b.len);
    }
    (*want)[b.len] = '\0';
    o2d_buf_cleanup(&b);
    return rv;
}

/* Through the cache, appended after a prefix the call must leave alone. */
static void check_one(struct sql_cache *c, const char *q)
{
    char *want;
    int want_rv = reference(q, &want);
    struct o2d_buf b;
    o2d_buf_init(&b, 1u << 20);
    assert_int_equal(o2d_buf_append(&b, "pre|", 4), O2D_OK);
    int rv = sql_cache_obfuscate(c, q, strlen(q), &b);
    assert_int_equal(rv, want_rv);
    assert_memory_equal(b.data, "pre|", 4);
    assert_int_equal(b.len, 4 + (want_rv == O2D_OK ? strlen(want) : 0));
    if (want_rv == O2D_OK) {
        assert_memory_equal(b.data + 4, want, strlen(want));
    }
    o2d_buf_cleanup(&b);
    free(want);
}

static const char *const queries[] = {
    "SELECT id, status FROM orders WHERE id = $1",
    "SELECT * FROM users WHERE email = 'a@example.com' AND age > 30",
    "UPDATE stock SET quantity = quantity - 1 WHERE sku = 'X-1' AND id IN (1, 2, 3)",
    "INSERT INTO payments (id, amount) VALUES (1, 2.5), (2, 3.5)",
    "SELECT $tag$ body $tag$ FROM t",
    "SELECT 'unterminated FROM t",       /* cannot be parsed */
    "/* only a comment */",              /* obfuscates to nothing */
    "SELECT a FROM b WHERE c = 'x\\'y'", /* a backslash escape */
};
#define N_QUERIES (sizeof(queries) / sizeof(queries[0]))

static void test_hits_equal_obfuscation(void **state)
{
    (void)state;
    struct sql_cache *c;
    assert_int_equal(sql_cache_new(SQL_CACHE_DEFAULT_BYTES, &c), O2D_OK);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < N_QUERIES; i++) {
            check_one(c, queries[i]);
        }
    }
    struct sql_cache_counters k;
    sql_cache_get_counters(c, &k);
    assert_int_equal(k.misses, N_QUERIES);
    assert_int_equal(k.hits, 2 * N_QUERIES);
    assert_int_equal(k.entries, N_QUERIES); /* non-parsable results are kept too */
    assert_int_equal(k.evictions, 0);
    assert_true(k.bytes > 0 && k.bytes <= SQL_CACHE_DEFAULT_BYTES);
    sql_cache_free(c);
    /* no cache: the obfuscator itself */
    for (size_t i = 0; i < N_QUERIES; i++) {
        check_one(NULL, queries[i]);
    }
    sql_cache_free(NULL);
}

static void test_too_small(void **state)
{
    (void)state;
    struct sql_cache *c = (struct sql_cache *)&c;
    assert_int_equal(sql_cache_new(SQL_CACHE_MIN_BYTES - 1, &c), O2D_ERR_INVALID);
    assert_null(c);
}

/* A result that does not fit the caller's buffer is an error, from the cache as without it,
 * and is not what gets kept. */
static void test_buffer_limit(void **state)
{
    (void)state;
    struct sql_cache *c;
    assert_int_equal(sql_cache_new(SQL_CACHE_MIN_BYTES, &c), O2D_OK);
    const char *q = queries[1];
    struct o2d_buf tight;
    o2d_buf_init(&tight, 10);
    assert_int_equal(sql_cache_obfuscate(c, q, strlen(q), &tight), O2D_ERR_TOO_LARGE);
    assert_int_equal(tight.len, 0);
    struct sql_cache_counters k;
    sql_cache_get_counters(c, &k);
    assert_int_equal(k.entries, 0);
    check_one(c, q); /* miss, kept */
    assert_int_equal(sql_cache_obfuscate(c, q, strlen(q), &tight), O2D_ERR_TOO_LARGE);
    assert_int_equal(tight.len, 0);
    sql_cache_get_counters(c, &k);
    assert_int_equal(k.entries, 1);
    assert_int_equal(k.hits, 1);
    o2d_buf_cleanup(&tight);
    sql_cache_free(c);
}

/* Thousands of distinct queries through the smallest cache: the bound holds, entries are
 * evicted, and one query used between every two others is never the one evicted. */
static void test_bound_and_lru(void **state)
{
    (void)state;
    struct sql_cache *c;
    assert_int_equal(sql_cache_new(SQL_CACHE_MIN_BYTES, &c), O2D_OK);
    const char *hot = "SELECT name FROM hot_table WHERE id = 7";
    check_one(c, hot);
    char q[128];
    struct sql_cache_counters k;
    for (int i = 0; i < 5000; i++) {
        snprintf(q, sizeof(q), "SELECT col_%d FROM table_%d WHERE id = %d", i, i % 97, i);
        check_one(c, q);
        check_one(c, hot);
        sql_cache_get_counters(c, &k);
        assert_true(k.bytes <= SQL_CACHE_MIN_BYTES);
    }
    assert_int_equal(k.misses, 5001);
    assert_int_equal(k.hits, 5000); /* every use of the hot query after the first */
    assert_true(k.evictions > 0);
    assert_int_equal(k.entries + k.evictions, 5001);
    sql_cache_free(c);
}

/* Too long to keep: above SQL_CACHE_MAX_QUERY, or above what a shard takes in one entry. */
static void test_long_queries_not_kept(void **state)
{
    (void)state;
    struct sql_cache *c;
    assert_int_equal(sql_cache_new(SQL_CACHE_MIN_BYTES, &c), O2D_OK);
    size_t sizes[] = {SQL_CACHE_MAX_QUERY + 1, 4000, 1u << 20};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        char *q = malloc(sizes[s] + 1);
        assert_non_null(q);
        /* SELECT x FROM t WHERE a IN (1,1,1,...) */
        size_t n = (size_t)snprintf(q, sizes[s] + 1, "SELECT x FROM t WHERE a IN (1");
        while (n + 3 < sizes[s]) {
            q[n++] = ',';
            q[n++] = '1';
        }
        q[n++] = ')';
        q[n] = '\0';
        check_one(c, q);
        check_one(c, q);
        free(q);
    }
    struct sql_cache_counters k;
    sql_cache_get_counters(c, &k);
    assert_int_equal(k.entries, 0);
    assert_int_equal(k.hits, 0);
    sql_cache_free(c);
}

/* A failed allocation costs the entry, never the result. */
static void test_alloc_failure(void **state)
{
    (void)state;
    struct sql_cache *c;
    assert_int_equal(sql_cache_new(SQL_CACHE_MIN_BYTES, &c), O2D_OK);
    const char *q = queries[0];
    char *want;
    assert_int_equal(reference(q, &want), O2D_OK);
    struct o2d_buf b;
    o2d_buf_init(&b, 1u << 20);
    assert_int_equal(o2d_buf_reserve(&b, 4096), O2D_OK);
    o2d_alloc_fail_after(0);
    int rv = sql_cache_obfuscate(c, q, strlen(q), &b);
    long failures = o2d_alloc_failures();
    o2d_alloc_fail_after(-1);
    assert_int_equal(rv, O2D_OK);
    assert_int_equal(failures, 1);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    struct sql_cache_counters k;
    sql_cache_get_counters(c, &k);
    assert_int_equal(k.entries, 0);
    o2d_buf_cleanup(&b);
    free(want);
    sql_cache_free(c);
}

#define THREADS     4
#define POOL        600
#define THREAD_RUNS 3000

struct pool {
    struct sql_cache *c;
    char q[POOL][96];
    char *want[POOL];
    int want_rv[POOL];
    unsigned seed[THREADS];
    int bad[THREADS];
};

struct worker {
    struct pool *p;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    struct o2d_buf b;
    o2d_buf_init(&b, 1u << 16);
    unsigned x = p->seed[w->id];
    for (int i = 0; i < THREAD_RUNS; i++) {
        x = x * 1103515245u + 12345u;
        size_t k = (x >> 8) % POOL;
        o2d_buf_reset(&b);
        int rv = sql_cache_obfuscate(p->c, p->q[k], strlen(p->q[k]), &b);
        if (rv != p->want_rv[k] ||
            (rv == O2D_OK && (b.len != strlen(p->want[k]) || memcmp(b.data, p->want[k], b.len)))) {
            p->bad[w->id]++;
        }
    }
    o2d_buf_cleanup(&b);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    static struct pool p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(sql_cache_new(SQL_CACHE_MIN_BYTES, &p.c), O2D_OK);
    for (int i = 0; i < POOL; i++) {
        if (i % 10 == 9) {
            snprintf(p.q[i], sizeof(p.q[i]), "SELECT '%d FROM broken", i);
        } else {
            snprintf(p.q[i], sizeof(p.q[i]),
                     "SELECT c%d, d, e, f FROM table_number_%d WHERE x = '%d' AND y = %d", i,
                     i % 13, i * 7, i);
        }
        p.want_rv[i] = reference(p.q[i], &p.want[i]);
    }
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        p.seed[i] = 17u + (unsigned)i * 7919u;
        w[i] = (struct worker){&p, i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(p.bad[i], 0);
    }
    struct sql_cache_counters k;
    sql_cache_get_counters(p.c, &k);
    assert_int_equal(k.hits + k.misses, THREADS * THREAD_RUNS);
    assert_true(k.hits > 0);
    assert_true(k.evictions > 0); /* 600 queries do not fit 64 KiB: the threads evict */
    assert_true(k.bytes <= SQL_CACHE_MIN_BYTES);
    for (int i = 0; i < POOL; i++) {
        free(p.want[i]);
    }
    sql_cache_free(p.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_equal_obfuscation),
        cmocka_unit_test(test_too_small),
        cmocka_unit_test(test_buffer_limit),
        cmocka_unit_test(test_bound_and_lru),
        cmocka_unit_test(test_long_queries_not_kept),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
