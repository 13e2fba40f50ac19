/*
 * o2d_defer.c: the calling thread's waitset (o2d_defer.h), one pointer of thread-local state.
 */
#include "o2d_defer.h"

#include "o2d.h"

static _Thread_local struct o2d_waitset *current;

int o2d_defer_begin(struct o2d_waitset *ws)
{
    ws->n = 0;
    if (current != NULL) {
        return 0;
    }
    current = ws;
    return 1;
}

void o2d_defer_stop(void)
{
    current = NULL;
}

struct o2d_defer_slot *o2d_defer_slot(void)
{
    if (current == NULL || current->n == O2D_DEFER_MAX) {
        return NULL;
    }
    return &current->slot[current->n];
}

void o2d_defer_commit(o2d_defer_wait_fn wait, void *owner)
{
    struct o2d_defer_slot *s = &current->slot[current->n++];
    s->wait = wait;
    s->owner = owner;
}

int o2d_waitset_wait(struct o2d_waitset *ws)
{
    int rv = O2D_OK;
    for (size_t i = 0; i < ws->n; i++) {
        int r = ws->slot[i].wait(ws->slot[i].owner, ws->slot[i].data);
        if (r != O2D_OK && rv == O2D_OK) {
            rv = r;
        }
    }
    ws->n = 0;
    return rv;
}
