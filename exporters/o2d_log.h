/*
 * o2d_log.h: logs are one JSON object a line on stderr: time, level, msg, then fields.
 * A line is built in a buffer and written with one write(2), so lines from different
 * threads never interleave. Values from clients go through the escaping field setters.
 * The API key is never a field: nothing in otel2dd passes it here.
 */
#ifndef O2D_LOG_H
#define O2D_LOG_H

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

/* A line with only a message (printf-style; the result is escaped). */
void o2d_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
