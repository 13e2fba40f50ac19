/*
 * build.c: the body builder of the delivery layer (delivery.h, dlv_build_bodies), pure:
 * items in, bodies out through a callback, no thread and no network. Compression lives here
 * too, so that every destination compresses in one place: gzip (zlib) or zstd (libzstd, one
 * frame with its content size), at the destination's level, with the compressors' state
 * kept per builder (struct dlv_codec) rather than made again for every body.
 *
 * Holds (queue.h): a body takes one on each item it carries; a half made here holds its
 * parent, and the builder holds the half while it builds it, then lets go: a half that went
 * into no body is freed then, one in a body lives as long as the body holds it.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "delivery.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_time.h"

#define BUILD_STACK   64
#define BUILD_RAW_MAX (256u * 1024 * 1024) /* one body before compression */

/* Scratch buffers are kept between bodies up to this capacity each (a larger one is freed
 * after its body), and freed once the destination has been idle this long. */
#define BUILD_SCRATCH_KEEP    (16u * 1024 * 1024)
#define BUILD_SCRATCH_IDLE_MS 2000

/* What a builder keeps between bodies: each compressor's state, made at first use and reset
 * for the next body (zlib's deflate state is about 256 KiB, a zstd context about 1 MiB at
 * level 1: made once per builder, not once per body), and the scratch buffers of a
 * compressed body while it builds (struct dlv_scratch; a body keeps only an exact copy of
 * the compressed bytes, so a queued body holds no room for the compressor's bound). */
struct dlv_codec {
    z_stream zs;
    int zs_level; /* 0: zs not initialised */
    ZSTD_CCtx *zc;
    struct dlv_scratch s;
};

struct dlv_codec *dlv_codec_new(void)
{
    return o2d_calloc(1, sizeof(struct dlv_codec));
}

void dlv_codec_free(struct dlv_codec *c)
{
    if (c == NULL) {
        return;
    }
    if (c->zs_level != 0) {
        deflateEnd(&c->zs);
    }
    ZSTD_freeCCtx(c->zc);
    dlv_scratch_idle(&c->s, INT64_MAX);
    o2d_free(c);
}

static int scratch_empty(const struct dlv_scratch *s)
{
    return s->raw.data == NULL && s->out.data == NULL;
}

int64_t dlv_codec_idle(struct dlv_codec *c, int64_t now_ms)
{
    if (c == NULL || scratch_empty(&c->s)) {
        return INT64_MAX;
    }
    dlv_scratch_idle(&c->s, now_ms);
    return scratch_empty(&c->s) ? INT64_MAX : c->s.last_use_ms + BUILD_SCRATCH_IDLE_MS;
}

void dlv_scratch_idle(struct dlv_scratch *s, int64_t now_ms)
{
    if (!scratch_empty(s) &&
        (now_ms == INT64_MAX || now_ms - s->last_use_ms >= BUILD_SCRATCH_IDLE_MS)) {
        o2d_buf_cleanup(&s->raw);
        o2d_buf_cleanup(&s->out);
    }
}

/* A scratch buffer made ready for one body: empty, at most max bytes. */
static struct o2d_buf *scratch(struct o2d_buf *b, size_t max)
{
    if (b->cap > max) {
        o2d_buf_cleanup(b); /* the capacity may not pass the body's limit */
    }
    b->len = 0;
    b->max = max;
    return b;
}

/* After a body: a scratch buffer grown past what is kept goes back. */
static void scratch_done(struct o2d_buf *b)
{
    b->len = 0;
    if (b->cap > BUILD_SCRATCH_KEEP) {
        o2d_buf_cleanup(b);
    }
}

/* ---- body buffers (dlv_pool) ---- */

#define POOL_KEEP_MAX (16u * 1024 * 1024)
#define POOL_IDLE_MS  2000
#define POOL_ROUND    (64u * 1024)

struct dlv_pool {
    pthread_mutex_t mu;
    struct {
        uint8_t *data;
        size_t cap;
        int64_t put_ms;
    } b[DLV_POOL_KEEP_MAX];
    size_t n;
    size_t keep;
};

struct dlv_pool *dlv_pool_new(size_t keep)
{
    struct dlv_pool *p = o2d_calloc(1, sizeof(*p));
    if (p != NULL) {
        pthread_mutex_init(&p->mu, NULL);
        p->keep = keep < 1 ? 1 : keep > DLV_POOL_KEEP_MAX ? DLV_POOL_KEEP_MAX : keep;
    }
    return p;
}

void dlv_pool_free(struct dlv_pool *p)
{
    if (p == NULL) {
        return;
    }
    (void)dlv_pool_idle(p, INT64_MAX);
    pthread_mutex_destroy(&p->mu);
    o2d_free(p);
}

/* Takes entry i out (under mu). */
static uint8_t *pool_take(struct dlv_pool *p, size_t i, size_t *cap)
{
    uint8_t *data = p->b[i].data;
    *cap = p->b[i].cap;
    p->b[i] = p->b[--p->n];
    return data;
}

uint8_t *dlv_pool_get(struct dlv_pool *p, size_t want, size_t max, size_t *cap)
{
    *cap = 0;
    if (p == NULL) {
        uint8_t *data = want > 0 ? o2d_malloc(want) : NULL;
        *cap = data != NULL ? want : 0;
        return data;
    }
    size_t fit = SIZE_MAX, big = SIZE_MAX;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++) {
        size_t c = p->b[i].cap;
        if (c > max) {
            continue;
        }
        if (c >= want && (fit == SIZE_MAX || c < p->b[fit].cap)) {
            fit = i;
        }
        if (big == SIZE_MAX || c > p->b[big].cap) {
            big = i;
        }
    }
    uint8_t *data = NULL;
    size_t have = 0;
    if (want > 0 && fit != SIZE_MAX) {
        data = pool_take(p, fit, &have);
    } else if (big != SIZE_MAX) {
        data = pool_take(p, big, &have);
    }
    pthread_mutex_unlock(&p->mu);
    if (want == 0 || have >= want) {
        *cap = have;
        return data;
    }
    /* Grown (a mapping is moved, not copied) or new, with room for the next body's being a
     * little larger: an eighth more, in 64 KiB steps, within max. */
    size_t room = want + want / 8;
    room = room / POOL_ROUND < (SIZE_MAX - POOL_ROUND) / POOL_ROUND
               ? (room + POOL_ROUND - 1) / POOL_ROUND * POOL_ROUND
               : want;
    if (room > max) {
        room = want;
    }
    uint8_t *grown = o2d_realloc(data, room);
    if (grown == NULL) {
        o2d_free(data);
        return NULL;
    }
    *cap = room;
    return grown;
}

void dlv_pool_put(struct dlv_pool *p, uint8_t *data, size_t cap)
{
    if (data == NULL) {
        return;
    }
    if (p == NULL || cap > POOL_KEEP_MAX) {
        o2d_free(data);
        return;
    }
    int64_t now = o2d_now_ms();
    pthread_mutex_lock(&p->mu);
    if (p->n == p->keep) {
        /* full: the smallest of the kept ones and this one goes */
        size_t small = 0;
        for (size_t i = 1; i < p->n; i++) {
            if (p->b[i].cap < p->b[small].cap) {
                small = i;
            }
        }
        if (p->b[small].cap < cap) {
            uint8_t *old = p->b[small].data;
            p->b[small].data = data;
            p->b[small].cap = cap;
            p->b[small].put_ms = now;
            data = old;
        }
    } else {
        p->b[p->n].data = data;
        p->b[p->n].cap = cap;
        p->b[p->n].put_ms = now;
        p->n++;
        data = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    o2d_free(data);
}

int64_t dlv_pool_idle(struct dlv_pool *p, int64_t now_ms)
{
    if (p == NULL) {
        return INT64_MAX;
    }
    int64_t next = INT64_MAX;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n;) {
        if (now_ms == INT64_MAX || now_ms - p->b[i].put_ms >= POOL_IDLE_MS) {
            o2d_free(p->b[i].data);
            p->b[i] = p->b[--p->n];
            continue;
        }
        if (p->b[i].put_ms + POOL_IDLE_MS < next) {
            next = p->b[i].put_ms + POOL_IDLE_MS;
        }
        i++;
    }
    pthread_mutex_unlock(&p->mu);
    return next;
}

const char *dlv_compression_name(enum dlv_compression c)
{
    return c == DLV_COMPRESS_GZIP ? "gzip" : c == DLV_COMPRESS_ZSTD ? "zstd" : "none";
}

int dlv_compression_level_ok(enum dlv_compression c, int level)
{
    switch (c) {
    case DLV_COMPRESS_GZIP:
        return level >= 1 && level <= 9;
    case DLV_COMPRESS_ZSTD:
        return level >= 1 && level <= DLV_ZSTD_LEVEL_MAX;
    default:
        return 0;
    }
}

static int gzip_with(struct dlv_codec *c, int level, const uint8_t *in, size_t len,
                     struct o2d_buf *out)
{
    if (len > 0x7fffffffu) {
        return O2D_ERR_TOO_LARGE;
    }
    z_stream *zs = &c->zs;
    if (c->zs_level != level) {
        if (c->zs_level != 0) {
            deflateEnd(zs);
            c->zs_level = 0;
        }
        memset(zs, 0, sizeof(*zs));
        if (deflateInit2(zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            return O2D_ERR_NOMEM;
        }
        c->zs_level = level;
    } else if (deflateReset(zs) != Z_OK) {
        return O2D_ERR_NOMEM;
    }
    size_t room = out->max - out->len;
    size_t want = deflateBound(zs, (uLong)len);
    if (want > room) {
        want = room;
    }
    int rv = o2d_buf_reserve(out, want);
    if (rv != O2D_OK) {
        return rv;
    }
    zs->next_in = (Bytef *)in;
    zs->avail_in = (uInt)len;
    zs->next_out = out->data + out->len;
    zs->avail_out = (uInt)want;
    if (deflate(zs, Z_FINISH) != Z_STREAM_END) {
        return O2D_ERR_TOO_LARGE; /* the output did not fit in what the limit leaves */
    }
    out->len += want - zs->avail_out;
    return O2D_OK;
}

static int zstd_with(struct dlv_codec *c, int level, const uint8_t *in, size_t len,
                     struct o2d_buf *out)
{
    if (c->zc == NULL) {
        c->zc = ZSTD_createCCtx();
        if (c->zc == NULL) {
            return O2D_ERR_NOMEM;
        }
    }
    size_t room = out->max - out->len;
    size_t want = ZSTD_compressBound(len);
    if (want > room) {
        want = room;
    }
    int rv = o2d_buf_reserve(out, want);
    if (rv != O2D_OK) {
        return rv;
    }
    /* One frame with its content size, as ZSTD_compress writes it. */
    size_t n = ZSTD_compressCCtx(c->zc, out->data + out->len, want, in, len, level);
    if (ZSTD_isError(n)) {
        /* dstSize_tooSmall: the output did not fit in what the limit leaves; zstd fails
         * otherwise only for lack of memory */
        return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? O2D_ERR_TOO_LARGE
                                                                   : O2D_ERR_NOMEM;
    }
    out->len += n;
    return O2D_OK;
}

int dlv_compress(struct dlv_codec *c, enum dlv_compression kind, int level, const uint8_t *in,
                 size_t len, struct o2d_buf *out)
{
    struct dlv_codec *own = NULL;
    if (c == NULL) {
        own = dlv_codec_new();
        if (own == NULL) {
            return O2D_ERR_NOMEM;
        }
        c = own;
    }
    if (level <= 0) {
        level = DLV_LEVEL_DEFAULT;
    }
    int rv = kind == DLV_COMPRESS_ZSTD ? zstd_with(c, level, in, len, out)
                                       : gzip_with(c, level, in, len, out);
    dlv_codec_free(own);
    return rv;
}

int dlv_gzip(const uint8_t *in, size_t len, struct o2d_buf *out)
{
    return dlv_compress(NULL, DLV_COMPRESS_GZIP, 1, in, len, out);
}

void dlv_body_free(struct dlv_body *b)
{
    if (b == NULL) {
        return;
    }
    o2d_free(b->data);
    o2d_free(b->items);
    o2d_free(b);
}

void dlv_headers_add(struct dlv_headers *h, const char *line, int copy)
{
    if (line == NULL || line[0] == '\0' || h->n >= DLV_HEADERS_MAX) {
        return;
    }
    if (!copy) {
        h->line[h->n++] = line;
        return;
    }
    size_t len = strlen(line);
    if (len + 1 > sizeof(h->buf) - h->used) {
        return;
    }
    memcpy(h->buf + h->used, line, len + 1);
    h->line[h->n++] = h->buf + h->used;
    h->used += len + 1;
}

void dlv_headers_addf(struct dlv_headers *h, const char *fmt, ...)
{
    if (h->n >= DLV_HEADERS_MAX || h->used >= sizeof(h->buf)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(h->buf + h->used, sizeof(h->buf) - h->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 1 > sizeof(h->buf) - h->used) {
        h->buf[h->used] = '\0';
        return;
    }
    h->line[h->n++] = h->buf + h->used;
    h->used += (size_t)n + 1;
}

static size_t cost_of(const struct dlv_build *b, const struct dlv_item *it)
{
    return b->type->item_cost != NULL ? b->type->item_cost(b->ctx, it) : dlv_item_body_len(it);
}

static size_t units_of(struct dlv_item *const *items, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        u += items[i]->count;
    }
    return u;
}

static void leave_out(struct dlv_build *b, struct dlv_item *const *items, size_t n, int reason)
{
    size_t units = units_of(items, n);
    if (reason == DLV_DROP_TOO_LARGE) {
        b->too_large += units;
    } else {
        b->failed += units;
    }
    if (b->left_out != NULL) {
        for (size_t i = 0; i < n; i++) {
            b->left_out(b->emit_ctx, items[i], reason);
        }
    }
}

static int emit_body(struct dlv_build *b, struct dlv_item *const *items, size_t n,
                     struct o2d_buf *sent, int copy, size_t raw_len)
{
    struct dlv_body *body = o2d_calloc(1, sizeof(*body));
    struct dlv_item **arr = o2d_malloc(n * sizeof(*arr));
    /* From a scratch buffer: a copy of its bytes (the codec keeps the buffer), in a buffer of
     * the pool's sized for it. */
    size_t cap = 0;
    uint8_t *data = copy && sent->len > 0 ? dlv_pool_get(b->pool, sent->len, SIZE_MAX, &cap) : NULL;
    if (body == NULL || arr == NULL || (copy && sent->len > 0 && data == NULL)) {
        o2d_free(body);
        o2d_free(arr);
        o2d_free(data);
        leave_out(b, items, n, DLV_DROP_RETRIES_EXHAUSTED);
        return O2D_ERR_NOMEM;
    }
    memcpy(arr, items, n * sizeof(*arr));
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(&arr[i]->refs, 1); /* the body's hold */
    }
    if (copy) {
        if (data != NULL) {
            memcpy(data, sent->data, sent->len);
        }
        body->data = data;
        body->cap = cap;
        body->len = sent->len;
    } else {
        body->cap = sent->cap;
        body->data = o2d_buf_take(sent, &body->len);
    }
    body->raw_len = raw_len;
    body->items = arr;
    body->n = n;
    body->units = units_of(items, n);
    b->emit(b->emit_ctx, body); /* the items may be settled and gone once this is called */
    return O2D_OK;
}

static int build_range(struct dlv_build *b, struct dlv_item *const *items, size_t n);

/* An item alone too large for a body: its halves, or left out. */
static int split_one(struct dlv_build *b, struct dlv_item *it)
{
    struct dlv_item *h[2] = {NULL, NULL};
    int rv = b->type->split != NULL ? b->type->split(it, &h[0], &h[1]) : O2D_ERR_TOO_LARGE;
    if (rv == O2D_ERR_TOO_LARGE || rv == O2D_ERR_INVALID) {
        leave_out(b, &it, 1, DLV_DROP_TOO_LARGE);
        return O2D_OK;
    }
    if (rv != O2D_OK) {
        leave_out(b, &it, 1, DLV_DROP_RETRIES_EXHAUSTED);
        return rv;
    }
    /* Both halves hold `it` before either is built: a body may settle one at once. */
    for (int i = 0; i < 2; i++) {
        h[i]->parent = it;
        h[i]->id = it->id;
        h[i]->origin = it->origin;
        atomic_init(&h[i]->refs, 1); /* the builder's hold */
        atomic_fetch_add(&it->refs, 1);
    }
    int out = O2D_OK;
    for (int i = 0; i < 2; i++) {
        int r = build_range(b, &h[i], 1);
        if (out == O2D_OK) {
            out = r;
        }
        /* Let go: freed now if no body took it (split further, or left out). `it` is held
         * by whoever passed it here, so this never settles a queue item. */
        (void)dlv_item_release(h[i]);
    }
    return out;
}

/* items[0..n) into one body, or halves of it until each fits. */
static int build_range(struct dlv_build *b, struct dlv_item *const *items, size_t n)
{
    int compress = b->compression != DLV_COMPRESS_NONE;
    size_t raw_max = b->max_raw > 0 && b->max_raw < BUILD_RAW_MAX ? b->max_raw : BUILD_RAW_MAX;
    struct dlv_codec *c = compress ? b->codec : NULL;
    struct o2d_buf own_raw;
    struct o2d_buf own_gz;
    struct o2d_buf *raw = &own_raw;
    struct o2d_buf *gz = &own_gz;
    if (c != NULL) {
        raw = scratch(&c->s.raw, raw_max);
        gz = scratch(&c->s.out, b->max_body);
        c->s.last_use_ms = o2d_now_ms();
    } else {
        o2d_buf_init(raw, compress ? raw_max : b->max_body);
        o2d_buf_init(gz, b->max_body);
        if (!compress) {
            /* the body is this buffer: one of the pool's, whose pages are in already */
            raw->data = dlv_pool_get(b->pool, 0, raw->max, &raw->cap);
        }
    }
    int rv = b->type->encode(b->ctx, items, n, raw);
    size_t raw_len = raw->len;
    if (rv == O2D_OK && compress) {
        rv = dlv_compress(c, b->compression, b->level, raw->data, raw->len, gz);
    }
    int emitted = 0; /* emit_body counts what it leaves out itself */
    if (rv == O2D_OK) {
        rv = emit_body(b, items, n, compress ? gz : raw, c != NULL, raw_len);
        emitted = 1;
    }
    if (c != NULL) {
        scratch_done(raw);
        scratch_done(gz);
    } else {
        /* what no body took (an error, or a body built again in halves) */
        dlv_pool_put(b->pool, raw->data, raw->cap);
        o2d_buf_init(raw, 0);
        o2d_buf_cleanup(gz);
    }
    if (emitted) {
        return rv;
    }
    if (rv != O2D_ERR_TOO_LARGE) {
        leave_out(b, items, n, DLV_DROP_RETRIES_EXHAUSTED);
        return rv;
    }
    if (n > 1) {
        size_t h = n / 2;
        int rv1 = build_range(b, items, h);
        int rv2 = build_range(b, items + h, n - h);
        return rv1 != O2D_OK ? rv1 : rv2;
    }
    return split_one(b, items[0]);
}

/* Packs one group in order: a body takes items while their cost fits (at least one). */
static int pack(struct dlv_build *b, struct dlv_item *const *items, size_t n)
{
    size_t limit =
        b->compression != DLV_COMPRESS_NONE && b->batch_bytes > 0 ? b->batch_bytes : b->max_body;
    size_t room = limit > b->type->body_overhead ? limit - b->type->body_overhead : 0;
    int rv = O2D_OK;
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        size_t size = 0;
        while (i + k < n) {
            size_t c = cost_of(b, items[i + k]);
            if (k > 0 && (size + c > room || (b->type->max_items > 0 && k >= b->type->max_items))) {
                break;
            }
            size += c;
            k++;
        }
        int r = build_range(b, items + i, k);
        if (rv == O2D_OK) {
            rv = r;
        }
        i += k;
    }
    return rv;
}

static int build_groups(struct dlv_build *b, struct dlv_item *const *items, size_t n);

int dlv_build_bodies(struct dlv_build *b, struct dlv_item *const *items, size_t n)
{
    if (n == 0) {
        return O2D_OK;
    }
    if (b->codec != NULL || b->compression == DLV_COMPRESS_NONE) {
        return build_groups(b, items, n);
    }
    /* No builder's codec: one for this call, shared by its bodies. Without memory for it,
     * each body makes its own (dlv_compress with NULL). */
    b->codec = dlv_codec_new();
    int rv = build_groups(b, items, n);
    dlv_codec_free(b->codec);
    b->codec = NULL;
    return rv;
}

static int build_groups(struct dlv_build *b, struct dlv_item *const *items, size_t n)
{
    if (!b->type->group_by_head) {
        return pack(b, items, n);
    }
    /* Groups of equal headers, in order of first appearance, each packed on its own. */
    struct dlv_item *stack_g[BUILD_STACK];
    uint8_t stack_d[BUILD_STACK];
    struct dlv_item **g = n <= BUILD_STACK ? stack_g : o2d_malloc(n * sizeof(*g));
    uint8_t *done = n <= BUILD_STACK ? stack_d : o2d_malloc(n);
    int rv = O2D_OK;
    if (g == NULL || done == NULL) {
        leave_out(b, items, n, DLV_DROP_RETRIES_EXHAUSTED);
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    memset(done, 0, n);
    for (size_t first = 0; first < n; first++) {
        if (done[first]) {
            continue;
        }
        const struct dlv_item *f = items[first];
        size_t k = 0;
        for (size_t i = first; i < n; i++) {
            const struct dlv_item *it = items[i];
            if (!done[i] && it->head_len == f->head_len &&
                memcmp(it->data, f->data, f->head_len) == 0) {
                g[k++] = items[i];
                done[i] = 1;
            }
        }
        int r = pack(b, g, k);
        if (rv == O2D_OK) {
            rv = r;
        }
    }
out:
    if (g != stack_g) {
        o2d_free(g);
    }
    if (done != stack_d) {
        o2d_free(done);
    }
    return rv;
}
