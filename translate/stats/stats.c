/*
 * stats.c: the APM stats concentrator of stats.h, following the Datadog trace agent
 * (DataDog/datadog-agent pkg/trace/stats: concentrator.go addNow / flushNow,
 * span_concentrator.go NewStatSpanWithConfig / peerTagKeysToAggregateForSpan,
 * aggregation.go, statsraw.go; ../shared/reference/datadog-apm.md section 2.4):
 *   - a span is counted when it is top-level (_top_level or _dd.top_level == 1), measured
 *     (_dd.measured == 1) or, with compute_stats_by_span_kind, of kind server, consumer,
 *     client or producer; never when it is a partial snapshot (_dd.partial_version >= 0);
 *   - it goes into the 10 s bucket of its end time, raised to the oldest bucket still open;
 *   - groups are keyed by the payload (env, hostname, version, container id, language, git
 *     commit, image tag) and by service, name, resource, type, span.kind, HTTP status code,
 *     synthetics, peer tags hash, trace root and gRPC status code (the newest agent; the HTTP
 *     method and endpoint of the newest key are only set by the agent's OTLP-direct path, so
 *     they stay empty here, as in NewStatSpanFromPB);
 *   - buckets are flushed once now >= start + 2 widths (bufferLen 2), or all when forced.
 * Output: msgpack StatsPayload with the keys of tinylib/msgp (pkg/proto/pbgo/trace/
 * stats_gen.go), at most 4000 grouped entries per payload (pkg/trace/writer/stats.go).
 *
 * Left to others: locking (the caller's), the clock, gzip and sending (the stats exporter).
 * Memory: every string is copied into its group; groups per bucket are capped by
 * max_groups_per_bucket and the number of open buckets by MAX_BUCKETS (spans refused by either
 * are counted in groups_dropped); a sketch is at most 2048 bins.
 */
#include <arpa/inet.h>
#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddsketch.h"
#include "o2d.h"
#include "o2d_msgpack.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"
#include "stats.h"
#include "stats_int.h"

/* pkg/trace/writer/stats.go maxEntriesPerPayload */
#define MAX_ENTRIES_PER_PAYLOAD 4000
/* pkg/trace/stats/concentrator.go defaultBufferLen */
#define BUFFER_LEN 2
/* Open buckets at most: the agent takes any future bucket; spans dated far ahead must not
 * make us hold one bucket per 10 s of their skew. */
#define MAX_BUCKETS 64
/* 4000 groups of two full sketches (2 x 16 KiB) and their strings fit well below this. */
#define MAX_PAYLOAD_BYTES (512u << 20)
#define MAX_SKETCH_BYTES  (64u << 10)

/* ---- keys read from spans ---- */

enum {
    K_SPAN_KIND,
    K_HTTP_STATUS,
    K_GRPC0, /* the four gRPC status keys, in the agent's order */
    K_GRPC1,
    K_GRPC2,
    K_GRPC3,
    K_TOP_LEVEL,
    K_DD_TOP_LEVEL,
    K_MEASURED,
    K_PARTIAL_VERSION,
    K_PEER0, /* stats_peer_tag_keys[i] is K_PEER0 + i */
};

/*
 * Peer tag precursors: DataDog/datadog-agent pkg/trace/config/peer_tags.ini (generated from
 * DataDog/semantic-core) plus _dd.base_service, sorted as preparePeerTags sorts them.
 */
const char *const stats_peer_tag_keys[] = {
    "_dd.base_service",
    "active_record.db.vendor",
    "amqp.destination",
    "amqp.exchange",
    "amqp.queue",
    "aws.queue.name",
    "aws.s3.bucket",
    "bucketname",
    "cassandra.keyspace",
    "db.cassandra.contact.points",
    "db.couchbase.seed.nodes",
    "db.hostname",
    "db.instance",
    "db.name",
    "db.namespace",
    "db.system",
    "db.type",
    "dns.hostname",
    "grpc.host",
    "hostname",
    "http.host",
    "http.server_name",
    "messaging.destination",
    "messaging.destination.name",
    "messaging.destination.template",
    "messaging.kafka.bootstrap.servers",
    "messaging.rabbitmq.exchange",
    "messaging.system",
    "mongodb.db",
    "msmq.queue.path",
    "net.peer.name",
    "network.destination.ip",
    "network.destination.name",
    "out.host",
    "peer.hostname",
    "peer.service",
    "queuename",
    "rpc.service",
    "rpc.system",
    "sequel.db.vendor",
    "server.address",
    "streamname",
    "tablename",
    "topicname",
};
#define N_PEER (sizeof(stats_peer_tag_keys) / sizeof(stats_peer_tag_keys[0]))
const size_t stats_n_peer_tag_keys = N_PEER;
#define N_KEYS            (K_PEER0 + N_PEER)
#define PEER_BASE_SERVICE 0 /* index of _dd.base_service */

static const char *const fixed_keys[K_PEER0] = {
    [K_SPAN_KIND] = "span.kind",        [K_HTTP_STATUS] = "http.status_code",
    [K_GRPC0] = "rpc.grpc.status_code", [K_GRPC1] = "grpc.code",
    [K_GRPC2] = "rpc.grpc.status.code", [K_GRPC3] = "grpc.status.code",
    [K_TOP_LEVEL] = "_top_level",       [K_DD_TOP_LEVEL] = "_dd.top_level",
    [K_MEASURED] = "_dd.measured",      [K_PARTIAL_VERSION] = "_dd.partial_version",
};

/*
 * Open addressing on the length and the first and last 7 bytes of the key (every key we read
 * is at least 7 long); a candidate is confirmed by its length and those two words, which hold
 * every byte of a key up to 14 long, then by memcmp of the bytes between them. Before any of
 * that, a key whose first two bytes begin none of ours (most of a span's keys: otel.*,
 * telemetry.*, language, ...) is turned away by one bit of key_pairs, without its length.
 */
#define KEY_SLOTS 512
#define KEY_MIN   7 /* db.name, db.type */
struct key_slot {
    const char *key;     /* NULL = empty */
    uint64_t head, tail; /* its first and last KEY_MIN bytes (key_words) */
    uint16_t len;
    uint16_t id;
};

/*
 * The first (end 0) or last (end len) KEY_MIN bytes of the NUL-terminated k (len >= KEY_MIN),
 * as a word: one 8-byte load, which ends at most at the NUL, masked to 7 bytes. (Copying 7
 * bytes into a zeroed word compiles to two 4-byte stores and an 8-byte load that cannot be
 * forwarded from them: a stall on every key of every span.)
 */
static inline uint64_t key_word(const char *k, size_t end)
{
    uint64_t w;
    memcpy(&w, k + end - (end > 0 ? KEY_MIN : 0), 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return w >> 8;
#else
    return w & 0x00ffffffffffffffULL;
#endif
}

/* The bit of key_pairs for k's first two bytes (k is at least one byte and its NUL). */
static inline size_t key_pair(const char *k)
{
    return (size_t)(uint8_t)k[0] << 8 | (uint8_t)k[1];
}

/* The slot of a key from its length and key_word()s. */
static inline int key_slot_of(uint64_t head, uint64_t tail, size_t len)
{
    uint64_t w = (head ^ (tail << 8) ^ len) * 0x9e3779b97f4a7c15ULL;
    return (int)(w >> 55); /* 9 bits: KEY_SLOTS */
}

/* ---- hashing ---- */

struct str {
    const char *p;
    size_t n;
};

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    h ^= n * 0x9e3779b97f4a7c15ULL;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    /* The n < 8 bytes left, little-endian (what memcpy into a zeroed word gives), from two
     * overlapping loads: the bytes both load agree where they overlap. */
    uint64_t w = 0;
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        w = lo | (uint64_t)hi << (8 * (n - 4));
    } else if (n > 0) {
        w = (uint64_t)(uint8_t)p[0] | (uint64_t)(uint8_t)p[n / 2] << (8 * (n / 2)) |
            (uint64_t)(uint8_t)p[n - 1] << (8 * (n - 1));
    }
    h = (h ^ w) * 0x100000001b3ULL;
    return h ^ (h >> 31);
}

/*
 * The peer tags' part of the group key. The agent hashes the sorted tags with FNV-1a
 * (aggregation.go tagsFnvHash); the hash never leaves the process, so a faster one does.
 */
static uint64_t hash_tags(const struct str *tags, size_t n)
{
    if (n == 0) {
        return 0;
    }
    uint64_t h = 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i < n; i++) {
        h = hash_bytes(h, tags[i].p, tags[i].n);
    }
    return mix64(h);
}

/* ---- structures ---- */

/* What a ClientStatsPayload is keyed by (PayloadAggregationKey), shared by all buckets. */
struct stats_pkey {
    struct stats_pkey *next;
    uint64_t hash;
    size_t refs; /* groups pointing here */
    size_t id;   /* order at flush */
    struct str env, hostname, version, container_id, lang, git_sha, image_tag;
    struct str raw_ctags; /* tags["_dd.tags.container"] as received: part of the identity */
    size_t n_tags;
    struct str *tags; /* sorted container tags; only with a container id, as the agent */
};

struct stats_group {
    uint64_t hash;
    struct stats_pkey *pk;
    struct str service, name, resource, type, kind, grpc;
    uint32_t http_status;
    uint8_t synthetics;
    uint8_t trace_root; /* Trilean: TRUE 1, FALSE 2 */
    uint64_t peer_hash;
    size_t n_peer;
    struct str *peer;
    /* the key ends here: add_span sets the fields above, group_new copies them */
    /* weighted sums (statsraw.go groupedStats), rounded when packed */
    double hits, errors, duration, top_level_hits;
    struct ddsketch ok, err;
};

/* A group's hash beside it, so that probing past other groups does not touch them. */
struct group_slot {
    uint64_t hash;
    struct stats_group *g; /* NULL = empty */
};

struct stats_bucket {
    struct stats_bucket *next;
    int64_t start;
    size_t n_groups;
    size_t table_cap; /* power of two */
    struct group_slot *table;
};

struct stats_concentrator {
    int64_t bucket_ns;
    size_t max_groups;
    int by_kind;
    int peer_agg;
    char *agent_env, *agent_hostname, *agent_version;
    int agent_fills_defaults;
    int64_t oldest_ts;
    struct stats_bucket *buckets;
    size_t n_buckets;
    struct stats_bucket *last; /* the bucket the previous span went to */
    struct stats_pkey *pkeys;  /* newest first: the order of the payloads at flush */
    size_t n_pkeys;
    /* pkeys by hash, open addressing (NULL = empty), at most half full; NULL when it could
     * not be allocated (then the list is walked). A busy collector sees one key per host,
     * version and container: walking them for every payload was a miss per key. */
    struct stats_pkey **pk_index;
    size_t pk_index_cap;
    struct key_slot keys[KEY_SLOTS];
    uint64_t key_pairs[65536 / 64]; /* first two bytes of some key of keys[] */
    struct o2d_buf peer_buf[2];     /* the "key:value" peer tags of the two spans in flight */
    struct o2d_buf sketch_buf;
    struct o2d_buf out;
    struct stats_counters counters;
    uint64_t client_sequence; /* ClientStatsPayloads emitted (their Sequence) */
};

/* The fields of one span that stats read: meta[id] and metric[id] are set only where their
 * bit is, so that nothing is cleared per span. */
_Static_assert(N_KEYS <= 64, "one bit per key in span_view.has_meta");
struct span_view {
    uint64_t has_meta;   /* bit id: meta[id] */
    uint32_t has_metric; /* bit id: metric[id] */
    const char *meta[N_KEYS];
    double metric[K_PEER0]; /* metrics are only read for the fixed keys */
};

/* The meta value of key id, NULL when the span has none. */
static inline const char *view_meta(const struct span_view *v, int id)
{
    return v->has_meta >> id & 1 ? v->meta[id] : NULL;
}

static inline int view_has_metric(const struct span_view *v, int id)
{
    return v->has_metric >> id & 1;
}

/* ---- configuration ---- */

static char *dup_or(const char *s, const char *dflt)
{
    if (s == NULL || s[0] == '\0') {
        s = dflt;
    }
    return o2d_strndup(s, strlen(s));
}

static int add_key(struct stats_concentrator *c, const char *k, unsigned id)
{
    size_t len = strlen(k);
    if (len < KEY_MIN || len > UINT16_MAX) {
        return O2D_ERR_INTERNAL;
    }
    uint64_t head = key_word(k, 0), tail = key_word(k, len);
    int i = key_slot_of(head, tail, len);
    while (c->keys[i].key != NULL) {
        i = (i + 1) & (KEY_SLOTS - 1);
    }
    c->keys[i].key = k;
    c->keys[i].head = head;
    c->keys[i].tail = tail;
    c->keys[i].len = (uint16_t)len;
    c->keys[i].id = (uint16_t)id;
    size_t pair = key_pair(k);
    c->key_pairs[pair / 64] |= 1ULL << (pair % 64);
    return O2D_OK;
}

/* key_id past the first two bytes' filter. */
static inline int key_id_slow(const struct stats_concentrator *c, const char *k)
{
    size_t len = strlen(k);
    if (len < KEY_MIN) {
        return -1;
    }
    uint64_t head = key_word(k, 0), tail = key_word(k, len);
    for (int i = key_slot_of(head, tail, len); c->keys[i].key != NULL;
         i = (i + 1) & (KEY_SLOTS - 1)) {
        const struct key_slot *e = &c->keys[i];
        if (e->len == len && e->head == head && e->tail == tail &&
            (len <= 2 * KEY_MIN || memcmp(e->key + KEY_MIN, k + KEY_MIN, len - 2 * KEY_MIN) == 0)) {
            return e->id;
        }
    }
    return -1;
}

/* The id of key k (K_*), -1 when stats read no such key. Inline: most keys stop at the filter. */
static inline int key_id(const struct stats_concentrator *c, const char *k)
{
    if (k[0] == '\0') {
        return -1;
    }
    size_t pair = key_pair(k);
    if ((c->key_pairs[pair / 64] >> (pair % 64) & 1) == 0) {
        return -1;
    }
    return key_id_slow(c, k);
}

int stats_concentrator_new(struct stats_concentrator **out, const struct stats_config *cfg)
{
    int rv = O2D_ERR_NOMEM;
    *out = NULL;
    if (cfg->bucket_ns <= 0 || cfg->max_groups_per_bucket == 0) {
        return O2D_ERR_INVALID;
    }
    struct stats_concentrator *c = o2d_calloc(1, sizeof(*c));
    if (c == NULL) {
        goto out;
    }
    c->bucket_ns = cfg->bucket_ns;
    c->max_groups = cfg->max_groups_per_bucket;
    c->by_kind = cfg->compute_stats_by_span_kind;
    c->peer_agg = cfg->peer_tags_aggregation;
    c->agent_env = dup_or(cfg->agent_env, "none");
    c->agent_fills_defaults = cfg->agent_fills_defaults;
    c->agent_hostname = dup_or(cfg->agent_hostname, "");
    c->agent_version = dup_or(cfg->agent_version, "");
    if (c->agent_env == NULL || c->agent_hostname == NULL || c->agent_version == NULL) {
        goto out;
    }
    c->oldest_ts = cfg->now_ns > 0 ? cfg->now_ns - cfg->now_ns % c->bucket_ns : INT64_MIN;
    for (unsigned i = 0; i < N_KEYS; i++) {
        const char *k = i < K_PEER0 ? fixed_keys[i] : stats_peer_tag_keys[i - K_PEER0];
        if (add_key(c, k, i) != O2D_OK) {
            rv = O2D_ERR_INTERNAL;
            goto out;
        }
    }
    o2d_buf_init(&c->peer_buf[0], 1u << 20);
    o2d_buf_init(&c->peer_buf[1], 1u << 20);
    o2d_buf_init(&c->sketch_buf, MAX_SKETCH_BYTES);
    o2d_buf_init(&c->out, MAX_PAYLOAD_BYTES);
    *out = c;
    c = NULL;
    rv = O2D_OK;
out:
    stats_concentrator_free(c);
    return rv;
}

static void group_free(struct stats_group *g)
{
    if (g == NULL) {
        return;
    }
    ddsketch_cleanup(&g->ok);
    ddsketch_cleanup(&g->err);
    o2d_free(g);
}

static void bucket_free(struct stats_bucket *b)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < b->table_cap; i++) {
        struct stats_group *g = b->table[i].g;
        if (g != NULL) {
            g->pk->refs--;
            group_free(g);
        }
    }
    o2d_free(b->table);
    o2d_free(b);
}

/* Frees the payload keys no group points at any more. */
static void pk_index_put(struct stats_pkey **t, size_t cap, struct stats_pkey *p)
{
    size_t i = p->hash & (cap - 1);
    while (t[i] != NULL) {
        i = (i + 1) & (cap - 1);
    }
    t[i] = p;
}

/* Makes pk_index again from the list, for n_pkeys + 1 keys (NULL when out of memory). */
static void pk_index_rebuild(struct stats_concentrator *c)
{
    o2d_free(c->pk_index);
    c->pk_index = NULL;
    c->pk_index_cap = 0;
    size_t cap = 16;
    while (cap < 2 * (c->n_pkeys + 1)) {
        cap *= 2;
    }
    struct stats_pkey **t = o2d_calloc(cap, sizeof(*t));
    if (t == NULL) {
        return;
    }
    for (struct stats_pkey *p = c->pkeys; p != NULL; p = p->next) {
        pk_index_put(t, cap, p);
    }
    c->pk_index = t;
    c->pk_index_cap = cap;
}

static void pkeys_collect(struct stats_concentrator *c)
{
    struct stats_pkey **pp = &c->pkeys;
    size_t removed = 0;
    while (*pp != NULL) {
        struct stats_pkey *p = *pp;
        if (p->refs == 0) {
            *pp = p->next;
            o2d_free(p);
            removed++;
        } else {
            pp = &p->next;
        }
    }
    if (removed > 0) {
        c->n_pkeys -= removed;
        pk_index_rebuild(c);
    }
}

void stats_concentrator_free(struct stats_concentrator *c)
{
    if (c == NULL) {
        return;
    }
    while (c->buckets != NULL) {
        struct stats_bucket *b = c->buckets;
        c->buckets = b->next;
        bucket_free(b);
    }
    pkeys_collect(c);
    o2d_free(c->pk_index);
    o2d_free(c->agent_env);
    o2d_free(c->agent_hostname);
    o2d_free(c->agent_version);
    o2d_buf_cleanup(&c->peer_buf[0]);
    o2d_buf_cleanup(&c->peer_buf[1]);
    o2d_buf_cleanup(&c->sketch_buf);
    o2d_buf_cleanup(&c->out);
    o2d_free(c);
}

void stats_get_counters(const struct stats_concentrator *c, struct stats_counters *out)
{
    *out = c->counters;
}

/* ---- payload keys ---- */

static struct str cstr(const char *s)
{
    struct str r = {s != NULL ? s : "", s != NULL ? strlen(s) : 0};
    return r;
}

static int str_eq(struct str a, struct str b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static struct str tp_tag(const DdTracerPayload *tp, const char *key)
{
    for (size_t i = 0; i < tp->n_tags; i++) {
        if (tp->tags[i]->key != NULL && strcmp(tp->tags[i]->key, key) == 0) {
            return cstr(tp->tags[i]->value);
        }
    }
    return cstr(NULL);
}

static int cmp_str(const void *a, const void *b)
{
    const struct str *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->p, y->p, n);
    if (r != 0) {
        return r;
    }
    return x->n < y->n ? -1 : x->n > y->n;
}

static char *copy_str(char *dst, struct str *s)
{
    memcpy(dst, s->p, s->n);
    dst[s->n] = '\0';
    s->p = dst;
    return dst + s->n + 1;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/*
 * The payload key of tp, interned: env and hostname fall back to the configured ones
 * (concentrator.go addNow); container tags are the comma-separated "_dd.tags.container",
 * trimmed, sorted and deduplicated ("per APM stats intake requirement", otel_util.go), and the
 * image tag is their image_tag value.
 */
static int pkey_get(struct stats_concentrator *c, const DdTracerPayload *tp,
                    struct stats_pkey **out)
{
    struct stats_pkey k;
    memset(&k, 0, sizeof(k));
    k.env = cstr(tp->env);
    if (k.env.n == 0 && !c->agent_fills_defaults) {
        k.env = cstr(c->agent_env);
    }
    k.hostname = cstr(tp->hostname);
    if (k.hostname.n == 0 && !c->agent_fills_defaults) {
        k.hostname = cstr(c->agent_hostname);
    }
    k.version = cstr(tp->appversion);
    k.container_id = cstr(tp->containerid);
    k.lang = cstr(tp->languagename);
    k.git_sha = tp_tag(tp, "_dd.git.commit.sha");
    k.raw_ctags = tp_tag(tp, "_dd.tags.container");
    uint64_t h = 0x51ed270b27c6f1a5ULL;
    const struct str *fields[] = {&k.env,  &k.hostname, &k.version,  &k.container_id,
                                  &k.lang, &k.git_sha,  &k.raw_ctags};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        h = hash_bytes(h, fields[i]->p, fields[i]->n);
    }
    size_t slot = c->pk_index != NULL ? h & (c->pk_index_cap - 1) : 0;
    for (struct stats_pkey *p = c->pk_index != NULL ? c->pk_index[slot] : c->pkeys; p != NULL;
         p = c->pk_index != NULL ? c->pk_index[slot = (slot + 1) & (c->pk_index_cap - 1)]
                                 : p->next) {
        if (p->hash == h && str_eq(p->env, k.env) && str_eq(p->hostname, k.hostname) &&
            str_eq(p->version, k.version) && str_eq(p->container_id, k.container_id) &&
            str_eq(p->lang, k.lang) && str_eq(p->git_sha, k.git_sha) &&
            str_eq(p->raw_ctags, k.raw_ctags)) {
            *out = p;
            return O2D_OK;
        }
    }
    /* New key: count the container tags, then lay everything out in one block. */
    size_t n_tags = 0;
    if (k.container_id.n > 0) {
        for (size_t i = 0; i <= k.raw_ctags.n; i++) {
            if (i == k.raw_ctags.n || k.raw_ctags.p[i] == ',') {
                n_tags++;
            }
        }
        if (k.raw_ctags.n == 0) {
            n_tags = 0;
        }
    }
    size_t bytes = sizeof(k) + n_tags * sizeof(struct str);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        bytes += fields[i]->n + 1;
    }
    struct stats_pkey *p = o2d_malloc(bytes);
    if (p == NULL) {
        return O2D_ERR_NOMEM;
    }
    *p = k;
    p->hash = h;
    p->tags = (struct str *)(p + 1);
    char *s = (char *)(p->tags + n_tags);
    s = copy_str(s, &p->env);
    s = copy_str(s, &p->hostname);
    s = copy_str(s, &p->version);
    s = copy_str(s, &p->container_id);
    s = copy_str(s, &p->lang);
    s = copy_str(s, &p->git_sha);
    copy_str(s, &p->raw_ctags);
    /* The tags point into the copy of the raw string. */
    size_t start = 0;
    for (size_t i = 0; n_tags > 0 && i <= p->raw_ctags.n; i++) {
        if (i < p->raw_ctags.n && p->raw_ctags.p[i] != ',') {
            continue;
        }
        struct str t = {p->raw_ctags.p + start, i - start};
        while (t.n > 0 && is_space(t.p[0])) {
            t.p++;
            t.n--;
        }
        while (t.n > 0 && is_space(t.p[t.n - 1])) {
            t.n--;
        }
        if (t.n > 0) {
            p->tags[p->n_tags++] = t;
        }
        start = i + 1;
    }
    qsort(p->tags, p->n_tags, sizeof(struct str), cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < p->n_tags; i++) {
        if (w == 0 || !str_eq(p->tags[w - 1], p->tags[i])) {
            p->tags[w++] = p->tags[i];
        }
    }
    p->n_tags = w;
    p->image_tag = cstr(NULL);
    for (size_t i = 0; i < p->n_tags; i++) {
        if (p->tags[i].n > 10 && memcmp(p->tags[i].p, "image_tag:", 10) == 0) {
            p->image_tag.p = p->tags[i].p + 10;
            p->image_tag.n = p->tags[i].n - 10;
        }
    }
    p->next = c->pkeys;
    c->pkeys = p;
    c->n_pkeys++;
    if (c->pk_index != NULL && 2 * c->n_pkeys <= c->pk_index_cap) {
        pk_index_put(c->pk_index, c->pk_index_cap, p);
    } else {
        pk_index_rebuild(c);
    }
    *out = p;
    return O2D_OK;
}

/* ---- peer IP quantization (pkg/obfuscate/ip_address.go) ---- */

static const char *const allowed_ips[] = {"127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254",
                                          "169.254.170.2"};

static int has_prefix(struct str s, const char *p)
{
    size_t n = strlen(p);
    return s.n >= n && memcmp(s.p, p, n) == 0;
}

/* The first occurrence of needle (non-empty) in s: candidates found with memchr on its first
 * byte, then compared. */
static const char *mem_find(struct str s, const char *needle)
{
    size_t n = strlen(needle);
    const char *p = s.p, *end = s.p + s.n;
    while ((size_t)(end - p) >= n &&
           (p = memchr(p, needle[0], (size_t)(end - p) - n + 1)) != NULL) {
        if (memcmp(p, needle, n) == 0) {
            return p;
        }
        p++;
    }
    return NULL;
}

static void split_prefix(struct str raw, struct str *prefix, struct str *after)
{
    static const char *const schemes[] = {"dnspoll", "ftp", "file", "http", "https"};
    prefix->p = raw.p;
    prefix->n = 0;
    *after = raw;
    if (has_prefix(raw, "ip-")) {
        prefix->n = 3;
        after->p = raw.p + 3;
        after->n = raw.n - 3;
        return;
    }
    /* Every prefix below ends in "://" (two or three slashes): without one, none matches. */
    if (mem_find(raw, "://") == NULL) {
        return;
    }
    for (size_t k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
        const char *at = mem_find(raw, schemes[k]);
        if (at == NULL) {
            continue;
        }
        size_t idx = (size_t)(at - raw.p), sl = strlen(schemes[k]);
        for (size_t slashes = 3; slashes >= 2; slashes--) {
            size_t end = idx + sl + 1 + slashes;
            if (end < raw.n && raw.p[idx + sl] == ':' &&
                memcmp(raw.p + idx + sl + 1, "///", slashes) == 0) {
                prefix->p = at;
                prefix->n = end - idx;
                after->p = raw.p + end;
                after->n = raw.n - end;
                return;
            }
        }
    }
}

static const char *mem_rchr(struct str s, char ch)
{
    for (size_t i = s.n; i > 0; i--) {
        if (s.p[i - 1] == ch) {
            return s.p + i - 1;
        }
    }
    return NULL;
}

/* net.SplitHostPort without allocation, as the agent's splitHostPort. */
static int split_host_port(struct str hp, struct str *host, struct str *port)
{
    const char *colon = mem_rchr(hp, ':');
    if (colon == NULL) {
        return 0;
    }
    size_t i = (size_t)(colon - hp.p), j = 0, k = 0;
    if (hp.p[0] == '[') {
        const char *end = memchr(hp.p, ']', hp.n);
        if (end == NULL || (size_t)(end - hp.p) + 1 != i) {
            return 0;
        }
        host->p = hp.p + 1;
        host->n = (size_t)(end - hp.p) - 1;
        j = 1;
        k = (size_t)(end - hp.p) + 1;
    } else {
        host->p = hp.p;
        host->n = i;
        if (memchr(host->p, ':', host->n) != NULL) {
            return 0;
        }
    }
    if (memchr(hp.p + j, '[', hp.n - j) != NULL || memchr(hp.p + k, ']', hp.n - k) != NULL) {
        return 0;
    }
    port->p = hp.p + i + 1;
    port->n = hp.n - i - 1;
    return 1;
}

/* parseIPv4 with a chosen separator; accepts trailing characters after four octets. */
static int parse_ipv4(struct str s, char sep, size_t *last)
{
    int val = 0, pos = 0, dig = 0;
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.p[i];
        if (ch >= '0' && ch <= '9') {
            if (dig == 1 && val == 0) {
                return 0;
            }
            val = val * 10 + (ch - '0');
            dig++;
            if (val > 255) {
                return 0;
            }
        } else if (ch == sep) {
            if (i == 0 || i == s.n - 1 || s.p[i - 1] == sep) {
                return 0;
            }
            if (pos == 3) {
                *last = i;
                return 1;
            }
            pos++;
            val = 0;
            dig = 0;
        } else {
            if (pos == 3 && dig > 0) {
                *last = i;
                return 1;
            }
            return 0;
        }
    }
    if (pos < 3) {
        return 0;
    }
    *last = s.n;
    return 1;
}

static int parse_ipv6(struct str s)
{
    char tmp[64];
    const char *zone = memchr(s.p, '%', s.n);
    size_t n = zone != NULL ? (size_t)(zone - s.p) : s.n;
    if (n >= sizeof(tmp) || (zone != NULL && zone == s.p + s.n - 1)) {
        return 0;
    }
    memcpy(tmp, s.p, n);
    tmp[n] = '\0';
    struct in6_addr a;
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

static int is_parseable_ip(struct str s, size_t *last)
{
    if (s.n == 0) {
        return 0;
    }
    char c0 = s.p[0];
    if (!((c0 >= '0' && c0 <= '9') || (c0 >= 'a' && c0 <= 'f') || (c0 >= 'A' && c0 <= 'F') ||
          c0 == ':')) {
        return 0;
    }
    for (size_t i = 0; i < s.n; i++) {
        switch (s.p[i]) {
        case '.':
        case '_':
        case '-':
            return parse_ipv4(s, s.p[i], last);
        case ':':
            if (parse_ipv6(s)) {
                *last = s.n;
                return 1;
            }
            return 0;
        case '%':
            return 0;
        default:
            break;
        }
    }
    return 0;
}

/* Can an IP address that is_parseable_ip takes begin with ch? */
static int ip_first_byte(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
           ch == ':';
}

static int quantize_ip(struct o2d_buf *b, struct str raw)
{
    struct str prefix, rest, host, port = {"", 0};
    split_prefix(raw, &prefix, &rest);
    /* The host split_host_port finds begins where rest does, or after its '[' (and without
     * the split, a '[' is no IP): a first byte that begins no IP settles it (most names). */
    char first = rest.n == 0 ? '\0' : rest.p[0] != '[' ? rest.p[0] : rest.n > 1 ? rest.p[1] : '\0';
    if (!ip_first_byte(first)) {
        return o2d_buf_append(b, raw.p, raw.n);
    }
    if (!split_host_port(rest, &host, &port)) {
        host = rest;
        port.n = 0;
    }
    size_t last;
    if (!is_parseable_ip(host, &last)) {
        return o2d_buf_append(b, raw.p, raw.n);
    }
    struct str suffix = {host.p + last, host.n - last};
    host.n = last;
    for (size_t i = 0; i < sizeof(allowed_ips) / sizeof(allowed_ips[0]); i++) {
        if (str_eq(host, cstr(allowed_ips[i]))) {
            return o2d_buf_append(b, raw.p, raw.n);
        }
    }
    int rv = o2d_buf_append(b, prefix.p, prefix.n);
    if (rv == O2D_OK) {
        rv = o2d_buf_append_str(b, "blocked-ip-address");
    }
    if (rv == O2D_OK && port.n > 0) {
        rv = o2d_buf_append_byte(b, ':');
        if (rv == O2D_OK) {
            rv = o2d_buf_append(b, port.p, port.n);
        }
    }
    if (rv == O2D_OK) {
        rv = o2d_buf_append(b, suffix.p, suffix.n);
    }
    return rv;
}

/* Is some byte of s[0..n) a digit or ':' ('0'..':')? Eight bytes at a time: for the low seven
 * bits x of each byte, x + (0x80 - '0') has its high bit set when x >= '0' and x + (0x80 -
 * ':' - 1) when x > ':', with no carry into the next byte; bytes with their high bit set are
 * no match. */
static int has_digit_or_colon(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, high = ones * 0x80, low7 = ones * 0x7f;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t x = w & low7;
        uint64_t ge = x + ones * (0x80 - '0');
        uint64_t gt = x + ones * (0x80 - ':' - 1);
        if ((ge & ~gt & ~w & high) != 0) {
            return 1;
        }
    }
    for (; i < n; i++) {
        if ((s[i] >= '0' && s[i] <= '9') || s[i] == ':') {
            return 1;
        }
    }
    return 0;
}

int stats_quantize_peer_ips(struct o2d_buf *b, const char *v, size_t len)
{
    size_t base = b->len;
    if (!has_digit_or_colon(v, len)) {
        /* No IP address without a digit or a colon. */
        return o2d_buf_append(b, v, len);
    }
    size_t emitted = 0;
    for (size_t start = 0; start <= len;) {
        const char *comma = memchr(v + start, ',', len - start);
        size_t i = comma != NULL ? (size_t)(comma - v) : len;
        size_t before = b->len;
        int rv = emitted > 0 ? o2d_buf_append_byte(b, ',') : O2D_OK;
        size_t qstart = b->len;
        if (rv == O2D_OK) {
            rv = quantize_ip(b, (struct str){v + start, i - start});
        }
        if (rv != O2D_OK) {
            b->len = base;
            return rv;
        }
        /* An entry equal to an earlier one after quantization is dropped. */
        struct str q = {(const char *)b->data + qstart, b->len - qstart};
        size_t s = base;
        int dup = 0;
        for (size_t j = base; emitted > 0 && j <= before && !dup; j++) {
            if (j < before && b->data[j] != ',') {
                continue;
            }
            dup = str_eq((struct str){(const char *)b->data + s, j - s}, q);
            s = j + 1;
        }
        if (dup) {
            b->len = before;
        } else {
            emitted++;
        }
        start = i + 1;
    }
    return O2D_OK;
}

/* ---- gRPC status code (aggregation.go getGRPCStatusCode) ---- */

static const struct {
    const char *name;
    const char *code;
} grpc_names[] = {
    /* grpcStatusMap: spellings seen from tracers */
    {"CANCELLED", "1"},
    {"CANCELED", "1"},
    {"INVALIDARGUMENT", "3"},
    {"DEADLINEEXCEEDED", "4"},
    {"NOTFOUND", "5"},
    {"ALREADYEXISTS", "6"},
    {"PERMISSIONDENIED", "7"},
    {"RESOURCEEXHAUSTED", "8"},
    {"FAILEDPRECONDITION", "9"},
    {"OUTOFRANGE", "11"},
    {"DATALOSS", "15"},
    /* google.golang.org/genproto/googleapis/rpc/code Code_value */
    {"OK", "0"},
    {"UNKNOWN", "2"},
    {"INVALID_ARGUMENT", "3"},
    {"DEADLINE_EXCEEDED", "4"},
    {"NOT_FOUND", "5"},
    {"ALREADY_EXISTS", "6"},
    {"PERMISSION_DENIED", "7"},
    {"RESOURCE_EXHAUSTED", "8"},
    {"FAILED_PRECONDITION", "9"},
    {"ABORTED", "10"},
    {"OUT_OF_RANGE", "11"},
    {"UNIMPLEMENTED", "12"},
    {"INTERNAL", "13"},
    {"UNAVAILABLE", "14"},
    {"DATA_LOSS", "15"},
    {"UNAUTHENTICATED", "16"},
};

/* strconv.ParseUint(s, 10, 32). */
static int parse_u32(const char *s, uint32_t *out)
{
    if (s[0] == '\0') {
        return 0;
    }
    uint64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX) {
            return 0;
        }
    }
    *out = (uint32_t)v;
    return 1;
}

void stats_grpc_code_from_string(const char *v, char out[static 12])
{
    uint32_t n;
    out[0] = '\0';
    if (parse_u32(v, &n)) {
        snprintf(out, 12, "%u", n);
        return;
    }
    if (strncmp(v, "StatusCode.", 11) == 0) {
        v += 11;
    }
    char up[24];
    size_t len = strlen(v);
    if (len >= sizeof(up)) {
        return;
    }
    for (size_t i = 0; i <= len; i++) {
        up[i] = (v[i] >= 'a' && v[i] <= 'z') ? (char)(v[i] - 'a' + 'A') : v[i];
    }
    for (size_t i = 0; i < sizeof(grpc_names) / sizeof(grpc_names[0]); i++) {
        if (strcmp(up, grpc_names[i].name) == 0) {
            strcpy(out, grpc_names[i].code);
            return;
        }
    }
}

/* uint32(float64) in Go for the values that fit; 0 otherwise. */
static uint32_t metric_u32(double v)
{
    return v >= 0 && v < 4294967296.0 ? (uint32_t)v : 0;
}

/* ---- buckets and groups ---- */

static struct stats_bucket *bucket_get(struct stats_concentrator *c, int64_t start)
{
    if (c->last != NULL && c->last->start == start) {
        return c->last;
    }
    for (struct stats_bucket *b = c->buckets; b != NULL; b = b->next) {
        if (b->start == start) {
            c->last = b;
            return b;
        }
    }
    if (c->n_buckets >= MAX_BUCKETS) {
        return NULL;
    }
    struct stats_bucket *b = o2d_calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->start = start;
    b->next = c->buckets;
    c->buckets = b;
    c->n_buckets++;
    c->last = b;
    return b;
}

static int bucket_grow(struct stats_bucket *b)
{
    size_t ncap = b->table_cap ? b->table_cap * 2 : 16;
    struct group_slot *t = o2d_calloc(ncap, sizeof(*t));
    if (t == NULL) {
        return O2D_ERR_NOMEM;
    }
    for (size_t i = 0; i < b->table_cap; i++) {
        if (b->table[i].g != NULL) {
            size_t j = b->table[i].hash & (ncap - 1);
            while (t[j].g != NULL) {
                j = (j + 1) & (ncap - 1);
            }
            t[j] = b->table[i];
        }
    }
    o2d_free(b->table);
    b->table = t;
    b->table_cap = ncap;
    return O2D_OK;
}

/* g has k's hash (its slot says so): the rest of the key. */
static int group_matches(const struct stats_group *g, const struct stats_group *k)
{
    return g->pk == k->pk && g->http_status == k->http_status && g->synthetics == k->synthetics &&
           g->trace_root == k->trace_root && g->peer_hash == k->peer_hash &&
           str_eq(g->service, k->service) && str_eq(g->name, k->name) &&
           str_eq(g->resource, k->resource) && str_eq(g->type, k->type) &&
           str_eq(g->kind, k->kind) && str_eq(g->grpc, k->grpc);
}

/* A group for key k with every string copied into the same allocation. */
static struct stats_group *group_new(const struct stats_group *k)
{
    size_t bytes = sizeof(*k) + k->n_peer * sizeof(struct str);
    const struct str *fields[] = {&k->service, &k->name, &k->resource,
                                  &k->type,    &k->kind, &k->grpc};
    for (size_t i = 0; i < 6; i++) {
        bytes += fields[i]->n + 1;
    }
    for (size_t i = 0; i < k->n_peer; i++) {
        bytes += k->peer[i].n + 1;
    }
    struct stats_group *g = o2d_malloc(bytes);
    if (g == NULL) {
        return NULL;
    }
    memcpy(g, k, offsetof(struct stats_group, hits));
    g->peer = (struct str *)(g + 1);
    char *s = (char *)(g->peer + k->n_peer);
    for (size_t i = 0; i < k->n_peer; i++) {
        g->peer[i] = k->peer[i];
        s = copy_str(s, &g->peer[i]);
    }
    s = copy_str(s, &g->service);
    s = copy_str(s, &g->name);
    s = copy_str(s, &g->resource);
    s = copy_str(s, &g->type);
    s = copy_str(s, &g->kind);
    copy_str(s, &g->grpc);
    g->hits = g->errors = g->duration = g->top_level_hits = 0;
    ddsketch_init(&g->ok);
    ddsketch_init(&g->err);
    return g;
}

/* Finds or makes the group of k in b; *g = NULL when the bucket is at its cap. */
static int group_get(struct stats_concentrator *c, struct stats_bucket *b,
                     const struct stats_group *k, struct stats_group **g)
{
    *g = NULL;
    size_t i = 0;
    if (b->table_cap > 0) {
        i = k->hash & (b->table_cap - 1);
        while (b->table[i].g != NULL) {
            if (b->table[i].hash == k->hash && group_matches(b->table[i].g, k)) {
                *g = b->table[i].g;
                return O2D_OK;
            }
            i = (i + 1) & (b->table_cap - 1);
        }
    }
    if (b->n_groups >= c->max_groups) {
        return O2D_OK;
    }
    if ((b->n_groups + 1) * 2 > b->table_cap) {
        int rv = bucket_grow(b);
        if (rv != O2D_OK) {
            return rv;
        }
        i = k->hash & (b->table_cap - 1);
        while (b->table[i].g != NULL) {
            i = (i + 1) & (b->table_cap - 1);
        }
    }
    struct stats_group *n = group_new(k);
    if (n == NULL) {
        return O2D_ERR_NOMEM;
    }
    b->table[i].hash = k->hash;
    b->table[i].g = n;
    b->n_groups++;
    n->pk->refs++;
    *g = n;
    return O2D_OK;
}

/* ---- adding spans ---- */

static int lower_eq(const char *s, const char *lower)
{
    for (; *s != '\0' && *lower != '\0'; s++, lower++) {
        char ch = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
        if (ch != *lower) {
            return 0;
        }
    }
    return *s == '\0' && *lower == '\0';
}

/* span.kind, ASCII case aside (the agent's strings.ToLower compares), told once per span. */
enum span_kind {
    KIND_OTHER,
    KIND_EMPTY,
    KIND_INTERNAL,
    KIND_SERVER,
    KIND_CLIENT,
    KIND_PRODUCER,
    KIND_CONSUMER
};

static enum span_kind kind_of(const char *kind)
{
    switch (kind[0]) {
    case '\0':
        return KIND_EMPTY;
    case 'i':
    case 'I':
        return lower_eq(kind, "internal") ? KIND_INTERNAL : KIND_OTHER;
    case 's':
    case 'S':
        return lower_eq(kind, "server") ? KIND_SERVER : KIND_OTHER;
    case 'c':
    case 'C':
        return lower_eq(kind, "client")     ? KIND_CLIENT
               : lower_eq(kind, "consumer") ? KIND_CONSUMER
                                            : KIND_OTHER;
    case 'p':
    case 'P':
        return lower_eq(kind, "producer") ? KIND_PRODUCER : KIND_OTHER;
    default:
        return KIND_OTHER;
    }
}

struct peer_ref {
    size_t off, len;
};

static int cmp_peer(const void *a, const void *b, void *base)
{
    const struct peer_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp((const char *)base + x->off, (const char *)base + y->off, n);
    if (r != 0) {
        return r;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

/*
 * The peer tags of a span (span_concentrator.go matchingPeerTags): all precursors for client,
 * producer and consumer spans, only _dd.base_service for an internal (or kind-less) span that
 * has one; "key:value" with IP addresses quantized, sorted.
 */
static int peer_tags(struct o2d_buf *pb, const struct span_view *v, enum span_kind kind,
                     struct str *out, size_t *n_out)
{
    *n_out = 0;
    o2d_buf_reset(pb);
    /* the precursors the span has, in the order of stats_peer_tag_keys */
    uint64_t keys = v->has_meta >> K_PEER0;
    const char *base = view_meta(v, K_PEER0 + PEER_BASE_SERVICE);
    if ((kind == KIND_EMPTY || kind == KIND_INTERNAL) && base != NULL && base[0] != '\0') {
        keys &= 1ULL << PEER_BASE_SERVICE;
    } else if (!(kind == KIND_CLIENT || kind == KIND_PRODUCER || kind == KIND_CONSUMER)) {
        keys = 0;
    }
    struct peer_ref refs[N_PEER];
    size_t n = 0;
    for (; keys != 0; keys &= keys - 1) {
        size_t i = (size_t)__builtin_ctzll(keys);
        const char *val = v->meta[K_PEER0 + i];
        if (val[0] == '\0') {
            continue;
        }
        size_t off = pb->len;
        int rv = o2d_buf_append_str(pb, stats_peer_tag_keys[i]);
        if (rv == O2D_OK) {
            rv = o2d_buf_append_byte(pb, ':');
        }
        if (rv == O2D_OK) {
            rv = stats_quantize_peer_ips(pb, val, strlen(val));
        }
        if (rv != O2D_OK) {
            return rv;
        }
        refs[n].off = off;
        refs[n].len = pb->len - off;
        n++;
    }
    int sorted = 1;
    for (size_t i = 1; i < n && sorted; i++) {
        sorted = cmp_peer(&refs[i - 1], &refs[i], pb->data) <= 0;
    }
    if (!sorted) {
        qsort_r(refs, n, sizeof(refs[0]), cmp_peer, pb->data);
    }
    for (size_t i = 0; i < n; i++) {
        out[i].p = (const char *)pb->data + refs[i].off;
        out[i].n = refs[i].len;
    }
    *n_out = n;
    return O2D_OK;
}

/*
 * A span on its way into its group, in two steps: span_key() reads the span and makes its
 * group key (and hash), span_count() finds or makes the group and counts the span.
 * stats_add_payload keys the next span before it counts this one, and the key step asks for
 * the bucket table slot it will probe: the table of a busy bucket (thousands of groups) is
 * mostly out of cache, and that miss was most of the time add_span took.
 */
struct pending {
    int ready; /* a span to count (not skipped) */
    const DdSpan *s;
    struct stats_bucket *b;
    double weight;
    int top;
    struct stats_group k;
    struct str peers[N_PEER];
    char grpc[24];
};

/* Reads s into p (p->ready 0 when it is not counted); peer tags go to pb. */
static int span_key(struct stats_concentrator *c, struct stats_pkey *pk, const DdSpan *s,
                    int synthetics, double weight, struct o2d_buf *pb, struct pending *p)
{
    struct span_view v;
    int top = 0, measured = 0;
    p->ready = 0;
    v.has_meta = 0;
    v.has_metric = 0;
    for (size_t i = 0; i < s->n_metrics; i++) {
        const Datadog__Trace__Span__MetricsEntry *e = s->metrics[i];
        int id = e->key != NULL ? key_id(c, e->key) : -1;
        if (id >= 0 && id < K_PEER0) {
            v.metric[id] = e->value;
            v.has_metric |= 1u << id;
        }
    }
    top = (view_has_metric(&v, K_TOP_LEVEL) && v.metric[K_TOP_LEVEL] == 1) ||
          (view_has_metric(&v, K_DD_TOP_LEVEL) && v.metric[K_DD_TOP_LEVEL] == 1);
    measured = view_has_metric(&v, K_MEASURED) && v.metric[K_MEASURED] == 1;
    if (!top && !measured && !c->by_kind) {
        return O2D_OK;
    }
    if (view_has_metric(&v, K_PARTIAL_VERSION) && v.metric[K_PARTIAL_VERSION] >= 0) {
        return O2D_OK;
    }
    for (size_t i = 0; i < s->n_meta; i++) {
        const Datadog__Trace__Span__MetaEntry *e = s->meta[i];
        int id = e->key != NULL ? key_id(c, e->key) : -1;
        if (id >= 0) {
            v.meta[id] = e->value != NULL ? e->value : "";
            v.has_meta |= 1ULL << id;
        }
    }
    const char *kind = view_meta(&v, K_SPAN_KIND) != NULL ? v.meta[K_SPAN_KIND] : "";
    enum span_kind kc = kind_of(kind);
    if (!top && !measured &&
        !(kc == KIND_SERVER || kc == KIND_CONSUMER || kc == KIND_CLIENT || kc == KIND_PRODUCER)) {
        return O2D_OK;
    }

    int64_t end;
    if (__builtin_add_overflow(s->start, s->duration, &end)) {
        end = INT64_MAX;
    }
    int64_t btime = end - end % c->bucket_ns;
    if (btime < c->oldest_ts) {
        btime = c->oldest_ts;
    }
    struct stats_bucket *b = bucket_get(c, btime);
    if (b == NULL) {
        c->counters.groups_dropped++;
        return c->n_buckets >= MAX_BUCKETS ? O2D_OK : O2D_ERR_NOMEM;
    }

    /* the key's fields only (not the sums and sketches group_new sets): no memset */
    struct stats_group *k = &p->k;
    k->pk = pk;
    k->http_status = 0;
    k->peer_hash = 0;
    k->n_peer = 0;
    k->peer = NULL;
    k->service = cstr(s->service);
    k->name = cstr(s->name);
    k->resource = cstr(s->resource);
    k->type = cstr(s->type);
    k->kind = cstr(kind);
    /* HTTP status: the metric first (7.39.0+), else the meta parsed as uint32 */
    if (view_has_metric(&v, K_HTTP_STATUS)) {
        k->http_status = metric_u32(v.metric[K_HTTP_STATUS]);
    } else if (view_meta(&v, K_HTTP_STATUS) != NULL &&
               !parse_u32(v.meta[K_HTTP_STATUS], &k->http_status)) {
        k->http_status = 0;
    }
    char *grpc = p->grpc;
    grpc[0] = '\0';
    int grpc_found = 0;
    for (int i = K_GRPC0; i <= K_GRPC3 && !grpc_found; i++) {
        if (view_meta(&v, i) != NULL && v.meta[i][0] != '\0') {
            stats_grpc_code_from_string(v.meta[i], grpc);
            grpc_found = 1;
        }
    }
    for (int i = K_GRPC0; i <= K_GRPC3 && !grpc_found; i++) {
        if (view_has_metric(&v, i)) {
            double m = v.metric[i];
            snprintf(grpc, sizeof(p->grpc), "%llu",
                     m >= 0 && m < 18446744073709551616.0 ? (unsigned long long)m : 0ULL);
            grpc_found = 1;
        }
    }
    k->grpc = cstr(grpc);
    k->synthetics = (uint8_t)synthetics;
    k->trace_root = s->parentid == 0 ? 1 : 2;
    if (c->peer_agg) {
        int rv = peer_tags(pb, &v, kc, p->peers, &k->n_peer);
        if (rv != O2D_OK) {
            return rv;
        }
        k->peer_hash = hash_tags(p->peers, k->n_peer);
        k->peer = p->peers;
    }

    uint64_t h = (uint64_t)(uintptr_t)pk * 0x9e3779b97f4a7c15ULL;
    h = hash_bytes(h, k->service.p, k->service.n);
    h = hash_bytes(h, k->name.p, k->name.n);
    h = hash_bytes(h, k->resource.p, k->resource.n);
    h = hash_bytes(h, k->type.p, k->type.n);
    h = hash_bytes(h, k->kind.p, k->kind.n);
    h = hash_bytes(h, k->grpc.p, k->grpc.n);
    h ^= k->peer_hash;
    h ^= ((uint64_t)k->http_status << 8) | ((uint64_t)k->synthetics << 4) | k->trace_root;
    k->hash = mix64(h);
    if (b->table_cap > 0) {
        __builtin_prefetch(&b->table[k->hash & (b->table_cap - 1)]);
    }
    p->ready = 1;
    p->s = s;
    p->b = b;
    p->weight = weight;
    p->top = top;
    return O2D_OK;
}

/* Counts a span span_key made ready. */
static int span_count(struct stats_concentrator *c, const struct pending *p)
{
    const DdSpan *s = p->s;
    struct stats_group *g;
    int rv = group_get(c, p->b, &p->k, &g);
    if (rv != O2D_OK) {
        return rv;
    }
    if (g == NULL) {
        c->counters.groups_dropped++;
        return O2D_OK;
    }
    /*
     * statsraw.go RawBucket.add: the counters are weighted by the chunk root's 1/_sample_rate
     * (a trace kept by an upstream sampler at rate r stands for 1/r traces); the latency
     * sketches are not.
     */
    double weight = p->weight;
    double dur = s->duration > 0 ? (double)s->duration : 0;
    double trunc = ddsketch_trunc_ns(s->duration > 0 ? s->duration : 0);
    rv = ddsketch_add(s->error != 0 ? &g->err : &g->ok, trunc);
    if (rv != O2D_OK) {
        return rv;
    }
    g->hits += weight;
    if (s->error != 0) {
        g->errors += weight;
    }
    g->duration += dur * weight;
    if (p->top) {
        g->top_level_hits += weight;
    }
    c->counters.spans_counted++;
    return O2D_OK;
}

/* The span's `_sample_rate` metric: 1 and *out when present. */
static int span_sample_rate(const DdSpan *s, double *out)
{
    for (size_t i = 0; i < s->n_metrics; i++) {
        const char *k = s->metrics[i]->key;
        if (k != NULL && k[0] == '_' && strcmp(k, "_sample_rate") == 0) {
            *out = s->metrics[i]->value;
            return 1;
        }
    }
    return 0;
}

/* Is some span of the chunk's spans[0..n) `id`? A set of span ids when the chunk is large. */
static int chunk_has_span(const DdTraceChunk *ch, const uint64_t *set, size_t cap, uint64_t id)
{
    if (set == NULL) {
        for (size_t i = 0; i < ch->n_spans; i++) {
            if (ch->spans[i]->spanid == id) {
                return 1;
            }
        }
        return 0;
    }
    /* span id 0 never enters the set (0 marks an empty slot); a parent id of 0 is handled
     * before any lookup. */
    for (size_t h = (size_t)(mix64(id) & (cap - 1));; h = (h + 1) & (cap - 1)) {
        if (set[h] == 0) {
            return 0;
        }
        if (set[h] == id) {
            return 1;
        }
    }
}

/*
 * traceutil.GetRoot (pkg/trace/traceutil/trace.go): the last span with no parent, else a span
 * whose parent is not in the chunk (the first such here, where Go picks one of its map), else
 * the last span. NULL for an empty chunk; O2D_ERR_NOMEM when the id set cannot be built.
 */
static int chunk_root(const DdTraceChunk *ch, const DdSpan **out)
{
    size_t n = ch->n_spans;
    *out = n > 0 ? ch->spans[n - 1] : NULL;
    for (size_t i = n; i-- > 0;) {
        if (ch->spans[i]->parentid == 0) {
            *out = ch->spans[i];
            return O2D_OK;
        }
    }
    uint64_t *set = NULL;
    size_t cap = 0;
    if (n > 32) {
        cap = 64;
        while (cap < 2 * n) {
            cap *= 2;
        }
        set = o2d_calloc(cap, sizeof(*set));
        if (set == NULL) {
            return O2D_ERR_NOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t id = ch->spans[i]->spanid;
            if (id == 0) {
                continue;
            }
            size_t h = (size_t)(mix64(id) & (cap - 1));
            while (set[h] != 0 && set[h] != id) {
                h = (h + 1) & (cap - 1);
            }
            set[h] = id;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!chunk_has_span(ch, set, cap, ch->spans[i]->parentid)) {
            *out = ch->spans[i];
            break;
        }
    }
    o2d_free(set);
    return O2D_OK;
}

/* weight.go: 1 / the root's _sample_rate when that is in (0, 1], else 1. */
static int chunk_weight(const DdTraceChunk *ch, double *out)
{
    *out = 1;
    double rate;
    int any = 0;
    for (size_t i = 0; i < ch->n_spans && !any; i++) {
        any = span_sample_rate(ch->spans[i], &rate);
    }
    if (!any) {
        return O2D_OK; /* no span says it was sampled: the root does not either */
    }
    const DdSpan *root;
    int rv = chunk_root(ch, &root);
    if (rv != O2D_OK) {
        return rv;
    }
    if (root != NULL && span_sample_rate(root, &rate) && rate > 0 && rate <= 1) {
        *out = 1.0 / rate;
    }
    return O2D_OK;
}

int stats_add_payload(struct stats_concentrator *c, const DdTracerPayload *tp)
{
    struct stats_pkey *pk;
    int rv = pkey_get(c, tp, &pk);
    if (rv != O2D_OK) {
        return rv;
    }
    /* each span is keyed, then the one keyed before it counted (struct pending): spans are
     * counted in order, and the error of either step ends the payload as before */
    struct pending p[2];
    p[0].ready = p[1].ready = 0;
    unsigned cur = 0;
    for (size_t i = 0; rv == O2D_OK && i < tp->n_chunks; i++) {
        const DdTraceChunk *ch = tp->chunks[i];
        int synthetics = ch->origin != NULL && strncmp(ch->origin, "synthetics", 10) == 0;
        double weight;
        rv = chunk_weight(ch, &weight);
        for (size_t j = 0; rv == O2D_OK && j < ch->n_spans; j++) {
            int krv = span_key(c, pk, ch->spans[j], synthetics, weight, &c->peer_buf[cur], &p[cur]);
            cur ^= 1;
            if (p[cur].ready) {
                p[cur].ready = 0;
                rv = span_count(c, &p[cur]);
            }
            if (rv == O2D_OK) {
                rv = krv;
            }
        }
    }
    if (rv == O2D_OK && p[cur ^ 1].ready) {
        rv = span_count(c, &p[cur ^ 1]);
    }
    if (pk->refs == 0) {
        pkeys_collect(c);
    }
    return rv;
}

/* ---- flushing ---- */

struct entry {
    size_t pk_id;
    int64_t start;
    const struct stats_group *g;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->pk_id != y->pk_id) {
        return x->pk_id < y->pk_id ? -1 : 1;
    }
    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    return 0;
}

static int pack_str(msgpack_packer *pk, struct str s)
{
    return msgpack_pack_str(pk, s.n) | msgpack_pack_str_body(pk, s.p, s.n);
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    return pack_str(pk, cstr(s));
}

static int pack_key(msgpack_packer *pk, const char *k)
{
    return pack_cstr(pk, k);
}

static int pack_sketch(struct stats_concentrator *c, msgpack_packer *pk, const struct ddsketch *s)
{
    size_t n = ddsketch_encoded_size(s);
    o2d_buf_reset(&c->sketch_buf);
    if (o2d_buf_reserve(&c->sketch_buf, n) != O2D_OK) {
        return -1;
    }
    ddsketch_encode(s, c->sketch_buf.data);
    return msgpack_pack_bin(pk, n) | msgpack_pack_bin_body(pk, c->sketch_buf.data, n);
}

/* statsraw.go Export: uint64(math.Round(x)); math.Round rounds half away from zero. */
static uint64_t round_u64(double x)
{
    if (!(x > 0)) {
        return 0;
    }
    if (x >= 18446744073709551615.0) {
        return UINT64_MAX;
    }
    return (uint64_t)round(x);
}

static int pack_group(struct stats_concentrator *c, msgpack_packer *pk, const struct stats_group *g)
{
    int r = msgpack_pack_map(pk, 19);
    r |= pack_key(pk, "Service") | pack_str(pk, g->service);
    r |= pack_key(pk, "Name") | pack_str(pk, g->name);
    r |= pack_key(pk, "Resource") | pack_str(pk, g->resource);
    r |= pack_key(pk, "HTTPStatusCode") | msgpack_pack_uint32(pk, g->http_status);
    r |= pack_key(pk, "Type") | pack_str(pk, g->type);
    r |= pack_key(pk, "DBType") | pack_cstr(pk, "");
    r |= pack_key(pk, "Hits") | msgpack_pack_uint64(pk, round_u64(g->hits));
    r |= pack_key(pk, "Errors") | msgpack_pack_uint64(pk, round_u64(g->errors));
    r |= pack_key(pk, "Duration") | msgpack_pack_uint64(pk, round_u64(g->duration));
    r |= pack_key(pk, "OkSummary") | pack_sketch(c, pk, &g->ok);
    r |= pack_key(pk, "ErrorSummary") | pack_sketch(c, pk, &g->err);
    r |= pack_key(pk, "Synthetics") |
         (g->synthetics ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    r |= pack_key(pk, "TopLevelHits") | msgpack_pack_uint64(pk, round_u64(g->top_level_hits));
    r |= pack_key(pk, "SpanKind") | pack_str(pk, g->kind);
    r |= pack_key(pk, "PeerTags") | msgpack_pack_array(pk, g->n_peer);
    for (size_t i = 0; i < g->n_peer; i++) {
        r |= pack_str(pk, g->peer[i]);
    }
    r |= pack_key(pk, "IsTraceRoot") | msgpack_pack_int32(pk, g->trace_root);
    r |= pack_key(pk, "GRPCStatusCode") | pack_str(pk, g->grpc);
    r |= pack_key(pk, "HTTPMethod") | pack_cstr(pk, "");
    r |= pack_key(pk, "HTTPEndpoint") | pack_cstr(pk, "");
    return r;
}

/* One ClientStatsPayload: entries e[0..n), all of one payload key, sorted by bucket. */
static int pack_client(struct stats_concentrator *c, msgpack_packer *pk, const struct entry *e,
                       size_t n, uint64_t sequence)
{
    size_t n_buckets = 0;
    for (size_t j = 0; j < n; j++) {
        n_buckets += j == 0 || e[j].start != e[j - 1].start;
    }
    const struct stats_pkey *p = e[0].g->pk;
    int r = msgpack_pack_map(pk, 14);
    r |= pack_key(pk, "Hostname") | pack_str(pk, p->hostname);
    r |= pack_key(pk, "Env") | pack_str(pk, p->env);
    r |= pack_key(pk, "Version") | pack_str(pk, p->version);
    r |= pack_key(pk, "Stats") | msgpack_pack_array(pk, n_buckets);
    for (size_t b = 0; b < n && r == 0;) {
        size_t d = b;
        while (d < n && e[d].start == e[b].start) {
            d++;
        }
        r |= msgpack_pack_map(pk, 4);
        r |= pack_key(pk, "Start") | msgpack_pack_uint64(pk, (uint64_t)e[b].start);
        r |= pack_key(pk, "Duration") | msgpack_pack_uint64(pk, (uint64_t)c->bucket_ns);
        r |= pack_key(pk, "Stats") | msgpack_pack_array(pk, d - b);
        for (size_t g = b; g < d && r == 0; g++) {
            r |= pack_group(c, pk, e[g].g);
        }
        r |= pack_key(pk, "AgentTimeShift") | msgpack_pack_int64(pk, 0);
        b = d;
    }
    r |= pack_key(pk, "Lang") | pack_str(pk, p->lang);
    r |= pack_key(pk, "TracerVersion") | pack_cstr(pk, "");
    r |= pack_key(pk, "RuntimeID") | pack_cstr(pk, "");
    r |= pack_key(pk, "Sequence") | msgpack_pack_uint64(pk, sequence);
    r |= pack_key(pk, "AgentAggregation") | pack_cstr(pk, "");
    r |= pack_key(pk, "Service") | pack_cstr(pk, "");
    r |= pack_key(pk, "ContainerID") | pack_str(pk, p->container_id);
    r |= pack_key(pk, "Tags") | msgpack_pack_array(pk, p->n_tags);
    for (size_t t = 0; t < p->n_tags; t++) {
        r |= pack_str(pk, p->tags[t]);
    }
    r |= pack_key(pk, "GitCommitSha") | pack_str(pk, p->git_sha);
    r |= pack_key(pk, "ImageTag") | pack_str(pk, p->image_tag);
    return r;
}

/* One StatsPayload of entries e[0..n), sorted by payload key then bucket. */
static int pack_payload(struct stats_concentrator *c, msgpack_packer *pk, const struct entry *e,
                        size_t n, int split)
{
    size_t n_clients = 0;
    for (size_t i = 0; i < n; i++) {
        n_clients += i == 0 || e[i].pk_id != e[i - 1].pk_id;
    }
    int r = msgpack_pack_map(pk, 6);
    r |= pack_key(pk, "AgentHostname") | pack_cstr(pk, c->agent_hostname);
    r |= pack_key(pk, "AgentEnv") | pack_cstr(pk, c->agent_env);
    r |= pack_key(pk, "Stats") | msgpack_pack_array(pk, n_clients);
    for (size_t i = 0; i < n && r == 0;) {
        size_t j = i;
        while (j < n && e[j].pk_id == e[i].pk_id) {
            j++;
        }
        r |= pack_client(c, pk, e + i, j - i, 0);
        i = j;
    }
    r |= pack_key(pk, "AgentVersion") | pack_cstr(pk, c->agent_version);
    r |= pack_key(pk, "ClientComputed") | msgpack_pack_false(pk);
    r |= pack_key(pk, "SplitPayload") | (split ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    return r;
}

/* Where flush() sends what it packs: whole StatsPayloads, or one ClientStatsPayload per
 * payload key and at most MAX_ENTRIES_PER_PAYLOAD groups. */
struct sink {
    int (*emit)(void *ctx, const uint8_t *msgpack, size_t len);
    stats_client_emit_fn emit_client;
    void *ctx;
};

/* Packs e[0..n) (one payload key when to a client sink) into c->out and emits it. Returns
 * the first error; *rv keeps the first error across calls. */
static void pack_emit(struct stats_concentrator *c, const struct sink *k, const struct entry *e,
                      size_t n, int split, int *rv)
{
    msgpack_packer pk;
    struct o2d_msgpack_out oc;
    o2d_buf_reset(&c->out);
    o2d_msgpack_init(&pk, &oc, &c->out);
    int pr = k->emit_client != NULL ? pack_client(c, &pk, e, n, c->client_sequence + 1)
                                    : pack_payload(c, &pk, e, n, split);
    if (pr != 0) {
        if (*rv == O2D_OK) {
            *rv = oc.rv != O2D_OK ? oc.rv : O2D_ERR_NOMEM;
        }
        return;
    }
    int erv;
    if (k->emit_client != NULL) {
        /* The tracers' Datadog-Meta-Lang header, from the key's language. */
        const struct stats_pkey *p = e[0].g->pk;
        char lang[64];
        snprintf(lang, sizeof(lang), "%.*s", (int)(p->lang.n < 63 ? p->lang.n : 63), p->lang.p);
        c->client_sequence++;
        erv = k->emit_client(k->ctx, c->out.data, c->out.len, lang);
    } else {
        erv = k->emit(k->ctx, c->out.data, c->out.len);
    }
    c->counters.payloads++;
    if (erv != O2D_OK && *rv == O2D_OK) {
        *rv = erv;
    }
}

static int flush(struct stats_concentrator *c, int64_t now_ns, int force, const struct sink *sk)
{
    int rv = O2D_OK;
    struct stats_bucket *closed = NULL;
    struct entry *entries = NULL;
    size_t n = 0;

    /* Detach the closed buckets: start <= now - bufferLen * width, or all when forced. */
    int64_t limit = now_ns < INT64_MIN + BUFFER_LEN * c->bucket_ns
                        ? INT64_MIN
                        : now_ns - BUFFER_LEN * c->bucket_ns;
    for (struct stats_bucket **pp = &c->buckets; *pp != NULL;) {
        struct stats_bucket *b = *pp;
        if (force || b->start <= limit) {
            *pp = b->next;
            b->next = closed;
            closed = b;
            c->n_buckets--;
            n += b->n_groups;
        } else {
            pp = &b->next;
        }
    }
    c->last = NULL;
    int64_t oldest = now_ns - now_ns % c->bucket_ns - (BUFFER_LEN - 1) * c->bucket_ns;
    if (oldest > c->oldest_ts) {
        c->oldest_ts = oldest;
    }
    if (n == 0) {
        goto out;
    }

    entries = o2d_malloc(n * sizeof(*entries));
    if (entries == NULL) {
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    size_t id = 0;
    for (struct stats_pkey *p = c->pkeys; p != NULL; p = p->next) {
        p->id = id++;
    }
    size_t k = 0;
    for (struct stats_bucket *b = closed; b != NULL; b = b->next) {
        for (size_t i = 0; i < b->table_cap; i++) {
            if (b->table[i].g != NULL) {
                entries[k].pk_id = b->table[i].g->pk->id;
                entries[k].start = b->start;
                entries[k].g = b->table[i].g;
                k++;
            }
        }
    }
    qsort(entries, n, sizeof(*entries), cmp_entry);

    if (sk->emit_client != NULL) {
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && entries[j].pk_id == entries[i].pk_id) {
                j++;
            }
            for (size_t q = i; q < j; q += MAX_ENTRIES_PER_PAYLOAD) {
                size_t m = j - q < MAX_ENTRIES_PER_PAYLOAD ? j - q : MAX_ENTRIES_PER_PAYLOAD;
                pack_emit(c, sk, entries + q, m, 0, &rv);
            }
            i = j;
        }
    } else {
        int split = n > MAX_ENTRIES_PER_PAYLOAD;
        for (size_t i = 0; i < n; i += MAX_ENTRIES_PER_PAYLOAD) {
            size_t m = n - i < MAX_ENTRIES_PER_PAYLOAD ? n - i : MAX_ENTRIES_PER_PAYLOAD;
            pack_emit(c, sk, entries + i, m, split, &rv);
        }
    }
    /* Keep the output buffer for the next flush only when it is of a usual size. */
    if (c->out.cap > (4u << 20)) {
        o2d_buf_cleanup(&c->out);
    }

out:
    o2d_free(entries);
    while (closed != NULL) {
        struct stats_bucket *b = closed;
        closed = b->next;
        bucket_free(b);
    }
    pkeys_collect(c);
    return rv;
}

int stats_flush(struct stats_concentrator *c, int64_t now_ns, int force,
                int (*emit)(void *ctx, const uint8_t *msgpack, size_t len), void *ctx)
{
    struct sink k = {.emit = emit, .ctx = ctx};
    return flush(c, now_ns, force, &k);
}

int stats_flush_client(struct stats_concentrator *c, int64_t now_ns, int force,
                       stats_client_emit_fn emit, void *ctx)
{
    struct sink k = {.emit_client = emit, .ctx = ctx};
    return flush(c, now_ns, force, &k);
}
