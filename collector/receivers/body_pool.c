/*
 * body_pool.c: the request body buffers a receiving thread keeps (body_pool.h). A handful to
 * a few dozen buffers: a linear best-fit search is cheaper than any index over them.
 */
#include "body_pool.h"

void body_pool_init(struct body_pool *p, size_t max_each, size_t max_bytes)
{
    p->n = 0;
    p->bytes = 0;
    p->max_each = max_each;
    p->max_bytes = max_bytes;
    p->used_ms = 0;
}

void body_pool_cleanup(struct body_pool *p)
{
    while (p->n > 0) {
        o2d_buf_cleanup(&p->spare[--p->n]);
    }
    p->bytes = 0;
}

int body_pool_take(struct body_pool *p, struct o2d_buf *b, size_t want, int64_t now_ms)
{
    if (p->n == 0) {
        return 0;
    }
    size_t best = 0;
    for (size_t k = 1; k < p->n; k++) {
        size_t cap = p->spare[k].cap, cur = p->spare[best].cap;
        /* a buffer that holds it beats one that does not; among those that do, the
         * smallest; among those that do not, the largest */
        if (cur >= want ? (cap >= want && cap < cur) : cap > cur) {
            best = k;
        }
    }
    struct o2d_buf *s = &p->spare[best];
    b->data = s->data;
    b->cap = s->cap;
    p->bytes -= s->cap;
    p->spare[best] = p->spare[--p->n];
    p->used_ms = now_ms;
    return 1;
}

void body_pool_give(struct body_pool *p, struct o2d_buf *b, int64_t now_ms)
{
    if (b->data != NULL && b->cap <= p->max_each && p->n < BODY_POOL_SLOTS &&
        b->cap <= p->max_bytes - p->bytes) {
        struct o2d_buf *s = &p->spare[p->n++];
        o2d_buf_init(s, 0);
        s->data = b->data;
        s->cap = b->cap;
        p->bytes += b->cap;
        p->used_ms = now_ms;
        b->data = NULL;
        b->cap = 0;
        b->len = 0;
        return;
    }
    o2d_buf_cleanup(b);
}

void body_pool_trim(struct body_pool *p, int64_t now_ms, int64_t idle_ms)
{
    if (p->n > 0 && now_ms - p->used_ms >= idle_ms) {
        body_pool_cleanup(p);
    }
}
