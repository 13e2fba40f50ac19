/*
 * o2d_buf.c: bounded growable buffer. Growth doubles, capped at max; a failed append changes
 * nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"

void o2d_buf_init(struct o2d_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void o2d_buf_cleanup(struct o2d_buf *b)
{
    o2d_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void o2d_buf_reset(struct o2d_buf *b)
{
    b->len = 0;
}

int o2d_buf_reserve(struct o2d_buf *b, size_t extra)
{
    if (extra > b->max - b->len) {
        return O2D_ERR_TOO_LARGE;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return O2D_OK;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (cap > b->max) {
        cap = b->max;
    }
    uint8_t *p = o2d_realloc(b->data, cap);
    if (p == NULL) {
        return O2D_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return O2D_OK;
}

int o2d_buf_append(struct o2d_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return O2D_OK;
    }
    /* cap never exceeds max, so what fits in cap needs no other check */
    if (n > b->cap - b->len) {
        int rv = o2d_buf_reserve(b, n);
        if (rv != O2D_OK) {
            return rv;
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return O2D_OK;
}

int o2d_buf_append_str(struct o2d_buf *b, const char *s)
{
    return o2d_buf_append(b, s, strlen(s));
}

int o2d_buf_append_byte(struct o2d_buf *b, uint8_t c)
{
    if (b->len < b->cap) {
        b->data[b->len++] = c;
        return O2D_OK;
    }
    return o2d_buf_append(b, &c, 1);
}

int o2d_buf_printf(struct o2d_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return O2D_ERR_INTERNAL;
    }
    if ((size_t)n < sizeof(small)) {
        return o2d_buf_append(b, small, (size_t)n);
    }
    int rv = o2d_buf_reserve(b, (size_t)n + 1);
    if (rv != O2D_OK) {
        return rv;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return O2D_OK;
}

uint8_t *o2d_buf_take(struct o2d_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len != NULL) {
        *len = b->len;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
