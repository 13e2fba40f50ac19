/*
 * o2d_log.h: logs are one JSON object a line on stderr: time, level, msg, then fields.
 * A line is built in a buffer and written with one write(2), so lines from different
 * threads never interleave. Values from clients go through the escaping field setters.
 * The API key is never a field: nothing in otel2dd passes it here.
 */
#ifndef O2D_LOG_H
#define O2D_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

enum o2d_log_level {
    O2D_LOG_DEBUG = 0,
    O2D_LOG_INFO = 1,
    O2D_LOG_WARN = 2,
    O2D_LOG_ERROR = 3,
};

void o2d_log_set_level(int level);
int o2d_log_enabled(int level);
/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int o2d_log_level_parse(const char *s);
const char *o2d_log_level_name(int level);
/* Sends lines to fd instead of stderr (tests). */
void o2d_log_set_fd(int fd);

struct o2d_logline {
    struct o2d_buf b;
    int on; /* 0 when the level is filtered out: the setters do nothing */
};

void o2d_log_begin(struct o2d_logline *l, int level, const char *msg);
void o2d_log_str(struct o2d_logline *l, const char *key, const char *s, size_t len);
void o2d_log_cstr(struct o2d_logline *l, const char *key, const char *s);
void o2d_log_int(struct o2d_logline *l, const char *key, int64_t v);
void o2d_log_uint(struct o2d_logline *l, const char *key, uint64_t v);
/* Appends "key": followed by raw, already valid JSON. */
void o2d_log_raw(struct o2d_logline *l, const char *key, const char *json, size_t len);
/* Writes the line and releases it. */
void o2d_log_end(struct o2d_logline *l);

/*
 * Rate limit for lines about per-request trouble (a refused request, a failed handshake), so
 * that a flood of bad requests cannot flood the log: per reason, the first line of an interval
 * is written at once, the others are counted, and the next written line carries how many were
 * held back. Lock-free; a zero-initialized limiter is ready (a static needs no init). Reasons
 * are told apart by a 64-bit hash of their text; past O2D_LOG_LIMIT_SLOTS distinct reasons,
 * the rest share one last slot.
 */
#define O2D_LOG_LIMIT_SLOTS 32

struct o2d_log_limit_slot {
    _Atomic uint64_t key;        /* hash of the reason; 0 while the slot is free */
    _Atomic int64_t next_ms;     /* the next line for this reason is due at or after this */
    _Atomic uint64_t suppressed; /* lines held back since the last one written */
};

struct o2d_log_limiter {
    struct o2d_log_limit_slot slot[O2D_LOG_LIMIT_SLOTS];
};

/* 1 when a line about `reason` is due at now_ms (any clock, as long as the caller keeps to
 * one): the caller writes it, with *suppressed (held back since the previous line) as the
 * "suppressed" field when nonzero. 0 when the line is held back; it is counted. */
int o2d_log_limit_take(struct o2d_log_limiter *lim, const char *reason, size_t len, int64_t now_ms,
                       int64_t interval_ms, uint64_t *suppressed);

/* The interval the receivers use for their per-request lines. */
#define O2D_LOG_LIMIT_MS 1000

/* o2d_log_begin for a line under a limiter (reason is the key, at now_ms, O2D_LOG_LIMIT_MS
 * apart): the line is off, its setters doing nothing, when the level is filtered out or the
 * limiter holds it back; a written line carries "suppressed" when lines were held back. */
void o2d_log_begin_limited(struct o2d_logline *l, int level, const char *msg,
                           struct o2d_log_limiter *lim, const char *reason, int64_t now_ms);

/* A line with only a message (printf-style; the result is escaped). */
void o2d_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
