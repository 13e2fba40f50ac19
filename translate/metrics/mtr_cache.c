/*
 * mtr_cache.c: the cumulative-to-delta cache, following Datadog's ttlcache.go
 * (putAndGetMonotonic, putAndGetDiff, putAndCheckExtrema, isNotFirstPoint) on a go-cache with
 * delta_ttl as default expiration. Unlike go-cache it is bounded: at most max_entries series,
 * the least recently written one evicted past that; entries older than the TTL are dropped
 * when met and swept from the old end of the list, and both evictions are counted.
 *
 * Layout: a pool of entries (calloc'd once, so untouched pages cost nothing) linked by index
 * into hash chains and into one list from least to most recently written; one mutex.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mtr_int.h"
#include "o2d_alloc.h"

#define NIL UINT32_MAX

struct entry {
    uint64_t h1, h2;
    uint64_t start, ts;
    double value;
    uint64_t expires_ns;
    uint32_t chain, prev, next;
};

struct mtr_cache {
    pthread_mutex_t mu;
    struct entry *pool;
    uint32_t *buckets;
    size_t nbuckets; /* power of two */
    size_t max, used, live;
    uint32_t free_head;
    uint32_t lru_head, lru_tail; /* oldest write first */
    uint64_t ttl_ns;
    uint64_t ev_ttl, ev_cap;
};

struct mtr_cache *mtr_cache_new(size_t max_entries, int64_t ttl_s)
{
    if (max_entries == 0 || max_entries >= NIL) {
        return NULL;
    }
    struct mtr_cache *c = o2d_calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    size_t nb = 16;
    while (nb < max_entries) {
        nb *= 2;
    }
    c->pool = o2d_calloc(max_entries, sizeof(*c->pool));
    c->buckets = o2d_malloc(nb * sizeof(*c->buckets));
    if (c->pool == NULL || c->buckets == NULL) {
        mtr_cache_free(c);
        return NULL;
    }
    memset(c->buckets, 0xff, nb * sizeof(*c->buckets));
    pthread_mutex_init(&c->mu, NULL);
    c->nbuckets = nb;
    c->max = max_entries;
    c->free_head = NIL;
    c->lru_head = c->lru_tail = NIL;
    c->ttl_ns = ttl_s > 0 ? (uint64_t)ttl_s * 1000000000u : 0;
    return c;
}

void mtr_cache_free(struct mtr_cache *c)
{
    if (c == NULL) {
        return;
    }
    if (c->pool != NULL && c->buckets != NULL) {
        pthread_mutex_destroy(&c->mu);
    }
    o2d_free(c->pool);
    o2d_free(c->buckets);
    o2d_free(c);
}

static void lru_unlink(struct mtr_cache *c, uint32_t i)
{
    struct entry *e = &c->pool[i];
    if (e->prev != NIL) {
        c->pool[e->prev].next = e->next;
    } else {
        c->lru_head = e->next;
    }
    if (e->next != NIL) {
        c->pool[e->next].prev = e->prev;
    } else {
        c->lru_tail = e->prev;
    }
    e->prev = e->next = NIL;
}

static void lru_append(struct mtr_cache *c, uint32_t i)
{
    struct entry *e = &c->pool[i];
    e->prev = c->lru_tail;
    e->next = NIL;
    if (c->lru_tail != NIL) {
        c->pool[c->lru_tail].next = i;
    } else {
        c->lru_head = i;
    }
    c->lru_tail = i;
}

static void remove_entry(struct mtr_cache *c, uint32_t i)
{
    struct entry *e = &c->pool[i];
    uint32_t *pp = &c->buckets[e->h1 & (c->nbuckets - 1)];
    while (*pp != NIL && *pp != i) {
        pp = &c->pool[*pp].chain;
    }
    if (*pp == i) {
        *pp = e->chain;
    }
    lru_unlink(c, i);
    e->chain = c->free_head;
    c->free_head = i;
    c->live--;
}

static int expired(const struct mtr_cache *c, const struct entry *e, uint64_t now_ns)
{
    return c->ttl_ns != 0 && now_ns > e->expires_ns;
}

/* Drops expired entries from the old end; writes refresh the TTL, so they are all there. */
static void sweep(struct mtr_cache *c, uint64_t now_ns)
{
    while (c->lru_head != NIL && expired(c, &c->pool[c->lru_head], now_ns)) {
        remove_entry(c, c->lru_head);
        c->ev_ttl++;
    }
}

/* The live entry of k, or NIL. */
static uint32_t lookup(struct mtr_cache *c, struct mtr_key k, uint64_t now_ns)
{
    for (uint32_t i = c->buckets[k.h1 & (c->nbuckets - 1)]; i != NIL; i = c->pool[i].chain) {
        struct entry *e = &c->pool[i];
        if (e->h1 == k.h1 && e->h2 == k.h2) {
            if (expired(c, e, now_ns)) {
                remove_entry(c, i);
                c->ev_ttl++;
                return NIL;
            }
            return i;
        }
    }
    return NIL;
}

/* gocache.Set with the default expiration: the entry of k (existing at `i`, or new). */
static void set(struct mtr_cache *c, uint32_t i, struct mtr_key k, uint64_t now_ns, uint64_t start,
                uint64_t ts, double v)
{
    if (i == NIL) {
        sweep(c, now_ns);
        if (c->live == c->max) {
            remove_entry(c, c->lru_head);
            c->ev_cap++;
        }
        if (c->free_head != NIL) {
            i = c->free_head;
            c->free_head = c->pool[i].chain;
        } else {
            i = (uint32_t)c->used++;
        }
        struct entry *e = &c->pool[i];
        e->h1 = k.h1;
        e->h2 = k.h2;
        uint32_t *b = &c->buckets[k.h1 & (c->nbuckets - 1)];
        e->chain = *b;
        *b = i;
        e->prev = e->next = NIL;
        c->live++;
    } else {
        lru_unlink(c, i);
    }
    struct entry *e = &c->pool[i];
    e->start = start;
    e->ts = ts;
    e->value = v;
    e->expires_ns = now_ns + c->ttl_ns;
    lru_append(c, i);
}

/* isNotFirstPoint (resets and gaps of the OTLP data model). */
static int not_first(uint64_t start, uint64_t ts, uint64_t old_start)
{
    return start == 0 || (start != ts && start == old_start);
}

void mtr_cache_monotonic(struct mtr_cache *c, struct mtr_key k, uint64_t now_ns, uint64_t start,
                         uint64_t ts, double val, int rate, double *dx, int *first, int *drop)
{
    *dx = 0;
    *first = 1;
    *drop = 0;
    pthread_mutex_lock(&c->mu);
    uint32_t i = lookup(c, k, now_ns);
    if (i != NIL) {
        struct entry *e = &c->pool[i];
        if (e->ts >= ts) {
            *first = 0;
            *drop = 1;
            pthread_mutex_unlock(&c->mu);
            return;
        }
        *dx = val - e->value;
        if (rate) {
            *dx /= (double)(ts - e->ts) / 1e9;
        }
        *first = !not_first(start, ts, e->start) || *dx < 0;
    }
    set(c, i, k, now_ns, start, ts, val);
    pthread_mutex_unlock(&c->mu);
}

int mtr_cache_diff(struct mtr_cache *c, struct mtr_key k, uint64_t now_ns, uint64_t start,
                   uint64_t ts, double val, double *dx)
{
    int ok = 0;
    *dx = 0;
    pthread_mutex_lock(&c->mu);
    uint32_t i = lookup(c, k, now_ns);
    if (i != NIL) {
        struct entry *e = &c->pool[i];
        if (e->ts > ts) {
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
        *dx = val - e->value;
        ok = not_first(start, ts, e->start);
    }
    set(c, i, k, now_ns, start, ts, val);
    pthread_mutex_unlock(&c->mu);
    return ok;
}

int mtr_cache_extrema(struct mtr_cache *c, struct mtr_key k, uint64_t now_ns, uint64_t start,
                      uint64_t ts, double v, int is_min)
{
    int from_last = 0;
    pthread_mutex_lock(&c->mu);
    uint32_t i = lookup(c, k, now_ns);
    if (i != NIL) {
        struct entry *e = &c->pool[i];
        if (e->ts > ts) {
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
        int nf = not_first(start, ts, e->start);
        if (is_min) {
            from_last = (nf && v < e->value) || v > e->value;
        } else {
            from_last = (nf && v > e->value) || v < e->value;
        }
    }
    set(c, i, k, now_ns, start, ts, v);
    pthread_mutex_unlock(&c->mu);
    return from_last;
}

void mtr_cache_stats(struct mtr_cache *c, size_t *entries, uint64_t *ev_ttl, uint64_t *ev_cap)
{
    pthread_mutex_lock(&c->mu);
    *entries = c->live;
    *ev_ttl = c->ev_ttl;
    *ev_cap = c->ev_cap;
    pthread_mutex_unlock(&c->mu);
}
