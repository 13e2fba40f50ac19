/*
 * o2d_buf.h: a growable byte buffer with a hard maximum (curl's dynbuf). Appending past the
 * maximum fails with O2D_ERR_TOO_LARGE and leaves the buffer as it was, so a limit is
 * enforced before the memory is allocated, never after.
 */
#ifndef O2D_BUF_H
#define O2D_BUF_H

#include <stddef.h>
#include <stdint.h>

struct o2d_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* len never exceeds this */
};

void o2d_buf_init(struct o2d_buf *b, size_t max);
/* Frees the storage; the buffer can be appended to again afterwards. */
void o2d_buf_cleanup(struct o2d_buf *b);
/* Forgets the content but keeps the storage for reuse. */
void o2d_buf_reset(struct o2d_buf *b);
/* Makes room for `extra` more bytes (O2D_ERR_TOO_LARGE past max, O2D_ERR_NOMEM). */
int o2d_buf_reserve(struct o2d_buf *b, size_t extra);
int o2d_buf_append(struct o2d_buf *b, const void *p, size_t n);
int o2d_buf_append_str(struct o2d_buf *b, const char *s);
int o2d_buf_append_byte(struct o2d_buf *b, uint8_t c);
/* printf-style append; the formatted text counts against max like any other bytes. */
int o2d_buf_printf(struct o2d_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes ownership of the storage (caller frees with o2d_free); the buffer is left empty. */
uint8_t *o2d_buf_take(struct o2d_buf *b, size_t *len);

#endif
