/*
 * disk_log.h: an append-only log of records in a directory, for the delivery layer's disk
 * queue (queue_disk.c): what was acknowledged to an application survives kill -9, OOM and
 * restarts (and, with fsync: batch, power loss), and is delivered at least once.
 *
 * On disk: segment files `seg-<first seq, 16 hex>.log`, each a sequence of records
 *   [u32 length][u32 tag][u64 seq][payload: length bytes][u32 crc32c of tag, seq, payload]
 * (little endian), and `watermark`, a small file replaced atomically (write a temporary file,
 * fsync, rename, fsync the directory) holding the first sequence number not yet settled, with
 * a checksum. A segment is removed only once a written watermark is past its last record.
 *
 * An append writes its records at once (room and write errors are known when it returns, and
 * the records are readable from then on); with fsync: batch, it then waits for a sync. Syncs
 * are group commits: the first appender waiting becomes the syncer, fdatasyncs every file
 * written since the last sync, and completes every append that sync covered; appenders that
 * arrive meanwhile wait for the next one. A caller may do other work between the write and
 * the wait (a waitset, o2d_defer.h): the wait is then shared by everything the thread wrote.
 * Reading is in sequence order, from disk, one record at a time (the backlog is never read
 * into memory as a whole). Settling may happen in any order; the watermark advances over the
 * settled prefix.
 *
 * Recovery (dlog_open): a torn tail (a record cut short by a crash) is truncated; a record
 * with a bad checksum or an impossible length is skipped and counted, the scan going on at the
 * next record boundary it can prove (or the segment's end); a file that cannot be read at all
 * is renamed `<name>.bad` with a log line. Never a crash, never a refusal to start for what is
 * in the directory.
 *
 * Thread safety: every function may be called from any thread; the log locks what it shares.
 */
#ifndef O2D_DISK_LOG_H
#define O2D_DISK_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct dlog;

enum dlog_fsync {
    DLOG_FSYNC_BATCH = 0, /* fdatasync before an append returns, shared by concurrent appends */
    DLOG_FSYNC_NEVER = 1, /* write(2) only: survives kill -9 and OOM, not power loss */
};

enum dlog_when_full {
    DLOG_FULL_REFUSE = 0,      /* an append that would pass max_bytes fails with BUSY */
    DLOG_FULL_DROP_OLDEST = 1, /* the oldest segment goes: its records not yet read are
                                  counted dropped; those already read stay the reader's */
};

struct dlog_config {
    const char *dir;        /* created (0700) if missing; one log per directory */
    uint64_t max_bytes;     /* segment bytes on disk at most */
    uint64_t segment_bytes; /* a new segment starts once one passes this; 0: 8 MiB */
    enum dlog_fsync fsync;
    int64_t group_commit_us; /* batch: how long a sync waits for more appenders; 0: none */
    enum dlog_when_full when_full;
};
/* With drop_oldest, the segment being appended to is never dropped: when it is the only one
 * and the log is full, that append gets BUSY and the next append starts a new segment, so
 * that the full one can go. */

struct dlog_stats {
    uint64_t bytes;           /* segment bytes on disk */
    uint64_t records;         /* records appended or recovered and not yet settled */
    uint64_t units;           /* their tags summed */
    int64_t oldest_append_ms; /* realtime of the oldest unsettled record's append, to the
                                 second (for a recovered one: its segment's mtime); 0: none */
    uint64_t recovered;       /* records found unsettled at open (replayed) */
    uint64_t corrupt;         /* records skipped at open: bad checksum or length (or found
                                 changed on disk when read: the rest of that segment) */
    uint64_t torn_bytes;      /* bytes truncated from torn tails at open */
    uint64_t files_set_aside; /* files renamed .bad at open: unreadable, not a segment name,
                                 or a segment without a single whole record */
    uint64_t dropped_records; /* records removed unsettled by drop_oldest */
    uint64_t dropped_units;   /* their tags summed */
    uint64_t write_errors;    /* append calls refused because write(2) failed */
    uint64_t sync_errors;     /* append calls refused because fdatasync failed */
    uint64_t batches;         /* group commits: one write (and, batch, one sync) each */
    uint64_t batched_appends; /* append calls they carried */
    uint64_t sync_ns;         /* time spent in fdatasync, summed (fsync: batch) */
};

/* One record to append: `tag` is the caller's (the delivery layer: the units it holds). Its
 * bytes are prefix[0..prefix_len) then data[0..len) (a caller's own header needs no copy of
 * the data behind it); read back as one. */
struct dlog_rec {
    const void *data;
    size_t len;
    uint32_t tag;
    const void *prefix;
    size_t prefix_len;
};

/* Opens (and recovers) the log in cfg->dir. O2D_OK, or an error with a message in err
 * (the directory cannot be made or locked: another process has it, flock; then
 * O2D_ERR_BUSY). Sequence numbers start at 1 and go on across restarts. */
int dlog_open(struct dlog **out, const struct dlog_config *cfg, char *err, size_t errlen);
/* Writes the watermark, closes the files, frees. NULL is a no-op. */
void dlog_close(struct dlog *l);

/*
 * Appends recs[0..n) and returns when they are durable in the configured mode; their
 * sequence numbers are consecutive from *first_seq. O2D_OK; O2D_ERR_BUSY when they would pass
 * max_bytes with when_full refuse (nothing written); O2D_ERR_TOO_LARGE when one record alone
 * is over segment_bytes or max_bytes; O2D_ERR_SYSTEM when a write or a sync failed (ENOSPC,
 * EIO). A failed write leaves nothing of the call readable (the segment is cut back to where
 * it was, or, if that fails too, the log refuses every later append with O2D_ERR_SYSTEM). A
 * failed sync is never taken for a good one and never retried: every append written to that
 * file and not yet synced fails, the file takes no more appends (the next starts a new one),
 * and its records stay readable (a refused request may then be delivered as well as retried:
 * at least once). O2D_ERR_INVALID when n is 0; O2D_ERR_NOMEM.
 *
 * While the calling thread has a waitset (o2d_defer.h) with room, dlog_append returns once the
 * records are written (every error but a failed sync is known then) and leaves the wait for
 * their sync to the waitset's owner: that wait returns O2D_OK or O2D_ERR_SYSTEM. A log must
 * not be closed while one of its waits is pending in some waitset.
 */
int dlog_append(struct dlog *l, const struct dlog_rec *recs, size_t n, uint64_t *first_seq);

/*
 * The next record not yet read, oldest first: *data is a copy (o2d_malloc; the caller
 * frees), *len its length, *tag and *seq its own. O2D_OK, or O2D_ERR_NOT_FOUND when every
 * appended record has been read. After open, reading starts at the watermark (replay).
 */
int dlog_read(struct dlog *l, uint64_t *seq, uint32_t *tag, uint8_t **data, size_t *len);

/* The record `seq` is settled (delivered, or dropped for good). Any order; a seq already
 * gone (dropped_oldest, settled twice) or not yet returned by an append is ignored. The
 * watermark is written at most every 100 ms or so (by the log's own thread), and at close;
 * fully settled segments are removed after it. */
void dlog_settle(struct dlog *l, uint64_t seq);

void dlog_get_stats(struct dlog *l, struct dlog_stats *st);

/* Test hooks: the next write(2) or fdatasync of this log fails with `err` (0: clear). The
 * failed write first writes part of a record header, so that the cut back is exercised; the
 * failed sync runs the real fdatasync and reports err instead of its result. */
void dlog_fail_next_write(struct dlog *l, int err);
void dlog_fail_next_sync(struct dlog *l, int err);

#endif
