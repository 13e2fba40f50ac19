/*
 * o2d_alloc.h: every heap allocation of otel2dd goes through these wrappers, so tests can
 * make the n-th allocation fail and check that each path cleans up (nghttp2's failmalloc,
 * curl's torture mode). On the request path a NULL is an error to return, never a reason to
 * exit; only start-up may give up on out-of-memory.
 */
#ifndef O2D_ALLOC_H
#define O2D_ALLOC_H

#include <stddef.h>

void *o2d_malloc(size_t n);
void *o2d_calloc(size_t count, size_t size);
void *o2d_realloc(void *p, size_t n);
void o2d_free(void *p);
/* Copies len bytes and adds a NUL; NULL on failure. */
char *o2d_strndup(const char *s, size_t len);

/* Test hook: the next `n` allocations succeed, the ones after fail, until reset with -1. */
void o2d_alloc_fail_after(long n);
/* Test hook: number of allocations that failed since the last o2d_alloc_fail_after(). */
long o2d_alloc_failures(void);

#endif
