/*
 * o2d_defer.h: deferred waits. A layer whose operation has a slow second half (a disk log's
 * sync) can, when its caller asked for it, do the first half now and leave the second to a
 * wait that its caller runs later: after more work (the pipeline: every exporter's work first,
 * then one wait), or on another thread (the gRPC receiver: the worker goes on serving its
 * connections, and one thread waits for the syncs of every worker's requests).
 *
 * The caller owns a waitset and names it the calling thread's with o2d_defer_begin; while it
 * is, a layer that supports deferring takes a slot (o2d_defer_slot), keeps in it what its
 * wait needs (the slot's memory stays where it is until the wait ran: a layer may link it
 * into its own lists), and commits it with its wait function. o2d_defer_stop ends that; the
 * owner then runs o2d_waitset_wait (any thread, exactly once per begin, even after an
 * error: slots may be linked into a layer's lists until their wait ran).
 *
 * Without a waitset (or with a full one) a layer waits at once, as before.
 */
#ifndef O2D_DEFER_H
#define O2D_DEFER_H

#include <stddef.h>

#define O2D_DEFER_MAX       16 /* slots a waitset holds */
#define O2D_DEFER_SLOT_SIZE 64 /* bytes a slot keeps for its layer */

/* Runs the deferred second half; O2D_OK or an error status (o2d.h). */
typedef int (*o2d_defer_wait_fn)(void *owner, void *data);

struct o2d_defer_slot {
    o2d_defer_wait_fn wait;
    void *owner;
    _Alignas(16) unsigned char data[O2D_DEFER_SLOT_SIZE];
};

struct o2d_waitset {
    size_t n;
    struct o2d_defer_slot slot[O2D_DEFER_MAX];
};

/* Makes ws (emptied here) the calling thread's waitset. 1; or 0, leaving ws empty, when the
 * thread has one already (an outer caller defers, and waits: nested callers do nothing). */
int o2d_defer_begin(struct o2d_waitset *ws);
/* The calling thread has no waitset any more (its owner's slots stay in it). */
void o2d_defer_stop(void);
/* The calling thread's next free slot, or NULL (no waitset, or a full one: wait now). Used
 * only once committed; a layer that does not commit leaves it free. */
struct o2d_defer_slot *o2d_defer_slot(void);
/* The slot o2d_defer_slot returned is used: its wait runs with owner and its data. */
void o2d_defer_commit(o2d_defer_wait_fn wait, void *owner);
/* Whether ws holds waits. */
static inline int o2d_waitset_pending(const struct o2d_waitset *ws)
{
    return ws->n > 0;
}
/* Runs every wait of ws, in order, and empties it. O2D_OK, or the first error. */
int o2d_waitset_wait(struct o2d_waitset *ws);

#endif
