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
/* Decodes the UTF-8 sequence at s[0..avail) (avail >= 1): returns its length (1 to 4) and
 * stores the code point in *cp, or returns 0 when the bytes there are not valid UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
size_t o2d_utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp);
/* Length of the longest valid UTF-8 prefix of s[0..len) (the whole length if valid). */
size_t o2d_utf8_valid_prefix(const char *s, size_t len);
/* Length of the prefix of s[0..len) that a JSON string holds as it is (printable ASCII
 * other than '"' and '\\'). */
size_t o2d_json_plain_len(const char *s, size_t len);
/* Appends v in decimal, as printf's PRIu64 / PRId64 would (hot paths avoid printf). */
int o2d_json_append_uint(struct o2d_buf *b, uint64_t v);
/* Writes v in decimal at out (no NUL) and returns how many characters that took. */
size_t o2d_json_format_uint(char out[20], uint64_t v);
int o2d_json_append_int(struct o2d_buf *b, int64_t v);
/* Appends lowercase hex of p[0..n). */
int o2d_hex_append(struct o2d_buf *b, const uint8_t *p, size_t n);

#endif
