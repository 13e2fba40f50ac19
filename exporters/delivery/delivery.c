/*
 * delivery.c: a destination of the delivery layer (delivery.h): its queue, its sender
 * thread, the completions of its bodies, and its accounting.
 *
 * The sender loop, run by `builders` threads alike, under the destination's lock: tick the
 * destination when due (or forced by a flush; one thread at a time); build again the bodies
 * the intake refused as too large; take a batch off the queue when the flush interval is up,
 * the batch is full, or a flush asks, and build and post its bodies (build.c) without the
 * lock. A build (a batch or a rebuild) is counted in `builds` from the moment it leaves the
 * queue until its last body is posted, and each build keeps its own count of what it posted
 * (struct build_run), so several can run at once and a unit is always exactly one of
 * waiting, building (building_units), in flight or settled. `builds` counts against
 * max_inflight: a build is a body about to be in flight. A disk queue is read by one thread
 * at a time (`reading`), so batches leave it in sequence order. Completions run on the HTTP
 * client's thread: count, release each item's hold, and settle the items nothing holds any
 * more.
 *
 * The byte budget covers the queue's items from push until settled and the bodies in flight
 * (retries included), so an intake that is down fills it and admit answers "busy".
 *
 * Fairness between tenants (dlv_dest_config.tenant_share_pct below 100, memory queue): each
 * queue item a request's tenant queued is tagged with its slot, and its bytes count as that
 * tenant's from push until the item is settled (done, kept, or drained at stop); halves made
 * by splits carry no tag, their parent's bytes count. Under the destination's lock, which
 * push, settle and admit already take.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "delivery.h"
#include "disk_log.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"

#define DLV_STACK        64
#define DLV_LOG_BODY_MAX 512 /* bytes of an answer quoted in a log line */

static atomic_uint_fast64_t next_item_id = 1;

static const char *const reason_names[DLV_DROP_N] = {
    [DLV_DROP_QUEUE_FULL] = "queue_full",
    [DLV_DROP_REJECTED_4XX] = "rejected_4xx",
    [DLV_DROP_RETRIES_EXHAUSTED] = "retries_exhausted",
    [DLV_DROP_TOO_LARGE] = "too_large",
    [DLV_DROP_SHUTDOWN] = "shutdown",
};

const char *dlv_drop_reason_name(int reason)
{
    if (reason < 0 || reason >= DLV_DROP_N) {
        return "unknown";
    }
    return reason_names[reason];
}

/* A body the intake refused as too large, waiting to be built again in halves. */
struct rebuild {
    struct rebuild *next;
    struct dlv_body *body; /* its items, with the holds the body had */
};

struct dlv_dest {
    const struct dlv_dest_type *type;
    void *ctx;
    struct dlv_dest_config cfg;
    char url[600];
    char where[600];
    struct http_client *http;
    struct dlv_queue *queue;
    atomic_size_t max_body;
    dlv_observer_fn observer;
    void *observer_ctx;
    pthread_mutex_t err_mu; /* last_error: written on the HTTP thread, read by metrics */
    struct dlv_last_error last_error;
    /* Rejections are logged at most once a minute; touched only on the HTTP thread. */
    struct http_rejection_log rejections;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    size_t body_bytes;   /* bodies in flight, as sent */
    size_t inflight;     /* bodies in flight */
    size_t inflight_units;
    /* Off the queue, not yet in a body in flight: a sender is building their bodies
     * (a batch just taken, or a body refused as too large). Counted as queued. */
    size_t building_units;
    struct rebuild *rebuilds;
    size_t builds;     /* batches and rebuilds being built now, by all senders */
    int ticking;       /* a sender is in the tick */
    int reading;       /* a sender is reading a batch from a disk queue */
    size_t kept_units; /* in flight at stop, kept unsettled by a disk queue */
    int due;
    int64_t next_send_ms;
    int64_t next_tick_ms;
    int tick_busy;
    uint64_t ticked_gen;
    uint64_t flush_req;
    uint64_t flush_done;
    int stop;
    int stopped; /* the sender is gone: completions settle instead of rebuilding */
    pthread_t *senders;
    struct dlv_pool *pool; /* body buffers (its own lock); NULL: none kept */
    int n_senders;         /* started */
    atomic_int stopping;

    size_t tenant_cap;                /* fairness: bytes one tenant may hold; 0: no rule */
    size_t tenant_bytes[DLV_TENANTS]; /* queued item bytes per tenant slot, under mu */

    atomic_uint_fast64_t queued_units;
    atomic_uint_fast64_t sent_units;
    atomic_uint_fast64_t sent_bodies;
    atomic_uint_fast64_t sent_bytes;
    atomic_uint_fast64_t retried_units;
    atomic_uint_fast64_t dropped[DLV_DROP_N];
};

static void notify(struct dlv_dest *d, const struct dlv_item *it, enum dlv_state state, int reason,
                   int attempts)
{
    if (d->observer == NULL) {
        return;
    }
    struct dlv_event ev = {
        .dest = d->type->name,
        .item_id = it->id,
        .origin = it->origin,
        .units = it->count,
        .state = state,
        .reason = reason,
        .attempts = attempts,
        .item = it,
    };
    d->observer(d->observer_ctx, &ev);
}

void dlv_dest_drop(struct dlv_dest *d, int reason, size_t units)
{
    if (reason >= 0 && reason < DLV_DROP_N && units > 0) {
        atomic_fetch_add(&d->dropped[reason], units);
    }
}

static size_t budget_used(const struct dlv_dest *d)
{
    const struct dlv_queue_state *st = &d->queue->st;
    return st->mem_bytes + d->body_bytes;
}

/* A queue item leaves the queue (settled or drained): its tenant's bytes go (under mu). */
static void untag_locked(struct dlv_dest *d, struct dlv_item *it)
{
    if (it->tenant >= 0) {
        size_t *held = &d->tenant_bytes[it->tenant];
        *held -= it->len <= *held ? it->len : *held;
        it->tenant = -1;
    }
}

/* Drops one hold (queue.h); the last hold on a queue item settles it (under mu), or, with
 * `keep` and a queue that keeps what it holds (disk), leaves it for the next start. */
static void release_item_locked(struct dlv_dest *d, struct dlv_item *it, int keep)
{
    struct dlv_item *last = dlv_item_release(it);
    if (last == NULL) {
        return;
    }
    untag_locked(d, last);
    if (keep && d->queue->type->keep != NULL) {
        d->queue->type->keep(d->queue, last);
    } else {
        d->queue->type->done(d->queue, last);
    }
}

static void release_locked(struct dlv_dest *d, struct dlv_item *it)
{
    release_item_locked(d, it, 0);
}

/* Drops the holds a body (or a rebuild) has on its items (under mu). */
static void release_body_locked(struct dlv_dest *d, struct dlv_body *b, int keep)
{
    for (size_t i = 0; i < b->n; i++) {
        release_item_locked(d, b->items[i], keep);
    }
}

/* Whether what stopping leaves undelivered stays in the queue for the next start. */
static int keeps(const struct dlv_dest *d)
{
    return d->queue->type->keep != NULL;
}

static void log_too_large(struct dlv_dest *d, size_t units, size_t limit)
{
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_ERROR, "item over the intake's size limit: dropped");
    o2d_log_cstr(&l, "request", d->type->request);
    o2d_log_uint(&l, d->type->unit, units);
    o2d_log_uint(&l, "limit_bytes", limit);
    o2d_log_end(&l);
}

/* A body's fate: counted, told to the observer, its holds released (under mu). reason < 0:
 * delivered. */
static void settle_body_locked(struct dlv_dest *d, struct dlv_body *b, int reason, int attempts)
{
    int keep = reason == DLV_DROP_SHUTDOWN && keeps(d);
    if (keep) {
        d->kept_units += b->units; /* not lost: sent again after the next start */
    } else if (reason >= 0) {
        dlv_dest_drop(d, reason, b->units);
    }
    for (size_t i = 0; i < b->n && !keep; i++) {
        notify(d, b->items[i], reason < 0 ? DLV_SENT : DLV_DROPPED, reason, attempts);
    }
    release_body_locked(d, b, keep);
    pthread_cond_broadcast(&d->cond);
}

struct sent {
    struct dlv_dest *d;
    struct dlv_body *body;
};

/* Every failed attempt (the HTTP client's thread): what = "rejected", "gave up after
 * retries" or "retrying". */
static void note_error(struct dlv_dest *d, const struct http_result *r, const char *what)
{
    pthread_mutex_lock(&d->err_mu);
    struct dlv_last_error *e = &d->last_error;
    e->at_ms = o2d_realtime_ns() / 1000000;
    e->what = what;
    e->http_status = r->http_status;
    snprintf(e->transport, sizeof(e->transport), "%s", r->error != NULL ? r->error : "");
    e->body_len = r->body_len < sizeof(e->body) ? r->body_len : sizeof(e->body);
    if (e->body_len > 0) {
        memcpy(e->body, r->body, e->body_len);
    }
    pthread_mutex_unlock(&d->err_mu);
}

/* An attempt failed and will be made again: an intake error all the same. */
static void on_retrying(void *ctx, const struct http_result *r)
{
    const struct sent *s = ctx;
    note_error(s->d, r, "retrying");
    for (size_t i = 0; i < s->body->n; i++) {
        notify(s->d, s->body->items[i], DLV_RETRYING, -1, r->attempts);
    }
}

static void on_done(void *ctx, const struct http_result *r)
{
    struct sent *s = ctx;
    struct dlv_dest *d = s->d;
    struct dlv_body *b = s->body;
    const struct dlv_dest_type *t = d->type;
    o2d_free(s);
    /* the client is done with the body's bytes: its buffer serves the next body */
    dlv_pool_put(d->pool, b->data, b->cap);
    b->data = NULL;
    if (r->attempts > 1) {
        atomic_fetch_add(&d->retried_units, b->units * (uint64_t)(r->attempts - 1));
    }
    int split = r->outcome == HTTP_DONE_REJECTED && r->status == O2D_OK && r->http_status == 413 &&
                (b->n > 1 || t->split != NULL);
    int reason = -1;
    switch (r->outcome) {
    case HTTP_DONE_OK:
        atomic_fetch_add(&d->sent_units, b->units);
        atomic_fetch_add(&d->sent_bodies, 1);
        atomic_fetch_add(&d->sent_bytes, b->len);
        break;
    case HTTP_DONE_REJECTED:
        if (r->status == O2D_OK && r->http_status == 413 && !split) {
            reason = DLV_DROP_TOO_LARGE; /* the intake says so of one item alone */
            http_log_rejection(&d->rejections, d->where, t->request, t->unit, b->units, r);
        } else if (!split) {
            reason = DLV_DROP_REJECTED_4XX;
            http_log_rejection(&d->rejections, d->where, t->request, t->unit, b->units, r);
        }
        break;
    case HTTP_DONE_EXHAUSTED:
        reason = DLV_DROP_RETRIES_EXHAUSTED;
        http_log_gave_up(t->request, t->unit, b->units, r);
        break;
    case HTTP_DONE_SHUTDOWN:
        reason = DLV_DROP_SHUTDOWN;
        break;
    }
    if (r->outcome == HTTP_DONE_REJECTED || r->outcome == HTTP_DONE_EXHAUSTED) {
        note_error(d, r, r->outcome == HTTP_DONE_REJECTED ? "rejected" : "gave up after retries");
    }
    size_t len = b->len; /* once b is a rebuild, the sender may free it at any time */
    size_t units = b->units;
    pthread_mutex_lock(&d->mu);
    d->body_bytes -= len;
    d->inflight--;
    d->inflight_units -= units;
    if (split && !d->stopped) {
        /* Built again in halves by the sender: the body's holds go with it. */
        struct rebuild *rb = o2d_calloc(1, sizeof(*rb));
        if (rb != NULL) {
            rb->body = b;
            d->building_units += units;
            rb->next = d->rebuilds;
            d->rebuilds = rb;
            pthread_cond_broadcast(&d->cond);
            pthread_mutex_unlock(&d->mu);
            struct o2d_logline l;
            o2d_log_begin(&l, O2D_LOG_WARN,
                          "intake refused a body as too large (413): "
                          "sending it again in smaller bodies");
            o2d_log_cstr(&l, "request", t->request);
            o2d_log_int(&l, "http_status", r->http_status);
            o2d_log_uint(&l, "bytes", len);
            o2d_log_uint(&l, t->unit, units);
            o2d_log_str(&l, "response", (const char *)r->body,
                        r->body_len < DLV_LOG_BODY_MAX ? r->body_len : DLV_LOG_BODY_MAX);
            o2d_log_end(&l);
            return;
        }
        reason = DLV_DROP_RETRIES_EXHAUSTED;
    } else if (split) {
        reason = DLV_DROP_SHUTDOWN;
    }
    settle_body_locked(d, b, reason, r->attempts);
    pthread_mutex_unlock(&d->mu);
    dlv_body_free(b);
}

/* One build by one sender: what it has posted so far, and the sender's compressors. */
struct build_run {
    struct dlv_dest *d;
    size_t posted; /* units of the bodies this build posted */
    struct dlv_codec *codec;
};

/* Posts one body (sender thread, no lock held); its completion counts it. */
static void post_body(void *ctx, struct dlv_body *b)
{
    struct build_run *run = ctx;
    struct dlv_dest *d = run->d;
    struct sent *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        o2d_logf(O2D_LOG_ERROR, "out of memory: a %s body was not sent", d->type->request);
        pthread_mutex_lock(&d->mu);
        settle_body_locked(d, b, DLV_DROP_RETRIES_EXHAUSTED, 0);
        pthread_mutex_unlock(&d->mu);
        dlv_body_free(b);
        return;
    }
    struct dlv_headers h;
    h.n = 0;
    h.used = 0;
    pthread_mutex_lock(&d->mu);
    d->body_bytes += b->len;
    d->inflight++;
    d->inflight_units += b->units;
    d->building_units -= b->units < d->building_units ? b->units : d->building_units;
    pthread_mutex_unlock(&d->mu);
    run->posted += b->units;
    s->d = d;
    s->body = b;
    if (d->type->headers != NULL) {
        d->type->headers(d->ctx, b->items, b->n, &h);
    }
    /* static lines: never lost for want of room in h.buf, which the type's headers fill */
    if (d->cfg.compression == DLV_COMPRESS_GZIP) {
        dlv_headers_add(&h, "Content-Encoding: gzip", 0);
    } else if (d->cfg.compression == DLV_COMPRESS_ZSTD) {
        dlv_headers_add(&h, "Content-Encoding: zstd", 0);
    }
    /* The client borrows the body's bytes until on_done, which gives them to the pool. */
    struct http_request q = {
        .method = "POST",
        .url = d->url,
        .headers = h.line,
        .n_headers = h.n,
        .body = b->data,
        .body_len = b->len,
        .body_borrowed = 1,
        .timeout_ms = d->cfg.attempt_timeout_ms,
        .max_elapsed_ms = d->cfg.max_elapsed_ms,
        .name = d->type->request,
        .verdict = d->type->verdict,
        .done = on_done,
        .retrying = on_retrying,
        .ctx = s,
    };
    int rv = http_client_submit(d->http, &q);
    if (rv != O2D_OK) {
        struct http_result r = {.outcome = HTTP_DONE_SHUTDOWN, .status = rv, .error = ""};
        on_done(s, &r);
    }
}

static void left_out(void *ctx, const struct dlv_item *it, int reason)
{
    const struct build_run *run = ctx;
    notify(run->d, it, DLV_DROPPED, reason, 0);
}

/* Builds and posts the bodies of items[0..n) (sender thread, no lock held), then drops the
 * sender's own hold on each (under the lock). */
static void send_items(struct build_run *run, struct dlv_item **items, size_t n, size_t max_body)
{
    struct dlv_dest *d = run->d;
    struct dlv_build b = {
        .type = d->type,
        .ctx = d->ctx,
        .max_body = max_body,
        .max_raw = d->cfg.max_raw,
        .batch_bytes = d->cfg.batch_bytes,
        .compression = d->cfg.compression,
        .level = d->cfg.compression_level,
        .codec = run->codec,
        .pool = d->pool,
        .emit = post_body,
        .emit_ctx = run,
        .left_out = left_out,
    };
    dlv_build_bodies(&b, items, n);
    if (b.too_large > 0) {
        dlv_dest_drop(d, DLV_DROP_TOO_LARGE, b.too_large);
        log_too_large(d, b.too_large, max_body);
    }
    if (b.failed > 0) {
        dlv_dest_drop(d, DLV_DROP_RETRIES_EXHAUSTED, b.failed);
        o2d_logf(O2D_LOG_ERROR, "out of memory building a %s body: %zu %s lost", d->type->request,
                 b.failed, d->type->unit);
    }
}

/* The build of `units` is over: what it did not post (dropped, left out) is no longer
 * anywhere in the queue (under the lock). */
static void building_done_locked(struct dlv_dest *d, const struct build_run *run, size_t units)
{
    size_t rest = units > run->posted ? units - run->posted : 0;
    d->building_units -= rest < d->building_units ? rest : d->building_units;
}

/* A batch off the queue (no lock held). */
static void send_batch(struct dlv_dest *d, struct dlv_codec *codec, struct dlv_item *list)
{
    size_t n = 0;
    size_t units = 0;
    for (struct dlv_item *it = list; it != NULL; it = it->next) {
        atomic_store(&it->refs, 1); /* the sender's hold while it builds */
        n++;
        units += it->count;
    }
    struct build_run run = {.d = d, .codec = codec};
    struct dlv_item *stack[DLV_STACK];
    struct dlv_item **items = n <= DLV_STACK ? stack : o2d_malloc(n * sizeof(*items));
    if (items != NULL) {
        size_t i = 0;
        for (struct dlv_item *it = list; it != NULL; it = it->next) {
            items[i++] = it;
        }
        send_items(&run, items, n, atomic_load(&d->max_body));
    } else {
        for (struct dlv_item *it = list; it != NULL; it = it->next) {
            notify(d, it, DLV_DROPPED, DLV_DROP_RETRIES_EXHAUSTED, 0);
        }
        dlv_dest_drop(d, DLV_DROP_RETRIES_EXHAUSTED, units);
        o2d_logf(O2D_LOG_ERROR, "out of memory building a %s body: %zu %s lost", d->type->request,
                 units, d->type->unit);
    }
    pthread_mutex_lock(&d->mu);
    building_done_locked(d, &run, units);
    while (list != NULL) {
        struct dlv_item *nx = list->next;
        list->next = NULL;
        release_locked(d, list);
        list = nx;
    }
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    if (items != stack) {
        o2d_free(items);
    }
}

/* A body the intake refused as too large (413), sent again as two: its items in two halves,
 * or its one item split in two (no lock held). One item that cannot be split is dropped.
 * The refused body's holds keep its items alive until the new bodies hold them. */
static void send_rebuild(struct dlv_dest *d, struct dlv_codec *codec, struct rebuild *rb)
{
    struct dlv_body *b = rb->body;
    o2d_free(rb);
    size_t max = atomic_load(&d->max_body);
    struct build_run run = {.d = d, .codec = codec};
    struct dlv_item *half[2] = {NULL, NULL};
    if (b->n > 1) {
        size_t h = b->n / 2;
        send_items(&run, b->items, h, max);
        send_items(&run, b->items + h, b->n - h, max);
    } else {
        struct dlv_item *it = b->items[0];
        int rv =
            d->type->split != NULL ? d->type->split(it, &half[0], &half[1]) : O2D_ERR_TOO_LARGE;
        if (rv == O2D_OK) {
            for (int i = 0; i < 2; i++) {
                half[i]->parent = it;
                half[i]->id = it->id;
                half[i]->origin = it->origin;
                atomic_init(&half[i]->refs, 1); /* this function's hold */
                atomic_fetch_add(&it->refs, 1);
            }
            send_items(&run, &half[0], 1, max);
            send_items(&run, &half[1], 1, max);
        } else {
            int reason = rv == O2D_ERR_NOMEM ? DLV_DROP_RETRIES_EXHAUSTED : DLV_DROP_TOO_LARGE;
            dlv_dest_drop(d, reason, it->count);
            notify(d, it, DLV_DROPPED, reason, 0);
            log_too_large(d, it->count, b->len);
        }
    }
    pthread_mutex_lock(&d->mu);
    building_done_locked(d, &run, b->units);
    for (int i = 0; i < 2; i++) {
        if (half[i] != NULL) {
            release_locked(d, half[i]);
        }
    }
    release_body_locked(d, b, 0);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    dlv_body_free(b);
}

/* Waiting bytes that are sent at once, not at the flush interval: a full batch, or a quarter of
 * a queue smaller than four batches (a queue smaller than one batch once filled and refused
 * every request until the interval passed: 1 MiB of traces a second). */
static size_t send_now_bytes(const struct dlv_dest *d)
{
    size_t quarter = d->cfg.queue_max_bytes / 4;
    return quarter > 0 && quarter < d->cfg.batch_bytes ? quarter : d->cfg.batch_bytes;
}

static int can_tick(const struct dlv_dest *d, int64_t now, int flushing)
{
    if (d->cfg.tick == NULL) {
        return 0;
    }
    if (now >= d->next_tick_ms) {
        return 1;
    }
    /* A flush ticks at once, and again as soon as there is room for what it left. */
    return flushing && (d->ticked_gen != d->flush_req ||
                        (d->tick_busy && budget_used(d) < d->cfg.queue_max_bytes));
}

/* Whether one more build may start: each build is a body about to be in flight. */
static int may_build(const struct dlv_dest *d)
{
    return d->inflight + d->builds < (size_t)d->cfg.max_inflight;
}

static void *sender_main(void *arg)
{
    struct dlv_dest *d = arg;
    /* This sender's compressors; without memory, each body makes its own (build.c). */
    struct dlv_codec *codec = d->cfg.compression != DLV_COMPRESS_NONE ? dlv_codec_new() : NULL;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        int64_t now = o2d_now_ms();
        int flushing = d->flush_done != d->flush_req;
        int ticked = 0;
        if (!d->ticking && can_tick(d, now, flushing)) {
            uint64_t gen = d->flush_req;
            d->next_tick_ms = now + d->cfg.tick_ms;
            d->ticking = 1;
            pthread_mutex_unlock(&d->mu);
            int busy = d->cfg.tick(d->cfg.tick_ctx, d, flushing);
            pthread_mutex_lock(&d->mu);
            d->ticking = 0;
            d->tick_busy = busy;
            if (flushing) {
                d->ticked_gen = gen;
            }
            ticked = 1;
            pthread_cond_broadcast(&d->cond);
        }
        if (d->rebuilds != NULL && may_build(d)) {
            struct rebuild *rb = d->rebuilds;
            d->rebuilds = rb->next;
            d->builds++;
            pthread_mutex_unlock(&d->mu);
            send_rebuild(d, codec, rb);
            pthread_mutex_lock(&d->mu);
            d->builds--;
            pthread_cond_broadcast(&d->cond);
            continue;
        }
        if (now >= d->next_send_ms) {
            d->due = 1;
            d->next_send_ms = now + d->cfg.flush_interval_ms;
        }
        const struct dlv_queue_state *st = &d->queue->st;
        int waiting = st->waiting_items > 0;
        int want = waiting && (d->due || flushing || d->cfg.flush_interval_ms == 0 ||
                               st->waiting_bytes >= send_now_bytes(d));
        if (want && may_build(d) && !d->reading) {
            struct dlv_item *list;
            d->builds++; /* from here until its last body is posted */
            if (d->queue->type->read != NULL) {
                /* from disk: read without the lock (receivers' admit and enqueue go on),
                 * one reader at a time, then counted under it */
                d->reading = 1;
                pthread_mutex_unlock(&d->mu);
                list = d->queue->type->read(d->queue, d->cfg.batch_bytes);
                pthread_mutex_lock(&d->mu);
                d->queue->type->took(d->queue, list);
                d->reading = 0;
                if (d->queue->st.waiting_items > 0) {
                    pthread_cond_broadcast(&d->cond); /* the next batch: another sender's */
                }
            } else {
                list = d->queue->type->take(d->queue, d->cfg.batch_bytes);
            }
            for (struct dlv_item *it = list; it != NULL; it = it->next) {
                d->building_units += it->count;
            }
            if (list != NULL) {
                pthread_mutex_unlock(&d->mu);
                send_batch(d, codec, list);
                pthread_mutex_lock(&d->mu);
            }
            d->builds--;
            pthread_cond_broadcast(&d->cond);
            continue;
        }
        if (!waiting) {
            d->due = 0;
            if (flushing && d->rebuilds == NULL && d->builds == 0 && !d->ticking &&
                (d->cfg.tick == NULL || (d->ticked_gen == d->flush_req && !d->tick_busy))) {
                d->flush_done = d->flush_req;
                pthread_cond_broadcast(&d->cond);
                continue;
            }
        }
        if (ticked) {
            continue; /* what the tick queued may be sendable at once */
        }
        /* Waiting items go at their flush interval; an empty queue waits for an enqueue
         * (which wakes this thread), the tick, or another sender's build ending. */
        int64_t wake = INT64_MAX;
        if (waiting && d->cfg.flush_interval_ms > 0) {
            wake = d->next_send_ms;
        }
        if (d->cfg.tick != NULL && d->next_tick_ms < wake) {
            wake = d->next_tick_ms;
        }
        /* an idle destination gives its scratch and body buffers back */
        int64_t idle_due = dlv_codec_idle(codec, now);
        int64_t pool_due = dlv_pool_idle(d->pool, now);
        if (pool_due < idle_due) {
            idle_due = pool_due;
        }
        if (idle_due < wake) {
            wake = idle_due;
        }
        if (wake == INT64_MAX) {
            pthread_cond_wait(&d->cond, &d->mu);
        } else {
            struct timespec ts = o2d_timespec_from_ms(wake);
            pthread_cond_timedwait(&d->cond, &d->mu, &ts);
        }
    }
    pthread_mutex_unlock(&d->mu);
    dlv_codec_free(codec);
    return NULL;
}

int dlv_dest_new(struct dlv_dest **out, const struct dlv_dest_type *type, void *ctx,
                 const struct dlv_dest_config *cfg, struct http_client *http)
{
    struct dlv_dest *d = o2d_calloc(1, sizeof(*d));
    if (d == NULL) {
        if (cfg->queue != NULL) {
            cfg->queue->type->free(cfg->queue);
        }
        return O2D_ERR_NOMEM;
    }
    d->type = type;
    d->ctx = ctx;
    d->cfg = *cfg;
    d->http = http;
    snprintf(d->url, sizeof(d->url), "%s", cfg->url != NULL ? cfg->url : "");
    snprintf(d->where, sizeof(d->where), "%s", cfg->where != NULL ? cfg->where : "");
    d->cfg.url = d->url;
    d->cfg.where = d->where;
    if (d->cfg.batch_bytes == 0) {
        d->cfg.batch_bytes = cfg->max_body;
    }
    if (d->cfg.max_inflight <= 0) {
        d->cfg.max_inflight = 1;
    }
    if (d->cfg.builders <= 0) {
        d->cfg.builders = 1;
    }
    atomic_init(&d->max_body, cfg->max_body);
    d->queue = cfg->queue;
    d->cfg.queue = NULL;
    if (cfg->tenant_share_pct > 0 && cfg->tenant_share_pct < 100 &&
        (d->queue == NULL || d->queue->type->persist == NULL)) {
        d->tenant_cap = cfg->queue_max_bytes / 100 * cfg->tenant_share_pct +
                        cfg->queue_max_bytes % 100 * cfg->tenant_share_pct / 100;
        if (d->tenant_cap == 0) {
            d->tenant_cap = 1;
        }
    }
    if (d->queue == NULL) {
        int rv = dlv_queue_mem_new(&d->queue);
        if (rv != O2D_OK) {
            o2d_free(d);
            return rv;
        }
    }
    /* NULL without memory: every body then has its own */
    d->pool = dlv_pool_new((size_t)d->cfg.max_inflight);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->err_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = d;
    return O2D_OK;
}

void dlv_dest_observe(struct dlv_dest *d, dlv_observer_fn fn, void *ctx)
{
    d->observer = fn;
    d->observer_ctx = ctx;
}

int dlv_dest_start(struct dlv_dest *d)
{
    int64_t now = o2d_now_ms();
    d->next_send_ms = now + d->cfg.flush_interval_ms;
    d->next_tick_ms = now + d->cfg.tick_ms;
    d->senders = o2d_calloc((size_t)d->cfg.builders, sizeof(*d->senders));
    if (d->senders == NULL) {
        return O2D_ERR_NOMEM;
    }
    for (int i = 0; i < d->cfg.builders; i++) {
        if (pthread_create(&d->senders[i], NULL, sender_main, d) != 0) {
            /* fewer senders than asked still deliver; none cannot */
            if (i == 0) {
                o2d_free(d->senders);
                d->senders = NULL;
                return O2D_ERR_SYSTEM;
            }
            o2d_logf(O2D_LOG_WARN, "%s: %d of %d sender threads started", d->type->request, i,
                     d->cfg.builders);
            break;
        }
        d->n_senders = i + 1;
    }
    return O2D_OK;
}

void dlv_dest_set_max_body(struct dlv_dest *d, size_t max_body)
{
    atomic_store(&d->max_body, max_body);
}

size_t dlv_dest_max_body(const struct dlv_dest *d)
{
    return atomic_load(&((struct dlv_dest *)d)->max_body);
}

int dlv_dest_admit(struct dlv_dest *d, size_t units)
{
    return dlv_dest_admit_tenant(d, units, -1);
}

int dlv_dest_admit_tenant(struct dlv_dest *d, size_t units, int tenant)
{
    if (atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
        return O2D_ERR_SHUTDOWN;
    }
    int rule = d->tenant_cap > 0 && tenant >= 0 && tenant < DLV_TENANTS;
    pthread_mutex_lock(&d->mu);
    int rv = budget_used(d) >= d->cfg.queue_max_bytes ? O2D_ERR_BUSY : O2D_OK;
    if (rv == O2D_OK && rule) {
        /* Past its share, held back; holding nothing, always admitted (as the receivers'
         * memory rule: a tenant's first request always fits). */
        size_t held = d->tenant_bytes[tenant];
        if (held > 0 && held >= d->tenant_cap) {
            rv = O2D_ERR_TENANT_BUSY;
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (rv != O2D_OK) {
        dlv_dest_drop(d, DLV_DROP_QUEUE_FULL, units);
    }
    return rv;
}

int dlv_dest_full(struct dlv_dest *d)
{
    pthread_mutex_lock(&d->mu);
    int full = budget_used(d) >= d->cfg.queue_max_bytes;
    pthread_mutex_unlock(&d->mu);
    return full;
}

size_t dlv_dest_tenant_bytes(struct dlv_dest *d, int tenant)
{
    if (tenant < 0 || tenant >= DLV_TENANTS) {
        return 0;
    }
    pthread_mutex_lock(&d->mu);
    size_t n = d->tenant_bytes[tenant];
    pthread_mutex_unlock(&d->mu);
    return n;
}

int dlv_dest_stopping(const struct dlv_dest *d)
{
    return atomic_load_explicit(&((struct dlv_dest *)d)->stopping, memory_order_relaxed);
}

size_t dlv_dest_room(struct dlv_dest *d)
{
    pthread_mutex_lock(&d->mu);
    size_t used = budget_used(d);
    pthread_mutex_unlock(&d->mu);
    return used < d->cfg.queue_max_bytes ? d->cfg.queue_max_bytes - used : 0;
}

static size_t drop_list(struct dlv_dest *d, struct dlv_item *list, int reason)
{
    size_t units = 0;
    while (list != NULL) {
        struct dlv_item *nx = list->next;
        units += list->count;
        notify(d, list, DLV_DROPPED, reason, 0);
        dlv_item_free(list);
        list = nx;
    }
    dlv_dest_drop(d, reason, units);
    return units;
}

int dlv_dest_enqueue(struct dlv_dest *d, struct dlv_item *list, uint64_t origin)
{
    return dlv_dest_enqueue_tenant(d, list, origin, -1);
}

int dlv_dest_enqueue_tenant(struct dlv_dest *d, struct dlv_item *list, uint64_t origin, int tenant)
{
    if (list == NULL) {
        return O2D_OK;
    }
    /* Tagged only under the rule (tenant_cap is 0 with a disk queue, whose push frees). */
    int tag = d->tenant_cap > 0 && tenant >= 0 && tenant < DLV_TENANTS;
    size_t units = 0;
    size_t bytes = 0;
    for (struct dlv_item *it = list; it != NULL; it = it->next) {
        it->id = atomic_fetch_add(&next_item_id, 1);
        it->origin = origin;
        it->parent = NULL;
        it->tenant = tag ? (int16_t)tenant : -1;
        bytes += it->len;
        atomic_store(&it->refs, 0);
        units += it->count;
    }
    if (atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
        drop_list(d, list, DLV_DROP_SHUTDOWN);
        return O2D_ERR_SHUTDOWN;
    }
    if (d->queue->type->persist != NULL) {
        int prv = d->queue->type->persist(d->queue, list);
        if (prv != O2D_OK) {
            /* Nothing of it is kept: a request is refused and its sender retries; what the
             * destination made itself (origin 0) is lost. */
            drop_list(d, list, origin != 0 ? DLV_DROP_QUEUE_FULL : DLV_DROP_RETRIES_EXHAUSTED);
            return prv == O2D_ERR_SYSTEM ? O2D_ERR_BUSY : prv;
        }
    }
    atomic_fetch_add(&d->queued_units, units);
    /* Told before the push: once queued, the sender may settle and free them. */
    for (struct dlv_item *it = list; it != NULL; it = it->next) {
        notify(d, it, DLV_QUEUED, -1, 0);
    }
    pthread_mutex_lock(&d->mu);
    int was_empty = d->queue->st.waiting_items == 0;
    int rv = d->queue->type->push(d->queue, list);
    if (rv == O2D_OK && tag) {
        d->tenant_bytes[tenant] += bytes; /* before the lock goes: nothing settled them yet */
    }
    if (rv == O2D_OK) {
        /* The sender sleeps without a deadline on an empty queue, and otherwise until the
         * flush interval: wake it for the first item, or for a full batch. */
        const struct dlv_queue_state *st = &d->queue->st;
        if (was_empty || d->cfg.flush_interval_ms == 0 || st->waiting_bytes >= send_now_bytes(d)) {
            pthread_cond_broadcast(&d->cond);
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (rv != O2D_OK) {
        drop_list(d, list, DLV_DROP_RETRIES_EXHAUSTED);
        return rv;
    }
    return O2D_OK;
}

void dlv_dest_flush_begin(struct dlv_dest *d)
{
    pthread_mutex_lock(&d->mu);
    d->flush_req++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

int dlv_dest_flush_wait(struct dlv_dest *d, int64_t deadline_ms)
{
    if (d->n_senders == 0) {
        return O2D_OK;
    }
    struct timespec ts = o2d_timespec_from_ms(deadline_ms);
    pthread_mutex_lock(&d->mu);
    uint64_t gen = d->flush_req;
    int done;
    for (;;) {
        done = d->flush_done >= gen && d->inflight == 0 && d->rebuilds == NULL && d->builds == 0;
        if (done || o2d_now_ms() >= deadline_ms) {
            break;
        }
        pthread_cond_timedwait(&d->cond, &d->mu, &ts);
    }
    size_t queued = d->queue->st.waiting_units;
    size_t inflight_units = d->inflight_units;
    size_t inflight = d->inflight;
    int held = d->tick_busy;
    pthread_mutex_unlock(&d->mu);
    if (!done) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_WARN, "flush deadline passed before everything was delivered");
        o2d_log_cstr(&l, "request", d->type->request);
        char key[64];
        snprintf(key, sizeof(key), "%s_queued", d->type->unit);
        o2d_log_uint(&l, key, queued);
        snprintf(key, sizeof(key), "%s_in_flight", d->type->unit);
        o2d_log_uint(&l, key, inflight_units);
        o2d_log_uint(&l, "requests_in_flight", inflight);
        if (held) {
            o2d_log_cstr(&l, "note", "more is held upstream, waiting for room in the queue");
        }
        o2d_log_end(&l);
        return O2D_ERR_TIMEOUT;
    }
    return O2D_OK;
}

void dlv_dest_stop(struct dlv_dest *d)
{
    atomic_store(&d->stopping, 1);
    if (d->n_senders > 0) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
        /* Each finishes the build it is in (its bodies posted, or counted) and leaves. */
        for (int i = 0; i < d->n_senders; i++) {
            pthread_join(d->senders[i], NULL);
        }
        d->n_senders = 0;
    }
    o2d_free(d->senders);
    d->senders = NULL;
    /* Nothing takes from the queue any more: what it holds is lost, counted now so that
     * the owner can report it before freeing. */
    pthread_mutex_lock(&d->mu);
    d->stopped = 1;
    struct dlv_item *list = d->queue->type->drain(d->queue);
    for (struct dlv_item *it = list; it != NULL; it = it->next) {
        untag_locked(d, it);
    }
    struct rebuild *rbs = d->rebuilds;
    d->rebuilds = NULL;
    size_t rb_units = 0;
    for (struct rebuild *rb = rbs; rb != NULL;) {
        struct rebuild *nx = rb->next;
        rb_units += rb->body->units;
        for (size_t i = 0; i < rb->body->n && !keeps(d); i++) {
            notify(d, rb->body->items[i], DLV_DROPPED, DLV_DROP_SHUTDOWN, 0);
        }
        release_body_locked(d, rb->body, 1);
        dlv_body_free(rb->body);
        o2d_free(rb);
        rb = nx;
    }
    if (keeps(d)) {
        d->kept_units += rb_units;
    }
    pthread_mutex_unlock(&d->mu);
    drop_list(d, list, DLV_DROP_SHUTDOWN);
    if (!keeps(d)) {
        dlv_dest_drop(d, DLV_DROP_SHUTDOWN, rb_units);
    }
}

void dlv_dest_free(struct dlv_dest *d)
{
    if (d == NULL) {
        return;
    }
    dlv_dest_stop(d);
    /* Bodies in flight at stop were completed by the HTTP client's freeing, before this. */
    size_t left = d->kept_units + d->queue->st.waiting_units;
    if (keeps(d) && left > 0) {
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_INFO, "left in the disk queue for the next start");
        o2d_log_cstr(&l, "request", d->type->request);
        o2d_log_uint(&l, d->type->unit, left);
        o2d_log_end(&l);
    }
    d->queue->type->free(d->queue);
    dlv_pool_free(d->pool);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->err_mu);
    pthread_cond_destroy(&d->cond);
    o2d_free(d);
}

uint64_t dlv_dest_dropped(const struct dlv_dest *d, int reason)
{
    if (reason < 0 || reason >= DLV_DROP_N) {
        return 0;
    }
    return atomic_load(&((struct dlv_dest *)d)->dropped[reason]);
}

uint64_t dlv_dest_queued_units(const struct dlv_dest *d)
{
    return atomic_load(&((struct dlv_dest *)d)->queued_units);
}

void dlv_dest_metrics(const struct dlv_dest *cd, struct dlv_metrics *m)
{
    struct dlv_dest *d = (struct dlv_dest *)cd;
    m->name = d->type->name;
    m->sent_items = atomic_load(&d->sent_units);
    m->sent_payloads = atomic_load(&d->sent_bodies);
    m->sent_bytes = atomic_load(&d->sent_bytes);
    m->retried_items = atomic_load(&d->retried_units);
    m->n_drops = 0;
    for (int i = 0; i < DLV_DROP_N && m->n_drops < DLV_DROP_REASONS_MAX; i++) {
        m->drops[m->n_drops].reason = reason_names[i];
        m->drops[m->n_drops++].items = atomic_load(&d->dropped[i]);
    }
    m->has_queue = 1;
    pthread_mutex_lock(&d->mu);
    m->queue_items = d->queue->st.waiting_units + d->building_units + d->inflight_units;
    m->queue_bytes = budget_used(d);
    pthread_mutex_unlock(&d->mu);
    m->queue_capacity_bytes = d->cfg.queue_max_bytes;
    pthread_mutex_lock(&d->err_mu);
    m->last_error = d->last_error;
    pthread_mutex_unlock(&d->err_mu);
    if (d->queue->type->disk_stats != NULL) {
        struct dlog_stats st;
        memset(&st, 0, sizeof(st));
        d->queue->type->disk_stats(d->queue, &st);
        m->has_disk = 1;
        m->disk_bytes = st.bytes;
        m->disk_records = st.records;
        int64_t now = o2d_realtime_ns() / 1000000;
        m->disk_oldest_age_s = st.oldest_append_ms > 0 && now > st.oldest_append_ms
                                   ? (double)(now - st.oldest_append_ms) / 1000.0
                                   : 0.0;
        m->disk_replayed = st.recovered;
        m->disk_corrupt = st.corrupt;
        m->disk_dropped_oldest = st.dropped_units;
        m->disk_write_errors = st.write_errors + st.sync_errors;
        m->disk_batches = st.batches;
        m->disk_batched_appends = st.batched_appends;
        m->disk_sync_seconds = (double)st.sync_ns / 1e9;
    }
}

uint64_t dlv_dest_undelivered(const struct dlv_dest *d, struct o2d_logline *l, const char *key)
{
    char buf[(DLV_DROP_N + 1) * 48 + 4];
    size_t len = 0;
    uint64_t total = 0;
    buf[len++] = '{';
    for (int r = 0; r < DLV_DROP_N; r++) {
        uint64_t n = dlv_dest_dropped(d, r);
        if (r == DLV_DROP_QUEUE_FULL || n == 0) {
            continue;
        }
        int w = snprintf(buf + len, sizeof(buf) - len, "%s\"%s\":%llu", total > 0 ? "," : "",
                         reason_names[r], (unsigned long long)n);
        if (w > 0 && (size_t)w < sizeof(buf) - len) {
            len += (size_t)w;
        }
        total += n;
    }
    if (d->queue->type->disk_stats != NULL) {
        /* when_full: drop_oldest removed them from the disk unsent: lost too */
        struct dlog_stats st;
        memset(&st, 0, sizeof(st));
        d->queue->type->disk_stats(d->queue, &st);
        if (st.dropped_units > 0) {
            int w = snprintf(buf + len, sizeof(buf) - len, "%s\"disk_full\":%llu",
                             total > 0 ? "," : "", (unsigned long long)st.dropped_units);
            if (w > 0 && (size_t)w < sizeof(buf) - len) {
                len += (size_t)w;
            }
            total += st.dropped_units;
        }
    }
    buf[len++] = '}';
    if (l != NULL && total > 0) {
        o2d_log_raw(l, key, buf, len);
    }
    return total;
}

void dlv_dest_log_counts(const struct dlv_dest *d, struct o2d_logline *l, const char *prefix)
{
    struct dlv_metrics m;
    memset(&m, 0, sizeof(m));
    dlv_dest_metrics(d, &m);
    const char *u = d->type->unit;
    char key[96];
    snprintf(key, sizeof(key), "%s%s_queued", prefix, u);
    o2d_log_uint(l, key, dlv_dest_queued_units(d));
    snprintf(key, sizeof(key), "%s%s_sent", prefix, u);
    o2d_log_uint(l, key, m.sent_items);
    snprintf(key, sizeof(key), "%s%s_retried", prefix, u);
    o2d_log_uint(l, key, m.retried_items);
    for (size_t i = 0; i < m.n_drops; i++) {
        snprintf(key, sizeof(key), "%s%s_dropped_%s", prefix, u, m.drops[i].reason);
        o2d_log_uint(l, key, m.drops[i].items);
    }
    if (keeps(d)) {
        struct dlv_dest *w = (struct dlv_dest *)d; /* its lock, for a consistent read */
        pthread_mutex_lock(&w->mu);
        size_t kept = w->kept_units + w->queue->st.waiting_units;
        pthread_mutex_unlock(&w->mu);
        snprintf(key, sizeof(key), "%s%s_kept_on_disk", prefix, u);
        o2d_log_uint(l, key, kept);
    }
    snprintf(key, sizeof(key), "%sbodies_sent", prefix);
    o2d_log_uint(l, key, m.sent_payloads);
    snprintf(key, sizeof(key), "%sbytes_sent", prefix);
    o2d_log_uint(l, key, m.sent_bytes);
}
