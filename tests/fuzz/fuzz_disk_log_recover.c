/*
 * fuzz_disk_log_recover.c: dlog_open's recovery (exporters/delivery/disk_log.c) on arbitrary
 * bytes as a segment file. An input starting with 'W' gives its next 16 bytes as the
 * watermark file, then one starting with 'S' a 16-bit length and that many bytes as the
 * settled file, and the rest as the segment. Oracles: the open succeeds (nothing in the
 * directory is a reason to refuse); records come back in increasing seq order, as many as
 * were recovered, none longer than the input; recovered bytes are no more than the input;
 * once everything read is settled, close leaves no segment behind and a reopen replays
 * nothing. Runs in /dev/shm when there is one (syncs cost nothing there).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk_log.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"

static void put(const char *dir, const char *name, const uint8_t *data, size_t n)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        abort();
    }
    if (n > 0 && write(fd, data, n) != (ssize_t)n) {
        abort();
    }
    close(fd);
}

/* Removes the directory's files and the directory; returns how many were segments. */
static int clean(const char *dir, int remove)
{
    int segs = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        abort();
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        size_t n = strlen(e->d_name);
        segs +=
            strncmp(e->d_name, "seg-", 4) == 0 && n > 4 && strcmp(e->d_name + n - 4, ".log") == 0;
        if (remove) {
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    if (remove) {
        rmdir(dir);
    }
    return segs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        o2d_log_set_level(O2D_LOG_ERROR + 1);
        quiet = 1;
    }
    char dir[64];
    snprintf(dir, sizeof(dir), "%s/o2d-fuzz-dlog-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    if (size >= 17 && data[0] == 'W') {
        put(dir, "watermark", data + 1, 16);
        data += 17;
        size -= 17;
    }
    if (size >= 3 && data[0] == 'S') {
        /* 'S', a 16-bit length, that many bytes as the settled file */
        size_t sl = (size_t)data[1] | (size_t)data[2] << 8;
        if (sl > size - 3) {
            sl = size - 3;
        }
        put(dir, "settled", data + 3, sl);
        data += 3 + sl;
        size -= 3 + sl;
    }
    put(dir, "seg-0000000000000001.log", data, size);

    struct dlog_config cfg = {
        .dir = dir, .max_bytes = 64u << 20, .segment_bytes = 1u << 20, .fsync = DLOG_FSYNC_NEVER};
    struct dlog *l = NULL;
    char err[256];
    if (dlog_open(&l, &cfg, err, sizeof(err)) != O2D_OK) {
        abort();
    }
    struct dlog_stats st;
    dlog_get_stats(l, &st);
    if (st.bytes > size || st.records != st.recovered) {
        abort();
    }
    uint64_t last = 0, n = 0, seq;
    uint32_t tag;
    uint8_t *rec;
    size_t len;
    while (dlog_read(l, &seq, &tag, &rec, &len) == O2D_OK) {
        if (seq <= last || len > size) {
            abort();
        }
        last = seq;
        n++;
        o2d_free(rec);
        dlog_settle(l, seq);
    }
    dlog_get_stats(l, &st);
    if (n != st.recovered || st.records != 0) {
        abort();
    }
    /* the log goes on after what it recovered */
    uint64_t first;
    if (dlog_append(l, &(struct dlog_rec){.data = "x", .len = 1, .tag = 1}, 1, &first) != O2D_OK ||
        first <= last) {
        abort();
    }
    if (dlog_read(l, &seq, &tag, &rec, &len) != O2D_OK || seq != first) {
        abort();
    }
    o2d_free(rec);
    dlog_settle(l, seq);
    dlog_close(l);
    if (clean(dir, 0) != 0) {
        abort(); /* all settled: no segment kept */
    }
    if (dlog_open(&l, &cfg, err, sizeof(err)) != O2D_OK) {
        abort();
    }
    dlog_get_stats(l, &st);
    if (st.recovered != 0 || dlog_read(l, &seq, &tag, &rec, &len) != O2D_ERR_NOT_FOUND) {
        abort();
    }
    dlog_close(l);
    clean(dir, 1);
    return 0;
}
