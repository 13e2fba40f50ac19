/*
 * o2d_arena.c: bump allocator in blocks that double in size, with a byte limit, and charged
 * block by block to the calling thread's budget when one is set. What the budget is and what
 * happens when it is spent is the caller's business (collector/receivers/ingest.c).
 */
#include <stdint.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"

#define ARENA_ALIGN       O2D_ARENA_ALIGN
#define ARENA_FIRST_BLOCK (64 * 1024)
#define ARENA_MAX_BLOCK   (4 * 1024 * 1024)
/* Kept across resets by default (translation's scratch arenas); larger blocks go back. */
#define ARENA_KEEP (256 * 1024)

static _Thread_local const struct o2d_arena_budget *thread_budget;

static void *pb_alloc(void *ctx, size_t n)
{
    return o2d_arena_alloc(ctx, n);
}

static void pb_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

void o2d_arena_init(struct o2d_arena *a, size_t limit)
{
    memset(a, 0, sizeof(*a));
    a->limit = limit;
    a->keep = ARENA_KEEP;
    a->refused = O2D_OK;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
}

const struct o2d_arena_budget *o2d_arena_thread_budget(const struct o2d_arena_budget *b)
{
    const struct o2d_arena_budget *old = thread_budget;
    thread_budget = b;
    return old;
}

static void give_back(struct o2d_arena *a)
{
    if (a->charged_to != NULL && a->charged > 0) {
        a->charged_to->give(a->charged_to->ctx, a->charged);
    }
    a->charged_to = NULL;
    a->charged = 0;
    a->refused = O2D_OK;
}

/* Takes n bytes from the thread's budget for a new block; 0 when there is none. */
static int charge(struct o2d_arena *a, size_t n)
{
    const struct o2d_arena_budget *b = a->charged_to != NULL ? a->charged_to : thread_budget;
    if (b == NULL) {
        return O2D_OK;
    }
    int rv = b->take(b->ctx, n);
    if (rv != O2D_OK) {
        a->refused = rv;
        return rv;
    }
    a->charged_to = b;
    a->charged += n;
    return O2D_OK;
}

static void free_list(struct o2d_arena_block *b)
{
    while (b != NULL) {
        struct o2d_arena_block *next = b->next;
        o2d_free(b);
        b = next;
    }
}

void o2d_arena_cleanup(struct o2d_arena *a)
{
    free_list(a->head);
    free_list(a->spare);
    a->head = NULL;
    a->spare = NULL;
    a->used = 0;
    a->reserved = 0;
    a->failed = 0;
    give_back(a);
}

void o2d_arena_reset(struct o2d_arena *a)
{
    /* Oldest first: the small blocks every request starts with are the ones worth keeping. */
    struct o2d_arena_block *oldest = NULL;
    size_t in_use = 0;
    for (struct o2d_arena_block *b = a->head, *next; b != NULL; b = next) {
        next = b->next;
        b->next = oldest;
        oldest = b;
        in_use += b->size;
    }
    /* A caller that sets keep_max keeps what this use took (within [keep, keep_max]), so that
     * a steady run of larger uses reuses its blocks while one small use gives them back. */
    size_t keep = a->keep;
    if (a->keep_max > keep && in_use > keep) {
        keep = in_use < a->keep_max ? in_use : a->keep_max;
    }
    size_t kept = 0;
    struct o2d_arena_block **tail = &a->spare;
    for (; *tail != NULL; tail = &(*tail)->next) {
        kept += (*tail)->size;
    }
    for (struct o2d_arena_block *b = oldest, *next; b != NULL; b = next) {
        next = b->next;
        if (kept <= keep && b->size <= keep - kept) {
            b->next = NULL;
            b->off = 0;
            *tail = b;
            tail = &b->next;
            kept += b->size;
        } else {
            o2d_free(b);
        }
    }
    a->head = NULL;
    a->reserved = kept;
    a->used = 0;
    a->failed = 0;
    give_back(a);
}

void o2d_arena_set_limit(struct o2d_arena *a, size_t limit)
{
    a->limit = limit;
}

/* A block with room for `need` bytes at an offset aligned to `align` made the head: the
 * current one when it has the room, else a kept one or a new one. NULL (and `failed` set)
 * past the limit or out of memory. `need` is what counts against the limit. */
static struct o2d_arena_block *room_for(struct o2d_arena *a, size_t need, size_t align,
                                        size_t *start)
{
    if (a->used > a->limit || need > a->limit - a->used) {
        a->failed = 1;
        return NULL;
    }
    struct o2d_arena_block *b = a->head;
    if (b != NULL) {
        size_t s = (b->off + align - 1) & ~(align - 1);
        if (s <= b->size && need <= b->size - s) {
            *start = s;
            return b;
        }
    }
    /* Blocks double up to ARENA_MAX_BLOCK; a larger single allocation gets its own. */
    size_t size = b ? b->size * 2 : ARENA_FIRST_BLOCK;
    if (size > ARENA_MAX_BLOCK) {
        size = ARENA_MAX_BLOCK;
    }
    if (size < need) {
        size = need;
    }
    /* A kept block that fits costs neither an allocation nor the budget. */
    struct o2d_arena_block **sp = &a->spare;
    while (*sp != NULL && (*sp)->size < need) {
        sp = &(*sp)->next;
    }
    struct o2d_arena_block *nb = *sp;
    if (nb != NULL) {
        *sp = nb->next;
    } else {
        if (size > SIZE_MAX - sizeof(*b) || charge(a, sizeof(*b) + size) != O2D_OK) {
            a->failed = 1;
            return NULL;
        }
        nb = o2d_malloc(sizeof(*nb) + size);
        if (nb == NULL) {
            a->failed = 1;
            return NULL;
        }
        nb->size = size;
        a->reserved += size;
    }
    nb->off = 0;
    nb->next = b;
    a->head = nb;
    *start = 0;
    return nb;
}

void *o2d_arena_alloc_slow(struct o2d_arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < n) {
        a->failed = 1;
        return NULL;
    }
    size_t start;
    struct o2d_arena_block *b = room_for(a, need, ARENA_ALIGN, &start);
    if (b == NULL) {
        return NULL;
    }
    b->off = start + need;
    a->used += need;
    return b->mem + start;
}

void *o2d_arena_alloc_bytes_slow(struct o2d_arena *a, size_t n)
{
    size_t start;
    struct o2d_arena_block *b = room_for(a, n, 1, &start);
    if (b == NULL) {
        return NULL;
    }
    b->off = start + n;
    a->used += n;
    return b->mem + start;
}

int o2d_arena_owns(const struct o2d_arena *a, const void *p)
{
    uintptr_t x = (uintptr_t)p;
    for (const struct o2d_arena_block *b = a->head; b != NULL; b = b->next) {
        if (x >= (uintptr_t)b->mem && x < (uintptr_t)b->mem + b->off) {
            return 1;
        }
    }
    return 0;
}
