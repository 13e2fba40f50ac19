/*
 * o2d_arena.h: a bump allocator for one request (h2o's mem pool, msgpack's zone). Decoding
 * allocates every message, string and array of a request from it, through the
 * ProtobufCAllocator it exposes; all of it is released in one step when the request is done.
 * No pointer into an arena may outlive the request: exporters copy what they keep.
 *
 * The arena has a byte limit: past it, allocations fail and the decoder reports the request
 * as too large, so a small message that expands into many objects cannot exhaust memory.
 * An arena is used by one thread at a time.
 *
 * An arena may also be charged to a budget shared with other threads (the receivers' memory
 * limit): each new block is taken from it before it is allocated, and everything taken is
 * given back when the arena is reset. The budget is the calling thread's
 * (o2d_arena_thread_budget), so every arena a request grows on its thread, the decoder's and
 * the scratch arenas of translation alike, counts against it without being told. Only block
 * allocations touch the budget, never single allocations, so it costs one call per block.
 * The blocks kept across resets (at most `keep` bytes) are not charged: they are a fixed
 * cost of the thread that keeps them.
 */
#ifndef O2D_ARENA_H
#define O2D_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct o2d_arena_block;

/*
 * A budget arenas are charged to. take() answers O2D_OK, or the status the allocation fails
 * with (O2D_ERR_BUSY: spent for now; O2D_ERR_TOO_LARGE: this request could never fit);
 * give() returns bytes taken before. ctx outlives every arena charged to it.
 */
struct o2d_arena_budget {
    int (*take)(void *ctx, size_t n);
    void (*give)(void *ctx, size_t n);
    void *ctx;
};

struct o2d_arena {
    struct o2d_arena_block *head;  /* current block; older ones follow via ->next */
    struct o2d_arena_block *spare; /* kept for reuse by the next request */
    size_t used;                   /* bytes handed out since the last reset */
    size_t reserved;               /* bytes held in blocks, spare ones included */
    size_t limit;                  /* `used` never exceeds this */
    size_t keep;                   /* on reset, keep blocks of up to this many bytes in all */
    size_t keep_max; /* when above keep: keep as much as the last use took, up to this */
    int failed;      /* an allocation was refused since the last reset */
    int refused;     /* the budget's answer when it refused, else O2D_OK */
    const struct o2d_arena_budget *charged_to; /* budget of `charged`, NULL when none */
    size_t charged;                            /* bytes taken from it since the last reset */
    ProtobufCAllocator pb;                     /* allocates from this arena; free is a no-op */
};

void o2d_arena_init(struct o2d_arena *a, size_t limit);
/*
 * Sets the budget that arenas growing on the calling thread are charged to (NULL: none) and
 * returns the one it replaces. Every arena charged to a budget must be reset or cleaned up
 * before the budget goes away.
 */
const struct o2d_arena_budget *o2d_arena_thread_budget(const struct o2d_arena_budget *b);
/* Releases everything, the arena can be used again. */
void o2d_arena_cleanup(struct o2d_arena *a);
/* Releases what was handed out; keeps blocks (at most `keep` bytes, the oldest, which are the
 * smallest) to reuse, and gives back what it was charged. */
void o2d_arena_reset(struct o2d_arena *a);
/* Changes the limit for the allocations that follow (used per request). */
void o2d_arena_set_limit(struct o2d_arena *a, size_t limit);
/* 16-byte aligned; NULL past the limit or when the system is out of memory. */
void *o2d_arena_alloc(struct o2d_arena *a, size_t n);
/* Whether p was handed out by this arena (and not released since). */
int o2d_arena_owns(const struct o2d_arena *a, const void *p);
/* A NUL-terminated copy of s[0..len) in the arena. */
char *o2d_arena_strndup(struct o2d_arena *a, const char *s, size_t len);

#endif
