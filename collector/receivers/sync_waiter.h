/*
 * sync_waiter.h: one thread that runs the deferred waits (o2d_defer.h) of requests that a
 * receiver parked: with a disk queue that syncs, a request is answered only once its records
 * are durable, and a receiving thread that waited itself would stall every other connection
 * it serves. The receiver ingests the request with a waitset, parks it here when the waitset
 * holds waits, and goes on; this thread runs the waits (the first one syncs for every request
 * written by then: group commit) and calls each request's done function, on this thread.
 */
#ifndef O2D_SYNC_WAITER_H
#define O2D_SYNC_WAITER_H

#include "o2d_defer.h"

struct sync_wait;
/* Called on the waiter's thread with O2D_OK, or the first error of the waits. The sync_wait
 * is the caller's again from here on. */
typedef void (*sync_wait_done_fn)(struct sync_wait *w, int status);

/* A parked request: the caller's, alive and untouched from park to done. */
struct sync_wait {
    struct sync_wait *next;
    sync_wait_done_fn done;
    struct o2d_waitset ws;
};

struct sync_waiter;

/* Starts the thread. O2D_OK, O2D_ERR_NOMEM or O2D_ERR_SYSTEM. */
int sync_waiter_new(struct sync_waiter **out);
/* Queues w (its ws filled, its done set); done is called once its waits ran. */
void sync_waiter_park(struct sync_waiter *sw, struct sync_wait *w);
/* Runs what is still parked, then stops the thread and frees. NULL is a no-op. */
void sync_waiter_free(struct sync_waiter *sw);

#endif
