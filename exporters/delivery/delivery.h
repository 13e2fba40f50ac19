/*
 * delivery.h: the one delivery layer under every destination (APM traces and stats, to the
 * intake or to a local Agent; LLM Observability).
 *
 * A destination is an intake endpoint. It supplies only what is its own, in a const table
 * (struct dlv_dest_type): how to encode a batch of items into one body (a pure function),
 * optionally how to split an item too large for a body, the headers of a body, how its
 * intake's answers map to OK / RETRY / DROP, and . Its limits, its URL and, for a
 * destination fed from inside, the tick that produces its items (stats buckets, the LLM Obs
 * trace buffer) are configuration (struct dlv_dest_config).
 *
 * Everything else is here, written once: a queue bounded in bytes (queue.h; the in-memory
 * queue by default), sender threads (builders, dlv_dest_config.builders) that batch items into
 * bodies within the destination's limit (dlv_build_bodies: grouping, packing, compressing in one
 * place, halving a batch or splitting an item whose body comes out too large), sending
 * through the shared HTTP client and its retry table, building a body again in halves when
 * the intake answers 413, the accounting (sent / retried / dropped by reason, queue items
 * and bytes, the shutdown "undelivered" fields, the /metrics series), a flush that honours
 * one deadline, and each item's identity from ingest to delivery for observers (the
 * preview page).
 *
 * Threads: items are produced on receiver threads (dlv_dest_enqueue) or a sender thread
 * (tick, one at a time); each sender takes its own batch and builds and posts its bodies
 * (encoding and compression run on as many threads as there are batches to send, up to
 * `builders`); bodies complete on the HTTP client's thread; counters are atomics; the queue
 * is touched under the destination's lock only.
 */
#ifndef O2D_DELIVERY_H
#define O2D_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "http_client.h"
#include "o2d_buf.h"
#include "queue.h"

#define DLV_DROP_REASONS_MAX 6
#define DLV_HEADERS_MAX      16

/* Why items were not delivered; closed set, safe as a metric label (dlv_drop_reason_name). */
enum dlv_drop_reason {
    DLV_DROP_QUEUE_FULL = 0,        /* refused before queuing: the sender was told to retry */
    DLV_DROP_REJECTED_4XX = 1,      /* the intake refused the body (403, 400...) */
    DLV_DROP_RETRIES_EXHAUSTED = 2, /* still failing after max_elapsed_ms, or no memory */
    DLV_DROP_TOO_LARGE = 3,         /* one item alone does not fit in a body */
    DLV_DROP_SHUTDOWN = 4,          /* still queued or in flight when the destination stopped */
    DLV_DROP_N
};
const char *dlv_drop_reason_name(int reason);

/* The last failed attempt to send a body (for the preview's status page): refused, given up,
 * or one that is being retried (a 5xx, 429, timeout or connection error); the HTTP status and
 * the start of the answer's body, as the intake wrote it. Request headers (the API key) are
 * never kept. */
#define DLV_ERROR_EXCERPT 256
struct dlv_last_error {
    int64_t at_ms;       /* wall clock, ms since the epoch; 0: none since start */
    const char *what;    /* static: "rejected", "gave up after retries", "retrying" */
    long http_status;    /* 0: no HTTP answer (a transport error) */
    char transport[128]; /* the transport error, "" when an answer arrived */
    char body[DLV_ERROR_EXCERPT];
    size_t body_len;
};

/*
 * What one output did since start: a stream of items to one destination (or the debug
 * exporter). Every string is static and from a closed set, so the metrics server uses it as
 * a label as it is.
 */
struct dlv_metrics {
    const char *name;       /* "datadog_traces", "datadog_stats", "llmobs", "debug" */
    uint64_t sent_items;    /* delivered: accepted by the intake (or, debug: shown) */
    uint64_t sent_payloads; /* request bodies accepted by the intake */
    uint64_t sent_bytes;    /* their bytes, as sent (compressed when they are) */
    uint64_t retried_items; /* items times the retries they needed */
    size_t n_drops;         /* entries of drops[] */
    struct {
        const char *reason; /* dlv_drop_reason_name() */
        uint64_t items;
    } drops[DLV_DROP_REASONS_MAX];
    int has_queue;                 /* the fields below mean something */
    uint64_t queue_items;          /* units waiting, being built into bodies or in flight */
    uint64_t queue_bytes;          /* the bytes counted against the queue's budget */
    uint64_t queue_capacity_bytes; /* that budget */
    int has_disk;                  /* a disk queue: the fields below mean something */
    uint64_t disk_bytes;           /* segment bytes on disk */
    uint64_t disk_records;         /* records not yet delivered or dropped */
    double disk_oldest_age_s;      /* age of the oldest of them; 0: none */
    uint64_t disk_replayed;        /* records found at start, sent again */
    uint64_t disk_corrupt;         /* records skipped at start: bad checksum or length */
    uint64_t disk_dropped_oldest;  /* units dropped by when_full: drop_oldest */
    uint64_t disk_write_errors;    /* appends refused: a write or sync failed */
    uint64_t disk_batches;         /* group commits */
    uint64_t disk_batched_appends; /* appends they carried */
    double disk_sync_seconds;      /* time in fdatasync, summed */
    struct dlv_last_error last_error;
};

/* How a destination's bodies are compressed (its Content-Encoding). Levels: gzip 1-9, zstd
 * 1-DLV_ZSTD_LEVEL_MAX; 0 stands for DLV_LEVEL_DEFAULT. */
enum dlv_compression {
    DLV_COMPRESS_NONE = 0,
    DLV_COMPRESS_GZIP = 1,
    DLV_COMPRESS_ZSTD = 2,
};
#define DLV_LEVEL_DEFAULT  1 /* the Agent's writers: gzip.BestSpeed, zstd.BestSpeed */
#define DLV_ZSTD_LEVEL_MAX 19
/* "none", "gzip", "zstd": the Content-Encoding value and the config's word. */
const char *dlv_compression_name(enum dlv_compression c);
/* Whether `level` is one the compression takes (none takes none). */
int dlv_compression_level_ok(enum dlv_compression c, int level);

/* A builder's compressors (zlib's and zstd's state), kept between bodies; one per thread
 * that builds. dlv_codec_free(NULL) is a no-op. */
struct dlv_codec;
struct dlv_codec *dlv_codec_new(void);
void dlv_codec_free(struct dlv_codec *c);
/* The scratch buffers of compressed bodies (the encoded bytes, the compressor's output):
 * each codec keeps its own set between builds (each buffer kept up to a bound, build.c), so
 * that their pages are touched once instead of faulted in again for every body. One set
 * lent by the destination to whichever sender built next left every sender but one with
 * buffers of its own, made and faulted in for each body, as soon as two built at once. */
struct dlv_scratch {
    struct o2d_buf raw;
    struct o2d_buf out;
    int64_t last_use_ms;
};
/* Frees the codec's scratch buffers once unused for 2 s (at once with now_ms INT64_MAX).
 * Returns when a later call may free them (INT64_MAX: it holds none). NULL codec: no-op. */
int64_t dlv_codec_idle(struct dlv_codec *c, int64_t now_ms);
/* Frees s's buffers once unused for a while (the destination is idle), or at once with
 * now_ms INT64_MAX. */
void dlv_scratch_idle(struct dlv_scratch *s, int64_t now_ms);
/* Compresses in[0..len) into out, never past out->max (O2D_ERR_TOO_LARGE then), with the
 * codec's state (NULL: a state made for this call). level <= 0: DLV_LEVEL_DEFAULT. */
int dlv_compress(struct dlv_codec *c, enum dlv_compression kind, int level, const uint8_t *in,
                 size_t len, struct o2d_buf *out);
/* gzip (level 1) of in[0..len) into out, never past out->max: O2D_ERR_TOO_LARGE then. */
int dlv_gzip(const uint8_t *in, size_t len, struct o2d_buf *out);

/*
 * Body buffers kept for the next bodies (a destination has one): a body of a megabyte or more
 * is a mapping of its own (collector/main.c fixes malloc's mmap threshold at 1 MiB), and
 * made new for every body its pages were faulted in again each time (11 % of the CPU with
 * LLM Obs bodies of 5 MiB). A body's buffer comes from the pool when one is free and goes back
 * once the HTTP client is done with it. The pool keeps at most `keep` buffers (the
 * destination's max_inflight, at most DLV_POOL_KEEP_MAX: what its bodies in flight held at
 * once anyway; 2 of 4 let half of a burst's bodies be mapped anew) of up to 16 MiB each, and
 * frees them after 2 s unused, so an idle process shrinks back. Any thread.
 */
#define DLV_POOL_KEEP_MAX 8
struct dlv_pool;
struct dlv_pool *dlv_pool_new(size_t keep);
void dlv_pool_free(struct dlv_pool *p); /* and the buffers it holds; NULL: no-op */
/* A buffer of at least `want` and at most `max` bytes (o2d_malloc'd storage; *cap its size):
 * the smallest free one that is large enough, else the largest grown to it, else a new one
 * with some room to spare. want 0: the largest free one as it is, or NULL (*cap 0) when none
 * is. NULL pool: a plain allocation of want bytes. NULL when out of memory. */
uint8_t *dlv_pool_get(struct dlv_pool *p, size_t want, size_t max, size_t *cap);
/* Gives a buffer back (kept, or freed when the pool is full or it is too large). */
void dlv_pool_put(struct dlv_pool *p, uint8_t *data, size_t cap);
/* Frees what was unused for 2 s (all with now_ms INT64_MAX). Returns when the next call may
 * free something (INT64_MAX: nothing held). */
int64_t dlv_pool_idle(struct dlv_pool *p, int64_t now_ms);

/* One body built from items: what is sent, and what it settles when it completes. */
struct dlv_body {
    uint8_t *data; /* owned (o2d_malloc) */
    size_t cap;    /* the storage's size (0: len), for the pool it goes back to */
    size_t len;    /* as sent: compressed when the destination compresses */
    size_t raw_len;
    struct dlv_item **items; /* owned array; the items are the queue's, or split halves */
    size_t n;
    uint64_t units; /* the items' count summed */
};
void dlv_body_free(struct dlv_body *b); /* frees data and the array, not the items */

/* The headers of one body: "Name: value" lines; storage for values made up per body. */
struct dlv_headers {
    const char *line[DLV_HEADERS_MAX];
    size_t n;
    char buf[1024];
    size_t used;
};
/* Adds a line (NULL or "" is skipped); copied into h->buf when `copy`. */
void dlv_headers_add(struct dlv_headers *h, const char *line, int copy);
/* Adds "Name: value" formatted into h->buf; nothing when it does not fit. */
void dlv_headers_addf(struct dlv_headers *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct dlv_dest;

struct dlv_dest_type {
    const char *name;    /* output label: "datadog_traces", "datadog_stats", "llmobs" */
    const char *request; /* in log lines: "traces", "stats", "llmobs" */
    const char *unit;    /* what an item's count counts: "spans", "events", "payloads" */
    /* Bytes a body has besides its items, at most (before compression). */
    size_t body_overhead;
    /* Bytes an item adds to a body before compression; NULL: its body length. */
    size_t (*item_cost)(void *ctx, const struct dlv_item *it);
    /* Items of one body; 0: no limit. */
    size_t max_items;
    /* Only items with equal headers (dlv_item.data[0..head_len)) share a body. */
    int group_by_head;
    /* Appends the body for items[0..n) to out (pure; out->max is the limit: past it,
     * O2D_ERR_TOO_LARGE). */
    int (*encode)(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out);
    /* Splits an item in two halves (new items, counts split); O2D_ERR_TOO_LARGE when it
     * cannot be split (one unit), O2D_ERR_INVALID, O2D_ERR_NOMEM. NULL: never split. */
    int (*split)(const struct dlv_item *it, struct dlv_item **a, struct dlv_item **b);
    /* Adds the headers of the body holding items[0..n) (Content-Encoding is added here). */
    void (*headers)(void *ctx, struct dlv_item *const *items, size_t n, struct dlv_headers *h);
    /* The intake's answer -> OK / RETRY / DROP; NULL: http_verdict_of. */
    enum http_verdict (*verdict)(int status, long http_status);
};

struct dlv_dest_config {
    const char *url;        /* copied */
    const char *where;      /* what rejection logs name: the site or the Agent's URL; copied */
    size_t queue_max_bytes; /* items waiting + in flight + bodies in flight */
    size_t max_body;        /* the intake's limit on a body as sent */
    /* The intake's limit on a body before compression (compressed destinations); 0: none
     * of the intake's (the builder's own bound). */
    size_t max_raw;
    size_t batch_bytes; /* item bytes taken for one round of bodies; 0: max_body */
    enum dlv_compression compression;
    int compression_level; /* 0: DLV_LEVEL_DEFAULT */
    /* Threads that take batches off the queue and build (encode, compress) and post their
     * bodies (sending_queue.num_consumers); 0: 1. One of them also ticks. */
    int builders;
    int64_t flush_interval_ms; /* items wait at most this before a body goes; 0: at once */
    /* The producer of a destination fed from inside (stats buckets, the LLM Obs trace
     * buffer): called on the sender thread every tick_ms, and with `force` when a flush
     * asks; it queues items (dlv_dest_enqueue, dlv_dest_room). Returns 1 when it still holds
     * items it could not queue for lack of room, else 0. NULL: fed from outside only. */
    int (*tick)(void *tick_ctx, struct dlv_dest *d, int force);
    void *tick_ctx;
    int64_t tick_ms;
    int64_t max_elapsed_ms;     /* retries stop after this */
    int64_t attempt_timeout_ms; /* one attempt */
    int max_inflight;           /* bodies in flight, retries included */
    /* The queue (queue.h), owned by the destination from dlv_dest_new on, even when it
     * fails; NULL: an in-memory queue. */
    struct dlv_queue *queue;
    /* Fairness between tenants (receivers.otlp.fairness.max_tenant_share_percent): a tenant
     * slot (queue.h, DLV_TENANTS) holding at least this percent of queue_max_bytes in
     * queued items is refused by dlv_dest_admit_tenant while others are admitted. 0 or
     * 100: no rule, nothing counted. Items in memory only (a disk queue: no rule). */
    unsigned tenant_share_pct;
};

/*
 * The body builder, pure (no thread, no network), for the sender and for tests: cuts
 * items[0..n) into bodies of at most max_body bytes as sent. Items are grouped by header when
 * the type says so (in order of first appearance), packed in order while their cost fits
 * (max_body before compression, batch_bytes with it; the first always goes in), encoded and
 * compressed; a body over max_body (or, compressed, over max_raw before compression) is
 * built again in halves, and an item alone in one is
 * split by the type's split. An item that cannot be made to fit is added to *too_large
 * (units) and left out. Each body goes to emit, which owns it. Returns O2D_OK or the first
 * allocation error; the units of bodies that could not be built are added to *failed.
 * Split halves are new items whose parent is the item split (refs of the parent counted).
 */
typedef void (*dlv_emit_fn)(void *ctx, struct dlv_body *b);
struct dlv_build {
    const struct dlv_dest_type *type;
    void *ctx;
    size_t max_body;
    size_t max_raw; /* before compression; 0: the builder's own bound */
    size_t batch_bytes;
    enum dlv_compression compression;
    int level;               /* 0: DLV_LEVEL_DEFAULT */
    struct dlv_codec *codec; /* the builder's; NULL: one made for the call */
    struct dlv_pool *pool;   /* where body buffers come from; NULL: allocated for each */
    dlv_emit_fn emit;
    void *emit_ctx;
    size_t too_large; /* out: units */
    size_t failed;    /* out: units */
    /* Optional: each item (or split half) that went into no body, and why
     * (DLV_DROP_TOO_LARGE, or DLV_DROP_RETRIES_EXHAUSTED when out of memory). A half is
     * freed by the builder after the call. */
    void (*left_out)(void *ctx, const struct dlv_item *it, int reason);
};
int dlv_build_bodies(struct dlv_build *b, struct dlv_item *const *items, size_t n);

/* ---- a destination ---- */

/* What became of an item, for observers. */
enum dlv_state {
    DLV_QUEUED = 0,
    DLV_SENT = 1,
    DLV_DROPPED = 2,
    DLV_RETRYING = 3, /* an attempt at its body failed and will be made again (attempts so far) */
};
struct dlv_event {
    const char *dest; /* type->name */
    uint64_t item_id;
    uint64_t origin;
    uint32_t units;
    enum dlv_state state;
    int reason;                  /* DLV_DROPPED: enum dlv_drop_reason */
    int attempts;                /* sending attempts (retries = attempts - 1); 0 when queued */
    const struct dlv_item *item; /* borrowed for the call: what its queuer made */
};
/* Called on whichever thread the change happens (receiver, sender, HTTP client): it must
 * not block nor call into the destination. */
typedef void (*dlv_observer_fn)(void *ctx, const struct dlv_event *ev);

/* `http` is shared and borrowed; `queue` NULL: an in-memory queue. Nothing runs yet. */
int dlv_dest_new(struct dlv_dest **out, const struct dlv_dest_type *type, void *ctx,
                 const struct dlv_dest_config *cfg, struct http_client *http);
/* One observer, set before start. */
void dlv_dest_observe(struct dlv_dest *d, dlv_observer_fn fn, void *ctx);
int dlv_dest_start(struct dlv_dest *d);
/* Lowers (or raises) the body limit, from any thread (an Agent's /info). */
void dlv_dest_set_max_body(struct dlv_dest *d, size_t max_body);
size_t dlv_dest_max_body(const struct dlv_dest *d);

/* O2D_OK when the queue has room, O2D_ERR_BUSY when it is at its budget (queue_full is
 * counted for `units` then), O2D_ERR_SHUTDOWN once stopping. */
int dlv_dest_admit(struct dlv_dest *d, size_t units);
/* The same for a request of `tenant` (a slot of queue.h's DLV_TENANTS, -1: none): also
 * O2D_ERR_TENANT_BUSY when the tenant already holds its share of the queue (the config's
 * tenant_share_pct; queue_full is counted for `units` then). A tenant holding nothing is
 * always admitted when the queue has room. */
int dlv_dest_admit_tenant(struct dlv_dest *d, size_t units, int tenant);
/* The item bytes `tenant` holds in the queue (waiting or in flight), under the fairness
 * rule; 0 without it. */
/* Whether the queue is full now, whatever a request would hold: what admit refuses first, asked
 * before a request's body is read. Counts nothing. */
int dlv_dest_full(struct dlv_dest *d);
size_t dlv_dest_tenant_bytes(struct dlv_dest *d, int tenant);
/* Whether stop has begun (submit paths answer O2D_ERR_SHUTDOWN then). */
int dlv_dest_stopping(const struct dlv_dest *d);
/* Bytes of budget left. */
size_t dlv_dest_room(struct dlv_dest *d);
/* Queues the list (linked by next; ownership moves, even on error): each item gets its id
 * and `origin`, the ingest request (0: made by the destination itself, a tick). A memory
 * queue never refuses for room (admit does that, see exporter.h); a disk queue returns once
 * the items are durable, or O2D_ERR_BUSY when it is full or its storage failed: the items
 * are then counted queue_full when they came from a request (refused, its sender retries),
 * retries_exhausted when not (lost). O2D_ERR_SHUTDOWN once stopping (counted shutdown). */
int dlv_dest_enqueue(struct dlv_dest *d, struct dlv_item *list, uint64_t origin);
/* The same for the items of a request of `tenant` (-1: none): under the fairness rule, with
 * a memory queue, their bytes count as the tenant's until each queue item is settled
 * (delivered, dropped, or drained at stop). */
int dlv_dest_enqueue_tenant(struct dlv_dest *d, struct dlv_item *list, uint64_t origin, int tenant);
/* Counts units dropped before they reached the queue (for example, too large to encode). */
void dlv_dest_drop(struct dlv_dest *d, int reason, size_t units);

/* Asks the sender to send everything now (ticking with force). */
void dlv_dest_flush_begin(struct dlv_dest *d);
/* Waits until what was there at flush_begin is settled, or deadline_ms (monotonic); logs
 * what is left then. O2D_OK or O2D_ERR_TIMEOUT. */
int dlv_dest_flush_wait(struct dlv_dest *d, int64_t deadline_ms);
/* Stops the sender (idempotent) and counts what is still queued as dropped (shutdown).
 * Bodies in flight are the HTTP client's: freeing it completes them (counted then). */
void dlv_dest_stop(struct dlv_dest *d);
/* Frees it; stop, and the HTTP client's freeing, come first. */
void dlv_dest_free(struct dlv_dest *d);

void dlv_dest_metrics(const struct dlv_dest *d, struct dlv_metrics *m);
/* Units dropped for `reason` since start. */
uint64_t dlv_dest_dropped(const struct dlv_dest *d, int reason);
uint64_t dlv_dest_queued_units(const struct dlv_dest *d); /* queued since start */
/* The units that were lost, by reason (queue_full excepted: those were the sender's to
 * retry, not lost here): with `l`, adds "<key>":{"<reason>":n,...} to the line when there
 * are some. Returns their sum. */
struct o2d_logline;
uint64_t dlv_dest_undelivered(const struct dlv_dest *d, struct o2d_logline *l, const char *key);
/* Adds the counters to a log line: <prefix><unit>_queued, _sent, _retried,
 * _dropped_<reason>, then <prefix>bodies_sent and <prefix>bytes_sent. */
void dlv_dest_log_counts(const struct dlv_dest *d, struct o2d_logline *l, const char *prefix);

#endif
