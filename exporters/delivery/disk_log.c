/*
 * disk_log.c: the append-only record log of disk_log.h: segment files, group commit, a
 * watermark file, recovery at open.
 *
 * One mutex guards the shared state (the segment list, the settled window, the reader's
 * cursor, the counters, the active segment's descriptor). An append writes its records with
 * pwritev under the mutex (a page-cache copy: short) and, with fsync: batch, puts a ticket on
 * the list of appends waiting for a sync. The first appender that waits becomes the syncer:
 * it pauses for group_commit_us, takes the files written since the last sync (the active
 * segment, and those it replaced meanwhile, kept open until synced), fdatasyncs them with the
 * mutex released, and completes every ticket its sync covered. A small thread writes the
 * watermark (at most every 100 ms, when it moved) and unlinks the segments it made obsolete,
 * so settling never waits for a disk.
 *
 * Settled sequence numbers live in a window [base, next_seq): a tag and a state byte per
 * record, in a ring that grows by doubling; base is the first seq not settled (the in-memory
 * watermark). A seq that never became a record (a failed append, a gap left by corruption)
 * counts as settled. What is deliberately left to the caller: what a tag means, retrying a
 * refused append, and reading records again after handing them out (the log reads each
 * record once per process).
 *
 * The checksum is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven,
 * slicing by 8; zlib's crc32 is another polynomial.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "disk_log.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_defer.h"
#include "o2d_le.h"
#include "o2d_log.h"
#include "o2d_time.h"

#define REC_HEAD              16 /* u32 length, u32 tag, u64 seq */
#define REC_TAIL              4  /* u32 crc32c */
#define REC_OVERHEAD          (REC_HEAD + REC_TAIL)
#define DEFAULT_SEGMENT_BYTES (8u << 20)
#define WM_INTERVAL_MS        100
#define WM_MAGIC              0x57443230u /* "02DW" little endian */
#define WM_FILE_BYTES         16 /* u32 magic, u64 first unsettled seq, u32 crc32c of both */
/* At recovery a record's seq may pass the one expected by at most this much (seqs burned
 * by failed appends, records lost to corruption); anything further is not a header. */
#define SEQ_GAP_MAX (1ull << 24)
/* No seq goes past this (a name, a watermark or a header beyond it is not ours): seqs never
 * wrap. At a million records a second, it lasts 146000 years. */
#define SEQ_MAX       (1ull << 62)
#define SCAN_BUF      (256u << 10)
#define CHUNK_RECS    64 /* records per pwritev */
#define TIME_GRAIN_MS 1000

/* ---- CRC-32C ---- */

static uint32_t crc_tab[8][256];
static int crc_hw; /* the CPU has SSE 4.2's crc32: set once, in crc_init */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t p = crc_tab[t - 1][i];
            crc_tab[t][i] = (p >> 8) ^ crc_tab[0][p & 0xff];
        }
    }
}

#if defined(__x86_64__)
#include <nmmintrin.h>
/* The same checksum with SSE 4.2's crc32 instruction (the Castagnoli polynomial is the one it
 * computes): the table version cost 8 % of the CPU of an end-to-end run. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n-- > 0) {
        c32 = _mm_crc32_u8(c32, *p++);
    }
    return ~c32;
}
#endif

static uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t n);

/* crc32c(crc32c(0, a), b) == crc32c(0, a || b), as zlib's crc32. */
static uint32_t crc32c(uint32_t crc, const void *buf, size_t n)
{
#if defined(__x86_64__)
    if (crc_hw) {
        return crc32c_hw(crc, buf, n);
    }
#endif
    return crc32c_sw(crc, buf, n);
}

static uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
            crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) {
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
    }
    return ~c;
}

/* ---- state ---- */

struct hole {
    uint64_t from, to; /* [from, to): bytes skipped as corrupt at recovery */
};

/* [from, to): records settled above the watermark (the `settled` file). */
struct srange {
    uint64_t from, to;
};

struct seg {
    uint64_t first; /* from its name */
    uint64_t last;  /* its last record's seq; valid when nrec > 0 */
    uint64_t nrec;  /* records in it, settled or not */
    uint64_t size;  /* bytes on disk that hold whole, durable records */
    struct hole *holes;
    size_t nholes;
};

/* An append waiting for its sync (fsync: batch): on the appender's stack, or in its thread's
 * waitset (o2d_defer.h). */
struct ticket {
    struct ticket *next;
    uint64_t end;  /* the seq after its last record */
    uint64_t file; /* the first seq of the segment its records are in: its file */
    int status;
    int pending; /* on the log's list, not completed */
};

/* A segment file replaced as the active one before a sync covered it: open until synced. */
struct retired {
    int fd;
    uint64_t file;
};

struct tstamp {
    uint64_t seq; /* records from this seq on were appended at ms or later */
    int64_t ms;
};

#define ST_SETTLED 1 /* settled, dropped, or never a record */

struct dlog {
    pthread_mutex_t mu;
    pthread_cond_t cv_done;  /* a sync finished: tickets completed, or a new syncer needed */
    pthread_cond_t cv_wm;    /* the watermark thread: base moved, or stop */
    pthread_cond_t cv_pause; /* never signalled: the group commit's wait */
    pthread_t wm_thread;
    int wm_thread_on;
    int stop;

    char *dir;
    int dirfd;
    int lockfd;
    struct dlog_config cfg;

    struct seg *segs; /* by seq; the last one is the active segment when active_fd >= 0 */
    size_t nsegs, capsegs;

    int active_fd;
    int active_dirty;     /* written since the last sync took it (fsync: batch) */
    int need_new_segment; /* after a failed sync or for drop_oldest: the next append starts
                             a new file */
    int broken;           /* a cut-back failed: every append refused */
    int fail_write, fail_sync;
    /* fsync: batch: appends written and not yet synced, in seq order; the files they are in
     * that are no longer the active one; whether a sync is running; a new segment's name
     * that the directory must sync. Only the syncer closes a file while it syncs. */
    struct ticket *tk_head, *tk_tail;
    struct retired *ret;
    size_t nret, capret;
    int syncing;
    int dir_dirty;

    /* The window of seqs [base, next_seq). */
    uint64_t base, next_seq;
    uint64_t published; /* seqs below it were written (or burned at recovery) */
    uint32_t *tags;
    uint8_t *st;
    uint64_t wcap; /* a power of two */

    struct tstamp *times; /* ring of when records were appended, one entry a TIME_GRAIN_MS */
    size_t tcap, thead, tlen;

    uint64_t wm_disk;  /* the watermark last written */
    int settled_dirty; /* records above base were settled since the settled file was written */
    struct srange *sr; /* at recovery: the settled file's ranges, sorted */
    size_t nsr;
    int64_t wm_written_ms;

    /* Reader: segs[rseg] at roff, next hole rhole; returned every seq below rnext. */
    size_t rseg;
    uint64_t roff;
    size_t rhole;
    int rfd;
    uint64_t rnext;

    struct dlog_stats stats;
};

static void log_errno(int level, const char *msg, const char *path, int err)
{
    struct o2d_logline ll;
    o2d_log_begin(&ll, level, msg);
    o2d_log_cstr(&ll, "path", path);
    o2d_log_cstr(&ll, "error", strerror(err));
    o2d_log_end(&ll);
}

static void seg_name(char *out, size_t n, uint64_t first)
{
    snprintf(out, n, "seg-%016llx.log", (unsigned long long)first);
}

/* 1 when name is exactly seg-<16 lowercase hex>.log, with its seq in *first. */
static int parse_seg_name(const char *name, uint64_t *first)
{
    if (strlen(name) != 24 || memcmp(name, "seg-", 4) != 0 || strcmp(name + 20, ".log") != 0) {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return 0;
        }
        v = v << 4 | (uint64_t)d;
    }
    *first = v;
    return v < SEQ_MAX;
}

/* ---- the window ---- */

static int window_reserve(struct dlog *l, uint64_t upto)
{
    uint64_t need = upto - l->base;
    if (need <= l->wcap) {
        return O2D_OK;
    }
    uint64_t cap = l->wcap ? l->wcap : 1024;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > SIZE_MAX / sizeof(uint32_t)) {
        return O2D_ERR_NOMEM;
    }
    uint32_t *tags = o2d_malloc((size_t)cap * sizeof(uint32_t));
    uint8_t *st = o2d_malloc((size_t)cap);
    if (tags == NULL || st == NULL) {
        o2d_free(tags);
        o2d_free(st);
        return O2D_ERR_NOMEM;
    }
    for (uint64_t s = l->base; s < l->next_seq; s++) {
        tags[s & (cap - 1)] = l->tags[s & (l->wcap - 1)];
        st[s & (cap - 1)] = l->st[s & (l->wcap - 1)];
    }
    o2d_free(l->tags);
    o2d_free(l->st);
    l->tags = tags;
    l->st = st;
    l->wcap = cap;
    return O2D_OK;
}

/* Adds seq (>= next_seq) to the window, unsettled, with the seqs skipped before it settled.
 * An empty window jumps instead of filling the gap. */
static int window_add(struct dlog *l, uint64_t seq, uint32_t tag)
{
    if (l->base == l->next_seq) {
        l->base = l->next_seq = seq;
    }
    int rv = window_reserve(l, seq + 1);
    if (rv != O2D_OK) {
        return rv;
    }
    for (; l->next_seq < seq; l->next_seq++) {
        l->st[l->next_seq & (l->wcap - 1)] = ST_SETTLED;
        l->tags[l->next_seq & (l->wcap - 1)] = 0;
    }
    l->st[seq & (l->wcap - 1)] = 0;
    l->tags[seq & (l->wcap - 1)] = tag;
    l->next_seq = seq + 1;
    return O2D_OK;
}

static int is_settled(const struct dlog *l, uint64_t seq)
{
    return seq < l->base || seq >= l->next_seq || (l->st[seq & (l->wcap - 1)] & ST_SETTLED);
}

static void advance_base(struct dlog *l)
{
    uint64_t old = l->base;
    while (l->base < l->next_seq && (l->st[l->base & (l->wcap - 1)] & ST_SETTLED)) {
        l->base++;
    }
    while (l->tlen > 1 && l->times[(l->thead + 1) % l->tcap].seq <= l->base) {
        l->thead = (l->thead + 1) % l->tcap;
        l->tlen--;
    }
    if (l->base != old && l->base > l->wm_disk) {
        pthread_cond_signal(&l->cv_wm);
    }
}

/* Marks seq settled (uncounted when it never was a record of the stats). */
static void settle_one(struct dlog *l, uint64_t seq, int counted)
{
    if (is_settled(l, seq)) {
        return;
    }
    l->st[seq & (l->wcap - 1)] |= ST_SETTLED;
    if (seq > l->base && !l->settled_dirty) {
        /* out of order: the watermark cannot pass it yet, the settled file can */
        l->settled_dirty = 1;
        pthread_cond_signal(&l->cv_wm);
    }
    if (counted) {
        l->stats.records--;
        l->stats.units -= l->tags[seq & (l->wcap - 1)];
    }
}

/* Notes that records from seq on were appended at ms (coalesced per TIME_GRAIN_MS). A failed
 * allocation only makes the oldest age coarser. */
static void note_time(struct dlog *l, uint64_t seq, int64_t ms)
{
    if (l->tlen > 0) {
        struct tstamp *last = &l->times[(l->thead + l->tlen - 1) % l->tcap];
        if (ms - last->ms < TIME_GRAIN_MS) {
            return;
        }
    }
    if (l->tlen == l->tcap) {
        size_t cap = l->tcap ? l->tcap * 2 : 64;
        struct tstamp *t = o2d_malloc(cap * sizeof(*t));
        if (t == NULL) {
            return;
        }
        for (size_t i = 0; i < l->tlen; i++) {
            t[i] = l->times[(l->thead + i) % l->tcap];
        }
        o2d_free(l->times);
        l->times = t;
        l->tcap = cap;
        l->thead = 0;
    }
    l->times[(l->thead + l->tlen) % l->tcap] = (struct tstamp){seq, ms};
    l->tlen++;
}

/* ---- segments ---- */

static int segs_push(struct dlog *l, uint64_t first)
{
    if (l->nsegs == l->capsegs) {
        size_t cap = l->capsegs ? l->capsegs * 2 : 16;
        struct seg *s = o2d_realloc(l->segs, cap * sizeof(*s));
        if (s == NULL) {
            return O2D_ERR_NOMEM;
        }
        l->segs = s;
        l->capsegs = cap;
    }
    l->segs[l->nsegs++] = (struct seg){.first = first};
    return O2D_OK;
}

static int seg_is_active(const struct dlog *l, size_t i)
{
    return l->active_fd >= 0 && i + 1 == l->nsegs;
}

/* Removes segs[0] from the list (its file is the caller's to unlink). */
static void segs_pop_front(struct dlog *l)
{
    l->stats.bytes -= l->segs[0].size;
    o2d_free(l->segs[0].holes);
    memmove(l->segs, l->segs + 1, (l->nsegs - 1) * sizeof(*l->segs));
    l->nsegs--;
    if (l->rseg > 0) {
        l->rseg--;
    } else {
        if (l->rfd >= 0) {
            close(l->rfd);
            l->rfd = -1;
        }
        l->roff = 0;
        l->rhole = 0;
    }
}

static void unlink_seg(struct dlog *l, uint64_t first)
{
    char name[32];
    seg_name(name, sizeof(name), first);
    if (unlinkat(l->dirfd, name, 0) != 0 && errno != ENOENT) {
        log_errno(O2D_LOG_WARN, "disk log: cannot remove a settled segment", name, errno);
    }
}

/* ---- the watermark ---- */

static int write_watermark(struct dlog *l, uint64_t wm)
{
    uint8_t b[WM_FILE_BYTES];
    o2d_put_le32(b, WM_MAGIC);
    o2d_put_le64(b + 4, wm);
    o2d_put_le32(b + 12, crc32c(0, b, 12));
    int fd = openat(l->dirfd, "watermark.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_errno(O2D_LOG_WARN, "disk log: cannot write the watermark", l->dir, errno);
        return O2D_ERR_SYSTEM;
    }
    int ok = pwrite(fd, b, sizeof(b), 0) == (ssize_t)sizeof(b) && fdatasync(fd) == 0;
    int err = errno;
    close(fd);
    if (ok) {
        ok =
            renameat(l->dirfd, "watermark.tmp", l->dirfd, "watermark") == 0 && fsync(l->dirfd) == 0;
        err = errno;
    }
    if (!ok) {
        log_errno(O2D_LOG_WARN, "disk log: cannot write the watermark", l->dir, err);
        return O2D_ERR_SYSTEM;
    }
    return O2D_OK;
}

/* 1 and *wm when the file is there and whole; 0 when absent; -1 when it fails its check. */
static int read_watermark(struct dlog *l, uint64_t *wm)
{
    int fd = openat(l->dirfd, "watermark", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -1;
    }
    uint8_t b[WM_FILE_BYTES + 1];
    ssize_t n = pread(fd, b, sizeof(b), 0);
    close(fd);
    if (n != WM_FILE_BYTES || o2d_get_le32(b) != WM_MAGIC ||
        o2d_get_le32(b + 12) != crc32c(0, b, 12)) {
        return -1;
    }
    *wm = o2d_get_le64(b + 4);
    return *wm < SEQ_MAX ? 1 : -1;
}

/*
 * The `settled` file: the runs of records settled above the watermark, so that a restart
 * replays only what was really unsettled (bodies in flight, say), not everything delivered
 * after the oldest of them. [u32 magic][u32 n][n x (u64 from, u64 to)][u32 crc32c]. Replaced
 * by rename; losing it (a crash before the rename is on disk) only replays more.
 */
#define SR_MAGIC 0x53443230u /* "02DS" little endian */
#define SR_MAX   65536u      /* ranges kept; more are left out (replayed, never lost) */

/* With mu held: the runs of settled records in [base, next_seq), in buf (o2d_malloc). */
static uint8_t *settled_ranges(struct dlog *l, size_t *len)
{
    size_t n = 0;
    uint8_t *b = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        uint64_t s = l->base;
        while (s < l->next_seq && k < SR_MAX) {
            while (s < l->next_seq && !(l->st[s & (l->wcap - 1)] & ST_SETTLED)) {
                s++;
            }
            uint64_t from = s;
            while (s < l->next_seq && (l->st[s & (l->wcap - 1)] & ST_SETTLED)) {
                s++;
            }
            if (s > from) {
                if (b != NULL) {
                    o2d_put_le64(b + 8 + k * 16, from);
                    o2d_put_le64(b + 16 + k * 16, s);
                }
                k++;
            }
        }
        if (pass == 0) {
            n = k;
            b = o2d_malloc(8 + n * 16 + 4);
            if (b == NULL) {
                return NULL;
            }
        }
    }
    o2d_put_le32(b, SR_MAGIC);
    o2d_put_le32(b + 4, (uint32_t)n);
    o2d_put_le32(b + 8 + n * 16, crc32c(0, b, 8 + n * 16));
    *len = 8 + n * 16 + 4;
    return b;
}

static void write_settled(struct dlog *l, const uint8_t *b, size_t len)
{
    int fd = openat(l->dirfd, "settled.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return;
    }
    int ok = pwrite(fd, b, len, 0) == (ssize_t)len && fdatasync(fd) == 0;
    close(fd);
    if (ok) {
        (void)renameat(l->dirfd, "settled.tmp", l->dirfd, "settled");
    }
}

/* The settled file's ranges into l->sr (nothing when absent or damaged: replay more). */
static void read_settled(struct dlog *l)
{
    int fd = openat(l->dirfd, "settled", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    struct stat st;
    uint8_t *b = NULL;
    if (fstat(fd, &st) == 0 && st.st_size >= 12 && st.st_size <= 8 + (off_t)SR_MAX * 16 + 4 &&
        (b = o2d_malloc((size_t)st.st_size)) != NULL &&
        pread(fd, b, (size_t)st.st_size, 0) == st.st_size) {
        size_t len = (size_t)st.st_size;
        uint32_t n = o2d_get_le32(b + 4);
        if (o2d_get_le32(b) == SR_MAGIC && len == 8 + (size_t)n * 16 + 4 &&
            o2d_get_le32(b + len - 4) == crc32c(0, b, len - 4)) {
            l->sr = o2d_calloc(n > 0 ? n : 1, sizeof(*l->sr));
            for (uint32_t i = 0; l->sr != NULL && i < n; i++) {
                l->sr[i].from = o2d_get_le64(b + 8 + i * 16);
                l->sr[i].to = o2d_get_le64(b + 16 + i * 16);
            }
            l->nsr = l->sr != NULL ? n : 0;
        }
    }
    o2d_free(b);
    close(fd);
}

static int in_settled_range(const struct dlog *l, uint64_t seq)
{
    size_t lo = 0, hi = l->nsr;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seq < l->sr[mid].from) {
            hi = mid;
        } else if (seq >= l->sr[mid].to) {
            lo = mid + 1;
        } else {
            return 1;
        }
    }
    return 0;
}

/* With mu held: writes the in-memory watermark if it moved (mu released meanwhile), and the
 * settled file if records above it were settled, then unlinks the segments wholly below it. */
static void flush_watermark(struct dlog *l)
{
    uint64_t wm = l->base;
    if (wm > l->wm_disk) {
        pthread_mutex_unlock(&l->mu);
        int rv = write_watermark(l, wm);
        pthread_mutex_lock(&l->mu);
        l->wm_written_ms = o2d_now_ms();
        if (rv != O2D_OK) {
            return;
        }
        l->wm_disk = wm;
    }
    if (l->settled_dirty) {
        size_t len = 0;
        uint8_t *b = settled_ranges(l, &len);
        if (b != NULL) {
            l->settled_dirty = 0;
            pthread_mutex_unlock(&l->mu);
            write_settled(l, b, len);
            o2d_free(b);
            pthread_mutex_lock(&l->mu);
            l->wm_written_ms = o2d_now_ms();
        }
    }
    uint64_t gone[64];
    size_t ngone = 0;
    while (l->nsegs > 0 && !seg_is_active(l, 0) && ngone < 64 &&
           (l->segs[0].nrec == 0 || l->segs[0].last < l->wm_disk) &&
           (l->nsegs > 1 || l->segs[0].first < l->wm_disk)) {
        gone[ngone++] = l->segs[0].first;
        segs_pop_front(l);
    }
    /* The active segment too, once every record in it was read, settled and written past:
     * closed and removed, so that a disk that filled up (ENOSPC before segment_bytes) gets its
     * room back; the next append starts a new segment. Only while no sync runs and none
     * waits (every record in it is synced then). */
    if (ngone < 64 && l->nsegs == 1 && seg_is_active(l, 0) && !l->syncing && l->tk_head == NULL &&
        l->segs[0].nrec > 0 && l->segs[0].last < l->wm_disk && l->rnext > l->segs[0].last) {
        close(l->active_fd);
        l->active_fd = -1;
        gone[ngone++] = l->segs[0].first;
        segs_pop_front(l);
    }
    if (ngone > 0) {
        pthread_mutex_unlock(&l->mu);
        for (size_t i = 0; i < ngone; i++) {
            unlink_seg(l, gone[i]);
        }
        pthread_mutex_lock(&l->mu);
    }
}

static void *wm_main(void *arg)
{
    struct dlog *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->base <= l->wm_disk && !l->settled_dirty) {
            pthread_cond_wait(&l->cv_wm, &l->mu);
            continue;
        }
        int64_t due = l->wm_written_ms + WM_INTERVAL_MS;
        if (o2d_now_ms() < due) {
            /* cv_wm waits on CLOCK_MONOTONIC (dlog_open), the clock of o2d_now_ms */
            struct timespec ts = o2d_timespec_from_ms(due);
            pthread_cond_timedwait(&l->cv_wm, &l->mu, &ts);
            continue;
        }
        flush_watermark(l);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- recovery ---- */

struct scan {
    int fd;
    uint64_t size;
    uint8_t *buf;
    uint64_t boff;
    size_t blen;
    int err; /* errno of a failed read */
};

/* n bytes at off (n <= SCAN_BUF, off + n <= size), or NULL when the read failed. */
static const uint8_t *scan_at(struct scan *s, uint64_t off, size_t n)
{
    if (off >= s->boff && off + n <= s->boff + s->blen) {
        return s->buf + (off - s->boff);
    }
    uint64_t want = s->size - off < SCAN_BUF ? s->size - off : SCAN_BUF;
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(s->fd, s->buf + got, (size_t)want - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            s->err = r < 0 ? errno : EIO; /* shorter than fstat said */
            s->blen = 0;
            return NULL;
        }
        got += (size_t)r;
    }
    s->boff = off;
    s->blen = got;
    if (got < n) {
        s->err = EIO;
        return NULL;
    }
    return s->buf;
}

/* 1 when a whole record with lo <= seq <= hi and a good checksum starts at off (its length,
 * tag and seq in the out-parameters), 0 when not, -1 when the file cannot be read. */
static int check_rec(struct scan *s, uint64_t off, uint64_t lo, uint64_t hi, uint32_t *len,
                     uint32_t *tag, uint64_t *seq)
{
    if (s->size - off < REC_OVERHEAD) {
        return 0;
    }
    const uint8_t *h = scan_at(s, off, REC_HEAD);
    if (h == NULL) {
        return -1;
    }
    uint32_t n = o2d_get_le32(h);
    uint64_t q = o2d_get_le64(h + 8);
    if (n > s->size - off - REC_OVERHEAD || q < lo || q > hi) {
        return 0;
    }
    *tag = o2d_get_le32(h + 4);
    uint32_t crc = crc32c(0, h + 4, 12);
    uint64_t p = off + REC_HEAD, end = p + n;
    while (p < end) {
        size_t k = end - p < SCAN_BUF ? (size_t)(end - p) : SCAN_BUF;
        const uint8_t *b = scan_at(s, p, k);
        if (b == NULL) {
            return -1;
        }
        crc = crc32c(crc, b, k);
        p += k;
    }
    const uint8_t *t = scan_at(s, end, REC_TAIL);
    if (t == NULL) {
        return -1;
    }
    if (o2d_get_le32(t) != crc) {
        return 0;
    }
    *len = n;
    *seq = q;
    return 1;
}

/* Whether a file without a whole record looks like a first record cut short by a crash
 * (shorter than a header, or a header with the seq of the file's name) rather than garbage. */
static int torn_first(struct scan *s, uint64_t first)
{
    if (s->size < REC_HEAD) {
        return 1;
    }
    const uint8_t *h = scan_at(s, 0, REC_HEAD);
    return h != NULL && o2d_get_le64(h + 8) == first;
}

static void set_aside(struct dlog *l, const char *name, const char *reason)
{
    char bad[NAME_MAX + 8];
    snprintf(bad, sizeof(bad), "%s.bad", name);
    struct o2d_logline ll;
    o2d_log_begin(&ll, O2D_LOG_WARN, "disk log: a file in the queue directory was set aside");
    o2d_log_cstr(&ll, "dir", l->dir);
    o2d_log_cstr(&ll, "file", name);
    o2d_log_cstr(&ll, "renamed_to", bad);
    o2d_log_cstr(&ll, "reason", reason);
    o2d_log_end(&ll);
    if (renameat(l->dirfd, name, l->dirfd, bad) != 0) {
        log_errno(O2D_LOG_WARN, "disk log: cannot rename a file set aside", name, errno);
    }
    l->stats.files_set_aside++;
}

struct found {
    uint64_t seq;
    uint32_t tag;
};

/*
 * Scans segs[i] (its records go into the window from wm on). O2D_OK; O2D_ERR_NOT_FOUND when
 * the file is unreadable or holds no record (set aside or removed, and out of the list);
 * O2D_ERR_NOMEM.
 */
static int recover_seg(struct dlog *l, size_t i, uint64_t *expect, uint64_t wm, uint8_t *buf)
{
    struct seg *sg = &l->segs[i];
    char name[32];
    seg_name(name, sizeof(name), sg->first);
    struct scan s = {.fd = -1, .buf = buf};
    struct found *fnd = NULL;
    size_t nfnd = 0, capfnd = 0;
    struct hole *holes = NULL;
    size_t nholes = 0;
    uint64_t corrupt = 0, torn = 0;
    int rv = O2D_ERR_NOT_FOUND;

    s.fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC);
    struct stat stt;
    if (s.fd < 0 || fstat(s.fd, &stt) != 0) {
        s.err = errno;
        goto out;
    }
    s.size = (uint64_t)stt.st_size;
    uint64_t lo = *expect > sg->first ? *expect : sg->first;
    uint64_t off = 0;
    while (off < s.size) {
        uint32_t len = 0, tag = 0;
        uint64_t seq = 0;
        uint64_t hi = lo + SEQ_GAP_MAX < SEQ_MAX ? lo + SEQ_GAP_MAX : SEQ_MAX - 1;
        int r = check_rec(&s, off, lo, hi, &len, &tag, &seq);
        uint64_t p = off;
        while (r == 0 && ++p < s.size) {
            r = check_rec(&s, p, lo, hi, &len, &tag, &seq);
        }
        if (r < 0) {
            goto out;
        }
        if (r == 0 && nfnd == 0 && !torn_first(&s, sg->first)) {
            break; /* not a single record: set aside below, not cut to nothing */
        }
        if (r == 0) {
            /* nothing whole after off: a torn tail */
            if (ftruncate(s.fd, (off_t)off) != 0) {
                s.err = errno;
                goto out;
            }
            torn += s.size - off;
            s.size = off;
            break;
        }
        if (p != off) {
            if (nholes % 8 == 0) {
                struct hole *h = o2d_realloc(holes, (nholes + 8) * sizeof(*h));
                if (h == NULL) {
                    rv = O2D_ERR_NOMEM;
                    goto out;
                }
                holes = h;
            }
            holes[nholes++] = (struct hole){off, p};
            corrupt++;
        }
        if (nfnd == capfnd) {
            size_t cap = capfnd ? capfnd * 2 : 256;
            struct found *f = o2d_realloc(fnd, cap * sizeof(*f));
            if (f == NULL) {
                rv = O2D_ERR_NOMEM;
                goto out;
            }
            fnd = f;
            capfnd = cap;
        }
        fnd[nfnd++] = (struct found){seq, tag};
        lo = seq + 1;
        off = p + REC_OVERHEAD + len;
    }

    l->stats.corrupt += corrupt;
    l->stats.torn_bytes += torn;
    if (nfnd == 0) {
        if (s.size == 0) {
            unlinkat(l->dirfd, name, 0);
        } else {
            set_aside(l, name, "no whole record in it");
        }
        goto out;
    }
    if (corrupt > 0 || torn > 0) {
        struct o2d_logline ll;
        o2d_log_begin(&ll, O2D_LOG_WARN, "disk log: a segment was damaged; skipped what was");
        o2d_log_cstr(&ll, "path", name);
        o2d_log_uint(&ll, "records_skipped", corrupt);
        o2d_log_uint(&ll, "torn_bytes", torn);
        o2d_log_end(&ll);
    }
    int64_t mtime_ms = (int64_t)stt.st_mtim.tv_sec * 1000 + stt.st_mtim.tv_nsec / 1000000;
    int timed = 0;
    for (size_t k = 0; k < nfnd; k++) {
        if (fnd[k].seq < wm) {
            continue;
        }
        if (in_settled_range(l, fnd[k].seq)) {
            /* delivered (or dropped) before: in the window as settled, so that neither the
             * reader nor a settle takes it for a record still waiting */
            if (window_add(l, fnd[k].seq, 0) != O2D_OK) {
                rv = O2D_ERR_NOMEM;
                goto out;
            }
            l->st[fnd[k].seq & (l->wcap - 1)] |= ST_SETTLED;
            continue;
        }
        if (window_add(l, fnd[k].seq, fnd[k].tag) != O2D_OK) {
            rv = O2D_ERR_NOMEM;
            goto out;
        }
        if (!timed) {
            /* the file's mtime: when its last record was written, no earlier */
            note_time(l, fnd[k].seq, mtime_ms);
            timed = 1;
        }
        l->stats.records++;
        l->stats.units += fnd[k].tag;
        l->stats.recovered++;
    }
    sg->nrec = nfnd;
    sg->last = fnd[nfnd - 1].seq;
    sg->size = s.size;
    sg->holes = holes;
    sg->nholes = nholes;
    holes = NULL;
    l->stats.bytes += s.size;
    *expect = sg->last + 1;
    rv = O2D_OK;
out:
    if (s.err != 0) {
        set_aside(l, name, strerror(s.err));
    }
    if (s.fd >= 0) {
        close(s.fd);
    }
    o2d_free(fnd);
    o2d_free(holes);
    return rv;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int is_our_file(const char *name)
{
    size_t n = strlen(name);
    return strcmp(name, "lock") == 0 || strcmp(name, "watermark") == 0 ||
           strcmp(name, "watermark.tmp") == 0 || strcmp(name, "settled") == 0 ||
           strcmp(name, "settled.tmp") == 0 || (n > 4 && strcmp(name + n - 4, ".bad") == 0);
}

static int recover(struct dlog *l, char *err, size_t errlen)
{
    uint64_t wm = 0;
    int w = read_watermark(l, &wm);
    if (w < 0) {
        struct o2d_logline ll;
        o2d_log_begin(&ll, O2D_LOG_WARN,
                      "disk log: the watermark file fails its check; replaying every record");
        o2d_log_cstr(&ll, "dir", l->dir);
        o2d_log_end(&ll);
        wm = 0;
    }
    unlinkat(l->dirfd, "watermark.tmp", 0);
    unlinkat(l->dirfd, "settled.tmp", 0);
    read_settled(l);

    int dfd = dup(l->dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        snprintf(err, errlen, "disk log %s: cannot list the directory: %s", l->dir,
                 strerror(errno));
        if (dfd >= 0) {
            close(dfd);
        }
        return O2D_ERR_SYSTEM;
    }
    struct dirent *e;
    int rv = O2D_OK;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || is_our_file(e->d_name)) {
            continue;
        }
        if (!parse_seg_name(e->d_name, &first)) {
            struct stat st;
            if (fstatat(l->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode)) {
                /* a subdirectory or a link is not ours to move */
                set_aside(l, e->d_name, "not a segment name");
            }
            continue;
        }
        if (segs_push(l, first) != O2D_OK) {
            rv = O2D_ERR_NOMEM;
            break;
        }
    }
    closedir(d);
    if (rv != O2D_OK) {
        snprintf(err, errlen, "disk log %s: out of memory listing segments", l->dir);
        return rv;
    }
    if (l->nsegs > 1) {
        qsort(l->segs, l->nsegs, sizeof(*l->segs), cmp_seg);
    }

    uint8_t *buf = o2d_malloc(SCAN_BUF);
    if (buf == NULL) {
        snprintf(err, errlen, "disk log %s: out of memory", l->dir);
        return O2D_ERR_NOMEM;
    }
    l->base = l->next_seq = wm > 0 ? wm : 1;
    uint64_t expect = 0;
    size_t kept = 0;
    for (size_t i = 0; i < l->nsegs; i++) {
        /* wholly below the watermark: the next segment starts at or before it */
        if (wm > 0 && i + 1 < l->nsegs && l->segs[i + 1].first <= wm) {
            unlink_seg(l, l->segs[i].first);
            continue;
        }
        if (kept != i) {
            l->segs[kept] = l->segs[i];
        }
        rv = recover_seg(l, kept, &expect, wm, buf);
        if (rv == O2D_ERR_NOMEM) {
            l->nsegs = kept;
            o2d_free(buf);
            snprintf(err, errlen, "disk log %s: out of memory recovering", l->dir);
            return rv;
        }
        if (rv == O2D_OK) {
            kept++;
        }
    }
    l->nsegs = kept;
    o2d_free(buf);
    o2d_free(l->sr); /* only the scan needed them */
    l->sr = NULL;
    l->nsr = 0;
    /* all settled: remove now what a watermark already covers */
    while (l->nsegs > 0 && l->segs[0].last < wm) {
        uint64_t f = l->segs[0].first;
        segs_pop_front(l);
        unlink_seg(l, f);
    }
    l->published = l->next_seq;
    if (expect > l->next_seq) {
        l->next_seq = expect;
        if (l->stats.records == 0) {
            l->base = expect;
        }
        l->published = expect;
    }
    l->wm_disk = wm;
    if (l->stats.recovered > 0) {
        struct o2d_logline ll;
        o2d_log_begin(&ll, O2D_LOG_INFO, "disk log: replaying records not delivered before");
        o2d_log_cstr(&ll, "dir", l->dir);
        o2d_log_uint(&ll, "records", l->stats.recovered);
        o2d_log_uint(&ll, "units", l->stats.units);
        o2d_log_end(&ll);
    }
    return O2D_OK;
}

/* ---- open, close ---- */

int dlog_open(struct dlog **out, const struct dlog_config *cfg, char *err, size_t errlen)
{
    pthread_once(&crc_once, crc_init);
    *out = NULL;
    int rv = O2D_ERR_SYSTEM;
    struct dlog *l = o2d_calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "disk log: out of memory");
        return O2D_ERR_NOMEM;
    }
    l->cfg = *cfg;
    if (l->cfg.segment_bytes == 0) {
        l->cfg.segment_bytes = DEFAULT_SEGMENT_BYTES;
    }
    l->dirfd = l->lockfd = l->active_fd = l->rfd = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv_wm, &ca);
    pthread_cond_init(&l->cv_pause, &ca);
    pthread_condattr_destroy(&ca);

    l->dir = o2d_strndup(cfg->dir, strlen(cfg->dir));
    if (l->dir == NULL) {
        snprintf(err, errlen, "disk log: out of memory");
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "disk log: cannot create %s: %s", cfg->dir, strerror(errno));
        goto out;
    }
    l->dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->dirfd < 0) {
        snprintf(err, errlen, "disk log: cannot open %s: %s", cfg->dir, strerror(errno));
        goto out;
    }
    l->lockfd = openat(l->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l->lockfd < 0) {
        snprintf(err, errlen, "disk log: cannot open %s/lock: %s", cfg->dir, strerror(errno));
        goto out;
    }
    if (flock(l->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            snprintf(err, errlen,
                     "disk log: %s is in use by another otel2dd (its lock file is held); "
                     "give each process its own directory",
                     cfg->dir);
        } else {
            snprintf(err, errlen, "disk log: cannot lock %s/lock: %s", cfg->dir, strerror(errno));
        }
        rv = O2D_ERR_BUSY;
        goto out;
    }
    rv = recover(l, err, errlen);
    if (rv != O2D_OK) {
        goto out;
    }
    l->wm_written_ms = o2d_now_ms();
    if (pthread_create(&l->wm_thread, NULL, wm_main, l) != 0) {
        snprintf(err, errlen, "disk log: cannot start its thread");
        rv = O2D_ERR_SYSTEM;
        goto out;
    }
    l->wm_thread_on = 1;
    *out = l;
    l = NULL;
    rv = O2D_OK;
out:
    dlog_close(l);
    return rv;
}

void dlog_close(struct dlog *l)
{
    if (l == NULL) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_wm);
    pthread_mutex_unlock(&l->mu);
    if (l->wm_thread_on) {
        pthread_join(l->wm_thread, NULL);
    }
    if (l->active_fd >= 0) {
        close(l->active_fd);
        l->active_fd = -1;
    }
    for (size_t i = 0; i < l->nret; i++) {
        close(l->ret[i].fd);
    }
    o2d_free(l->ret);
    if (l->wm_thread_on) {
        pthread_mutex_lock(&l->mu);
        flush_watermark(l);
        pthread_mutex_unlock(&l->mu);
    }
    if (l->rfd >= 0) {
        close(l->rfd);
    }
    for (size_t i = 0; i < l->nsegs; i++) {
        o2d_free(l->segs[i].holes);
    }
    o2d_free(l->segs);
    o2d_free(l->sr);
    o2d_free(l->tags);
    o2d_free(l->st);
    o2d_free(l->times);
    if (l->lockfd >= 0) {
        close(l->lockfd); /* releases the flock */
    }
    if (l->dirfd >= 0) {
        close(l->dirfd);
    }
    o2d_free(l->dir);
    pthread_cond_destroy(&l->cv_done);
    pthread_cond_destroy(&l->cv_wm);
    pthread_cond_destroy(&l->cv_pause);
    pthread_mutex_destroy(&l->mu);
    o2d_free(l);
}

/* ---- append ---- */

/* pwritev of every byte, or -1 with errno. */
static int write_all(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    while (cnt > 0) {
        ssize_t w = pwritev(fd, iov, cnt, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        off += (uint64_t)w;
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* With mu held: the active segment (if any) is replaced. With fsync: batch it stays open until
 * a sync covered it (the syncer closes it); otherwise it is closed now. */
static int retire_active(struct dlog *l)
{
    if (l->active_fd < 0) {
        return O2D_OK;
    }
    if (l->cfg.fsync == DLOG_FSYNC_BATCH) {
        if (l->nret == l->capret) {
            size_t cap = l->capret ? l->capret * 2 : 4;
            struct retired *r = o2d_realloc(l->ret, cap * sizeof(*r));
            if (r == NULL) {
                return O2D_ERR_NOMEM;
            }
            l->ret = r;
            l->capret = cap;
        }
        l->ret[l->nret++] = (struct retired){l->active_fd, l->segs[l->nsegs - 1].first};
    } else {
        close(l->active_fd);
    }
    l->active_fd = -1;
    l->active_dirty = 0;
    return O2D_OK;
}

/* With mu held: makes a new segment file named first the active one. Its name is synced with
 * the next sync (fsync: batch): no append in it is acknowledged before. */
static int open_segment(struct dlog *l, uint64_t first)
{
    int rv = retire_active(l);
    if (rv != O2D_OK) {
        return rv;
    }
    char name[32];
    seg_name(name, sizeof(name), first);
    int fd = openat(l->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_errno(O2D_LOG_ERROR, "disk log: cannot create a segment", name, errno);
        return O2D_ERR_SYSTEM;
    }
    if (segs_push(l, first) != O2D_OK) {
        close(fd);
        unlinkat(l->dirfd, name, 0);
        return O2D_ERR_NOMEM;
    }
    l->active_fd = fd;
    l->need_new_segment = 0;
    l->dir_dirty = l->cfg.fsync == DLOG_FSYNC_BATCH;
    return O2D_OK;
}

/* With mu held: writes recs[0..n) as seqs from seq at off of fd. 0, or -1 with errno. With
 * fail set, writes half of the first record's header and fails with it (the test hook). */
static int write_recs(const struct dlog_rec *recs, size_t n, uint64_t seq, int fd, uint64_t off,
                      int fail, uint64_t *end)
{
    uint8_t heads[CHUNK_RECS][REC_HEAD];
    uint8_t tails[CHUNK_RECS][REC_TAIL];
    struct iovec iov[CHUNK_RECS * 4];
    int niov = 0;
    size_t k = 0;
    uint64_t bytes = 0;
    if (fail) {
        uint8_t h[REC_HEAD] = {0};
        struct iovec half = {h, REC_HEAD / 2};
        (void)write_all(fd, &half, 1, off);
        errno = fail;
        return -1;
    }
    for (size_t i = 0; i < n; i++, seq++) {
        const struct dlog_rec *rec = &recs[i];
        size_t len = rec->prefix_len + rec->len;
        o2d_put_le32(heads[k], (uint32_t)len);
        o2d_put_le32(heads[k] + 4, rec->tag);
        o2d_put_le64(heads[k] + 8, seq);
        uint32_t crc = crc32c(0, heads[k] + 4, 12);
        iov[niov++] = (struct iovec){heads[k], REC_HEAD};
        if (rec->prefix_len > 0) {
            crc = crc32c(crc, rec->prefix, rec->prefix_len);
            iov[niov++] = (struct iovec){(void *)rec->prefix, rec->prefix_len};
        }
        o2d_put_le32(tails[k], crc32c(crc, rec->data, rec->len));
        iov[niov++] = (struct iovec){(void *)rec->data, rec->len};
        iov[niov++] = (struct iovec){tails[k], REC_TAIL};
        bytes += REC_OVERHEAD + len;
        k++;
        if (k == CHUNK_RECS || i + 1 == n) {
            if (write_all(fd, iov, niov, off) != 0) {
                return -1;
            }
            off += bytes;
            bytes = 0;
            k = 0;
            niov = 0;
        }
    }
    *end = off;
    return 0;
}

/* With mu held: makes room for bytes under max_bytes. O2D_OK or O2D_ERR_BUSY. */
static int make_room(struct dlog *l, uint64_t bytes)
{
    while (l->stats.bytes + bytes > l->cfg.max_bytes) {
        if (l->cfg.when_full != DLOG_FULL_DROP_OLDEST || l->nsegs == 0 || seg_is_active(l, 0)) {
            if (l->cfg.when_full == DLOG_FULL_DROP_OLDEST && l->nsegs == 1 && seg_is_active(l, 0)) {
                /* the one segment is being appended to: the next append starts another, so
                 * that this one can go */
                l->need_new_segment = 1;
            }
            return O2D_ERR_BUSY;
        }
        struct seg *sg = &l->segs[0];
        uint64_t dropped = 0, units = 0;
        for (uint64_t s = sg->nrec ? sg->first : 1; sg->nrec && s <= sg->last; s++) {
            if (is_settled(l, s)) {
                continue;
            }
            if (s >= l->rnext) {
                dropped++;
                units += l->tags[s & (l->wcap - 1)];
            }
            settle_one(l, s, 1);
        }
        l->stats.dropped_records += dropped;
        l->stats.dropped_units += units;
        uint64_t f = sg->first;
        if (l->rnext <= sg->last && sg->nrec) {
            l->rnext = sg->last + 1;
        }
        segs_pop_front(l);
        advance_base(l);
        unlink_seg(l, f);
        struct o2d_logline ll;
        o2d_log_begin(&ll, O2D_LOG_WARN, "disk log: full; dropped its oldest segment");
        o2d_log_cstr(&ll, "dir", l->dir);
        o2d_log_uint(&ll, "records", dropped);
        o2d_log_uint(&ll, "units", units);
        o2d_log_end(&ll);
    }
    return O2D_OK;
}

static void log_append_failed(struct dlog *l, const char *op, int err, uint64_t appends,
                              uint64_t records)
{
    struct o2d_logline ll;
    o2d_log_begin(&ll, O2D_LOG_ERROR, "disk log: an append failed");
    o2d_log_cstr(&ll, "dir", l->dir);
    o2d_log_cstr(&ll, "op", op);
    o2d_log_cstr(&ll, "error", strerror(err));
    o2d_log_uint(&ll, "appends", appends);
    o2d_log_uint(&ll, "records", records);
    o2d_log_end(&ll);
}

/* Writes the records now; with fsync: batch, puts t on the list of appends waiting for a sync
 * (then t->pending), else completes t. Errors as dlog_append's, a failed sync excepted. */
static int write_now(struct dlog *l, const struct dlog_rec *recs, size_t n, uint64_t *first_seq,
                     struct ticket *t)
{
    uint64_t bytes = 0, units = 0;
    if (n == 0) {
        return O2D_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t len = (uint64_t)recs[i].prefix_len + recs[i].len;
        if (len > UINT32_MAX - REC_OVERHEAD || len + REC_OVERHEAD > l->cfg.segment_bytes ||
            len + REC_OVERHEAD > l->cfg.max_bytes) {
            return O2D_ERR_TOO_LARGE;
        }
        bytes += len + REC_OVERHEAD;
        units += recs[i].tag;
    }
    pthread_mutex_lock(&l->mu);
    int rv = l->broken ? O2D_ERR_SYSTEM : make_room(l, bytes);
    uint64_t first = l->next_seq;
    if (rv == O2D_OK) {
        rv = window_reserve(l, first + n);
    }
    if (rv == O2D_OK && (l->active_fd < 0 || l->need_new_segment ||
                         l->segs[l->nsegs - 1].size >= l->cfg.segment_bytes)) {
        rv = open_segment(l, first);
    }
    if (rv != O2D_OK) {
        pthread_mutex_unlock(&l->mu);
        return rv;
    }
    struct seg *sg = &l->segs[l->nsegs - 1];
    int fail = l->fail_write;
    l->fail_write = 0;
    uint64_t end = sg->size;
    if (write_recs(recs, n, first, l->active_fd, sg->size, fail, &end) != 0) {
        int err = errno;
        /* nothing of this call may come back: cut the file to where it was */
        if (ftruncate(l->active_fd, (off_t)sg->size) != 0) {
            log_errno(O2D_LOG_ERROR,
                      "disk log: cannot cut a segment back after a failed append; "
                      "refusing every later append",
                      l->dir, errno);
            l->broken = 1;
        }
        l->stats.write_errors++;
        pthread_mutex_unlock(&l->mu);
        log_append_failed(l, "write", err, 1, n);
        return O2D_ERR_SYSTEM;
    }
    for (size_t i = 0; i < n; i++) {
        window_add(l, first + i, recs[i].tag); /* reserved: cannot fail */
    }
    sg->nrec += n;
    sg->last = first + n - 1;
    l->stats.bytes += end - sg->size;
    sg->size = end;
    l->stats.records += n;
    l->stats.units += units;
    note_time(l, first, o2d_realtime_ns() / 1000000);
    l->published = first + n;
    *first_seq = first;
    *t = (struct ticket){.end = first + n, .file = sg->first, .status = O2D_OK};
    if (l->cfg.fsync == DLOG_FSYNC_BATCH) {
        t->pending = 1;
        if (l->tk_tail != NULL) {
            l->tk_tail->next = t;
        } else {
            l->tk_head = t;
        }
        l->tk_tail = t;
        l->active_dirty = 1;
    } else {
        l->stats.batches++;
        l->stats.batched_appends++;
    }
    pthread_mutex_unlock(&l->mu);
    return O2D_OK;
}

/* With mu held: completes with status the waiting tickets of `file` (all of them: it failed),
 * or, file 0, those up to seq end. Returns how many. */
static uint64_t complete(struct dlog *l, uint64_t file, uint64_t end, int status)
{
    uint64_t n = 0;
    struct ticket **pp = &l->tk_head;
    l->tk_tail = NULL;
    while (*pp != NULL) {
        struct ticket *t = *pp;
        if (file != 0 ? t->file != file : t->end > end) {
            l->tk_tail = t;
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        t->next = NULL;
        t->status = status;
        t->pending = 0;
        n++;
    }
    return n;
}

/* The syncer, with mu held: syncs every file written since the last sync (mu released
 * meanwhile) and completes the tickets that sync covered. */
static void run_sync(struct dlog *l)
{
    if (l->cfg.group_commit_us > 0) {
        /* a pause with mu released, so that more appends are written before this sync */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + l->cfg.group_commit_us * 1000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&l->cv_pause, &l->mu, &ts);
    }
    /* What this sync covers: every ticket up to `upto`, in the retired files and the active
     * one. Writers do not close a file while this runs (they retire it); only we close. */
    uint64_t upto = l->next_seq;
    size_t nfiles = l->nret + (l->active_fd >= 0 && l->active_dirty);
    struct retired stack[8];
    struct retired *files = nfiles <= 8 ? stack : o2d_malloc(nfiles * sizeof(*files));
    if (files == NULL) {
        nfiles = 0; /* no memory for the list: this sync fails them all, below */
    } else {
        if (l->nret > 0) {
            memcpy(files, l->ret, l->nret * sizeof(*files));
        }
        if (l->active_fd >= 0 && l->active_dirty) {
            files[l->nret] = (struct retired){l->active_fd, l->segs[l->nsegs - 1].first};
            l->active_dirty = 0;
        }
    }
    size_t nret = l->nret;
    int dir = l->dir_dirty;
    l->dir_dirty = 0;
    int fail_sync = l->fail_sync;
    l->fail_sync = 0;
    pthread_mutex_unlock(&l->mu);

    int64_t t0 = o2d_now_ns();
    int derr = dir && fsync(l->dirfd) != 0 ? errno : 0;
    int errs[8] = {0};
    int *ferr = nfiles <= 8 ? errs : o2d_calloc(nfiles, sizeof(int));
    int nomem = files == NULL || ferr == NULL;
    for (size_t i = 0; !nomem && i < nfiles; i++) {
        if (fdatasync(files[i].fd) != 0) {
            ferr[i] = errno;
        } else if (fail_sync && i + 1 == nfiles) {
            ferr[i] = fail_sync;
        }
    }
    int64_t sync_ns = o2d_now_ns() - t0;

    pthread_mutex_lock(&l->mu);
    uint64_t failed = 0;
    for (size_t i = 0; !nomem && i < nfiles; i++) {
        if (ferr[i] == 0) {
            continue;
        }
        /* never retried: every append in that file not yet synced fails, and the file takes
         * no more (closed now if still the active one; the next append starts another) */
        uint64_t n = complete(l, files[i].file, 0, O2D_ERR_SYSTEM);
        failed += n;
        if (l->active_fd >= 0 && l->segs[l->nsegs - 1].first == files[i].file) {
            close(l->active_fd);
            l->active_fd = -1;
            l->active_dirty = 0;
        }
        log_append_failed(l, "sync", ferr[i], n, 0);
    }
    if (derr != 0 || nomem) {
        /* the new segment names may not survive a power loss: fail what this sync covered */
        failed += complete(l, 0, upto, O2D_ERR_SYSTEM);
        l->need_new_segment = 1;
        log_append_failed(l, nomem ? "sync (memory)" : "sync directory", nomem ? ENOMEM : derr,
                          failed, 0);
    }
    uint64_t done = complete(l, 0, upto, O2D_OK);
    /* the retired files of this sync are synced (or failed): closed */
    for (size_t i = 0; i < nret && i < l->nret; i++) {
        close(l->ret[i].fd);
    }
    if (nret > 0) {
        memmove(l->ret, l->ret + nret, (l->nret - nret) * sizeof(*l->ret));
        l->nret -= nret;
    }
    if (files != stack) {
        o2d_free(files);
    }
    if (ferr != errs) {
        o2d_free(ferr);
    }
    l->stats.sync_errors += failed;
    l->stats.batches++;
    l->stats.batched_appends += done + failed;
    l->stats.sync_ns += (uint64_t)sync_ns;
}

/* Waits until t is completed, syncing for everyone when no sync runs. */
static int wait_synced(struct dlog *l, struct ticket *t)
{
    pthread_mutex_lock(&l->mu);
    while (t->pending) {
        if (!l->syncing) {
            l->syncing = 1;
            run_sync(l);
            l->syncing = 0;
            pthread_cond_broadcast(&l->cv_done);
            continue;
        }
        pthread_cond_wait(&l->cv_done, &l->mu);
    }
    int rv = t->status;
    pthread_mutex_unlock(&l->mu);
    return rv;
}

static int wait_deferred(void *owner, void *data)
{
    return wait_synced(owner, data);
}

int dlog_append(struct dlog *l, const struct dlog_rec *recs, size_t n, uint64_t *first_seq)
{
    _Static_assert(sizeof(struct ticket) <= O2D_DEFER_SLOT_SIZE, "a ticket fits a defer slot");
    struct o2d_defer_slot *slot = o2d_defer_slot();
    struct ticket own;
    struct ticket *t = slot != NULL ? (struct ticket *)slot->data : &own;
    int rv = write_now(l, recs, n, first_seq, t);
    if (rv != O2D_OK || !t->pending) {
        return rv;
    }
    if (slot != NULL) {
        o2d_defer_commit(wait_deferred, l);
        return O2D_OK;
    }
    return wait_synced(l, t);
}

/* ---- read, settle ---- */

/* With mu held: the records of segs[rseg] from seq `from` on are gone (unreadable). */
static void abandon_rest(struct dlog *l, uint64_t from)
{
    struct seg *sg = &l->segs[l->rseg];
    for (uint64_t s = from; sg->nrec && s <= sg->last; s++) {
        settle_one(l, s, 1);
    }
    advance_base(l);
    l->roff = sg->size;
}

int dlog_read(struct dlog *l, uint64_t *seq, uint32_t *tag, uint8_t **data, size_t *len)
{
    int rv = O2D_ERR_NOT_FOUND;
    pthread_mutex_lock(&l->mu);
    while (l->rseg < l->nsegs) {
        struct seg *sg = &l->segs[l->rseg];
        if (l->rhole < sg->nholes && sg->holes[l->rhole].from <= l->roff) {
            l->roff = sg->holes[l->rhole++].to;
            continue;
        }
        if (l->roff >= sg->size) {
            if (l->rseg + 1 == l->nsegs) {
                break; /* the active segment: more may come */
            }
            if (l->rfd >= 0) {
                close(l->rfd);
                l->rfd = -1;
            }
            l->rseg++;
            l->roff = 0;
            l->rhole = 0;
            continue;
        }
        char name[32];
        seg_name(name, sizeof(name), sg->first);
        if (l->rfd < 0) {
            l->rfd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC);
            if (l->rfd < 0) {
                log_errno(O2D_LOG_ERROR, "disk log: cannot open a segment to read", name, errno);
                abandon_rest(l, l->rnext > sg->first ? l->rnext : sg->first);
                continue;
            }
        }
        uint8_t h[REC_HEAD];
        if (pread(l->rfd, h, REC_HEAD, (off_t)l->roff) != REC_HEAD) {
            log_errno(O2D_LOG_ERROR, "disk log: cannot read a segment", name, errno);
            abandon_rest(l, l->rnext > sg->first ? l->rnext : sg->first);
            continue;
        }
        uint32_t n = o2d_get_le32(h);
        uint64_t s = o2d_get_le64(h + 8);
        uint64_t next = l->roff + REC_OVERHEAD + n;
        if (next > sg->size || s < l->rnext) {
            l->stats.corrupt++;
            log_errno(O2D_LOG_ERROR, "disk log: a record changed on disk since it was written",
                      name, EIO);
            abandon_rest(l, l->rnext > sg->first ? l->rnext : sg->first);
            continue;
        }
        if (is_settled(l, s)) {
            l->roff = next;
            l->rnext = s + 1;
            continue;
        }
        uint8_t *buf = o2d_malloc(n > 0 ? n : 1);
        if (buf == NULL) {
            rv = O2D_ERR_NOMEM;
            break;
        }
        uint8_t t[REC_TAIL];
        struct iovec iov[2] = {{buf, n}, {t, REC_TAIL}};
        ssize_t got = preadv(l->rfd, iov, 2, (off_t)(l->roff + REC_HEAD));
        if (got != (ssize_t)n + REC_TAIL ||
            o2d_get_le32(t) != crc32c(crc32c(0, h + 4, 12), buf, n)) {
            o2d_free(buf);
            l->stats.corrupt++;
            log_errno(O2D_LOG_ERROR, "disk log: a record changed on disk since it was written",
                      name, got < 0 ? errno : EIO);
            abandon_rest(l, s);
            continue;
        }
        *seq = s;
        *tag = o2d_get_le32(h + 4);
        *data = buf;
        *len = n;
        l->roff = next;
        l->rnext = s + 1;
        rv = O2D_OK;
        break;
    }
    pthread_mutex_unlock(&l->mu);
    return rv;
}

void dlog_settle(struct dlog *l, uint64_t seq)
{
    pthread_mutex_lock(&l->mu);
    if (seq < l->published) { /* not a seq of an append still running */
        settle_one(l, seq, 1);
        advance_base(l);
    }
    pthread_mutex_unlock(&l->mu);
}

void dlog_get_stats(struct dlog *l, struct dlog_stats *st)
{
    pthread_mutex_lock(&l->mu);
    *st = l->stats;
    st->oldest_append_ms = l->stats.records > 0 && l->tlen > 0 ? l->times[l->thead].ms : 0;
    pthread_mutex_unlock(&l->mu);
}

void dlog_fail_next_write(struct dlog *l, int err)
{
    pthread_mutex_lock(&l->mu);
    l->fail_write = err;
    pthread_mutex_unlock(&l->mu);
}

void dlog_fail_next_sync(struct dlog *l, int err)
{
    pthread_mutex_lock(&l->mu);
    l->fail_sync = err;
    pthread_mutex_unlock(&l->mu);
}
