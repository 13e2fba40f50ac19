/*
 * o2d_log.c: JSON-lines logging to stderr. Lines are capped (64 KiB) so a huge client value
 * cannot make a log line unbounded; a line that hits the cap is closed with "truncated".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "o2d.h"
#include "o2d_json_out.h"
#include "o2d_log.h"

#define LOG_LINE_MAX (64 * 1024)

static int log_level = O2D_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void o2d_log_set_level(int level)
{
    log_level = level;
}

int o2d_log_enabled(int level)
{
    return level >= log_level;
}

void o2d_log_set_fd(int fd)
{
    log_fd = fd;
}

int o2d_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcmp(s, "warning") == 0) {
        return O2D_LOG_WARN;
    }
    return -1;
}

const char *o2d_log_level_name(int level)
{
    return level >= 0 && level < 4 ? level_names[level] : "info";
}

void o2d_log_begin(struct o2d_logline *l, int level, const char *msg)
{
    o2d_buf_init(&l->b, LOG_LINE_MAX - 32);
    l->on = o2d_log_enabled(level);
    if (!l->on) {
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    o2d_buf_printf(&l->b,
                   "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, o2d_log_level_name(level));
    o2d_json_append_string(&l->b, msg, strlen(msg));
}

static void key(struct o2d_logline *l, const char *k)
{
    o2d_buf_append_byte(&l->b, ',');
    o2d_json_append_string(&l->b, k, strlen(k));
    o2d_buf_append_byte(&l->b, ':');
}

void o2d_log_str(struct o2d_logline *l, const char *k, const char *s, size_t len)
{
    if (!l->on) {
        return;
    }
    size_t mark = l->b.len;
    key(l, k);
    if (o2d_json_append_string(&l->b, s, len) != O2D_OK) {
        l->b.len = mark; /* a value that does not fit is left out, the line stays valid */
    }
}

void o2d_log_cstr(struct o2d_logline *l, const char *k, const char *s)
{
    o2d_log_str(l, k, s ? s : "", s ? strlen(s) : 0);
}

void o2d_log_int(struct o2d_logline *l, const char *k, int64_t v)
{
    if (!l->on) {
        return;
    }
    key(l, k);
    o2d_buf_printf(&l->b, "%lld", (long long)v);
}

void o2d_log_uint(struct o2d_logline *l, const char *k, uint64_t v)
{
    if (!l->on) {
        return;
    }
    key(l, k);
    o2d_buf_printf(&l->b, "%llu", (unsigned long long)v);
}

void o2d_log_raw(struct o2d_logline *l, const char *k, const char *json, size_t len)
{
    if (!l->on) {
        return;
    }
    size_t mark = l->b.len;
    key(l, k);
    if (o2d_buf_append(&l->b, json, len) != O2D_OK) {
        l->b.len = mark;
    }
}

void o2d_log_end(struct o2d_logline *l)
{
    if (l->on) {
        /* The buffer's max leaves room for the closing bytes. */
        l->b.max += 32;
        o2d_buf_append(&l->b, "}\n", 2);
        if (l->b.data != NULL) {
            size_t off = 0;
            while (off < l->b.len) {
                ssize_t n = write(log_fd, l->b.data + off, l->b.len - off);
                if (n <= 0) {
                    break;
                }
                off += (size_t)n;
            }
        }
    }
    o2d_buf_cleanup(&l->b);
}

void o2d_logf(int level, const char *fmt, ...)
{
    if (!o2d_log_enabled(level)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct o2d_logline l;
    o2d_log_begin(&l, level, msg);
    o2d_log_end(&l);
}

/* FNV-1a: only tells reasons apart; never 0, which marks a free slot. */
static uint64_t reason_key(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    }
    return h != 0 ? h : 1;
}

static struct o2d_log_limit_slot *limit_slot(struct o2d_log_limiter *lim, uint64_t key)
{
    size_t start = (size_t)(key % (O2D_LOG_LIMIT_SLOTS - 1));
    for (size_t i = 0; i < O2D_LOG_LIMIT_SLOTS - 1; i++) {
        struct o2d_log_limit_slot *s = &lim->slot[(start + i) % (O2D_LOG_LIMIT_SLOTS - 1)];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == 0) {
            uint64_t free_key = 0;
            if (atomic_compare_exchange_strong_explicit(
                    &s->key, &free_key, key, memory_order_acq_rel, memory_order_acquire)) {
                return s;
            }
            k = free_key; /* another thread took it first, maybe for the same reason */
        }
        if (k == key) {
            return s;
        }
    }
    return &lim->slot[O2D_LOG_LIMIT_SLOTS - 1];
}

int o2d_log_limit_take(struct o2d_log_limiter *lim, const char *reason, size_t len, int64_t now_ms,
                       int64_t interval_ms, uint64_t *suppressed)
{
    struct o2d_log_limit_slot *s = limit_slot(lim, reason_key(reason, len));
    int64_t next = atomic_load_explicit(&s->next_ms, memory_order_relaxed);
    /* Of the threads that find the line due, the one that moves next_ms on writes it. */
    if (now_ms < next ||
        !atomic_compare_exchange_strong_explicit(&s->next_ms, &next, now_ms + interval_ms,
                                                 memory_order_relaxed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&s->suppressed, 1, memory_order_relaxed);
        return 0;
    }
    *suppressed = atomic_exchange_explicit(&s->suppressed, 0, memory_order_relaxed);
    return 1;
}

void o2d_log_begin_limited(struct o2d_logline *l, int level, const char *msg,
                           struct o2d_log_limiter *lim, const char *reason, int64_t now_ms)
{
    uint64_t held = 0;
    /* a filtered-out level takes no slot and counts nothing */
    if (!o2d_log_enabled(level) ||
        !o2d_log_limit_take(lim, reason, strlen(reason), now_ms, O2D_LOG_LIMIT_MS, &held)) {
        o2d_buf_init(&l->b, 0);
        l->on = 0;
        return;
    }
    o2d_log_begin(l, level, msg);
    if (held > 0) {
        o2d_log_uint(l, "suppressed", held);
    }
}
