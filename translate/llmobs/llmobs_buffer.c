/*
 * llmobs_buffer.c: holds LLM Obs spans until their LLM Obs parent and trace are known
 * (../shared/reference/llmobs.md 7.3: parent = nearest LLM Obs ancestor by the OTel parent
 * chain, else "undefined"; each LLM Obs root starts its own LLM Obs trace).
 *
 * State per OTel trace (hash table keyed by the 16-byte trace id, plus a list in first-seen
 * order): a span map (open addressing, keyed by span id) of skeleton entries (parent, remote
 * flag, is-LLM) for every span seen of a trace known to have LLM Obs spans, each entry also
 * holding the gen_ai log records that wait for that span (packed protobuf bytes); and the held
 * LLM Obs spans, in arrival order.
 *
 * Rules chosen here:
 * - A span is ready when the walk up its parents reaches a span without a parent or with a
 *   remote parent (this walk also covers its LLM ancestors' chains). A missing link waits.
 * - The deadline runs per span from its arrival (a long agent run whose spans trickle in keeps
 *   each span waiting its full deadline); a log record waits deadline_ns from its arrival. At
 *   the deadline (or at a forced poll) a span goes out with the chain as far as known.
 * - Spans leave in a deterministic order: traces by first seen, then spans by arrival (the
 *   llmobs_span contract exposes no start time, so arrival order stands in for it).
 * - Bounds: max_spans counts skeleton entries (one per span seen, LLM Obs or not); max_bytes
 *   the bytes of everything still waiting. Before state is added past either, trace state is
 *   given up oldest first: traces with no held LLM span are dropped, then traces with held
 *   spans have their parents decided now (forced_by_bound) and their skeletons and waiting
 *   logs freed. Decided spans are on their way out: they hold their bytes (bytes_held) until
 *   the next poll writes them, and the caller polls after each batch, so the overshoot is at
 *   most one batch.
 * - A log record whose span was already written, or is not an LLM Obs span, is counted as
 *   unmatched at once; one whose span never comes is counted when its deadline passes. Each
 *   is counted with its reason (llmobs_buffer_counters).
 * - Late log records: an llm span whose content can still come as log records
 *   (llmobs_span_awaits_logs: an OTel GenAI instrumentation's span without content) is held
 *   up to log_window_ns after its arrival, on top of its chain, and leaves at the first poll
 *   after its output record joined. An app's SDK exports log records and spans on separate
 *   timers (BatchLogRecordProcessor 1 s, BatchSpanProcessor 5 s by default), so the records
 *   of a call may come after its span by up to the log timer plus an export. Spans with their
 *   content are never held; spans decided by a bound are not either.
 * - Parents before children: within a trace, a span whose LLM Obs parent is still held waits
 *   for it (only when its chain is settled: a looping chain never blocks), so an LLM Obs
 *   trace's events leave parents first.
 * - Session and ml_app: a span without a session id takes its nearest LLM Obs ancestor's,
 *   and a span whose ml_app was not set for its own resource takes the ml_app of its
 *   ancestors (the nearest one set for its resource, else the topmost), as Datadog's SDKs do
 *   (dd-trace-py ddtrace/llmobs/_utils.py _get_session_id, _get_ml_app: there a span's
 *   ml_app is fixed at its start from its ancestors'); skeleton entries keep both for their
 *   LLM Obs span after it has been written, for its descendants.
 *
 * Memory is accounted as llmobs_span_size() plus the fixed costs below; it leaves I/O, locks
 * and the clock to the caller.
 */
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

#include "llmobs_buffer.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"

/* Where a held span's parent came from; also which counter its emission feeds. */
enum decision {
    UNDECIDED = 0,
    BY_ROOT,
    BY_DEADLINE,
    BY_BOUND,
};

struct held_log {
    struct held_log *next;
    int64_t arrived_ns;
    size_t len;
    uint8_t data[]; /* the OtlpLogRecord, packed */
};

/* Kept in its span's hold area (llmobs_span_hold): it comes and goes with the span. */
struct pend {
    struct pend *next; /* arrival order */
    struct llmobs_span *sp;
    uint64_t span_id;
    int64_t arrived_ns;
    size_t bytes;          /* accounted: llmobs_span_size(), the pend included */
    int64_t hold_until;    /* held for its log records until then (0: not held) */
    enum decision decided; /* BY_BOUND once its trace's skeleton was given up */
    uint64_t parent_id;    /* when decided */
    uint64_t root_id;      /* when decided */
};

struct skel {
    uint64_t span_id; /* 0: empty slot (otlp_decode refuses all-zero span ids) */
    uint64_t parent_id;
    uint8_t seen; /* 0: only log records wait here, the span itself has not come */
    uint8_t parent_remote;
    uint8_t is_llm;
    uint8_t ml_app_explicit; /* inh's ml_app was set for the span's own resource */
    struct pend *pend;       /* the held LLM Obs span, NULL once written */
    /* What descendants inherit from its LLM Obs span, kept after it was written: its session
     * id and ml_app as "session\0ml_app\0" ("" for none) in its trace's inh pool, at offset
     * inh - 1 (0: none). One word, not two pointers, keeps the entry (and the map memset per
     * trace) small. */
    size_t inh;
    struct held_log *logs;
    struct held_log **logs_tail;
};

struct trace {
    uint8_t id[16];
    uint64_t seed;               /* the buffer's */
    struct trace *hnext;         /* hash chain */
    struct trace *older, *newer; /* first-seen order */
    int64_t first_ns;
    int64_t last_ns; /* last span, note or log added */
    int wants_skel;  /* known to have LLM Obs spans: keep skeletons */
    int changed;     /* something to look at in the next poll */
    int64_t wake_ns; /* nothing to do before this unless changed */
    uint64_t seq;    /* first-seen order, for the order traces are polled in */
    size_t due_idx;  /* its place in the buffer's due heap; NOT_DUE when not in it */
    struct skel *map;
    size_t map_cap, map_n;
    size_t n_logs;
    int64_t oldest_log_ns;
    struct pend *pends, **pends_tail;
    size_t n_pends;
    /* The skeleton's inh strings, one block a trace (accounted as its length, sized exactly):
     * the spans of a trace mostly share one session and ml_app, kept once, instead of an
     * allocation each. inh_last: 1 + the offset of the entry added last (0: none). */
    char *inh_pool;
    size_t inh_len, inh_last;
    size_t n_detached; /* pends with no map entry (decided by a bound) */
    size_t bytes;      /* accounted bytes of this trace */
};

struct llmobs_buffer {
    struct llmobs_buffer_config cfg;
    /* Ids come from clients: a per-process seed (the buffer's address under ASLR) keeps
     * crafted ids from piling into one chain. Emission order never depends on it. */
    uint64_t seed;
    struct trace **buckets;
    size_t n_buckets;
    size_t n_traces;
    size_t n_idle;   /* traces that hold no LLM Obs span: what make_room's first step frees */
    size_t n_mapped; /* traces with a skeleton (map_n > 0): what its second step can decide */
    struct trace *oldest, *newest;
    /* Every trace, in a min-heap by when it next needs a poll (INT64_MIN once changed), so a
     * poll visits only the traces that are due instead of walking all of them: with ids that
     * never repeat, tens of thousands of traces sit here with nothing to do but expire. `due`
     * is the poll's scratch list; both have room for every trace (grown in trace_new), so a
     * poll never allocates. */
    struct due_ent *heap;
    struct trace **due;
    size_t heap_n, heap_cap;
    uint64_t next_seq;
    size_t units;        /* skeleton entries (one per span), against max_spans */
    size_t bytes;        /* everything held */
    size_t forced_bytes; /* of spans decided by a bound: on their way out, not waiting */
    /* make_room's start: every trace older than it holds spans waiting to be sent and no
     * skeletons, so make_room can do nothing with it (NULL: the oldest). Without it, a buffer
     * at its bound walked every such trace on each add while the sender caught up. */
    struct trace *room_from;
    struct llmobs_buffer_counters c;
    struct o2d_buf out; /* the event being emitted, after `front` bytes left to emit */
    size_t front;
    /* SHA-256 for the LLM Obs trace ids, fetched once: EVP_Digest(EVP_sha256()) fetches the
     * algorithm and allocates a context on every call, over half of what an id cost. NULL
     * when OpenSSL could not give them; llmobs_trace_id() is used then. */
    EVP_MD *sha256;
    EVP_MD_CTX *md_ctx;
    /* The last id computed: spans of one LLM Obs trace leave one after the other. */
    int tid_valid;
    /* The span whose event emit is being handed (llmobs_buffer_emitting). */
    uint8_t emit_trace[16];
    uint64_t emit_span;
    uint8_t tid_trace[16];
    uint64_t tid_root;
    char tid[33];
};

struct due_ent {
    int64_t key; /* copied from the trace: sifting touches only the heap array */
    struct trace *t;
};

#define NOT_DUE SIZE_MAX

/* A map slot per entry at load <= 1/2. */
#define ENTRY_COST  (2 * sizeof(struct skel))
#define TRACE_COST  (sizeof(struct trace))
#define MAP_MIN_CAP 8
#define OUT_MIN_MAX ((size_t)64 * 1024 * 1024)

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t read_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) {
        return INT64_MAX;
    }
    return a + b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Word loads, not read_be64: the byte order of the key does not matter to a hash, and the
 * byte-at-a-time loop was most of this function's cost (one call per span added). */
static uint64_t trace_hash(const struct llmobs_buffer *b, const uint8_t id[16])
{
    uint64_t hi, lo;
    memcpy(&hi, id, 8);
    memcpy(&lo, id + 8, 8);
    return mix64(hi ^ mix64(lo ^ b->seed));
}

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return o2d_malloc(size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    o2d_free(p);
}

static ProtobufCAllocator pb_allocator = {
    .alloc = pb_alloc, .free = pb_free, .allocator_data = NULL};

/* md and ctx: a fetched SHA-256 and a context to reuse, or NULL for one-off ones. */
static void trace_id_with(EVP_MD *sha256, EVP_MD_CTX *ctx, const uint8_t trace_id[16],
                          uint64_t root_span_id, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t in[24];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    memcpy(in, trace_id, 16);
    for (int i = 0; i < 8; i++) {
        in[16 + i] = (uint8_t)(root_span_id >> (56 - 8 * i));
    }
    int ok = sha256 != NULL && ctx != NULL
                 ? EVP_DigestInit_ex2(ctx, sha256, NULL) == 1 &&
                       EVP_DigestUpdate(ctx, in, sizeof(in)) == 1 &&
                       EVP_DigestFinal_ex(ctx, md, &md_len) == 1
                 : EVP_Digest(in, sizeof(in), md, &md_len, EVP_sha256(), NULL) == 1;
    if (!ok || md_len < 16) {
        /* Only an OpenSSL allocation failure gets here: fall back to the OTel trace id, still
         * deterministic, rather than leave the caller without an id. */
        memcpy(md, trace_id, 16);
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
}

void llmobs_trace_id(const uint8_t trace_id[16], uint64_t root_span_id, char out[33])
{
    trace_id_with(NULL, NULL, trace_id, root_span_id, out);
}

/* ---- per-trace span map ---- */

/* A skeleton entry's inh strings in its trace's pool, or NULL. */
static const char *inh_of(const struct trace *t, const struct skel *s)
{
    return s->inh != 0 ? t->inh_pool + s->inh - 1 : NULL;
}

/* The parts of a skeleton entry's inh ("session\0ml_app\0"): NULL for an empty one. */
static const char *inh_session(const char *inh)
{
    return inh != NULL && inh[0] != '\0' ? inh : NULL;
}

static const char *inh_ml_app(const char *inh)
{
    if (inh == NULL) {
        return NULL;
    }
    const char *m = inh + strlen(inh) + 1;
    return m[0] != '\0' ? m : NULL;
}

static struct skel *map_find(const struct trace *t, uint64_t span_id)
{
    if (t->map_cap == 0 || span_id == 0) {
        return NULL;
    }
    size_t mask = t->map_cap - 1;
    for (size_t i = mix64(span_id ^ t->seed) & mask;; i = (i + 1) & mask) {
        if (t->map[i].span_id == span_id) {
            return &t->map[i];
        }
        if (t->map[i].span_id == 0) {
            return NULL;
        }
    }
}

static struct skel *map_slot(struct skel *map, size_t cap, uint64_t seed, uint64_t span_id)
{
    size_t mask = cap - 1;
    size_t i = mix64(span_id ^ seed) & mask;
    while (map[i].span_id != 0 && map[i].span_id != span_id) {
        i = (i + 1) & mask;
    }
    return &map[i];
}

/* Grows the map to hold `want` entries at load <= 1/2 (at least doubling). */
static int map_grow(struct trace *t, size_t want)
{
    size_t cap = t->map_cap ? t->map_cap * 2 : MAP_MIN_CAP;
    while (cap / 2 < want && cap <= SIZE_MAX / 2) {
        cap *= 2;
    }
    if (cap < t->map_cap || cap > SIZE_MAX / sizeof(struct skel)) {
        return O2D_ERR_NOMEM;
    }
    struct skel *m = o2d_calloc(cap, sizeof(*m));
    if (m == NULL) {
        return O2D_ERR_NOMEM;
    }
    for (size_t i = 0; i < t->map_cap; i++) {
        struct skel *old = &t->map[i];
        if (old->span_id == 0) {
            continue;
        }
        struct skel *s = map_slot(m, cap, t->seed, old->span_id);
        *s = *old;
        if (old->logs != NULL) {
            /* The tail may point into the old slot. */
            struct held_log *l = s->logs;
            while (l->next != NULL) {
                l = l->next;
            }
            s->logs_tail = &l->next;
        } else {
            s->logs_tail = &s->logs;
        }
    }
    o2d_free(t->map);
    t->map = m;
    t->map_cap = cap;
    return O2D_OK;
}

/* t may be of use to make_room again (its first skeleton, or its last pend gone): make_room
 * starts no later than t. */
static void room_may_use(struct llmobs_buffer *b, struct trace *t)
{
    if (b->room_from != NULL && t->seq < b->room_from->seq) {
        b->room_from = t;
    }
}

/* The entry for span_id, created empty (not seen) when absent; NULL on out-of-memory.
 * `more`: entries the caller is about to add after this one (the rest of a request's spans of
 * the trace), so that the map grows once to their size instead of doubling step by step;
 * the capacity is not accounted (ENTRY_COST is per entry), so the hint changes no bound. */
static struct skel *map_get(struct llmobs_buffer *b, struct trace *t, uint64_t span_id, size_t more)
{
    struct skel *s;
    if ((t->map_n + 1) * 2 > t->map_cap) {
        s = map_find(t, span_id);
        if (s != NULL) {
            return s;
        }
        if (map_grow(t, t->map_n + 1 + more) != O2D_OK) {
            return NULL;
        }
    }
    /* one probe finds the entry or the empty slot it goes in */
    s = map_slot(t->map, t->map_cap, t->seed, span_id);
    if (s->span_id == span_id) {
        return s;
    }
    memset(s, 0, sizeof(*s));
    s->span_id = span_id;
    s->logs_tail = &s->logs;
    if (t->map_n == 0) {
        room_may_use(b, t);
        b->n_mapped++;
    }
    t->map_n++;
    t->bytes += ENTRY_COST;
    b->bytes += ENTRY_COST;
    b->units++;
    return s;
}

/* Unlinks the first log record waiting in s, takes its bytes off t and b, and frees it. */
static void drop_first_log(struct llmobs_buffer *b, struct trace *t, struct skel *s)
{
    struct held_log *l = s->logs;
    s->logs = l->next;
    if (s->logs == NULL) {
        s->logs_tail = &s->logs;
    }
    size_t cost = sizeof(*l) + l->len;
    t->bytes -= cost;
    b->bytes -= cost;
    t->n_logs--;
    o2d_free(l);
}

static void count_unmatched(struct llmobs_buffer *b, uint64_t *reason)
{
    b->c.logs_unmatched++;
    (*reason)++;
}

static void free_logs(struct llmobs_buffer *b, struct trace *t, struct skel *s)
{
    while (s->logs != NULL) {
        count_unmatched(b, &b->c.logs_unmatched_dropped);
        drop_first_log(b, t, s);
    }
}

/* Frees the skeleton and the waiting log records (unmatched); held spans stay. */
static void free_map(struct llmobs_buffer *b, struct trace *t)
{
    for (size_t i = 0; i < t->map_cap; i++) {
        struct skel *s = &t->map[i];
        if (s->span_id == 0) {
            continue;
        }
        free_logs(b, t, s);
        if (s->pend != NULL) {
            t->n_detached++;
        }
    }
    t->bytes -= t->inh_len;
    b->bytes -= t->inh_len;
    o2d_free(t->inh_pool);
    t->inh_pool = NULL;
    t->inh_len = 0;
    t->inh_last = 0;
    t->bytes -= t->map_n * ENTRY_COST;
    b->bytes -= t->map_n * ENTRY_COST;
    b->units -= t->map_n;
    b->n_mapped -= t->map_n > 0;
    o2d_free(t->map);
    t->map = NULL;
    t->map_cap = 0;
    t->map_n = 0;
}

/* ---- the due heap ---- */

static void heap_set(struct llmobs_buffer *b, size_t i, struct due_ent e)
{
    b->heap[i] = e;
    e.t->due_idx = i;
}

static void heap_up(struct llmobs_buffer *b, size_t i)
{
    struct due_ent e = b->heap[i];
    while (i > 0 && b->heap[(i - 1) / 2].key > e.key) {
        heap_set(b, i, b->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(b, i, e);
}

static void heap_down(struct llmobs_buffer *b, size_t i)
{
    struct due_ent e = b->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= b->heap_n) {
            break;
        }
        if (c + 1 < b->heap_n && b->heap[c + 1].key < b->heap[c].key) {
            c++;
        }
        if (b->heap[c].key >= e.key) {
            break;
        }
        heap_set(b, i, b->heap[c]);
        i = c;
    }
    heap_set(b, i, e);
}

static void heap_remove(struct llmobs_buffer *b, struct trace *t)
{
    size_t i = t->due_idx;
    if (i == NOT_DUE) {
        return;
    }
    t->due_idx = NOT_DUE;
    b->heap_n--;
    if (i == b->heap_n) {
        return;
    }
    /* The last entry fills the hole and moves whichever way its key says (if it moves up,
     * the entry now at i came down from above it and the sift down there stops at once). */
    heap_set(b, i, b->heap[b->heap_n]);
    heap_up(b, i);
    heap_down(b, i);
}

/* Puts t in the heap (room is there, see trace_new) or moves it to its current key. */
static void heap_fix(struct llmobs_buffer *b, struct trace *t)
{
    int64_t key = t->changed ? INT64_MIN : t->wake_ns;
    size_t i = t->due_idx;
    if (i == NOT_DUE) {
        i = b->heap_n++;
        heap_set(b, i, (struct due_ent){.key = key, .t = t});
        heap_up(b, i);
        return;
    }
    int64_t old = b->heap[i].key;
    b->heap[i].key = key;
    if (key < old) {
        heap_up(b, i);
    } else if (key > old) {
        heap_down(b, i);
    }
}

static void mark_changed(struct llmobs_buffer *b, struct trace *t)
{
    if (!t->changed) {
        t->changed = 1;
        heap_fix(b, t);
    }
}

static int heap_reserve(struct llmobs_buffer *b, size_t n)
{
    if (n <= b->heap_cap) {
        return O2D_OK;
    }
    size_t cap = b->heap_cap ? b->heap_cap * 2 : 64;
    if (cap < n || cap > SIZE_MAX / sizeof(struct due_ent)) {
        return O2D_ERR_NOMEM;
    }
    struct due_ent *h = o2d_malloc(cap * sizeof(*h));
    struct trace **d = o2d_malloc(cap * sizeof(*d));
    if (h == NULL || d == NULL) {
        o2d_free(h);
        o2d_free(d);
        return O2D_ERR_NOMEM;
    }
    if (b->heap_n > 0) {
        memcpy(h, b->heap, b->heap_n * sizeof(*h));
    }
    o2d_free(b->heap);
    o2d_free(b->due);
    b->heap = h;
    b->due = d;
    b->heap_cap = cap;
    return O2D_OK;
}

/* ---- traces ---- */

static struct trace *trace_find(const struct llmobs_buffer *b, const uint8_t id[16])
{
    if (b->n_buckets == 0) {
        return NULL;
    }
    struct trace *t = b->buckets[trace_hash(b, id) & (b->n_buckets - 1)];
    while (t != NULL && memcmp(t->id, id, 16) != 0) {
        t = t->hnext;
    }
    return t;
}

/* Grows the bucket array; on failure the table keeps working with longer chains. */
static void buckets_grow(struct llmobs_buffer *b)
{
    size_t n = b->n_buckets ? b->n_buckets * 2 : 64;
    if (n < b->n_buckets || n > SIZE_MAX / sizeof(struct trace *)) {
        return;
    }
    struct trace **nb = o2d_calloc(n, sizeof(*nb));
    if (nb == NULL) {
        return;
    }
    for (size_t i = 0; i < b->n_buckets; i++) {
        struct trace *t = b->buckets[i];
        while (t != NULL) {
            struct trace *next = t->hnext;
            size_t j = trace_hash(b, t->id) & (n - 1);
            t->hnext = nb[j];
            nb[j] = t;
            t = next;
        }
    }
    o2d_free(b->buckets);
    b->buckets = nb;
    b->n_buckets = n;
}

static struct trace *trace_new(struct llmobs_buffer *b, const uint8_t id[16], int64_t now_ns)
{
    if (b->n_traces >= b->n_buckets) {
        buckets_grow(b);
        if (b->n_buckets == 0) {
            return NULL;
        }
    }
    if (heap_reserve(b, b->n_traces + 1) != O2D_OK) {
        return NULL;
    }
    struct trace *t = o2d_calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    memcpy(t->id, id, 16);
    t->seed = b->seed;
    t->first_ns = now_ns;
    t->last_ns = now_ns;
    t->wake_ns = INT64_MAX;
    t->seq = b->next_seq++;
    t->due_idx = NOT_DUE;
    t->pends_tail = &t->pends;
    t->bytes = TRACE_COST;
    b->bytes += TRACE_COST;

    size_t j = trace_hash(b, id) & (b->n_buckets - 1);
    t->hnext = b->buckets[j];
    b->buckets[j] = t;
    t->older = b->newest;
    if (b->newest != NULL) {
        b->newest->newer = t;
    } else {
        b->oldest = t;
    }
    b->newest = t;
    b->n_traces++;
    b->n_idle++;
    heap_fix(b, t);
    return t;
}

static void free_pend(struct llmobs_buffer *b, struct trace *t, struct pend *p)
{
    t->bytes -= p->bytes;
    b->bytes -= p->bytes;
    t->n_pends--;
    if (t->n_pends == 0) {
        b->n_idle++;
        room_may_use(b, t);
    }
    b->c.spans_held--;
    if (p->decided == BY_BOUND) {
        b->forced_bytes -= p->bytes;
    }
    llmobs_span_free(p->sp); /* p with it */
}

/* Unlinks and frees a trace; held spans are freed unwritten, so only the buffer's own
 * teardown and traces without held spans come here. */
static void trace_free(struct llmobs_buffer *b, struct trace *t)
{
    struct trace *newer = t->newer;
    struct trace **pp = &b->buckets[trace_hash(b, t->id) & (b->n_buckets - 1)];
    while (*pp != t) {
        pp = &(*pp)->hnext;
    }
    *pp = t->hnext;
    if (t->older != NULL) {
        t->older->newer = t->newer;
    } else {
        b->oldest = t->newer;
    }
    if (t->newer != NULL) {
        t->newer->older = t->older;
    } else {
        b->newest = t->older;
    }
    b->n_traces--;
    heap_remove(b, t);

    free_map(b, t);
    struct pend *p = t->pends;
    while (p != NULL) {
        struct pend *next = p->next;
        free_pend(b, t, p);
        p = next;
    }
    b->n_idle--; /* idle now that its pends are gone */
    b->bytes -= t->bytes;
    if (b->room_from == t) {
        b->room_from = newer; /* freeing its pends may have made t the start */
    }
    o2d_free(t);
}

/*
 * Walks up from span_id through the skeleton. Returns 1 when the chain is settled (it
 * reaches a span without a parent or with a remote parent), 0 when a link is missing or the
 * links loop; *parent (0 = none) and *root are filled as far as the walk got either way.
 * With inh, also what the span inherits from the LLM Obs ancestors the walk passes (see
 * inherit()): one walk where a ready span took two.
 */
static int resolve_inh(const struct trace *t, uint64_t span_id, uint64_t *parent, uint64_t *root,
                       struct llmobs_inherit *inh)
{
    *parent = 0;
    *root = span_id;
    int ml_app_final = 0;
    if (inh != NULL) {
        inh->session = NULL;
        inh->ml_app = NULL;
    }
    const struct skel *start = map_find(t, span_id);
    const struct skel *cur = start;
    if (cur == NULL) {
        return 0;
    }
    /* Each step visits another entry, so a walk longer than the map is a loop. */
    for (size_t steps = 0; steps <= t->map_n; steps++) {
        if (cur->parent_id == 0 || cur->parent_remote) {
            return 1;
        }
        const struct skel *next = map_find(t, cur->parent_id);
        if (next == NULL || !next->seen || next == start) {
            return 0;
        }
        if (next->is_llm) {
            if (*parent == 0) {
                *parent = next->span_id;
            }
            *root = next->span_id;
            if (inh != NULL && next->inh != 0) {
                const char *ni = inh_of(t, next);
                if (inh->session == NULL) {
                    inh->session = inh_session(ni);
                }
                const char *m = inh_ml_app(ni);
                if (!ml_app_final && m != NULL) {
                    inh->ml_app = m;
                    ml_app_final = next->ml_app_explicit;
                }
            }
        }
        cur = next;
    }
    return 0;
}

static int resolve(const struct trace *t, uint64_t span_id, uint64_t *parent, uint64_t *root)
{
    return resolve_inh(t, span_id, parent, root, NULL);
}

/* Decides every held span of t now (chain as far as known) and frees its skeleton and its
 * waiting log records. */
static void force_trace(struct llmobs_buffer *b, struct trace *t)
{
    for (struct pend *p = t->pends; p != NULL; p = p->next) {
        if (p->decided == UNDECIDED) {
            resolve(t, p->span_id, &p->parent_id, &p->root_id);
            p->decided = BY_BOUND;
            b->forced_bytes += p->bytes;
        }
    }
    free_map(b, t);
    mark_changed(b, t);
}

static int over_bound(const struct llmobs_buffer *b, size_t units, size_t bytes)
{
    return b->units + units > b->cfg.max_spans ||
           b->bytes - b->forced_bytes + bytes > b->cfg.max_bytes;
}

/*
 * Makes room for `units` entries and `bytes` bytes: first drops the oldest traces that hold
 * no LLM Obs span (skeletons and logs only), then decides the oldest traces' spans early,
 * `cur` last. Gives up quietly when nothing is left to give up.
 */
static void make_room(struct llmobs_buffer *b, struct trace *cur, size_t units, size_t bytes)
{
    if (!over_bound(b, units, bytes)) {
        return;
    }
    struct trace *start = b->room_from != NULL ? b->room_from : b->oldest;
    while (start != NULL && start->n_pends > 0 && start->map_n == 0) {
        start = start->newer;
    }
    b->room_from = start;
    /* The idle traces other than cur are all this step can free: once they are gone, the
     * rest of the list (traces whose spans wait) is not walked. Under a sustained overload
     * (the sender's queue full) that walk over every waiting trace came with every span
     * added. */
    struct trace *t = start;
    size_t idle = b->n_idle - (cur != NULL && cur->n_pends == 0);
    while (t != NULL && idle > 0 && over_bound(b, units, bytes)) {
        struct trace *next = t->newer;
        if (t != cur && t->n_pends == 0) {
            trace_free(b, t);
            idle--;
        }
        t = next;
    }
    /* the first loop may have freed `start`: room_from moved on with it. Only traces with a
     * skeleton can be decided; once each of them (but cur) has been, the walk stops instead
     * of passing every trace whose spans wait for the sender. */
    t = b->room_from != NULL ? b->room_from : b->oldest;
    size_t mapped = b->n_mapped - (cur != NULL && cur->map_n > 0);
    for (; t != NULL && mapped > 0 && over_bound(b, units, bytes); t = t->newer) {
        if (t != cur && t->map_n > 0) {
            force_trace(b, t);
            mapped--;
        }
    }
    if (cur != NULL && cur->map_n > 0 && over_bound(b, units, bytes)) {
        force_trace(b, cur);
    }
}

static struct pend *find_detached(const struct trace *t, uint64_t span_id)
{
    if (t->n_detached == 0) {
        return NULL;
    }
    for (struct pend *p = t->pends; p != NULL; p = p->next) {
        if (p->span_id == span_id && p->decided == BY_BOUND) {
            return p;
        }
    }
    return NULL;
}

static void reaccount(struct llmobs_buffer *b, struct trace *t, struct pend *p)
{
    size_t now_bytes = llmobs_span_size(p->sp);
    if (p->decided == BY_BOUND) {
        b->forced_bytes = b->forced_bytes - p->bytes + now_bytes;
    }
    t->bytes = t->bytes - p->bytes + now_bytes;
    b->bytes = b->bytes - p->bytes + now_bytes;
    p->bytes = now_bytes;
}

/* Adds the log records waiting in s to its held span; the ones not added stay. */
static int join_logs(struct llmobs_buffer *b, struct trace *t, struct skel *s)
{
    int rc = O2D_OK;
    while (s->logs != NULL) {
        struct held_log *l = s->logs;
        OtlpLogRecord *r =
            opentelemetry__proto__logs__v1__log_record__unpack(&pb_allocator, l->len, l->data);
        if (r == NULL) {
            rc = O2D_ERR_NOMEM;
            break;
        }
        rc = llmobs_span_add_log(s->pend->sp, r);
        opentelemetry__proto__logs__v1__log_record__free_unpacked(r, &pb_allocator);
        if (rc != O2D_OK) {
            break;
        }
        b->c.logs_joined++;
        drop_first_log(b, t, s);
    }
    reaccount(b, t, s->pend);
    return rc;
}

/* ---- public ---- */

int llmobs_buffer_new(struct llmobs_buffer **out, const struct llmobs_buffer_config *cfg)
{
    *out = NULL;
    if (cfg == NULL || cfg->deadline_ns < 0) {
        return O2D_ERR_INVALID;
    }
    struct llmobs_buffer *b = o2d_calloc(1, sizeof(*b));
    if (b == NULL) {
        return O2D_ERR_NOMEM;
    }
    b->cfg = *cfg;
    b->seed = mix64((uint64_t)(uintptr_t)b);
    size_t out_max = cfg->max_event_size <= (SIZE_MAX - OUT_MIN_MAX) / 2
                         ? 2 * cfg->max_event_size + OUT_MIN_MAX
                         : SIZE_MAX;
    o2d_buf_init(&b->out, out_max);
    b->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    b->md_ctx = EVP_MD_CTX_new();
    *out = b;
    return O2D_OK;
}

void llmobs_buffer_free(struct llmobs_buffer *b)
{
    if (b == NULL) {
        return;
    }
    while (b->oldest != NULL) {
        trace_free(b, b->oldest);
    }
    o2d_free(b->buckets);
    o2d_free(b->heap);
    o2d_free(b->due);
    o2d_buf_cleanup(&b->out);
    EVP_MD_CTX_free(b->md_ctx);
    EVP_MD_free(b->sha256);
    o2d_free(b);
}

int llmobs_buffer_note_trace(struct llmobs_buffer *b, const uint8_t trace_id[16], int64_t now_ns)
{
    struct trace *t = trace_find(b, trace_id);
    if (t == NULL) {
        make_room(b, NULL, 0, TRACE_COST);
        t = trace_new(b, trace_id, now_ns);
        if (t == NULL) {
            return O2D_ERR_NOMEM;
        }
    }
    t->wants_skel = 1;
    if (now_ns > t->last_ns) {
        t->last_ns = now_ns;
    }
    return O2D_OK;
}

/* s->inh = session and ml_app (either may be NULL), accounted to t, unless it is set or
 * both are NULL. Without it, descendants only miss what they would inherit. */
static void keep_inh(struct llmobs_buffer *b, struct trace *t, struct skel *s, const char *session,
                     const char *ml_app, int ml_app_explicit)
{
    if (s->inh != 0 || (session == NULL && ml_app == NULL)) {
        return;
    }
    const char *sv = session != NULL ? session : "";
    const char *mv = ml_app != NULL ? ml_app : "";
    if (t->inh_last != 0) {
        /* the same strings as the span before it: shared */
        const char *last = t->inh_pool + t->inh_last - 1;
        if (strcmp(last, sv) == 0 && strcmp(last + strlen(last) + 1, mv) == 0) {
            s->inh = t->inh_last;
            s->ml_app_explicit = (uint8_t)ml_app_explicit;
            return;
        }
    }
    size_t l1 = strlen(sv), l2 = strlen(mv);
    char *pool = o2d_realloc(t->inh_pool, t->inh_len + l1 + l2 + 2);
    if (pool == NULL) {
        return;
    }
    t->inh_pool = pool;
    char *p = pool + t->inh_len;
    memcpy(p, sv, l1 + 1);
    memcpy(p + l1 + 1, mv, l2 + 1);
    s->inh = t->inh_len + 1;
    t->inh_last = s->inh;
    t->inh_len += l1 + l2 + 2;
    s->ml_app_explicit = (uint8_t)ml_app_explicit;
    t->bytes += l1 + l2 + 2;
    b->bytes += l1 + l2 + 2;
}

/*
 * One span of llmobs_buffer_add_span(s). *tp is the trace of ids->trace_id as the caller
 * found it (NULL: not held); updated when this call creates or frees it. `more`: spans of the
 * same trace that follow in the caller's run (a map size hint only).
 */
static int add_one(struct llmobs_buffer *b, struct trace **tp, const struct llmobs_ids *ids,
                   struct llmobs_span *llm, int64_t now_ns, size_t more)
{
    int rc = O2D_ERR_NOMEM;
    struct pend *p = NULL;
    struct trace *t = *tp;
    struct skel *s = NULL;
    int created = 0;

    if (ids->span_id == 0) {
        rc = O2D_ERR_INVALID;
        goto out;
    }
    if (llm == NULL && (t == NULL || !t->wants_skel)) {
        rc = O2D_OK; /* an APM-only span of a trace without LLM Obs spans */
        goto out;
    }
    size_t bytes = ENTRY_COST + (t == NULL ? TRACE_COST : 0);
    const char *session = NULL, *ml_app = NULL;
    int ml_app_explicit = 0;
    if (llm != NULL) {
        session = llmobs_span_session(llm);
        ml_app = llmobs_span_ml_app(llm, &ml_app_explicit);
        bytes += llmobs_span_size(llm) + 2 + (session != NULL ? strlen(session) : 0) +
                 (ml_app != NULL ? strlen(ml_app) : 0);
    }
    if (over_bound(b, 1, bytes)) {
        make_room(b, t, 1, bytes);
    }

    if (t == NULL) {
        t = trace_new(b, ids->trace_id, now_ns);
        if (t == NULL) {
            goto out;
        }
        created = 1;
        *tp = t;
    }
    s = map_get(b, t, ids->span_id, more);
    if (s == NULL) {
        if (created) {
            trace_free(b, t);
            *tp = NULL;
        }
        goto out;
    }
    t->wants_skel = 1;
    if (now_ns > t->last_ns) {
        t->last_ns = now_ns;
    }
    mark_changed(b, t);
    if (!s->seen) {
        s->seen = 1;
        s->parent_id = ids->parent_span_id;
        s->parent_remote = ids->parent_is_remote ? 1 : 0;
    }
    rc = O2D_OK;
    if (llm == NULL) {
        goto out;
    }
    s->is_llm = 1;
    keep_inh(b, t, s, session, ml_app, ml_app_explicit);
    _Static_assert(sizeof(struct pend) <= LLMOBS_SPAN_HOLD, "a pend fits a span's hold area");
    p = llmobs_span_hold(llm);
    memset(p, 0, sizeof(*p));
    p->sp = llm;
    p->span_id = ids->span_id;
    p->arrived_ns = now_ns;
    p->bytes = llmobs_span_size(llm);
    t->bytes += p->bytes;
    b->bytes += p->bytes;
    *t->pends_tail = p;
    t->pends_tail = &p->next;
    if (t->n_pends++ == 0) {
        b->n_idle--;
    }
    b->c.spans_held++;
    llm = NULL;
    if (s->pend == NULL) {
        s->pend = p;
        /* A failed join leaves the logs waiting; poll tries again before writing. */
        (void)join_logs(b, t, s);
        if (b->cfg.log_window_ns > 0 && llmobs_span_awaits_logs(p->sp)) {
            p->hold_until = add_sat(now_ns, b->cfg.log_window_ns);
            b->c.held_for_logs++;
        }
    } else {
        /* A duplicate span id: both are written; log records go to the first. */
        t->n_detached++;
    }
out:
    llmobs_span_free(llm);
    return rc;
}

int llmobs_buffer_add_span(struct llmobs_buffer *b, const struct llmobs_ids *ids,
                           struct llmobs_span *llm, int64_t now_ns)
{
    if (ids == NULL) {
        llmobs_span_free(llm);
        return O2D_ERR_INVALID;
    }
    struct trace *t = trace_find(b, ids->trace_id);
    return add_one(b, &t, ids, llm, now_ns, 0);
}

int llmobs_buffer_add_spans(struct llmobs_buffer *b, const struct llmobs_ids *ids,
                            struct llmobs_span **llm, size_t n, int64_t now_ns)
{
    int rc = O2D_OK;
    size_t i = 0;
    while (i < n && rc == O2D_OK) {
        /* A request's spans come grouped by trace: one lookup per run of the same trace id
         * (add_one keeps *t current when it creates or frees the trace; make_room never
         * frees the trace it is making room for). */
        size_t end = i + 1;
        while (end < n && memcmp(ids[end].trace_id, ids[i].trace_id, 16) == 0) {
            end++;
        }
        struct trace *t = trace_find(b, ids[i].trace_id);
        for (; i < end; i++) {
            struct llmobs_span *sp = llm[i];
            llm[i] = NULL;
            int r = add_one(b, &t, &ids[i], sp, now_ns, end - i - 1);
            if (r != O2D_OK && rc == O2D_OK) {
                rc = r;
            }
            if (rc != O2D_OK) {
                i++;
                break;
            }
        }
    }
    for (; i < n; i++) {
        llmobs_span_free(llm[i]);
        llm[i] = NULL;
    }
    return rc;
}

int llmobs_buffer_add_log(struct llmobs_buffer *b, const OtlpLogRecord *r, int64_t now_ns)
{
    if (r == NULL || r->trace_id.len != 16 || r->span_id.len != 8) {
        return O2D_ERR_INVALID;
    }
    uint64_t span_id = read_be64(r->span_id.data);
    if (span_id == 0) {
        return O2D_ERR_INVALID;
    }
    struct trace *t = trace_find(b, r->trace_id.data);
    struct skel *s = t != NULL ? map_find(t, span_id) : NULL;
    struct pend *p = s != NULL ? s->pend : (t != NULL ? find_detached(t, span_id) : NULL);
    if (p != NULL) {
        int rc = llmobs_span_add_log(p->sp, r);
        reaccount(b, t, p);
        if (rc == O2D_OK) {
            b->c.logs_joined++;
        }
        if (p->hold_until != 0) {
            mark_changed(b, t); /* it may be free to go now */
        }
        return rc;
    }
    if (s != NULL && s->seen) {
        /* Its span was written already, or is not an LLM Obs span. */
        count_unmatched(b, s->is_llm ? &b->c.logs_unmatched_late : &b->c.logs_unmatched_not_llm);
        return O2D_OK;
    }

    size_t len = opentelemetry__proto__logs__v1__log_record__get_packed_size(r);
    if (len > SIZE_MAX - sizeof(struct held_log)) {
        return O2D_ERR_TOO_LARGE;
    }
    make_room(b, t, 1, sizeof(struct held_log) + len + ENTRY_COST + TRACE_COST);
    struct held_log *l = o2d_malloc(sizeof(*l) + len);
    if (l == NULL) {
        return O2D_ERR_NOMEM;
    }
    l->next = NULL;
    l->arrived_ns = now_ns;
    l->len = opentelemetry__proto__logs__v1__log_record__pack(r, l->data);
    int created = 0;
    if (t == NULL) {
        t = trace_new(b, r->trace_id.data, now_ns);
        if (t == NULL) {
            o2d_free(l);
            return O2D_ERR_NOMEM;
        }
        created = 1;
    }
    s = map_get(b, t, span_id, 0);
    if (s == NULL) {
        if (created) {
            trace_free(b, t);
        }
        o2d_free(l);
        return O2D_ERR_NOMEM;
    }
    /* A gen_ai log record says its trace has an LLM Obs span. */
    t->wants_skel = 1;
    if (now_ns > t->last_ns) {
        t->last_ns = now_ns;
    }
    if (t->n_logs == 0 || now_ns < t->oldest_log_ns) {
        t->oldest_log_ns = now_ns;
    }
    *s->logs_tail = l;
    s->logs_tail = &l->next;
    t->n_logs++;
    t->bytes += sizeof(*l) + l->len;
    b->bytes += sizeof(*l) + l->len;
    mark_changed(b, t);
    return O2D_OK;
}

/* Writes one held span and hands it to emit. O2D_OK when it is done with (written, or
 * refused by llmobs_span_write for good: *write_err gets that error); else the error that
 * leaves it held. */
static int emit_one(struct llmobs_buffer *b, struct trace *t, struct pend *p, uint64_t parent,
                    uint64_t root, const struct llmobs_inherit *inh, llmobs_emit_buf_fn emit,
                    void *ctx, int *write_err)
{
    struct skel *s = map_find(t, p->span_id);
    if (s != NULL && s->pend == p && s->logs != NULL) {
        int rc = join_logs(b, t, s);
        if (rc != O2D_OK) {
            return rc;
        }
    }
    if (!b->tid_valid || b->tid_root != root || memcmp(b->tid_trace, t->id, 16) != 0) {
        trace_id_with(b->sha256, b->md_ctx, t->id, root, b->tid);
        memcpy(b->tid_trace, t->id, 16);
        b->tid_root = root;
        b->tid_valid = 1;
    }
    /* The event's storage sized once, for its front and the event written at its end:
     * emit may take it (then the next event gets storage of its own, sized for it). */
    o2d_buf_reset(&b->out);
    int rc = o2d_buf_reserve(&b->out, b->front + llmobs_span_write_size(p->sp, inh));
    if (rc == O2D_ERR_TOO_LARGE) {
        rc = o2d_buf_reserve(&b->out, b->front); /* the write says what is too large */
    }
    if (rc != O2D_OK) {
        return rc;
    }
    b->out.len = b->front;
    rc = llmobs_span_write_inherit(p->sp, b->tid, parent, inh, b->cfg.max_event_size, &b->out);
    if (rc == O2D_ERR_NOMEM) {
        return rc;
    }
    if (rc != O2D_OK) {
        if (*write_err == O2D_OK) {
            *write_err = rc;
        }
        return O2D_OK;
    }
    memcpy(b->emit_trace, t->id, 16);
    b->emit_span = p->span_id;
    return emit(ctx, &b->out, b->front);
}

/* Counts unmatched and frees the log records of t whose deadline passed (all when force). */
static void expire_logs(struct llmobs_buffer *b, struct trace *t, int64_t now_ns, int force)
{
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < t->map_cap && t->n_logs > 0; i++) {
        struct skel *s = &t->map[i];
        if (s->span_id == 0 || s->logs == NULL) {
            continue;
        }
        while (s->logs != NULL &&
               (force || now_ns >= add_sat(s->logs->arrived_ns, b->cfg.deadline_ns))) {
            count_unmatched(b, s->seen && !s->is_llm ? &b->c.logs_unmatched_not_llm
                               : force               ? &b->c.logs_unmatched_dropped
                                                     : &b->c.logs_unmatched_no_span);
            drop_first_log(b, t, s);
        }
        if (s->logs != NULL) {
            for (struct held_log *l = s->logs; l != NULL; l = l->next) {
                oldest = min64(oldest, l->arrived_ns);
            }
        }
    }
    t->oldest_log_ns = oldest;
}

/* What span_id inherits from its LLM Obs ancestors, walking the skeleton as resolve() does:
 * the session of the nearest that has one, and the ml_app of the nearest whose own was set
 * for it, else of the topmost known; NULL members when none is known. */
static void inherit(const struct trace *t, uint64_t span_id, struct llmobs_inherit *inh)
{
    uint64_t parent, root;
    (void)resolve_inh(t, span_id, &parent, &root, inh);
}

/* One pass over t's held spans: emits those that are ready and whose LLM Obs parent is not
 * held any more; *blocked says whether a ready span waited for its parent. */
static int poll_pass(struct llmobs_buffer *b, struct trace *t, int64_t now_ns, int force,
                     llmobs_emit_buf_fn emit, void *ctx, int *write_err, int64_t *wake,
                     int *blocked, int *progress)
{
    int64_t deadline = b->cfg.deadline_ns;
    struct pend **pp = &t->pends;
    while (*pp != NULL) {
        struct pend *p = *pp;
        uint64_t parent = p->parent_id;
        uint64_t root = p->root_id;
        enum decision d = p->decided;
        struct llmobs_inherit inh = {NULL, NULL};
        int have_inh = 0;
        if (d == UNDECIDED) {
            have_inh = 1;
            if (resolve_inh(t, p->span_id, &parent, &root, &inh)) {
                d = BY_ROOT;
            } else if (force || now_ns >= add_sat(p->arrived_ns, deadline)) {
                d = BY_DEADLINE;
            } else {
                *wake = min64(*wake, add_sat(p->arrived_ns, deadline));
                pp = &p->next;
                continue;
            }
            if (!force && p->hold_until != 0 && now_ns < p->hold_until &&
                llmobs_span_awaits_logs(p->sp)) {
                *wake = min64(*wake, p->hold_until);
                pp = &p->next;
                continue;
            }
            if (d == BY_ROOT && parent != 0) {
                /* a settled chain has no loop, so the parent does not wait for this one */
                const struct skel *ps = map_find(t, parent);
                if (ps != NULL && ps->pend != NULL && ps->pend != p) {
                    *blocked = 1;
                    pp = &p->next;
                    continue;
                }
            }
        }
        if (!have_inh && t->map != NULL) {
            inherit(t, p->span_id, &inh);
        }
        int before = *write_err;
        int rc = emit_one(b, t, p, parent, root, &inh, emit, ctx, write_err);
        if (rc != O2D_OK) {
            t->changed = 1;
            return rc;
        }
        *progress = 1;
        if (*write_err == before) {
            b->c.events_emitted++;
            if (d == BY_ROOT) {
                b->c.settled_by_root++;
            } else if (d == BY_DEADLINE) {
                b->c.settled_by_deadline++;
            } else {
                b->c.forced_by_bound++;
            }
        }
        if (p->hold_until != 0 && llmobs_span_awaits_logs(p->sp)) {
            b->c.hold_expired++;
        }
        struct skel *s = map_find(t, p->span_id);
        if (s != NULL && s->pend == p) {
            s->pend = NULL;
        } else {
            t->n_detached--;
        }
        *pp = p->next;
        if (*pp == NULL) {
            t->pends_tail = pp;
        }
        free_pend(b, t, p);
    }
    return O2D_OK;
}

static int poll_trace(struct llmobs_buffer *b, struct trace *t, int64_t now_ns, int force,
                      llmobs_emit_buf_fn emit, void *ctx, int *write_err, int *freed)
{
    int64_t deadline = b->cfg.deadline_ns;
    int64_t wake = INT64_MAX;
    if (!force && !t->changed && now_ns < t->wake_ns) {
        return O2D_OK;
    }
    t->changed = 0;

    /* A pass emits the spans whose parents have left; one more pass per level of spans
     * that waited for a parent emitted in this poll. */
    for (;;) {
        int blocked = 0, progress = 0;
        int rc = poll_pass(b, t, now_ns, force, emit, ctx, write_err, &wake, &blocked, &progress);
        if (rc != O2D_OK) {
            return rc;
        }
        if (!blocked || !progress) {
            break; /* the ones still blocked wait for a parent that is not ready */
        }
    }

    if (t->n_logs > 0 && (force || now_ns >= add_sat(t->oldest_log_ns, deadline))) {
        expire_logs(b, t, now_ns, force);
    }
    if (t->n_logs > 0) {
        wake = min64(wake, add_sat(t->oldest_log_ns, deadline));
    }
    if (t->n_pends == 0 && t->n_logs == 0) {
        if (force || now_ns >= add_sat(t->last_ns, deadline)) {
            trace_free(b, t);
            *freed = 1;
            return O2D_OK;
        }
        wake = min64(wake, add_sat(t->last_ns, deadline));
    }
    t->wake_ns = wake;
    return O2D_OK;
}

static int by_seq(const void *x, const void *y)
{
    const struct trace *a = *(struct trace *const *)x;
    const struct trace *c = *(struct trace *const *)y;
    return a->seq < c->seq ? -1 : a->seq > c->seq;
}

/* llmobs_buffer_poll's emit, called with the event in its buffer. */
struct emit_bytes {
    int (*emit)(void *ctx, const uint8_t *json, size_t len);
    void *ctx;
};

static int emit_bytes(void *ctx, struct o2d_buf *out, size_t front)
{
    const struct emit_bytes *e = ctx;
    return e->emit(e->ctx, out->data + front, out->len - front);
}

int llmobs_buffer_poll(struct llmobs_buffer *b, int64_t now_ns, int force,
                       int (*emit)(void *ctx, const uint8_t *json, size_t len), void *ctx)
{
    struct emit_bytes e = {emit, ctx};
    return llmobs_buffer_poll_buf(b, now_ns, force, 0, emit_bytes, &e);
}

int llmobs_buffer_poll_buf(struct llmobs_buffer *b, int64_t now_ns, int force, size_t front,
                           llmobs_emit_buf_fn emit, void *ctx)
{
    b->front = front;
    int rc = O2D_OK;
    int write_err = O2D_OK;
    size_t n = 0;
    if (force) {
        for (struct trace *t = b->oldest; t != NULL; t = t->newer) {
            b->due[n++] = t;
        }
    } else {
        /* The due traces, taken off the heap, then in first-seen order: the order a walk of
         * every trace would have visited them in. */
        while (b->heap_n > 0 && b->heap[0].key <= now_ns) {
            struct trace *t = b->heap[0].t;
            heap_remove(b, t);
            b->due[n++] = t;
        }
        if (n > 1) {
            qsort(b->due, n, sizeof(*b->due), by_seq);
        }
    }
    size_t i = 0;
    for (; i < n; i++) {
        struct trace *t = b->due[i];
        int freed = 0;
        rc = poll_trace(b, t, now_ns, force, emit, ctx, &write_err, &freed);
        if (!freed) {
            heap_fix(b, t);
        }
        if (rc != O2D_OK) {
            i++;
            break;
        }
    }
    for (; i < n; i++) {
        heap_fix(b, b->due[i]); /* not polled: due at the next poll */
    }
    o2d_buf_cleanup(&b->out);
    return rc != O2D_OK ? rc : write_err;
}

void llmobs_buffer_get_counters(const struct llmobs_buffer *b, struct llmobs_buffer_counters *out)
{
    *out = b->c;
    out->bytes_held = b->bytes;
}

void llmobs_buffer_emitting(const struct llmobs_buffer *b, uint8_t trace_id[16], uint64_t *span_id)
{
    memcpy(trace_id, b->emit_trace, 16);
    *span_id = b->emit_span;
}
