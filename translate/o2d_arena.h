/*
 * o2d_arena.h: a bump allocator for one request (h2o's mem pool, msgpack's zone). Decoding
 * allocates every message, string and array of a request from it, through the
 * ProtobufCAllocator it exposes; all of it is released in one step when the request is done.
 * No pointer into an arena may outlive the request: exporters copy what they keep.
 *
 * The arena has a byte limit: past it, allocations fail and the decoder reports the request
 * as too large, so a small message that expands into many objects cannot exhaust memory.
 * An arena is used by one thread at a time.
 */
#ifndef O2D_ARENA_H
#define O2D_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct o2d_arena_block;

struct o2d_arena {
    struct o2d_arena_block *head; /* current block; older ones follow via ->next */
    size_t used;                  /* bytes handed out since the last reset */
    size_t reserved;              /* bytes held in blocks */
    size_t limit;                 /* `used` never exceeds this */
    size_t keep;                  /* on reset, keep one block up to this size for reuse */
    int failed;                   /* an allocation was refused since the last reset */
    ProtobufCAllocator pb;        /* allocates from this arena; free is a no-op */
};

void o2d_arena_init(struct o2d_arena *a, size_t limit);
/* Releases everything, the arena can be used again. */
void o2d_arena_cleanup(struct o2d_arena *a);
/* Releases what was handed out; keeps one block (at most `keep` bytes) to reuse. */
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
