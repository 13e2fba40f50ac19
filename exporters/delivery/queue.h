/*
 * queue.h: where a destination's items wait between being produced (a receiver thread, or
 * the destination's own tick) and being delivered or dropped for good.
 *
 * An item is a byte string the destination encoded (an APM TracerPayload, one v0.4 trace,
 * one LLM Obs span event, one stats payload) with the few fields the delivery layer needs
 * to batch and count it. Its bytes are all that is needed to send it again after a restart,
 * so a queue that keeps them on disk can implement the same interface.
 *
 * The queue owns an item from push until done: take() hands items out for sending, but they
 * stay the queue's (and count against its bytes) until done() says they were delivered or
 * dropped. The in-memory queue (queue_mem.c) is the first implementation, the disk queue
 * (queue_disk.c) the second. persist() is called without any lock of the destination's and
 * may block (a disk queue returns once the items are durable); every other operation is
 * called with the owning destination's lock held (delivery.c), so an implementation needs no
 * lock of its own for its lists.
 */
#ifndef O2D_QUEUE_H
#define O2D_QUEUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Tenant slots an item may be tagged with (otlp_request.tenant: the receivers' fairness
 * slots, collector/receivers/ingest.h); the destination counts queued bytes per slot. */
#define DLV_TENANTS 80

struct dlv_item {
    struct dlv_item *next;
    uint64_t id;     /* unique in the process, given when queued (dlv_dest_enqueue) */
    uint64_t origin; /* the ingest request it came from (otlp_request.id); 0: none */
    uint64_t seq;    /* its place in a disk queue; 0 in memory */
    /* A half made by the destination's split: the queue item it came from, whose id it
     * carries; NULL for a queue item. */
    struct dlv_item *parent;
    atomic_uint refs; /* holds on it (bodies carrying it or its halves, the sender); delivery.c's */
    uint32_t count;   /* units it holds (spans, events, payloads): what is counted */
    /* The tenant slot whose queued bytes it counts in (delivery.c), -1 none. In memory
     * only: a queue that keeps items on disk frees them at push, and what it reads back
     * carries none. A split half carries none: its parent's bytes are what count. */
    int16_t tenant;
    uint32_t head_len; /* data[0..head_len): the destination's per-item header */
    size_t len;        /* bytes of data, head included */
    uint8_t data[];
};

/* A new item of len bytes whose first head_len are its header; NULL when out of memory. */
struct dlv_item *dlv_item_new(size_t len, size_t head_len, uint32_t count);
/* Bytes an item's fields take before its data: a writer that reserves them at the front of
 * an o2d_buf can write the item's bytes in place and hand the storage to dlv_item_adopt. */
#define DLV_ITEM_PREFIX offsetof(struct dlv_item, data)
/* Makes the item from storage (o2d_malloc'd, owned by the call from here on, freed on
 * failure) whose first `total` bytes are DLV_ITEM_PREFIX bytes, then the item's data with its
 * head_len header first; the storage is shrunk to fit. NULL when out of memory or total is
 * too small. */
struct dlv_item *dlv_item_adopt(uint8_t *storage, size_t total, size_t head_len, uint32_t count);
void dlv_item_free(struct dlv_item *it);
/* Drops one hold. A half whose last hold goes is freed and drops its hold on its parent, and
 * so on up. Returns the queue item whose last hold went (its owner settles it: queue done),
 * else NULL. Any thread: holds are atomic. */
struct dlv_item *dlv_item_release(struct dlv_item *it);
/* The encoded bytes after the header. */
static inline const uint8_t *dlv_item_body(const struct dlv_item *it)
{
    return it->data + it->head_len;
}
static inline size_t dlv_item_body_len(const struct dlv_item *it)
{
    return it->len - it->head_len;
}

struct dlv_queue;
struct dlog_config;
struct dlog_stats;

struct dlv_queue_type {
    const char *name; /* "memory", "disk" */
    /* Makes the list durable before it is pushed, without the destination's lock (it may
     * block). O2D_OK; O2D_ERR_BUSY when there is no room (the request is refused, retry
     * later); O2D_ERR_SYSTEM when the storage failed (refused too, never acknowledged). The
     * list is the caller's either way. NULL: nothing to do (memory). */
    int (*persist)(struct dlv_queue *q, struct dlv_item *list);
    /* Takes the list (linked by next) and everything in it. O2D_OK, or an error with the
     * list left to the caller. */
    int (*push)(struct dlv_queue *q, struct dlv_item *list);
    /* Hands out the oldest waiting items, linked by next, while their len sums to at most
     * max_bytes, and at least one; NULL when nothing waits. NULL for a queue that reads a
     * disk: it has read and took instead. */
    struct dlv_item *(*take)(struct dlv_queue *q, size_t max_bytes);
    /* A queue that reads a disk hands items out in two steps: read() without the
     * destination's lock (only the sender calls it), then took() with it, which counts what
     * read() handed out. NULL for a queue in memory (take). */
    struct dlv_item *(*read)(struct dlv_queue *q, size_t max_bytes);
    void (*took)(struct dlv_queue *q, const struct dlv_item *list);
    /* An item handed out is settled (delivered, or dropped for good): the queue forgets it. */
    void (*done)(struct dlv_queue *q, struct dlv_item *it);
    /* An item handed out was not delivered because otel2dd is stopping: a disk queue keeps
     * it unsettled for the next start (and frees the copy). NULL: it is lost (done). */
    void (*keep)(struct dlv_queue *q, struct dlv_item *it);
    /* Removes and returns every waiting item that stopping loses (at shutdown, to count
     * them); a disk queue keeps them for the next start and returns NULL. */
    struct dlv_item *(*drain)(struct dlv_queue *q);
    void (*free)(struct dlv_queue *q);
    /* A disk queue's figures (disk_log.h); NULL: a queue in memory. */
    void (*disk_stats)(struct dlv_queue *q, struct dlog_stats *st);
};

/* What a queue holds: waiting (pushed, not taken) and out (taken, not done), and of that
 * what is in memory, counted against the destination's memory budget. */
struct dlv_queue_state {
    size_t waiting_items;
    size_t waiting_units;
    size_t waiting_bytes;
    size_t out_bytes;
    size_t mem_bytes;
};

struct dlv_queue {
    const struct dlv_queue_type *type;
    struct dlv_queue_state st; /* kept by the implementation */
};

/* The in-memory queue: a list, bounded by its owner (delivery.c checks the bytes). */
int dlv_queue_mem_new(struct dlv_queue **out);
/* The disk queue in cfg->dir (queue_disk.c); what a previous run left there is sent first.
 * An error says why in err. */
int dlv_queue_disk_new(struct dlv_queue **out, const struct dlog_config *cfg, char *err,
                       size_t errlen);

#endif
