/*
 * o2d_alloc.c: allocation wrappers with failure injection for tests. The countdown is an
 * atomic so that threaded tests can use it; when it is off (-1) the cost is one relaxed load.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "o2d_alloc.h"

static atomic_long fail_countdown = -1;
static atomic_long fail_count = 0;

static int should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0) {
        return 0;
    }
    if (atomic_fetch_sub(&fail_countdown, 1) <= 0) {
        atomic_store(&fail_countdown, 0);
        atomic_fetch_add(&fail_count, 1);
        return 1;
    }
    return 0;
}

void o2d_alloc_fail_after(long n)
{
    atomic_store(&fail_count, 0);
    atomic_store(&fail_countdown, n);
}

long o2d_alloc_failures(void)
{
    return atomic_load(&fail_count);
}

void *o2d_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *o2d_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *o2d_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void o2d_free(void *p)
{
    free(p);
}

char *o2d_strndup(const char *s, size_t len)
{
    char *d = o2d_malloc(len + 1);
    if (d == NULL) {
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
