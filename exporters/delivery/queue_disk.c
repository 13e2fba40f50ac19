/*
 * queue_disk.c: the disk queue (queue.h) on the append-only record log (disk_log.h). An item
 * is one record: [u32 head_len][u64 id][u64 origin][the item's bytes], its tag the units it
 * holds. persist() appends a list and returns once it is durable; push() then only counts it
 * (the bytes are on disk, not in memory); read(), then took(), hands records back oldest
 * first, a replayed backlog before what came since; done() settles the record, so that the
 * log's watermark passes it. Nothing is lost at stop: drain() leaves every waiting record for
 * the next start.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "disk_log.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_le.h"
#include "o2d_log.h"
#include "queue.h"

#define REC_HEAD      20 /* u32 head_len, u64 id, u64 origin */
#define PERSIST_STACK 64

struct disk_queue {
    struct dlv_queue base;
    struct dlog *log;
    atomic_size_t skipped;       /* records read back as nothing, not yet counted (disk_took) */
    atomic_uint_fast64_t pushes; /* disk_push calls */
    uint_fast64_t pushes_before_read; /* as disk_read began */
};

static int disk_persist(struct dlv_queue *q, struct dlv_item *list)
{
    struct disk_queue *dq = (struct disk_queue *)q;
    size_t n = 0;
    for (struct dlv_item *it = list; it != NULL; it = it->next) {
        n++;
    }
    if (n == 0) {
        return O2D_OK;
    }
    /* each record: our header as its prefix, then the item's bytes where they are */
    struct dlog_rec stack[PERSIST_STACK];
    uint8_t heads_stack[PERSIST_STACK][REC_HEAD];
    struct dlog_rec *recs = n <= PERSIST_STACK ? stack : o2d_malloc(n * sizeof(*recs));
    uint8_t(*heads)[REC_HEAD] = n <= PERSIST_STACK ? heads_stack : o2d_malloc(n * REC_HEAD);
    int rv = O2D_ERR_NOMEM;
    if (recs == NULL || heads == NULL) {
        goto out;
    }
    size_t i = 0;
    for (struct dlv_item *it = list; it != NULL; it = it->next, i++) {
        o2d_put_le32(heads[i], it->head_len);
        o2d_put_le64(heads[i] + 4, it->id);
        o2d_put_le64(heads[i] + 12, it->origin);
        recs[i] = (struct dlog_rec){.prefix = heads[i],
                                    .prefix_len = REC_HEAD,
                                    .data = it->data,
                                    .len = it->len,
                                    .tag = it->count};
    }
    uint64_t first = 0;
    rv = dlog_append(dq->log, recs, n, &first);
    if (rv == O2D_OK) {
        i = 0;
        for (struct dlv_item *it = list; it != NULL; it = it->next, i++) {
            it->seq = first + i;
        }
    }
out:
    if (recs != stack) {
        o2d_free(recs);
    }
    if (heads != heads_stack) {
        o2d_free(heads);
    }
    return rv;
}

/* The items are on disk: only counted here, and freed. */
static int disk_push(struct dlv_queue *q, struct dlv_item *list)
{
    atomic_fetch_add(&((struct disk_queue *)q)->pushes, 1);
    while (list != NULL) {
        struct dlv_item *nx = list->next;
        q->st.waiting_items++;
        q->st.waiting_units += list->count;
        q->st.waiting_bytes += list->len;
        dlv_item_free(list);
        list = nx;
    }
    return O2D_OK;
}

/* One record back into an item (NULL: not a record of ours, or no memory). */
static struct dlv_item *item_of(uint64_t seq, uint32_t tag, const uint8_t *rec, size_t len)
{
    if (len < REC_HEAD) {
        return NULL;
    }
    uint32_t head_len = o2d_get_le32(rec);
    size_t body = len - REC_HEAD;
    if (head_len > body) {
        return NULL;
    }
    struct dlv_item *it = dlv_item_new(body, head_len, tag);
    if (it == NULL) {
        return NULL;
    }
    it->id = o2d_get_le64(rec + 4);
    it->origin = o2d_get_le64(rec + 12);
    it->seq = seq;
    memcpy(it->data, rec + REC_HEAD, body);
    return it;
}

/* Reads records back into items, oldest first (without the destination's lock: the log
 * locks itself, and only the sender reads). Counted by disk_took. */
static struct dlv_item *disk_read(struct dlv_queue *q, size_t max_bytes)
{
    struct disk_queue *dq = (struct disk_queue *)q;
    struct dlv_item *head = NULL;
    struct dlv_item **tailp = &head;
    size_t bytes = 0;
    dq->pushes_before_read = atomic_load(&dq->pushes);
    while (head == NULL || bytes < max_bytes) {
        uint64_t seq;
        uint32_t tag;
        uint8_t *rec = NULL;
        size_t len = 0;
        if (dlog_read(dq->log, &seq, &tag, &rec, &len) != O2D_OK) {
            break;
        }
        struct dlv_item *it = item_of(seq, tag, rec, len);
        o2d_free(rec);
        if (it == NULL) {
            /* Unreadable as an item (or no memory): settled, so the log moves on. */
            o2d_logf(O2D_LOG_ERROR, "disk queue: record %llu could not be read back: skipped",
                     (unsigned long long)seq);
            dlog_settle(dq->log, seq);
            atomic_fetch_add(&dq->skipped, 1);
            continue;
        }
        bytes += it->len;
        *tailp = it;
        tailp = &it->next;
    }
    return head;
}

static void disk_took(struct dlv_queue *q, const struct dlv_item *list)
{
    struct disk_queue *dq = (struct disk_queue *)q;
    size_t skipped = atomic_exchange(&dq->skipped, 0);
    q->st.waiting_items -= skipped < q->st.waiting_items ? skipped : q->st.waiting_items;
    for (const struct dlv_item *it = list; it != NULL; it = it->next) {
        q->st.waiting_items -= q->st.waiting_items > 0;
        q->st.waiting_units -= it->count < q->st.waiting_units ? it->count : q->st.waiting_units;
        q->st.waiting_bytes -= it->len < q->st.waiting_bytes ? it->len : q->st.waiting_bytes;
        q->st.out_bytes += it->len;
        q->st.mem_bytes += it->len;
    }
    if (list == NULL && atomic_load(&dq->pushes) == dq->pushes_before_read) {
        /* Caught up, and nothing came since the read began: what the counters still say
         * waits was given up by the log (unreadable); otherwise the sender would read again
         * and again for records that are not there. */
        q->st.waiting_items = 0;
        q->st.waiting_units = 0;
        q->st.waiting_bytes = 0;
    }
}

static void disk_done(struct dlv_queue *q, struct dlv_item *it)
{
    struct disk_queue *dq = (struct disk_queue *)q;
    dlog_settle(dq->log, it->seq);
    q->st.out_bytes -= it->len;
    q->st.mem_bytes -= it->len;
    dlv_item_free(it);
}

static void disk_keep(struct dlv_queue *q, struct dlv_item *it)
{
    q->st.out_bytes -= it->len;
    q->st.mem_bytes -= it->len;
    dlv_item_free(it); /* unsettled: the next start reads it again */
}

static struct dlv_item *disk_drain(struct dlv_queue *q)
{
    (void)q;
    return NULL; /* it stays on disk, for the next start */
}

static void disk_free(struct dlv_queue *q)
{
    struct disk_queue *dq = (struct disk_queue *)q;
    if (dq == NULL) {
        return;
    }
    dlog_close(dq->log);
    o2d_free(dq);
}

static void disk_stats(struct dlv_queue *q, struct dlog_stats *st)
{
    struct disk_queue *dq = (struct disk_queue *)q;
    dlog_get_stats(dq->log, st);
}

static const struct dlv_queue_type disk_queue_type = {
    .name = "disk",
    .persist = disk_persist,
    .push = disk_push,
    .read = disk_read,
    .took = disk_took,
    .done = disk_done,
    .keep = disk_keep,
    .drain = disk_drain,
    .free = disk_free,
    .disk_stats = disk_stats,
};

int dlv_queue_disk_new(struct dlv_queue **out, const struct dlog_config *cfg, char *err,
                       size_t errlen)
{
    struct disk_queue *dq = o2d_calloc(1, sizeof(*dq));
    if (dq == NULL) {
        snprintf(err, errlen, "out of memory");
        return O2D_ERR_NOMEM;
    }
    int rv = dlog_open(&dq->log, cfg, err, errlen);
    if (rv != O2D_OK) {
        o2d_free(dq);
        return rv;
    }
    dq->base.type = &disk_queue_type;
    /* What the log recovered waits to be sent again, oldest first. */
    struct dlog_stats st;
    dlog_get_stats(dq->log, &st);
    dq->base.st.waiting_items = st.records;
    dq->base.st.waiting_units = st.units;
    dq->base.st.waiting_bytes = st.bytes;
    *out = &dq->base;
    return O2D_OK;
}
