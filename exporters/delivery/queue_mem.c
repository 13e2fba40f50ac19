/*
 * queue_mem.c: the in-memory queue (queue.h), a singly linked list of waiting items. Items
 * handed out are remembered only by their bytes: the caller holds them until done().
 */
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "queue.h"

struct mem_queue {
    struct dlv_queue base;
    struct dlv_item *head;
    struct dlv_item *tail;
};

struct dlv_item *dlv_item_new(size_t len, size_t head_len, uint32_t count)
{
    if (head_len > len || head_len > UINT32_MAX) {
        return NULL;
    }
    struct dlv_item *it = o2d_malloc(sizeof(*it) + (len > 0 ? len : 1));
    if (it == NULL) {
        return NULL;
    }
    memset(it, 0, sizeof(*it));
    atomic_init(&it->refs, 0);
    it->tenant = -1;
    it->count = count;
    it->head_len = (uint32_t)head_len;
    it->len = len;
    return it;
}

struct dlv_item *dlv_item_adopt(uint8_t *storage, size_t total, size_t head_len, uint32_t count)
{
    if (total < DLV_ITEM_PREFIX || head_len > total - DLV_ITEM_PREFIX || head_len > UINT32_MAX) {
        o2d_free(storage);
        return NULL;
    }
    size_t len = total - DLV_ITEM_PREFIX;
    /* Shrinking in place moves nothing (glibc splits the chunk, or mremaps a mapped one); the
     * whole struct's size at least, as dlv_item_new allocates. */
    size_t keep = total > sizeof(struct dlv_item) ? total : sizeof(struct dlv_item) + 1;
    uint8_t *p = o2d_realloc(storage, keep);
    if (p == NULL) {
        o2d_free(storage);
        return NULL;
    }
    struct dlv_item *it = (struct dlv_item *)(void *)p;
    memset(it, 0, DLV_ITEM_PREFIX);
    atomic_init(&it->refs, 0);
    it->tenant = -1;
    it->count = count;
    it->head_len = (uint32_t)head_len;
    it->len = len;
    return it;
}

void dlv_item_free(struct dlv_item *it)
{
    o2d_free(it);
}

struct dlv_item *dlv_item_release(struct dlv_item *it)
{
    while (it != NULL && atomic_fetch_sub(&it->refs, 1) == 1) {
        if (it->parent == NULL) {
            return it;
        }
        struct dlv_item *up = it->parent;
        dlv_item_free(it);
        it = up;
    }
    return NULL;
}

static int mem_push(struct dlv_queue *q, struct dlv_item *list)
{
    struct mem_queue *m = (struct mem_queue *)q;
    if (list == NULL) {
        return O2D_OK;
    }
    struct dlv_item *last = list;
    for (struct dlv_item *it = list; it != NULL; it = it->next) {
        q->st.waiting_items++;
        q->st.waiting_units += it->count;
        q->st.waiting_bytes += it->len;
        q->st.mem_bytes += it->len;
        last = it;
    }
    if (m->tail != NULL) {
        m->tail->next = list;
    } else {
        m->head = list;
    }
    m->tail = last;
    return O2D_OK;
}

static struct dlv_item *mem_take(struct dlv_queue *q, size_t max_bytes)
{
    struct mem_queue *m = (struct mem_queue *)q;
    if (m->head == NULL) {
        return NULL;
    }
    struct dlv_item *list = m->head;
    struct dlv_item *last = NULL;
    size_t bytes = 0;
    for (struct dlv_item *it = m->head; it != NULL; it = it->next) {
        if (last != NULL && bytes + it->len > max_bytes) {
            break;
        }
        bytes += it->len;
        q->st.waiting_items--;
        q->st.waiting_units -= it->count;
        last = it;
    }
    m->head = last->next;
    if (m->head == NULL) {
        m->tail = NULL;
    }
    last->next = NULL;
    q->st.waiting_bytes -= bytes;
    q->st.out_bytes += bytes;
    return list;
}

static void mem_done(struct dlv_queue *q, struct dlv_item *it)
{
    q->st.out_bytes -= it->len;
    q->st.mem_bytes -= it->len;
    dlv_item_free(it);
}

static struct dlv_item *mem_drain(struct dlv_queue *q)
{
    struct mem_queue *m = (struct mem_queue *)q;
    struct dlv_item *list = m->head;
    m->head = m->tail = NULL;
    q->st.mem_bytes -= q->st.waiting_bytes;
    q->st.waiting_items = 0;
    q->st.waiting_units = 0;
    q->st.waiting_bytes = 0;
    return list;
}

static void mem_free(struct dlv_queue *q)
{
    if (q == NULL) {
        return;
    }
    struct dlv_item *list = mem_drain(q);
    while (list != NULL) {
        struct dlv_item *nx = list->next;
        dlv_item_free(list);
        list = nx;
    }
    o2d_free(q);
}

static const struct dlv_queue_type mem_queue_type = {
    .name = "memory",
    .push = mem_push,
    .take = mem_take,
    .done = mem_done,
    .drain = mem_drain,
    .free = mem_free,
};

int dlv_queue_mem_new(struct dlv_queue **out)
{
    struct mem_queue *m = o2d_calloc(1, sizeof(*m));
    if (m == NULL) {
        return O2D_ERR_NOMEM;
    }
    m->base.type = &mem_queue_type;
    *out = &m->base;
    return O2D_OK;
}
