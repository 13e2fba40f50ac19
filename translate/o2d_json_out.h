/*
 * o2d_json_out.h: writing JSON text. Strings are escaped and invalid UTF-8 is replaced by
 * U+FFFD, so whatever a client sent can be written to a log line or a payload safely.
 */
#ifndef O2D_JSON_OUT_H
#define O2D_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

/* Appends s[0..len) as a quoted JSON string. */
int o2d_json_append_string(struct o2d_buf *b, const char *s, size_t len);
/* Length of the longest valid UTF-8 prefix of s[0..len) (the whole length if valid). */
size_t o2d_utf8_valid_prefix(const char *s, size_t len);
/* Appends lowercase hex of p[0..n). */
int o2d_hex_append(struct o2d_buf *b, const uint8_t *p, size_t n);

#endif
