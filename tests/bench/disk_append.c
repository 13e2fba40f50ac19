/*
 * disk_append.c: what storing the disk queue's records costs on this machine, for the
 * segment log (exporters/delivery/disk_log.c, fsync batch and never) against SQLite in WAL
 * mode (synchronous FULL and NORMAL, one table, one transaction per append call, one shared
 * connection behind a mutex: SQLite writes one transaction at a time). Not a test; built on
 * demand:
 *
 *   cmake --build build --target disk_append
 *   build/disk_append [dir (default /tmp)] [seconds per run (default 2)]
 *
 * For 1, 4 and 16 appending threads and 400-byte and 40-KB records, each thread appends one
 * record a call until the time is up; it prints records/s, MB/s and the p50 and p99 of one
 * append call's latency. Every run gets a fresh directory, removed afterwards.
 */
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk_log.h"
#include "o2d.h"
#include "o2d_log.h"

#define MAX_SAMPLES 400000

enum store { LOG_BATCH, LOG_NEVER, SQL_FULL, SQL_NORMAL };
static const char *const store_name[] = {"dlog fsync batch", "dlog fsync never", "sqlite WAL FULL",
                                         "sqlite WAL NORMAL"};

struct run {
    enum store store;
    struct dlog *log;
    sqlite3 *db;
    sqlite3_stmt *ins;
    pthread_mutex_t db_mu;
    size_t rec_len;
    int64_t deadline_ns;
    atomic_int failures;
};

struct worker {
    struct run *run;
    unsigned id;
    uint8_t *rec;
    uint32_t *lat_us;
    size_t n;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int sqlite_append(struct run *r, const uint8_t *rec, size_t len)
{
    pthread_mutex_lock(&r->db_mu);
    int ok = sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_bind_int(r->ins, 1, 1) == SQLITE_OK &&
             sqlite3_bind_blob(r->ins, 2, rec, (int)len, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_step(r->ins) == SQLITE_DONE;
    sqlite3_reset(r->ins);
    ok = ok && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    pthread_mutex_unlock(&r->db_mu);
    return ok ? 0 : -1;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    while (w->n < MAX_SAMPLES) {
        int64_t t0 = now_ns();
        if (t0 >= r->deadline_ns) {
            break;
        }
        int rv;
        if (r->store == LOG_BATCH || r->store == LOG_NEVER) {
            uint64_t seq;
            rv = dlog_append(r->log, &(struct dlog_rec){w->rec, r->rec_len, 1}, 1, &seq);
        } else {
            rv = sqlite_append(r, w->rec, r->rec_len);
        }
        if (rv != 0) {
            atomic_fetch_add(&r->failures, 1);
            break;
        }
        int64_t us = (now_ns() - t0) / 1000;
        w->lat_us[w->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char p[1024];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static int open_store(struct run *r, const char *dir)
{
    if (r->store == LOG_BATCH || r->store == LOG_NEVER) {
        struct dlog_config cfg = {.dir = dir,
                                  .max_bytes = 64ull << 30,
                                  .segment_bytes = 64u << 20,
                                  .fsync =
                                      r->store == LOG_BATCH ? DLOG_FSYNC_BATCH : DLOG_FSYNC_NEVER};
        char err[256];
        if (dlog_open(&r->log, &cfg, err, sizeof(err)) != O2D_OK) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        return 0;
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/queue.db", dir);
    const char *sync =
        r->store == SQL_FULL ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    if (sqlite3_open(path, &r->db) != SQLITE_OK ||
        sqlite3_exec(r->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(r->db, sync, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(r->db,
                     "CREATE TABLE q(seq INTEGER PRIMARY KEY AUTOINCREMENT, tag INTEGER, "
                     "data BLOB)",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "INSERT INTO q(tag, data) VALUES(?, ?)", -1, &r->ins, NULL) !=
            SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(r->db));
        return -1;
    }
    pthread_mutex_init(&r->db_mu, NULL);
    return 0;
}

static void close_store(struct run *r)
{
    if (r->log != NULL) {
        dlog_close(r->log);
    }
    if (r->db != NULL) {
        sqlite3_finalize(r->ins);
        sqlite3_close(r->db);
        pthread_mutex_destroy(&r->db_mu);
    }
}

static void bench(const char *base, enum store store, unsigned threads, size_t len, double secs)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/o2d-disk-append-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror(dir);
        exit(1);
    }
    struct run r = {.store = store, .rec_len = len};
    if (open_store(&r, dir) != 0) {
        exit(1);
    }
    struct worker w[16];
    pthread_t th[16];
    r.deadline_ns = now_ns() + (int64_t)(secs * 1e9);
    int64_t t0 = now_ns();
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (struct worker){.run = &r, .id = t};
        w[t].rec = malloc(len);
        w[t].lat_us = malloc(MAX_SAMPLES * sizeof(uint32_t));
        for (size_t i = 0; i < len; i++) {
            w[t].rec[i] = (uint8_t)(t * 131 + i * 7);
        }
        pthread_create(&th[t], NULL, work, &w[t]);
    }
    size_t total = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        total += w[t].n;
    }
    double el = (double)(now_ns() - t0) / 1e9;
    uint32_t *all = malloc((total ? total : 1) * sizeof(uint32_t));
    size_t k = 0;
    for (unsigned t = 0; t < threads; t++) {
        memcpy(all + k, w[t].lat_us, w[t].n * sizeof(uint32_t));
        k += w[t].n;
        free(w[t].rec);
        free(w[t].lat_us);
    }
    qsort(all, total, sizeof(uint32_t), cmp_u32);
    printf("| %-17s | %2u | %5zu | %9.0f | %8.1f | %7u | %7u |%s\n", store_name[store], threads,
           len, (double)total / el, (double)total * (double)len / el / 1e6,
           total ? all[total / 2] : 0, total ? all[total * 99 / 100] : 0,
           atomic_load(&r.failures) ? " failures" : "");
    fflush(stdout);
    free(all);
    close_store(&r);
    remove_dir(dir);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    double secs = argc > 2 ? atof(argv[2]) : 2.0;
    o2d_log_set_level(O2D_LOG_ERROR + 1);
    printf("| store             |  t | bytes | records/s |     MB/s | p50 us  | p99 us  |\n");
    printf("|-------------------|----|-------|-----------|----------|---------|---------|\n");
    const size_t lens[] = {400, 40 * 1024};
    const unsigned threads[] = {1, 4, 16};
    for (size_t li = 0; li < 2; li++) {
        for (size_t ti = 0; ti < 3; ti++) {
            for (int s = LOG_BATCH; s <= SQL_NORMAL; s++) {
                bench(base, (enum store)s, threads[ti], lens[li], secs);
            }
        }
    }
    return 0;
}
