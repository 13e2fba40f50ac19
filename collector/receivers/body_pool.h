/*
 * body_pool.h: request body buffers a receiving thread (a gRPC worker, an HTTP daemon) keeps
 * for its next requests, so that bodies are appended into storage that is already there,
 * its pages already faulted in, instead of a buffer grown anew, realloc by realloc, for each.
 *
 * Bounded three ways: at most BODY_POOL_SLOTS buffers, none of more than max_each bytes of
 * capacity, at most max_bytes of capacity in all; a buffer given back past a bound is freed.
 * The owner empties the pool after a while without use (body_pool_trim). What the pool keeps
 * is not charged to the receivers' memory budget: a fixed cost of the thread, as the arena
 * blocks a thread keeps (o2d_arena.h). A buffer taken from it is charged as before: its
 * capacity may pass what its request reserved, never its length (o2d_buf.max).
 *
 * Not thread-safe: one owner, or the owner's lock held.
 */
#ifndef O2D_BODY_POOL_H
#define O2D_BODY_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

/* Enough for every stream a worker receives at once under load (8 connections of 10
 * concurrent streams over 2 workers: 40), so that interleaved uploads all find one. */
#define BODY_POOL_SLOTS 64

struct body_pool {
    struct o2d_buf spare[BODY_POOL_SLOTS]; /* empty (len 0), storage kept */
    size_t n;
    size_t bytes;     /* capacity of the spare buffers, in all */
    size_t max_each;  /* a buffer of more capacity is freed, not kept */
    size_t max_bytes; /* bytes never passes this */
    int64_t used_ms;  /* when a buffer was last taken or given back */
};

void body_pool_init(struct body_pool *p, size_t max_each, size_t max_bytes);
/* Frees every kept buffer. */
void body_pool_cleanup(struct body_pool *p);

/*
 * Gives b (which has no storage yet) the kept buffer that fits a body of `want` bytes best:
 * the smallest that holds it, else the largest. b->len and b->max are left as they are.
 * 1 when it did, 0 when the pool is empty.
 */
int body_pool_take(struct body_pool *p, struct o2d_buf *b, size_t want, int64_t now_ms);

/* Takes b's storage back, emptied, when it is within the bounds, and frees it otherwise; b
 * is left with no storage either way. */
void body_pool_give(struct body_pool *p, struct o2d_buf *b, int64_t now_ms);

/* Frees every kept buffer when none was taken or given back for idle_ms. */
void body_pool_trim(struct body_pool *p, int64_t now_ms, int64_t idle_ms);

#endif
