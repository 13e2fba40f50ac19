/*
 * test_log.c: the log rate limiter with a clock passed in: the first line of a reason in an
 * interval is due at once, the rest are counted and reported by the next due line, reasons
 * are limited apart, a full table still limits, and threads racing on one reason write one
 * line per interval and lose no count; o2d_log_begin_limited writes the lines with the count.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "o2d_log.h"

static int take(struct o2d_log_limiter *lim, const char *reason, int64_t now, uint64_t *n)
{
    return o2d_log_limit_take(lim, reason, strlen(reason), now, 1000, n);
}

static void test_first_due_then_counted(void **state)
{
    (void)state;
    static struct o2d_log_limiter lim; /* zero-initialized, as the receivers' are */
    uint64_t n = 99;
    assert_int_equal(take(&lim, "bad", 0, &n), 1);
    assert_int_equal(n, 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(take(&lim, "bad", 10 + i * 100, &n), 0);
    }
    /* one millisecond short of the interval: still held back */
    assert_int_equal(take(&lim, "bad", 999, &n), 0);
    assert_int_equal(take(&lim, "bad", 1000, &n), 1);
    assert_int_equal(n, 6);
    /* the count starts again from the line just written */
    assert_int_equal(take(&lim, "bad", 1500, &n), 0);
    assert_int_equal(take(&lim, "bad", 5000, &n), 1);
    assert_int_equal(n, 1);
    /* a quiet interval: the next line is due at once and reports nothing held back */
    assert_int_equal(take(&lim, "bad", 9000, &n), 1);
    assert_int_equal(n, 0);
}

static void test_reasons_apart(void **state)
{
    (void)state;
    static struct o2d_log_limiter lim;
    uint64_t n;
    assert_int_equal(take(&lim, "header too large", 100, &n), 1);
    assert_int_equal(take(&lim, "unsupported media type", 100, &n), 1);
    assert_int_equal(take(&lim, "header too large", 200, &n), 0);
    assert_int_equal(take(&lim, "header too large", 300, &n), 0);
    assert_int_equal(take(&lim, "unsupported media type", 300, &n), 0);
    /* same text, another buffer: the same reason */
    char copy[] = "unsupported media type";
    assert_int_equal(o2d_log_limit_take(&lim, copy, strlen(copy), 400, 1000, &n), 0);
    /* a prefix is another reason */
    assert_int_equal(o2d_log_limit_take(&lim, copy, 11, 400, 1000, &n), 1);
    assert_int_equal(take(&lim, "header too large", 1100, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(take(&lim, "unsupported media type", 1100, &n), 1);
    assert_int_equal(n, 2);
}

static void test_full_table_still_limits(void **state)
{
    (void)state;
    static struct o2d_log_limiter lim;
    uint64_t n;
    char r[32];
    int due = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4 * O2D_LOG_LIMIT_SLOTS; i++) {
            snprintf(r, sizeof(r), "reason %d", i);
            due += take(&lim, r, round, &n);
        }
    }
    /* one line per slot in the interval, whatever the number of reasons */
    assert_int_equal(due, O2D_LOG_LIMIT_SLOTS);
    /* the held-back lines are all reported by the next interval's lines */
    uint64_t reported = 0;
    for (int i = 0; i < 4 * O2D_LOG_LIMIT_SLOTS; i++) {
        snprintf(r, sizeof(r), "reason %d", i);
        if (take(&lim, r, 5000, &n)) {
            reported += n;
        }
    }
    assert_int_equal(reported + (uint64_t)due, 3 * 4 * O2D_LOG_LIMIT_SLOTS);
}

#define THREADS    4
#define PER_THREAD 20000

static struct o2d_log_limiter race_lim;
static _Atomic uint64_t race_due, race_reported;

static void *race(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        uint64_t n;
        /* ten intervals of the passed-in clock, the same for every thread */
        if (o2d_log_limit_take(&race_lim, "flood", 5, i / (PER_THREAD / 10) * 1000, 1000, &n)) {
            atomic_fetch_add(&race_due, 1);
            atomic_fetch_add(&race_reported, n);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, race, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    uint64_t due = atomic_load(&race_due);
    /* at most one line per interval of the clock, and at least the first */
    assert_true(due >= 1 && due <= 10);
    uint64_t n = 0;
    assert_int_equal(o2d_log_limit_take(&race_lim, "flood", 5, 1000000, 1000, &n), 1);
    assert_int_equal(atomic_load(&race_reported) + n + due, (uint64_t)THREADS * PER_THREAD);
}

/* Reads what the log wrote to the pipe so far. */
static size_t drain(int fd, char *out, size_t cap)
{
    ssize_t n = read(fd, out, cap - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    return (size_t)n;
}

static void line(struct o2d_log_limiter *lim, int level, const char *reason, int64_t now)
{
    struct o2d_logline l;
    o2d_log_begin_limited(&l, level, "request refused", lim, reason, now);
    o2d_log_cstr(&l, "reason", reason);
    o2d_log_end(&l);
}

static void test_limited_lines(void **state)
{
    (void)state;
    static struct o2d_log_limiter lim;
    int p[2];
    assert_int_equal(pipe(p), 0);
    o2d_log_set_fd(p[1]);
    o2d_log_set_level(O2D_LOG_INFO);
    char out[4096];

    /* debug is filtered out: nothing written, nothing counted */
    line(&lim, O2D_LOG_DEBUG, "too big", 0);
    line(&lim, O2D_LOG_WARN, "too big", 0);
    for (int i = 0; i < 9; i++) {
        line(&lim, O2D_LOG_WARN, "too big", 10 + i);
    }
    drain(p[0], out, sizeof(out));
    assert_non_null(strstr(out, "\"reason\":\"too big\""));
    assert_null(strstr(out, "suppressed"));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* one line */

    line(&lim, O2D_LOG_WARN, "too big", 1000);
    drain(p[0], out, sizeof(out));
    assert_non_null(strstr(out, "\"msg\":\"request refused\",\"suppressed\":9,"));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);

    o2d_log_set_fd(2);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_due_then_counted),  cmocka_unit_test(test_reasons_apart),
        cmocka_unit_test(test_full_table_still_limits), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_limited_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
