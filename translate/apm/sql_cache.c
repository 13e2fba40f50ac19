/*
 * sql_cache.c: the bounded, sharded cache of sql_cache.h in front of sql_obfuscate(). The
 * agent's cache (DataDog/datadog-agent pkg/obfuscate/cache.go) is a ristretto cache of 5 MB
 * of results keyed by the query; this one keeps the same key and default budget with plain
 * least-recently-used eviction per shard, and counts every byte an entry holds.
 *
 * Layout: SHARDS shards picked by the top bits of a 64-bit hash of the query (seeded per
 * cache from its address, so that which queries collide differs between processes); in each,
 * a fixed power-of-two table of hash chains, sized from the shard's budget when the cache is
 * made, and one list from most to least recently used. An entry is one allocation: the
 * bookkeeping, the query, then the result. A hit copies the result into the caller's buffer
 * under the shard's lock (an entry may be evicted as soon as the lock is released).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "sql_cache.h"
#include "sql_obfuscate.h"

#define SHARDS 16
/* What malloc keeps beside each block, counted in the bound with the entry itself. */
#define MALLOC_OVERHEAD 16
/* Table slots per byte of a shard's budget: one per 256 bytes (an entry with a short query
 * takes about 200). */
#define BYTES_PER_SLOT 256

struct entry {
    struct entry *chain; /* next in the table slot */
    struct entry *newer, *older;
    uint64_t hash;
    uint32_t qlen, rlen;
    int status;   /* O2D_OK or O2D_ERR_INVALID */
    char bytes[]; /* the query, then the result */
};

struct shard {
    pthread_mutex_t mu;
    struct entry **table;
    size_t mask;   /* table slots - 1 */
    size_t budget; /* bytes this shard may hold, its table included */
    size_t bytes;
    struct entry *newest, *oldest;
    uint64_t hits, misses, evictions, entries;
};

struct sql_cache {
    uint64_t seed;
    size_t max_entry; /* an entry above this is not kept */
    struct shard shards[SHARDS];
};

static uint64_t hash_query(uint64_t seed, const char *p, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) {
        w |= (uint64_t)(uint8_t)p[i] << (8 * i);
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
}

static size_t entry_bytes(size_t qlen, size_t rlen)
{
    return sizeof(struct entry) + qlen + rlen + MALLOC_OVERHEAD;
}

int sql_cache_new(size_t max_bytes, struct sql_cache **out)
{
    *out = NULL;
    if (max_bytes < SQL_CACHE_MIN_BYTES) {
        return O2D_ERR_INVALID;
    }
    struct sql_cache *c = o2d_calloc(1, sizeof(*c));
    if (c == NULL) {
        return O2D_ERR_NOMEM;
    }
    c->seed = hash_query((uint64_t)(uintptr_t)c, (const char *)&c, sizeof(c));
    size_t budget = max_bytes / SHARDS;
    c->max_entry = budget / 8;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &c->shards[i];
        size_t slots = 16;
        while (slots * BYTES_PER_SLOT < budget) {
            slots *= 2;
        }
        s->table = o2d_calloc(slots, sizeof(*s->table));
        if (s->table == NULL) {
            for (int j = 0; j < i; j++) {
                pthread_mutex_destroy(&c->shards[j].mu);
                o2d_free(c->shards[j].table);
            }
            o2d_free(c);
            return O2D_ERR_NOMEM;
        }
        pthread_mutex_init(&s->mu, NULL);
        s->mask = slots - 1;
        s->budget = budget;
        s->bytes = slots * sizeof(*s->table);
    }
    *out = c;
    return O2D_OK;
}

void sql_cache_free(struct sql_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &c->shards[i];
        for (struct entry *e = s->newest; e != NULL;) {
            struct entry *next = e->older;
            o2d_free(e);
            e = next;
        }
        o2d_free(s->table);
        pthread_mutex_destroy(&s->mu);
    }
    o2d_free(c);
}

static struct shard *shard_of(struct sql_cache *c, uint64_t h)
{
    return &c->shards[h >> 60];
}

static struct entry **slot_of(struct shard *s, uint64_t h)
{
    return &s->table[h & s->mask];
}

static struct entry *find(struct shard *s, uint64_t h, const char *sql, size_t len)
{
    for (struct entry *e = *slot_of(s, h); e != NULL; e = e->chain) {
        if (e->hash == h && e->qlen == len && memcmp(e->bytes, sql, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static void unlink_lru(struct shard *s, struct entry *e)
{
    if (e->newer != NULL) {
        e->newer->older = e->older;
    } else {
        s->newest = e->older;
    }
    if (e->older != NULL) {
        e->older->newer = e->newer;
    } else {
        s->oldest = e->newer;
    }
}

static void push_newest(struct shard *s, struct entry *e)
{
    e->newer = NULL;
    e->older = s->newest;
    if (s->newest != NULL) {
        s->newest->newer = e;
    } else {
        s->oldest = e;
    }
    s->newest = e;
}

static void evict_oldest(struct shard *s)
{
    struct entry *e = s->oldest;
    unlink_lru(s, e);
    struct entry **pp = slot_of(s, e->hash);
    while (*pp != e) {
        pp = &(*pp)->chain;
    }
    *pp = e->chain;
    s->bytes -= entry_bytes(e->qlen, e->rlen);
    s->entries--;
    s->evictions++;
    o2d_free(e);
}

/* Keeps (sql, result) in s unless another thread did meanwhile; takes the shard's lock. */
static void keep(struct shard *s, uint64_t h, const char *sql, size_t len, int status,
                 const uint8_t *res, size_t rlen)
{
    size_t need = entry_bytes(len, rlen);
    struct entry *e = o2d_malloc(need - MALLOC_OVERHEAD);
    if (e == NULL) {
        return; /* a cache that cannot grow only costs the next call a tokenizer run */
    }
    e->hash = h;
    e->qlen = (uint32_t)len;
    e->rlen = (uint32_t)rlen;
    e->status = status;
    memcpy(e->bytes, sql, len);
    if (rlen > 0) {
        memcpy(e->bytes + len, res, rlen);
    }
    pthread_mutex_lock(&s->mu);
    if (find(s, h, sql, len) != NULL) {
        pthread_mutex_unlock(&s->mu);
        o2d_free(e);
        return;
    }
    while (s->bytes + need > s->budget && s->oldest != NULL) {
        evict_oldest(s);
    }
    struct entry **slot = slot_of(s, h);
    e->chain = *slot;
    *slot = e;
    push_newest(s, e);
    s->bytes += need;
    s->entries++;
    pthread_mutex_unlock(&s->mu);
}

int sql_cache_obfuscate(struct sql_cache *c, const char *sql, size_t len, struct o2d_buf *out)
{
    if (c == NULL || len == 0 || len > SQL_CACHE_MAX_QUERY) {
        return sql_obfuscate(sql, len, out);
    }
    uint64_t h = hash_query(c->seed, sql, len);
    struct shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    struct entry *e = find(s, h, sql, len);
    if (e != NULL) {
        s->hits++;
        if (s->newest != e) {
            unlink_lru(s, e);
            push_newest(s, e);
        }
        int rv = e->status;
        if (rv == O2D_OK) {
            rv = o2d_buf_append(out, e->bytes + len, e->rlen);
        }
        pthread_mutex_unlock(&s->mu);
        return rv;
    }
    s->misses++;
    pthread_mutex_unlock(&s->mu);

    size_t start = out->len;
    int rv = sql_obfuscate(sql, len, out);
    size_t rlen = rv == O2D_OK ? out->len - start : 0;
    if ((rv == O2D_OK || rv == O2D_ERR_INVALID) && entry_bytes(len, rlen) <= c->max_entry) {
        /* nothing written (a refusal): out->data may still be NULL */
        keep(s, h, sql, len, rv, rlen > 0 ? out->data + start : NULL, rlen);
    }
    return rv;
}

void sql_cache_get_counters(struct sql_cache *c, struct sql_cache_counters *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; c != NULL && i < SHARDS; i++) {
        struct shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        out->hits += s->hits;
        out->misses += s->misses;
        out->evictions += s->evictions;
        out->entries += s->entries;
        out->bytes += s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
}
