/*
 * o2d_msgpack.c: see o2d_msgpack.h.
 */
#include "o2d_msgpack.h"
#include "o2d.h"

static int write_buf(void *data, const char *p, size_t n)
{
    struct o2d_msgpack_out *o = data;
    int rv = o2d_buf_append(o->b, p, n);
    if (rv != O2D_OK && o->rv == O2D_OK) {
        o->rv = rv;
    }
    return rv == O2D_OK ? 0 : -1;
}

void o2d_msgpack_init(msgpack_packer *pk, struct o2d_msgpack_out *o, struct o2d_buf *b)
{
    o->b = b;
    o->rv = O2D_OK;
    msgpack_packer_init(pk, o, write_buf);
}
