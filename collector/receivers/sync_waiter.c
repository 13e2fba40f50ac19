/*
 * sync_waiter.c: the thread of sync_waiter.h, a FIFO of parked requests under a mutex.
 */
#include "sync_waiter.h"

#include <pthread.h>

#include "o2d.h"
#include "o2d_alloc.h"

struct sync_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sync_wait *head, *tail;
    int stop;
    pthread_t thread;
};

static void *waiter_main(void *arg)
{
    struct sync_waiter *sw = arg;
    for (;;) {
        pthread_mutex_lock(&sw->mu);
        while (sw->head == NULL && !sw->stop) {
            pthread_cond_wait(&sw->cv, &sw->mu);
        }
        struct sync_wait *w = sw->head;
        sw->head = sw->tail = NULL;
        pthread_mutex_unlock(&sw->mu);
        if (w == NULL) {
            return NULL; /* stopped, and nothing left */
        }
        while (w != NULL) {
            struct sync_wait *next = w->next;
            w->next = NULL;
            w->done(w, o2d_waitset_wait(&w->ws));
            w = next;
        }
    }
}

int sync_waiter_new(struct sync_waiter **out)
{
    *out = NULL;
    struct sync_waiter *sw = o2d_calloc(1, sizeof(*sw));
    if (sw == NULL) {
        return O2D_ERR_NOMEM;
    }
    if (pthread_mutex_init(&sw->mu, NULL) != 0) {
        o2d_free(sw);
        return O2D_ERR_SYSTEM;
    }
    if (pthread_cond_init(&sw->cv, NULL) != 0) {
        pthread_mutex_destroy(&sw->mu);
        o2d_free(sw);
        return O2D_ERR_SYSTEM;
    }
    if (pthread_create(&sw->thread, NULL, waiter_main, sw) != 0) {
        pthread_cond_destroy(&sw->cv);
        pthread_mutex_destroy(&sw->mu);
        o2d_free(sw);
        return O2D_ERR_SYSTEM;
    }
    *out = sw;
    return O2D_OK;
}

void sync_waiter_park(struct sync_waiter *sw, struct sync_wait *w)
{
    w->next = NULL;
    pthread_mutex_lock(&sw->mu);
    if (sw->tail != NULL) {
        sw->tail->next = w;
    } else {
        sw->head = w;
    }
    sw->tail = w;
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
}

void sync_waiter_free(struct sync_waiter *sw)
{
    if (sw == NULL) {
        return;
    }
    pthread_mutex_lock(&sw->mu);
    sw->stop = 1;
    pthread_cond_broadcast(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
    pthread_join(sw->thread, NULL);
    pthread_cond_destroy(&sw->cv);
    pthread_mutex_destroy(&sw->mu);
    o2d_free(sw);
}
