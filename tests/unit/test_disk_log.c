/*
 * test_disk_log.c: the delivery layer's append-only record log (exporters/delivery/
 * disk_log.h), on real files in a fresh directory under /tmp.
 *
 * The on-disk format against a segment built here byte by byte (with a bitwise CRC-32C of
 * this file's own); append, read and settle across segment boundaries; a reopen replays
 * exactly what was not settled, in order, even when settled out of order; settled segments
 * go once the watermark is written; max_bytes refuses or drops the oldest segment; appenders
 * on several threads share syncs and every record comes back once, in order; failed writes
 * and syncs lose nothing acknowledged and read nothing refused; a second open of the same
 * directory fails; and recovery from a flipped byte, a torn tail, stray files, an empty
 * segment and a damaged watermark.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "disk_log.h"
#include "o2d_defer.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "o2d_time.h"

/* ---- a scratch directory ---- */

static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/o2d-dlog-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(g_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))) {
                char p[PATH_MAX];
                snprintf(p, sizeof(p), "%s/%s", g_dir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(g_dir);
    return 0;
}

static void path_of(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", g_dir, name);
}

/* Files in the directory whose name starts with prefix and ends with suffix. */
static int count_files(const char *prefix, const char *suffix)
{
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && len >= sl &&
            strcmp(e->d_name + len - sl, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The name of the n-th segment (by name order), into out; 0 when there is none. */
static int nth_segment(int n, char *out)
{
    struct dirent **list;
    int k = scandir(g_dir, &list, NULL, alphasort);
    assert_true(k >= 0);
    int found = 0, seen = 0;
    for (int i = 0; i < k; i++) {
        size_t len = strlen(list[i]->d_name);
        if (!found && strncmp(list[i]->d_name, "seg-", 4) == 0 && len == 24 &&
            strcmp(list[i]->d_name + 20, ".log") == 0 && seen++ == n) {
            path_of(out, list[i]->d_name);
            found = 1;
        }
        free(list[i]);
    }
    free(list);
    return found;
}

static off_t file_size(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_size;
}

/* ---- the log ---- */

static struct dlog_config config(uint64_t segment_bytes, uint64_t max_bytes)
{
    return (struct dlog_config){.dir = g_dir,
                                .max_bytes = max_bytes,
                                .segment_bytes = segment_bytes,
                                .fsync = DLOG_FSYNC_BATCH};
}

static struct dlog *open_log(const struct dlog_config *cfg)
{
    struct dlog *l = NULL;
    char err[256] = "";
    int rv = dlog_open(&l, cfg, err, sizeof(err));
    if (rv != O2D_OK) {
        fail_msg("dlog_open: %d %s", rv, err);
    }
    return l;
}

/* Record i's payload: "rec <i>" then filler to len bytes. Not inlined: GCC 12 at -O3 warns
 * of an overflow in the vectorised filler loop that cannot happen (-Wstringop-overflow). */
__attribute__((noinline)) static size_t payload(unsigned i, size_t len, uint8_t *out)
{
    int n = snprintf((char *)out, len, "rec %u ", i);
    for (size_t k = (size_t)n; k < len; k++) {
        out[k] = (uint8_t)('a' + (i + k) % 26);
    }
    return len;
}

static uint64_t append_one(struct dlog *l, unsigned i, size_t len)
{
    uint8_t buf[4096];
    assert_true(len <= sizeof(buf));
    payload(i, len, buf);
    struct dlog_rec r = {.data = buf, .len = len, .tag = i};
    uint64_t seq = 0;
    assert_int_equal(dlog_append(l, &r, 1, &seq), O2D_OK);
    return seq;
}

/* Reads the next record and checks it is record i of len bytes; returns its seq. */
static uint64_t read_expect(struct dlog *l, unsigned i, size_t len)
{
    uint64_t seq;
    uint32_t tag;
    uint8_t *data;
    size_t n;
    int rv = dlog_read(l, &seq, &tag, &data, &n);
    if (rv != O2D_OK) {
        fail_msg("expected record %u, got status %d", i, rv);
    }
    uint8_t want[4096];
    payload(i, len, want);
    if (tag != i || n != len || memcmp(data, want, len) != 0) {
        fail_msg("expected record %u (%zu bytes), got tag %u (%zu bytes)", i, len, tag, n);
    }
    o2d_free(data);
    return seq;
}

static void read_none(struct dlog *l)
{
    uint64_t seq;
    uint32_t tag;
    uint8_t *data = NULL;
    size_t n;
    int rv = dlog_read(l, &seq, &tag, &data, &n);
    if (rv == O2D_OK) {
        o2d_free(data);
        fail_msg("expected nothing, read seq %llu tag %u", (unsigned long long)seq, tag);
    }
    assert_int_equal(rv, O2D_ERR_NOT_FOUND);
}

static struct dlog_stats stats(struct dlog *l)
{
    struct dlog_stats st;
    dlog_get_stats(l, &st);
    return st;
}

/* ---- an independent CRC-32C, bit by bit ---- */

static uint32_t crc32c_bits(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n-- > 0) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
        }
    }
    return ~crc;
}

static size_t put_record(uint8_t *out, uint64_t seq, uint32_t tag, const char *text)
{
    uint32_t len = (uint32_t)strlen(text);
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(len >> (8 * i));
        out[4 + i] = (uint8_t)(tag >> (8 * i));
    }
    for (int i = 0; i < 8; i++) {
        out[8 + i] = (uint8_t)(seq >> (8 * i));
    }
    memcpy(out + 16, text, len);
    uint32_t crc = crc32c_bits(0, out + 4, 12 + len);
    for (int i = 0; i < 4; i++) {
        out[16 + len + i] = (uint8_t)(crc >> (8 * i));
    }
    return 20 + len;
}

static void write_file(const char *name, const void *data, size_t n)
{
    char p[PATH_MAX];
    path_of(p, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void read_text(struct dlog *l, uint64_t want_seq, uint32_t want_tag, const char *text)
{
    uint64_t seq;
    uint32_t tag;
    uint8_t *data;
    size_t n;
    assert_int_equal(dlog_read(l, &seq, &tag, &data, &n), O2D_OK);
    assert_int_equal(seq, want_seq);
    assert_int_equal(tag, want_tag);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(data, text, n);
    o2d_free(data);
}

/* ---- tests ---- */

static void reads_a_segment_written_by_hand(void **state)
{
    (void)state;
    const uint8_t check[] = "123456789";
    assert_int_equal(crc32c_bits(0, check, 9), 0xE3069283u); /* the CRC-32C check value */

    uint8_t seg[256];
    size_t n = put_record(seg, 7, 3, "hello");
    n += put_record(seg + n, 8, 1, "");
    n += put_record(seg + n, 9, 42, "world!");
    write_file("seg-0000000000000007.log", seg, n);
    struct dlog_config cfg = config(0, 1 << 20);
    struct dlog *l = open_log(&cfg);
    struct dlog_stats st = stats(l);
    assert_int_equal(st.recovered, 3);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.units, 46);
    assert_int_equal(st.bytes, n);
    assert_int_equal(st.corrupt, 0);
    assert_true(st.oldest_append_ms > 0);
    read_text(l, 7, 3, "hello");
    read_text(l, 8, 1, "");
    read_text(l, 9, 42, "world!");
    read_none(l);
    /* appends go on after the last seq, in a new segment named by it */
    assert_int_equal(append_one(l, 5, 10), 10);
    assert_int_equal(count_files("seg-000000000000000a", ".log"), 1);
    dlog_close(l);
}

static void round_trip_across_segments(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1000, 1 << 20);
    struct dlog *l = open_log(&cfg);
    read_none(l);
    uint64_t first = 0;
    for (unsigned i = 0; i < 30; i++) {
        uint64_t seq = append_one(l, i, 100 + i);
        if (i == 0) {
            first = seq;
        }
        assert_int_equal(seq, first + i);
    }
    /* 120 to 149 bytes a record in segments of 1000 bytes: several of them */
    assert_true(count_files("seg-", ".log") >= 4);
    struct dlog_stats st = stats(l);
    assert_int_equal(st.records, 30);
    assert_int_equal(st.units, 30 * 29 / 2);
    for (unsigned i = 0; i < 30; i++) {
        assert_int_equal(read_expect(l, i, 100 + i), first + i);
        if (i == 10) {
            /* interleaved: what is appended while reading is read in its turn */
            append_one(l, 30, 50);
        }
    }
    read_expect(l, 30, 50);
    read_none(l);
    for (unsigned i = 0; i <= 30; i++) {
        dlog_settle(l, first + i);
    }
    dlog_settle(l, first + 3); /* twice: ignored */
    dlog_settle(l, 1u << 30);  /* never appended: ignored */
    st = stats(l);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.units, 0);
    assert_int_equal(st.oldest_append_ms, 0);
    dlog_close(l);
}

static void reopen_replays_what_was_not_settled(void **state)
{
    (void)state;
    struct dlog_config cfg = config(700, 1 << 20);
    struct dlog *l = open_log(&cfg);
    uint64_t seq[20];
    for (unsigned i = 0; i < 20; i++) {
        seq[i] = append_one(l, i, 90);
    }
    for (unsigned i = 0; i < 20; i++) {
        read_expect(l, i, 90);
    }
    /* settled out of order: 0-4, then 9, 7, 12 */
    const unsigned settled[] = {3, 0, 4, 1, 2, 9, 7, 12};
    for (size_t k = 0; k < sizeof(settled) / sizeof(settled[0]); k++) {
        dlog_settle(l, seq[settled[k]]);
    }
    struct dlog_stats st = stats(l);
    assert_int_equal(st.records, 12);
    dlog_close(l);

    /* the watermark is 5; 7, 9 and 12, settled past it, are in the settled file: exactly the
     * 12 records not settled come back */
    l = open_log(&cfg);
    st = stats(l);
    assert_int_equal(st.recovered, 12);
    assert_int_equal(st.records, 12);
    assert_int_equal(st.corrupt, 0);
    const unsigned again[] = {5, 6, 8, 10, 11, 13, 14, 15, 16, 17, 18, 19};
    for (size_t k = 0; k < sizeof(again) / sizeof(again[0]); k++) {
        assert_int_equal(read_expect(l, again[k], 90), seq[again[k]]);
    }
    read_none(l);
    for (size_t k = 0; k < sizeof(again) / sizeof(again[0]); k++) {
        if (again[k] != 8 && again[k] != 15) {
            dlog_settle(l, seq[again[k]]);
        }
    }
    uint64_t s20 = append_one(l, 20, 90);
    assert_int_equal(s20, seq[19] + 1);
    dlog_close(l);

    l = open_log(&cfg);
    assert_int_equal(read_expect(l, 8, 90), seq[8]);
    assert_int_equal(read_expect(l, 15, 90), seq[15]);
    read_expect(l, 20, 90);
    read_none(l);
    dlog_close(l);

    /* a damaged settled file only replays more */
    char p[128];
    path_of(p, "settled");
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 9, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    l = open_log(&cfg);
    assert_int_equal(read_expect(l, 8, 90), seq[8]);
    for (unsigned i = 9; i <= 20; i++) {
        read_expect(l, i, 90);
    }
    read_none(l);
    dlog_close(l);
}

static void settled_segments_are_removed(void **state)
{
    (void)state;
    struct dlog_config cfg = config(500, 1 << 20);
    struct dlog *l = open_log(&cfg);
    uint64_t seq[40];
    for (unsigned i = 0; i < 40; i++) {
        seq[i] = append_one(l, i, 80);
    }
    int segs = count_files("seg-", ".log");
    assert_true(segs >= 6);
    struct dlog_stats st0 = stats(l);
    for (unsigned i = 0; i < 40; i++) {
        read_expect(l, i, 80);
    }
    for (unsigned i = 0; i < 20; i++) {
        dlog_settle(l, seq[i]);
    }
    /* the watermark thread writes it within about 100 ms, then removes what it covers */
    int64_t deadline = o2d_now_ms() + 5000;
    while (count_files("seg-", ".log") > segs - 3 && o2d_now_ms() < deadline) {
        usleep(5000);
    }
    int left = count_files("seg-", ".log");
    assert_true(left <= segs - 3);
    assert_int_equal(count_files("watermark", ""), 1);
    struct dlog_stats st = stats(l);
    assert_true(st.bytes < st0.bytes);
    assert_int_equal(st.records, 20);
    for (unsigned i = 20; i < 40; i++) {
        dlog_settle(l, seq[i]);
    }
    /* while open too: the segment being appended to goes once all of it is settled and the
     * watermark written, so that a filesystem that filled up gets its room back */
    deadline = o2d_now_ms() + 5000;
    while (count_files("seg-", ".log") > 0 && o2d_now_ms() < deadline) {
        usleep(5000);
    }
    assert_int_equal(count_files("seg-", ".log"), 0);
    assert_int_equal(stats(l).bytes, 0);
    uint64_t again = append_one(l, 40, 80); /* a new segment */
    assert_int_equal(again, seq[39] + 1);
    assert_int_equal(count_files("seg-", ".log"), 1);
    read_expect(l, 40, 80);
    dlog_settle(l, again);
    dlog_close(l);
    /* at close, everything settled goes, the segment being appended to as well */
    assert_int_equal(count_files("seg-", ".log"), 0);

    l = open_log(&cfg);
    read_none(l);
    assert_int_equal(stats(l).recovered, 0);
    assert_int_equal(append_one(l, 1, 10), seq[39] + 2);
    dlog_close(l);
}

static void full_log_refuses(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1000, 3000);
    struct dlog *l = open_log(&cfg);
    uint8_t big[4000];
    memset(big, 'x', sizeof(big));
    struct dlog_rec r = {.data = big, .len = 981, .tag = 1};
    uint64_t seq;
    assert_int_equal(dlog_append(l, &r, 1, &seq), O2D_ERR_TOO_LARGE); /* 1001 > segment */
    unsigned n = 0;
    int rv;
    while ((rv = dlog_append(l, &(struct dlog_rec){.data = big, .len = 280, .tag = 2}, 1, &seq)) ==
           O2D_OK) {
        n++;
        assert_true(n < 100);
    }
    assert_int_equal(rv, O2D_ERR_BUSY);
    assert_int_equal(n, 10); /* 300 bytes a record in 3000 */
    struct dlog_stats st = stats(l);
    assert_true(st.bytes <= 3000);
    assert_int_equal(st.records, 10);
    assert_int_equal(st.dropped_records, 0);
    /* settled and removed, there is room again */
    uint64_t s;
    uint32_t tag;
    uint8_t *data;
    size_t len;
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(dlog_read(l, &s, &tag, &data, &len), O2D_OK);
        o2d_free(data);
        dlog_settle(l, s);
    }
    int64_t deadline = o2d_now_ms() + 5000;
    while (dlog_append(l, &(struct dlog_rec){.data = big, .len = 280, .tag = 2}, 1, &seq) !=
           O2D_OK) {
        assert_true(o2d_now_ms() < deadline);
        usleep(5000);
    }
    dlog_close(l);
}

static void full_log_drops_oldest(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1000, 3000);
    cfg.when_full = DLOG_FULL_DROP_OLDEST;
    struct dlog *l = open_log(&cfg);
    uint64_t seq[30];
    for (unsigned i = 0; i < 30; i++) {
        seq[i] = append_one(l, i, 280);
        assert_true(stats(l).bytes <= 3000);
        if (i == 1) {
            read_expect(l, 0, 280); /* read, not settled: the reader's when dropped */
        }
    }
    struct dlog_stats st = stats(l);
    /* 300 bytes a record, 4 to a segment (a new one once 1000 are passed), 3000 in all */
    assert_true(st.records >= 6 && st.records <= 10);
    assert_int_equal(st.dropped_records + 1 + st.records, 30);
    assert_int_equal(st.dropped_records, 29 - st.records);
    uint64_t want_units = 0;
    for (unsigned i = 1; i < 30 - st.records; i++) {
        want_units += i;
    }
    assert_int_equal(st.dropped_units, want_units);
    /* the reader goes on at the oldest record kept */
    unsigned first = 30 - (unsigned)st.records;
    for (unsigned i = first; i < 30; i++) {
        assert_int_equal(read_expect(l, i, 280), seq[i]);
    }
    read_none(l);
    dlog_settle(l, seq[0]); /* dropped meanwhile: ignored */
    assert_int_equal(stats(l).records, st.records);
    dlog_close(l);
}

static atomic_int g_finished;

struct appender {
    struct dlog *l;
    unsigned id;
    unsigned n;
    uint64_t seqs[200];
};

static void *append_main(void *arg)
{
    struct appender *a = arg;
    for (unsigned i = 0; i < a->n; i++) {
        uint8_t buf[64];
        size_t len = payload(a->id * 1000 + i, 20 + i % 40, buf);
        struct dlog_rec r[2] = {{.data = buf, .len = len, .tag = a->id * 1000 + i},
                                {.data = buf, .len = 1, .tag = 0}};
        /* every third call appends two records: their seqs are consecutive */
        size_t nr = i % 3 == 0 ? 2 : 1;
        if (dlog_append(a->l, r, nr, &a->seqs[i]) != O2D_OK) {
            a->seqs[i] = 0;
        }
    }
    atomic_fetch_add(&g_finished, 1);
    return NULL;
}

static void group_commit_from_threads(void **state)
{
    (void)state;
    struct dlog_config cfg = config(16 << 10, 64 << 20);
    cfg.group_commit_us = 200;
    struct dlog *l = open_log(&cfg);
    enum { THREADS = 8, EACH = 150 };
    static struct appender a[THREADS];
    pthread_t th[THREADS];
    atomic_store(&g_finished, 0);
    for (unsigned t = 0; t < THREADS; t++) {
        a[t] = (struct appender){.l = l, .id = t + 1, .n = EACH};
        assert_int_equal(pthread_create(&th[t], NULL, append_main, &a[t]), 0);
    }
    /* a reader during the appends sees only returned appends, in seq order */
    uint64_t last = 0, nread = 0;
    for (;;) {
        int done = atomic_load(&g_finished) == THREADS;
        uint64_t seq;
        uint32_t tag;
        uint8_t *data;
        size_t len;
        while (dlog_read(l, &seq, &tag, &data, &len) == O2D_OK) {
            assert_true(last == 0 || seq == last + 1);
            last = seq;
            nread++;
            o2d_free(data);
        }
        if (done) {
            break;
        }
        usleep(1000);
    }
    for (unsigned t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
    }
    uint64_t total = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        for (unsigned i = 0; i < EACH; i++) {
            assert_int_not_equal(a[t].seqs[i], 0);
            total += i % 3 == 0 ? 2 : 1;
        }
    }
    assert_int_equal(nread, total);
    /* every seq handed out once: per thread increasing, together exactly the read range */
    uint8_t *seen = calloc(total, 1);
    uint64_t lo = last + 1 - total;
    for (unsigned t = 0; t < THREADS; t++) {
        for (unsigned i = 0; i < EACH; i++) {
            for (unsigned k = 0; k < (i % 3 == 0 ? 2u : 1u); k++) {
                uint64_t s = a[t].seqs[i] + k;
                assert_true(s >= lo && s <= last);
                assert_int_equal(seen[s - lo], 0);
                seen[s - lo] = 1;
            }
            if (i > 0) {
                assert_true(a[t].seqs[i] > a[t].seqs[i - 1]);
            }
        }
    }
    free(seen);
    assert_int_equal(stats(l).records, total);
    dlog_close(l);

    /* and all of it is on disk */
    l = open_log(&cfg);
    assert_int_equal(stats(l).recovered, total);
    assert_int_equal(stats(l).corrupt, 0);
    dlog_close(l);
}

static void failed_write_loses_nothing_acknowledged(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    uint64_t s0 = append_one(l, 0, 100);
    char seg[PATH_MAX];
    assert_true(nth_segment(0, seg));
    off_t size0 = file_size(seg);

    dlog_fail_next_write(l, ENOSPC);
    uint8_t buf[100];
    payload(1, 100, buf);
    struct dlog_rec r[2] = {{.data = buf, .len = 100, .tag = 1},
                            {.data = buf, .len = 50, .tag = 1}};
    uint64_t seq;
    assert_int_equal(dlog_append(l, r, 2, &seq), O2D_ERR_SYSTEM);
    assert_int_equal(file_size(seg), size0); /* cut back */
    struct dlog_stats st = stats(l);
    assert_int_equal(st.write_errors, 1);
    assert_int_equal(st.sync_errors, 0);
    assert_int_equal(st.records, 1);
    assert_int_equal(st.bytes, (uint64_t)size0);

    /* later appends work, in the same segment */
    uint64_t s2 = append_one(l, 2, 100);
    assert_true(s2 > s0);
    assert_int_equal(count_files("seg-", ".log"), 1);
    assert_int_equal(read_expect(l, 0, 100), s0);
    assert_int_equal(read_expect(l, 2, 100), s2);
    read_none(l);
    dlog_close(l);

    l = open_log(&cfg);
    read_expect(l, 0, 100);
    read_expect(l, 2, 100);
    read_none(l);
    assert_int_equal(stats(l).corrupt, 0);
    assert_int_equal(stats(l).torn_bytes, 0);
    dlog_close(l);
}

/* A failed sync fails the append (never taken for a good one, never retried) and the file
 * takes no more appends; the record written stays readable: the refused request may be
 * delivered as well as retried (at least once), never lost. */
static void failed_sync_starts_a_new_segment(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    uint64_t s0 = append_one(l, 0, 100);
    char seg[PATH_MAX];
    assert_true(nth_segment(0, seg));
    off_t size0 = file_size(seg);

    dlog_fail_next_sync(l, EIO);
    uint8_t buf[100];
    payload(1, 100, buf);
    uint64_t s1;
    assert_int_equal(dlog_append(l, &(struct dlog_rec){.data = buf, .len = 100, .tag = 1}, 1, &s1),
                     O2D_ERR_SYSTEM);
    assert_int_equal(file_size(seg), 2 * size0);
    struct dlog_stats st = stats(l);
    assert_int_equal(st.sync_errors, 1);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(st.records, 2);

    uint64_t s2 = append_one(l, 2, 100);
    assert_int_equal(count_files("seg-", ".log"), 2); /* the failed file takes no more */
    assert_int_equal(file_size(seg), 2 * size0);
    assert_int_equal(read_expect(l, 0, 100), s0);
    assert_int_equal(read_expect(l, 1, 100), s1);
    assert_int_equal(read_expect(l, 2, 100), s2);
    read_none(l);
    dlog_close(l);

    l = open_log(&cfg);
    assert_int_equal(stats(l).recovered, 3);
    read_expect(l, 0, 100);
    read_expect(l, 1, 100);
    read_expect(l, 2, 100);
    read_none(l);
    dlog_close(l);
}

/* The descriptors this process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/* Deferred appends are written at once (readable before their sync) and share one sync,
 * across segment changes: the files they replaced stay open until it, and no longer. */
static void deferred_appends_share_one_sync(void **state)
{
    (void)state;
    struct dlog_config cfg = config(120, 1 << 20); /* a record of 100 fills a segment */
    struct dlog *l = open_log(&cfg);
    uint64_t s0 = append_one(l, 0, 100);
    int fds = open_fds();
    struct dlog_stats before = stats(l);

    struct o2d_waitset ws;
    assert_int_equal(o2d_defer_begin(&ws), 1);
    struct o2d_waitset inner; /* a nested caller: the outer one waits */
    assert_int_equal(o2d_defer_begin(&inner), 0);
    uint64_t seq[3];
    uint8_t buf[100];
    for (unsigned i = 0; i < 3; i++) {
        payload(i + 1, 100, buf);
        assert_int_equal(
            dlog_append(l, &(struct dlog_rec){.data = buf, .len = 100, .tag = i + 1}, 1, &seq[i]),
            O2D_OK);
    }
    assert_int_equal(stats(l).batches, before.batches); /* written, not synced yet */
    assert_int_equal(open_fds(), fds + 3);              /* three files replaced, kept open */
    assert_int_equal(read_expect(l, 0, 100), s0);
    assert_int_equal(read_expect(l, 1, 100), seq[0]); /* readable before the sync */
    o2d_defer_stop();
    assert_int_equal(inner.n, 0);
    assert_int_equal(ws.n, 3);
    assert_int_equal(o2d_waitset_wait(&ws), O2D_OK);
    struct dlog_stats after = stats(l);
    assert_int_equal(after.batches, before.batches + 1);
    assert_int_equal(after.batched_appends, before.batched_appends + 3);
    assert_int_equal(open_fds(), fds + 1); /* replaced files closed once synced; +1: the reader's */
    assert_int_equal(count_files("seg-", ".log"), 4);
    assert_int_equal(read_expect(l, 2, 100), seq[1]);
    assert_int_equal(read_expect(l, 3, 100), seq[2]);
    read_none(l);

    /* outside a deferral an append waits for its own sync again */
    append_one(l, 4, 100);
    assert_int_equal(stats(l).batches, after.batches + 1);
    dlog_close(l);
}

/* A deferred append whose sync fails makes its wait fail; the log goes on in a new file. */
static void deferred_sync_failure_is_reported(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    struct o2d_waitset ws;
    o2d_defer_begin(&ws);
    uint64_t s0 = append_one(l, 0, 100);
    o2d_defer_stop();
    dlog_fail_next_sync(l, EIO);
    assert_int_equal(o2d_waitset_wait(&ws), O2D_ERR_SYSTEM);
    assert_int_equal(stats(l).sync_errors, 1);

    o2d_defer_begin(&ws);
    uint64_t s1 = append_one(l, 1, 100);
    o2d_defer_stop();
    assert_int_equal(o2d_waitset_wait(&ws), O2D_OK);
    assert_int_equal(count_files("seg-", ".log"), 2); /* the failed file took no more */
    assert_int_equal(read_expect(l, 0, 100), s0);
    assert_int_equal(read_expect(l, 1, 100), s1);
    read_none(l);
    dlog_close(l);
}

/* With fsync: never an append never waits: deferring changes nothing. */
static void deferred_never_mode_needs_no_sync(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    cfg.fsync = DLOG_FSYNC_NEVER;
    struct dlog *l = open_log(&cfg);
    struct o2d_waitset ws;
    o2d_defer_begin(&ws);
    append_one(l, 0, 100);
    append_one(l, 1, 100);
    o2d_defer_stop();
    assert_int_equal(ws.n, 0); /* nothing to wait for */
    assert_int_equal(stats(l).sync_ns, 0);
    read_expect(l, 0, 100);
    read_expect(l, 1, 100);
    dlog_close(l);
}

/* A record's prefix and data are one record on disk, checksum and all (a reopen proves it). */
static void prefix_and_data_are_one_record(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    uint8_t want[100];
    payload(7, 100, want);
    struct dlog_rec r = {.prefix = want, .prefix_len = 30, .data = want + 30, .len = 70, .tag = 7};
    uint64_t seq;
    assert_int_equal(dlog_append(l, &r, 1, &seq), O2D_OK);
    assert_int_equal(read_expect(l, 7, 100), seq);
    dlog_close(l);
    l = open_log(&cfg);
    assert_int_equal(stats(l).corrupt, 0);
    assert_int_equal(read_expect(l, 7, 100), seq);
    dlog_close(l);
}

static void second_open_fails(void **state)
{
    (void)state;
    struct dlog_config cfg = config(0, 1 << 20);
    struct dlog *l = open_log(&cfg);
    struct dlog *l2 = NULL;
    char err[256] = "";
    assert_int_not_equal(dlog_open(&l2, &cfg, err, sizeof(err)), O2D_OK);
    assert_null(l2);
    assert_non_null(strstr(err, "in use"));
    dlog_close(l);
    /* once closed, it opens again */
    l = open_log(&cfg);
    dlog_close(l);
}

/* Writes records 0..n-1 (60 bytes each) in one segment, closes; returns the first seq. */
static uint64_t fixture(unsigned n)
{
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    uint64_t first = append_one(l, 0, 60);
    for (unsigned i = 1; i < n; i++) {
        append_one(l, i, 60);
    }
    dlog_close(l);
    return first;
}

static void recovers_a_flipped_byte(void **state)
{
    (void)state;
    uint64_t first = fixture(5);
    char seg[PATH_MAX];
    assert_true(nth_segment(0, seg));
    int fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    off_t at = 2 * 80 + 30; /* in record 2's payload */
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);

    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    struct dlog_stats st = stats(l);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.recovered, 4);
    assert_int_equal(st.torn_bytes, 0);
    assert_int_equal(read_expect(l, 0, 60), first);
    read_expect(l, 1, 60);
    assert_int_equal(read_expect(l, 3, 60), first + 3);
    read_expect(l, 4, 60);
    read_none(l);
    assert_int_equal(append_one(l, 5, 60), first + 5);
    dlog_close(l);
}

static void recovers_a_flipped_length(void **state)
{
    (void)state;
    fixture(5);
    char seg[PATH_MAX];
    assert_true(nth_segment(0, seg));
    int fd = open(seg, O_RDWR);
    uint8_t c = 0x7f; /* record 1's length: past the end of the file */
    assert_int_equal(pwrite(fd, &c, 1, 80 + 3), 1);
    close(fd);
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    assert_int_equal(stats(l).corrupt, 1);
    assert_int_equal(stats(l).torn_bytes, 0); /* not taken for a torn tail */
    read_expect(l, 0, 60);
    read_expect(l, 2, 60);
    read_expect(l, 3, 60);
    read_expect(l, 4, 60);
    read_none(l);
    dlog_close(l);
}

static void recovers_a_torn_tail(void **state)
{
    (void)state;
    uint64_t first = fixture(4);
    char seg[PATH_MAX];
    assert_true(nth_segment(0, seg));
    assert_int_equal(truncate(seg, 3 * 80 + 37), 0); /* record 3 cut short */

    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    struct dlog_stats st = stats(l);
    assert_int_equal(st.torn_bytes, 37);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(st.recovered, 3);
    assert_int_equal(file_size(seg), 3 * 80);
    read_expect(l, 0, 60);
    read_expect(l, 1, 60);
    read_expect(l, 2, 60);
    read_none(l);
    /* the seq of the torn record is given again: it never was acknowledged */
    assert_int_equal(append_one(l, 9, 60), first + 3);
    dlog_close(l);
}

static void sets_aside_stray_files(void **state)
{
    (void)state;
    fixture(3);
    write_file("seg-zz.log", "junk", 4);
    write_file("seg-00000000000000AB.log", "junk", 4); /* upper case: not ours */
    write_file("notes.txt", "hello", 5);
    write_file("seg-0000000000000100.log", "", 0); /* empty */
    /* all garbage, but a good name: no record in it */
    write_file("seg-0000000000000200.log", "garbage garbage garbage garbage", 31);

    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    struct dlog_stats st = stats(l);
    assert_int_equal(st.files_set_aside, 4);
    assert_int_equal(st.recovered, 3);
    assert_int_equal(count_files("", ".bad"), 4);
    assert_int_equal(count_files("seg-0000000000000100", ""), 0); /* removed */
    read_expect(l, 0, 60);
    read_expect(l, 1, 60);
    read_expect(l, 2, 60);
    read_none(l);
    dlog_close(l);
    /* what was set aside stays aside */
    l = open_log(&cfg);
    assert_int_equal(stats(l).files_set_aside, 0);
    assert_int_equal(stats(l).recovered, 3);
    dlog_close(l);
}

static void a_damaged_watermark_replays_everything(void **state)
{
    (void)state;
    struct dlog_config cfg = config(1 << 20, 1 << 20);
    struct dlog *l = open_log(&cfg);
    uint64_t seq[6];
    for (unsigned i = 0; i < 6; i++) {
        seq[i] = append_one(l, i, 60);
    }
    for (unsigned i = 0; i < 6; i++) {
        read_expect(l, i, 60);
    }
    for (unsigned i = 0; i < 3; i++) {
        dlog_settle(l, seq[i]);
    }
    dlog_close(l);
    l = open_log(&cfg);
    assert_int_equal(stats(l).recovered, 3);
    dlog_close(l);

    char wm[PATH_MAX];
    path_of(wm, "watermark");
    int fd = open(wm, O_RDWR);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, 5), 1);
    c ^= 1;
    assert_int_equal(pwrite(fd, &c, 1, 5), 1);
    close(fd);
    l = open_log(&cfg);
    assert_int_equal(stats(l).recovered, 6);
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(read_expect(l, i, 60), seq[i]);
    }
    read_none(l);
    dlog_close(l);
}

int main(void)
{
    o2d_log_set_level(O2D_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reads_a_segment_written_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_replays_what_was_not_settled, setup, teardown),
        cmocka_unit_test_setup_teardown(settled_segments_are_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(full_log_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(full_log_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commit_from_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_write_loses_nothing_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_sync_starts_a_new_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_appends_share_one_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_sync_failure_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_never_mode_needs_no_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(prefix_and_data_are_one_record, setup, teardown),
        cmocka_unit_test_setup_teardown(second_open_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(recovers_a_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(recovers_a_flipped_length, setup, teardown),
        cmocka_unit_test_setup_teardown(recovers_a_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(sets_aside_stray_files, setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_watermark_replays_everything, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
