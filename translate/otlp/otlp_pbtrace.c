/*
 * otlp_pbtrace.c: ExportTraceServiceRequest from protobuf wire bytes to the protobuf-c
 * generated structs in one pass (wire format: https://protobuf.dev/programming-guides/encoding/;
 * messages: opentelemetry-proto collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
 * common/v1/common.proto, resource/v1/resource.proto).
 *
 * It replaces otlp_pb_check() followed by protobuf_c_message_unpack() for traces and gives the
 * same answer on every input: the same structs (unknown fields kept, repeated singular
 * messages merged, the last of a oneof kept, as protobuf-c 1.4 does), the same refusals with
 * the same reasons (otlp_pbcheck.c's checks in its order: depth, NUL in strings, lengths, wire
 * types). tests/fuzz/fuzz_otlp_pbtrace.c decodes the same bytes both ways and compares.
 * While it copies a string it also learns whether the string is valid UTF-8, so the request
 * says whether all of its strings are (translation then skips its own check).
 *
 * Strings are copied into the arena, NUL-terminated, not pointed at in the body. The body
 * would live long enough (the receivers free it after ingest_request returned, and the
 * arena is reset before that), but protobuf-c's char * fields and everything that reads them
 * (strlen) want the terminator, and a refusal reads the body again (otlp_pb_check, below), so
 * it cannot be terminated in place (moving each string one byte back over its length, to make
 * room for the NUL, costs the same move as the copy and leaves a body no one can read again).
 * The copy is made cheap instead: a string under 16 bytes is checked (no NUL, ASCII) and
 * stored with one 16-byte load and store (SSE2), longer ones are checked while they are
 * copied, 64 bytes at a time; a KeyValue and its AnyValue share one allocation, and an
 * attribute of the usual shape (a key, then a value holding one string, bool, int or
 * double) is read without the field loop (kv_plain). Allocations come from a window on the
 * arena's block (window_open, below), with the arena's own limit.
 *
 * Repeated fields are gathered on a scratch stack (one entry per element, popped when their
 * message ends) and copied into exactly sized arena arrays, so nothing is counted twice.
 * Left to others: id lengths and partial success (otlp_decode.c), logs and metrics (protobuf-c).
 */
#include <limits.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_json_out.h"
#include "otlp.h"

typedef Opentelemetry__Proto__Common__V1__ArrayValue OtlpArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList OtlpKvList;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope OtlpScope;
typedef Opentelemetry__Proto__Common__V1__EntityRef OtlpEntityRef;
typedef Opentelemetry__Proto__Trace__V1__Span__Event OtlpEvent;
typedef Opentelemetry__Proto__Trace__V1__Span__Link OtlpLink;
typedef Opentelemetry__Proto__Trace__V1__Status OtlpStatus;

static const char reason_too_large[] = "decoded request exceeds the memory limit";
/* What otlp_decode() says when protobuf-c refuses what the pre-scan let through. */
static const char reason_pbc[] = "protobuf message could not be decoded";
static const char reason_wire[] = "wrong wire type for a known field";

enum wire {
    WIRE_VARINT = 0,
    WIRE_64BIT = 1,
    WIRE_LEN = 2,
    WIRE_32BIT = 5,
};

/* Slot of a scratch entry within its message: a repeated field, or an unknown field. */
enum { SLOT_UNKNOWN = 0, SLOT_MAX = 3 };

struct ent {
    void *obj;    /* the element; for an unknown field, its bytes copied to the arena */
    size_t len;   /* unknown field: bytes after the tag */
    uint32_t tag; /* unknown field: its number */
    uint8_t wire; /* unknown field: its wire type */
    uint8_t slot; /* 1..SLOT_MAX: the message's repeated field; SLOT_UNKNOWN */
};

#define INLINE_ENTS 128

/*
 * The decoder allocates from a window on the arena's current block, kept in struct tdec and
 * handed back when the decode ends (window_close): the arena's own fast path reloads its head
 * block, offset, size, use and limit through pointers on every call, about 20 instructions
 * for a bump of an offset, and a request allocates twice per attribute. The window gives the
 * same memory, at the same addresses, with the same limit: its end is the block's end or the
 * limit counted with the alignment padding, whichever comes first (padding does not count
 * against the limit, so near it an allocation the window refuses goes to the arena itself,
 * which decides exactly as before, and the window is opened again on the head block).
 */
struct tdec {
    struct o2d_arena *a;
    unsigned char *wbase; /* the head block's memory; NULL while the arena has no block */
    size_t woff;          /* next free byte of the block (its `off` while the window is open) */
    size_t wend;          /* allocations end here: the block's size, or sooner by the limit */
    size_t wsize;         /* the block's size */
    size_t wused;         /* the arena's `used` while the window is open */
    const uint8_t *end;   /* the end of the body: short strings are read 16 bytes at a time */
    struct ent *ents;     /* inline_ents, or the heap once it outgrew them */
    size_t n, cap;
    int status;         /* O2D_OK until the first failure */
    const char *reason; /* static */
    int rescan;         /* failure the pre-scan may not have seen first: ask it */
    int utf8_bad;       /* a string is not valid UTF-8 */
    struct ent inline_ents[INLINE_ENTS];
};

struct fld {
    uint32_t num;
    int wire;
    uint64_t v;         /* varint or fixed value */
    const uint8_t *sub; /* length-delimited payload */
    size_t sublen;
    const uint8_t *raw; /* bytes after the tag, up to the next field */
    size_t rawlen;
};

static void *fail(struct tdec *d, int status, const char *reason)
{
    if (d->status == O2D_OK) {
        d->status = status;
        d->reason = reason;
    }
    return NULL;
}

static void *fail_pbc(struct tdec *d)
{
    d->rescan = 1;
    return fail(d, O2D_ERR_INVALID, reason_pbc);
}

/* Opens the window on the arena's head block (none: an empty window). */
static void window_open(struct tdec *d)
{
    struct o2d_arena *a = d->a;
    struct o2d_arena_block *b = a->head;
    d->wused = a->used;
    if (b == NULL) {
        d->wbase = NULL;
        d->woff = d->wend = d->wsize = 0;
        return;
    }
    d->wbase = b->mem;
    d->woff = b->off;
    d->wsize = b->size;
    size_t left = a->used <= a->limit ? a->limit - a->used : 0;
    d->wend = b->off <= b->size && left < b->size - b->off ? b->off + left : b->size;
}

/* Hands what the window gave out back to the arena's books. */
static void window_close(struct tdec *d)
{
    if (d->wbase != NULL) {
        d->a->head->off = d->woff;
    }
    d->a->used = d->wused;
}

/* The arena's own allocation, for what the window cannot give: a new block, or the limit.
 * NULL when the arena refuses (the caller fails the decode). */
static __attribute__((noinline)) void *alloc_slow(struct tdec *d, size_t n, int aligned)
{
    window_close(d);
    void *p = aligned ? o2d_arena_alloc(d->a, n) : o2d_arena_alloc_bytes(d->a, n);
    window_open(d);
    return p;
}

static void *fail_too_large(struct tdec *d)
{
    d->rescan = 1;
    return fail(d, O2D_ERR_TOO_LARGE, reason_too_large);
}

/* n > 0 bytes at a 16-byte aligned address (as o2d_arena_alloc); NULL, the decode failed,
 * past the limit. */
static inline __attribute__((always_inline)) void *alloc(struct tdec *d, size_t n)
{
    size_t need = (n + O2D_ARENA_ALIGN - 1) & ~(size_t)(O2D_ARENA_ALIGN - 1);
    size_t start = (d->woff + O2D_ARENA_ALIGN - 1) & ~(size_t)(O2D_ARENA_ALIGN - 1);
    if (need < n || start > d->wend || need > d->wend - start) {
        void *p = alloc_slow(d, n, 1);
        return p != NULL ? p : fail_too_large(d);
    }
    d->woff = start + need;
    d->wused += need;
    return d->wbase + start;
}

/* n > 0 bytes, unaligned (as o2d_arena_alloc_bytes): strings, packed one after the other.
 * NULL past the limit, without failing the decode (the caller says why). */
static inline __attribute__((always_inline)) void *alloc_bytes(struct tdec *d, size_t n)
{
    if (n > d->wend - d->woff) {
        return alloc_slow(d, n, 0);
    }
    void *p = d->wbase + d->woff;
    d->woff += n;
    d->wused += n;
    return p;
}

/* As otlp_pbcheck.c: at most 10 bytes, the 10th at most 1. */
static int read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*i >= len) {
            return -1;
        }
        uint8_t b = p[(*i)++];
        if (shift == 63 && b > 1) {
            return -2;
        }
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -2;
}

/* A little-endian fixed64: one load where the CPU is little-endian. */
static inline uint64_t load_le64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
#else
    uint64_t v = 0;
    for (size_t k = 8; k > 0; k--) {
        v = (v << 8) | p[k - 1];
    }
    return v;
#endif
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t k = n; k > 0; k--) {
        v = (v << 8) | p[k - 1];
    }
    return v;
}

/* next_field() for every case: multi-byte tags, lengths and varints, and refusals. */
static int next_field_slow(struct tdec *d, const uint8_t *p, size_t len, size_t *i, struct fld *f)
{
    if (*i >= len) {
        return 0;
    }
    size_t start = *i;
    uint64_t key;
    int r;
    if (p[start] < 0x80) {
        key = p[start];
        (*i)++;
    } else {
        r = read_varint(p, len, i, &key);
        if (r != 0) {
            fail(d, O2D_ERR_INVALID,
                 r == -1 ? "truncated message: field tag runs past the end"
                         : "malformed field tag");
            return -1;
        }
    }
    uint64_t num = key >> 3;
    if (num == 0 || num > 536870911u) {
        fail(d, O2D_ERR_INVALID, "invalid field number");
        return -1;
    }
    f->num = (uint32_t)num;
    f->wire = (int)(key & 7);
    f->raw = p + *i;
    /* protobuf-c reads a tag of at most 5 bytes */
    int pbc_bad = *i - start > 5;
    switch (f->wire) {
    case WIRE_VARINT:
        r = read_varint(p, len, i, &f->v);
        if (r != 0) {
            fail(d, O2D_ERR_INVALID,
                 r == -1 ? "truncated message: varint runs past the end" : "malformed varint");
            return -1;
        }
        break;
    case WIRE_64BIT:
    case WIRE_32BIT: {
        size_t n = f->wire == WIRE_64BIT ? 8 : 4;
        if (len - *i < n) {
            fail(d, O2D_ERR_INVALID, "truncated message: fixed-size field runs past the end");
            return -1;
        }
        f->v = load_le(p + *i, n);
        *i += n;
        break;
    }
    case WIRE_LEN: {
        size_t lstart = *i;
        uint64_t v = 0;
        if (read_varint(p, len, i, &v) != 0) {
            fail(d, O2D_ERR_INVALID, "truncated message: length runs past the end");
            return -1;
        }
        if (v > len - *i) {
            fail(d, O2D_ERR_INVALID, "length-delimited field runs past the end of its message");
            return -1;
        }
        /* protobuf-c reads a length of at most 5 bytes, below 2 GiB */
        if (*i - lstart > 5 || v > INT_MAX) {
            pbc_bad = 1;
        }
        f->sub = p + *i;
        f->sublen = (size_t)v;
        *i += (size_t)v;
        break;
    }
    case 3:
    case 4:
        fail(d, O2D_ERR_INVALID, "protobuf groups are not supported");
        return -1;
    default:
        fail(d, O2D_ERR_INVALID, "invalid wire type");
        return -1;
    }
    f->rawlen = (size_t)(p + *i - f->raw);
    if (pbc_bad) {
        fail_pbc(d);
        return -1;
    }
    return 1;
}

/* 1: a field in *f; 0: the end of the message; -1: refused. The common case inline: a
 * one-byte tag followed by a one-byte varint or length that fits. */
static inline __attribute__((always_inline)) int next_field(struct tdec *d, const uint8_t *p,
                                                            size_t len, size_t *i, struct fld *f)
{
    size_t j = *i;
    if (j >= len) {
        return 0;
    }
    uint8_t k = p[j];
    if (k >= 8 && k < 0x80 && j + 1 < len) {
        uint8_t b = p[j + 1];
        switch (k & 7) {
        case WIRE_LEN:
            if (b < 0x80) {
                if (b <= len - j - 2) {
                    f->num = k >> 3;
                    f->wire = WIRE_LEN;
                    f->raw = p + j + 1;
                    f->rawlen = 1 + (size_t)b;
                    f->sub = p + j + 2;
                    f->sublen = b;
                    *i = j + 2 + b;
                    return 1;
                }
            } else if (j + 2 < len && p[j + 2] < 0x80) {
                /* two-byte lengths: strings and messages of 128 bytes to 16 KiB */
                size_t n = (size_t)(b & 0x7f) | (size_t)p[j + 2] << 7;
                if (n <= len - j - 3) {
                    f->num = k >> 3;
                    f->wire = WIRE_LEN;
                    f->raw = p + j + 1;
                    f->rawlen = 2 + n;
                    f->sub = p + j + 3;
                    f->sublen = n;
                    *i = j + 3 + n;
                    return 1;
                }
            }
            break;
        case WIRE_VARINT:
            if (b < 0x80) {
                f->num = k >> 3;
                f->wire = WIRE_VARINT;
                f->raw = p + j + 1;
                f->rawlen = 1;
                f->v = b;
                *i = j + 2;
                return 1;
            }
            if (j + 2 < len && p[j + 2] < 0x80) {
                /* two-byte varints: status codes, ports, sizes under 16 Ki */
                f->num = k >> 3;
                f->wire = WIRE_VARINT;
                f->raw = p + j + 1;
                f->rawlen = 2;
                f->v = (uint64_t)(b & 0x7f) | (uint64_t)p[j + 2] << 7;
                *i = j + 3;
                return 1;
            }
            break;
        case WIRE_64BIT:
            /* timestamps and doubles */
            if (len - j - 1 >= 8) {
                f->num = k >> 3;
                f->wire = WIRE_64BIT;
                f->raw = p + j + 1;
                f->rawlen = 8;
                f->v = load_le64(p + j + 1);
                *i = j + 9;
                return 1;
            }
            break;
        default:
            break;
        }
    }
    return next_field_slow(d, p, len, i, f);
}

static int want(struct tdec *d, const struct fld *f, int wire)
{
    if (f->wire != wire) {
        fail(d, O2D_ERR_INVALID, reason_wire);
        return 0;
    }
    return 1;
}

/* push() once the scratch stack is full: doubles it. */
static int grow_ents(struct tdec *d)
{
    size_t cap = d->cap * 2;
    struct ent *e;
    if (d->ents == d->inline_ents) {
        e = o2d_malloc(cap * sizeof(*e));
        if (e != NULL) {
            memcpy(e, d->ents, d->n * sizeof(*e));
        }
    } else {
        e = o2d_realloc(d->ents, cap * sizeof(*e));
    }
    if (e == NULL) {
        /* as when protobuf-c's scratch slabs cannot be had from the arena */
        d->rescan = 1;
        fail(d, O2D_ERR_TOO_LARGE, reason_too_large);
        return 0;
    }
    d->ents = e;
    d->cap = cap;
    return 1;
}

static inline int push(struct tdec *d, unsigned slot, void *obj)
{
    if (d->n == d->cap && !grow_ents(d)) {
        return 0;
    }
    struct ent *e = &d->ents[d->n++];
    e->obj = obj;
    e->slot = (uint8_t)slot;
    return 1;
}

/* protobuf-c keeps a field it does not know: number, wire type, the bytes after the tag. */
static int push_unknown(struct tdec *d, const struct fld *f)
{
    void *copy = alloc(d, f->rawlen);
    if (copy == NULL || !push(d, SLOT_UNKNOWN, copy)) {
        return 0;
    }
    memcpy(copy, f->raw, f->rawlen);
    struct ent *e = &d->ents[d->n - 1];
    e->len = f->rawlen;
    e->tag = f->num;
    e->wire = (uint8_t)f->wire;
    return 1;
}

/* A repeated field of a message: where its count and its array pointer live. */
struct rep {
    size_t *n;
    void *arr; /* address of the struct's array pointer (T **) */
};

/* Moves the entries pushed since `base` into exactly sized arrays of m's repeated fields
 * (slots 1..nrep) and its unknown fields, and pops them. */
static int finish_entries(struct tdec *d, size_t base, ProtobufCMessage *m, const struct rep *reps,
                          unsigned nrep)
{
    /* Most often every entry is of the first repeated field (a span's attributes, a scope's
     * spans): one array, filled in one pass, as the general way below would. */
    size_t k1 = base;
    while (k1 < d->n && d->ents[k1].slot == 1) {
        k1++;
    }
    if (k1 == d->n && nrep >= 1) {
        size_t c = d->n - base;
        void **a = alloc(d, c * sizeof(void *));
        if (a == NULL) {
            return 0;
        }
        for (size_t k = 0; k < c; k++) {
            a[k] = d->ents[base + k].obj;
        }
        *reps[0].n = c;
        memcpy(reps[0].arr, &a, sizeof(void *));
        d->n = base;
        return 1;
    }
    size_t count[SLOT_MAX + 1] = {0};
    for (size_t k = base; k < d->n; k++) {
        count[d->ents[k].slot]++;
    }
    void **arr[SLOT_MAX + 1] = {NULL};
    size_t fill[SLOT_MAX + 1] = {0};
    for (unsigned s = 1; s <= nrep; s++) {
        if (count[s] > 0) {
            arr[s] = alloc(d, count[s] * sizeof(void *));
            if (arr[s] == NULL) {
                return 0;
            }
            *reps[s - 1].n = count[s];
            memcpy(reps[s - 1].arr, &arr[s], sizeof(void *));
        }
    }
    ProtobufCMessageUnknownField *unk = NULL;
    if (count[SLOT_UNKNOWN] > 0) {
        unk = alloc(d, count[SLOT_UNKNOWN] * sizeof(*unk));
        if (unk == NULL) {
            return 0;
        }
        m->n_unknown_fields = (unsigned)count[SLOT_UNKNOWN];
        m->unknown_fields = unk;
    }
    for (size_t k = base; k < d->n; k++) {
        const struct ent *e = &d->ents[k];
        if (e->slot == SLOT_UNKNOWN) {
            ProtobufCMessageUnknownField *u = &unk[fill[0]++];
            u->tag = e->tag;
            u->wire_type = (ProtobufCWireType)e->wire;
            u->len = e->len;
            u->data = e->obj;
        } else {
            arr[e->slot][fill[e->slot]++] = e->obj;
        }
    }
    d->n = base;
    return 1;
}

static inline int finish(struct tdec *d, size_t base, ProtobufCMessage *m, const struct rep *reps,
                         unsigned nrep)
{
    if (d->n == base) {
        return 1; /* no repeated element, no unknown field: most messages */
    }
    return finish_entries(d, base, m, reps, nrep);
}

#ifdef __SSE2__
/* Bit k set when byte k of v is NUL or >= 0x80. */
static inline unsigned special16(__m128i v)
{
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(v, _mm_cmpeq_epi8(v, _mm_setzero_si128())));
}
#endif

/* Whether s[0..n) holds a NUL byte; clears *ascii when it holds a byte >= 0x80. Sixteen bytes
 * at a time while every byte is in 0x01..0x7f (SSE2: one compare and a mask; otherwise
 * ((x - 0x01..) | x) & 0x80.. is zero exactly then: a borrow only starts at a zero byte, which
 * is flagged itself); from the first block that is not, bytes one by one up to a NUL or the
 * first non-ASCII byte, then memchr. */
static int scan_bytes(const uint8_t *s, size_t n, int *ascii)
{
    size_t k = 0;
#ifdef __SSE2__
    if (n >= 16) {
        for (; k + 16 <= n; k += 16) {
            if (special16(_mm_loadu_si128((const __m128i *)(const void *)(s + k)))) {
                break;
            }
        }
        if (k + 16 > n &&
            (k == n || !special16(_mm_loadu_si128((const __m128i *)(const void *)(s + n - 16))))) {
            *ascii = 1; /* the tail, read as the last 16 bytes, is plain too */
            return 0;
        }
    }
#else
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    for (; k + 16 <= n; k += 16) {
        uint64_t x, y;
        memcpy(&x, s + k, 8);
        memcpy(&y, s + k + 8, 8);
        if ((((x - ones) | x) | ((y - ones) | y)) & high) {
            break;
        }
    }
#endif
    if (k + 16 > n) {
        const uint64_t ones8 = 0x0101010101010101ull, high8 = 0x8080808080808080ull;
        for (; k + 8 <= n; k += 8) {
            uint64_t x;
            memcpy(&x, s + k, 8);
            if (((x - ones8) | x) & high8) {
                break;
            }
        }
    }
    for (; k < n; k++) {
        if (s[k] == 0) {
            return 1;
        }
        if (s[k] & 0x80) {
            *ascii = 0;
            return memchr(s + k, 0, n - k) != NULL;
        }
    }
    *ascii = 1;
    return 0;
}

/*
 * A short string whose 16 bytes from f->sub lie within the body (the bytes past the string
 * are read, never used): checked with one SSE2 compare and, when it is plain ASCII without
 * NUL and the arena's current block has 16 bytes of room, stored with one 16-byte write and
 * terminated. NULL when this fast path does not apply (the caller takes the general one).
 */
static inline __attribute__((always_inline)) char *take_short_ascii(struct tdec *d,
                                                                    const uint8_t *sub, size_t n)
{
#ifdef __SSE2__
    if (n >= 16 || (size_t)(d->end - sub) < 16) {
        return NULL;
    }
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)sub);
    if (special16(v) & ((1u << n) - 1)) {
        return NULL;
    }
    if (d->wsize - d->woff < 16 || n + 1 > d->wend - d->woff) {
        return NULL;
    }
    char *s = (char *)d->wbase + d->woff;
    _mm_storeu_si128((__m128i *)(void *)s, v); /* the bytes past s[n] are the block's, unused */
    s[n] = '\0';
    d->woff += n + 1;
    d->wused += n + 1;
    return s;
#else
    (void)d;
    (void)sub;
    (void)n;
    return NULL;
#endif
}

/*
 * Copies s[0..n) to dst while its bytes are plain ASCII (0x01..0x7f), 64 bytes at a time
 * (SSE2: the OR of four blocks has a high bit set when one of them holds a byte >= 0x80,
 * their unsigned minimum is zero when one holds a NUL), then 16. Returns how many bytes it
 * copied: n when all of them were plain, else a multiple of 16 at or before the first byte
 * that is not (the caller copies and checks the rest). One pass over a long string instead
 * of a scan and then a copy.
 */
static size_t copy_plain(unsigned char *dst, const uint8_t *s, size_t n)
{
    size_t k = 0;
#ifdef __SSE2__
    for (; k + 64 <= n; k += 64) {
        __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)(s + k));
        __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(s + k + 16));
        __m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(s + k + 32));
        __m128i v3 = _mm_loadu_si128((const __m128i *)(const void *)(s + k + 48));
        __m128i hi = _mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3));
        __m128i lo = _mm_min_epu8(_mm_min_epu8(v0, v1), _mm_min_epu8(v2, v3));
        if (_mm_movemask_epi8(_mm_or_si128(hi, _mm_cmpeq_epi8(lo, _mm_setzero_si128())))) {
            break;
        }
        _mm_storeu_si128((__m128i *)(void *)(dst + k), v0);
        _mm_storeu_si128((__m128i *)(void *)(dst + k + 16), v1);
        _mm_storeu_si128((__m128i *)(void *)(dst + k + 32), v2);
        _mm_storeu_si128((__m128i *)(void *)(dst + k + 48), v3);
    }
    for (; k + 16 <= n; k += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + k));
        if (special16(v)) {
            return k;
        }
        _mm_storeu_si128((__m128i *)(void *)(dst + k), v);
    }
    if (k < n && n >= 16) {
        /* the tail, read as the last 16 bytes (they overlap what was copied) */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        if (!special16(v)) {
            _mm_storeu_si128((__m128i *)(void *)(dst + n - 16), v);
            k = n;
        }
    }
#else
    (void)dst;
    (void)s;
    (void)n;
#endif
    return k;
}

/* take_string() past its short ASCII case. */
static __attribute__((noinline)) char *take_any_string(struct tdec *d, const uint8_t *sub, size_t n)
{
    int ascii = 1;
    /* Strings are packed unaligned, one after the other, in the arena's blocks. */
    unsigned char *s = n < (size_t)-1 ? alloc_bytes(d, n + 1) : NULL;
    if (s == NULL) {
        /* a NUL is the answer before the memory limit, as when the string was scanned first */
        if (scan_bytes(sub, n, &ascii)) {
            return fail(d, O2D_ERR_INVALID, "a string holds a NUL character");
        }
        return fail_too_large(d);
    }
    size_t k = copy_plain(s, sub, n);
    if (k < n) {
        /* from a block that is not plain ASCII: bytes [0, k) were, so k is a character boundary */
        if (scan_bytes(sub + k, n - k, &ascii)) {
            return fail(d, O2D_ERR_INVALID, "a string holds a NUL character");
        }
        if (!ascii && !d->utf8_bad &&
            o2d_utf8_valid_prefix((const char *)sub + k, n - k) != n - k) {
            d->utf8_bad = 1;
        }
        memcpy(s + k, sub + k, n - k);
    }
    s[n] = '\0';
    return (char *)s;
}

/* A string given by its bytes: no NUL (otlp_pbcheck.c), copied NUL-terminated, its UTF-8
 * validity noted. */
static inline __attribute__((always_inline)) char *take_str(struct tdec *d, const uint8_t *sub,
                                                            size_t n)
{
    char *s = take_short_ascii(d, sub, n);
    return s != NULL ? s : take_any_string(d, sub, n);
}

/* A string field. */
static inline char *take_string(struct tdec *d, const struct fld *f)
{
    if (!want(d, f, WIRE_LEN)) {
        return NULL;
    }
    return take_str(d, f->sub, f->sublen);
}

/* A bytes field as protobuf-c leaves it: an empty one has no data. */
static int take_bytes(struct tdec *d, const struct fld *f, ProtobufCBinaryData *b)
{
    if (!want(d, f, WIRE_LEN)) {
        return 0;
    }
    b->len = f->sublen;
    b->data = NULL;
    if (f->sublen > 0) {
        b->data = alloc(d, f->sublen);
        if (b->data == NULL) {
            return 0;
        }
        /* trace and span ids: copies of a known size, two or one 8-byte moves */
        if (f->sublen == 16) {
            memcpy(b->data, f->sub, 16);
        } else if (f->sublen == 8) {
            memcpy(b->data, f->sub, 8);
        } else {
            memcpy(b->data, f->sub, f->sublen);
        }
    }
    return 1;
}

static int take_u32(struct tdec *d, const struct fld *f, uint32_t *out)
{
    if (!want(d, f, WIRE_VARINT)) {
        return 0;
    }
    *out = (uint32_t)f->v;
    return 1;
}

static int take_fixed(struct tdec *d, const struct fld *f, int wire, uint64_t *out)
{
    if (!want(d, f, wire)) {
        return 0;
    }
    *out = f->v;
    return 1;
}

/* A message field: its wire type, then the depth budget, as otlp_pbcheck.c checks them. */
static int enter(struct tdec *d, const struct fld *f, unsigned depth)
{
    if (!want(d, f, WIRE_LEN)) {
        return 0;
    }
    if (depth + 1 > OTLP_MAX_MESSAGE_DEPTH) {
        fail(d, O2D_ERR_INVALID, "messages nested too deeply");
        return 0;
    }
    return 1;
}

/* Concatenation of a repeated field when a singular message comes twice (protobuf-c's
 * merge_messages): the earlier elements first. */
static int merge_rep(struct tdec *d, size_t n1, void *a1, size_t *n2, void *a2)
{
    void **p1, **p2;
    memcpy(&p1, a1, sizeof(p1));
    memcpy(&p2, a2, sizeof(p2));
    if (n1 == 0) {
        return 1;
    }
    if (*n2 == 0) {
        memcpy(a2, &p1, sizeof(p1));
        *n2 = n1;
        return 1;
    }
    void **both = alloc(d, (n1 + *n2) * sizeof(void *));
    if (both == NULL) {
        return 0;
    }
    memcpy(both, p1, n1 * sizeof(void *));
    memcpy(both + n1, p2, *n2 * sizeof(void *));
    memcpy(a2, &both, sizeof(both));
    *n2 += n1;
    return 1;
}

/* A string the later message does not set keeps the earlier one. */
static void merge_str(char *earlier, char **later)
{
    if (earlier != protobuf_c_empty_string && *later == protobuf_c_empty_string) {
        *later = earlier;
    }
}

#define ARRAY_AT(x) ((void *)&(x))

/* The messages made once per attribute or span start as copies of these (a few wide moves;
 * a compound literal is built field by field). */
static const OtlpAnyValue any_value_init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
static const OtlpKeyValue key_value_init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
static const OtlpSpan span_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;

static OtlpKeyValue *dec_key_value(struct tdec *d, const uint8_t *p, size_t len, unsigned depth);

static OtlpAnyValue *dec_any_value_in(struct tdec *d, OtlpAnyValue *m, const uint8_t *p, size_t len,
                                      unsigned depth);

static OtlpAnyValue *dec_any_value(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpAnyValue *m = alloc(d, sizeof(*m));
    return m != NULL ? dec_any_value_in(d, m, p, len, depth) : NULL;
}

static OtlpArrayValue *dec_array_value(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpArrayValue *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpArrayValue)OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        if (f.num == 1) {
            if (!enter(d, &f, depth)) {
                return NULL;
            }
            OtlpAnyValue *v = dec_any_value(d, f.sub, f.sublen, depth + 1);
            if (v == NULL || !push(d, 1, v)) {
                return NULL;
            }
        } else if (!push_unknown(d, &f)) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_values, ARRAY_AT(m->values)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

static OtlpKvList *dec_kvlist(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpKvList *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpKvList)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        if (f.num == 1) {
            if (!enter(d, &f, depth)) {
                return NULL;
            }
            OtlpKeyValue *v = dec_key_value(d, f.sub, f.sublen, depth + 1);
            if (v == NULL || !push(d, 1, v)) {
                return NULL;
            }
        } else if (!push_unknown(d, &f)) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_values, ARRAY_AT(m->values)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

/* An AnyValue into storage m (the arena's). */
static OtlpAnyValue *dec_any_value_in(struct tdec *d, OtlpAnyValue *m, const uint8_t *p, size_t len,
                                      unsigned depth)
{
    *m = any_value_init;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    /* A oneof keeps its last member, whole (protobuf-c's parse_oneof_member clears the one
     * before, so two kvlist_values are not merged). */
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        switch (f.num) {
        case 1: {
            char *s = take_string(d, &f);
            if (s == NULL) {
                return NULL;
            }
            memset(&m->bytes_value, 0, sizeof(m->bytes_value));
            m->string_value = s;
            break;
        }
        case 2:
            if (!want(d, &f, WIRE_VARINT)) {
                return NULL;
            }
            memset(&m->bytes_value, 0, sizeof(m->bytes_value));
            m->bool_value = f.v != 0;
            break;
        case 3:
            if (!want(d, &f, WIRE_VARINT)) {
                return NULL;
            }
            memset(&m->bytes_value, 0, sizeof(m->bytes_value));
            m->int_value = (int64_t)f.v;
            break;
        case 4:
            if (!want(d, &f, WIRE_64BIT)) {
                return NULL;
            }
            memset(&m->bytes_value, 0, sizeof(m->bytes_value));
            memcpy(&m->double_value, &f.v, sizeof(m->double_value));
            break;
        case 5: {
            if (!enter(d, &f, depth)) {
                return NULL;
            }
            OtlpArrayValue *v = dec_array_value(d, f.sub, f.sublen, depth + 1);
            if (v == NULL) {
                return NULL;
            }
            memset(&m->bytes_value, 0, sizeof(m->bytes_value));
            m->array_value = v;
            break;
        }
        case 6: {
            if (!enter(d, &f, depth)) {
                return NULL;
            }
            OtlpKvList *v = dec_kvlist(d, f.sub, f.sublen, depth + 1);
            if (v == NULL) {
                return NULL;
            }
            memset(&m->bytes_value, 0, sizeof(m->bytes_value));
            m->kvlist_value = v;
            break;
        }
        case 7: {
            ProtobufCBinaryData b;
            if (!take_bytes(d, &f, &b)) {
                return NULL;
            }
            m->bytes_value = b;
            break;
        }
        default:
            if (!push_unknown(d, &f)) {
                return NULL;
            }
            continue;
        }
        m->value_case = (Opentelemetry__Proto__Common__V1__AnyValue__ValueCase)f.num;
    }
    return r == 0 && finish(d, base, &m->base, NULL, 0) ? m : NULL;
}

/* KeyValue.value given twice: protobuf-c merges the two AnyValues. The later one's member
 * wins; when it has none, a scalar, bytes with data or a nested value of the earlier one
 * carries over, a string does not (its default is the empty-string sentinel, and the later
 * union's NULL never equals it), and two empty values make the merge, and the unpack, fail. */
static int merge_any_value(struct tdec *d, OtlpAnyValue *earlier, OtlpAnyValue *later)
{
    if (later->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
        return 1;
    }
    switch (earlier->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
        fail_pbc(d);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        if (earlier->bytes_value.data == NULL) {
            return 1;
        }
        break;
    default:
        break;
    }
    later->value_case = earlier->value_case;
    memcpy(&later->bytes_value, &earlier->bytes_value, sizeof(later->bytes_value));
    return 1;
}

/* A KeyValue and the storage of its value, in one allocation: nearly every KeyValue has one. */
struct kv_pair {
    OtlpKeyValue kv;
    OtlpAnyValue value;
};

/* A length of one or two bytes at p[*j] (before len): 1 and *j past it, or 0. */
static inline int read_len12(const uint8_t *p, size_t len, size_t *j, size_t *out)
{
    size_t k = *j;
    if (k >= len) {
        return 0;
    }
    if (p[k] < 0x80) {
        *out = p[k];
        *j = k + 1;
        return 1;
    }
    if (k + 1 < len && p[k + 1] < 0x80) {
        *out = (size_t)(p[k] & 0x7f) | (size_t)p[k + 1] << 7;
        *j = k + 2;
        return 1;
    }
    return 0;
}

/*
 * The shape nearly every attribute has, read without the field loop: the key (field 1, a
 * one-byte length), then the value (field 2) and nothing after it, the value holding one
 * string (field 1), a bool or int (fields 2, 3) or a double (field 4) and nothing else. 1: decoded
 * into pair (whose key value was initialized); 0: another shape, nothing done (dec_key_value's loop
 * decodes it, to the same result); -1: refused (a key or string take_string refuses).
 */
static inline __attribute__((always_inline)) int
kv_plain(struct tdec *d, struct kv_pair *pair, const uint8_t *p, size_t len, unsigned depth)
{
    if (depth + 1 > OTLP_MAX_MESSAGE_DEPTH || len < 4 || p[0] != 0x0A || p[1] >= 0x80) {
        return 0;
    }
    size_t j = 2 + (size_t)p[1], vl;
    if (j + 2 > len || p[j] != 0x12) {
        return 0;
    }
    j++;
    if (!read_len12(p, len, &j, &vl) || vl != len - j || vl < 2) {
        return 0;
    }
    const uint8_t *q = p + j;
    OtlpAnyValue *v = &pair->value;
    char *key, *str;
    switch (q[0]) {
    case 0x0A: {
        size_t sl, k = 1;
        if (!read_len12(q, vl, &k, &sl) || sl != vl - k) {
            return 0;
        }
        if ((key = take_str(d, p + 2, p[1])) == NULL || (str = take_str(d, q + k, sl)) == NULL) {
            return -1;
        }
        *v = any_value_init;
        v->string_value = str;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        break;
    }
    case 0x10:
    case 0x18: {
        uint64_t x;
        size_t k = 1;
        if (q[1] < 0x80 && vl == 2) {
            x = q[1];
        } else if (read_varint(q, vl, &k, &x) != 0 || k != vl) {
            return 0; /* malformed, or more after it: the loop says what it is */
        }
        if ((key = take_str(d, p + 2, p[1])) == NULL) {
            return -1;
        }
        *v = any_value_init;
        if (q[0] == 0x10) {
            v->bool_value = x != 0;
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        } else {
            v->int_value = (int64_t)x;
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        }
        break;
    }
    case 0x21: {
        if (vl != 9) {
            return 0;
        }
        if ((key = take_str(d, p + 2, p[1])) == NULL) {
            return -1;
        }
        *v = any_value_init;
        uint64_t bits = load_le64(q + 1);
        memcpy(&v->double_value, &bits, sizeof(v->double_value));
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        break;
    }
    default:
        return 0;
    }
    pair->kv.key = key;
    pair->kv.value = v;
    return 1;
}

/* A KeyValue of any shape into pair (whose key value was initialized): the field loop. */
static __attribute__((noinline)) OtlpKeyValue *dec_key_value_loop(struct tdec *d,
                                                                  struct kv_pair *pair,
                                                                  const uint8_t *p, size_t len,
                                                                  unsigned depth)
{
    OtlpKeyValue *m = &pair->kv;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        if (f.num == 1) {
            if ((m->key = take_string(d, &f)) == NULL) {
                return NULL;
            }
        } else if (f.num == 2) {
            if (!enter(d, &f, depth)) {
                return NULL;
            }
            /* a second value (merged into the first, as protobuf-c does) gets storage of its own */
            OtlpAnyValue *v = m->value == NULL
                                  ? dec_any_value_in(d, &pair->value, f.sub, f.sublen, depth + 1)
                                  : dec_any_value(d, f.sub, f.sublen, depth + 1);
            if (v == NULL || (m->value != NULL && !merge_any_value(d, m->value, v))) {
                return NULL;
            }
            m->value = v;
        } else if (!push_unknown(d, &f)) {
            return NULL;
        }
    }
    return r == 0 && finish(d, base, &m->base, NULL, 0) ? m : NULL;
}

/* A KeyValue: the usual shape inline (kv_plain), any other through the field loop. Inlined
 * where attributes are pushed, so an attribute costs no call of its own. */
static inline __attribute__((always_inline)) OtlpKeyValue *
dec_key_value_inline(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    struct kv_pair *pair = alloc(d, sizeof(*pair));
    if (pair == NULL) {
        return NULL;
    }
    pair->kv = key_value_init;
    int plain = kv_plain(d, pair, p, len, depth);
    if (plain != 0) {
        return plain > 0 ? &pair->kv : NULL;
    }
    return dec_key_value_loop(d, pair, p, len, depth);
}

static OtlpKeyValue *dec_key_value(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    return dec_key_value_inline(d, p, len, depth);
}

/* A repeated KeyValue field at `slot`: decodes one element and pushes it. */
static inline __attribute__((always_inline)) int push_key_value(struct tdec *d, const struct fld *f,
                                                                unsigned depth, unsigned slot)
{
    if (!enter(d, f, depth)) {
        return 0;
    }
    OtlpKeyValue *kv = dec_key_value_inline(d, f->sub, f->sublen, depth + 1);
    return kv != NULL && push(d, slot, kv);
}

static OtlpEntityRef *dec_entity_ref(struct tdec *d, const uint8_t *p, size_t len)
{
    OtlpEntityRef *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpEntityRef)OPENTELEMETRY__PROTO__COMMON__V1__ENTITY_REF__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        char *s;
        switch (f.num) {
        case 1:
            if ((m->schema_url = take_string(d, &f)) == NULL) {
                return NULL;
            }
            break;
        case 2:
            if ((m->type = take_string(d, &f)) == NULL) {
                return NULL;
            }
            break;
        case 3:
        case 4:
            if ((s = take_string(d, &f)) == NULL || !push(d, f.num - 2, s)) {
                return NULL;
            }
            break;
        default:
            if (!push_unknown(d, &f)) {
                return NULL;
            }
        }
    }
    const struct rep reps[] = {{&m->n_id_keys, ARRAY_AT(m->id_keys)},
                               {&m->n_description_keys, ARRAY_AT(m->description_keys)}};
    return r == 0 && finish(d, base, &m->base, reps, 2) ? m : NULL;
}

static OtlpResource *dec_resource(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpResource *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpResource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        switch (f.num) {
        case 1:
            ok = push_key_value(d, &f, depth, 1);
            break;
        case 2:
            ok = take_u32(d, &f, &m->dropped_attributes_count);
            break;
        case 3: {
            ok = enter(d, &f, depth);
            OtlpEntityRef *e = ok ? dec_entity_ref(d, f.sub, f.sublen) : NULL;
            ok = e != NULL && push(d, 2, e);
            break;
        }
        default:
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_attributes, ARRAY_AT(m->attributes)},
                               {&m->n_entity_refs, ARRAY_AT(m->entity_refs)}};
    return r == 0 && finish(d, base, &m->base, reps, 2) ? m : NULL;
}

static int merge_resource(struct tdec *d, OtlpResource *earlier, OtlpResource *later)
{
    return merge_rep(d, earlier->n_attributes, ARRAY_AT(earlier->attributes), &later->n_attributes,
                     ARRAY_AT(later->attributes)) &&
           merge_rep(d, earlier->n_entity_refs, ARRAY_AT(earlier->entity_refs),
                     &later->n_entity_refs, ARRAY_AT(later->entity_refs));
}

static OtlpScope *dec_scope(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpScope *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpScope)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        switch (f.num) {
        case 1:
            ok = (m->name = take_string(d, &f)) != NULL;
            break;
        case 2:
            ok = (m->version = take_string(d, &f)) != NULL;
            break;
        case 3:
            ok = push_key_value(d, &f, depth, 1);
            break;
        case 4:
            ok = take_u32(d, &f, &m->dropped_attributes_count);
            break;
        default:
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_attributes, ARRAY_AT(m->attributes)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

static int merge_scope(struct tdec *d, OtlpScope *earlier, OtlpScope *later)
{
    merge_str(earlier->name, &later->name);
    merge_str(earlier->version, &later->version);
    return merge_rep(d, earlier->n_attributes, ARRAY_AT(earlier->attributes), &later->n_attributes,
                     ARRAY_AT(later->attributes));
}

static OtlpStatus *dec_status(struct tdec *d, const uint8_t *p, size_t len)
{
    OtlpStatus *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpStatus)OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        uint32_t v = 0;
        if (f.num == 2) {
            ok = (m->message = take_string(d, &f)) != NULL;
        } else if (f.num == 3) {
            ok = take_u32(d, &f, &v);
            m->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)(int32_t)v;
        } else {
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    return r == 0 && finish(d, base, &m->base, NULL, 0) ? m : NULL;
}

static OtlpEvent *dec_event(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpEvent *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpEvent)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        switch (f.num) {
        case 1:
            ok = take_fixed(d, &f, WIRE_64BIT, &m->time_unix_nano);
            break;
        case 2:
            ok = (m->name = take_string(d, &f)) != NULL;
            break;
        case 3:
            ok = push_key_value(d, &f, depth, 1);
            break;
        case 4:
            ok = take_u32(d, &f, &m->dropped_attributes_count);
            break;
        default:
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_attributes, ARRAY_AT(m->attributes)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

static OtlpLink *dec_link(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpLink *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpLink)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        uint64_t v = 0;
        switch (f.num) {
        case 1:
            ok = take_bytes(d, &f, &m->trace_id);
            break;
        case 2:
            ok = take_bytes(d, &f, &m->span_id);
            break;
        case 3:
            ok = (m->trace_state = take_string(d, &f)) != NULL;
            break;
        case 4:
            ok = push_key_value(d, &f, depth, 1);
            break;
        case 5:
            ok = take_u32(d, &f, &m->dropped_attributes_count);
            break;
        case 6:
            ok = take_fixed(d, &f, WIRE_32BIT, &v);
            m->flags = (uint32_t)v;
            break;
        default:
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_attributes, ARRAY_AT(m->attributes)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

static OtlpSpan *dec_span(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpSpan *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = span_init;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        uint64_t v = 0;
        uint32_t u = 0;
        switch (f.num) {
        case 1:
            ok = take_bytes(d, &f, &m->trace_id);
            break;
        case 2:
            ok = take_bytes(d, &f, &m->span_id);
            break;
        case 3:
            ok = (m->trace_state = take_string(d, &f)) != NULL;
            break;
        case 4:
            ok = take_bytes(d, &f, &m->parent_span_id);
            break;
        case 5:
            ok = (m->name = take_string(d, &f)) != NULL;
            break;
        case 6:
            ok = take_u32(d, &f, &u);
            m->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(int32_t)u;
            break;
        case 7:
            ok = take_fixed(d, &f, WIRE_64BIT, &m->start_time_unix_nano);
            break;
        case 8:
            ok = take_fixed(d, &f, WIRE_64BIT, &m->end_time_unix_nano);
            break;
        case 9:
            ok = push_key_value(d, &f, depth, 1);
            break;
        case 10:
            ok = take_u32(d, &f, &m->dropped_attributes_count);
            break;
        case 11: {
            ok = enter(d, &f, depth);
            OtlpEvent *e = ok ? dec_event(d, f.sub, f.sublen, depth + 1) : NULL;
            ok = e != NULL && push(d, 2, e);
            break;
        }
        case 12:
            ok = take_u32(d, &f, &m->dropped_events_count);
            break;
        case 13: {
            ok = enter(d, &f, depth);
            OtlpLink *l = ok ? dec_link(d, f.sub, f.sublen, depth + 1) : NULL;
            ok = l != NULL && push(d, 3, l);
            break;
        }
        case 14:
            ok = take_u32(d, &f, &m->dropped_links_count);
            break;
        case 15: {
            ok = enter(d, &f, depth);
            OtlpStatus *s = ok ? dec_status(d, f.sub, f.sublen) : NULL;
            ok = s != NULL;
            if (ok && m->status != NULL) {
                merge_str(m->status->message, &s->message);
            }
            m->status = s;
            break;
        }
        case 16:
            ok = take_fixed(d, &f, WIRE_32BIT, &v);
            m->flags = (uint32_t)v;
            break;
        default:
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_attributes, ARRAY_AT(m->attributes)},
                               {&m->n_events, ARRAY_AT(m->events)},
                               {&m->n_links, ARRAY_AT(m->links)}};
    return r == 0 && finish(d, base, &m->base, reps, 3) ? m : NULL;
}

static OtlpScopeSpans *dec_scope_spans(struct tdec *d, const uint8_t *p, size_t len, unsigned depth)
{
    OtlpScopeSpans *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpScopeSpans)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        switch (f.num) {
        case 1: {
            ok = enter(d, &f, depth);
            OtlpScope *s = ok ? dec_scope(d, f.sub, f.sublen, depth + 1) : NULL;
            ok = s != NULL && (m->scope == NULL || merge_scope(d, m->scope, s));
            m->scope = s;
            break;
        }
        case 2: {
            ok = enter(d, &f, depth);
            OtlpSpan *s = ok ? dec_span(d, f.sub, f.sublen, depth + 1) : NULL;
            ok = s != NULL && push(d, 1, s);
            break;
        }
        case 3:
            ok = (m->schema_url = take_string(d, &f)) != NULL;
            break;
        default:
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_spans, ARRAY_AT(m->spans)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

static OtlpResourceSpans *dec_resource_spans(struct tdec *d, const uint8_t *p, size_t len,
                                             unsigned depth)
{
    OtlpResourceSpans *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpResourceSpans)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        switch (f.num) {
        case 1: {
            ok = enter(d, &f, depth);
            OtlpResource *res = ok ? dec_resource(d, f.sub, f.sublen, depth + 1) : NULL;
            ok = res != NULL && (m->resource == NULL || merge_resource(d, m->resource, res));
            m->resource = res;
            break;
        }
        case 2: {
            ok = enter(d, &f, depth);
            OtlpScopeSpans *s = ok ? dec_scope_spans(d, f.sub, f.sublen, depth + 1) : NULL;
            ok = s != NULL && push(d, 1, s);
            break;
        }
        case 3:
            ok = (m->schema_url = take_string(d, &f)) != NULL;
            break;
        default:
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_scope_spans, ARRAY_AT(m->scope_spans)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

static OtlpTraceReq *dec_request(struct tdec *d, const uint8_t *p, size_t len)
{
    OtlpTraceReq *m = alloc(d, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    *m = (OtlpTraceReq)
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    size_t base = d->n, i = 0;
    struct fld f;
    int r;
    while ((r = next_field(d, p, len, &i, &f)) > 0) {
        int ok;
        if (f.num == 1) {
            ok = enter(d, &f, 0);
            OtlpResourceSpans *rs = ok ? dec_resource_spans(d, f.sub, f.sublen, 1) : NULL;
            ok = rs != NULL && push(d, 1, rs);
        } else {
            ok = push_unknown(d, &f);
        }
        if (!ok) {
            return NULL;
        }
    }
    const struct rep reps[] = {{&m->n_resource_spans, ARRAY_AT(m->resource_spans)}};
    return r == 0 && finish(d, base, &m->base, reps, 1) ? m : NULL;
}

int otlp_pb_decode_traces(struct o2d_arena *a, const uint8_t *body, size_t len, OtlpTraceReq **out,
                          int *utf8_valid, const char **reason)
{
    struct tdec dec;
    struct tdec *d = &dec;
    *out = NULL;
    *utf8_valid = 0;
    *reason = NULL;
    d->a = a;
    window_open(d);
    d->end = len > 0 ? body + len : body;
    d->ents = d->inline_ents;
    d->n = 0;
    d->cap = INLINE_ENTS;
    d->status = O2D_OK;
    d->reason = NULL;
    d->rescan = 0;
    d->utf8_bad = 0;
    OtlpTraceReq *req = dec_request(d, body, len);
    window_close(d);
    int rv = d->status;
    *reason = d->reason;
    if (rv == O2D_OK) {
        *out = req;
        *utf8_valid = !d->utf8_bad;
    } else if (d->rescan) {
        /* A refusal protobuf-c alone makes (or running out of memory) comes after the whole
         * pre-scan today: a wire error further on is the answer the sender gets. */
        const char *why;
        int r2 = otlp_pb_check(
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
            body, len, OTLP_MAX_MESSAGE_DEPTH, &why);
        if (r2 != O2D_OK) {
            rv = r2;
            *reason = why;
        }
    }
    if (d->ents != d->inline_ents) {
        o2d_free(d->ents);
    }
    return rv;
}
