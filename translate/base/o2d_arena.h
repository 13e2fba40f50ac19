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
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#define O2D_ARENA_ALIGN 16

/* One block of an arena; public only for the inline fast paths below. */
struct o2d_arena_block {
    struct o2d_arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t off;  /* bytes handed out from mem */
    _Alignas(O2D_ARENA_ALIGN) unsigned char mem[];
};

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
/* The slow path of o2d_arena_alloc (a new block, or a refusal): call o2d_arena_alloc. */
void *o2d_arena_alloc_slow(struct o2d_arena *a, size_t n);
/* The slow path of o2d_arena_alloc_bytes. */
void *o2d_arena_alloc_bytes_slow(struct o2d_arena *a, size_t n);

/* 16-byte aligned; NULL past the limit or when the system is out of memory. Inline: the
 * common case, room in the current block and under the limit, is a bump of its offset. */
static inline void *o2d_arena_alloc(struct o2d_arena *a, size_t n)
{
    struct o2d_arena_block *b = a->head;
    size_t need = (n + O2D_ARENA_ALIGN - 1) & ~(size_t)(O2D_ARENA_ALIGN - 1);
    size_t start = (b != NULL ? b->off + O2D_ARENA_ALIGN - 1 : 0) & ~(size_t)(O2D_ARENA_ALIGN - 1);
    if (b != NULL && need >= n && start <= b->size && need <= b->size - start &&
        a->used <= a->limit && need <= a->limit - a->used) {
        b->off = start + need;
        a->used += need;
        return b->mem + start;
    }
    return o2d_arena_alloc_slow(a, n);
}

/* n bytes with no alignment (strings and other byte runs, packed one after the other);
 * NULL as o2d_arena_alloc. */
static inline void *o2d_arena_alloc_bytes(struct o2d_arena *a, size_t n)
{
    struct o2d_arena_block *b = a->head;
    if (b != NULL && n <= b->size - b->off && a->used <= a->limit && n <= a->limit - a->used) {
        void *p = b->mem + b->off;
        b->off += n;
        a->used += n;
        return p;
    }
    return o2d_arena_alloc_bytes_slow(a, n);
}

/* Whether p was handed out by this arena (and not released since). */
int o2d_arena_owns(const struct o2d_arena *a, const void *p);
/* A NUL-terminated copy of s[0..len) in the arena (not aligned). */
static inline char *o2d_arena_strndup(struct o2d_arena *a, const char *s, size_t len)
{
    char *d = len < (size_t)-1 ? o2d_arena_alloc_bytes(a, len + 1) : NULL;
    if (d == NULL) {
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

#endif
